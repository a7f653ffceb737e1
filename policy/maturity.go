package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// Late metrics and their maturity window.
//
// Feedback and scores arrive after their request, each arm at its own pace: users of one model may
// take longer to give their thumbs, and the thumbs of unhappy users often come first. A late metric
// read over every request so far counts the values already in, so an arm whose good values come later
// looks worse than it is (a false rollback), and one whose values come sooner looks as it truly is
// while the other does not (a bad canary advancing). So a late metric is judged only over requests
// older than its maturity window (rollouts.MaturityOf: the rule's maturity, a default for the built-in
// late metrics), whose late values are all in by assumption, with every late record up to now: the
// comparison is of complete requests in both arms. The window is shown in the evidence.

// Matured is the window a late metric was read over.
type Matured struct {
	// Maturity is the metric's maturity window.
	Maturity rollouts.Duration `json:"maturity"`
	// RequestsTo: only requests up to it were read (their late values up to the window's end).
	RequestsTo time.Time `json:"requestsTo"`
	// Applied is false where the source cannot leave out the later requests: then every request was
	// read, and the evidence says so.
	Applied bool `json:"applied"`
}

// words is the note the evidence adds to a late metric's sentence.
func (m Matured) words() string {
	if !m.Applied {
		return fmt.Sprintf("maturity %s not applied: the source cannot leave out recent requests, so late values still on their way are missing from both arms", m.Maturity)
	}
	return fmt.Sprintf("over requests up to %s only: late values take up to %s (maturity)", m.RequestsTo.UTC().Format("2006-01-02 15:04 UTC"), m.Maturity)
}

// WithMaturity returns a Source that answers each query with src's statistics and, for each metric
// the query gives a maturity window (a default one only where the source attached late records in
// the window, Stats.LateRecords), the statistics of that metric over the requests at least that old
// (Query.RequestsTo), one extra query per distinct window, noted in Stats.Matured. A metric no
// request is old enough for yet has no data. A failing extra query fails the answer.
func WithMaturity(src Source) Source { return maturitySource{src} }

type maturitySource struct{ src Source }

func (m maturitySource) Stats(ctx context.Context, q Query) (*Stats, error) {
	all, err := m.StatsWindows(ctx, q, []Window{q.Window})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// StatsWindows answers q over each of windows as Stats would one by one, in few reads: one for every
// window (policy.StatsWindows), then one per maturity window and cut (the windows of a tick share
// their end, so their cut), for the windows that need it.
func (m maturitySource) StatsWindows(ctx context.Context, q Query, windows []Window) ([]*Stats, error) {
	all, err := StatsWindows(ctx, m.src, q, windows)
	if err != nil {
		return nil, err
	}
	if len(all) != len(windows) {
		return nil, fmt.Errorf("%w: asked for %d windows, got %d", ErrSourceUnavailable, len(windows), len(all))
	}
	// groups[i] is window i's metrics by maturity window.
	groups := make([]map[time.Duration][]MetricQuery, len(windows))
	type batchKey struct {
		maturity time.Duration
		cut      time.Time
	}
	batches := map[batchKey][]int{} // the windows read over requests up to one cut
	var keys []batchKey
	for i, st := range all {
		if st == nil {
			continue
		}
		for _, mq := range q.Metrics {
			if mq.Maturity > 0 && (!mq.DefaultMaturity || st.LateRecords > 0) {
				if groups[i] == nil {
					groups[i] = map[time.Duration][]MetricQuery{}
				}
				groups[i][mq.Maturity] = append(groups[i][mq.Maturity], mq)
			}
		}
		for maturity := range groups[i] {
			cut := windows[i].To.Add(-maturity)
			if !cut.After(windows[i].From) {
				continue
			}
			k := batchKey{maturity, cut}
			if _, ok := batches[k]; !ok {
				keys = append(keys, k)
			}
			batches[k] = append(batches[k], i)
		}
	}
	// matured[k][j] is the statistics over requests up to k's cut of batch k's j-th window.
	matured := map[batchKey][]*Stats{}
	for _, k := range keys {
		idx := batches[k]
		var metrics []MetricQuery
		for _, mq := range q.Metrics {
			if mq.Maturity == k.maturity {
				metrics = append(metrics, mq)
			}
		}
		mq := q
		mq.Metrics, mq.RequestsTo = metrics, k.cut
		ws := make([]Window, len(idx))
		for j, i := range idx {
			ws[j] = windows[i]
		}
		ms, err := StatsWindows(ctx, m.src, mq, ws)
		if err != nil {
			names := make([]string, len(metrics))
			for i, g := range metrics {
				names[i] = g.Name
			}
			return nil, fmt.Errorf("%s over requests up to %s: %w", strings.Join(names, ", "), k.cut.UTC().Format(time.RFC3339), err)
		}
		if len(ms) != len(ws) {
			return nil, fmt.Errorf("%w: asked for %d windows, got %d", ErrSourceUnavailable, len(ws), len(ms))
		}
		matured[k] = ms
	}
	for i, st := range all {
		if len(groups[i]) == 0 {
			continue
		}
		var own []*Stats // window i's answers, by its sorted maturity windows
		for _, maturity := range slices.Sorted(maps.Keys(groups[i])) {
			k := batchKey{maturity, windows[i].To.Add(-maturity)}
			var ms *Stats
			if j := slices.Index(batches[k], i); j >= 0 {
				ms = matured[k][j]
			}
			own = append(own, ms)
		}
		all[i] = mature(st, windows[i], groups[i], own)
	}
	return all, nil
}

// mature returns st with each late metric of groups replaced by its statistics over the requests old
// enough: own holds the answers for groups' maturity windows in sorted order (nil where no request is
// old enough yet).
func mature(st *Stats, w Window, groups map[time.Duration][]MetricQuery, own []*Stats) *Stats {
	// The maps may be the source's own: write copies.
	for _, arm := range []Arm{Stable, Canary} {
		a := st.Arm(arm)
		a.Metrics = maps.Clone(a.Metrics)
		if a.Metrics == nil {
			a.Metrics = map[string]Sample{}
		}
	}
	st.Matured = maps.Clone(st.Matured)
	if st.Matured == nil {
		st.Matured = map[string]Matured{}
	}
	for n, maturity := range slices.Sorted(maps.Keys(groups)) {
		group := groups[maturity]
		cut := w.To.Add(-maturity)
		info := Matured{Maturity: rollouts.Duration(maturity), RequestsTo: cut, Applied: true}
		ms := own[n]
		if cut.After(w.From) {
			info.Applied = ms != nil && ms != st && ms.RequestsTo.Equal(cut)
		}
		for _, g := range group {
			st.Matured[g.Name] = info
			if !info.Applied && ms != nil {
				continue // the source read every request: keep the whole window's
			}
			for _, arm := range []Arm{Stable, Canary} {
				delete(st.Arm(arm).Metrics, g.Name)
				if ms == nil {
					continue
				}
				if s, ok := ms.Arm(arm).Metrics[g.Name]; ok {
					st.Arm(arm).Metrics[g.Name] = s
				}
			}
		}
	}
	return st
}
