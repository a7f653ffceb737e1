package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// What the next stage costs.
//
// A canary that costs more per request costs more per day with every stage: a 2× cost at 5% is a small
// bill, at 100% it is the budget. So the judge projects, from the canary's and stable's measured cost
// per request over the stage window and the rollout's measured traffic, the extra spend per day at the
// next stage's weight and at 100%, with an always-valid interval:
//
//	extra/day at weight w = (cost per request of the canary − of stable) × requests per day × w
//
// The interval is that of the difference in cost per request (the two-arm contrast every relative rule
// uses, per key where the source knows keys), scaled by the traffic; the traffic is taken as known (a
// count, whose relative error is far below that of a difference in means). Requests per day are the
// rollout's user-facing requests in the window (both arms, mirrored calls left out) over its length.
//
// A rule on projected_extra_cost_per_day (`max`, USD per day) fails when the projection at the next
// stage's weight is shown above it at the rollback level, and passes when it is shown below at the
// advance level, as any absolute limit: a canary whose cost is 2× trips it at the stage where the
// projection at the next weight crosses the limit. The PR body shows the projection at the next stage
// and at 100% whether or not a rule limits it.

// ProjectedCostMetric is the built-in metric of the next stage's extra spend per day, in USD.
const ProjectedCostMetric = "projected_extra_cost_per_day"

// isProjectedCost reports whether r limits the projected extra cost (by its name or its alias).
func isProjectedCost(r rollouts.Rule) bool {
	return r.Query == "" && (r.Metric == ProjectedCostMetric || rollouts.MetricAliases[r.Metric] == ProjectedCostMetric)
}

// costMetric is the metric the projection is computed from.
const costMetric = "cost_per_request"

// CostProjection is the canary's extra spend per day, projected from the stage's evidence.
type CostProjection struct {
	// RequestsPerDay is the rollout's measured traffic: user-facing requests per day, both arms.
	RequestsPerDay float64 `json:"requestsPerDay"`
	// ExtraPerRequest is the canary's cost per request minus stable's, in USD.
	ExtraPerRequest float64 `json:"extraPerRequest"`
	// NextWeight is the weight of the stage the rollout would go to next (100 for a promotion).
	NextWeight int `json:"nextWeight"`
	// Next and Full are the extra USD per day at NextWeight and at 100%, with their intervals.
	Next CostAt `json:"next"`
	Full CostAt `json:"full"`
}

// CostAt is a projected extra spend per day at one weight, with its always-valid interval.
type CostAt struct {
	Weight   int      `json:"weight"`
	PerDay   float64  `json:"perDay"`
	Interval Interval `json:"interval"`
}

// costProjection projects stats' cost difference at the next stage of spec, over a window from..now,
// with each end of the interval at its own level (lowAlpha, highAlpha: the rule's, or both
// (1-confidence)/2 without one). It returns nil when an arm has no cost data, too few units, or the
// window has no length.
func costProjection(spec *rollouts.Spec, stats *Stats, from, now time.Time, lowAlpha, highAlpha float64) *CostProjection {
	ss, sok := stats.Stable.Metrics[costMetric]
	cs, cok := stats.Canary.Metrics[costMetric]
	stable, sok := estimate(ss, sok, stats.Unit, stats.Stable.Keys)
	canary, cok := estimate(cs, cok, stats.Unit, stats.Canary.Keys)
	elapsed := now.Sub(from)
	if !sok || !cok || stable.kind != Mean || canary.kind != Mean || elapsed <= 0 ||
		stable.units < MinObservations || canary.units < MinObservations {
		return nil
	}
	requests := float64(stats.Stable.Requests + stats.Canary.Requests - stats.Shadow)
	perDay := requests / elapsed.Hours() * 24
	t := twoArmTime(canary, stable)
	lo := contrastBoundsZ(canary.mean, canary.v, stable.mean, stable.v, 1, csMultiplier(t, lowAlpha))
	hi := contrastBoundsZ(canary.mean, canary.v, stable.mean, stable.v, 1, csMultiplier(t, highAlpha))
	at := func(w int) CostAt {
		scale := perDay * float64(w) / 100
		return CostAt{Weight: w, PerDay: lo.estimate * scale, Interval: Interval{Low: lo.low * scale, High: hi.high * scale,
			Scale: ScaleAbsolute, LowConfidence: 1 - lowAlpha, HighConfidence: 1 - highAlpha}}
	}
	p := &CostProjection{RequestsPerDay: perDay, ExtraPerRequest: lo.estimate, NextWeight: nextWeight(spec)}
	p.Next, p.Full = at(p.NextWeight), at(100)
	return p
}

// nextWeight is the weight of the stage after spec's current one: 100 from the last stage (a promotion
// sends every user to the canary), and the next stage's weight otherwise.
func nextWeight(spec *rollouts.Spec) int {
	st := spec.Status
	if st == nil || st.Stage+1 >= len(spec.Stages) {
		return 100
	}
	return spec.Stages[st.Stage+1].Weight
}

// judgeCost fills in the projection of d and judges the rules on ProjectedCostMetric in outs (the
// stage's rule outcomes, in the spec's order), over the window from..now.
func judgeCost(spec *rollouts.Spec, stats *Stats, from, now time.Time, outs []ruleOutcome, d *Decision) {
	budget := budgetOf(spec, stats)
	conf := spec.Analysis.Confidence
	if conf <= 0 || conf >= 1 {
		conf = rollouts.DefaultConfidence
	}
	d.Cost = costProjection(spec, stats, from, now, (1-conf)/2, (1-conf)/2)
	stageWeight := 100
	if st := spec.Status; st != nil && st.Stage >= 0 && st.Stage < len(spec.Stages) {
		stageWeight = spec.Stages[st.Stage].Weight
	}
	for i, r := range spec.Analysis.Rules {
		if !isProjectedCost(r) {
			continue
		}
		outs[i] = judgeCostRule(spec, r, stats, from, now, budget, stageWeight)
	}
}

// judgeCostRule judges one rule on ProjectedCostMetric: its max at the next stage's weight (a min,
// which validation refuses, bounds it from below the same way).
func judgeCostRule(spec *rollouts.Spec, r rollouts.Rule, stats *Stats, from, now time.Time, budget errorBudget, stageWeight int) ruleOutcome {
	label := labelOf(ProjectedCostMetric)
	out := ruleOutcome{RuleResult: RuleResult{Name: r.Metric, Rule: r, Verdict: Inconclusive}}
	limits := limitsOf(r)
	if stageWeight == 100 {
		out.exempt = true
		out.Reason = label.words + ": not judged at 100%: every user is on the canary already"
		return out
	}
	if len(limits) == 0 {
		out.exempt = true
		out.Reason = label.words + ": the rule sets no limit"
		return out
	}
	var sentences []string
	decisive := -1
	passes := 0
	for _, l := range limits {
		if l.relative() {
			out.Reason = label.words + ": has no stable value to compare with; limit it with max"
			return out
		}
		lowAlpha, highAlpha := ends(l.upper(), budget)
		p := costProjection(spec, stats, from, now, lowAlpha, highAlpha)
		if p == nil {
			out.Reason = fmt.Sprintf("%s: needs cost_per_request of both arms, %d keys or requests each", label.words, MinObservations)
			return out
		}
		out.Canary = ArmValue{N: stats.Canary.Metrics[costMetric].N, Value: p.Next.PerDay}
		iv := p.Next.Interval
		v := decide(l.upper(), iv.Low-l.value, iv.High-l.value)
		sentence := fmt.Sprintf("%s at %d%% %s/day (%s requests a day, %s a request): %s; at 100%% %s/day",
			label.words, p.NextWeight, signedDollars(p.Next.PerDay),
			strconv.FormatFloat(math.Round(p.RequestsPerDay), 'f', 0, 64), signedDollars(p.ExtraPerRequest),
			costVerdict(v, l.upper(), iv, l.value), signedDollars(p.Full.PerDay))
		sentences = append(sentences, sentence)
		out.Limits = append(out.Limits, LimitResult{Limit: l.words(), Verdict: v, Interval: &iv})
		switch v {
		case Fail:
			out.failures = append(out.failures, sentence)
			if out.Verdict != Fail {
				decisive = len(out.Limits) - 1
			}
			out.Verdict = Fail
		case Pass:
			passes++
		default:
			if decisive < 0 {
				decisive = len(out.Limits) - 1
			}
		}
	}
	if passes == len(limits) {
		out.Verdict, decisive = Pass, 0
	}
	if decisive >= 0 {
		out.Interval = out.Limits[decisive].Interval
	}
	out.Reason = strings.Join(sentences, "; ")
	return out
}

// dollars writes an amount of USD per day: $1,250, $312, $0.42.
func dollars(v float64) string {
	a := math.Abs(v)
	var s string
	switch {
	case math.IsInf(v, 0):
		s = "∞"
	case a >= 100:
		s = thousandsSep(int64(math.Round(a)))
	case a >= 1:
		s = strconv.FormatFloat(a, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(a, 'g', 2, 64)
	}
	if v < 0 {
		return "-$" + s
	}
	return "$" + s
}

// signedDollars is dollars with a + on a positive amount: +$312.
func signedDollars(v float64) string {
	if v > 0 {
		return "+" + dollars(v)
	}
	return dollars(v)
}

func thousandsSep(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// FormatDollars writes an amount of USD the way the judge's sentences do, signed: +$312, -$4.20.
func FormatDollars(v float64) string { return signedDollars(v) }

// costVerdict words a cost limit's verdict as the other rules' sentences do (limitSentence): how far
// the interval's decisive end reaches, how sure it is, the limit and what follows; the interval's two
// ends and their levels are in the evidence's details and in JSON.
func costVerdict(v Verdict, upper bool, iv Interval, limit float64) string {
	worst, worstSure, best, bestSure := iv.Low, iv.LowConfidence, iv.High, iv.HighConfidence
	bound, side := "maximum", "above"
	if !upper {
		worst, worstSure, best, bestSure = iv.High, iv.HighConfidence, iv.Low, iv.LowConfidence
		bound, side = "minimum", "below"
	}
	sure := func(c float64) string {
		if c <= 0 {
			return ""
		}
		return " (" + confidenceWords(c) + " sure)"
	}
	least, most := "at least", "at most"
	if !upper {
		least, most = most, least
	}
	switch v {
	case Fail:
		return fmt.Sprintf("%s %s/day%s, %s the %s %s → roll back", least, signedDollars(worst), sure(worstSure), side, dollars(limit), bound)
	case Pass:
		return fmt.Sprintf("%s %s/day%s, within the %s %s", most, signedDollars(best), sure(bestSure), dollars(limit), bound)
	default:
		return fmt.Sprintf("not yet sure it stays within the %s %s", dollars(limit), bound)
	}
}
