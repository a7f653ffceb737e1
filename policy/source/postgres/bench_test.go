package postgres_test

import (
	"context"
	"testing"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/postgres"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

// BenchmarkStats times one tick's Stats call for every built-in metric against a real PostgreSQL whose
// llm_requests holds 100,000 requests of the rollout in the window.
func BenchmarkStats(b *testing.B) {
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 90000, Canary: 10000,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 1)
	src, err := postgres.New(database(b, traffic), getenv)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := src.Stats(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(src.Queries())/float64(b.N), "queries/op")
}
