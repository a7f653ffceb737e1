package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

func TestRecentStarts(t *testing.T) {
	start := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	if got := RecentStarts(start, start.Add(119*time.Minute)); len(got) != 0 {
		t.Errorf("before 2 h: %v, want none (the first grid point is 1 h in, windows are at least 1 h)", got)
	}
	got := RecentStarts(start, start.Add(10*time.Hour+30*time.Minute))
	want := []time.Time{start.Add(5 * time.Hour), start.Add(6 * time.Hour), start.Add(7 * time.Hour), start.Add(8 * time.Hour), start.Add(9 * time.Hour)}
	if len(got) != len(want) {
		t.Fatalf("at 10h30: %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("start %d = %v, want %v", i, got[i], want[i])
		}
	}
	if j := recentIndex(start, start.Add(7*time.Hour)); j != 7 {
		t.Errorf("index %d, want 7", j)
	}
	if j := recentIndex(start, start.Add(7*time.Hour+time.Minute)); j != 0 {
		t.Errorf("off-grid index %d, want 0", j)
	}
}

// TestRecentAlphaSums: the recent windows' parts of the budget sum to at most 1 over any stage length.
func TestRecentAlphaSums(t *testing.T) {
	var sum float64
	for j := 1; j <= 1_000_000; j++ {
		sum += recentAlpha(j)
	}
	if sum > 1 || sum < 0.9999 {
		t.Errorf("sum %v, want just below 1", sum)
	}
}

// countingSource answers with fixed statistics and records the windows it was asked for.
type countingSource struct {
	windows []Window
	failAt  int
}

func (s *countingSource) Stats(_ context.Context, q Query) (*Stats, error) {
	s.windows = append(s.windows, q.Window)
	if len(s.windows) == s.failAt {
		return nil, ErrSourceUnavailable
	}
	return &Stats{Unit: UnitKey}, nil
}

func TestWithRecent(t *testing.T) {
	start := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	q := Query{Rollout: "r", Window: Window{From: start, To: start.Add(4*time.Hour + 10*time.Minute)}}
	src := &countingSource{}
	st, err := WithRecent(src).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.windows) != 4 || len(st.Recent) != 3 || !st.Recent[0].From.Equal(start.Add(time.Hour)) ||
		!src.windows[3].From.Equal(start.Add(3*time.Hour)) || !src.windows[3].To.Equal(q.Window.To) {
		t.Errorf("windows asked %v, recent %+v", src.windows, st.Recent)
	}
	src = &countingSource{failAt: 3}
	if _, err := WithRecent(src).Stats(context.Background(), q); !errors.Is(err, ErrSourceUnavailable) {
		t.Errorf("a failing recent window: err = %v, want ErrSourceUnavailable", err)
	}
}

// TestRecentWindowRollsBack: a whole window that dilutes a fresh regression does not fail, the recent
// window that holds it does, and the reason names the window.
func TestRecentWindowRollsBack(t *testing.T) {
	spec := baseSpec()
	spec.Analysis.Rules = []rollouts.Rule{{Metric: "error_rate", MaxIncrease: ratio(0.5)}}
	start := spec.Status.StageStartedAt
	now := start.Add(15 * time.Hour)
	keyed := func(n, rate float64, buckets int) ArmStats {
		return keyedArm(clustersOf(0, buckets, n/float64(buckets), rate), int64(buckets))
	}
	whole := &Stats{Unit: UnitKey, Stable: keyed(200000, 0.02, 1000), Canary: keyed(6000, 0.028, 300)}
	d := Judge(spec, Evidence{Stats: whole}, now)
	if d.Action == Rollback {
		t.Fatalf("the diluted whole window alone rolled back: %q", d.Reasons)
	}
	whole.Recent = []RecentStats{{From: start.Add(12 * time.Hour), Stats: &Stats{Unit: UnitKey,
		Stable: keyed(40000, 0.02, 1000), Canary: keyed(1500, 0.06, 300)}}}
	d = Judge(spec, Evidence{Stats: whole}, now)
	if d.Action != Rollback || !strings.HasPrefix(d.Reasons[0], "in the last 3h (since ") {
		t.Errorf("decision %s, reasons %q", d.Action, d.Reasons)
	}
	// A window off the stage's grid is never judged.
	whole.Recent[0].From = whole.Recent[0].From.Add(time.Minute)
	if d := Judge(spec, Evidence{Stats: whole}, now); d.Action == Rollback {
		t.Errorf("an off-grid window rolled back: %q", d.Reasons)
	}
}
