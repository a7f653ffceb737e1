package record

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
)

// The recorder writes attrs and pairwise verdicts as the JSONL source reads them.
func TestAttrsAndPreferredRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSONL(&buf)
	reqs := []Request{
		{Time: t0, Rollout: "r", Variant: Canary, Key: "u1", RequestID: "a", Attrs: map[string]string{"tenant": "acme", "language": "de"}},
		{Time: t0, Rollout: "r", Variant: Stable, Key: "u2", RequestID: "b", Attrs: map[string]string{"language": `"quoted"`}},
	}
	for _, r := range reqs {
		if err := j.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []Late{{Time: t0.Add(1), Rollout: "r", RequestID: "a", Preferred: PreferTie}, {Time: t0.Add(2), Rollout: "r", RequestID: "b", Preferred: PreferCanary}} {
		if err := j.RecordLate(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.RecordLate(Late{Time: t0, Rollout: "r", RequestID: "a", Preferred: "both"}); err == nil {
		t.Error("a verdict of neither arm nor a tie was recorded")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if want := `"attrs":{"language":"de","tenant":"acme"}}`; !strings.HasSuffix(lines[0], want) {
		t.Errorf("line 1 = %s, want it to end with %s (names sorted)", lines[0], want)
	}
	if want := `{"ts":"2026-04-16T10:00:00.000000001Z","rollout":"r","request_id":"a","preferred":"tie"}`; lines[2] != want {
		t.Errorf("line 3 = %s, want %s", lines[2], want)
	}
	q := policy.Query{Rollout: "r", Metrics: []policy.MetricQuery{{Name: "canary_win_rate"}}, Segments: []string{"language"},
		Filter: []policy.Attr{{Name: "language", Value: `"quoted"`}}}
	st, err := (&jsonl.Source{}).Read(context.Background(), bytes.NewReader(buf.Bytes()), q)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 0 || st.Stable.Requests != 1 || st.Canary.Requests != 0 {
		t.Fatalf("read back: %+v", st)
	}
	if w := st.Canary.Metrics["canary_win_rate"]; w.N != 1 || w.Sum != 1 {
		t.Errorf("win rate in the segment = %v/%d, want 1/1", w.Sum, w.N)
	}
}

// The collector labels every series with the attributes it was made with.
func TestMetricsAttrs(t *testing.T) {
	m := NewMetrics("language")
	if err := m.Record(Request{Rollout: "r", Variant: Canary, Error: true, Attrs: map[string]string{"language": "de"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordLate(Late{Rollout: "r", Variant: Canary, RequestID: "a", Feedback: new(-1), Attrs: map[string]string{"language": "de"}}); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(m.requests.WithLabelValues("r", Canary, "error", "de")); v != 1 {
		t.Errorf("llm_requests_total{language=de} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.feedback.WithLabelValues("r", Canary, "negative", "de")); v != 1 {
		t.Errorf("llm_feedback_total{language=de} = %v, want 1", v)
	}
	m.InitAttrs("r", map[string]string{"language": "fr"})
	if n := testutil.CollectAndCount(m, MetricRequests); n != 1+2*3 {
		t.Errorf("%d request series, want 7 (de's error, and fr's six at zero)", n)
	}
}

// An attribute or a rollout name that is not valid UTF-8 (a header passed on as is) is counted under
// the value the JSONL recorder writes for it, each bad byte a U+FFFD, instead of panicking in the
// application's request path as client_golang does for such a label value.
func TestMetricsInvalidUTF8(t *testing.T) {
	m := NewMetrics("language")
	attrs := map[string]string{"language": "d\xffe\xfe"}
	if err := m.Record(Request{Rollout: "r\xff", Variant: Canary, Latency: new(time.Second), Attrs: attrs}); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordLate(Late{Rollout: "r\xff", Variant: Canary, RequestID: "a", Quality: new(0.5), Feedback: new(1), Attrs: attrs}); err != nil {
		t.Fatal(err)
	}
	m.InitAttrs("r\xff", attrs)
	var buf bytes.Buffer
	j := NewJSONL(&buf)
	if err := j.Record(Request{Time: t0, Rollout: "r", Variant: Canary, Attrs: attrs}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	const written = "d\ufffde\ufffd"
	var line struct{ Attrs map[string]string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line.Attrs["language"] != written {
		t.Fatalf("the JSONL recorder wrote %s (%v), want the attribute as %q", buf.String(), err, written)
	}
	if v := testutil.ToFloat64(m.requests.WithLabelValues("r\ufffd", Canary, "ok", written)); v != 1 {
		t.Errorf("llm_requests_total{rollout=%q,language=%q} = %v, want 1", "r\ufffd", written, v)
	}
	if v := testutil.ToFloat64(m.feedback.WithLabelValues("r\ufffd", Canary, "positive", written)); v != 1 {
		t.Errorf("llm_feedback_total{language=%q} = %v, want 1", written, v)
	}
	if problems, err := testutil.CollectAndLint(m); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}
