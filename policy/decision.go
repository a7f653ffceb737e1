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

// Interval is a confidence interval, from a confidence sequence, of the quantity a rule limits.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// ArmValue is one arm's estimate of a metric and the number of observations behind it.
type ArmValue struct {
	N     int64   `json:"n"`
	Value float64 `json:"value"`
}

// RuleResult is the evidence of one rule: both arms, the interval, the verdict and a sentence a
// reviewer understands.
type RuleResult struct {
	Name     string        `json:"name"`
	Rule     rollouts.Rule `json:"-"`
	Stable   ArmValue      `json:"stable"`
	Canary   ArmValue      `json:"canary"`
	Verdict  Verdict       `json:"verdict"`
	Interval *Interval     `json:"interval"`
	Reason   string        `json:"reason"`
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
}

// MarshalJSON writes an end that the data cannot bound yet (±Inf) as null.
func (iv Interval) MarshalJSON() ([]byte, error) {
	end := func(v float64) string {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "null"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return []byte(`{"low":` + end(iv.Low) + `,"high":` + end(iv.High) + `}`), nil
}
