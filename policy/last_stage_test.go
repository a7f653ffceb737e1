package policy

import (
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// TestLastStageAtFullWeight: at 100% the stable arm has no traffic, so relative limits cannot hold the
// stage; absolute limits are still judged and a failing one still rolls back.
func TestLastStageAtFullWeight(t *testing.T) {
	atFull := func(rules ...rollouts.Rule) *rollouts.Spec {
		s := baseSpec()
		s.Traffic.Weight = 100
		s.Status.Stage = len(s.Stages) - 1
		s.Analysis.Rules = append(s.Analysis.Rules, rules...)
		return s
	}
	now := t0.Add(25 * time.Hour)
	for _, tc := range []struct {
		name   string
		spec   *rollouts.Spec
		canary ArmStats
		want   Action
	}{
		{"relative rules only: promote", atFull(), armOf(20000, 200, 0.87, 0.1), Promote},
		{"absolute limit within: promote", atFull(rollouts.Rule{Metric: "error_rate", Max: f64(0.05)}), armOf(20000, 200, 0.87, 0.1), Promote},
		{"absolute limit broken: rollback", atFull(rollouts.Rule{Metric: "error_rate", Max: f64(0.05)}), armOf(20000, 4000, 0.87, 0.1), Rollback},
		{"too early: hold", func() *rollouts.Spec { s := atFull(); s.Status.StageStartedAt = now.Add(-time.Hour); return s }(),
			armOf(20000, 200, 0.87, 0.1), Hold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Judge(tc.spec, Evidence{Stats: &Stats{Stable: ArmStats{Metrics: map[string]Sample{}}, Canary: tc.canary}}, now)
			if d.Action != tc.want {
				t.Errorf("decision %s, want %s: %v", d.Action, tc.want, d.Reasons)
			}
			if len(d.Metrics) != len(tc.spec.Analysis.Rules) {
				t.Errorf("%d rule results for %d rules", len(d.Metrics), len(tc.spec.Analysis.Rules))
			}
		})
	}
}
