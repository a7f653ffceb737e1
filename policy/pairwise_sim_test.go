package policy_test

import (
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// The pairwise simulations of issue 25: a judge compares the canary's answer with stable's for the
// same input on shadow traffic (users never see the canary) and records which it prefers, late. A
// canary that loses 40/60 must be held or rolled back, a 50/50 one must advance, under the rule
// {metric: canary_win_rate, min: 45%}. The records go through the JSON Lines source, as the
// application's recorder writes them.

// pairwiseSpec is a shadow stage (100% mirrored, minDuration 4 h) judged on the canary's win rate.
func pairwiseSpec() *rollouts.Spec {
	canary := &rollouts.Variant{Model: "m-canary"}
	minWin := 0.45
	return &rollouts.Spec{
		Name: "pair", Stable: rollouts.Variant{Model: "m-stable"}, Canary: canary,
		Traffic: rollouts.Traffic{Weight: 0, Shadow: 100},
		Stages: []rollouts.Stage{
			{Shadow: 100, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 5}, {Weight: 100},
		},
		Analysis: rollouts.Analysis{Confidence: 0.95, Rules: []rollouts.Rule{{Metric: "canary_win_rate", Min: &minWin}}},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 0, StageStartedAt: trafficStart,
			Canary: rollouts.Fingerprint(canary)},
	}
}

// pairwiseRun simulates a day of shadow traffic whose canary wins winRate of the judged pairs (a
// tenth of them ties), and judges it every hour until it advances or rolls back.
func pairwiseRun(t *testing.T, seed uint64, winRate float64) policy.Decision {
	spec := pairwiseSpec()
	canary := errorProfile("m-canary", 0.01)
	canary.PairwiseShare, canary.TieRate, canary.WinRate, canary.PairwiseDelay = 0.3, 0.1, winRate-0.05, 10*time.Minute
	opts := synth.Options{Seed: seed, From: trafficStart, To: trafficStart.Add(24 * time.Hour), PerHour: 600, Users: 2000,
		Activity: 1, Stable: errorProfile("m-stable", 0.01), Canary: canary}
	d, _ := judgeTraffic(t, spec, opts, 24)
	return d
}

func TestPairwiseWinRate(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	if testing.Short() {
		t.Skip("simulation")
	}
	runs := simRuns(t)
	for _, c := range []struct {
		name    string
		winRate float64 // the canary's share of the pairs, a tie counting half
		advance bool
	}{{"40/60", 0.40, false}, {"50/50", 0.50, true}} {
		var advanced, rolledBack int
		var hours []float64
		for seed := range uint64(runs) {
			d := pairwiseRun(t, 2700+seed, c.winRate)
			switch d.Action {
			case policy.Advance:
				advanced++
			case policy.Rollback:
				rolledBack++
			}
			if d.Window != nil {
				hours = append(hours, d.Window.To.Sub(trafficStart).Hours())
			}
			if seed == 0 {
				t.Logf("%s seed 0: %s %q", c.name, d.Action, d.Reasons)
			}
		}
		t.Logf("canary winning %s of pairwise judgments on shadow traffic: advanced %s, rolled back %s, held %s (median %.0f h)",
			c.name, rate(advanced, runs), rate(rolledBack, runs), rate(runs-advanced-rolledBack, runs), median(hours))
		switch {
		case c.advance && advanced < runs*95/100:
			t.Errorf("%s: advanced %s, want ≥ 95%%", c.name, rate(advanced, runs))
		case !c.advance && advanced > runs*5/100:
			t.Errorf("%s: advanced %s, want ≤ 5%% (held or rolled back)", c.name, rate(advanced, runs))
		}
	}
}
