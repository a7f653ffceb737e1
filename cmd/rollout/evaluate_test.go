package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// fakeSource answers Stats with a fixed result and records the queries it gets.
type fakeSource struct {
	stats   *policy.Stats
	err     error
	queries []policy.Query
}

var _ policy.Source = (*fakeSource)(nil)

func (f *fakeSource) Stats(_ context.Context, q policy.Query) (*policy.Stats, error) {
	f.queries = append(f.queries, q)
	return f.stats, f.err
}

// fakeGates opens or shuts every gate with a fixed answer.
type fakeGates struct{ open bool }

func (g fakeGates) Check(_ context.Context, _ *rollouts.Spec, stage int) policy.GateResult {
	return policy.GateResult{Stage: stage, Open: g.open, Reason: "fake"}
}

// sortedDist is an exact distribution of observations, for the latency quantiles.
type sortedDist []float64

func (s sortedDist) Count() float64 { return float64(len(s)) }
func (s sortedDist) Quantile(q float64) float64 {
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
func (s sortedDist) CountAbove(x float64) float64 {
	return float64(len(s) - sort.SearchFloat64s(s, x))
}

func spread(n int, lo, hi float64) sortedDist {
	s := make(sortedDist, n)
	for i := range s {
		s[i] = lo + (hi-lo)*float64(i)/float64(n-1)
	}
	return s
}

func armStats(n int64, errs, quality float64, latency sortedDist) policy.ArmStats {
	fn := float64(n)
	return policy.ArmStats{Requests: n, Metrics: map[string]policy.Sample{
		"error_rate":     {Kind: policy.Proportion, N: n, Sum: errs},
		"quality_score":  {Kind: policy.Mean, N: n, Sum: quality * fn, SumSquares: fn * (0.01*(fn-1)/fn + quality*quality)},
		"latency_p95_ms": {Kind: policy.Quantile, N: int64(len(latency)), Dist: latency},
	}}
}

// regressed is a canary whose error rate tripled while latency and quality held.
func regressed() *policy.Stats {
	return &policy.Stats{
		Stable:         armStats(100000, 1000, 0.87, spread(5000, 200, 1200)),
		Canary:         armStats(5000, 155, 0.87, spread(5000, 200, 1200)),
		Malformed:      2,
		MalformedLines: []int64{17, 4031},
	}
}

// healthyStats is a canary as good as stable, with plenty of evidence.
func healthyStats() *policy.Stats {
	return &policy.Stats{
		Stable: armStats(380000, 3800, 0.87, spread(20000, 200, 1200)),
		Canary: armStats(20000, 200, 0.87, spread(20000, 200, 1200)),
	}
}

func testApp() (*App, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &App{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" },
		Now: func() time.Time { return time.Date(2026, 4, 16, 6, 0, 0, 0, time.UTC) }}, &out, &errOut
}

func TestEvaluateGolden(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		stats  *policy.Stats
		err    error
		output string
	}{
		{"rollback.json", "summarizer.yaml", regressed(), nil, "json"},
		{"rollback.txt", "summarizer.yaml", regressed(), nil, "text"},
		{"advance.json", "summarizer.yaml", healthyStats(), nil, "json"},
		{"advance.txt", "summarizer.yaml", healthyStats(), nil, "text"},
		{"source-error.json", "summarizer.yaml", nil, fmt.Errorf("read traffic.jsonl: %w", policy.ErrSourceUnavailable), "json"},
		{"pending.json", "pending.yaml", nil, nil, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, out, errOut := testApp()
			src := &fakeSource{stats: tt.stats, err: tt.err}
			var override string
			opts := &evaluateOptions{
				SpecPath: filepath.Join("testdata", "evaluate", tt.spec), Output: tt.output,
				OpenSource: func(_ *rollouts.Spec, o string) (policy.Source, error) { override = o; return src, nil },
				Gates:      fakeGates{open: true}, Metrics: "file:other.jsonl",
			}
			err := app.evaluate(context.Background(), opts)
			switch {
			case tt.err != nil && !errors.Is(err, errFailed):
				// The decision is printed, and the run fails: a source that failed judged nothing.
				t.Fatalf("evaluate with a failing source: %v, want errFailed", err)
			case tt.err != nil && !strings.Contains(errOut.String(), "metrics source file:other.jsonl: read traffic.jsonl"):
				t.Errorf("stderr does not name the failing source: %s", errOut)
			case tt.err == nil && err != nil:
				t.Fatalf("evaluate: %v (stderr %s)", err, errOut)
			}
			checkGolden(t, ".", filepath.Join("evaluate", tt.name), out.Bytes())
			if tt.spec == "pending.yaml" {
				if len(src.queries) != 0 {
					t.Errorf("a pending rollout read metrics: %+v", src.queries)
				}
				return
			}
			if override != "file:other.jsonl" {
				t.Errorf("--metrics reached the source as %q", override)
			}
			want := policy.Window{From: time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC), To: app.Now()}
			// The whole window, then the recent windows of the stage's hourly grid (policy.WithRecent),
			// which a source that failed is not asked for.
			starts := policy.RecentStarts(want.From, want.To)
			if tt.err != nil {
				starts = nil
			}
			if len(src.queries) != 1+len(starts) || src.queries[0].Window != want || src.queries[0].Rollout != "summarizer" {
				t.Fatalf("queries %+v, want one over %+v and one per recent window", src.queries, want)
			}
			for i, from := range starts {
				if w := src.queries[1+i].Window; !w.From.Equal(from) || !w.To.Equal(want.To) {
					t.Errorf("recent query %d over %+v, want from %s", i, w, from)
				}
			}
		})
	}
}

// TestEvaluateJSONShape checks the contract's names, independent of the golden bytes.
func TestEvaluateJSONShape(t *testing.T) {
	app, out, _ := testApp()
	opts := &evaluateOptions{SpecPath: "testdata/evaluate/summarizer.yaml", Output: "json", Gates: fakeGates{},
		OpenSource: func(*rollouts.Spec, string) (policy.Source, error) { return &fakeSource{stats: regressed()}, nil }}
	if err := app.evaluate(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"rollout", "decision", "stage", "weight", "next", "reasons", "metrics"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %s", k, out)
		}
	}
	if got["decision"] != "rollback" {
		t.Errorf("decision %v", got["decision"])
	}
	next, _ := got["next"].(map[string]any)
	if next["stage"] != float64(1) || next["weight"] != float64(0) {
		t.Errorf("next %v", got["next"])
	}
	m := got["metrics"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "stable", "canary", "verdict", "interval", "reason"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metric has no %q: %v", k, m)
		}
	}
	if c := m["canary"].(map[string]any); c["n"] != float64(5000) || c["value"] != 0.031 {
		t.Errorf("canary %v", c)
	}
}

func TestEvaluateCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"pending starts", []string{"evaluate", "--spec", "testdata/evaluate/pending.yaml", "-o", "json"}, exitOK, `"decision": "start"`, ""},
		{"text by default", []string{"evaluate", "--spec", "testdata/evaluate/pending.yaml"}, exitOK, "pending: start (stage 0, 0% → stage 0, 5%)", ""},
		{"--now is used", []string{"evaluate", "--spec", "testdata/evaluate/pending.yaml", "--now", "2026-04-16T12:00:00Z"}, exitOK, "start", ""},
		{"a spec that fails to parse exits 1", []string{"evaluate", "--spec", "testdata/evaluate/broken.yaml"}, exitFailed, "", "testdata/evaluate/broken.yaml:"},
		{"a missing spec exits 1", []string{"evaluate", "--spec", "testdata/evaluate/none.yaml"}, exitFailed, "", "read spec testdata/evaluate/none.yaml"},
		{"no --spec is a usage error", []string{"evaluate"}, exitUsage, "", "evaluate needs --spec FILE"},
		{"an unknown format is a usage error", []string{"evaluate", "--spec", "x.yaml", "-o", "yaml"}, exitUsage, "", "unknown output format"},
		{"a bad --now is a usage error", []string{"evaluate", "--spec", "testdata/evaluate/pending.yaml", "--now", "noon"}, exitUsage, "", "RFC 3339"},
		{"arguments are a usage error", []string{"evaluate", "--spec", "testdata/evaluate/pending.yaml", "extra"}, exitUsage, "", "accepts 0 arg"},
		{"an unknown source exits 1", []string{"evaluate", "--spec", "testdata/evaluate/summarizer.yaml", "--metrics", "carrier-pigeon:x"}, exitFailed, "", "unsupported metrics source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, out, errOut := testApp()
			if code := app.Main(tt.args); code != tt.wantCode {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout %q does not say %q", out, tt.wantStdout)
			}
			if !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not say %q", errOut, tt.wantStderr)
			}
		})
	}
}

// TestEvaluateWritesNothing: evaluating leaves the spec file as it was.
func TestEvaluateWritesNothing(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile("testdata/evaluate/summarizer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "summarizer.yaml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	app, _, _ := testApp()
	opts := &evaluateOptions{SpecPath: path, Output: "json", Gates: fakeGates{},
		OpenSource: func(*rollouts.Spec, string) (policy.Source, error) { return &fakeSource{stats: healthyStats()}, nil }}
	if err := app.evaluate(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if !bytes.Equal(raw, after) || len(entries) != 1 {
		t.Errorf("evaluate wrote to the spec's folder")
	}
	if err := app.evaluate(context.Background(), &evaluateOptions{SpecPath: path, Gates: fakeGates{},
		OpenSource: func(*rollouts.Spec, string) (policy.Source, error) { return nil, errors.New("no source") }}); err == nil {
		t.Errorf("a source that cannot open is not an error")
	}
}
