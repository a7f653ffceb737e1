package policy

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/rollouts"
)

// srmKeysRun draws new keys tick by tick (perTick a tick, each on the canary with probability share),
// checks the sample ratio against a 5% spec on every tick for ticks ticks, counting keys exactly or
// not (Stats.KeysExact), and returns the first tick that saw a mismatch, or -1.
func srmKeysRun(rng *rand.Rand, share float64, perTick int64, ticks int, exact bool) int {
	var k, n int64
	for tick := range ticks {
		n += perTick
		k += binomial(rng, perTick, share)
		st := &Stats{Unit: UnitKey, KeysExact: exact,
			Stable: ArmStats{Requests: 3 * (n - k), Keys: n - k},
			Canary: ArmStats{Requests: 3 * k, Keys: k}}
		if sampleRatio(rollouts.Traffic{Weight: 5}, st) != "" {
			return tick
		}
	}
	return -1
}

// TestSRMExactKeys (issue 23, item 6): the sample-ratio test's ±3% slack around the expected share
// exists for a source that estimates distinct keys with bounded memory; where the source counts them
// exactly (Stats.KeysExact) the null is the expected share itself. A real mismatch (5.5% of keys
// on a 5% spec, 500 new keys an hour, four ticks an hour for 4 days) is caught sooner, and a split as
// the spec sets raises no more than srmAlpha of false alarms over 20,000 runs of 4 days.
func TestSRMExactKeys(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const ticks, perTick = 4 * 96, 125
	rng := rand.New(rand.NewPCG(61, 62))
	first := func(exact bool, runs int) (hours []float64, caught int) {
		for range runs {
			tick := srmKeysRun(rng, 0.055, perTick, ticks, exact)
			if tick < 0 {
				hours = append(hours, float64(ticks)/4+1) // not within the span: past its end
				continue
			}
			caught++
			hours = append(hours, float64(tick+1)/4)
		}
		slices.Sort(hours)
		return hours, caught
	}
	const runs = 200
	estimated, caughtEstimated := first(false, runs)
	exact, caughtExact := first(true, runs)
	mEst, mExact := estimated[runs/2], exact[runs/2]
	t.Logf("5.5%% of keys on a 5%% spec: caught within 4 days in %d of %d runs with estimated keys (median %.1f h), %d of %d with exact keys (median %.1f h)",
		caughtEstimated, runs, mEst, caughtExact, runs, mExact)
	if caughtExact < caughtEstimated || mExact >= mEst {
		t.Errorf("exact keys caught %d (median %.1f h), estimated %d (median %.1f h): want sooner", caughtExact, mExact, caughtEstimated, mEst)
	}
	const aaRuns = 20000
	alarms := 0
	for range aaRuns {
		if srmKeysRun(rng, 0.05, perTick, ticks, true) >= 0 {
			alarms++
		}
	}
	t.Logf("A/A with exact keys: %d false alarms in %d runs of 4 days (srmAlpha %g: at most %.0f)", alarms, aaRuns, srmAlpha, srmAlpha*aaRuns)
	if float64(alarms) > srmAlpha*aaRuns {
		t.Errorf("%d false alarms in %d runs, want at most %.0f", alarms, aaRuns, srmAlpha*aaRuns)
	}
}
