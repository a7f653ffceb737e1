package record

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
)

// TestRecordLate writes requests and their late feedback, and reads them back with the file source:
// the late values attach to their requests, an unknown request_id is counted.
func TestRecordLate(t *testing.T) {
	var buf bytes.Buffer
	rec := NewJSONL(&buf)
	metrics := NewMetrics()
	obs := Multi(rec, metrics).(LateObserver)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rec.Record(Request{Time: t0, Rollout: "r", Variant: Canary, Key: "u-1", RequestID: "req-1"}))
	must(rec.Record(Request{Time: t0, Rollout: "r", Variant: Stable, Key: "u-2", RequestID: "req-2", Feedback: new(1)}))
	must(obs.RecordLate(Late{Time: t0.Add(time.Minute), Rollout: "r", RequestID: "req-1", Variant: Canary, Feedback: new(-1), Quality: new(0.4)}))
	must(obs.RecordLate(Late{Time: t0.Add(time.Minute), Rollout: "r", RequestID: "req-2", Variant: Stable, Feedback: new(-1)}))
	must(rec.RecordLate(Late{Time: t0.Add(time.Minute), Rollout: "r", RequestID: "gone", Quality: new(1.0)}))
	for _, bad := range []Late{
		{Time: t0, Rollout: "r", Feedback: new(1)},
		{Time: t0, Rollout: "r", RequestID: "x"},
		{Time: t0, RequestID: "x", Feedback: new(1)},
	} {
		if err := obs.RecordLate(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("RecordLate(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := metrics.RecordLate(Late{Time: t0, Rollout: "r", RequestID: "x", Feedback: new(1)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Prometheus late record without a variant: %v, want ErrInvalid", err)
	}
	must(rec.Flush())
	if !strings.Contains(buf.String(), `{"ts":"2026-04-16T10:01:00Z","rollout":"r","request_id":"req-1","quality":0.4,"feedback":-1}`) {
		t.Errorf("late line not as the contract has it:\n%s", buf.String())
	}
	st, err := (&jsonl.Source{}).Read(context.Background(), bytes.NewReader(buf.Bytes()), policy.Query{Rollout: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if f := st.Canary.Metrics[jsonl.NegativeFeedbackRate]; f.N != 1 || f.Sum != 1 {
		t.Errorf("canary feedback = %+v, want 1 negative of 1", f)
	}
	if f := st.Stable.Metrics[jsonl.NegativeFeedbackRate]; f.N != 1 || f.Sum != 1 {
		t.Errorf("stable feedback = %+v, want the late -1 replacing the +1", f)
	}
	if st.LateUnmatched != 1 || st.Malformed != 0 {
		t.Errorf("late unmatched %d, malformed %d; want 1, 0", st.LateUnmatched, st.Malformed)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	if v := testutil.ToFloat64(metrics.feedback.WithLabelValues("r", Canary, "negative")); v != 1 {
		t.Errorf("llm_feedback_total{canary,negative} = %v, want 1", v)
	}
	if n := testutil.CollectAndCount(metrics, MetricQuality); n != 1 {
		t.Errorf("%d llm_quality_score series, want 1", n)
	}
}
