package policy

import (
	"fmt"
	"math"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// Sample-ratio mismatch.
//
// The comparison is only as good as the randomisation behind it: an application that sends 10% of its
// users to a 5% canary (a routing bug, a stale spec, a cache in front of one arm) compares groups that
// differ in more than the variant, and the evidence cannot be trusted in either direction. So every
// tick checks the canary's share against what the spec sets, with a test that stays honest however
// often it is repeated: a sequential test, a beta-binomial mixture martingale over the share,
//
//	E_n = ∫ θ^k (1-θ)^(n-k) dBeta(θ; a, b) / max over θ0 in the null of θ0^k (1-θ0)^(n-k)
//
// for k canary units of n, which under the null is dominated by a test martingale, so by Ville's
// inequality it ever reaches 1/srmAlpha with probability at most srmAlpha (Howard et al. 2021; the
// same construction as Lindon and Malek's sequential SRM test). The null is an interval, the expected
// share ± srmTolerance of it, because a source may estimate distinct keys with bounded memory and the
// estimate's small error must not read as a mismatch; where the source counts both arms' keys exactly
// (Stats.KeysExact: the file source up to its MaxExactKeys, PostgreSQL) the null is the expected share
// itself, and a mismatch of a few percent of it is caught sooner.
//
// The units are keys where the source counts them: each new user's arm is an independent draw with the
// canary's weight as its probability, whatever the user does afterwards. Where keys are unknown the
// units are requests, which users' repeat visits make lumpier than independent draws; a shadow stage
// checks the mirrored share of requests instead.

const (
	// srmAlpha is the level of the sample-ratio test over the whole stage: a healthy rollout is held
	// for a mismatch with probability at most 0.1%, as GrowthBook's default SRM threshold.
	srmAlpha = 0.001
	// srmTolerance is the relative slack around the expected share (5% ± 0.15 points) where the
	// units are keys that the source may have estimated with bounded memory, or requests; none where
	// both arms' keys are counted exactly (Stats.KeysExact).
	srmTolerance = 0.03
	// srmConcentration is the prior concentration a+b of the mixture, centred on the expected share;
	// it makes the test most sensitive to shares that differ by tens of percent of the expected one.
	srmConcentration = 200
)

// SRMGrace is how long after a stage starts the application may still route at the previous stage's
// weight: an application picks a new weight up when it next reads its spec (a poll, a deploy), often
// minutes after the merge. During the grace the test allows any share between the previous weight's
// and this one's; after it, it counts only the keys seen from the grace's end on (the recent window
// that starts there, see WithRecent), so that the lag's split of the first keys does not weigh on the
// rest of the stage. Each of the two tests spends half of srmAlpha. It equals RecentStep, so the
// window after it is a point of the recent windows' grid.
const SRMGrace = RecentStep

// sampleRatioStage checks the sample ratio of spec's current stage, started at start, at now (see
// SRMGrace). Without statistics from the grace's end on (a source asked for the whole window only) it
// checks the whole window at srmAlpha, as before the grace existed.
func sampleRatioStage(spec *rollouts.Spec, stats *Stats, start, now time.Time) string {
	graceEnd := start.Add(SRMGrace)
	if !now.After(graceEnd) {
		prev := rollouts.Traffic{}
		if st := spec.Status; st != nil && st.Stage > 0 && st.Stage <= len(spec.Stages) {
			p := spec.Stages[st.Stage-1]
			prev = rollouts.Traffic{Weight: p.Weight, Shadow: p.Shadow}
		}
		return sampleRatioWithin(spec.Traffic, stats, &prev, srmAlpha/2)
	}
	for _, rw := range stats.Recent {
		if rw.From.Equal(graceEnd) && rw.Stats != nil {
			return sampleRatioWithin(spec.Traffic, rw.Stats, nil, srmAlpha/2)
		}
	}
	return sampleRatio(spec.Traffic, stats)
}

// sampleRatio checks stats against the traffic spec sets now. It returns a reason starting "sample
// ratio mismatch" when the canary's share is shown to differ from the expected one, else "".
func sampleRatio(traffic rollouts.Traffic, stats *Stats) string {
	return sampleRatioWithin(traffic, stats, nil, srmAlpha)
}

// sampleRatioWithin is sampleRatio at level alpha, where a share anywhere between prev's and
// traffic's (each with its tolerance) is no mismatch when prev is not nil.
func sampleRatioWithin(traffic rollouts.Traffic, stats *Stats, prev *rollouts.Traffic, alpha float64) string {
	var k, n float64
	var unit string
	var want, was float64
	tol := srmTolerance
	switch {
	case traffic.Weight > 0 && traffic.Weight < 100:
		want = float64(traffic.Weight) / 100
		if prev != nil {
			was = float64(prev.Weight) / 100
		}
		live := stats.Canary.Requests - stats.Shadow
		// A source that counts keys counts them in both arms: an arm with none has none (a source
		// that cannot count keys reports 0 for both).
		if (stats.Canary.Keys > 0 || stats.Stable.Keys > 0) && stats.Shadow == 0 {
			k, n, unit = float64(stats.Canary.Keys), float64(stats.Canary.Keys+stats.Stable.Keys), "keys"
			if stats.KeysExact && stats.Unit == UnitKey {
				// Each key's arm is an independent draw at the weight and the count has no error
				// to absorb: the null is the expected share itself. (Keyless records are counted
				// by their request ids, which users' repeat visits make lumpier: they keep it.)
				tol = 0
			}
		} else {
			k, n, unit = float64(live), float64(live+stats.Stable.Requests), "requests"
		}
	case traffic.Weight == 0 && traffic.Shadow > 0 && traffic.Shadow < 100:
		// Each stable request is mirrored with probability shadow/100.
		want = float64(traffic.Shadow) / 100
		if prev != nil {
			was = float64(prev.Shadow) / 100
		}
		k, n, unit = float64(stats.Shadow), float64(stats.Stable.Requests), "mirrored requests"
		if k > n {
			return fmt.Sprintf("sample ratio mismatch: %d mirrored requests for %d stable ones, at shadow %d%%",
				stats.Shadow, stats.Stable.Requests, traffic.Shadow)
		}
	default:
		// 0%, 100% and a full mirror have no share to test.
		return ""
	}
	if n <= 0 {
		return ""
	}
	lo, hi := want*(1-tol), math.Min(want*(1+tol), 1)
	if prev != nil {
		lo, hi = math.Min(lo, was*(1-tol)), math.Max(hi, math.Min(was*(1+tol), 1))
	}
	if srmLogE(k, n, want, lo, hi) < math.Log(1/alpha) {
		return ""
	}
	what := "the canary has"
	of := "of " + unit
	if unit == "mirrored requests" {
		what, of = "mirrored", "of stable requests"
	}
	return fmt.Sprintf("sample ratio mismatch: %s %s %s (%d of %d), where the spec sets %s; the evidence cannot be trusted until the routing matches the spec",
		what, trimFloat(k/n*100, 2)+"%", of, int64(k), int64(n), trimFloat(want*100, 2)+"%")
}

// srmLogE is the log of the mixture e-value of k canary units in n against the shares [lo, hi], the
// mixture centred on the expected share want.
func srmLogE(k, n, want, lo, hi float64) float64 {
	theta0 := math.Min(math.Max(k/n, lo), hi)
	a, b := srmConcentration*want, srmConcentration*(1-want)
	logL0 := 0.0
	if k > 0 {
		logL0 += k * math.Log(theta0)
	}
	if n-k > 0 {
		logL0 += (n - k) * math.Log1p(-theta0)
	}
	return lbeta(a+k, b+n-k) - lbeta(a, b) - logL0
}
