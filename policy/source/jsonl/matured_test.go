package jsonl

import (
	"context"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestMaturedRequests: a query with RequestsTo reads only the requests up to it, with every late
// record up to the window's end, as the generator's truth counts them; through policy.WithMaturity
// the late metrics of a rule with a maturity window come from those requests and the others from the
// whole window.
func TestMaturedRequests(t *testing.T) {
	race.Skip(t, race.Slow)
	path, reqs, q := simulatedFile(t)
	src := &Source{Path: path}
	cut := q.Window.To.Add(-3 * time.Hour)
	mq := q
	mq.RequestsTo = cut
	got, err := src.Stats(context.Background(), mq)
	if err != nil {
		t.Fatal(err)
	}
	want := synth.ExpectedFor(reqs, mq)
	for _, d := range synth.DiffClusters(want, got, 1e-9) {
		t.Error(d)
	}
	if got.Canary.Requests != want.Canary.Requests || got.Stable.Requests != want.Stable.Requests {
		t.Errorf("requests %d, %d; want %d, %d", got.Stable.Requests, got.Canary.Requests, want.Stable.Requests, want.Canary.Requests)
	}
	if !got.RequestsTo.Equal(cut) || got.LateUnmatched != 0 || got.LateRecords == 0 {
		t.Errorf("RequestsTo %s, late unmatched %d; want %s (honoured), 0 (a late record of a later request is not unmatched); late records %d (> 0)", got.RequestsTo, got.LateUnmatched, cut, got.LateRecords)
	}
	whole := synth.ExpectedFor(reqs, q)
	if got.Canary.Requests >= whole.Canary.Requests {
		t.Errorf("matured canary requests %d, whole window %d: want fewer", got.Canary.Requests, whole.Canary.Requests)
	}

	three := rollouts.Duration(3 * time.Hour)
	q.Metrics = []policy.MetricQuery{{Name: ErrorRate}, {Name: NegativeFeedbackRate, Maturity: time.Duration(three)}}
	st, err := policy.WithMaturity(src).Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := st.Canary.Metrics[NegativeFeedbackRate], want.Canary.Metrics[NegativeFeedbackRate]; g.N != w.N || g.Sum != w.Sum {
		t.Errorf("matured canary feedback %d/%d, want %d/%d", int64(g.Sum), g.N, int64(w.Sum), w.N)
	}
	if g, w := st.Canary.Metrics[ErrorRate], whole.Canary.Metrics[ErrorRate]; g.N != w.N {
		t.Errorf("canary error_rate over %d requests, want the whole window's %d", g.N, w.N)
	}
	if m := st.Matured[NegativeFeedbackRate]; m.Maturity != three || !m.RequestsTo.Equal(cut) || !m.Applied {
		t.Errorf("matured %+v, want 3h up to %s, applied", m, cut)
	}
}
