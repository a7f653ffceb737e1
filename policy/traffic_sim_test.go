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

	"github.com/rollout-dev/rollout/internal/race"
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

// trafficRuns is the number of seeds per scenario: 40, as the review that found the problems ran; 20
// under -short and the race detector (which makes each run several times slower), still enough to
// tell the targets from the rates before; ROLLOUT_SIM_RUNS sets it for a calibration.
func trafficRuns(t testing.TB) int {
	if v, err := strconv.Atoi(os.Getenv("ROLLOUT_SIM_RUNS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 20
	}
	return 40
}

// measureBefore reports whether a simulation also measures, and logs, the rates of the judge before
// its fix (a setting turned off, or the maths it replaced). Those rates assert nothing: they are the
// comparison a change's note quotes, so the gate leaves them out and ROLLOUT_SIM_BEFORE=1 asks for
// them.
func measureBefore() bool {
	return os.Getenv("ROLLOUT_SIM_BEFORE") == "1"
}

// tallyArm accumulates one arm's error counts per key bucket, as a per-key source sums them.
type tallyArm struct {
	n, errs  [policy.KeyBuckets]float64
	requests int64
	index    map[string]int // key → its place in lastSeen
	lastSeen []int64        // each key's latest request, Unix nanoseconds
}

func (a *tallyArm) add(r synth.Request) {
	unit := r.Key
	if unit == "" {
		unit = r.RequestID
	} else {
		i, ok := a.index[unit]
		if !ok {
			i = len(a.lastSeen)
			a.index[unit] = i
			a.lastSeen = append(a.lastSeen, 0)
		}
		a.lastSeen[i] = r.TS.UnixNano()
	}
	b := policy.KeyBucket(unit)
	a.n[b]++
	if r.Error {
		a.errs[b]++
	}
	a.requests++
}

// clusterArena holds the key-bucket clusters of one tick's statistics. A tick's statistics are judged
// before the next tick's are counted, so reset lets the next tick reuse the memory: a fresh slice of
// KeyBuckets clusters per arm and window is a 56 KiB allocation, cleared and collected, on every tick.
type clusterArena struct{ cs []policy.Cluster }

// reset drops the clusters of the last tick; what it returned before must no longer be read.
func (c *clusterArena) reset() { c.cs = c.cs[:0] }

// errorRate returns the buckets with requests in n and errs, less those in sinceN and sinceErrs when
// given, as clusters of an error rate, with the requests and errors they add up to.
func (c *clusterArena) errorRate(n, errs, sinceN, sinceErrs *[policy.KeyBuckets]float64) (cs []policy.Cluster, total, events float64) {
	start := len(c.cs)
	for b := range policy.KeyBuckets {
		nb, eb := n[b], errs[b]
		if sinceN != nil {
			nb, eb = nb-sinceN[b], eb-sinceErrs[b]
		}
		if nb > 0 {
			c.cs = append(c.cs, policy.Cluster{Bucket: b, N: nb, Sum: eb})
			total += nb
			events += eb
		}
	}
	return c.cs[start:len(c.cs):len(c.cs)], total, events
}

// stats returns the arm's statistics since the snapshot since was taken (nil: since the start), with
// the keys seen from `from` on, its clusters in arena.
func (a *tallyArm) stats(since *tallyArm, from time.Time, arena *clusterArena) policy.ArmStats {
	requests := a.requests
	var cs []policy.Cluster
	var n, errs float64
	if since != nil {
		requests -= since.requests
		cs, n, errs = arena.errorRate(&a.n, &a.errs, &since.n, &since.errs)
	} else {
		cs, n, errs = arena.errorRate(&a.n, &a.errs, nil, nil)
	}
	var keys int64
	f := from.UnixNano()
	for _, at := range a.lastSeen {
		if at >= f {
			keys++
		}
	}
	return policy.ArmStats{Requests: requests, Keys: keys, Metrics: map[string]policy.Sample{
		"error_rate": {Kind: policy.Proportion, N: int64(n), Sum: errs, Clusters: cs},
	}}
}

// snapshot is a copy of the sums without the keys.
func (a *tallyArm) snapshot() *tallyArm {
	return &tallyArm{n: a.n, errs: a.errs, requests: a.requests}
}

// tally is both arms of one stage window, from the first canary request on, with a snapshot of the
// sums at every point of the recent windows' grid, so that the statistics of any recent window are
// the difference of two sums, as a source would count them.
type tally struct {
	start, from    time.Time
	stable, canary tallyArm
	grid           map[time.Time][2]*tallyArm
	nextGrid       time.Time // the next grid point to snapshot
	recent         bool      // fill Stats.Recent
	arena          clusterArena
}

func newTally(start time.Time, recent bool) *tally {
	return &tally{start: start, recent: recent, grid: map[time.Time][2]*tallyArm{},
		stable: tallyArm{index: map[string]int{}}, canary: tallyArm{index: map[string]int{}}}
}

// advance takes the grid's snapshots up to at.
func (t *tally) advance(at time.Time) {
	if t.nextGrid.IsZero() {
		t.nextGrid = t.start.Add(policy.RecentStep)
	}
	for ; !t.nextGrid.After(at); t.nextGrid = t.nextGrid.Add(policy.RecentStep) {
		t.grid[t.nextGrid] = [2]*tallyArm{t.stable.snapshot(), t.canary.snapshot()}
	}
}

func (t *tally) add(r synth.Request) {
	if r.Late || r.Shadow {
		return
	}
	t.advance(r.TS.Add(-time.Nanosecond))
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

// stats returns the statistics at now, valid until the next call.
func (t *tally) stats(now time.Time) *policy.Stats {
	t.advance(now)
	t.arena.reset()
	unit := policy.UnitKey
	if len(t.stable.index) == 0 && len(t.canary.index) == 0 {
		unit = policy.UnitRequest // no record carried a key: the unit is the request, as a source says
	}
	st := &policy.Stats{Unit: unit, From: t.from,
		Stable: t.stable.stats(nil, t.start, &t.arena), Canary: t.canary.stats(nil, t.start, &t.arena)}
	if !t.recent {
		return st
	}
	starts := policy.RecentStarts(t.start, now)
	if grace := t.start.Add(policy.SRMGrace); now.After(grace) && !slices.ContainsFunc(starts, grace.Equal) {
		starts = append([]time.Time{grace}, starts...) // as policy.WithRecent asks for it
	}
	for _, from := range starts {
		snap := t.grid[from]
		st.Recent = append(st.Recent, policy.RecentStats{From: from, Stats: &policy.Stats{Unit: unit, From: from,
			Stable: t.stable.stats(snap[0], from, &t.arena), Canary: t.canary.stats(snap[1], from, &t.arena)}})
	}
	return st
}

var errStop = errors.New("stop")

// simulateTicks draws opts' traffic for spec and hands each request to add; before a request it calls
// tick at every 15-minute tick up to the request's time, and after the last one at those up to opts.To.
// tick returning true ends the run.
func simulateTicks(t testing.TB, spec *rollouts.Spec, opts synth.Options, add func(synth.Request), tick func(now time.Time) bool) {
	t.Helper()
	next := opts.From.Add(15 * time.Minute)
	due := func(upTo time.Time) bool {
		for ; !next.After(upTo); next = next.Add(15 * time.Minute) {
			if tick(next) {
				return true
			}
		}
		return false
	}
	err := synth.Simulate(spec, opts, func(r synth.Request) error {
		if due(r.TS) {
			return errStop
		}
		add(r)
		return nil
	})
	if err == nil {
		due(opts.To)
	} else if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
}

// play draws opts' traffic for spec's current stage and calls judge at every 15-minute tick with the
// statistics so far; judge returning true ends the run.
func play(t testing.TB, spec *rollouts.Spec, opts synth.Options, judge func(tick int, now time.Time, st *policy.Stats) bool) {
	t.Helper()
	ta := newTally(opts.From, true)
	tick := 1
	simulateTicks(t, spec, opts, ta.add, func(now time.Time) bool {
		if judge(tick, now, ta.stats(now)) {
			return true
		}
		tick++
		return false
	})
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

// TestDominantKeys (issue 23, item 1): four bots send 45% of all requests (4,000 an hour, 200 of them
// on the canary's 5%) at 8% errors; the canary is
// 1.75× worse for every key (1% → 1.75% for users, 8% → 14% for the bots) against a +50% limit. At a
// 5% stage no bot lands in the canary in about 81% of runs, so the canary's own spread cannot show
// what it never drew. Target: advanced in at most 10% of runs. Before (these seeds, the judge before
// issue 23): advanced 29 of 40; after: 0 of 40.
func TestDominantKeys(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := trafficRuns(t)
	advanced, rolledBack := 0, 0
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.5)})
		opts := synth.Options{Seed: uint64(seed + 1), From: trafficStart, To: trafficStart.Add(24 * time.Hour),
			PerHour: 4000, Users: 2000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
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

// TestMidStageRegression (issue 23, item 5): a canary whose errors triple from hour 12 of its stage
// (2% → 6%, every key, the generator's synth.Stable error rate; +50% limit; 400 canary requests an hour
// at a 5% stage that cannot advance inside the span) is rolled back a median of at most 3 hours after
// the onset. Before (these seeds, the judge before issue 23): a median of 8.25 h (10.5 h at 1% → 3%);
// with the recent windows: 2.75 h (5.75 h at 1% → 3%); with the breach end on the log scale as well:
// 1.75 h (4 h at 1% → 3%, ROLLOUT_SIM_BASE=0.01; 3.25 h over 100 seeds, docs/statistics.md).
func TestMidStageRegression(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	midStageBase := 0.02
	if v, err := strconv.ParseFloat(os.Getenv("ROLLOUT_SIM_BASE"), 64); err == nil {
		midStageBase = v
	}
	runs := trafficRuns(t)
	onset := trafficStart.Add(12 * time.Hour)
	var delays []float64
	early, missed := 0, 0
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.5)})
		spec.Stages[0].MinDuration = rollouts.Duration(72 * time.Hour)
		opts := synth.Options{Seed: uint64(100 + seed), From: trafficStart, To: onset.Add(24 * time.Hour),
			PerHour: 8000, Users: 2000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
			Stable: errorProfile("m-stable", midStageBase), Canary: errorProfile("m-canary", midStageBase),
			Regressions: []synth.Regression{{From: onset, Canary: errorProfile("m-canary", 3*midStageBase)}}}
		out := stage(t, spec, opts)
		switch {
		case out.action != policy.Rollback:
			missed++
			delays = append(delays, math.Inf(1))
		default:
			at := trafficStart.Add(time.Duration(out.tick) * 15 * time.Minute)
			if at.Before(onset) {
				early++
			}
			delays = append(delays, at.Sub(onset).Hours())
		}
	}
	m := median(delays)
	t.Logf("errors ×3 from hour 12 at 400 canary requests an hour: rolled back a median %.2f h after the onset (target ≤ 3 h); %d of %d not within 24 h, %d before the onset",
		m, missed, runs, early)
	if m > 3 {
		t.Errorf("median delay %.2f h, want ≤ 3 h", m)
	}
}

// TestRecentWindowsAA (issue 23, item 5): identical arms (1% of users failing 90% of their requests,
// a daily cycle) judged on every tick for a day and a half, the recent windows included: at most 5% of
// rollouts roll back. Before: 0 of 40; after: 0 of 40; with the breach end on the log scale 1 of 40 (1 of 200).
func TestRecentWindowsAA(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := trafficRuns(t)
	rolledBack := 0
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.1)})
		spec.Traffic.Weight, spec.Stages[0].Weight = 25, 25
		spec.Stages[0].MinDuration = rollouts.Duration(72 * time.Hour)
		opts := synth.Options{Seed: uint64(200 + seed), From: trafficStart, To: trafficStart.Add(36 * time.Hour),
			PerHour: 1600, Users: 2000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed), BadUsers: 0.01, BadUserErrorRate: 0.9,
			DailyAmplitude: 0.5, Stable: errorProfile("m-stable", 0.01), Canary: errorProfile("m-canary", 0.01)}
		if stage(t, spec, opts).action == policy.Rollback {
			rolledBack++
		}
	}
	t.Logf("A/A at +10%% over 36 h with the recent windows: rolled back %s (target ≤ 5%%)", rate(rolledBack, runs))
	if float64(rolledBack)/float64(runs) > 0.05 {
		t.Errorf("rolled back %s, want ≤ 5%%", rate(rolledBack, runs))
	}
}

// TestHealthyAdvanceVsFloor (issue 23, item 6) measures the power the judge leaves on the table: the
// median canary requests a healthy canary (1% errors in both arms, keyed users, 400 canary requests an
// hour at 5%, +50% limit, no minDuration nor minRequests) needs to advance, against the floor: the
// canary requests at which a fixed-horizon one-sided test at the advance level (80%), told the sample
// size in advance, passes in half of the runs. Before (these seeds, the judge before issue 23): 1,128
// canary requests, 3.6× the floor of 314; after: the same (the spread borrowed against dominant keys
// is discounted so that it leaves this case alone; undiscounted it doubled the requests, 7.4×). With
// the information-equivalent two-arm clock (twoArmTime) the median is still 1,128, a run that passes
// at one of its first eligible ticks whatever the clock, while the slower half advance sooner: the
// mean over the runs 1,779 → 1,642 canary requests, the 75th percentile 2,708 → 2,320. The
// assertion keeps the ratio from growing past where it was.
func TestHealthyAdvanceVsFloor(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	// A median over 20 runs moves too much to compare (its runs stop early, so 40 are cheap).
	runs := max(trafficRuns(t), 40)
	const p, w = 0.01, 0.05
	z := 0.8416 // one-sided 80%
	// Pass at the median: 0.5·p = z·sqrt(p(1-p)(1/n_c + 1.5²/n_s)), n_s = n_c(1-w)/w.
	floor := z * z * (1 - p) / p * (1 + 2.25*w/(1-w)) / 0.25
	var needed []float64
	rolledBack := 0
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.5)})
		spec.Stages[0].MinDuration, spec.Stages[0].MinRequests = 0, 0
		opts := synth.Options{Seed: uint64(300 + seed), From: trafficStart, To: trafficStart.Add(24 * time.Hour),
			PerHour: 8000, Users: 4000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
			Stable: errorProfile("m-stable", p), Canary: errorProfile("m-canary", p)}
		out := stage(t, spec, opts)
		switch out.action {
		case policy.Advance:
			needed = append(needed, float64(out.canaryN))
		case policy.Rollback:
			rolledBack++
			needed = append(needed, math.Inf(1))
		default:
			needed = append(needed, math.Inf(1))
		}
	}
	m := median(needed)
	sorted := slices.Sorted(slices.Values(needed))
	var sum float64
	for _, n := range needed {
		sum += n // +Inf where a run did not advance
	}
	t.Logf("healthy canary at +50%%: median %.0f canary requests to advance, %.1f× the fixed-horizon floor of %.0f; mean %.0f, 75th percentile %.0f; %d of %d rolled back",
		m, m/floor, floor, sum/float64(len(needed)), sorted[len(sorted)*3/4-1], rolledBack, runs)
	if m/floor > 4.5 {
		t.Errorf("median %.0f canary requests to advance, %.1f× the floor: more than before", m, m/floor)
	}
}

// keylessRun plays runs stages of a rollout keyed by user_id whose records carry no key: 1% of users
// fail 90% of their requests on either arm, the others at stableRate on stable and canaryRate on the
// canary (400 canary requests an hour at 5%, +50% limit, 24 hours). unit is the spec's
// assignment.unit.
func keylessRun(t *testing.T, runs int, canaryRate float64, unit string) (advanced, rolledBack int) {
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.5)})
		spec.Assignment.Key, spec.Assignment.Unit = "user_id", unit
		opts := synth.Options{Seed: uint64(500 + seed), From: trafficStart, To: trafficStart.Add(24 * time.Hour),
			PerHour: 8000, Users: 2000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed), Keyless: true,
			BadUsers: 0.01, BadUserErrorRate: 0.9,
			Stable: errorProfile("m-stable", 0.01), Canary: errorProfile("m-canary", canaryRate)}
		switch stage(t, spec, opts).action {
		case policy.Advance:
			advanced++
		case policy.Rollback:
			rolledBack++
		}
	}
	return advanced, rolledBack
}

// TestKeylessRecords (issue 23, item 3): assignment.key is set but the records carry no key, so the
// judge can only count requests, as if independent; with 1% of users failing 90% of their requests
// (about half of all errors) one user's requests are anything but. A canary at its limit (errors
// 1% → 1.96% for the other users: 1.9% → 2.85% in all, +50%) advanced in about a third of stages
// with per-request maths, against the 20% the advance test allows. Target: at most 5% advanced at the
// limit. After: the stage never advances on request-level evidence unless the spec declares the
// request the unit (assignment.unit: request, which restores the per-request behaviour, logged for
// comparison). Rollbacks are unchanged: a rule still rolls back on it.
func TestKeylessRecords(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := trafficRuns(t)
	advAfter, _ := keylessRun(t, runs, 0.0196, "")
	t.Logf("keyless records, canary at the limit: advanced %s (target ≤ 5%%)", rate(advAfter, runs))
	if measureBefore() {
		advBefore, rbAtLimit := keylessRun(t, runs, 0.0196, rollouts.UnitRequest)
		t.Logf("per-request maths (assignment.unit: request, the judge before): advanced %s, rolled back %s",
			rate(advBefore, runs), rate(rbAtLimit, runs))
		// The rollback side is unchanged and still per request (measured: 3 of 40 A/A stages).
		_, aa := keylessRun(t, runs, 0.01, "")
		t.Logf("keyless A/A: rolled back %s (the rollback side still counts requests)", rate(aa, runs))
	}
	if float64(advAfter)/float64(runs) > 0.05 {
		t.Errorf("advanced %s at the limit, want ≤ 5%%", rate(advAfter, runs))
	}
}

// srmStage plays stage 1 (25%, after 5%) of a healthy rollout whose application picks up the new
// weight lag after the stage starts, and reports whether any tick of the first 12 hours saw a
// sample-ratio mismatch.
func srmStage(t *testing.T, seed int, lag time.Duration) bool {
	spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.5)})
	spec.Traffic.Weight, spec.Status.Stage = 25, 1
	spec.Stages[1].MinDuration = rollouts.Duration(72 * time.Hour)
	opts := synth.Options{Seed: uint64(700 + seed), From: trafficStart, To: trafficStart.Add(12 * time.Hour),
		PerHour: 8000, Users: 2000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
		PreviousWeight: 5, DeployLag: lag,
		Stable: errorProfile("m-stable", 0.01), Canary: errorProfile("m-canary", 0.01)}
	mismatch := false
	play(t, spec, opts, func(_ int, now time.Time, st *policy.Stats) bool {
		mismatch = policy.Judge(spec, policy.Evidence{Stats: st}, now).SampleRatioMismatch
		return mismatch
	})
	return mismatch
}

// TestLateWeightPickup (issue 23, item 7): at a stage start (5% → 25%) the application picks up the
// new weight 20 minutes late, so the stage's first keys are split 5/95. Target: no sample-ratio alarm
// in a healthy rollout (at most 5% of runs over its first 12 hours), while an application that never
// picks the new weight up is still caught. Before (the whole window's keys, no grace): flagged in 40 of
// 40, on the first ticks; after (policy.SRMGrace): 0 of 40, and the stuck application in 40 of 40.
func TestLateWeightPickup(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := trafficRuns(t)
	late, stuck := 0, 0
	for seed := range runs {
		if srmStage(t, seed, 20*time.Minute) {
			late++
		}
		if srmStage(t, seed, 24*time.Hour) {
			stuck++
		}
	}
	t.Logf("new weight picked up 20 min late: sample-ratio mismatch in %s (target ≤ 5%%); never picked up: caught in %s",
		rate(late, runs), rate(stuck, runs))
	if float64(late)/float64(runs) > 0.05 || stuck < runs {
		t.Errorf("late pickup flagged in %s, stuck application caught in %s; want ≤ 5%%, all", rate(late, runs), rate(stuck, runs))
	}
}

// lowTrafficRun plays runs 5% stages at 21 canary requests an hour (420 in all, 10,000 keyed users:
// about 500 canary requests a day, most from keys seen once or twice), errors 1% on stable and
// canaryRate on the canary, +50% limit, no minDuration nor minRequests, for hours hours; it returns
// how many advanced and rolled back and the median hours to either.
func lowTrafficRun(t *testing.T, runs int, canaryRate float64, hours int) (advanced, rolledBack int, medianHours float64) {
	var at []float64
	for seed := range runs {
		spec := stageSpec(rollouts.Rule{Metric: "error_rate", MaxIncrease: maxIncrease(0.5)})
		spec.Stages[0].MinDuration, spec.Stages[0].MinRequests = 0, 0
		opts := synth.Options{Seed: uint64(300 + seed), From: trafficStart, To: trafficStart.Add(time.Duration(hours) * time.Hour),
			PerHour: 420, Users: 10000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
			Stable: errorProfile("m-stable", 0.01), Canary: errorProfile("m-canary", canaryRate)}
		out := stage(t, spec, opts)
		switch out.action {
		case policy.Advance:
			advanced++
		case policy.Rollback:
			rolledBack++
		default:
			at = append(at, math.Inf(1))
			continue
		}
		at = append(at, float64(out.tick)/4)
	}
	return advanced, rolledBack, median(at)
}

// TestLowTrafficClock (issue 23, item 6): the two-arm clock's tuning must not buy the 400-an-hour
// canary its speed at the expense of a small stage (a retuning of the pass end alone, tightest at
// 4,000 keys, made a stage of 500 keys a day about 50% slower and was rejected). At about 500 canary
// requests a day a healthy canary advances, and one at three times stable's errors is rolled back,
// sooner than with the clock n_c+n_s. Before (these seeds, n_c+n_s): healthy advanced 29 of 40
// within 4 days, a median 43.75 h in; 1% → 3% rolled back 22 of 40 within 2 days, a median 31.75 h
// in. After (information-equivalent clock): 30 of 40, 34.75 h; 24 of 40, 28 h.
func TestLowTrafficClock(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := max(trafficRuns(t), 40) // medians over 20 runs move too much to compare
	adv, rb, healthy := lowTrafficRun(t, runs, 0.01, 96)
	t.Logf("healthy canary at 21 canary requests an hour: advanced %s within 4 days, a median %.2f h in (before: 43.75 h); rolled back %s",
		rate(adv, runs), healthy, rate(rb, runs))
	_, caught, regressed := lowTrafficRun(t, runs, 0.03, 48)
	t.Logf("1%% → 3%% at 21 canary requests an hour: rolled back %s within 2 days, a median %.2f h in (before: 22 of 40, 31.75 h)",
		rate(caught, runs), regressed)
	if healthy >= 43.75 || regressed >= 31.75 || rb > runs/20 {
		t.Errorf("healthy median %.2f h (rolled back %d), 1%% → 3%% median %.2f h: want sooner than 43.75 h and 31.75 h, ≤ 5%% rolled back",
			healthy, rb, regressed)
	}
}
