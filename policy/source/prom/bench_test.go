package prom_test

import (
	"context"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

// BenchmarkStats times one tick's Stats call for every built-in metric against a real Prometheus
// holding an hour of per-minute samples of the exporter (about 600 series).
func BenchmarkStats(b *testing.B) {
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 20000, Canary: 2000,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 1)
	exp := synth.NewExporter("summarizer")
	om, err := synth.OpenMetrics(exp.Registry, exp.Observe, traffic, from, to, 15*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	src, err := prom.New(testserver.PrometheusBackfilled(b, om))
	if err != nil {
		b.Fatal(err)
	}
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := src.Stats(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(src.Queries())/float64(b.N), "queries/op")
}
