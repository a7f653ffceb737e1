package record

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var t0 = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)

func TestAppendJSONGolden(t *testing.T) {
	requests := []Request{
		{Time: t0, Rollout: "summarizer", Variant: Stable, Key: "u-1842", Model: "claude-sonnet-4-5-20260301", Prompt: "v3",
			Latency: new(812 * time.Millisecond), InputTokens: new(int64(1200)), OutputTokens: new(int64(300)),
			CostUSD: new(0.0042), Quality: new(0.87), Feedback: new(1)},
		{Time: t0.Add(1500 * time.Microsecond).In(time.FixedZone("CEST", 2*3600)), Rollout: "summarizer", Variant: Canary,
			Shadow: true, Latency: new(time.Duration(1234567)), Error: true, Quality: new(0.0), Feedback: new(0)},
		{Time: t0, Rollout: "summarizer", Variant: Canary, Refusal: true, Key: "quote\" backslash\\ newline\n tab\t nul\x00 bad\xff é \u2028"},
	}
	var got []byte
	for i := range requests {
		got = AppendJSON(got, &requests[i])
	}
	golden := filepath.Join("testdata", "records.jsonl")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("records differ from %s (run with -update to accept):\n%s", golden, got)
	}
	// The source reads back what the recorder writes, field for field.
	st, err := (&jsonl.Source{}).Read(context.Background(), bytes.NewReader(got), policy.Query{Rollout: "summarizer"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 0 || st.Stable.Requests != 1 || st.Canary.Requests != 2 || st.Shadow != 1 {
		t.Fatalf("read back: %+v", st)
	}
	if q := st.Canary.Metrics[jsonl.QualityScore]; q.N != 1 || q.Sum != 0 {
		t.Errorf("canary quality = %+v, want one score of 0", q)
	}
	if l := st.Canary.Metrics[jsonl.LatencyMeanMs]; l.N != 1 || l.Sum != 1.234567 {
		t.Errorf("canary latency = %+v, want 1.234567 ms", l)
	}
}

func TestValidate(t *testing.T) {
	ok := Request{Time: t0, Rollout: "r", Variant: Canary}
	tests := []struct {
		name   string
		edit   func(*Request)
		clock  bool
		wantOK bool
	}{
		{"minimal", func(*Request) {}, false, true},
		{"no time with a clock", func(r *Request) { r.Time = time.Time{} }, true, true},
		{"no time without a clock", func(r *Request) { r.Time = time.Time{} }, false, false},
		{"no rollout", func(r *Request) { r.Rollout = "" }, false, false},
		{"unknown variant", func(r *Request) { r.Variant = "blue" }, false, false},
		{"stable shadow", func(r *Request) { r.Variant, r.Shadow = Stable, true }, false, false},
		{"negative latency", func(r *Request) { r.Latency = new(-time.Second) }, false, false},
		{"negative tokens", func(r *Request) { r.OutputTokens = new(int64(-1)) }, false, false},
		{"NaN cost", func(r *Request) { r.CostUSD = new(math.NaN()) }, false, false},
		{"infinite cost", func(r *Request) { r.CostUSD = new(math.Inf(1)) }, false, false},
		{"NaN quality", func(r *Request) { r.Quality = new(math.NaN()) }, false, false},
		{"negative quality is a score", func(r *Request) { r.Quality = new(-0.5) }, false, true},
		// A record's ts has four-digit years: a time past them would be written and read back as malformed.
		{"the year 9999", func(r *Request) { r.Time = time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC) }, false, true},
		{"the year 10000", func(r *Request) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false, false},
		{"a year before 0", func(r *Request) { r.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			err := r.Validate(tt.clock)
			if (err == nil) != tt.wantOK || err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate = %v, want ok %v", err, tt.wantOK)
			}
		})
	}
}

// randomRequest is a request of a simulated application; about 3% errors on the canary, 1% on stable.
func randomRequest(r *rand.Rand, i int) Request {
	req := Request{Time: t0.Add(time.Duration(i) * time.Millisecond), Rollout: "summarizer", Variant: Stable, Key: fmt.Sprintf("u-%d", r.Intn(100))}
	errRate := 0.01
	if i == 0 || r.Intn(4) == 0 { // the first request is a canary one: both arms are read from it on
		req.Variant, errRate = Canary, 0.03
		req.Shadow = r.Intn(3) == 0
	}
	req.Error = r.Float64() < errRate
	req.Refusal = !req.Error && r.Float64() < 0.02
	req.Latency = new(time.Duration(r.ExpFloat64() * float64(800*time.Millisecond)))
	req.InputTokens = new(int64(r.Intn(2000)))
	req.OutputTokens = new(int64(r.Intn(500)))
	req.CostUSD = new(r.Float64() / 100)
	if r.Intn(5) == 0 {
		req.Quality = new(r.Float64())
	}
	if r.Intn(10) == 0 {
		req.Feedback = new(r.Intn(3) - 1)
	}
	return req
}

// tally is what a set of requests must give, computed the obvious way.
type tally struct {
	requests, errors, shadow, quality, feedbackNeg, feedback int64
	latencyMs, cost                                          float64
}

func (t *tally) add(r Request) {
	t.requests++
	if r.Error {
		t.errors++
	}
	if r.Shadow {
		t.shadow++
	}
	if r.Quality != nil {
		t.quality++
	}
	if r.Feedback != nil {
		t.feedback++
		if *r.Feedback < 0 {
			t.feedbackNeg++
		}
	}
	t.latencyMs += float64(*r.Latency) / float64(time.Millisecond)
	t.cost += *r.CostUSD
}

func TestJSONLConcurrentRoundTrip(t *testing.T) {
	const workers, perWorker = 8, 500
	path := filepath.Join(t.TempDir(), "traffic.jsonl")
	rec, err := OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		want [2]tally
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewSource(int64(w)))
			for i := range perWorker {
				req := randomRequest(r, w*perWorker+i)
				if err := rec.Record(req); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[b2i(req.Variant == Canary)].add(req)
				mu.Unlock()
				if i%100 == 0 {
					if err := rec.Flush(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(Request{Time: t0, Rollout: "r", Variant: Stable}); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}

	st, err := jsonl.Open(path).Stats(context.Background(), policy.Query{Rollout: "summarizer"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 0 || st.Stable.Requests+st.Canary.Requests != workers*perWorker || st.Shadow != want[1].shadow {
		t.Fatalf("read back %d+%d requests, %d malformed, %d shadow; want %d, 0, %d",
			st.Stable.Requests, st.Canary.Requests, st.Malformed, st.Shadow, workers*perWorker, want[1].shadow)
	}
	for i, arm := range []policy.ArmStats{st.Stable, st.Canary} {
		w := want[i]
		m := arm.Metrics
		if arm.Requests != w.requests || m[jsonl.ErrorRate].Sum != float64(w.errors) || m[jsonl.ErrorRate].N != w.requests ||
			m[jsonl.QualityScore].N != w.quality || m[jsonl.NegativeFeedbackRate].N != w.feedback ||
			m[jsonl.NegativeFeedbackRate].Sum != float64(w.feedbackNeg) ||
			!near(m[jsonl.LatencyMeanMs].Sum, w.latencyMs) || !near(m[jsonl.CostPerRequest].Sum, w.cost) {
			t.Errorf("arm %d: read back %+v, want %+v", i, arm, w)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

type failingWriter struct{ writes int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, errors.New("disk full")
}

func TestJSONLErrors(t *testing.T) {
	fw := &failingWriter{}
	rec := NewJSONL(fw)
	big := strings.Repeat("k", 70<<10) // larger than the buffer, so the write reaches the writer
	err := rec.Record(Request{Time: t0, Rollout: "r", Variant: Stable, Key: big})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Record = %v, want the write error", err)
	}
	if err2 := rec.Record(Request{Time: t0, Rollout: "r", Variant: Stable}); !errors.Is(err2, err) && err2.Error() != err.Error() {
		t.Errorf("second Record = %v, want the first write error again", err2)
	}

	var buf bytes.Buffer
	rec = NewJSONL(&buf)
	if err := rec.Record(Request{Rollout: "r", Variant: Stable}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Record without time or clock = %v, want ErrInvalid", err)
	}
	rec.Now = func() time.Time { return t0 }
	if err := rec.Record(Request{Rollout: "r", Variant: Stable}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if want := `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"stable","error":false,"refusal":false}` + "\n"; buf.String() != want {
		t.Errorf("wrote %q, want %q", buf.String(), want)
	}
	if err := rec.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, err := OpenJSONL(filepath.Join(t.TempDir(), "missing-dir", "x.jsonl")); err == nil {
		t.Error("OpenJSONL in a missing directory: no error")
	}
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	requests := []Request{
		{Rollout: "summarizer", Variant: Stable, Latency: new(500 * time.Millisecond), CostUSD: new(0.002),
			InputTokens: new(int64(1000)), OutputTokens: new(int64(200)), Quality: new(0.9), Feedback: new(1)},
		{Rollout: "summarizer", Variant: Stable, Error: true, Refusal: true, Latency: new(2 * time.Second)},
		{Rollout: "summarizer", Variant: Canary, Refusal: true, Feedback: new(-1), Quality: new(0.0)},
		{Rollout: "summarizer", Variant: Canary, Shadow: true, Feedback: new(0), Latency: new(time.Second)},
	}
	for _, r := range requests {
		if err := m.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Record(Request{Rollout: "summarizer", Variant: "blue", Latency: new(time.Second)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid request: %v, want ErrInvalid", err)
	}
	const counters = `
# HELP llm_feedback_total User feedback on LLM responses by value (positive, neutral or negative).
# TYPE llm_feedback_total counter
llm_feedback_total{rollout="summarizer",value="negative",variant="canary"} 1
llm_feedback_total{rollout="summarizer",value="neutral",variant="canary"} 1
llm_feedback_total{rollout="summarizer",value="positive",variant="stable"} 1
# HELP llm_requests_total LLM requests by rollout, variant and outcome (ok, error or refusal).
# TYPE llm_requests_total counter
llm_requests_total{outcome="error",rollout="summarizer",variant="stable"} 1
llm_requests_total{outcome="ok",rollout="summarizer",variant="canary"} 1
llm_requests_total{outcome="ok",rollout="summarizer",variant="stable"} 1
llm_requests_total{outcome="refusal",rollout="summarizer",variant="canary"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(counters), MetricRequests, MetricFeedback); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ name, labels string }
	got := map[key][2]float64{} // count, sum
	for _, f := range families {
		for _, s := range f.GetMetric() {
			if h := s.GetHistogram(); h != nil {
				var labels []string
				for _, l := range s.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				got[key{f.GetName(), strings.Join(labels, ",")}] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
			}
		}
	}
	want := map[key][2]float64{
		{MetricDuration, "rollout=summarizer,variant=stable"}:                {2, 2.5},
		{MetricDuration, "rollout=summarizer,variant=canary"}:                {1, 1},
		{MetricCost, "rollout=summarizer,variant=stable"}:                    {1, 0.002},
		{MetricTokens, "direction=input,rollout=summarizer,variant=stable"}:  {1, 1000},
		{MetricTokens, "direction=output,rollout=summarizer,variant=stable"}: {1, 200},
		{MetricQuality, "rollout=summarizer,variant=stable"}:                 {1, 0.9},
		{MetricQuality, "rollout=summarizer,variant=canary"}:                 {1, 0},
	}
	if len(got) != len(want) {
		t.Errorf("histograms = %v, want %v", got, want)
	}
	for k, w := range want {
		if g := got[k]; g[0] != w[0] || !near(g[1], w[1]) {
			t.Errorf("%s{%s} count, sum = %v, want %v", k.name, k.labels, g, w)
		}
	}
}

func TestBucketsAscend(t *testing.T) {
	for name, b := range map[string][]float64{"duration": DurationBuckets, "cost": CostBuckets, "tokens": TokenBuckets, "quality": QualityBuckets} {
		for i := 1; i < len(b); i++ {
			if !(b[i] > b[i-1]) {
				t.Errorf("%s buckets not ascending at %d: %v", name, i, b)
			}
		}
	}
	if DurationBuckets[0] > 0.01 || DurationBuckets[len(DurationBuckets)-1] < 300 {
		t.Errorf("duration buckets %v do not span 10ms..5min", DurationBuckets)
	}
}

func TestMulti(t *testing.T) {
	var buf bytes.Buffer
	file := NewJSONL(&buf)
	metrics := NewMetrics()
	obs := Multi(file, metrics)
	if err := obs.Record(Request{Time: t0, Rollout: "r", Variant: Canary, Error: true, Latency: new(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := obs.Record(Request{Time: t0, Rollout: "r", Variant: "blue"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid: %v", err)
	}
	if err := file.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("file has %d records, want 1", n)
	}
	if v := testutil.ToFloat64(metrics.requests.WithLabelValues("r", Canary, "error")); v != 1 {
		t.Errorf("error counter = %v, want 1", v)
	}
	if n := testutil.CollectAndCount(metrics, MetricRequests); n != 1 {
		t.Errorf("%d request series, want 1", n)
	}
	// Without a Time, and a file recorder without a clock: refused whole, not counted by Prometheus
	// alone, so that the two sources never disagree on what was recorded.
	if err := obs.Record(Request{Rollout: "r", Variant: Canary, Error: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no time, no clock: %v, want ErrInvalid", err)
	}
	if err := obs.(LateObserver).RecordLate(Late{Rollout: "r", Variant: Canary, RequestID: "a", Feedback: new(-1)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("late, no time, no clock: %v, want ErrInvalid", err)
	}
	if err := obs.(LateObserver).RecordLate(Late{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Rollout: "r", Variant: Canary, RequestID: "a", Feedback: new(-1)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("late in the year 10000: %v, want ErrInvalid", err)
	}
	if v := testutil.ToFloat64(metrics.requests.WithLabelValues("r", Canary, "error")); v != 1 {
		t.Errorf("error counter = %v after a request the file refused, want 1", v)
	}
	if n := testutil.CollectAndCount(metrics, MetricFeedback); n != 0 {
		t.Errorf("%d feedback series after late feedback the file refused, want 0", n)
	}
	file.Now = func() time.Time { return t0 }
	if err := obs.Record(Request{Rollout: "r", Variant: Canary}); err != nil {
		t.Errorf("no time, with a clock: %v", err)
	}
}

func BenchmarkRecord(b *testing.B) {
	req := randomRequest(rand.New(rand.NewSource(1)), 0)
	b.Run("jsonl", func(b *testing.B) {
		rec := NewJSONL(io.Discard)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := rec.Record(req); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("prometheus", func(b *testing.B) {
		m := NewMetrics()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := m.Record(req); err != nil {
					b.Error(err)
				}
			}
		})
	})
}

// lineWriter fails the test when a write does not end a line.
type lineWriter struct {
	t      *testing.T
	writes int
	bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.writes++
	if len(p) == 0 || p[len(p)-1] != '\n' {
		w.t.Errorf("write %d of %d bytes does not end a line", w.writes, len(p))
	}
	return w.Buffer.Write(p)
}

func TestJSONLWritesWholeLines(t *testing.T) {
	w := &lineWriter{t: t}
	rec := NewJSONL(w)
	r := rand.New(rand.NewSource(9))
	for i := range 5000 {
		req := randomRequest(r, i)
		if i%1000 == 0 {
			req.Key = strings.Repeat("x", 100<<10) // a record larger than the buffer
		}
		if err := rec.Record(req); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if w.writes < 10 || strings.Count(w.String(), "\n") != 5000 {
		t.Errorf("%d writes, %d lines; want many writes and 5000 lines", w.writes, strings.Count(w.String(), "\n"))
	}
}

// Init makes every series exist at zero before the first request, so that increase() over a window
// counts that first request.
func TestMetricsInit(t *testing.T) {
	metrics := NewMetrics()
	metrics.Init("summarizer")
	for name, want := range map[string]int{
		MetricRequests: 2 * 3, // variants × outcomes
		MetricFeedback: 2 * 3, // variants × values
	} {
		if n := testutil.CollectAndCount(metrics, name); n != want {
			t.Errorf("%s: %d series after Init, want %d", name, n, want)
		}
	}
	if v := testutil.ToFloat64(metrics.requests.WithLabelValues("summarizer", Canary, "ok")); v != 0 {
		t.Errorf("canary ok requests after Init = %v, want 0", v)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint after Init: %v %v", problems, err)
	}
}
