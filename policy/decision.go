package policy

import (
	"math"
	"strconv"

	"github.com/rollout-dev/rollout/rollouts"
)

// Action is what the judge decides for one rollout on one tick.
type Action string

// The decisions of the contract.
const (
	// Start begins a stage whose window has not started: a Pending rollout at stage 0, or a merged
	// advance on its first tick.
	Start Action = "start"
	// Advance proposes the next stage.
	Advance Action = "advance"
	// Hold changes nothing.
	Hold Action = "hold"
	// Rollback sends every user back to stable.
	Rollback Action = "rollback"
	// Promote proposes the canary as the new stable, ending the rollout.
	Promote Action = "promote"
)

// Verdict is the outcome of one rule.
type Verdict string

// The verdicts of a rule.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Step is a stage and the traffic it sets.
type Step struct {
	Stage  int `json:"stage"`
	Weight int `json:"weight"`
	Shadow int `json:"shadow"`
}

// Interval is a confidence interval, from confidence sequences, of the quantity a limit bounds: the
// metric itself for an absolute limit (max, min), the ratio canary/stable minus one for a relative one
// (maxIncrease, maxDecrease), so a relative interval never reaches below -1 (-100%).
//
// Each end has its own confidence, always-valid (it holds at every tick at once): the end that can show
// the limit broken is the rollback test's (1-confidence, split over the limits), the other end the
// advance test's (advanceConfidence). Label words them.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Scale is ScaleRelative or ScaleAbsolute; empty in intervals made before scales were recorded.
	Scale string `json:"scale,omitempty"`
	// LowConfidence and HighConfidence are the one-sided confidence of each end (0: unknown).
	LowConfidence  float64 `json:"lowConfidence,omitempty"`
	HighConfidence float64 `json:"highConfidence,omitempty"`
}

// The scales of an Interval.
const (
	// ScaleRelative: the interval is of canary/stable - 1, a relative change.
	ScaleRelative = "relative"
	// ScaleAbsolute: the interval is of the metric's own value.
	ScaleAbsolute = "absolute"
)

// Label words the confidence each end of iv really has, such as "lower end at 98.75%, upper at 80%,
// always-valid".
func (iv Interval) Label() string {
	if iv.LowConfidence == 0 && iv.HighConfidence == 0 {
		return "always-valid"
	}
	if iv.LowConfidence == iv.HighConfidence {
		return "each end one-sided at " + confidenceWords(iv.LowConfidence) + ", always-valid"
	}
	return "lower end at " + confidenceWords(iv.LowConfidence) + ", upper at " + confidenceWords(iv.HighConfidence) + ", always-valid"
}

// LimitResult is the evidence of one limit of a rule, on that limit's scale.
type LimitResult struct {
	// Limit is the limit as the spec writes it: "maxIncrease 50%", "max 0.02".
	Limit    string    `json:"limit"`
	Verdict  Verdict   `json:"verdict"`
	Interval *Interval `json:"interval"`
}

// ArmValue is one arm's estimate of a metric and the number of observations behind it.
type ArmValue struct {
	N     int64   `json:"n"`
	Value float64 `json:"value"`
}

// RuleResult is the evidence of one rule: both arms, the interval, the verdict and a sentence a
// reviewer understands.
type RuleResult struct {
	Name    string        `json:"name"`
	Rule    rollouts.Rule `json:"-"`
	Stable  ArmValue      `json:"stable"`
	Canary  ArmValue      `json:"canary"`
	Verdict Verdict       `json:"verdict"`
	// Interval is the interval of the limit that decides the verdict (the failing one, else the first
	// one not shown within, else the first); Limits holds every limit's.
	Interval *Interval `json:"interval"`
	Reason   string    `json:"reason"`
	// Limits holds one result per limit, each on its own scale, so that a rule with both max and
	// maxIncrease never shows a relative interval next to an absolute limit.
	Limits []LimitResult `json:"limits,omitempty"`
	// Advisory: the source returned a bare value for this metric; it is shown and never acted on.
	Advisory bool `json:"advisory,omitempty"`
	// Matured is the window a late metric was read over (its maturity window); nil for the others.
	Matured *Matured `json:"matured,omitempty"`
	// Segment is the rule's worst segment (analysis.segments), nil without segments.
	Segment *SegmentResult `json:"segment,omitempty"`
}

// GateResult is a gate's answer, computed outside the judge (it reads files or calls a webhook).
type GateResult struct {
	Stage  int    `json:"stage"`
	Open   bool   `json:"open"`
	Reason string `json:"reason"`
}

// Evidence is everything the judge reads besides the spec and the clock.
type Evidence struct {
	// Stats of the current stage window; nil when the source failed (Err is set).
	Stats *Stats
	// Err is the source's error on this tick.
	Err error
	// Gates holds the result of each gate the judge may need, by stage index.
	Gates map[int]GateResult
}

// Decision is the judge's answer for one rollout on one tick.
type Decision struct {
	Rollout string `json:"rollout"`
	Action  Action `json:"decision"`
	Current Step   `json:"current"`
	// Next is the stage the decision moves to; nil for hold.
	Next    *Step        `json:"next"`
	Reasons []string     `json:"reasons"`
	Metrics []RuleResult `json:"metrics"`
	// SampleRatioMismatch: the canary's share of keys (or requests, or mirrored requests) is not the
	// share the spec sets, so the evidence cannot be trusted; the decision is hold, and the reconciler
	// notifies it like a rollback, once per episode.
	SampleRatioMismatch bool `json:"sampleRatioMismatch,omitempty"`
	// Unit is what the statistics counted as one independent observation (UnitKey or UnitRequest);
	// empty when no statistics were read.
	Unit Unit `json:"unit,omitempty"`
	// Window is the span both arms were compared over: from the stage's first canary record (or
	// status.stageStartedAt where the source cannot tell) to now; nil when no statistics were read.
	Window *Window `json:"window,omitempty"`
	// NotRandomised counts the requests of include/exclude keys left out of both arms.
	NotRandomised int64 `json:"notRandomised,omitempty"`
	// Cost is the canary's extra spend per day at the next stage and at 100%, projected from the
	// stage's cost per request and traffic (cost.go); nil without cost data for both arms.
	Cost *CostProjection `json:"cost,omitempty"`
	// Stuck: the stage is held past its maxDuration (onInconclusive: hold).
	Stuck bool `json:"stuck,omitempty"`
}

// MarshalJSON writes an end that the data cannot bound yet (±Inf) as null.
func (iv Interval) MarshalJSON() ([]byte, error) {
	end := func(v float64) string {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "null"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	out := `{"low":` + end(iv.Low) + `,"high":` + end(iv.High)
	if iv.Scale != "" {
		out += `,"scale":"` + iv.Scale + `"`
	}
	if iv.LowConfidence != 0 || iv.HighConfidence != 0 {
		out += `,"lowConfidence":` + end(iv.LowConfidence) + `,"highConfidence":` + end(iv.HighConfidence)
	}
	return []byte(out + "}"), nil
}
