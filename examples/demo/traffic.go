package demo

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/record"
)

// Traffic is how one rollout's application behaves: how many requests it serves, for which users, and
// what each arm's requests look like. The requests are drawn by policy/source/synth, the project's one
// traffic generator.
type Traffic struct {
	// PerHour is the mean number of user requests per simulated hour (shadow copies come on top).
	PerHour int
	// Keys are the assignment keys the users have, drawn uniformly; nil means user-0 … user-999.
	Keys   []string
	Stable synth.Profile
	Canary synth.Profile
	// RegressAt is the canary weight from which the canary behaves as Regressed instead: the bug that
	// only shows under load. 0 means never.
	RegressAt int
	Regressed synth.Profile
}

// KeyRange returns the keys prefix0 … prefix(n-1).
func KeyRange(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// serveHour routes one simulated hour of requests, starting at from, with the spec as the default
// branch holds it now, and records each request. It returns how many user requests each arm served.
func serveHour(rec *record.JSONL, spec *rollouts.Spec, tr Traffic, from time.Time, r *rand.Rand) (stable, canary int, err error) {
	opts := synth.Options{Seed: r.Uint64(), From: from, To: from.Add(time.Hour), PerHour: float64(max(tr.PerHour, 1)),
		Keys: tr.Keys, Stable: tr.Stable, Canary: tr.Canary}
	if tr.RegressAt > 0 {
		opts.Regressions = []synth.Regression{{AtWeight: tr.RegressAt, Canary: tr.Regressed}}
	}
	err = synth.Simulate(spec, opts, func(req synth.Request) error {
		if req.Late {
			return rec.RecordLate(synth.Late(req))
		}
		switch {
		case req.Shadow:
		case req.Variant == "canary":
			canary++
		default:
			stable++
		}
		return rec.Record(synth.Record(req))
	})
	if err != nil {
		return stable, canary, fmt.Errorf("record requests of %s: %w", spec.Name, err)
	}
	return stable, canary, nil
}
