package policy

import (
	"strings"
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
	return &Stats{Stable: arm(380000, 3800), Canary: arm(20000, 210)}
}

// benchClusteredStats is benchStats as a per-key source gives it: sums and quantile bins over all
// KeyBuckets buckets of each arm.
func benchClusteredStats() *Stats {
	st := benchStats()
	for _, a := range []*ArmStats{&st.Stable, &st.Canary} {
		a.Keys = a.Requests / 20
		per := float64(a.Requests) / KeyBuckets
		for name, s := range a.Metrics {
			if s.Kind == Value {
				continue
			}
			cs := make([]Cluster, KeyBuckets)
			for b := range cs {
				cs[b] = Cluster{Bucket: b, N: per, Sum: s.Sum / KeyBuckets * (0.5 + float64(b%3)/2),
					SumSquares: s.SumSquares / KeyBuckets}
				if s.Kind == Quantile {
					cs[b].Bins = make([]float64, QuantileBins)
					for i := range 20 {
						cs[b].Bins[QuantileBin(200+float64(i*50+b%7))] += per / 20
					}
				}
			}
			s.Clusters = cs
			a.Metrics[name] = s
		}
	}
	st.Unit = UnitKey
	return st
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
	clustered := benchClusteredStats()
	for _, name := range []string{"proportion", "proportion+max", "mean", "quantile", "value",
		"keys/proportion", "keys/proportion+max", "keys/mean", "keys/quantile"} {
		b.Run(name, func(b *testing.B) {
			spec := baseSpec()
			ev := Evidence{Stats: stats}
			if rule, ok := strings.CutPrefix(name, "keys/"); ok {
				name, ev = rule, Evidence{Stats: clustered}
			}
			spec.Analysis.Rules = []rollouts.Rule{rules[name]}
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
