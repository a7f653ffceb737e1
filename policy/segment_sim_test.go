package policy_test

import (
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// The segment simulations of issue 25: a regression confined to a tenth of the traffic (errors 1% →
// 10% for German speakers, unchanged elsewhere) must be rolled back in at least 95% of runs, while an
// A/A canary judged in three segmented attributes (12 segments) keeps false rollbacks at or below 5%.

// segmentAttrs are the three attributes the simulated users carry: language (German 10%), tenant and
// route.
var segmentAttrs = []synth.SegmentShares{
	{Attr: "language", Values: []string{"en", "de", "fr", "es"}, Shares: []float64{0.6, 0.1, 0.15, 0.15}},
	{Attr: "tenant", Values: []string{"acme", "globex", "initech", "umbrella", "hooli"}},
	{Attr: "route", Values: []string{"chat", "summarize", "search"}},
}

// segTallyArm counts one arm's requests and errors per key bucket, and its distinct keys.
type segTallyArm struct {
	n, errs  [policy.KeyBuckets]float64
	requests int64
	keys     map[string]bool
}

func (a *segTallyArm) add(r synth.Request) {
	if a.keys == nil {
		a.keys = map[string]bool{}
	}
	b := policy.KeyBucket(r.Key)
	a.n[b]++
	if r.Error {
		a.errs[b]++
	}
	a.requests++
	a.keys[r.Key] = true
}

func (a *segTallyArm) stats(arena *clusterArena) policy.ArmStats {
	cs, n, errs := arena.errorRate(&a.n, &a.errs, nil, nil)
	return policy.ArmStats{Requests: a.requests, Keys: int64(len(a.keys)), Metrics: map[string]policy.Sample{
		"error_rate": {Kind: policy.Proportion, N: int64(n), Sum: errs, Clusters: cs},
	}}
}

// segTally is a stage's pooled arms and each segment's, from the first canary request on, as a
// per-key source with analysis.segments counts them.
type segTally struct {
	from     time.Time
	pooled   [2]segTallyArm
	segments map[policy.Attr]*[2]segTallyArm
	order    []policy.Attr
	arena    clusterArena
}

func (t *segTally) add(r synth.Request) {
	if r.Late || r.Shadow {
		return
	}
	if r.Variant == policy.Canary && t.from.IsZero() {
		t.from = r.TS
	}
	if t.from.IsZero() {
		return
	}
	i := 0
	if r.Variant == policy.Canary {
		i = 1
	}
	t.pooled[i].add(r)
	for _, s := range segmentAttrs {
		a := policy.Attr{Name: s.Attr, Value: r.Attrs[s.Attr]}
		arms, ok := t.segments[a]
		if !ok {
			arms = new([2]segTallyArm)
			t.segments[a] = arms
			t.order = append(t.order, a)
		}
		arms[i].add(r)
	}
}

// stats returns the statistics so far, valid until the next call.
func (t *segTally) stats() *policy.Stats {
	t.arena.reset()
	st := &policy.Stats{Unit: policy.UnitKey, From: t.from, Stable: t.pooled[0].stats(&t.arena), Canary: t.pooled[1].stats(&t.arena)}
	for _, a := range t.order {
		arms := t.segments[a]
		st.Segments = append(st.Segments, policy.SegmentStats{Segment: a, Stats: &policy.Stats{Unit: policy.UnitKey,
			From: t.from, Stable: arms[0].stats(&t.arena), Canary: arms[1].stats(&t.arena)}})
	}
	return st
}

// segmentSpec is a 5% first stage (minDuration 4 h) judged by the contract's error rule, split by
// the three attributes when segmented.
func segmentSpec(segmented bool) *rollouts.Spec {
	canary := &rollouts.Variant{Model: "m-canary"}
	maxRate, inc := 0.02, rollouts.Ratio(0.5)
	s := &rollouts.Spec{
		Name: "seg", Stable: rollouts.Variant{Model: "m-stable"}, Canary: canary,
		Traffic: rollouts.Traffic{Weight: 5},
		Stages: []rollouts.Stage{
			{Weight: 5, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 25}, {Weight: 100},
		},
		Analysis: rollouts.Analysis{Confidence: 0.95, Rules: []rollouts.Rule{{Metric: "error_rate", Max: &maxRate, MaxIncrease: &inc}}},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 0, StageStartedAt: trafficStart,
			Canary: rollouts.Fingerprint(canary)},
	}
	if segmented {
		for _, a := range segmentAttrs {
			s.Analysis.Segments = append(s.Analysis.Segments, a.Attr)
		}
	}
	return s
}

// segmentRun plays one 24-hour stage with 15-minute ticks and returns the first decision that ends it
// for the segmented spec and for the same spec without segments.
func segmentRun(t *testing.T, seed uint64, regress bool) (segmented, pooled policy.Decision) {
	specs := [2]*rollouts.Spec{segmentSpec(true), segmentSpec(false)}
	var done [2]*policy.Decision
	opts := synth.Options{Seed: seed, From: trafficStart, To: trafficStart.Add(24 * time.Hour), PerHour: 4000,
		Users: 10000, Activity: 1, Segments: segmentAttrs,
		Stable: errorProfile("m-stable", 0.01), Canary: errorProfile("m-canary", 0.01)}
	if regress {
		opts.Regressions = []synth.Regression{{Segment: policy.Attr{Name: "language", Value: "de"},
			Canary: errorProfile("m-canary", 0.10)}}
	}
	ta := &segTally{segments: map[policy.Attr]*[2]segTallyArm{}}
	simulateTicks(t, specs[0], opts, ta.add, func(now time.Time) bool {
		st := ta.stats()
		for i, spec := range specs {
			if done[i] != nil {
				continue
			}
			if d := policy.Judge(spec, policy.Evidence{Stats: st}, now); d.Action == policy.Advance || d.Action == policy.Rollback {
				done[i] = &d
			}
		}
		return done[0] != nil && done[1] != nil
	})
	for i := range done {
		if done[i] == nil {
			done[i] = &policy.Decision{Action: policy.Hold}
		}
	}
	return *done[0], *done[1]
}

// simRuns is the number of seeds of issue 25's simulations that read records through the JSON Lines
// source: half of trafficRuns.
func simRuns(t testing.TB) int {
	return trafficRuns(t) / 2
}

func TestSegmentRegressionRolledBack(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	if testing.Short() {
		t.Skip("simulation")
	}
	runs := trafficRuns(t)
	var caught, caughtPooled, advanced, advancedPooled int
	var hours, hoursPooled []float64
	for seed := range uint64(runs) {
		seg, pooled := segmentRun(t, 2500+seed, true)
		if seg.Action == policy.Rollback {
			caught++
			hours = append(hours, seg.Window.To.Sub(trafficStart).Hours())
		}
		if pooled.Action == policy.Rollback {
			caughtPooled++
			hoursPooled = append(hoursPooled, pooled.Window.To.Sub(trafficStart).Hours())
		}
		if seg.Action == policy.Advance {
			advanced++
		}
		if pooled.Action == policy.Advance {
			advancedPooled++
		}
		if seed == 0 {
			t.Logf("seed 0, segmented: %s %v", seg.Action, seg.Reasons)
		}
	}
	t.Logf("regression in 10%% of traffic (language=de errors 1%% → 10%%, a day at 5%%): with segments rolled back %s (median %.2f h), advanced %s; pooled only rolled back %s, advanced %s; target ≥ 95%% rolled back",
		rate(caught, runs), median(hours), rate(advanced, runs), rate(caughtPooled, runs), rate(advancedPooled, runs))
	if float64(caught) < 0.95*float64(runs) {
		t.Errorf("rolled back in %s of runs, want ≥ 95%%", rate(caught, runs))
	}
}

func TestSegmentAAFalseRollbacks(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	if testing.Short() {
		t.Skip("simulation")
	}
	runs := trafficRuns(t)
	var falseRollbacks, advanced int
	for seed := range uint64(runs) {
		seg, _ := segmentRun(t, 2600+seed, false)
		switch seg.Action {
		case policy.Rollback:
			falseRollbacks++
			t.Logf("seed %d: false rollback: %v", 2600+seed, seg.Reasons)
		case policy.Advance:
			advanced++
		}
	}
	t.Logf("A/A with three segmented attributes (12 segments): false rollbacks %s (target ≤ 5%%), advanced %s",
		rate(falseRollbacks, runs), rate(advanced, runs))
	if float64(falseRollbacks) > 0.05*float64(runs) {
		t.Errorf("false rollbacks %s, want ≤ 5%%", rate(falseRollbacks, runs))
	}
}
