package jsonl

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

func window(from, to string) policy.Window {
	f, _ := time.Parse(time.RFC3339, from)
	t, _ := time.Parse(time.RFC3339, to)
	return policy.Window{From: f, To: t}
}

func stats(t *testing.T, path string, q policy.Query) *policy.Stats {
	t.Helper()
	st, err := Open(path).Stats(context.Background(), q)
	if err != nil {
		t.Fatalf("Stats(%s): %v", path, err)
	}
	return st
}

// want is a compact expectation of one metric: N, Sum and (for means) SumSquares.
type want struct {
	n        int64
	sum, ss  float64
	checkSS  bool
	kind     policy.SampleKind
	absent   bool
	quantile map[float64]float64 // rank → value, checked to the sketch's accuracy
}

func checkArm(t *testing.T, name string, got policy.ArmStats, requests int64, metrics map[string]want) {
	t.Helper()
	if got.Requests != requests {
		t.Errorf("%s: Requests = %d, want %d", name, got.Requests, requests)
	}
	for metric, w := range metrics {
		s, ok := got.Metrics[metric]
		if w.absent {
			if ok {
				t.Errorf("%s %s: present (%+v), want absent", name, metric, s)
			}
			continue
		}
		if !ok {
			t.Errorf("%s %s: absent", name, metric)
			continue
		}
		if s.Kind != w.kind || s.N != w.n || !closeTo(s.Sum, w.sum) || w.checkSS && !closeTo(s.SumSquares, w.ss) {
			t.Errorf("%s %s = {kind %d n %d sum %v ss %v}, want {kind %d n %d sum %v ss %v}",
				name, metric, s.Kind, s.N, s.Sum, s.SumSquares, w.kind, w.n, w.sum, w.ss)
		}
		for q, v := range w.quantile {
			if s.Dist == nil {
				t.Errorf("%s %s: no distribution", name, metric)
				break
			}
			if got := s.Dist.Quantile(q); math.Abs(got-v) > SketchAccuracy*v+1e-9 {
				t.Errorf("%s %s: quantile(%v) = %v, want %v ±%v%%", name, metric, q, got, v, SketchAccuracy*100)
			}
		}
	}
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestStatsBasic(t *testing.T) {
	q := policy.Query{Rollout: "summarizer", Window: window("2026-04-16T10:00:00Z", "2026-04-16T11:00:00Z")}
	plain := filepath.Join("testdata", "basic.jsonl")
	content, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gzNamed := filepath.Join(dir, "basic.jsonl.gz")
	gzMagicOnly := filepath.Join(dir, "basic-compressed.jsonl") // gzip detected by content alone
	for _, p := range []string{gzNamed, gzMagicOnly} {
		if err := os.WriteFile(p, gzipped(t, content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{plain, gzNamed, gzMagicOnly} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			st := stats(t, path, q)
			if st.Malformed != 0 || st.Shadow != 1 {
				t.Errorf("Malformed = %d %v, Shadow = %d; want 0, 1", st.Malformed, st.MalformedLines, st.Shadow)
			}
			checkArm(t, "stable", st.Stable, 3, map[string]want{
				ErrorRate:              {kind: policy.Proportion, n: 3, sum: 1},
				RefusalRate:            {kind: policy.Proportion, n: 2, sum: 0},
				NegativeFeedbackRate:   {kind: policy.Proportion, n: 1, sum: 0},
				LatencyMeanMs:          {kind: policy.Mean, n: 2, sum: 400, ss: 100_000, checkSS: true},
				LatencyP50Ms:           {kind: policy.Quantile, n: 2, sum: 400, quantile: map[float64]float64{0: 100, 1: 300}},
				CostPerRequest:         {kind: policy.Mean, n: 2, sum: 0.003},
				InputTokensPerRequest:  {kind: policy.Mean, n: 2, sum: 2000, ss: 2_000_000, checkSS: true},
				OutputTokensPerRequest: {kind: policy.Mean, n: 2, sum: 200},
				QualityScore:           {kind: policy.Mean, n: 1, sum: 0.8, ss: 0.64, checkSS: true},
			})
			checkArm(t, "canary", st.Canary, 3, map[string]want{
				ErrorRate:              {kind: policy.Proportion, n: 3, sum: 0},
				RefusalRate:            {kind: policy.Proportion, n: 3, sum: 1},
				NegativeFeedbackRate:   {kind: policy.Proportion, n: 1, sum: 1},
				LatencyMeanMs:          {kind: policy.Mean, n: 3, sum: 1200, ss: 560_000, checkSS: true},
				LatencyP95Ms:           {kind: policy.Quantile, n: 3, sum: 1200, quantile: map[float64]float64{0.5: 400, 1: 600}},
				CostPerRequest:         {kind: policy.Mean, n: 1, sum: 0.004},
				InputTokensPerRequest:  {kind: policy.Mean, n: 1, sum: 1200},
				OutputTokensPerRequest: {kind: policy.Mean, n: 1, sum: 300},
				// quality 0 is data, quality null is not
				QualityScore: {kind: policy.Mean, n: 2, sum: 1, ss: 1, checkSS: true},
			})
		})
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestStatsSelectsMetrics(t *testing.T) {
	path := filepath.Join("testdata", "basic.jsonl")
	tests := []struct {
		name    string
		metrics []policy.MetricQuery
		want    []string
	}{
		{"none asked means every built-in", nil, rollouts.BuiltinMetricNames},
		{"only those asked", []policy.MetricQuery{{Name: ErrorRate}, {Name: LatencyP99Ms}}, []string{ErrorRate, LatencyP99Ms}},
		{"source-defined metric is absent", []policy.MetricQuery{{Name: "p99_latency_slo", Query: "histogram_quantile(…)"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stats(t, path, policy.Query{Rollout: "summarizer", Metrics: tt.metrics})
			for _, arm := range []policy.ArmStats{st.Stable, st.Canary} {
				var got []string
				for _, name := range rollouts.BuiltinMetricNames {
					if _, ok := arm.Metrics[name]; ok {
						got = append(got, name)
					}
				}
				if len(arm.Metrics) != len(tt.want) || strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Errorf("metrics = %v (%d), want %v", got, len(arm.Metrics), tt.want)
				}
			}
		})
	}
}

func TestStatsWindow(t *testing.T) {
	path := filepath.Join("testdata", "basic.jsonl")
	tests := []struct {
		name           string
		window         policy.Window
		stable, canary int64
	}{
		// Both arms start at the first canary record (10:00:00.000): the stable record just before it is out.
		{"open window reads from the first canary record", policy.Window{}, 3, 4},
		// The first canary record in the window is at 10:03, so the stable one at 10:01 is out.
		{"bounds are inclusive", window("2026-04-16T10:01:00Z", "2026-04-16T10:30:00Z"), 1, 1},
		{"empty window", window("2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z"), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stats(t, path, policy.Query{Rollout: "summarizer", Window: tt.window})
			if st.Stable.Requests != tt.stable || st.Canary.Requests != tt.canary {
				t.Errorf("requests = %d stable, %d canary; want %d, %d", st.Stable.Requests, st.Canary.Requests, tt.stable, tt.canary)
			}
		})
	}
}

func TestStatsNoDataIsNotZero(t *testing.T) {
	st := stats(t, filepath.Join("testdata", "basic.jsonl"), policy.Query{Rollout: "nobody"})
	for name, s := range st.Canary.Metrics {
		if s.N != 0 || s.Sum != 0 || s.Dist != nil {
			t.Errorf("%s = %+v, want N 0 and no distribution", name, s)
		}
	}
}

func TestStatsMalformed(t *testing.T) {
	q := policy.Query{Rollout: "summarizer", Window: window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")}
	st := stats(t, filepath.Join("testdata", "malformed.jsonl"), q)
	if st.Malformed != 16 {
		t.Errorf("Malformed = %d, want 16", st.Malformed)
	}
	if got, want := st.MalformedLines, []int64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !equalInts(got, want) {
		t.Errorf("MalformedLines = %v, want %v", got, want)
	}
	// Far future and far past records are valid and outside the window; nothing malformed is read as zeros.
	checkArm(t, "stable", st.Stable, 1, map[string]want{
		ErrorRate:     {kind: policy.Proportion, n: 1, sum: 0},
		LatencyMeanMs: {kind: policy.Mean, n: 1, sum: 100},
	})
	checkArm(t, "canary", st.Canary, 1, map[string]want{
		ErrorRate:     {kind: policy.Proportion, n: 1, sum: 1},
		LatencyMeanMs: {kind: policy.Mean, n: 1, sum: 200},
	})

	src := Open(filepath.Join("testdata", "malformed.jsonl"))
	src.MaxMalformedLines = 3
	st, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 16 || !equalInts(st.MalformedLines, []int64{2, 3, 4}) {
		t.Errorf("with MaxMalformedLines 3: %d %v, want 16 [2 3 4]", st.Malformed, st.MalformedLines)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStatsHugeLines(t *testing.T) {
	good := `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","latency_ms":100,"error":false}` + "\n"
	huge := `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","pad":"` + strings.Repeat("x", 3<<20) + `","latency_ms":1,"error":true}` + "\n"
	var b strings.Builder
	b.WriteString(good)
	b.WriteString(huge)
	b.WriteString(good)
	b.WriteString(huge[:len(huge)-1]) // a huge last line without newline
	path := filepath.Join(t.TempDir(), "huge.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	src := Open(path)
	src.MaxLineBytes = 1 << 20
	st, err := src.Stats(context.Background(), policy.Query{Rollout: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 2 || !equalInts(st.MalformedLines, []int64{2, 4}) {
		t.Errorf("Malformed = %d %v, want 2 [2 4]", st.Malformed, st.MalformedLines)
	}
	if e := st.Canary.Metrics[ErrorRate]; st.Canary.Requests != 2 || e.N != 2 || e.Sum != 0 {
		t.Errorf("canary = %d requests, error_rate %+v; want 2 requests, 0 of 2", st.Canary.Requests, e)
	}
}

func TestStatsErrors(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.jsonl.gz")
	full := gzipped(t, bytes.Repeat([]byte(`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary"}`+"\n"), 1000))
	if err := os.WriteFile(truncated, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	notGzip := filepath.Join(dir, "plain.jsonl.gz")
	if err := os.WriteFile(notGzip, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.jsonl")
	empty := filepath.Join(dir, "empty.jsonl.gz")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := Open(empty).Stats(context.Background(), policy.Query{Rollout: "r"}); err != nil || st.Canary.Requests != 0 {
		t.Errorf("empty file: %v, %v; want no records and no error", st, err)
	}
	// A file the application has not created yet is no data, not a failure.
	if _, err := Open(missing).Stats(context.Background(), policy.Query{Rollout: "r"}); !errors.Is(err, policy.ErrNoData) ||
		errors.Is(err, policy.ErrSourceUnavailable) || !strings.Contains(err.Error(), missing+" does not exist yet") {
		t.Errorf("missing file: err = %v, want ErrNoData naming the path", err)
	}
	tests := []struct {
		name, path string
	}{
		{"truncated gzip", truncated},
		{"gz name without gzip content", notGzip},
		{"a directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.path).Stats(context.Background(), policy.Query{Rollout: "r"})
			if !errors.Is(err, policy.ErrSourceUnavailable) {
				t.Fatalf("err = %v, want ErrSourceUnavailable", err)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("err = %q does not name %s", err, tt.path)
			}
		})
	}
	if _, err := Open(missing).Stats(context.Background(), policy.Query{}); !errors.Is(err, ErrNoRollout) {
		t.Errorf("empty query: err = %v, want ErrNoRollout", err)
	}
}

func TestStatsCancelled(t *testing.T) {
	var buf bytes.Buffer
	for range 10_000 {
		buf.WriteString(`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary"}` + "\n")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Source{}).Read(ctx, &buf, policy.Query{Rollout: "r"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path).Stats(ctx, policy.Query{Rollout: "r"})
	if !errors.Is(err, context.Canceled) || errors.Is(err, policy.ErrSourceUnavailable) {
		t.Fatalf("err = %v, want context.Canceled and not ErrSourceUnavailable", err)
	}
}
