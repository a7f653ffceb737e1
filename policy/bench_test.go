package policy

import (
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// benchStats holds every kind of sample, with plenty of data, in both arms.
func benchStats() *Stats {
	arm := func(n int64, errs float64) ArmStats {
		fn := float64(n)
		h := &histogram{}
		for i := range 20000 {
			h.add(200 + float64(i%1000))
		}
		return ArmStats{Requests: n, Metrics: map[string]Sample{
			"error_rate":       {Kind: Proportion, N: n, Sum: errs},
			"cost_per_request": {Kind: Mean, N: n, Sum: 0.004 * fn, SumSquares: fn * (0.002*0.002 + 0.004*0.004)},
			"latency_p95_ms":   {Kind: Quantile, N: n, Dist: h},
			"p99_latency_slo":  {Kind: Value, N: 1, Sum: 7000},
		}}
	}
	return &Stats{Stable: arm(200000, 2000), Canary: arm(20000, 210)}
}

// BenchmarkJudge measures one Judge call on a Progressing stage with one rule of each kind.
func BenchmarkJudge(b *testing.B) {
	rules := map[string]rollouts.Rule{
		"proportion":     {Metric: "error_rate", MaxIncrease: ratio(0.5)},
		"proportion+max": {Metric: "error_rate", MaxIncrease: ratio(0.5), Max: f64(0.02)},
		"mean":           {Metric: "cost_per_request", MaxIncrease: ratio(0.5)},
		"quantile":       {Metric: "latency_p95_ms", MaxIncrease: ratio(0.3)},
		"value":          {Metric: "p99_latency_slo", Max: f64(8000)},
	}
	stats := benchStats()
	now := t0.Add(5 * time.Hour)
	for _, name := range []string{"proportion", "proportion+max", "mean", "quantile", "value"} {
		b.Run(name, func(b *testing.B) {
			spec := baseSpec()
			spec.Analysis.Rules = []rollouts.Rule{rules[name]}
			ev := Evidence{Stats: stats}
			b.ReportAllocs()
			for b.Loop() {
				if d := Judge(spec, ev, now); d.Action == "" {
					b.Fatal("no decision")
				}
			}
		})
	}
}

// BenchmarkCSMultiplier measures the confidence-sequence boundary alone (a bisection on the mixture).
func BenchmarkCSMultiplier(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		csMultiplier(12345, 0.025)
	}
}
