package policy_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// The simulations of traffic as it really arrives (issue 23): the project's one generator
// (policy/source/synth) draws the requests, a per-key tally turns them into the statistics a per-key
// source returns, and the judge decides on every 15-minute tick. Each test logs the rate it measures
// next to its target and the rate the judge had before the fix (measured on the code before it, with
// the same seeds).

var trafficStart = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

// trafficRuns is the number of seeds per scenario: 40, as the review that found the problems ran;
// ROLLOUT_SIM_RUNS raises it for a calibration.
func trafficRuns(t testing.TB) int {
	if v, err := strconv.Atoi(os.Getenv("ROLLOUT_SIM_RUNS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 20
	}
	return 40
}

// tallyArm accumulates one arm's error counts per key bucket, as a per-key source sums them.
type tallyArm struct {
	n, errs  [policy.KeyBuckets]float64
	requests int64
	keys     map[string]bool
}

func (a *tallyArm) add(r synth.Request) {
	unit := r.Key
	if unit == "" {
		unit = r.RequestID
	} else {
		a.keys[unit] = true
	}
	b := policy.KeyBucket(unit)
	a.n[b]++
	if r.Error {
		a.errs[b]++
	}
	a.requests++
}

func (a *tallyArm) stats() policy.ArmStats {
	var cs []policy.Cluster
	var n, errs float64
	for b := range policy.KeyBuckets {
		if a.n[b] > 0 {
			cs = append(cs, policy.Cluster{Bucket: b, N: a.n[b], Sum: a.errs[b]})
			n += a.n[b]
			errs += a.errs[b]
		}
	}
	return policy.ArmStats{Requests: a.requests, Keys: int64(len(a.keys)), Metrics: map[string]policy.Sample{
		"error_rate": {Kind: policy.Proportion, N: int64(n), Sum: errs, Clusters: cs},
	}}
}

// tally is both arms of one stage window, from the first canary request on.
type tally struct {
	from           time.Time
	stable, canary tallyArm
}

func newTally() *tally {
	return &tally{stable: tallyArm{keys: map[string]bool{}}, canary: tallyArm{keys: map[string]bool{}}}
}

func (t *tally) add(r synth.Request) {
	if r.Late || r.Shadow {
		return
	}
	if r.Variant == policy.Canary && t.from.IsZero() {
		t.from = r.TS
	}
	if t.from.IsZero() {
		return // both arms start at the first canary record
	}
	if r.Variant == policy.Canary {
		t.canary.add(r)
	} else {
		t.stable.add(r)
	}
}

func (t *tally) stats() *policy.Stats {
	return &policy.Stats{Unit: policy.UnitKey, From: t.from, Stable: t.stable.stats(), Canary: t.canary.stats()}
}

var errStop = errors.New("stop")

// play draws opts' traffic for spec's current stage and calls judge at every 15-minute tick with the
// statistics so far; judge returning true ends the run.
func play(t testing.TB, spec *rollouts.Spec, opts synth.Options, judge func(tick int, now time.Time, st *policy.Stats) bool) {
	t.Helper()
	ta := newTally()
	tick := 1
	next := opts.From.Add(15 * time.Minute)
	due := func(upTo time.Time) bool {
		for !next.After(upTo) {
			if judge(tick, next, ta.stats()) {
				return true
			}
			tick++
			next = next.Add(15 * time.Minute)
		}
		return false
	}
	err := synth.Simulate(spec, opts, func(r synth.Request) error {
		if due(r.TS) {
			return errStop
		}
		ta.add(r)
		return nil
	})
	if err == nil {
		due(opts.To)
	} else if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
}

// outcome is how one simulated stage ended.
type outcome struct {
	action   policy.Action // Advance, Rollback or Hold (neither within the span)
	tick     int
	canaryN  int64 // canary requests when it ended
	decision policy.Decision
}

// stage plays one stage of spec under opts until the judge advances or rolls back.
func stage(t testing.TB, spec *rollouts.Spec, opts synth.Options) outcome {
	out := outcome{action: policy.Hold}
	play(t, spec, opts, func(tick int, now time.Time, st *policy.Stats) bool {
		d := policy.Judge(spec, policy.Evidence{Stats: st}, now)
		if d.Action == policy.Advance || d.Action == policy.Rollback || d.Action == policy.Promote {
			out = outcome{action: d.Action, tick: tick, canaryN: st.Canary.Requests, decision: d}
			return true
		}
		out.decision = d
		return false
	})
	return out
}

// stageSpec is a rollout in a 5% first stage since trafficStart (minDuration 4 h, 200 requests per
// arm), judged by rules.
func stageSpec(rules ...rollouts.Rule) *rollouts.Spec {
	canary := &rollouts.Variant{Model: "m-canary"}
	return &rollouts.Spec{
		Name:    "sim",
		Stable:  rollouts.Variant{Model: "m-stable"},
		Canary:  canary,
		Traffic: rollouts.Traffic{Weight: 5},
		Stages: []rollouts.Stage{
			{Weight: 5, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 25},
			{Weight: 100},
		},
		Analysis: rollouts.Analysis{Confidence: 0.95, Rules: rules, OnInconclusive: "hold", OnMetricsError: "hold"},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 0, StageStartedAt: trafficStart,
			Canary: rollouts.Fingerprint(canary)},
	}
}

func maxIncrease(v float64) *rollouts.Ratio { r := rollouts.Ratio(v); return &r }

// errorProfile is an arm with the given error rate and nothing else to judge.
func errorProfile(model string, rate float64) synth.Profile {
	p := synth.DefaultProfile(model)
	p.ErrorRate = rate
	return p
}

// rate writes k of n as a percentage.
func rate(k, n int) string { return fmt.Sprintf("%d/%d (%.0f%%)", k, n, 100*float64(k)/float64(n)) }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestDominantKeys (issue 23, item 1): four bots send 45% of all requests at 8% errors; the canary is
// 1.75× worse for every key (1% → 1.75% for users, 8% → 14% for the bots) against a +50% limit. At a
// 5% stage no bot lands in the canary in about 81% of runs, so the canary's own spread cannot show
// what it never drew. Target: advanced in at most 10% of runs. Before: 34 of 40 in the review.
func TestDominantKeys(t *testing.T) {
	runs := trafficRuns(t)
	advanced, rolledBack := 0, 0
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.5)})
		opts := synth.Options{Seed: uint64(seed + 1), From: trafficStart, To: trafficStart.Add(24 * time.Hour),
			PerHour: 8000, Users: 2000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
			Stable: errorProfile("m-stable", 0.01), Canary: errorProfile("m-canary", 0.0175)}
		for i := range 4 {
			opts.Bots = append(opts.Bots, synth.Bot{Key: fmt.Sprintf("s%d-bot-%d", seed, i), Share: 0.1125,
				StableErrorRate: 0.08, CanaryErrorRate: 0.14})
		}
		switch stage(t, spec, opts).action {
		case policy.Advance:
			advanced++
		case policy.Rollback:
			rolledBack++
		}
	}
	t.Logf("bots hold 45%% of traffic, canary 1.75× worse for every key, +50%% limit: advanced %s (target ≤ 10%%), rolled back %s",
		rate(advanced, runs), rate(rolledBack, runs))
	if float64(advanced)/float64(runs) > 0.10 {
		t.Errorf("advanced %s, want ≤ 10%%", rate(advanced, runs))
	}
}
