package policy

import (
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// TODO(issue 3): placeholder until the judge lands; it only starts Pending rollouts and holds.

// Judge decides what to do with one rollout now, from its spec and the evidence of its current stage.
func Judge(spec *rollouts.Spec, ev Evidence, now time.Time) Decision {
	d := Decision{Rollout: spec.Name, Action: Hold, Current: Step{Weight: spec.Traffic.Weight, Shadow: spec.Traffic.Shadow}}
	if spec.Canary == nil {
		return d
	}
	st := spec.Status
	if st == nil || (st.Canary != "" && st.Canary != rollouts.Fingerprint(spec.Canary)) {
		s0 := spec.Stages[0]
		d.Action, d.Next = Start, &Step{Stage: 0, Weight: s0.Weight, Shadow: s0.Shadow}
		d.Reasons = []string{"new canary"}
		return d
	}
	d.Current.Stage = st.Stage
	return d
}

// QueryFor returns what the judge needs from the source for spec's current stage at now, and false when
// the rollout is not in a stage whose metrics matter (no canary, pending, paused, finished).
func QueryFor(spec *rollouts.Spec, now time.Time) (Query, bool) {
	st := spec.Status
	if spec.Canary == nil || st == nil || st.Phase != rollouts.Progressing || st.StageStartedAt.IsZero() {
		return Query{}, false
	}
	q := Query{Rollout: spec.Name, Window: Window{From: st.StageStartedAt, To: now}}
	for _, r := range spec.Analysis.Rules {
		q.Metrics = append(q.Metrics, MetricQuery{Name: r.Metric, Query: r.Query})
	}
	return q, true
}
