package policy

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/rollouts"
)

// The clustered simulations: traffic as users make it. Each simulated user has an activity (how many
// requests a day, about 50 on average, exponentially spread), an error propensity of their own, and a
// sticky variant; requests follow a daily cycle. Statistics reach the judge the way a per-key source
// gives them: sums per key bucket (policy.KeyBucket of the user's key), distinct keys per arm, Unit key.

// userTraffic is one simulated population and the rollout it is routed by.
type userTraffic struct {
	users        int
	perUserDaily float64 // requests per user per day, on average
	canaryShare  float64 // share of users the application routes to the canary
	// propensity draws one user's error rate.
	propensity func(rng *rand.Rand) float64
	// canaryFactor multiplies a canary user's error rate.
	canaryFactor float64
}

// clusterArm accumulates one arm's sums per key bucket.
type clusterArm struct {
	n, errs  [KeyBuckets]float64
	requests int64
	keys     int64
	buf      []Cluster
}

func (a *clusterArm) stats() ArmStats {
	a.buf = a.buf[:0]
	var n, errs float64
	for b := range KeyBuckets {
		if a.n[b] > 0 {
			a.buf = append(a.buf, Cluster{Bucket: b, N: a.n[b], Sum: a.errs[b]})
			n += a.n[b]
			errs += a.errs[b]
		}
	}
	return ArmStats{Requests: a.requests, Keys: a.keys, Metrics: map[string]Sample{
		"error_rate": {Kind: Proportion, N: int64(n), Sum: errs, Clusters: a.buf},
	}}
}

// simBuckets holds the key bucket of every simulated user's key, computed once.
var simBuckets = func() []int {
	out := make([]int, 20000)
	for i := range out {
		out[i] = KeyBucket("user-" + itoa(i))
	}
	return out
}()

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append(b, byte('0'+i%10))
	}
	slices.Reverse(b)
	return string(b)
}

// clusteredRun plays one day of ticks through judge (called with the stats after each tick; true
// stops the run).
func (u userTraffic) run(rng *rand.Rand, ticks int, judge func(tick int, st *Stats) bool) {
	canary := make([]bool, u.users)
	p := make([]float64, u.users)
	activity := make([]float64, u.users)
	seen := make([]bool, u.users)
	for i := range u.users {
		canary[i] = rng.Float64() < u.canaryShare
		p[i] = u.propensity(rng)
		if canary[i] {
			p[i] = math.Min(1, p[i]*u.canaryFactor)
		}
		activity[i] = rng.ExpFloat64()
	}
	pick := newAlias(activity)
	var s, c clusterArm
	daily := float64(u.users) * u.perUserDaily
	for tick := 1; tick <= ticks; tick++ {
		// A daily cycle: twice the traffic at the peak as in the trough.
		cycle := 1 + math.Sin(2*math.Pi*float64(tick)/96)/3
		n := poisson(rng, daily/96*cycle)
		for range n {
			i := pick.draw(rng)
			arm := &s
			if canary[i] {
				arm = &c
			}
			b := simBuckets[i]
			arm.n[b]++
			arm.requests++
			if rng.Float64() < p[i] {
				arm.errs[b]++
			}
			if !seen[i] {
				seen[i] = true
				arm.keys++
			}
		}
		st := &Stats{Unit: UnitKey, Stable: s.stats(), Canary: c.stats()}
		if judge(tick, st) {
			return
		}
	}
}

// alias is Walker's alias table: draws an index with probability proportional to its weight in O(1).
type alias struct {
	prob  []float64
	other []int
}

func newAlias(w []float64) alias {
	n := len(w)
	a := alias{prob: make([]float64, n), other: make([]int, n)}
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	var small, large []int
	for i, x := range w {
		scaled[i] = x * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s], a.other[s] = scaled[s], l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		a.prob[i], a.other[i] = 1, i
	}
	return a
}

func (a alias) draw(rng *rand.Rand) int {
	x := rng.Float64() * float64(len(a.prob))
	i := int(x)
	if x-float64(i) < a.prob[i] {
		return i
	}
	return a.other[i]
}

// poisson draws Poisson(mean) by its normal approximation (means here are in the hundreds).
func poisson(rng *rand.Rand, mean float64) int {
	return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
}

// simRunsClustered is the number of simulated rollouts per clustered scenario: enough to tell 5% from
// 10% in the normal suite; fewer under -short, still enough for the rates.
func simRunsClustered(t *testing.T) int {
	if testing.Short() {
		return 60
	}
	return 200
}

// heavyFailers is the clustered error propensity: 1% of users fail 90% of their requests, the
// rest have rates spread around 0.5% (log-normal, 60% spread).
func heavyFailers(rng *rand.Rand) float64 {
	if rng.Float64() < 0.01 {
		return 0.9
	}
	return 0.005 * math.Exp(0.6*rng.NormFloat64()-0.18)
}

// spreadRate returns per-user error rates spread around mean (log-normal, 50% spread).
func spreadRate(mean float64) func(*rand.Rand) float64 {
	return func(rng *rand.Rand) float64 { return mean * math.Exp(0.5*rng.NormFloat64()-0.125) }
}

// TestClusteredAAFalseRollbacks: identical arms, users sending ~50 requests a day each with their own
// error propensity and 1% of users failing 90% of their requests, judged every 15 minutes for a day at
// a +10% error-rate limit: at most 5% of the rollouts may roll back.
func TestClusteredAAFalseRollbacks(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	spec := simSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.1)})
	traffic := userTraffic{users: 4000, perUserDaily: 50, canaryShare: 0.05, propensity: heavyFailers, canaryFactor: 1}
	rng := rand.New(rand.NewPCG(21, 22))
	runs := simRunsClustered(t)
	rollbacks, srm, perRequest := 0, 0, 0
	for range runs {
		naiveDone := false
		traffic.run(rng, simTicks, func(tick int, st *Stats) bool {
			now := simStart.Add(time.Duration(tick) * 15 * time.Minute)
			if !naiveDone {
				// The contrast: the same data judged as independent requests.
				naive := *st
				naive.Unit = UnitRequest
				if Judge(spec, Evidence{Stats: &naive}, now).Action == Rollback {
					perRequest++
					naiveDone = true
				}
			}
			d := Judge(spec, Evidence{Stats: st}, now)
			if d.SampleRatioMismatch {
				srm++
				return true
			}
			if d.Action == Rollback {
				rollbacks++
				return true
			}
			return false
		})
	}
	rate := float64(rollbacks) / float64(runs)
	t.Logf("clustered A/A at +10%%: %d of %d rollouts rolled back over %d ticks (rate %.3f); %d held for a sample ratio mismatch; judged per request instead, %d would have rolled back",
		rollbacks, runs, simTicks, rate, srm, perRequest)
	if perRequest < 3*runs/20 {
		t.Errorf("per-request maths rolled back only %d of %d: the simulation is not clustered enough to test anything", perRequest, runs)
	}
	if rate > 0.05 {
		t.Errorf("false-rollback rate %.3f > 0.05", rate)
	}
	if srm > runs/50 {
		t.Errorf("%d of %d healthy rollouts held for a sample ratio mismatch", srm, runs)
	}
}

// advanceRun plays a rollout at a 5% first stage (minDuration 4h, minRequests 200) with about 400
// canary requests an hour, and returns the tick it advanced at, or -1 (rolled back or held all day).
func advanceRun(rng *rand.Rand, spec *rollouts.Spec, traffic userTraffic) (advancedAt int, rolledBack bool) {
	advancedAt = -1
	traffic.run(rng, simTicks, func(tick int, st *Stats) bool {
		d := Judge(spec, Evidence{Stats: st}, simStart.Add(time.Duration(tick)*15*time.Minute))
		switch d.Action {
		case Advance:
			advancedAt = tick
			return true
		case Rollback:
			rolledBack = true
			return true
		}
		return false
	})
	return advancedAt, rolledBack
}

func advanceSpec() *rollouts.Spec {
	spec := simSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)})
	spec.Stages[0].MinDuration = rollouts.Duration(4 * time.Hour)
	spec.Stages[0].MinRequests = 200
	return spec
}

// 400 canary requests an hour at a 5% stage: 8,000 requests an hour from 3,840 users at 50 a day.
var fourHundredAnHour = userTraffic{users: 3840, perUserDaily: 50, canaryShare: 0.05, canaryFactor: 1}

// TestRegressedCanaryRarelyAdvances: a canary at twice its allowed increase (1% → 2% errors against
// maxIncrease 50%) with 400 canary requests an hour leaves its first stage in at most 10% of runs.
func TestRegressedCanaryRarelyAdvances(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	traffic := fourHundredAnHour
	traffic.propensity, traffic.canaryFactor = spreadRate(0.01), 2
	rng := rand.New(rand.NewPCG(23, 24))
	runs := simRunsClustered(t)
	advanced, rolledBack := 0, 0
	for range runs {
		at, rb := advanceRun(rng, advanceSpec(), traffic)
		if at >= 0 {
			advanced++
		}
		if rb {
			rolledBack++
		}
	}
	t.Logf("canary 1%% → 2%% against +50%%: advanced in %d of %d runs, rolled back in %d", advanced, runs, rolledBack)
	if float64(advanced)/float64(runs) > 0.10 {
		t.Errorf("advanced in %d of %d runs, want ≤ 10%%", advanced, runs)
	}
}

// TestHealthyClusteredCanaryAdvances: the same traffic with a healthy canary (1% errors in both arms)
// advances within the day in at least 90% of runs.
func TestHealthyClusteredCanaryAdvances(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	traffic := fourHundredAnHour
	traffic.propensity = spreadRate(0.01)
	rng := rand.New(rand.NewPCG(25, 26))
	runs := simRunsClustered(t)
	var ticks []int
	rolledBack := 0
	for range runs {
		at, rb := advanceRun(rng, advanceSpec(), traffic)
		if at >= 0 {
			ticks = append(ticks, at)
		}
		if rb {
			rolledBack++
		}
	}
	slices.Sort(ticks)
	median := -1
	if len(ticks) > 0 {
		median = ticks[len(ticks)/2]
	}
	t.Logf("healthy canary, 400 canary requests an hour: advanced within a day in %d of %d runs (median tick %d; 16 is the first eligible), rolled back in %d",
		len(ticks), runs, median, rolledBack)
	if float64(len(ticks))/float64(runs) < 0.90 {
		t.Errorf("advanced in %d of %d runs, want ≥ 90%%", len(ticks), runs)
	}
}

// TestSampleRatioMismatchHolds: the application sends 10% of users to a canary the spec sets at 5%:
// the rollout is never advanced, and the reasons say "sample ratio mismatch".
func TestSampleRatioMismatchHolds(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	traffic := fourHundredAnHour
	traffic.canaryShare = 0.10
	traffic.propensity = spreadRate(0.01)
	rng := rand.New(rand.NewPCG(27, 28))
	runs := simRunsClustered(t) / 4
	advanced, named, firstTicks := 0, 0, []int{}
	for range runs {
		first := -1
		traffic.run(rng, simTicks, func(tick int, st *Stats) bool {
			d := Judge(advanceSpec(), Evidence{Stats: st}, simStart.Add(time.Duration(tick)*15*time.Minute))
			if d.Action == Advance || d.Action == Promote {
				advanced++
				return true
			}
			if d.SampleRatioMismatch && first < 0 {
				first = tick
				if len(d.Reasons) > 0 && strings.HasPrefix(d.Reasons[0], "sample ratio mismatch") {
					named++
				}
			}
			return false
		})
		firstTicks = append(firstTicks, first)
	}
	slices.Sort(firstTicks)
	t.Logf("10%% of users on a 5%% spec: advanced in %d of %d runs; mismatch named in %d; median first tick %d", advanced, runs, named, firstTicks[len(firstTicks)/2])
	if advanced > 0 || named < runs {
		t.Errorf("advanced %d, mismatch named in %d of %d runs", advanced, named, runs)
	}
}

// binDist is the distribution of QuantileBin counts, as a per-key source builds it from its buckets.
type binDist struct {
	bins  [QuantileBins]float64
	total float64
}

func (d *binDist) add(x float64) { d.bins[QuantileBin(x)]++; d.total++ }

func (d *binDist) Count() float64 { return d.total }

func (d *binDist) Quantile(q float64) float64 {
	rank := q * d.total
	var seen float64
	for b, c := range d.bins {
		if c > 0 && seen+c >= rank {
			if b == 0 {
				return 1
			}
			lo := QuantileBinUpper(b - 1)
			if b == QuantileBins-1 {
				return lo
			}
			return lo * math.Pow(quantileGamma, (rank-seen)/c)
		}
		seen += c
	}
	return QuantileBinUpper(QuantileBins - 2)
}

func (d *binDist) CountAbove(x float64) float64 {
	b := QuantileBin(x)
	above := d.bins[b] * binShareAbove(b, x)
	for j := b + 1; j < QuantileBins; j++ {
		above += d.bins[j]
	}
	return above
}

// latencyUsers is one arm of the clustered latency simulation: bins per key bucket.
type latencyUsers struct {
	n        [KeyBuckets]float64
	bins     [KeyBuckets][QuantileBins]float64
	dist     binDist
	requests int64
	keys     int64
	buf      []Cluster
}

func (a *latencyUsers) add(bucket int, x float64) {
	a.n[bucket]++
	a.bins[bucket][QuantileBin(x)]++
	a.dist.add(x)
	a.requests++
}

func (a *latencyUsers) stats() ArmStats {
	a.buf = a.buf[:0]
	for b := range KeyBuckets {
		if a.n[b] > 0 {
			a.buf = append(a.buf, Cluster{Bucket: b, N: a.n[b], Bins: a.bins[b][:]})
		}
	}
	return ArmStats{Requests: a.requests, Keys: a.keys, Metrics: map[string]Sample{
		"latency_p95_ms": {Kind: Quantile, N: a.requests, Dist: &a.dist, Clusters: a.buf},
	}}
}

// latencyRun plays a day of clustered latency: each user has a latency factor of their own (log-normal,
// sigma userSpread), each request a log-normal spread around it; the canary's latencies are scaled by
// canaryFactor. It returns whether the judge rolled back, per key and per request.
func latencyRun(rng *rand.Rand, spec *rollouts.Spec, users int, userSpread, canaryFactor float64) (perKey, perRequest bool) {
	factor := make([]float64, users)
	canary := make([]bool, users)
	seen := make([]bool, users)
	for i := range users {
		factor[i] = math.Exp(userSpread * rng.NormFloat64())
		canary[i] = rng.Float64() < float64(spec.Traffic.Weight)/100
	}
	var s, c latencyUsers
	perTick := float64(users) * 50 / 96
	for tick := 1; tick <= simTicks; tick++ {
		for range poisson(rng, perTick) {
			i := rng.IntN(users)
			arm, x := &s, 800*factor[i]*math.Exp(0.4*rng.NormFloat64())
			if canary[i] {
				arm, x = &c, x*canaryFactor
			}
			if !seen[i] {
				seen[i] = true
				arm.keys++
			}
			arm.add(simBuckets[i], x)
		}
		now := simStart.Add(time.Duration(tick) * 15 * time.Minute)
		st := &Stats{Unit: UnitKey, Stable: s.stats(), Canary: c.stats()}
		if !perRequest {
			naive := *st
			naive.Unit = UnitRequest
			perRequest = Judge(spec, Evidence{Stats: &naive}, now).Action == Rollback
		}
		if !perKey {
			perKey = Judge(spec, Evidence{Stats: st}, now).Action == Rollback
		}
		if perKey && perRequest {
			return
		}
	}
	return
}

// TestClusteredLatencyQuantile: per-user latency factors, identical arms, a +10% p95 limit judged every
// tick for a day: at most 5% false rollbacks per key (the per-request maths, shown for contrast, does
// far worse); and a canary 40% slower is still caught in at least 90% of runs.
func TestClusteredLatencyQuantile(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	spec := simSpec(rollouts.Rule{Metric: "latency_p95_ms", MaxIncrease: ratio(0.1)})
	spec.Traffic.Weight, spec.Stages[0].Weight = 25, 25
	rng := rand.New(rand.NewPCG(29, 30))
	runs := simRunsClustered(t) / 4
	falseKey, falseRequest, caught := 0, 0, 0
	for range runs {
		k, r := latencyRun(rng, spec, 1000, 0.5, 1)
		if k {
			falseKey++
		}
		if r {
			falseRequest++
		}
		if k, _ := latencyRun(rng, spec, 1000, 0.5, 1.5); k {
			caught++
		}
	}
	t.Logf("clustered latency A/A at +10%% p95: %d of %d rolled back per key, %d per request; a 50%% slower canary caught in %d of %d",
		falseKey, runs, falseRequest, caught, runs)
	if float64(falseKey)/float64(runs) > 0.05 {
		t.Errorf("false rollbacks %d of %d per key, want ≤ 5%%", falseKey, runs)
	}
	if float64(caught)/float64(runs) < 0.9 {
		t.Errorf("a 50%% slower canary caught in %d of %d runs, want ≥ 90%%", caught, runs)
	}
}
