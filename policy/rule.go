package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rollout-dev/rollout/rollouts"
)

// MinObservations is how many units (keys for a per-key source, else requests) each arm needs before a
// rule can pass or fail. The confidence sequences are asymptotic: this burn-in keeps their normal
// approximation honest on the first ticks of a stage, when a handful of users would otherwise decide.
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
	// exempt: the rule cannot hold a stage (an advisory value, a rule without limits, a relative rule
	// at 100% where stable has no traffic). Any other rule not shown within its limits holds it.
	exempt bool
	// better: the canary is shown better than stable at the rule's confidence (for acceleration).
	better bool
	// failures are the sentences of the limits that failed, for a rollback's reasons.
	failures []string
}

// errorBudget is where a tick's error rates are spent (see docs/statistics.md).
type errorBudget struct {
	// fail is the level of each limit's rollback test: 1-confidence split evenly over the limits that
	// have data (Bonferroni), so that a healthy canary is rolled back by any rule with probability at
	// most 1-confidence.
	fail float64
	// pass is the level of each limit's advance test: 1-advanceConfidence, not split. A stage advances
	// only when every limit passes, and an intersection-union test (Berger 1982) rejects the union of
	// "some limit is broken" at level alpha when each limit's own test does.
	pass float64
	// recent is the rollback budget of each limit that the recent windows share (see recent.go).
	recent float64
	// segments is the rollback budget of each limit that the segments share (see segment.go); 0
	// without analysis.segments.
	segments float64
}

// hasData reports whether rule has the data a test needs (an advisory value does not count).
func hasData(rule rollouts.Rule, stats *Stats) bool {
	cs, ok := stats.Canary.Metrics[rule.Metric]
	if !ok || cs.N <= 0 || cs.Kind == Value {
		return false
	}
	if rule.MaxIncrease != nil || rule.MaxDecrease != nil {
		ss, ok := stats.Stable.Metrics[rule.Metric]
		return ok && ss.N > 0
	}
	return true
}

// judgeRule judges one rule over stats with the error budget of each of its limits.
func judgeRule(rule rollouts.Rule, stats *Stats, budget errorBudget) ruleOutcome {
	out := judgeRuleData(rule, stats, budget)
	if m, ok := stats.Matured[rule.Metric]; ok {
		out.Matured = &m
		out.Reason += " (" + m.words() + ")"
		for i := range out.failures {
			out.failures[i] += " (" + m.words() + ")"
		}
	}
	return out
}

// judgeRuleData judges one rule over stats, whatever window its data covers.
func judgeRuleData(rule rollouts.Rule, stats *Stats, budget errorBudget) ruleOutcome {
	label := labelOf(rule.Metric)
	out := ruleOutcome{RuleResult: RuleResult{Name: rule.Metric, Rule: rule, Verdict: Inconclusive}}
	ss, sok := stats.Stable.Metrics[rule.Metric]
	cs, cok := stats.Canary.Metrics[rule.Metric]
	stable, sok := estimate(ss, sok, stats.Unit, stats.Stable.Keys)
	canary, cok := estimate(cs, cok, stats.Unit, stats.Canary.Keys)
	stableP, canaryP := stable, canary // the pass side's estimates
	if sok && cok && (stable.kind == Proportion || stable.kind == Mean) && stable.kind == canary.kind {
		borrowSpread(&stableP, &canaryP)
	}
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
		out.exempt = true
		return out
	case !cok && (!sok && needStable):
		out.Reason = label.words + ": no data for either arm"
		return out
	case !cok:
		out.Reason = label.words + ": no data for the canary"
		return out
	case canary.kind == Value:
		return advisory(out, label, limits, stable, canary, sok)
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
	if canary.units < MinObservations || (needStable && stable.units < MinObservations) {
		unit := "observations"
		if canary.clustered {
			unit = "keys"
		}
		out.Reason = fmt.Sprintf("%s: too few %s yet (canary %d, stable %d; %d each needed)",
			label.words, unit, int64(canary.units), int64(stable.units), MinObservations)
		return out
	}

	checks := make([]check, len(limits))
	decisive := -1
	passes := 0
	for i, l := range limits {
		checks[i] = judgeLimitEnds(label, l, stable, canary, stableP, canaryP, budget)
		switch checks[i].verdict {
		case Fail:
			if out.Verdict != Fail {
				decisive = i
			}
			out.Verdict = Fail
		case Pass:
			passes++
		case Inconclusive:
			if decisive < 0 {
				decisive = i
			}
		}
	}
	if passes == len(limits) {
		out.Verdict, decisive = Pass, 0
		if why := collapsed(canary, stable, needStable); why != "" {
			// A few keys hold most of an arm's requests: the normal approximation behind the bound
			// has too few units to stand on, so the rule is not passed, whatever its interval.
			out.Verdict = Inconclusive
			for i := range checks {
				checks[i].verdict = Inconclusive
				checks[i].sentence += ", but " + why
			}
		}
	}
	iv := checks[decisive].interval
	out.Interval = &iv
	sentences := make([]string, len(checks))
	for i, c := range checks {
		sentences[i] = c.sentence
		civ := c.interval
		out.Limits = append(out.Limits, LimitResult{Limit: limits[i].words(), Verdict: c.verdict, Interval: &civ})
		if c.verdict == Fail {
			out.failures = append(out.failures, c.sentence)
		}
	}
	out.Reason = strings.Join(sentences, "; ")
	if sok {
		out.better = shownBetter(label, limits[0].upper(), stable, canary, budget.fail)
	}
	return out
}

// collapsed says why a rule cannot pass when an arm's effective number of key buckets (see
// kishEffective) is below MinObservations, else "".
func collapsed(canary, stable armEstimate, needStable bool) string {
	var parts []string
	for _, a := range []struct {
		name string
		e    armEstimate
		need bool
	}{{"canary", canary, true}, {"stable", stable, needStable}} {
		if a.need && a.e.clustered && a.e.effective < MinObservations {
			parts = append(parts, fmt.Sprintf("%s's requests come from few keys (effective keys %s of %d)",
				a.name, trimFloat(a.e.effective, 1), int64(a.e.units)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "not passed yet: " + strings.Join(parts, ", ") + fmt.Sprintf("; %d effective keys each needed", MinObservations)
}

// advisory reports a rule whose source returned a bare value: shown with its limits, never a cause to
// act, since a single number carries no sampling error the judge could test.
func advisory(out ruleOutcome, label metricLabel, limits []limit, stable, canary armEstimate, haveStable bool) ruleOutcome {
	out.Advisory, out.exempt = true, true
	var parts []string
	for _, l := range limits {
		switch {
		case l.relative() && !haveStable:
			parts = append(parts, "no stable value to compare with ("+l.words()+")")
		case l.relative():
			parts = append(parts, fmt.Sprintf("%s vs %s (%s) against %s", label.value(canary.mean),
				label.value(stable.mean), relative(safeRatio(canary.mean, stable.mean)-1), l.words()))
		default:
			parts = append(parts, fmt.Sprintf("%s against %s", label.value(canary.mean), l.words()))
		}
	}
	out.Reason = fmt.Sprintf("%s: %s (advisory: the query returns one value with no sample behind it, so it is shown and never acted on; return counts, or sum, sum of squares and count, to have it judged)",
		label.words, strings.Join(parts, "; "))
	return out
}

// words writes a limit as the spec does.
func (l limit) words() string {
	switch l.kind {
	case limitMaxIncrease:
		return "maxIncrease " + strings.TrimPrefix(relative(l.value), "+")
	case limitMaxDecrease:
		return "maxDecrease " + strings.TrimPrefix(relative(l.value), "+")
	case limitMax:
		return "max " + strconv.FormatFloat(l.value, 'g', -1, 64)
	default:
		return "min " + strconv.FormatFloat(l.value, 'g', -1, 64)
	}
}

// check is the outcome of one limit of a rule.
type check struct {
	verdict  Verdict
	interval Interval
	sentence string
}

// ends returns the levels of the low and the high end of a limit's interval: the end that can show a
// breach is the rollback test's (budget.fail), the other the advance test's (budget.pass).
func ends(upper bool, budget errorBudget) (lowAlpha, highAlpha float64) {
	if upper {
		return budget.fail, budget.pass
	}
	return budget.pass, budget.fail
}

// decide turns a limit's bounds into a verdict. lo and hi bound a quantity that must stay at or below
// zero (upper) or at or above it, each end at its own level (see ends).
func decide(upper bool, lo, hi float64) Verdict {
	if !upper {
		lo, hi = -hi, -lo
	}
	switch {
	case lo > 0:
		return Fail
	case hi <= 0:
		return Pass
	}
	return Inconclusive
}

// judgeLimit judges one limit.
func judgeLimit(label metricLabel, l limit, stable, canary armEstimate, budget errorBudget) check {
	var c check
	lowAlpha, highAlpha := ends(l.upper(), budget)
	if l.relative() {
		r := 1 + l.value
		if l.kind == limitMaxDecrease {
			r = 1 - l.value
		}
		t := twoArmTime(canary, stable)
		var lo, hi, lowRatio, highRatio float64
		if canary.kind == Quantile {
			qc := quantileContrast{canary: canary, stable: stable, q: label.q, t: t}
			lo, hi = qc.bounds(r, lowAlpha, highAlpha)
			lowRatio, highRatio = qc.ratioBounds(lowAlpha, highAlpha)
		} else {
			zl, zh := csMultiplier(t, lowAlpha), csMultiplier(t, highAlpha)
			lo = contrastBoundsZ(canary.mean, canary.v, stable.mean, stable.v, r, zl).low
			hi = contrastBoundsZ(canary.mean, canary.v, stable.mean, stable.v, r, zh).high
			lowRatio, _ = ratioBoundsZ(canary.mean, canary.v, stable.mean, stable.v, zl)
			_, highRatio = ratioBoundsZ(canary.mean, canary.v, stable.mean, stable.v, zh)
			lowRatio = clampRatio(lowRatio, canary.mean, stable.mean)
			exactLow := canary.kind == Proportion && !canary.clustered && !stable.clustered
			if canary.mean > 0 && stable.mean > 0 {
				// The end that can show a breach is bounded on the log scale (logRatioBound): with
				// the observed variance, Fieller's bound is conservative there, the more so the worse
				// the canary, which is what made a regression slow to roll back. A low end that is
				// exact (below) stays exact.
				switch {
				case l.upper() && !exactLow:
					lowRatio = logRatioBound(canary.mean, canary.v, stable.mean, stable.v, zl, false)
					lo = math.Log(lowRatio) - math.Log(r)
				case !l.upper():
					highRatio = logRatioBound(canary.mean, canary.v, stable.mean, stable.v, zh, true)
					hi = math.Log(highRatio) - math.Log(r)
				}
			}
			if exactLow {
				// Rates of independent requests: the low end is the exact conditional bound
				// (rateRatioBound), chosen for this end in advance because it is the tighter one
				// where events are few; the high end keeps the normal mixture (docs/statistics.md).
				lowRatio = rateRatioBound(math.Round(canary.mean*canary.n), canary.n,
					math.Round(stable.mean*stable.n), stable.n, lowAlpha, r, false)
				lo = lowRatio - r
			}
		}
		c.verdict = decide(l.upper(), lo, hi)
		c.interval = Interval{Low: lowRatio - 1, High: highRatio - 1, Scale: ScaleRelative,
			LowConfidence: 1 - lowAlpha, HighConfidence: 1 - highAlpha}
		c.sentence = limitSentence(label, l, stable, canary, c)
		return c
	}
	var lo, hi float64
	switch {
	case canary.kind == Quantile:
		lo, hi = canary.quantileBounds(label.q, lowAlpha, highAlpha)
		dLo, dHi := canary.quantileExcess(label.q, l.value, lowAlpha, highAlpha)
		c.verdict = decide(l.upper(), dLo, dHi)
	case canary.kind == Proportion && !canary.clustered:
		k := math.Round(canary.mean * canary.n)
		lo = betaBinomialBound(k, canary.n, lowAlpha, l.value, false)
		hi = betaBinomialBound(k, canary.n, highAlpha, l.value, true)
	default:
		lo = canary.mean - csMultiplierTuned(canary.units, lowAlpha, canary.oneArmTuning())*math.Sqrt(canary.v)
		hi = canary.mean + csMultiplierTuned(canary.units, highAlpha, canary.oneArmTuning())*math.Sqrt(canary.v)
		if canary.kind == Proportion {
			// A rate lies in [0, 1]; clamping changes no verdict, since every limit on a rate does too.
			lo, hi = max(lo, 0), min(hi, 1)
		}
	}
	if canary.kind != Quantile {
		c.verdict = decide(l.upper(), lo-l.value, hi-l.value)
	}
	c.interval = Interval{Low: lo, High: hi, Scale: ScaleAbsolute, LowConfidence: 1 - lowAlpha, HighConfidence: 1 - highAlpha}
	c.sentence = limitSentence(label, l, stable, canary, c)
	return c
}

// limitSentence words a limit's verdict for a product engineer: both values, how far the interval's
// decisive end shows the canary from stable (or from the limit) and how sure that end is, the limit, and
// what follows. The interval's two ends and their levels are in the evidence's details and in JSON.
func limitSentence(label metricLabel, l limit, stable, canary armEstimate, c check) string {
	iv := c.interval
	// worst is the end that can show the limit broken, best the one that can show it kept.
	worst, worstSure, best, bestSure := iv.Low, iv.LowConfidence, iv.High, iv.HighConfidence
	if !l.upper() {
		worst, worstSure, best, bestSure = iv.High, iv.HighConfidence, iv.Low, iv.LowConfidence
	}
	// worstWords and bestWords say which way each end reaches.
	worstWords, bestWords := "as low as", "as high as"
	if !l.upper() {
		worstWords, bestWords = bestWords, worstWords
	}
	sure := func(c float64) string {
		if c <= 0 {
			return ""
		}
		return " (" + confidenceWords(c) + " sure)"
	}
	if l.relative() {
		allowed := relative(l.value)
		side, beyond := "above", "worse"
		if l.kind == limitMaxDecrease {
			allowed, side = relative(-l.value), "below"
		}
		head := fmt.Sprintf("%s %s vs %s: ", label.words, label.value(canary.point(label.q)), label.value(stable.point(label.q)))
		point := safeRatio(canary.point(label.q), stable.point(label.q)) - 1
		switch {
		case c.verdict == Fail:
			return head + fmt.Sprintf("at least %s %s%s, %s the %s allowed → roll back", magnitude(worst, l.upper()), beyond, sure(worstSure), side, allowed)
		case c.verdict == Pass && (l.upper() && best <= 0 || !l.upper() && best >= 0):
			return head + fmt.Sprintf("at least %s better%s, within the %s allowed", strings.TrimPrefix(relative(math.Abs(best)), "+"), sure(bestSure), allowed)
		case c.verdict == Pass:
			return head + fmt.Sprintf("at most %s worse%s, within the %s allowed", magnitude(best, l.upper()), sure(bestSure), allowed)
		case l.upper() && point > l.value || !l.upper() && point < -l.value:
			return head + fmt.Sprintf("%s so far, %s the %s allowed but not yet sure%s", relative(point), side, allowed, couldBe(worst, relative, worstWords))
		default:
			return head + fmt.Sprintf("%s so far, not yet sure it stays within the %s allowed%s", relative(point), allowed, couldBe(best, relative, bestWords))
		}
	}
	head := fmt.Sprintf("%s %s: ", label.words, label.value(canary.point(label.q)))
	bound, side := "maximum", "above"
	if !l.upper() {
		bound, side = "minimum", "below"
	}
	limit := label.value(l.value)
	point := canary.point(label.q)
	switch {
	case c.verdict == Fail && l.upper():
		return head + fmt.Sprintf("at least %s%s, above the %s %s → roll back", label.value(worst), sure(worstSure), limit, bound)
	case c.verdict == Fail:
		return head + fmt.Sprintf("at most %s%s, below the %s %s → roll back", label.value(worst), sure(worstSure), limit, bound)
	case c.verdict == Pass && l.upper():
		return head + fmt.Sprintf("at most %s%s, within the %s maximum", label.value(best), sure(bestSure), limit)
	case c.verdict == Pass:
		return head + fmt.Sprintf("at least %s%s, above the %s minimum", label.value(best), sure(bestSure), limit)
	case l.upper() && point > l.value || !l.upper() && point < l.value:
		return head + fmt.Sprintf("%s the %s %s but not yet sure%s", side, limit, bound, couldBe(worst, label.value, worstWords))
	default:
		return head + fmt.Sprintf("not yet sure it stays within the %s %s%s", limit, bound, couldBe(best, label.value, bestWords))
	}
}

// magnitude writes a relative change as the size of a move in the limit's bad direction: signed for an
// upper limit (+81%), unsigned for a lower one (12%, below stable).
func magnitude(v float64, upper bool) string {
	if upper {
		return relative(v)
	}
	return strings.TrimPrefix(relative(-v), "+")
}

// couldBe says how far an inconclusive interval still reaches, or that the data cannot bound it yet.
func couldBe(v float64, format func(float64) string, words string) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return " (too little data to bound it yet)"
	}
	return " (it could be " + words + " " + format(v) + ")"
}

// judgeLimitEnds judges a limit with the end that can show it broken from the arms' own estimates
// (stable, canary) and the end that can show it kept from the estimates whose variances are floored
// by the borrowed spread (stableP, canaryP; see borrowSpread). Each end is its own one-sided test, so
// widening one end only makes that test more conservative: a canary is never kept from rolling back by
// keys it did not draw, and never passed without them.
func judgeLimitEnds(label metricLabel, l limit, stable, canary, stableP, canaryP armEstimate, budget errorBudget) check {
	f := judgeLimit(label, l, stable, canary, budget)
	if stableP.v == stable.v && canaryP.v == canary.v {
		return f
	}
	p := judgeLimit(label, l, stableP, canaryP, budget)
	c := f
	switch {
	case f.verdict == Fail:
	case p.verdict == Pass:
		c.verdict = Pass
	default:
		c.verdict = Inconclusive
	}
	if l.upper() {
		c.interval.High = p.interval.High
	} else {
		c.interval.Low = p.interval.Low
	}
	c.sentence = limitSentence(label, l, stable, canary, c)
	return c
}

// shownBetter reports whether the canary is shown better than stable at level alpha: lower when the
// rule caps the metric from above, higher otherwise.
func shownBetter(label metricLabel, upper bool, stable, canary armEstimate, alpha float64) bool {
	t := twoArmTime(canary, stable)
	var low, high float64
	if canary.kind == Quantile {
		qc := quantileContrast{canary: canary, stable: stable, q: label.q, t: t}
		low, high = qc.bounds(1, alpha, alpha)
	} else {
		b := contrastBounds(canary.mean, canary.v, stable.mean, stable.v, 1, t, alpha)
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
