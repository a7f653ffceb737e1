package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/record"
	"github.com/rollout-dev/rollout/source/jsonl"
)

// Traffic is how one rollout's application behaves: how many requests it serves, for which users, and
// what each arm's requests look like.
type Traffic struct {
	// PerHour is the number of user requests per simulated hour (shadow copies come on top).
	PerHour int
	// Keys are the assignment keys the users have, drawn uniformly; nil means user-0 … user-999.
	Keys   []string
	Stable jsonl.ArmProfile
	Canary jsonl.ArmProfile
	// RegressAt is the canary weight from which the canary behaves as Regressed instead: the bug that
	// only shows under load. 0 means never.
	RegressAt int
	Regressed jsonl.ArmProfile
}

// KeyRange returns the keys prefix0 … prefix(n-1).
func KeyRange(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return keys
}

// serveHour routes one simulated hour of requests, starting at from, with the spec as the default
// branch holds it now, and records each request. It returns how many requests each arm served.
func serveHour(rec *record.JSONL, spec *rollouts.Spec, tr Traffic, from time.Time, r *rand.Rand) (stable, canary int, err error) {
	keys := tr.Keys
	if keys == nil {
		keys = defaultKeys
	}
	router := spec.Assigner()
	canaryProfile := tr.Canary
	if tr.RegressAt > 0 && spec.Traffic.Weight >= tr.RegressAt {
		canaryProfile = tr.Regressed
	}
	step := time.Hour / time.Duration(max(tr.PerHour, 1))
	for i := range tr.PerHour {
		at := from.Add(time.Duration(i) * step)
		key := keys[r.IntN(len(keys))]
		choice := router.Choose(key)
		profile := &tr.Stable
		if choice.Arm == rollouts.CanaryArm {
			profile = &canaryProfile
			canary++
		} else {
			stable++
		}
		if err := rec.Record(simulate(at, spec.Name, choice, key, profile, false, r)); err != nil {
			return stable, canary, fmt.Errorf("record request of %s: %w", spec.Name, err)
		}
		if choice.Arm == rollouts.StableArm && spec.Canary != nil && router.Shadow(r) {
			mirror := rollouts.Choice{Arm: rollouts.CanaryArm, Variant: *spec.Canary}
			if err := rec.Record(simulate(at, spec.Name, mirror, key, &canaryProfile, true, r)); err != nil {
				return stable, canary, fmt.Errorf("record shadow request of %s: %w", spec.Name, err)
			}
		}
	}
	return stable, canary, nil
}

var defaultKeys = KeyRange("user-", 1000)

// simulate draws what one request did, from the arm's profile.
func simulate(at time.Time, rollout string, choice rollouts.Choice, key string, p *jsonl.ArmProfile, shadow bool, r *rand.Rand) record.Request {
	failed := r.Float64() < p.ErrorRate
	refused := !failed && r.Float64() < p.RefusalRate
	latency := time.Duration(p.LatencyMedianMs * math.Exp(p.LatencySigma*r.NormFloat64()) * float64(time.Millisecond)).Round(100 * time.Microsecond)
	in := int64(math.Max(1, math.Round(r.ExpFloat64()*p.InputTokensMean)))
	var out int64
	if !failed {
		out = int64(math.Max(1, math.Round(r.ExpFloat64()*p.OutputTokensMean)))
	}
	cost := math.Round((float64(in)*p.CostPerInputToken+float64(out)*p.CostPerOutputToken)*1e7) / 1e7
	req := record.Request{
		Time: at, Rollout: rollout, Variant: string(choice.Arm), Shadow: shadow, Key: key,
		Model: choice.Variant.Model, Prompt: choice.Variant.Prompt,
		Latency: &latency, Error: failed, Refusal: refused, InputTokens: &in, OutputTokens: &out, CostUSD: &cost,
	}
	if !failed && r.Float64() < p.QualityShare {
		q := math.Round(math.Min(1, math.Max(0, p.QualityMean+p.QualitySD*r.NormFloat64()))*1000) / 1000
		req.Quality = &q
	}
	if !failed && !shadow && r.Float64() < p.FeedbackShare {
		fb := 0
		switch u := r.Float64(); {
		case u < p.NegativeShare:
			fb = -1
		case u < p.NegativeShare+p.PositiveShare:
			fb = 1
		}
		req.Feedback = &fb
	}
	return req
}
