package policy_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// The cost simulation of issue 25: a canary whose cost per request is twice stable's must trip
// {metric: projected_extra_cost_per_day, max: 150} at the stage where the projection at the next
// stage's weight crosses $150 a day. At 2,000 requests an hour and $0.0072 a request, the extra is
// about $346 a day at 100%: $86 at 25% (below the limit: stage 0 at 5% advances) and $173 at 50%
// (above it: stage 1 at 25% rolls back). A canary that costs the same passes every stage.

// costSpec is a rollout through 5%, 25%, 50% and 100%, judged on the projected extra cost only.
func costSpec() *rollouts.Spec {
	canary := &rollouts.Variant{Model: "m-canary"}
	maxCost := 150.0
	return &rollouts.Spec{
		Name: "cost", Stable: rollouts.Variant{Model: "m-stable"}, Canary: canary,
		Stages: []rollouts.Stage{
			{Weight: 5, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 25, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 50, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 100},
		},
		Analysis: rollouts.Analysis{Confidence: 0.95, Rules: []rollouts.Rule{{Metric: policy.ProjectedCostMetric, Max: &maxCost}}},
		Status:   &rollouts.Status{Phase: rollouts.Progressing, Canary: rollouts.Fingerprint(canary)},
	}
}

// costRun plays the rollout stage by stage (12 hours at most each, hourly ticks, through the JSON Lines
// source) and returns the stage it was rolled back at (-1: never) and the last decision.
func costRun(t *testing.T, seed uint64, costFactor float64) (int, policy.Decision) {
	spec := costSpec()
	stable := synth.DefaultProfile("m-stable")
	canary := synth.DefaultProfile("m-canary")
	canary.CostPerToken *= costFactor
	start := trafficStart
	var d policy.Decision
	for stage := 0; stage < len(spec.Stages)-1; stage++ {
		spec.Traffic.Weight = spec.Stages[stage].Weight
		spec.Status.Stage, spec.Status.StageStartedAt = stage, start
		opts := synth.Options{Seed: seed, Span: uint64(stage), From: start, To: start.Add(12 * time.Hour), PerHour: 2000,
			Users: 4000, Activity: 1, Stable: stable, Canary: canary}
		var now time.Time
		d, now = judgeTraffic(t, spec, opts, 12)
		switch d.Action {
		case policy.Rollback:
			return stage, d
		case policy.Advance:
			start = now
		default:
			return -1, d
		}
	}
	return -1, d
}

func TestCostProjectionTripsAtTheCrossingStage(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	if testing.Short() {
		t.Skip("simulation")
	}
	runs := simRuns(t)
	var atCrossing, elsewhere, sameCostRolledBack int
	for seed := range uint64(runs) {
		stage, d := costRun(t, 2800+seed, 2)
		switch stage {
		case 1:
			atCrossing++
		default:
			elsewhere++
			t.Logf("seed %d: 2× cost ended at stage %d: %s %q", 2800+seed, stage, d.Action, d.Reasons)
		}
		if seed == 0 {
			t.Logf("seed 0: %q; projection %+v", d.Reasons, d.Cost)
			if !strings.Contains(strings.Join(d.Reasons, " "), "projected extra cost per day at 50%") {
				t.Errorf("the rollback's reason does not name the projection at the next stage: %q", d.Reasons)
			}
		}
		if stage, d := costRun(t, 2900+seed, 1); stage >= 0 {
			sameCostRolledBack++
			t.Logf("seed %d: same cost rolled back at stage %d: %q", 2900+seed, stage, d.Reasons)
		}
	}
	t.Logf("2× cost, limit $150/day (≈ $86 at 25%%, $173 at 50%%): rolled back at the 25%% stage in %s (elsewhere %s); same cost rolled back in %s",
		rate(atCrossing, runs), rate(elsewhere, runs), rate(sameCostRolledBack, runs))
	if atCrossing < runs*95/100 {
		t.Errorf("rolled back at the crossing stage in %s, want ≥ 95%%", rate(atCrossing, runs))
	}
	if sameCostRolledBack > runs*5/100 {
		t.Errorf("a canary of the same cost rolled back in %s, want ≤ 5%%", rate(sameCostRolledBack, runs))
	}
}

// cost_per_day, the first name for the metric, is judged the same way.
func TestCostPerDayAlias(t *testing.T) {
	spec := costSpec()
	spec.Analysis.Rules[0].Metric = "cost_per_day"
	spec.Traffic.Weight, spec.Status.Stage, spec.Status.StageStartedAt = 25, 1, trafficStart
	canary := synth.DefaultProfile("m-canary")
	canary.CostPerToken *= 2
	var buf bytes.Buffer
	opts := synth.Options{Seed: 7, From: trafficStart, To: trafficStart.Add(8 * time.Hour), PerHour: 2000, Users: 4000,
		Stable: synth.DefaultProfile("m-stable"), Canary: canary}
	if err := synth.WriteJSONL(&buf, spec, opts); err != nil {
		t.Fatal(err)
	}
	now := opts.To
	q, _ := policy.QueryFor(spec, now)
	st, err := (&jsonl.Source{}).Read(context.Background(), bytes.NewReader(buf.Bytes()), q)
	if err != nil {
		t.Fatal(err)
	}
	if d := policy.Judge(spec, policy.Evidence{Stats: st}, now); d.Action != policy.Rollback || !strings.Contains(d.Reasons[0], "at 50%") {
		t.Errorf("cost_per_day: %s %q, want a rollback on the projection at 50%%", d.Action, d.Reasons)
	}
}
