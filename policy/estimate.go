package policy

import "math"

// Per-key statistics.
//
// Where a source knows each request's assignment key (Stats.Unit == UnitKey), the randomised unit is the
// key, not the request: one user's requests share that user's propensities (a user whose prompts break
// the canary fails on most of them), so treating them as independent understates every variance, and
// the false-rollback rate grows with the requests per user. The source therefore groups each arm's
// requests into hash buckets of the key (KeyBuckets of them; every request of a key lands in one
// bucket), and the judge computes variances over buckets.
//
// Every per-request metric is then a ratio of two per-unit sums, mean = ΣSum/ΣN over buckets, and its
// variance is the delta-method (linearisation) variance of a ratio estimator, as in Deng, Knoblich and
// Lu, "Applying the Delta Method in Metric Analytics" (KDD 2018) and as GrowthBook computes it:
//
//	Var(mean) ≈ K/(K-1) · Σ (s_i - mean·n_i)² / N²
//
// over the K buckets with n_i observations and sum s_i (N = Σ n_i). That is the same as the textbook
// form (var_s/n̄² - 2·s̄·cov/n̄³ + s̄²·var_n/n̄⁴)/K, written so that it needs one pass and no
// cancellation-prone moments. Buckets, not keys, are the units of the sum; since a bucket holds whole
// keys, buckets are independent given the assignment and the estimate stays consistent, while memory
// and a SQL source's result stay bounded by KeyBuckets. Proportions are ratio metrics too at this level
// (events per request, each user a cluster of requests). Where the buckets show less spread than
// independent requests would (few keys, or no event yet), the per-request variance is kept instead: the
// larger of the two, so clustering can only widen a bound.

// armEstimate is one arm's estimate of a metric.
type armEstimate struct {
	kind SampleKind
	// n is the number of observations (requests with a value).
	n float64
	// units is the number of independent units behind them: the arm's distinct keys where the source
	// groups by key, else n. The confidence sequences count time in units.
	units float64
	// clustered: clusters are the key buckets of a per-key source and the variances are over them.
	clustered bool
	clusters  []Cluster
	mean      float64 // Proportion, Mean, Value
	v         float64 // variance of mean (Proportion, Mean)
	dist      Distribution
	// moments caches the bucket sums an exceedance needs at any threshold (Quantile samples of a
	// per-key source), so that each costs O(1) after one pass over the clusters.
	moments *binMoments
	// effective is Kish's effective number of key buckets, (Σ n_i)² / Σ n_i²: how many equally busy
	// buckets the arm's requests are worth. A few dominant keys (bots, integrations) collapse it
	// whatever the count of keys. +Inf where the arm is not clustered.
	effective float64
	// spread is the squared deviation per key of the per-key sums from the arm's mean, Σ(s_i - m·n_i)²
	// over buckets divided by the arm's keys (Proportion and Mean of a clustered arm; 0 otherwise): the
	// population's spread, which the other arm may borrow (see borrowSpread).
	spread float64
}

// estimate reads one arm's sample; ok is false when the arm has no data for the metric.
func estimate(s Sample, present bool, unit Unit, keys int64) (armEstimate, bool) {
	if !present || s.N <= 0 {
		return armEstimate{}, false
	}
	e := armEstimate{kind: s.Kind, n: float64(s.N), units: float64(s.N), effective: math.Inf(1)}
	if unit == UnitKey && len(s.Clusters) > 0 {
		e.clustered, e.clusters = true, s.Clusters
		e.units = float64(len(s.Clusters))
		if keys > 0 {
			// The arm's keys, but no more than the metric's values: a key with no value for this
			// metric (a user who never left feedback) adds nothing to it, so a rule's burn-in
			// (MinObservations) and its clock count at most one key per value.
			e.units = math.Min(float64(keys), float64(s.N))
		}
		e.effective = kishEffective(s.Clusters)
	}
	switch s.Kind {
	case Proportion:
		e.mean = s.Sum / e.n
		// The per-request variance uses the Agresti–Coull-style shrunk rate, so that 0 errors in 40
		// requests is not read as a certainty that the rate is zero.
		p := (s.Sum + 1) / (e.n + 2)
		e.v = p * (1 - p) / e.n
	case Mean:
		e.mean = s.Sum / e.n
		if e.n > 1 {
			ss := (s.SumSquares - e.n*e.mean*e.mean) / (e.n - 1)
			e.v = math.Max(ss, 0) / e.n
		}
	case Quantile:
		if s.Dist == nil || s.Dist.Count() <= 0 {
			return armEstimate{}, false
		}
		e.dist = s.Dist
		e.n = s.Dist.Count()
		if !e.clustered {
			e.units = e.n
		} else {
			e.moments = momentsOf(e.clusters)
			if e.moments == nil {
				// Clusters without bins cannot give a clustered quantile; the totals still can.
				e.clustered, e.clusters = false, nil
				e.units = e.n
			}
		}
	case Value:
		e.mean = s.Sum
	default:
		return armEstimate{}, false
	}
	if math.IsNaN(e.mean) || math.IsInf(e.mean, 0) {
		return armEstimate{}, false
	}
	if e.clustered && (s.Kind == Proportion || s.Kind == Mean) {
		e.v = math.Max(e.v, ratioVariance(e.clusters, e.mean, e.n, func(c *Cluster) float64 { return c.Sum }))
		var ss float64
		for i := range e.clusters {
			d := e.clusters[i].Sum - e.mean*e.clusters[i].N
			ss += d * d
		}
		e.spread = ss / e.units
	}
	return e, true
}

// kishEffective is Kish's effective sample size of the clusters weighted by their observations:
// (Σ n_i)² / Σ n_i².
func kishEffective(cs []Cluster) float64 {
	var n, nn float64
	for i := range cs {
		n += cs[i].N
		nn += cs[i].N * cs[i].N
	}
	if nn <= 0 {
		return 0
	}
	return n * n / nn
}

// borrowDiscount divides the borrowed variance before it floors the smaller arm's (see borrowSpread).
const borrowDiscount = 4

// borrowSpread floors the variance of the arm with fewer keys (the canary, in any stage below 50%)
// by the variance it would have if its keys spread as the other arm's do.
//
// Under the assignment, each arm's keys are a random draw of one population. The delta-method variance
// of an arm is estimated from the keys the arm drew; where a few keys carry much of the traffic (four
// bots with 45% of all requests), a small arm usually draws none of them, and its own spread says
// nothing of the spread it could have drawn: its mean looks precise while it would move by tens of
// percent had one bot landed in it. The larger arm has seen most of the population, so its spread per
// key, times the small arm's keys, over the small arm's observations squared, is what the small arm's
// variance is under the assignment: Var ≈ K_small · spread_large / N_small². Where the arms' keys are
// alike the two estimates agree and the floor changes nothing; where they are not, the bound widens
// as it should and the rule does not pass on a comparison the canary's few keys cannot make.
func borrowSpread(stable, canary *armEstimate) {
	// The floor is a quarter of the borrowed variance: where the arms' keys are alike the own
	// variance is above it all but always (a canary with a quarter of its expected events), so a
	// healthy canary advances as fast as before; where a few keys dominate the larger arm the borrowed
	// variance is tens of times the own one and the quarter still holds the bound wide.
	if !stable.clustered || !canary.clustered || stable.spread <= 0 && canary.spread <= 0 {
		return
	}
	small, large := canary, stable
	if stable.units < canary.units {
		small, large = stable, canary
	}
	if small.n > 0 {
		small.v = math.Max(small.v, large.spread*small.units/(small.n*small.n)/borrowDiscount)
	}
}

// ratioVariance is the delta-method variance of the ratio estimator m = Σ value_i / Σ n_i over
// clusters (see the comment at the top of this file); +Inf with fewer than two clusters.
func ratioVariance(cs []Cluster, m, n float64, value func(*Cluster) float64) float64 {
	k := float64(len(cs))
	if k < 2 || n <= 0 {
		return math.Inf(1)
	}
	var ss float64
	for i := range cs {
		d := value(&cs[i]) - m*cs[i].N
		ss += d * d
	}
	return k / (k - 1) * ss / (n * n)
}

// binMoments holds, per quantile bin b, sums over the clusters i of their counts at or above b
// (S_i[b]), in b (B_i[b]) and their products, from which the share of observations above any threshold
// and its delta-method variance follow in O(1).
type binMoments struct {
	k, n, nn float64 // clusters, Σ n_i, Σ n_i²
	// Indexed by bin, with one more entry (all zero) past the last bin.
	s, b, ss, sb, bb, sn, bn [QuantileBins + 1]float64
}

// momentsOf sums the clusters' bins; nil when a cluster has no bins. Below a cluster's lowest occupied
// bin its counts are constant (all of it lies above), so those bins are added as one range through
// difference arrays: the cost is the occupied span of each cluster, not QuantileBins.
func momentsOf(cs []Cluster) *binMoments {
	m := &binMoments{k: float64(len(cs))}
	var ds, dss, dsn [QuantileBins + 1]float64 // difference arrays of the constant ranges
	for i := range cs {
		c := &cs[i]
		if len(c.Bins) == 0 {
			return nil
		}
		m.n += c.N
		m.nn += c.N * c.N
		top := min(len(c.Bins), QuantileBins) - 1
		for top >= 0 && c.Bins[top] == 0 {
			top--
		}
		var above float64 // S_i[b+1]
		b := top
		for ; b >= 0; b-- {
			in := c.Bins[b]
			m.sb[b] += above * in
			above += in
			m.s[b] += above
			m.b[b] += in
			m.ss[b] += above * above
			m.bb[b] += in * in
			m.sn[b] += above * c.N
			m.bn[b] += in * c.N
			if b > 0 && above >= c.N*(1-1e-12) {
				b--
				break
			}
		}
		if b >= 0 {
			// Bins 0..b are empty: S_i = above for each of them.
			ds[0] += above
			ds[b+1] -= above
			dss[0] += above * above
			dss[b+1] -= above * above
			dsn[0] += above * c.N
			dsn[b+1] -= above * c.N
		}
	}
	var s, ss, sn float64
	for b := range QuantileBins {
		s, ss, sn = s+ds[b], ss+dss[b], sn+dsn[b]
		m.s[b] += s
		m.ss[b] += ss
		m.sn[b] += sn
	}
	return m
}

// exceedance returns the share above x of the clustered observations and its delta-method variance.
func (m *binMoments) exceedance(x float64) (share, v float64) {
	if m.n <= 0 {
		return 0, math.Inf(1)
	}
	b := QuantileBin(x)
	f := binShareAbove(b, x)
	// a_i = S_i[b+1] + f·B_i[b]: cluster i's observations above x.
	sumA := m.s[b+1] + f*m.b[b]
	sumA2 := m.ss[b+1] + 2*f*m.sb[b] + f*f*m.bb[b]
	sumAN := m.sn[b+1] + f*m.bn[b]
	share = sumA / m.n
	v = math.Inf(1)
	if m.k >= 2 {
		ss := math.Max(sumA2-2*share*sumAN+share*share*m.nn, 0)
		v = m.k / (m.k - 1) * ss / (m.n * m.n)
	}
	p := (sumA + 1) / (m.n + 2)
	return share, math.Max(v, p*(1-p)/m.n)
}

// binShareAbove is the share of bin b's observations above x (x inside bin b), reading the bin as
// uniform on the log scale.
func binShareAbove(b int, x float64) float64 {
	switch {
	case b <= 0:
		return 0
	case b >= QuantileBins-1:
		return 0.5
	}
	return math.Min(math.Max(math.Log(QuantileBinUpper(b)/x)/math.Log(quantileGamma), 0), 1)
}

// exceedance returns the share of the arm's observations above x and the variance of that share:
// over key buckets for a per-key source (a proportion is a ratio metric at the key level), else as
// independent requests; the larger of the two where both are known.
func (e armEstimate) exceedance(x float64) (share, v float64) {
	if !e.clustered {
		above := e.dist.CountAbove(x)
		share = above / e.n
		p := (above + 1) / (e.n + 2)
		return share, p * (1 - p) / e.n
	}
	return e.moments.exceedance(x)
}

// twoArmTime is the time of a two-arm confidence sequence over the arms c and s, on the scale of
// tuningTwoArm: the information-equivalent count n_c·n_s/(n_c+n_s), the size of one arm that would
// estimate the difference of two means as precisely as the two arms do (for equal variances), not the
// arms' sum. The mixture's multiplier depends on time only through t·rho², so counting keys against
// tuningTwoArmKeys is the same as counting them times tuningTwoArm/tuningTwoArmKeys against tuningTwoArm.
//
// Why this clock is valid: each unit of the stage is an independent draw that lands in the canary with
// the stage's fixed probability π, so n_c·n_s/(n_c+n_s) = (n_c+n_s)·π̂(1-π̂) with π̂ → π almost surely.
// The sum's clock n_c+n_s times the constant π(1-π) is the same normal mixture with its prior variance
// rho² scaled by π(1-π), a constant that does not depend on the data: a valid mixture for any π. Using
// π̂ for π changes the bound by a factor that tends to 1 almost surely, the same approximation the
// asymptotic confidence sequence already makes by estimating the variance. What the clock changes is
// where the bound is tightest: against the sum of both arms, a 5% stage's comparison was tuned for 50
// canary keys and a 50% stage's for 500, while the stable arm's keys, which add little information,
// drove the clock far past either; against the information-equivalent count, every stage's comparison
// is tightest where the canary alone has about tuningTwoArmKeys keys (at small weights), as the
// one-arm bounds are.
func twoArmTime(c, s armEstimate) float64 {
	if c.units <= 0 || s.units <= 0 {
		return 0
	}
	t := c.units * s.units / (c.units + s.units)
	if c.clustered || s.clustered {
		t *= float64(tuningTwoArm) / tuningTwoArmKeys
	}
	return t
}

// oneArmTuning is the tuning constant of a one-arm bound on e.
func (e armEstimate) oneArmTuning() float64 {
	if e.clustered {
		return tuningOneArmKeys
	}
	return tuningOneArm
}

// point is the arm's point estimate; for a quantile, at rank q.
func (e armEstimate) point(q float64) float64 {
	if e.kind == Quantile {
		return e.dist.Quantile(q)
	}
	return e.mean
}
