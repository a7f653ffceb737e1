package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

func armIndex(canary bool) int {
	if canary {
		return 1
	}
	return 0
}

// maturedTicks plays spec under opts into src, the judge reading src through policy.WithMaturity on
// every 15-minute tick; decided sees each decision and ends the play by returning true.
func maturedTicks(t testing.TB, spec *rollouts.Spec, opts synth.Options, src *multiSource,
	decided func(now time.Time, d policy.Decision) bool) {
	t.Helper()
	judged := policy.WithMaturity(src)
	simulateTicks(t, spec, opts, src.add, func(now time.Time) bool {
		q, ok := policy.QueryFor(spec, now)
		if !ok {
			t.Fatal("no query")
		}
		st, err := judged.Stats(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		return decided(now, policy.Judge(spec, policy.Evidence{Stats: st}, now))
	})
}

// feedbackStage plays one stage of spec under opts, the judge reading the feedback through
// policy.WithMaturity on every 15-minute tick, until it advances or rolls back.
func feedbackStage(t testing.TB, spec *rollouts.Spec, opts synth.Options) policy.Action {
	t.Helper()
	src := newMultiSource()
	action := policy.Hold
	maturedTicks(t, spec, opts, src, func(_ time.Time, d policy.Decision) bool {
		if d.Action == policy.Advance || d.Action == policy.Rollback {
			action = d.Action
			return true
		}
		return false
	})
	return action
}

// feedbackProfile is an arm whose users give feedback on half their answers, negative at the given
// rate (no neutral thumbs), every thumb arriving late: positive ones after a mean of late, negative ones
// after a tenth of it (unhappy users are quicker).
func feedbackProfile(model string, negative float64, late time.Duration) synth.Profile {
	p := synth.DefaultProfile(model)
	p.FeedbackShare, p.NegativeRate, p.NeutralRate, p.QualityShare = 0.5, negative, 0, 0
	p.LateDelay, p.NegativeLateDelay = late, late/10
	return p
}

// feedbackRun counts, over the runs, how often a stage of a rollout judged on negative_feedback_rate
// at maxIncrease limit advanced and rolled back, with the rule's maturity window set to maturity
// (nil: the default).
func feedbackRun(t *testing.T, runs int, limit float64, maturity *rollouts.Duration, stable, canary synth.Profile) (advanced, rolledBack int) {
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "negative_feedback_rate", MaxIncrease: maxIncrease(limit), Maturity: maturity})
		spec.Traffic.Weight, spec.Stages[0].Weight = 50, 50
		spec.Stages[0].MinDuration = rollouts.Duration(2 * time.Hour)
		opts := synth.Options{Seed: uint64(400 + seed), From: trafficStart, To: trafficStart.Add(36 * time.Hour),
			PerHour: 4000, Users: 4000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
			LateFeedback: 1, Stable: stable, Canary: canary}
		switch feedbackStage(t, spec, opts) {
		case policy.Advance:
			advanced++
		case policy.Rollback:
			rolledBack++
		}
	}
	return advanced, rolledBack
}

// TestLateFeedbackMaturity (issue 23, item 2): thumbs arrive late, negative ones first, and one arm's
// later than the other's. Judged over every request so far, the arm whose positive thumbs are slower
// looks worse than it is. Judged over requests older than the maturity window (the default 6 h for
// negative_feedback_rate, which these delays stay well inside), both arms are compared on complete
// requests. Two scenarios at a 50% stage (minDuration 2 h), 2,000 requests an hour an arm, thumbs on
// half the answers, negative ones after a tenth of the positive ones' delay:
//   - identical arms (20% negative), the canary's thumbs 2× later (positive after a mean of 1 h on
//     stable, 2 h on the canary), +10% limit: target ≤ 5% false rollbacks. Before (maturity: 0s, the
//     judge before): 21 of 40 rolled back; after: 0 of 40;
//   - a canary 50% worse (30% negative against 20%) whose thumbs come 2× sooner (1 h against 2 h),
//     +25% limit: target ≤ 10% advanced. Before: 23 of 40 advanced; after: 0 of 40 (all rolled back).
func TestLateFeedbackMaturity(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := trafficRuns(t)
	before := measureBefore() // the rates without the window
	off := rollouts.Duration(0)
	stable := feedbackProfile("m-stable", 0.2, time.Hour)
	slower := feedbackProfile("m-canary", 0.2, 2*time.Hour)
	advAA, fbAfter := feedbackRun(t, runs, 0.1, nil, stable, slower)
	t.Logf("A/A, canary thumbs 2× later: rolled back %s with the maturity window (target ≤ 5%%; advanced within 36 h %s)",
		rate(fbAfter, runs), rate(advAA, runs))
	if before {
		_, fbBefore := feedbackRun(t, runs, 0.1, &off, stable, slower)
		t.Logf("without it (maturity: 0s, the judge before): rolled back %s", rate(fbBefore, runs))
	}
	stable = feedbackProfile("m-stable", 0.2, 2*time.Hour)
	worse := feedbackProfile("m-canary", 0.3, time.Hour)
	advAfter, rbAfter := feedbackRun(t, runs, 0.25, nil, stable, worse)
	t.Logf("canary 50%% worse, thumbs 2× sooner: advanced %s with the maturity window (target ≤ 10%%; rolled back %s)",
		rate(advAfter, runs), rate(rbAfter, runs))
	if before {
		advBefore, _ := feedbackRun(t, runs, 0.25, &off, stable, worse)
		t.Logf("without it: advanced %s", rate(advBefore, runs))
	}
	if float64(fbAfter)/float64(runs) > 0.05 {
		t.Errorf("A/A with slower canary thumbs: rolled back %s, want ≤ 5%%", rate(fbAfter, runs))
	}
	if float64(advAfter)/float64(runs) > 0.10 {
		t.Errorf("worse canary with sooner thumbs: advanced %s, want ≤ 10%%", rate(advAfter, runs))
	}
}
