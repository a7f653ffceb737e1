package policy

import (
	"fmt"
	"math"
	"strings"

	"github.com/rollout-dev/rollout/rollouts"
)

// MinObservations is how many observations each arm needs before a rule can pass or fail. The
// confidence sequences are asymptotic: this burn-in keeps their normal approximation honest on the
// first ticks of a stage, when a handful of requests would otherwise decide.
const MinObservations = 30

// limitKind is one kind of limit a rule may set.
type limitKind int

const (
	limitMaxIncrease limitKind = iota
	limitMaxDecrease
	limitMax
	limitMin
)

// limit is one limit of a rule: a relative one (maxIncrease, maxDecrease) or an absolute one.
type limit struct {
	kind  limitKind
	value float64
}

func (l limit) relative() bool { return l.kind == limitMaxIncrease || l.kind == limitMaxDecrease }

// upper reports whether the limit caps the metric from above (it gets worse as it rises).
func (l limit) upper() bool { return l.kind == limitMaxIncrease || l.kind == limitMax }

// limitsOf lists a rule's limits, relative ones first so that they lead its sentence.
func limitsOf(r rollouts.Rule) []limit {
	var ls []limit
	if r.MaxIncrease != nil {
		ls = append(ls, limit{limitMaxIncrease, float64(*r.MaxIncrease)})
	}
	if r.MaxDecrease != nil {
		ls = append(ls, limit{limitMaxDecrease, float64(*r.MaxDecrease)})
	}
	if r.Max != nil {
		ls = append(ls, limit{limitMax, *r.Max})
	}
	if r.Min != nil {
		ls = append(ls, limit{limitMin, *r.Min})
	}
	return ls
}

// ruleOutcome is a rule's evidence plus what the decision needs besides the verdict.
type ruleOutcome struct {
	RuleResult
	// withinLimits: every limit's point estimate is within it (false without data).
	withinLimits bool
	// better: the canary is shown better than stable at the rule's confidence (for acceleration).
	better bool
	// failures are the sentences of the limits that failed, for a rollback's reasons.
	failures []string
}

// armEstimate is one arm's estimate of a metric.
type armEstimate struct {
	kind SampleKind
	n    float64
	mean float64 // Proportion, Mean, Value
	v    float64 // variance of mean (Proportion, Mean)
	dist Distribution
}

// estimate reads one arm's sample; ok is false when the arm has no data for the metric.
func estimate(s Sample, present bool) (armEstimate, bool) {
	if !present || s.N <= 0 {
		return armEstimate{}, false
	}
	e := armEstimate{kind: s.Kind, n: float64(s.N)}
	switch s.Kind {
	case Proportion:
		e.mean = s.Sum / e.n
		// The variance uses the Agresti–Coull-style shrunk rate, so that 0 errors in 40 requests
		// is not read as a certainty that the rate is zero.
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
	case Value:
		e.mean = s.Sum
	default:
		return armEstimate{}, false
	}
	if math.IsNaN(e.mean) || math.IsInf(e.mean, 0) {
		return armEstimate{}, false
	}
	return e, true
}

// point is the arm's point estimate; for a quantile, at rank q.
func (e armEstimate) point(q float64) float64 {
	if e.kind == Quantile {
		return e.dist.Quantile(q)
	}
	return e.mean
}

// quantileBounds bounds the arm's q-quantile at level alpha with the sequential rank bound of Howard
// and Ramdas (2022): the confidence sequence of the share of observations below the true quantile,
// turned into ranks, read off the distribution. An end the data cannot bound yet is ±Inf.
func (e armEstimate) quantileBounds(q, alpha float64) (low, high float64) {
	w := csMultiplier(e.n, alpha) * math.Sqrt(q*(1-q)/e.n)
	low, high = math.Inf(-1), math.Inf(1)
	if q-w > 0 {
		low = e.dist.Quantile(q - w)
	}
	if q+w < 1 {
		high = e.dist.Quantile(q + w)
	}
	return low, high
}

// check is the outcome of one limit of a rule.
type check struct {
	verdict  Verdict
	interval Interval
	within   bool // point estimate within the limit
	sentence string
}

// judgeRule judges one rule over stats. alpha is the error budget of each of the rule's limits (the
// Bonferroni share); confidence is the spec's, for the sentences.
func judgeRule(rule rollouts.Rule, stats *Stats, alpha, confidence float64) ruleOutcome {
	label := labelOf(rule.Metric)
	out := ruleOutcome{RuleResult: RuleResult{Name: rule.Metric, Rule: rule, Verdict: Inconclusive}}
	ss, sok := stats.Stable.Metrics[rule.Metric]
	cs, cok := stats.Canary.Metrics[rule.Metric]
	stable, sok := estimate(ss, sok)
	canary, cok := estimate(cs, cok)
	limits := limitsOf(rule)
	needStable := false
	for _, l := range limits {
		needStable = needStable || l.relative()
	}
	if sok {
		out.Stable = ArmValue{N: int64(stable.n), Value: stable.point(label.q)}
	}
	if cok {
		out.Canary = ArmValue{N: int64(canary.n), Value: canary.point(label.q)}
	}
	switch {
	case len(limits) == 0:
		out.Reason = label.words + ": the rule sets no limit"
		return out
	case !cok && (!sok && needStable):
		out.Reason = label.words + ": no data for either arm"
		return out
	case !cok:
		out.Reason = label.words + ": no data for the canary"
		return out
	case !sok && needStable:
		out.Reason = label.words + ": no data for the stable arm"
		return out
	case sok && needStable && stable.kind != canary.kind:
		out.Reason = fmt.Sprintf("%s: the arms report different kinds of statistics", label.words)
		return out
	case canary.kind == Quantile && label.q == 0:
		out.Reason = label.words + ": a quantile metric needs a _pNN suffix to know its rank"
		return out
	}
	if canary.kind != Value && (canary.n < MinObservations || (needStable && stable.n < MinObservations)) {
		out.Reason = fmt.Sprintf("%s: too few observations yet (canary %d, stable %d; %d each needed)",
			label.words, int64(canary.n), int64(stable.n), MinObservations)
		return out
	}

	checks := make([]check, len(limits))
	decisive := 0
	fails, passes, within := 0, 0, 0
	for i, l := range limits {
		checks[i] = judgeLimit(label, l, stable, canary, alpha, confidence)
		switch checks[i].verdict {
		case Fail:
			if fails == 0 {
				decisive = i
			}
			fails++
		case Pass:
			passes++
		}
		if checks[i].within {
			within++
		}
	}
	switch {
	case fails > 0:
		out.Verdict = Fail
	case passes == len(limits):
		out.Verdict = Pass
	}
	out.withinLimits = within == len(limits)
	iv := checks[decisive].interval
	out.Interval = &iv
	sentences := make([]string, len(checks))
	for i, c := range checks {
		sentences[i] = c.sentence
		if c.verdict == Fail {
			out.failures = append(out.failures, c.sentence)
		}
	}
	out.Reason = strings.Join(sentences, "; ")
	out.better = shownBetter(label, limits[0].upper(), stable, canary, alpha, sok)
	return out
}

// judgeLimit judges one limit.
func judgeLimit(label metricLabel, l limit, stable, canary armEstimate, alpha, confidence float64) check {
	if canary.kind == Value {
		return exactLimit(label, l, stable, canary)
	}
	var c check
	conf := confidenceWords(confidence)
	if l.relative() {
		r := 1 + l.value
		if l.kind == limitMaxDecrease {
			r = 1 - l.value
		}
		var low, high, lowRatio, highRatio, est float64
		if canary.kind == Quantile {
			// Each arm's quantile is bounded at half the budget, so that both hold together.
			cl, ch := canary.quantileBounds(label.q, alpha/2)
			sl, sh := stable.quantileBounds(label.q, alpha/2)
			est = canary.point(label.q) - r*stable.point(label.q)
			low, high = cl-r*sh, ch-r*sl
			lowRatio, highRatio = safeRatio(cl, sh), safeRatio(ch, sl)
		} else {
			b := contrastBounds(canary.mean, canary.v, stable.mean, stable.v, r, canary.n+stable.n, alpha)
			est, low, high = b.estimate, b.low, b.high
			lowRatio, highRatio = ratioBounds(canary.mean, canary.v, stable.mean, stable.v, canary.n+stable.n, alpha)
		}
		c.verdict, c.within = verdictOf(l.upper(), est, low, high)
		c.interval = Interval{Low: lowRatio - 1, High: highRatio - 1}
		allowed := relative(l.value)
		if l.kind == limitMaxDecrease {
			allowed = relative(-l.value)
		}
		c.sentence = fmt.Sprintf("%s %s vs %s (%s, %s CS %s..%s) %s the allowed %s",
			label.words, label.value(canary.point(label.q)), label.value(stable.point(label.q)),
			relative(safeRatio(canary.point(label.q), stable.point(label.q))-1), conf,
			relative(c.interval.Low), relative(c.interval.High), relativeVerb(c.verdict, l.upper()), allowed)
		return c
	}
	var lo, hi float64
	if canary.kind == Quantile {
		lo, hi = canary.quantileBounds(label.q, alpha)
	} else {
		hw := csMultiplier(canary.n, alpha) * math.Sqrt(canary.v)
		lo, hi = canary.mean-hw, canary.mean+hw
		if canary.kind == Proportion {
			// A rate lies in [0, 1]; clamping changes no verdict, since every limit on a rate does too.
			lo, hi = max(lo, 0), min(hi, 1)
		}
	}
	est := canary.point(label.q)
	c.verdict, c.within = verdictOf(l.upper(), est-l.value, lo-l.value, hi-l.value)
	c.interval = Interval{Low: lo, High: hi}
	c.sentence = fmt.Sprintf("%s %s (%s CS %s..%s) %s %s", label.words, label.value(est), conf,
		label.value(lo), label.value(hi), absoluteVerb(c.verdict, l.upper()), label.value(l.value))
	return c
}

// verdictOf judges a quantity that must stay at or below zero (upper) or at or above it, from its
// estimate and bounds.
func verdictOf(upper bool, est, low, high float64) (Verdict, bool) {
	if !upper {
		est, low, high = -est, -high, -low
	}
	switch {
	case low > 0:
		return Fail, est <= 0
	case high <= 0:
		return Pass, true
	default:
		return Inconclusive, est <= 0
	}
}

// exactLimit judges a limit on Value samples, which carry no sampling error.
func exactLimit(label metricLabel, l limit, stable, canary armEstimate) check {
	var c check
	if l.relative() {
		r := 1 + l.value
		allowed := relative(l.value)
		if l.kind == limitMaxDecrease {
			r, allowed = 1-l.value, relative(-l.value)
		}
		d := canary.mean - r*stable.mean
		c.verdict, c.within = verdictOf(l.upper(), d, d, d)
		rel := safeRatio(canary.mean, stable.mean) - 1
		c.interval = Interval{Low: rel, High: rel}
		c.sentence = fmt.Sprintf("%s %s vs %s (%s, exact) %s the allowed %s", label.words,
			label.value(canary.mean), label.value(stable.mean), relative(rel),
			relativeVerb(c.verdict, l.upper()), allowed)
		return c
	}
	d := canary.mean - l.value
	c.verdict, c.within = verdictOf(l.upper(), d, d, d)
	c.interval = Interval{Low: canary.mean, High: canary.mean}
	c.sentence = fmt.Sprintf("%s %s (exact) %s %s", label.words, label.value(canary.mean),
		absoluteVerb(c.verdict, l.upper()), label.value(l.value))
	return c
}

// shownBetter reports whether the canary is shown better than stable: lower when the rule caps the
// metric from above, higher otherwise.
func shownBetter(label metricLabel, upper bool, stable, canary armEstimate, alpha float64, haveStable bool) bool {
	if !haveStable {
		return false
	}
	var est, low, high float64
	switch canary.kind {
	case Value:
		est = canary.mean - stable.mean
		low, high = est, est
	case Quantile:
		cl, ch := canary.quantileBounds(label.q, alpha/2)
		sl, sh := stable.quantileBounds(label.q, alpha/2)
		low, high = cl-sh, ch-sl
	default:
		b := contrastBounds(canary.mean, canary.v, stable.mean, stable.v, 1, canary.n+stable.n, alpha)
		low, high = b.low, b.high
	}
	if upper {
		return high < 0
	}
	return low > 0
}

func safeRatio(a, b float64) float64 {
	switch {
	case b > 0:
		return a / b
	case a > 0 || math.IsInf(a, 1):
		return math.Inf(1)
	case a == 0 && b == 0:
		return 1
	default:
		return math.Inf(-1)
	}
}

func relativeVerb(v Verdict, upper bool) string {
	switch {
	case v == Fail && upper:
		return "exceeds"
	case v == Fail:
		return "falls below"
	case v == Pass:
		return "is within"
	default:
		return "is not yet shown within"
	}
}

func absoluteVerb(v Verdict, upper bool) string {
	switch {
	case v == Fail && upper:
		return "exceeds the maximum"
	case v == Fail:
		return "falls below the minimum"
	case v == Pass && upper:
		return "is within the maximum"
	case v == Pass:
		return "is within the minimum"
	case upper:
		return "is not yet shown within the maximum"
	default:
		return "is not yet shown within the minimum"
	}
}
