package policy

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestClockSkew: a stageStartedAt in the future, by any amount, is named as clock skew (never as a
// negative time so far); the stage never advances, a canary that fails its rules is still rolled back
// on the data of the stage's last minDuration, and with onMetricsError: rollback the skew counts as a
// metrics failure.
func TestClockSkew(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	failing := &Stats{Stable: armOf(190000, 1900, 0.87, 0.1), Canary: armOf(10000, 3100, 0.87, 0.1)} // 31% errors
	tests := []struct {
		name   string
		ahead  time.Duration
		stats  *Stats
		errors int
		on     string
		want   Action
		reason string
	}{
		{"far ahead, healthy", 900 * time.Hour, healthy(), 0, "hold", Hold, "is 37d12h in the future (now is 2026-04-16T03:00:00Z): the stage starts in the future: clock skew"},
		{"a second ahead, healthy", time.Second, healthy(), 0, "hold", Hold, "is 1s in the future"},
		{"a minute ahead, canary failing 31%", time.Minute, failing, 0, "hold", Rollback, "error rate"},
		{"far ahead, canary failing 31%", 900 * time.Hour, failing, 0, "hold", Rollback, "clock skew"},
		{"third skewed pass with onMetricsError: rollback", time.Minute, healthy(), 2, "rollback", Rollback, "3 consecutive metrics failures"},
		{"second skewed pass with onMetricsError: rollback", time.Minute, healthy(), 1, "rollback", Hold, "does not advance while its start lies in the future"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.Status.StageStartedAt = now.Add(tc.ahead)
			spec.Status.MetricsErrors = tc.errors
			spec.Analysis.OnMetricsError = tc.on
			q, ok := QueryFor(spec, now)
			if !ok || !q.Window.From.Equal(now.Add(-4*time.Hour)) || !q.Window.To.Equal(now) {
				t.Fatalf("query %+v, %v: want the stage's minDuration (4h) before now", q.Window, ok)
			}
			d := Judge(spec, Evidence{Stats: tc.stats}, now)
			reasons := strings.Join(d.Reasons, "\n")
			if d.Action != tc.want || !strings.Contains(reasons, tc.reason) || strings.Contains(reasons, "so far") {
				t.Errorf("decision %s, reasons %q; want %s saying %q", d.Action, d.Reasons, tc.want, tc.reason)
			}
			if !strings.Contains(reasons, "clock skew") {
				t.Errorf("reasons %q do not name the clock skew", d.Reasons)
			}
			if FutureStageStart(spec, now) == nil {
				t.Error("FutureStageStart = nil")
			}
		})
	}
	spec := baseSpec()
	spec.Status.StageStartedAt = now
	if err := FutureStageStart(spec, now); err != nil {
		t.Errorf("a stage that starts now: %v", err)
	}
}

// TestWindowStartsAtFirstCanaryRecord: minDuration counts from the stage's first canary record (Stats.From),
// which the decision reports as its window, with the unit and the keys left out.
func TestWindowStartsAtFirstCanaryRecord(t *testing.T) {
	spec := baseSpec()
	now := t0.Add(5 * time.Hour)
	st := healthy()
	st.From = t0.Add(2 * time.Hour) // a two-hour deploy lag
	st.Unit = UnitRequest
	st.NotRandomised = 42
	d := Judge(spec, Evidence{Stats: st}, now)
	if d.Action != Hold || !strings.Contains(strings.Join(d.Reasons, "\n"), "minDuration 4h not reached (3h since the stage's first canary request)") {
		t.Errorf("decision %s, reasons %q", d.Action, d.Reasons)
	}
	if d.Window == nil || !d.Window.From.Equal(st.From) || !d.Window.To.Equal(now) || d.Unit != UnitRequest || d.NotRandomised != 42 {
		t.Errorf("window %+v unit %q not randomised %d", d.Window, d.Unit, d.NotRandomised)
	}
	if d := Judge(spec, Evidence{Stats: st}, t0.Add(6*time.Hour)); d.Action != Advance {
		t.Errorf("4h after the first canary record: %s %q", d.Action, d.Reasons)
	}
	// A source that cannot tell (From zero) keeps stageStartedAt.
	st.From = time.Time{}
	if d := Judge(spec, Evidence{Stats: st}, now); d.Action != Advance || !d.Window.From.Equal(t0) {
		t.Errorf("without From: %s, window %+v", d.Action, d.Window)
	}
}

// TestSampleRatioMismatch: the share of keys, else of requests, else of mirrored requests, is checked
// on every tick; a mismatch holds, names itself first and marks the decision; a failing rule still
// rolls back, since that is safe whatever the routing did.
func TestSampleRatioMismatch(t *testing.T) {
	withKeys := func(stableKeys, canaryKeys int64) *Stats {
		st := healthy()
		st.Stable.Keys, st.Canary.Keys = stableKeys, canaryKeys
		return st
	}
	shadow := func(stable, mirrored int64) *Stats {
		st := healthy()
		st.Stable.Requests, st.Shadow = stable, mirrored
		st.Canary.Requests = mirrored
		return st
	}
	failing := &Stats{Stable: armOf(95000, 950, 0.87, 0.1), Canary: armOf(10000, 300, 0.87, 0.1)}
	for _, tc := range []struct {
		name           string
		weight, shadow int
		stats          *Stats
		mismatch       bool
		want           Action
		reason         string
	}{
		{"requests at the spec's share", 5, 0, healthy(), false, Advance, "stage 1 passed"},
		{"keys at the spec's share", 5, 0, withKeys(9500, 500), false, Advance, "stage 1 passed"},
		{"keys at twice the share", 5, 0, withKeys(9000, 1000), true, Hold, "sample ratio mismatch: the canary has 10% of keys (1000 of 10000), where the spec sets 5%"},
		{"a small estimation error of distinct keys is no mismatch", 5, 0, withKeys(9490, 505), false, Advance, "stage 1 passed"},
		{"requests at twice the share", 5, 0, &Stats{Stable: armOf(90000, 900, 0.87, 0.1), Canary: armOf(10000, 100, 0.87, 0.1)}, true, Hold, "of requests"},
		{"a failing rule still rolls back, naming the mismatch too", 5, 0, failing, true, Rollback, "sample ratio mismatch: the canary has 9.52% of requests"},
		{"mirrored share as set", 0, 20, shadow(50000, 10000), false, Advance, "stage 1 passed"},
		{"mirrored share off", 0, 20, shadow(50000, 5000), true, Hold, "sample ratio mismatch: mirrored 10% of stable requests (5000 of 50000), where the spec sets 20%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.Traffic.Weight, spec.Traffic.Shadow = tc.weight, tc.shadow
			d := Judge(spec, Evidence{Stats: tc.stats}, t0.Add(5*time.Hour))
			if d.SampleRatioMismatch != tc.mismatch || d.Action != tc.want {
				t.Fatalf("mismatch %v, decision %s, want %v %s: %q", d.SampleRatioMismatch, d.Action, tc.mismatch, tc.want, d.Reasons)
			}
			if tc.mismatch && tc.want == Hold && !strings.HasPrefix(d.Reasons[0], "sample ratio mismatch") {
				t.Errorf("first reason %q", d.Reasons[0])
			}
			if !strings.Contains(strings.Join(d.Reasons, "\n"), tc.reason) {
				t.Errorf("reasons %q do not say %q", d.Reasons, tc.reason)
			}
		})
	}
}

// TestSRMFalseAlarmRate: a split exactly as the spec sets, checked on each of 96 ticks, raises a
// mismatch in at most srmAlpha-ish of rollouts (here: none of 300).
func TestSRMFalseAlarmRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	alarms := 0
	for range 300 {
		var k, n int64
		for range simTicks {
			n += 100
			k += binomial(rng, 100, 0.05)
			st := &Stats{Stable: ArmStats{Requests: n - k}, Canary: ArmStats{Requests: k}}
			if sampleRatio(rollouts.Traffic{Weight: 5}, st) != "" {
				alarms++
				break
			}
		}
	}
	if alarms > 1 {
		t.Errorf("%d of 300 healthy splits flagged as a mismatch", alarms)
	}
}

// TestAdvisoryValue: a bare value from a query is shown and never acted on: it neither rolls back nor
// holds a stage, whatever it says.
func TestAdvisoryValue(t *testing.T) {
	spec := baseSpec()
	spec.Analysis.Rules = append(spec.Analysis.Rules, rollouts.Rule{Metric: "p99_latency_slo", Query: "histogram_quantile(0.99, x)", Max: f64(8000)})
	st := healthy()
	st.Stable.Metrics["p99_latency_slo"] = Sample{Kind: Value, N: 1, Sum: 7000}
	st.Canary.Metrics["p99_latency_slo"] = Sample{Kind: Value, N: 1, Sum: 9900}
	d := Judge(spec, Evidence{Stats: st}, t0.Add(5*time.Hour))
	if d.Action != Advance || !strings.Contains(strings.Join(d.Reasons, "\n"), "advisory, not judged: p99_latency_slo") {
		t.Errorf("decision %s, reasons %q", d.Action, d.Reasons)
	}
	m := d.Metrics[2]
	if !m.Advisory || m.Verdict != Inconclusive || m.Interval != nil || !strings.Contains(m.Reason, "9,900 against max 8000 (advisory") {
		t.Errorf("advisory rule %+v", m)
	}
	// The divisor is fixed by the spec (it cannot change as metrics get data): the three limits split
	// 5%, the advisory one too, and each gives half of its share to the recent windows.
	if b := budgetOf(spec, st); math.Abs(b.fail-0.05/6) > 1e-12 || math.Abs(b.recent-0.05/6) > 1e-12 || math.Abs(b.pass-0.2) > 1e-12 {
		t.Errorf("budget %+v", b)
	}
}

// TestErrorBudget: Bonferroni over every limit of the spec on the rollback side (with data or not: the
// divisor is fixed for the stage), half of each limit's share for the whole window and half for the
// recent windows; intersection-union (no split) on the advance side, requirePass raising it to
// confidence.
func TestErrorBudget(t *testing.T) {
	spec := baseSpec()
	spec.Analysis.Rules = append(spec.Analysis.Rules,
		rollouts.Rule{Metric: "refusal_rate", MaxIncrease: ratio(1), Max: f64(0.1)}, // no data: counted all the same
		rollouts.Rule{Metric: "error_rate", Max: f64(0.02)})
	b := budgetOf(spec, healthy())
	if math.Abs(b.fail-0.05/10) > 1e-12 || math.Abs(b.recent-0.05/10) > 1e-12 || math.Abs(b.pass-0.2) > 1e-12 {
		t.Errorf("budget %+v, want fail 0.05/10 and recent 0.05/10 (5 limits, halved), pass 0.2", b)
	}
	if nodata := budgetOf(spec, &Stats{}); nodata != b {
		t.Errorf("budget without data %+v, with data %+v: the divisor must not depend on the data", nodata, b)
	}
	spec.Analysis.AdvanceConfidence = 0.9
	if b := budgetOf(spec, healthy()); math.Abs(b.pass-0.1) > 1e-12 {
		t.Errorf("advanceConfidence 0.9: pass %v", b.pass)
	}
	spec.Analysis.RequirePass = true
	if b := budgetOf(spec, healthy()); math.Abs(b.pass-0.05) > 1e-12 {
		t.Errorf("requirePass: pass %v, want 0.05", b.pass)
	}
}

// TestHonestIntervals: relative intervals never reach below -100%, carry their scale and the confidence
// of each end, and a rule with both max and maxIncrease keeps each limit's interval on its own scale.
func TestHonestIntervals(t *testing.T) {
	spec := baseSpec()
	spec.Analysis.Rules = []rollouts.Rule{{Metric: "error_rate", Max: f64(0.02), MaxIncrease: ratio(0.5)}}
	// Few requests and a few errors: a Fieller bound left alone would reach far below -100%.
	st := &Stats{Stable: armOf(950, 10, 0.87, 0.1), Canary: armOf(50, 1, 0.87, 0.1)}
	d := Judge(spec, Evidence{Stats: st}, t0.Add(5*time.Hour))
	m := d.Metrics[0]
	if len(m.Limits) != 2 {
		t.Fatalf("limits %+v", m.Limits)
	}
	rel, abs := m.Limits[0], m.Limits[1]
	if rel.Limit != "maxIncrease 50%" || rel.Interval.Scale != ScaleRelative || rel.Interval.Low < -1 {
		t.Errorf("relative limit %+v %+v", rel, *rel.Interval)
	}
	if abs.Limit != "max 0.02" || abs.Interval.Scale != ScaleAbsolute || abs.Interval.Low < 0 {
		t.Errorf("absolute limit %+v %+v", abs, *abs.Interval)
	}
	if math.Abs(rel.Interval.LowConfidence-(1-0.0125)) > 1e-12 || rel.Interval.HighConfidence != 0.8 {
		t.Errorf("relative interval's ends at %v and %v, want 0.9875 (rollback: 5%% over 2 limits, half of it for the whole window) and 0.8 (advance)", rel.Interval.LowConfidence, rel.Interval.HighConfidence)
	}
	if rel.Interval.Label() != "lower end at 98.8%, upper at 80%, always-valid" || strings.Contains(m.Reason, "95% CS") {
		t.Errorf("interval %q, reason %q", rel.Interval.Label(), m.Reason)
	}
	// Over many small samples, no relative interval reaches below -100%.
	rng := rand.New(rand.NewPCG(33, 34))
	for range 2000 {
		ns, nc := 30+rng.Int64N(500), 30+rng.Int64N(100)
		st := &Stats{Stable: armOf(ns, float64(binomial(rng, ns, 0.02)), 0.87, 0.1), Canary: armOf(nc, float64(binomial(rng, nc, 0.02)), 0.87, 0.1)}
		for _, o := range judgeRules(spec, st) {
			for _, l := range o.Limits {
				if l.Interval.Scale == ScaleRelative && l.Interval.Low < -1 {
					t.Fatalf("interval %+v below -100%%", *l.Interval)
				}
			}
		}
	}
}

// TestBetaBinomialCoverage: the exact one-arm bound for a rate of independent requests holds at every
// tick at once: over 400 simulated streams of 5,000 requests checked after each 50, the true rate
// leaves the upper bound at level 0.05 in at most 5% of them; and it is tighter than the normal
// bound where events are few (a lower bound above zero from a handful of events).
func TestBetaBinomialCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	const p = 0.02
	crossed := 0
	for range 400 {
		var k, n float64
		for range 100 {
			k += float64(binomial(rng, 50, p))
			n += 50
			if betaBinomialBound(k, n, 0.05, 0.02, true) < p || betaBinomialBound(k, n, 0.05, 0.02, false) > p {
				crossed++
				break
			}
		}
	}
	if crossed > 20 {
		t.Errorf("the true rate left the 95%% sequence in %d of 400 streams", crossed)
	}
	// 12.6% of 87 requests: the exact bound keeps a lower end above zero at 97.5%.
	if lo := betaBinomialBound(11, 87, 0.025, 0.02, false); lo <= 0.02 {
		t.Errorf("lower bound %v, want above the 2%% limit", lo)
	}
}

// TestRateRatioCoverage: the exact conditional bound on the ratio of two rates of independent requests
// (rateRatioBound) holds at every tick at once. 400 streams of requests assigned to a 5% canary one
// by one, at equal rates (1%) and at a true ratio of 2 (1% → 2%), checked after every 100 requests for
// 100,000 requests: the true ratio falls below the lower end at level 0.05 in at most 5% of streams.
// And where events are few it is tighter than the normal mixture's low end.
func TestRateRatioCoverage(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ps, pc float64
	}{{"A/A", 0.01, 0.01}, {"twice", 0.01, 0.02}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(41, 42))
			truth := tc.pc / tc.ps
			crossed := 0
			for range 400 {
				var kc, nc, ks, ns float64
				for range 1000 {
					c := float64(binomial(rng, 100, 0.05))
					nc += c
					ns += 100 - c
					kc += float64(binomial(rng, int64(c), tc.pc))
					ks += float64(binomial(rng, 100-int64(c), tc.ps))
					if nc < MinObservations || ns < MinObservations {
						continue
					}
					if rateRatioBound(kc, nc, ks, ns, 0.05, 1.5, false) > truth {
						crossed++
						break
					}
				}
			}
			t.Logf("true ratio %.1f below the 95%% lower end in %d of 400 streams", truth, crossed)
			if crossed > 20 {
				t.Errorf("the true ratio left the 95%% sequence in %d of 400 streams", crossed)
			}
		})
	}
	// 30 canary errors in 1,000 requests against 190 in 19,000: the exact low end at 97.5% is higher.
	lo := rateRatioBound(30, 1000, 190, 19000, 0.025, 1.5, false)
	z := csMultiplier(20000, 0.025)
	pc, ps := 31.0/1002, 191.0/19002
	dlo, _ := ratioBoundsZ(0.03, pc*(1-pc)/1000, 0.01, ps*(1-ps)/19000, z)
	if lo <= dlo {
		t.Errorf("exact low end %.3f, want above the normal mixture's %.3f", lo, dlo)
	}
}
