package policy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// The fail-side check on recent data.
//
// The stage's comparison runs over the whole stage window, so a regression that begins mid-stage (a
// provider's change, a cache that fills, the load of a busy afternoon) is diluted by the healthy hours
// before it: the whole-window estimate moves toward the new rate only as fast as the new hours outweigh
// the old ones. So each tick also judges recent windows, [s_j, now] for the points s_j = start + j·step
// (j ≥ 1) of a grid fixed by the stage's start, for the windows between RecentMin and RecentMax long.
// Only their failures count: a recent window can roll back, never advance or hold.
//
// Each window is its own always-valid confidence sequence (the same bounds as the whole window, in
// time since s_j), and window j spends recentAlpha(j) of the recent share of each limit's rollback
// budget: three quarters of it evenly over the first recentFlat grid points (a stage's first day),
// the last quarter over the later ones as 1/(k(k+1)), k = j - recentFlat. The parts sum to the share,
// so by the union bound the chance that any recent window ever shows a healthy canary broken is at most
// recentShare of each limit's rollback budget, however long the stage. A window is judged only for the
// hours after its start that RecentMax allows, which can only lower that chance. The whole window
// keeps the rest of the budget (1 - recentShare). Spending evenly over the first day, rather than
// decaying from the first hour, is what lets a change at hour 12 be caught within hours: a decaying
// spend leaves window 12 a 156th of the share, the even one a 32nd.

const (
	// RecentStep is the spacing of the grid of recent windows' starts, from the stage's start.
	RecentStep = time.Hour
	// RecentMin and RecentMax bound the length of the recent windows judged on a tick.
	RecentMin = time.Hour
	RecentMax = 6 * time.Hour
	// recentShare is the share of each limit's rollback budget that the recent windows spend.
	recentShare = 0.5
	// recentFlat is the number of grid points that share three quarters of the recent budget evenly.
	recentFlat = 24
)

// recentAlpha is the part of the recent budget that the window starting at grid point j ≥ 1 spends;
// the parts sum to 1 over all j.
func recentAlpha(j int) float64 {
	if j <= recentFlat {
		return 0.75 / recentFlat
	}
	k := float64(j - recentFlat)
	return 0.25 / (k * (k + 1))
}

// RecentStarts returns the starts of the recent windows a stage that started at start has at now,
// oldest first.
func RecentStarts(start, now time.Time) []time.Time {
	var out []time.Time
	for j := 1; ; j++ {
		s := start.Add(time.Duration(j) * RecentStep)
		if now.Sub(s) < RecentMin {
			return out
		}
		if now.Sub(s) <= RecentMax {
			out = append(out, s)
		}
	}
}

// recentIndex returns the grid index j of a recent window's start, or 0 when from is not a point of
// the stage's grid (such a window is not judged).
func recentIndex(start, from time.Time) int {
	d := from.Sub(start)
	if d < RecentStep || d%RecentStep != 0 {
		return 0
	}
	return int(d / RecentStep)
}

// WithRecent returns a Source that answers each query with src's statistics of the whole window and,
// in Stats.Recent, those of the window's recent windows (RecentStarts from the query's From, the
// stage's start) and of the window from the sample-ratio grace's end on (SRMGrace), oldest first. A recent window that fails fails the whole answer: a metrics outage never advances.
func WithRecent(src Source) Source { return recentSource{src} }

type recentSource struct{ src Source }

func (r recentSource) Stats(ctx context.Context, q Query) (*Stats, error) {
	starts := RecentStarts(q.Window.From, q.Window.To)
	if grace := q.Window.From.Add(SRMGrace); q.Window.To.After(grace) && !slices.ContainsFunc(starts, grace.Equal) {
		// The sample-ratio test counts the keys seen from the grace's end on (SRMGrace).
		starts = append([]time.Time{grace}, starts...)
	}
	ws, ok := r.src.(WindowsSource)
	if !ok || len(starts) == 0 {
		return r.oneByOne(ctx, q, starts)
	}
	// One read for the stage's window and its recent windows.
	windows := make([]Window, 0, 1+len(starts))
	windows = append(windows, q.Window)
	for _, from := range starts {
		windows = append(windows, Window{From: from, To: q.Window.To})
	}
	all, err := ws.StatsWindows(ctx, q, windows)
	if err != nil {
		return nil, err
	}
	if len(all) != len(windows) {
		return nil, fmt.Errorf("%w: asked for %d windows, got %d", ErrSourceUnavailable, len(windows), len(all))
	}
	st := all[0]
	if st == nil {
		return nil, nil
	}
	for i, from := range starts {
		st.Recent = append(st.Recent, RecentStats{From: from, Stats: apart(st, all[i+1])})
	}
	return st, nil
}

// oneByOne asks src for the stage's window, then for each recent window, one query each.
func (r recentSource) oneByOne(ctx context.Context, q Query, starts []time.Time) (*Stats, error) {
	st, err := r.src.Stats(ctx, q)
	if err != nil || st == nil {
		return st, err
	}
	for _, from := range starts {
		rq := q
		rq.Window.From = from
		rq.Segments = nil // segments are judged over the whole window only (segment.go)
		rs, err := r.src.Stats(ctx, rq)
		if err != nil {
			return nil, fmt.Errorf("recent window from %s: %w", from.UTC().Format(time.RFC3339), err)
		}
		st.Recent = append(st.Recent, RecentStats{From: from, Stats: apart(st, rs)})
	}
	return st, nil
}

// apart returns a recent window's statistics rs, copied when a source handed out the whole window's
// value st for every query, so the windows stay apart.
func apart(st, rs *Stats) *Stats {
	if rs != st {
		return rs
	}
	c := *rs
	c.Recent = nil
	return &c
}

// judgeRecent judges stats' recent windows on the fail side only and returns the sentences of the
// limits a recent window shows broken, each naming its window.
func judgeRecent(spec *rollouts.Spec, stats *Stats, start, now time.Time) []string {
	budget := budgetOf(spec, stats)
	var failed []string
	for _, rw := range stats.Recent {
		j := recentIndex(start, rw.From)
		if j == 0 || rw.Stats == nil || now.Sub(rw.From) > RecentMax || now.Sub(rw.From) < RecentMin {
			continue
		}
		b := errorBudget{fail: budget.recent * recentAlpha(j), pass: budget.pass}
		for _, r := range spec.Analysis.Rules {
			o := judgeRule(r, rw.Stats, b)
			if o.Verdict != Fail {
				continue
			}
			for _, f := range o.failures {
				failed = append(failed, fmt.Sprintf("in the last %s (since %s): %s", roundDuration(now.Sub(rw.From)),
					rw.From.UTC().Format("2006-01-02 15:04 UTC"), f))
			}
		}
		if len(failed) > 0 {
			return failed
		}
	}
	return failed
}
