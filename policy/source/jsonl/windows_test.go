package jsonl

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

// TestStatsWindowsMatchOneByOne checks that one read for many windows finds, for each window, exactly
// what Stats finds for it alone: nested recent windows, replayed ticks, an empty window, a window
// before the first canary record, over a file in time order and over one whose requests are shuffled
// (where some windows need their second pass and others do not).
func TestStatsWindowsMatchOneByOne(t *testing.T) {
	race.Skip(t, race.Slow)
	reqs, content, q := simulated(t)
	shuffled := shuffledRequests(reqs, rand.New(rand.NewPCG(3, 4)))
	end := simStart.Add(10 * time.Hour)
	windows := []policy.Window{
		{From: simStart, To: end},                     // the stage's window
		{From: simStart.Add(4 * time.Hour), To: end},  // recent windows
		{From: simStart.Add(8 * time.Hour), To: end},  //
		{From: simStart, To: simStart.Add(time.Hour)}, // replayed ticks
		{From: simStart, To: simStart.Add(90 * time.Minute)},
		{From: simStart.Add(-time.Hour), To: simStart}, // before any canary record
		{From: end.Add(time.Hour), To: end.Add(2 * time.Hour)},
		{}, // the whole file
	}
	for name, file := range map[string][]byte{"in order": content, "shuffled": shuffled} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "traffic.jsonl")
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			src := Open(path)
			got, err := src.StatsWindows(context.Background(), q, windows)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(windows) {
				t.Fatalf("%d results for %d windows", len(got), len(windows))
			}
			for i, w := range windows {
				wq := q
				wq.Window = w
				want, err := src.Stats(context.Background(), wq)
				if err != nil {
					t.Fatal(err)
				}
				if want.Stable.Requests+want.Canary.Requests == 0 {
					if got[i].Stable.Requests+got[i].Canary.Requests != 0 {
						t.Errorf("window %d: %d/%d requests, want none", i, got[i].Stable.Requests, got[i].Canary.Requests)
					}
				} else {
					for _, d := range synth.Diff(want, got[i], synth.Tolerance{Variance: 1e-9, Quantile: 1e-9}) {
						t.Errorf("window %d: %s", i, d)
					}
				}
				if !got[i].From.Equal(want.From) || got[i].Shadow != want.Shadow || got[i].NotRandomised != want.NotRandomised ||
					got[i].LateUnmatched != want.LateUnmatched || got[i].Malformed != want.Malformed {
					t.Errorf("window %d: from %s shadow %d excluded %d unmatched %d malformed %d, want %s %d %d %d %d", i,
						got[i].From, got[i].Shadow, got[i].NotRandomised, got[i].LateUnmatched, got[i].Malformed,
						want.From, want.Shadow, want.NotRandomised, want.LateUnmatched, want.Malformed)
				}
			}
			if got[0].Stable.Requests == 0 || got[0].Canary.Requests == 0 {
				t.Fatal("the stage's window is empty: the test checks nothing")
			}
		})
	}
}

// TestWithRecentReadsTheFileOnce checks that policy.WithRecent over a file asks for the stage's
// window and all its recent windows in one read, and finds what it found asking one by one.
func TestWithRecentReadsTheFileOnce(t *testing.T) {
	race.Skip(t, race.Slow)
	path, _, q := simulatedFile(t)
	q.Window = policy.Window{From: simStart, To: simStart.Add(10 * time.Hour)}
	counted := &countingSource{Source: Open(path)}
	st, err := policy.WithRecent(counted).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if counted.stats != 0 || counted.reads != 1 {
		t.Errorf("%d Stats calls and %d multi-window reads, want one read", counted.stats, counted.reads)
	}
	// The same, one query per window, through a source that cannot read many windows at once.
	one, err := policy.WithRecent(statsOnly{Open(path)}).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Recent) == 0 || len(st.Recent) != len(one.Recent) {
		t.Fatalf("%d recent windows, want %d (> 0)", len(st.Recent), len(one.Recent))
	}
	for i := range st.Recent {
		if !st.Recent[i].From.Equal(one.Recent[i].From) {
			t.Errorf("recent window %d from %s, want %s", i, st.Recent[i].From, one.Recent[i].From)
		}
		for _, d := range synth.Diff(one.Recent[i].Stats, st.Recent[i].Stats, synth.Tolerance{Variance: 1e-9, Quantile: 1e-9}) {
			t.Errorf("recent window %d: %s", i, d)
		}
	}
}

// TestMaturityAndRecentReadTheFileTwice checks that a tick's query with a late metric (a maturity
// window) and its recent windows costs two reads of the file, all windows' requests and all windows'
// matured requests, and finds what asking one query at a time finds.
func TestMaturityAndRecentReadTheFileTwice(t *testing.T) {
	race.Skip(t, race.Slow)
	path, _, q := simulatedFile(t)
	q.Window = policy.Window{From: simStart, To: simStart.Add(10 * time.Hour)}
	q.Metrics = []policy.MetricQuery{{Name: ErrorRate}, {Name: NegativeFeedbackRate, Maturity: 3 * time.Hour}}
	counted := &countingSource{Source: Open(path)}
	st, err := policy.WithRecent(policy.WithMaturity(counted)).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if counted.stats != 0 || counted.reads != 2 {
		t.Errorf("%d Stats calls and %d multi-window reads, want two reads", counted.stats, counted.reads)
	}
	one, err := policy.WithRecent(policy.WithMaturity(statsOnly{Open(path)})).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Recent) == 0 || len(st.Recent) != len(one.Recent) {
		t.Fatalf("%d recent windows, want %d (> 0)", len(st.Recent), len(one.Recent))
	}
	pairs := []struct{ got, want *policy.Stats }{{st, one}}
	for i := range st.Recent {
		pairs = append(pairs, struct{ got, want *policy.Stats }{st.Recent[i].Stats, one.Recent[i].Stats})
	}
	for i, p := range pairs {
		if p.want.Matured[NegativeFeedbackRate] != p.got.Matured[NegativeFeedbackRate] {
			t.Errorf("window %d: matured %+v, want %+v", i, p.got.Matured[NegativeFeedbackRate], p.want.Matured[NegativeFeedbackRate])
		}
		for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
			for _, name := range []string{ErrorRate, NegativeFeedbackRate} {
				g, w := p.got.Arm(arm).Metrics[name], p.want.Arm(arm).Metrics[name]
				if g.N != w.N || g.Sum != w.Sum || g.SumSquares != w.SumSquares {
					t.Errorf("window %d %s %s: n %d sum %g, want %d %g", i, arm, name, g.N, g.Sum, w.N, w.Sum)
				}
			}
		}
	}
	if m := st.Matured[NegativeFeedbackRate]; !m.Applied {
		t.Errorf("the stage's window's feedback was not matured: %+v", m)
	}
}

// countingSource counts the calls a jsonl source gets.
type countingSource struct {
	*Source
	stats, reads int
}

func (c *countingSource) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	c.stats++
	return c.Source.Stats(ctx, q)
}

func (c *countingSource) StatsWindows(ctx context.Context, q policy.Query, w []policy.Window) ([]*policy.Stats, error) {
	c.reads++
	return c.Source.StatsWindows(ctx, q, w)
}

// statsOnly hides a source's StatsWindows.
type statsOnly struct{ src policy.Source }

func (s statsOnly) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	return s.src.Stats(ctx, q)
}
