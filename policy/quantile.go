package policy

import "math"

// Quantile limits.
//
// A quantile limit is judged through exceedance shares, which are proportions and so take the per-key
// delta method like any other ratio metric (see estimate.go): "the canary's p95 is at most r times
// stable's" is the same as "the share of canary observations above r·Q_s(0.95) is at most 5%". The
// judge compares, as one two-arm test at the limit's whole error budget,
//
//	D(r) = share of canary above r·ŝ  -  share of stable above ŝ,     ŝ = stable's estimated quantile
//
// whose variance is the canary share's plus the stable share's, the latter scaled by the ratio of the
// arms' densities (on the log scale) at their points: an error e in ŝ moves the stable share by
// f_s(ŝ)·e and the canary's by r·f_c(r·ŝ)·e, so the stable share at its own estimated quantile carries
// exactly the sampling error of ŝ (Woodruff's argument) once scaled by k = r·f_c(r·ŝ) / f_s(ŝ), and no
// second bound is needed. The judge before took k = 1, which holds where the canary is stable
// rescaled; a narrower canary (k > 1) then got a bound too narrow (TestNarrowCanaryQuantile). Each
// arm's log-scale density is estimated from its own distribution (see logDensity).
// The judge before this bounded each arm's quantile at half the budget and combined the worst ends,
// which is twice conservative; p95 comparisons needed about 7× the requests of the mean.
//
// The interval shown is the set of ratios r that this test does not reject (each end at its own level),
// which is the ratio of quantiles on the scale of the limit.

// quantileContrast compares the canary's and stable's quantiles at rank q after t units in all.
type quantileContrast struct {
	canary, stable armEstimate
	q, t           float64

	ready  bool
	s0     float64 // stable's estimated quantile
	ps, vs float64 // stable's share above s0 and its variance
	gs     float64 // stable's density on the log scale at s0 (NaN: unknown)
}

func (qc *quantileContrast) init() {
	if qc.ready {
		return
	}
	qc.ready = true
	qc.s0 = qc.stable.dist.Quantile(qc.q)
	qc.ps, qc.vs = qc.stable.exceedance(qc.s0)
	qc.gs = logDensity(qc.stable.dist, qc.s0)
}

// diff returns D(r) and its variance.
func (qc *quantileContrast) diff(r float64) (d, v float64) {
	qc.init()
	pc, vc := qc.canary.exceedance(r * qc.s0)
	k := densityRatio(logDensity(qc.canary.dist, r*qc.s0), qc.gs)
	return pc - qc.ps, vc + k*k*qc.vs
}

// The bounds of the density ratio k: beyond them an estimate is more likely noise of a few
// observations than a shape, and a ratio that cannot be estimated is taken as 1 (the arms alike).
const (
	minDensityRatio = 0.1
	maxDensityRatio = 10
)

// densityRatio is k = gc/gs, bounded; 1 where either density is unknown.
func densityRatio(gc, gs float64) float64 {
	k := gc / gs
	if !(k > 0) || math.IsInf(k, 0) {
		return 1
	}
	return math.Min(math.Max(k, minDensityRatio), maxDensityRatio)
}

// logDensity estimates the density of log X at log x from d: the share of observations between two
// quantiles around x's rank, over the distance between their logs. The quantiles are δ on either side
// (δ = 2/sqrt(n), between 2% and 5%, so that about 4·sqrt(n) observations decide, and never past
// half-way to either end); NaN where d cannot tell (no spread, no observations).
func logDensity(d Distribution, x float64) float64 {
	n := d.Count()
	if !(n > 0) || !(x > 0) {
		return math.NaN()
	}
	p := 1 - d.CountAbove(x)/n
	delta := math.Min(math.Max(2/math.Sqrt(n), 0.02), 0.05)
	lo, hi := math.Max(p-delta, p/2), math.Min(p+delta, (1+p)/2)
	qlo, qhi := d.Quantile(lo), d.Quantile(hi)
	if !(qlo > 0) || !(qhi > qlo) || !(hi > lo) {
		return math.NaN()
	}
	return (hi - lo) / (math.Log(qhi) - math.Log(qlo))
}

// bounds bounds D(r) from below at level lowAlpha and from above at highAlpha.
func (qc *quantileContrast) bounds(r, lowAlpha, highAlpha float64) (lo, hi float64) {
	d, v := qc.diff(r)
	sd := math.Sqrt(v)
	return d - csMultiplier(qc.t, lowAlpha)*sd, d + csMultiplier(qc.t, highAlpha)*sd
}

// Ratios searched for the interval's ends: a quantile a thousand times another is beyond any limit.
const (
	minQuantileRatio = 1e-3
	maxQuantileRatio = 1e3
)

// ratioBounds returns the ratios of the canary's quantile to stable's that the test does not reject:
// the low end at level lowAlpha, the high end at highAlpha. The low end is never below 0.
func (qc *quantileContrast) ratioBounds(lowAlpha, highAlpha float64) (low, high float64) {
	qc.init()
	if !(qc.s0 > 0) {
		return 0, math.Inf(1)
	}
	zl, zh := csMultiplier(qc.t, lowAlpha), csMultiplier(qc.t, highAlpha)
	// D(r) falls as r grows. The low end is where the canary stops being shown above r·ŝ, the high end
	// where it starts being shown below it.
	low = qc.crossing(func(d, sd float64) bool { return d-zl*sd <= 0 }, 0, math.Inf(1))
	high = qc.crossing(func(d, sd float64) bool { return d+zh*sd <= 0 }, minQuantileRatio, math.Inf(1))
	return low, high
}

// crossing returns the smallest ratio at which done holds, bisecting on the log scale; below for done
// already at the smallest ratio searched, above for done never.
func (qc *quantileContrast) crossing(done func(d, sd float64) bool, below, above float64) float64 {
	at := func(r float64) bool {
		d, v := qc.diff(r)
		return done(d, math.Sqrt(v))
	}
	lo, hi := math.Log(minQuantileRatio), math.Log(maxQuantileRatio)
	if at(math.Exp(lo)) {
		return below
	}
	if !at(math.Exp(hi)) {
		return above
	}
	// 25 halvings of log(1e6) leave the ratio within 0.05%.
	for range 25 {
		mid := (lo + hi) / 2
		if at(math.Exp(mid)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Exp(hi)
}

// quantileBounds bounds the arm's q-quantile, the low end at level lowAlpha and the high end at
// highAlpha, with the sequential rank bound of Howard and Ramdas (2022): a confidence sequence of the
// share of observations below the true quantile, turned into ranks and read off the distribution. The
// share's variance is over key buckets for a per-key source. An end the data cannot bound yet is ±Inf.
func (e armEstimate) quantileBounds(q, lowAlpha, highAlpha float64) (low, high float64) {
	_, v := e.exceedance(e.dist.Quantile(q))
	sd := math.Sqrt(v)
	wl := csMultiplierTuned(e.units, lowAlpha, e.oneArmTuning()) * sd
	wh := csMultiplierTuned(e.units, highAlpha, e.oneArmTuning()) * sd
	low, high = math.Inf(-1), math.Inf(1)
	if q-wl > 0 {
		low = e.dist.Quantile(q - wl)
	}
	if q+wh < 1 {
		high = e.dist.Quantile(q + wh)
	}
	return low, high
}

// quantileExcess bounds D = (share of the arm above limit) - (1-q), which is at most zero exactly when
// the arm's q-quantile is at most limit: low end at lowAlpha, high end at highAlpha.
func (e armEstimate) quantileExcess(q, limit, lowAlpha, highAlpha float64) (lo, hi float64) {
	p, v := e.exceedance(limit)
	d, sd := p-(1-q), math.Sqrt(v)
	return d - csMultiplierTuned(e.units, lowAlpha, e.oneArmTuning())*sd, d + csMultiplierTuned(e.units, highAlpha, e.oneArmTuning())*sd
}
