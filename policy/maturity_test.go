package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// cutSource answers with feedback counts that tell which requests it read: 100 negative of 1,000 over
// every request, 10 of 500 over the requests up to a cut, which it honours unless ignoreCut.
type cutSource struct {
	ignoreCut bool
	failCut   bool
	late      int64 // Stats.LateRecords
	asked     []Query
}

func (s *cutSource) Stats(_ context.Context, q Query) (*Stats, error) {
	s.asked = append(s.asked, q)
	if !q.RequestsTo.IsZero() && s.failCut {
		return nil, ErrSourceUnavailable
	}
	n, neg := int64(1000), 100.0
	st := &Stats{LateRecords: s.late}
	if !q.RequestsTo.IsZero() && !s.ignoreCut {
		n, neg, st.RequestsTo = 500, 10, q.RequestsTo
	}
	for _, arm := range []Arm{Stable, Canary} {
		*st.Arm(arm) = ArmStats{Requests: 2000, Metrics: map[string]Sample{
			"negative_feedback_rate": {Kind: Proportion, N: n, Sum: neg},
			"error_rate":             {Kind: Proportion, N: 2000, Sum: 20},
		}}
	}
	return st, nil
}

func TestWithMaturity(t *testing.T) {
	start := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Hour)
	q := Query{Rollout: "r", Window: Window{From: start, To: now}, Metrics: []MetricQuery{
		{Name: "error_rate"}, {Name: "negative_feedback_rate", Maturity: 6 * time.Hour}}}

	src := &cutSource{late: 3}
	st, err := WithMaturity(src).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.asked) != 2 || !src.asked[1].RequestsTo.Equal(start.Add(4*time.Hour)) || len(src.asked[1].Metrics) != 1 {
		t.Fatalf("queries %+v, want the whole window, then feedback up to 04:00", src.asked)
	}
	if f, e := st.Canary.Metrics["negative_feedback_rate"], st.Canary.Metrics["error_rate"]; f.N != 500 || e.N != 2000 {
		t.Errorf("feedback over %d, errors over %d: want the matured 500 and the whole window's 2,000", f.N, e.N)
	}
	if m := st.Matured["negative_feedback_rate"]; !m.Applied || m.Maturity != rollouts.Duration(6*time.Hour) {
		t.Errorf("matured %+v", m)
	}
	out := judgeRule(rollouts.Rule{Metric: "negative_feedback_rate", MaxIncrease: ratio(0.5)}, st, errorBudget{fail: 0.05, pass: 0.2})
	if out.Matured == nil || !strings.Contains(out.Reason, "over requests up to 2026-04-16 04:00 UTC only: late values take up to 6h (maturity)") {
		t.Errorf("reason %q, matured %v", out.Reason, out.Matured)
	}

	// A source that cannot leave out the later requests: the whole window's, and the evidence says so.
	st, err = WithMaturity(&cutSource{ignoreCut: true, late: 3}).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if f := st.Canary.Metrics["negative_feedback_rate"]; f.N != 1000 || st.Matured["negative_feedback_rate"].Applied {
		t.Errorf("feedback over %d, matured %+v: want the whole window, not applied", f.N, st.Matured["negative_feedback_rate"])
	}
	out = judgeRule(rollouts.Rule{Metric: "negative_feedback_rate", MaxIncrease: ratio(0.5)}, st, errorBudget{fail: 0.05, pass: 0.2})
	if !strings.Contains(out.Reason, "maturity 6h not applied") {
		t.Errorf("reason %q", out.Reason)
	}

	// No request old enough yet: no data, and the source is not asked.
	early := q
	early.Window.To = start.Add(5 * time.Hour)
	src = &cutSource{late: 3}
	st, err = WithMaturity(src).Stats(context.Background(), early)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Canary.Metrics["negative_feedback_rate"]; ok || len(src.asked) != 1 {
		t.Errorf("5 h into the stage: feedback %+v after %d queries, want none after 1", st.Canary.Metrics, len(src.asked))
	}
	out = judgeRule(rollouts.Rule{Metric: "negative_feedback_rate", MaxIncrease: ratio(0.5)}, st, errorBudget{fail: 0.05, pass: 0.2})
	if out.Verdict != Inconclusive || !strings.Contains(out.Reason, "no data for either arm (over requests up to") {
		t.Errorf("verdict %s, reason %q", out.Verdict, out.Reason)
	}

	// A default maturity where the source attached no late record: every value came with its
	// request, so the whole window is read, with no second query; the rule's own maturity applies
	// whatever the source saw.
	def := q
	def.Metrics = []MetricQuery{{Name: "negative_feedback_rate", Maturity: 6 * time.Hour, DefaultMaturity: true}}
	src = &cutSource{}
	st, err = WithMaturity(src).Stats(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	if f := st.Canary.Metrics["negative_feedback_rate"]; f.N != 1000 || len(src.asked) != 1 || st.Matured != nil {
		t.Errorf("no late records, default maturity: feedback over %d after %d queries, matured %v; want the whole window, 1, none", f.N, len(src.asked), st.Matured)
	}
	src = &cutSource{}
	if st, err = WithMaturity(src).Stats(context.Background(), q); err != nil || st.Canary.Metrics["negative_feedback_rate"].N != 500 {
		t.Errorf("no late records, the rule's maturity: %v, %+v; want the matured 500", err, st)
	}

	// A failing matured query fails the answer: a metrics outage never advances.
	if _, err := WithMaturity(&cutSource{failCut: true, late: 3}).Stats(context.Background(), q); !errors.Is(err, ErrSourceUnavailable) {
		t.Errorf("err = %v, want ErrSourceUnavailable", err)
	}
}
