package policy

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/rollouts"
)

// sorted is an exact distribution of a few observations.
type sorted []float64

func (s sorted) Count() float64 { return float64(len(s)) }
func (s sorted) Quantile(q float64) float64 {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
func (s sorted) CountAbove(x float64) float64 {
	return float64(len(s) - sort.Search(len(s), func(i int) bool { return s[i] > x }))
}

var _ Distribution = sorted(nil)

// latencies returns n evenly spread latencies from lo to hi.
func latencies(n int, lo, hi float64) sorted {
	s := make(sorted, n)
	for i := range s {
		s[i] = lo + (hi-lo)*float64(i)/float64(n-1)
	}
	return s
}

func TestJudgeRule(t *testing.T) {
	meanOf := func(n int64, mean, sd float64) Sample {
		fn := float64(n)
		return Sample{Kind: Mean, N: n, Sum: mean * fn, SumSquares: fn * (sd*sd*(fn-1)/fn + mean*mean)}
	}
	stats := func(metric string, stable, canary Sample) *Stats {
		return &Stats{
			Stable: ArmStats{Requests: stable.N, Metrics: map[string]Sample{metric: stable}},
			Canary: ArmStats{Requests: canary.N, Metrics: map[string]Sample{metric: canary}},
		}
	}
	tests := []struct {
		name        string
		rule        rollouts.Rule
		stats       *Stats
		want        Verdict
		wantReason  string
		wantNoRange bool // the interval has an end the data cannot bound
	}{
		{"proportion fails", rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)},
			stats("error_rate", Sample{Kind: Proportion, N: 100000, Sum: 1000}, Sample{Kind: Proportion, N: 5000, Sum: 155}),
			Fail, "error rate 3.1% vs 1%: at least +129% worse (95% sure), above the +50% allowed → roll back", false},
		{"proportion passes", rollouts.Rule{Metric: "refusal_rate", MaxIncrease: ratio(1)},
			stats("refusal_rate", Sample{Kind: Proportion, N: 100000, Sum: 1000}, Sample{Kind: Proportion, N: 20000, Sum: 190}),
			Pass, "refusal rate 0.95% vs 1%: at most +13.5% worse (80% sure), within the +100% allowed", false},
		{"proportion with no stable events is unbounded, not a failure", rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)},
			stats("error_rate", Sample{Kind: Proportion, N: 40, Sum: 0}, Sample{Kind: Proportion, N: 40, Sum: 1}),
			Inconclusive, "error rate 2.5% vs 0%: +∞ so far, above the +50% allowed but not yet sure", true},
		{"a stable arm without events still bounds the ratio from below", rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)},
			stats("error_rate", Sample{Kind: Proportion, N: 5000, Sum: 0}, Sample{Kind: Proportion, N: 1000, Sum: 30}),
			Fail, "error rate 3% vs 0%: at least +306% worse (95% sure)", true},
		{"absolute max fails", rollouts.Rule{Metric: "error_rate", Max: f64(0.02)},
			stats("error_rate", Sample{Kind: Proportion, N: 100000, Sum: 1000}, Sample{Kind: Proportion, N: 5000, Sum: 155}),
			Fail, "error rate 3.1%: at least 2.37% (95% sure), above the 2% maximum → roll back", false},
		{"absolute max and relative both judged", rollouts.Rule{Metric: "error_rate", Max: f64(0.05), MaxIncrease: ratio(0.5)},
			stats("error_rate", Sample{Kind: Proportion, N: 100000, Sum: 1000}, Sample{Kind: Proportion, N: 5000, Sum: 155}),
			Fail, "above the +50% allowed → roll back; error rate 3.1%: at most 3.85% (80% sure), within the 5% maximum", false},
		{"mean with its own variance passes", rollouts.Rule{Metric: "cost_per_request", MaxIncrease: ratio(0.5)},
			stats("cost_per_request", meanOf(50000, 0.0040, 0.002), meanOf(5000, 0.0042, 0.002)),
			Pass, "cost per request $0.0042 vs $0.004: at most +6.6% worse (80% sure), within the +50% allowed", false},
		{"mean decrease fails", rollouts.Rule{Metric: "quality_score", MaxDecrease: ratio(0.05)},
			stats("quality_score", meanOf(50000, 0.87, 0.1), meanOf(5000, 0.78, 0.1)),
			Fail, "quality score 0.78 vs 0.87: at least 9.9% worse (95% sure), below the -5% allowed → roll back", false},
		{"absolute min passes", rollouts.Rule{Metric: "quality_score", Min: f64(0.8)},
			stats("quality_score", meanOf(50000, 0.87, 0.1), meanOf(5000, 0.87, 0.1)),
			Pass, "quality score 0.87: at least 0.8669 (80% sure), above the 0.8 minimum", false},
		{"quantile fails", rollouts.Rule{Metric: "latency_p95_ms", MaxIncrease: ratio(0.3)},
			stats("latency_p95_ms", Sample{Kind: Quantile, N: 2000, Dist: latencies(2000, 100, 1000)}, Sample{Kind: Quantile, N: 1000, Dist: latencies(1000, 200, 2000)}),
			Fail, "p95 latency 1,910 ms vs 955 ms: at least +94.9% worse (95% sure), above the +30% allowed → roll back", false},
		{"quantile passes", rollouts.Rule{Metric: "latency_p99_ms", MaxIncrease: ratio(0.3)},
			stats("latency_p99_ms", Sample{Kind: Quantile, N: 5000, Dist: latencies(5000, 100, 1000)}, Sample{Kind: Quantile, N: 5000, Dist: latencies(5000, 100, 1000)}),
			Pass, "p99 latency 991 ms vs 991 ms: at most +0.4% worse (80% sure), within the +30% allowed", false},
		{"quantile with too few observations for the tail is unbounded", rollouts.Rule{Metric: "latency_p99_ms", Max: f64(900)},
			stats("latency_p99_ms", Sample{Kind: Quantile, N: 40, Dist: latencies(40, 100, 1000)}, Sample{Kind: Quantile, N: 40, Dist: latencies(40, 100, 1000)}),
			Inconclusive, "p99 latency 1,000 ms: above the 900 ms maximum but not yet sure (it could be as low as 861.5 ms)", true},
		{"a bare value over its max is advisory, never a failure", rollouts.Rule{Metric: "p99_latency_slo", Max: f64(8000)},
			stats("p99_latency_slo", Sample{Kind: Value, N: 1, Sum: 7000}, Sample{Kind: Value, N: 1, Sum: 8100}),
			Inconclusive, "p99_latency_slo: 8,100 against max 8000 (advisory", false},
		{"a bare relative value is advisory, never a pass", rollouts.Rule{Metric: "judge_score", MaxDecrease: ratio(0.1)},
			stats("judge_score", Sample{Kind: Value, N: 1, Sum: 4}, Sample{Kind: Value, N: 1, Sum: 3.8}),
			Inconclusive, "judge_score: 3.8 vs 4 (-5%) against maxDecrease 10% (advisory", false},
		{"no canary data is inconclusive, never zero", rollouts.Rule{Metric: "quality_score", MaxDecrease: ratio(0.05)},
			&Stats{Stable: ArmStats{Requests: 10, Metrics: map[string]Sample{"quality_score": meanOf(10, 0.8, 0.1)}}, Canary: ArmStats{Requests: 10}},
			Inconclusive, "quality score: no data for the canary", false},
		{"no stable data blocks a relative limit", rollouts.Rule{Metric: "quality_score", MaxDecrease: ratio(0.05)},
			&Stats{Stable: ArmStats{Requests: 10, Metrics: map[string]Sample{"quality_score": {Kind: Mean}}}, Canary: ArmStats{Requests: 10, Metrics: map[string]Sample{"quality_score": meanOf(10, 0.8, 0.1)}}},
			Inconclusive, "no data for the stable arm", false},
		{"no data at all", rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)}, &Stats{},
			Inconclusive, "error rate: no data for either arm", false},
		{"too few observations", rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)},
			stats("error_rate", Sample{Kind: Proportion, N: 500, Sum: 5}, Sample{Kind: Proportion, N: 12, Sum: 5}),
			Inconclusive, "too few observations yet (canary 12, stable 500; 30 each needed)", false},
		{"a quantile without a rank", rollouts.Rule{Metric: "slowness", Query: "x", Max: f64(1)},
			stats("slowness", Sample{Kind: Quantile, N: 40, Dist: latencies(40, 1, 2)}, Sample{Kind: Quantile, N: 40, Dist: latencies(40, 1, 2)}),
			Inconclusive, "needs a _pNN suffix", false},
		{"arms of different kinds", rollouts.Rule{Metric: "cost_per_request", MaxIncrease: ratio(0.5)},
			stats("cost_per_request", Sample{Kind: Value, N: 1, Sum: 1}, meanOf(100, 1, 1)),
			Inconclusive, "different kinds", false},
		{"a rule without limits", rollouts.Rule{Metric: "error_rate"},
			stats("error_rate", Sample{Kind: Proportion, N: 500, Sum: 5}, Sample{Kind: Proportion, N: 500, Sum: 5}),
			Inconclusive, "sets no limit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := judgeRule(tt.rule, tt.stats, errorBudget{fail: 0.05 / float64(len(limitsOf(tt.rule))), pass: 0.2})
			if o.Verdict != tt.want {
				t.Errorf("verdict %s, want %s (%s)", o.Verdict, tt.want, o.Reason)
			}
			if !strings.Contains(o.Reason, tt.wantReason) {
				t.Errorf("reason %q does not say %q", o.Reason, tt.wantReason)
			}
			if o.Interval != nil {
				unbounded := math.IsInf(o.Interval.Low, 0) || math.IsInf(o.Interval.High, 0)
				if iv := *o.Interval; o.Verdict == Fail && (math.IsInf(iv.Low, 0) || iv.Low <= 0.5) && tt.rule.MaxIncrease != nil {
					t.Errorf("a failing maxIncrease rule's interval %+v does not clear the limit", iv)
				}
				if unbounded != tt.wantNoRange {
					t.Errorf("interval %+v, unbounded %v want %v", *o.Interval, unbounded, tt.wantNoRange)
				}
				if _, err := json.Marshal(o.RuleResult); err != nil {
					t.Errorf("the evidence does not encode: %v", err)
				}
			} else if o.Verdict != Inconclusive {
				t.Errorf("a %s verdict without an interval", o.Verdict)
			}
		})
	}
}

// TestVerdictMatchesInterval: the interval a reviewer sees agrees with the verdict: a failing
// maxIncrease rule's interval lies wholly above the limit, a passing one's wholly below.
func TestVerdictMatchesInterval(t *testing.T) {
	rule := rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)}
	for canaryErrors := 0.0; canaryErrors <= 300; canaryErrors += 5 {
		st := &Stats{
			Stable: ArmStats{Metrics: map[string]Sample{"error_rate": {Kind: Proportion, N: 100000, Sum: 1000}}},
			Canary: ArmStats{Metrics: map[string]Sample{"error_rate": {Kind: Proportion, N: 10000, Sum: canaryErrors}}},
		}
		o := judgeRule(rule, st, errorBudget{fail: 0.05, pass: 0.2})
		iv := o.Interval
		switch o.Verdict {
		case Fail:
			if iv.Low <= 0.5 {
				t.Errorf("%v errors: fail with interval %+v not above +50%%", canaryErrors, *iv)
			}
		case Pass:
			if iv.High > 0.5+1e-9 {
				t.Errorf("%v errors: pass with interval %+v not below +50%%", canaryErrors, *iv)
			}
		default:
			if iv.Low > 0.5+1e-9 || iv.High <= 0.5-1e-9 {
				t.Errorf("%v errors: inconclusive with interval %+v clear of +50%%", canaryErrors, *iv)
			}
		}
	}
}

func TestCSMultiplier(t *testing.T) {
	prev := 0.0
	for _, n := range []float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7} {
		z := csMultiplier(n, 0.05)
		// The one-sided mixture's boundary lies between the two-sided ones at 2·alpha and alpha.
		u := n * mixtureRho2(0.05, tuningObservations)
		lo := math.Sqrt(2 * (u + 1) / u * (math.Log(1/0.1) + 0.5*math.Log(u+1)))
		hi := math.Sqrt(2 * (u + 1) / u * (math.Log(1/0.05) + 0.5*math.Log(u+1)))
		if z < lo-1e-6 || z > hi+1e-6 {
			t.Errorf("n=%g: z=%.4f outside [%.4f, %.4f]", n, z, lo, hi)
		}
		// Always wider than the fixed-horizon one-sided 1.645: that is the price of peeking.
		if z <= 1.6449 {
			t.Errorf("n=%g: z=%.4f not wider than the fixed-horizon bound", n, z)
		}
		if n > 1e4 && z < prev {
			t.Errorf("n=%g: z=%.4f shrinks after the tuning point (%.4f before)", n, z, prev)
		}
		prev = z
		t.Logf("n=%g: z=%.3f", n, z)
	}
	if a, b := csMultiplier(1e4, 0.05), csMultiplier(1e4, 0.01); b <= a {
		t.Errorf("a smaller alpha must widen the bound: %.4f vs %.4f", a, b)
	}
}

func TestIntervalJSON(t *testing.T) {
	b, err := json.Marshal(Interval{Low: -0.25, High: math.Inf(1)})
	if err != nil || string(b) != `{"low":-0.25,"high":null}` {
		t.Errorf("got %s, %v", b, err)
	}
}

func TestQuantileRank(t *testing.T) {
	for name, want := range map[string]float64{
		"latency_p50_ms": 0.5, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99, // built in
		"ttft_p90_ms": 0.9, "tool_latency_p999": 0.999, "error_rate": 0, "slowness": 0,
	} {
		if got := labelOf(name).q; math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: rank %v, want %v", name, got, want)
		}
	}
}
