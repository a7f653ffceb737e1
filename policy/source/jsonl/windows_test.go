package jsonl

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

// TestStatsWindowsMatchExactly checks, to the last field and bit, that one read for many windows finds
// for each window what Stats finds for it alone, now that the windows with one end share their table
// of recent requests: with a table small enough to push requests out (and one that grows), with late
// records stamped before their own request (they reach some of the windows that count it and not
// others), with request_ids used twice, and with RequestsTo. Windows end at three different times,
// the open end included.
func TestStatsWindowsMatchExactly(t *testing.T) {
	race.Skip(t, race.Slow)
	reqs, content, q := simulated(t)
	end := simStart.Add(10 * time.Hour)
	var windows []policy.Window
	for _, h := range []int{0, 2, 4, 5, 6, 8, 9} { // the stage's window and its recent windows
		windows = append(windows, policy.Window{From: simStart.Add(time.Duration(h) * time.Hour), To: end})
	}
	for _, h := range []int{0, 3, 5} { // an earlier tick's
		windows = append(windows, policy.Window{From: simStart.Add(time.Duration(h) * time.Hour), To: simStart.Add(6 * time.Hour)})
	}
	windows = append(windows, policy.Window{}, policy.Window{From: simStart.Add(7 * time.Hour)})
	files := map[string][]byte{
		"in order":  content,
		"shuffled":  shuffledRequests(reqs, rand.New(rand.NewPCG(3, 4))),
		"perturbed": perturbedRequests(reqs, rand.New(rand.NewPCG(5, 6))),
	}
	matured := q
	matured.RequestsTo = simStart.Add(7 * time.Hour)
	for _, tc := range []struct {
		name    string
		maxLate int
		q       policy.Query
	}{
		{"default table", 0, q},
		{"small table", 300, q},
		{"table at 8192", 8192, q},
		{"requests to", 300, matured},
	} {
		for name, file := range files {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				src := &Source{MaxLateRequests: tc.maxLate}
				got, err := src.ReadWindows(context.Background(), bytes.NewReader(file), tc.q, windows)
				if err != nil {
					t.Fatal(err)
				}
				late := int64(0)
				for i, w := range windows {
					wq := tc.q
					wq.Window = w
					want, err := src.Read(context.Background(), bytes.NewReader(file), wq)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got[i], want) {
						t.Errorf("window %d (%s to %s): got %d/%d requests, %d late, %d unmatched; alone %d/%d, %d, %d", i, w.From, w.To,
							got[i].Stable.Requests, got[i].Canary.Requests, got[i].LateRecords, got[i].LateUnmatched,
							want.Stable.Requests, want.Canary.Requests, want.LateRecords, want.LateUnmatched)
					}
					late += want.LateRecords
				}
				if late == 0 {
					t.Error("no late record attached: the test checks nothing")
				}
			})
		}
	}
}

// perturbedRequests returns reqs as JSON Lines in order, but with one request in twenty reusing an
// earlier request's id, and corrections after a third of the late records: a second late record
// stamped up to three hours before the request, and sometimes a third after it, each with other
// values.
func perturbedRequests(reqs []synth.Request, rng *rand.Rand) []byte {
	var buf bytes.Buffer
	var ids []string
	for _, r := range reqs {
		if !r.Late && r.RequestID != "" && len(ids) > 0 && rng.IntN(20) == 0 {
			r.RequestID = ids[rng.IntN(len(ids))]
		} else if !r.Late && r.RequestID != "" {
			ids = append(ids, r.RequestID)
		}
		buf.Write(synth.AppendJSON(nil, r))
		if !r.Late || rng.IntN(3) != 0 {
			continue
		}
		quality, feedback := rng.Float64(), 1-2*rng.IntN(2)
		early := r
		early.TS = r.TS.Add(-time.Duration(rng.Int64N(int64(3 * time.Hour))))
		early.Quality, early.Feedback = &quality, &feedback
		if r.Preferred != "" {
			early.Quality, early.Feedback, early.Preferred = nil, nil, []string{"canary", "stable", "tie"}[rng.IntN(3)]
		}
		buf.Write(synth.AppendJSON(nil, early))
		if rng.IntN(2) == 0 {
			again, q := r, rng.Float64()
			again.TS = r.TS.Add(time.Minute)
			if r.Preferred == "" {
				again.Quality = &q
			}
			buf.Write(synth.AppendJSON(nil, again))
		}
	}
	return buf.Bytes()
}

// TestStatsWindowsMatchRandomFiles checks, as TestStatsWindowsMatchExactly does, small random files
// read with a table of 16 requests (one set, pushed out all the time): a few request_ids used again
// and again, late records stamped anywhere in the two hours the windows start in, records of both arms
// in any order, and windows ending at three times.
func TestStatsWindowsMatchRandomFiles(t *testing.T) {
	base := time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	var windows []policy.Window
	for _, end := range []int{120, 90} {
		for _, from := range []int{0, 20, 40, 60, 80} {
			windows = append(windows, policy.Window{From: at(from), To: at(end)})
		}
	}
	windows = append(windows, policy.Window{}, policy.Window{From: at(30)})
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var file bytes.Buffer
		for range 20 + rng.IntN(200) {
			ts := at(rng.IntN(130)).Format(time.RFC3339)
			id := itoa(rng.IntN(30))
			var line string
			switch rng.IntN(3) {
			case 0:
				line = `{"ts":"` + ts + `","rollout":"r","request_id":"` + id + `"` + lateValues(rng) + `}`
			default:
				variant := []string{"canary", "stable"}[rng.IntN(2)]
				key := []string{``, `,"key":"k` + itoa(rng.IntN(5)) + `"`}[rng.IntN(2)]
				rid := []string{``, `,"request_id":"` + id + `"`, `,"request_id":"` + id + `"`}[rng.IntN(3)]
				line = `{"ts":"` + ts + `","rollout":"r","variant":"` + variant + `"` + key + rid + `,"error":` +
					[]string{"true", "false"}[rng.IntN(2)] + lateValues(rng) + `}`
			}
			file.WriteString(line + "\n")
		}
		src := &Source{MaxLateRequests: 16}
		q := policy.Query{Rollout: "r"}
		got, err := src.ReadWindows(context.Background(), bytes.NewReader(file.Bytes()), q, windows)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range windows {
			q.Window = w
			want, err := src.Read(context.Background(), bytes.NewReader(file.Bytes()), q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[i], want) {
				t.Errorf("seed %d, window %d (%s to %s): got %+v\nalone %+v", seed, i, w.From, w.To, got[i].Canary, want.Canary)
			}
		}
	}
}

// lateValues returns random quality, feedback and preferred fields, each present or not.
func lateValues(rng *rand.Rand) string {
	var b strings.Builder
	if rng.IntN(2) == 0 {
		b.WriteString(`,"quality":0.` + itoa(rng.IntN(1000)))
	}
	if rng.IntN(2) == 0 {
		b.WriteString(`,"feedback":` + []string{"-1", "1"}[rng.IntN(2)])
	}
	if rng.IntN(3) == 0 {
		b.WriteString(`,"preferred":"` + []string{"canary", "stable", "tie"}[rng.IntN(3)] + `"`)
	}
	if b.Len() == 0 {
		b.WriteString(`,"quality":1`)
	}
	return b.String()
}

// TestLateQualityAcrossWindows checks the quality a late record replaces, in windows that end together
// but see different late records of one request: one stamped before the request reaches the windows
// that start before it, and not the others.
func TestLateQualityAcrossWindows(t *testing.T) {
	at := func(hm string) string { return `"ts":"2026-04-16T` + hm + `:00Z","rollout":"r"` }
	request := `{` + at("10:30") + `,"variant":"canary","key":"a","request_id":"x","quality":0.5}`
	early := `{` + at("10:15") + `,"request_id":"x","quality":0.875}`
	later := `{` + at("10:40") + `,"request_id":"x","quality":0.25}`
	other := `{` + at("10:35") + `,"variant":"canary","key":"b","request_id":"y","quality":0.5}`
	last := `{` + at("10:45") + `,"request_id":"x","quality":0.125}`
	// Enough requests to grow the table (at a quarter of its 4096 first slots), without quality.
	var filler []string
	for i := range 1100 {
		filler = append(filler, `{`+at("10:36")+`,"variant":"canary","key":"c","request_id":"f-`+itoa(i)+`"}`)
	}
	grown := strings.Join(filler, "\n")
	wide := policy.Window{From: time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 16, 11, 0, 0, 0, time.UTC)}
	narrow := policy.Window{From: time.Date(2026, 4, 16, 10, 20, 0, 0, time.UTC), To: wide.To}
	for _, tc := range []struct {
		name  string
		lines []string
		// want is the quality sum of each window, wide and narrow, and its late records.
		want     [2]float64
		wantLate [2]int64
	}{
		{"early record last", []string{request, later, early}, [2]float64{0.875, 0.25}, [2]int64{2, 1}},
		{"early record first", []string{request, early, later}, [2]float64{0.25, 0.25}, [2]int64{2, 1}},
		{"early record twice", []string{request, early, early, later, early}, [2]float64{0.875, 0.25}, [2]int64{4, 1}},
		{"request again", []string{request, early, request, later}, [2]float64{0.875 + 0.25, 0.5 + 0.25}, [2]int64{2, 1}},
		{"another request between", []string{request, early, other, later}, [2]float64{0.25 + 0.5, 0.25 + 0.5}, [2]int64{2, 1}},
		{"table grown between", []string{request, later, early, grown, last}, [2]float64{0.125, 0.125}, [2]int64{3, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := []byte(strings.Join(tc.lines, "\n") + "\n")
			q := policy.Query{Rollout: "r", Metrics: []policy.MetricQuery{{Name: QualityScore}}}
			got, err := (&Source{}).ReadWindows(context.Background(), bytes.NewReader(file), q, []policy.Window{wide, narrow})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range []policy.Window{wide, narrow} {
				if s := got[i].Canary.Metrics[QualityScore]; s.Sum != tc.want[i] || got[i].LateRecords != tc.wantLate[i] {
					t.Errorf("window %d: quality sum %g, %d late records; want %g, %d", i, s.Sum, got[i].LateRecords, tc.want[i], tc.wantLate[i])
				}
				q.Window = w
				alone, err := (&Source{}).Read(context.Background(), bytes.NewReader(file), q)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got[i], alone) {
					t.Errorf("window %d: %+v, alone %+v", i, got[i].Canary, alone.Canary)
				}
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
