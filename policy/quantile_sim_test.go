package policy_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// logBins is a Distribution over policy.QuantileBin counts, each bin read as uniform on the log
// scale, as a per-key source builds it from its buckets' bins.
type logBins struct {
	bins  [policy.QuantileBins]float64
	total float64
}

func (d *logBins) Count() float64 { return d.total }

func (d *logBins) Quantile(q float64) float64 {
	rank := q * d.total
	var seen float64
	for b, c := range d.bins {
		if c > 0 && seen+c >= rank {
			if b == 0 {
				return 1
			}
			lo := policy.QuantileBinUpper(b - 1)
			if b == policy.QuantileBins-1 {
				return lo
			}
			return lo * math.Pow(policy.QuantileBinUpper(b)/lo, (rank-seen)/c)
		}
		seen += c
	}
	return policy.QuantileBinUpper(policy.QuantileBins - 2)
}

func (d *logBins) CountAbove(x float64) float64 {
	b := policy.QuantileBin(x)
	var above float64
	if b > 0 && b < policy.QuantileBins-1 {
		lo, hi := policy.QuantileBinUpper(b-1), policy.QuantileBinUpper(b)
		above = d.bins[b] * math.Min(math.Max(math.Log(hi/x)/math.Log(hi/lo), 0), 1)
	} else if b == policy.QuantileBins-1 {
		above = d.bins[b] / 2
	}
	for j := b + 1; j < policy.QuantileBins; j++ {
		above += d.bins[j]
	}
	return above
}

// latencyTally is one arm's latencies per key bucket, from the first canary record on.
type latencyTally struct {
	bins     [policy.KeyBuckets][]float64
	n, sum   [policy.KeyBuckets]float64
	dist     logBins
	requests int64
	keys     map[string]bool
}

func (a *latencyTally) add(r synth.Request) {
	b := policy.KeyBucket(r.Key)
	if a.bins[b] == nil {
		a.bins[b] = make([]float64, policy.QuantileBins)
	}
	i := policy.QuantileBin(r.LatencyMS)
	a.bins[b][i]++
	a.n[b]++
	a.sum[b] += r.LatencyMS
	a.dist.bins[i]++
	a.dist.total++
	a.requests++
	a.keys[r.Key] = true
}

func (a *latencyTally) stats() policy.ArmStats {
	var cs []policy.Cluster
	var sum float64
	for b := range policy.KeyBuckets {
		if a.n[b] > 0 {
			// The bins are shared, not copied: the judge reads them before the next request comes.
			cs = append(cs, policy.Cluster{Bucket: b, N: a.n[b], Sum: a.sum[b], Bins: a.bins[b]})
			sum += a.sum[b]
		}
	}
	s := policy.Sample{Kind: policy.Quantile, N: a.requests, Sum: sum, Dist: &a.dist, Clusters: cs}
	return policy.ArmStats{Requests: a.requests, Keys: int64(len(a.keys)),
		Metrics: map[string]policy.Sample{"latency_p95_ms": s}}
}

// latencyStage plays one stage of spec under opts, judging its latency rule over the whole window on
// every 15-minute tick, until the judge advances or rolls back.
func latencyStage(t testing.TB, spec *rollouts.Spec, opts synth.Options) policy.Action {
	t.Helper()
	stable, canary := &latencyTally{keys: map[string]bool{}}, &latencyTally{keys: map[string]bool{}}
	var from time.Time
	action := policy.Hold
	add := func(r synth.Request) {
		if r.Late || r.Shadow {
			return
		}
		if r.Variant == policy.Canary {
			if from.IsZero() {
				from = r.TS
			}
			canary.add(r)
		} else if !from.IsZero() {
			stable.add(r)
		}
	}
	simulateTicks(t, spec, opts, add, func(now time.Time) bool {
		st := &policy.Stats{Unit: policy.UnitKey, From: from, Stable: stable.stats(), Canary: canary.stats()}
		d := policy.Judge(spec, policy.Evidence{Stats: st}, now)
		if d.Action == policy.Advance || d.Action == policy.Rollback {
			action = d.Action
			return true
		}
		return false
	})
	return action
}

// TestNarrowCanaryQuantile (issue 23, item 4): a canary whose latency is narrower than stable's
// (lognormal σ 0.1 against 0.5, users 5% faster or slower than one another on both) with its p95
// exactly at a +20% limit (1.2 × stable's: a median of about 1,830 ms against 800 ms), 400 canary
// requests an hour at 5%. The test of "p95 at most 1.2 × stable's" reads the canary's share above 1.2 × stable's
// estimated p95; the error of that estimate moves the canary's share by the canary's density there,
// which the judge before took to be stable's density rescaled: right for a canary that is stable
// slowed down, too small for a narrower one, so its bound was too narrow. Target: at most 5% of
// stages rolled back. Before (these seeds, k = 1): 9 of 40 rolled back; after (each arm's density at
// the quantile estimated): 2 of 40 (4 of 100 with ROLLOUT_SIM_RUNS=100).
func TestNarrowCanaryQuantile(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := trafficRuns(t)
	const sigmaS, sigmaC, medianS, users = 0.5, 0.1, 800.0, 0.05
	// Each arm is lognormal with the users' spread added: p95 = median · exp(1.645·sqrt(σ² + 0.3²)).
	z95 := 1.6449
	medianC := 1.2 * medianS * math.Exp(z95*math.Hypot(sigmaS, users)) / math.Exp(z95*math.Hypot(sigmaC, users))
	rolledBack, advanced := 0, 0
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "latency_p95_ms", MaxIncrease: maxIncrease(0.2)})
		stable := synth.DefaultProfile("m-stable")
		stable.LatencyMedian, stable.LatencySigma = medianS, sigmaS
		canary := synth.DefaultProfile("m-canary")
		canary.LatencyMedian, canary.LatencySigma = medianC, sigmaC
		opts := synth.Options{Seed: uint64(600 + seed), From: trafficStart, To: trafficStart.Add(24 * time.Hour),
			PerHour: 8000, Users: 2000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed), UserLatencySigma: users,
			Stable: stable, Canary: canary}
		switch latencyStage(t, spec, opts) {
		case policy.Rollback:
			rolledBack++
		case policy.Advance:
			advanced++
		}
	}
	t.Logf("narrow canary, p95 at its +20%% limit: rolled back %s (target ≤ 5%%), advanced %s", rate(rolledBack, runs), rate(advanced, runs))
	if float64(rolledBack)/float64(runs) > 0.05 {
		t.Errorf("rolled back %s, want ≤ 5%%", rate(rolledBack, runs))
	}
}
