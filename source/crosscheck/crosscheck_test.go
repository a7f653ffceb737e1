package crosscheck_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/internal/synth"
	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/record"
	"github.com/rollout-dev/rollout/source/jsonl"
	"github.com/rollout-dev/rollout/source/postgres"
	"github.com/rollout-dev/rollout/source/prom"
)

var (
	stageStart = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	now        = stageStart.Add(6 * time.Hour)
)

func ratio(r rollouts.Ratio) *rollouts.Ratio { return &r }
func limit(f float64) *float64               { return &f }

// spec is a rollout in its 25% stage since stageStart, judged on every built-in kind of metric.
func spec(name string) *rollouts.Spec {
	canary := &rollouts.Variant{Model: "model-canary", Prompt: "v3"}
	return &rollouts.Spec{
		APIVersion: rollouts.APIVersion, Kind: rollouts.Kind, Name: name,
		Stable:  rollouts.Variant{Model: "model-stable", Prompt: "v3"},
		Canary:  canary,
		Traffic: rollouts.Traffic{Weight: 25},
		Stages: []rollouts.Stage{
			{Weight: 5, MinDuration: rollouts.Duration(time.Hour), MinRequests: 200},
			{Weight: 25, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 50, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 100},
		},
		Analysis: rollouts.Analysis{Confidence: 0.95, Rules: []rollouts.Rule{
			{Metric: "error_rate", Max: limit(0.05), MaxIncrease: ratio(0.5)},
			{Metric: "latency_p95_ms", MaxIncrease: ratio(0.3)},
			{Metric: "latency_mean_ms", MaxIncrease: ratio(0.3)},
			{Metric: "cost_per_request", MaxIncrease: ratio(0.5)},
			{Metric: "quality_score", MaxDecrease: ratio(0.05)},
			{Metric: "refusal_rate", MaxIncrease: ratio(1)},
		}},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 1, StageStartedAt: stageStart,
			Canary: rollouts.Fingerprint(canary)},
	}
}

// scenario is one rollout's traffic and the decision it should lead to.
type scenario struct {
	name           string
	stable, canary int
	canaryProfile  synth.Profile
	want           policy.Action
}

func scenarios() []scenario {
	healthy := synth.Stable
	healthy.Model = "model-canary"
	slow := healthy
	slow.LatencyMedian, slow.ErrorRate = 800, 0.09
	return []scenario{
		{name: "healthy", stable: 6000, canary: 2000, canaryProfile: healthy, want: policy.Advance},
		{name: "regressed", stable: 6000, canary: 2000, canaryProfile: slow, want: policy.Rollback},
		{name: "thin", stable: 150, canary: 40, canaryProfile: healthy, want: policy.Hold},
	}
}

// sources starts Prometheus (backfilled with what it would have scraped from the exporter every five
// minutes) and PostgreSQL, loads the traffic of every scenario into both, and returns the sources.
func sources(t testing.TB, traffic []synth.Request) map[string]policy.Source {
	t.Helper()
	ctx := context.Background()

	// The application's recorder, instrumented once, feeds both the file and Prometheus.
	metrics := record.NewMetrics()
	registry := prometheus.NewRegistry()
	registry.MustRegister(metrics)
	om, err := synth.OpenMetrics(registry, func(r synth.Request) {
		if err := metrics.Record(synth.Record(r)); err != nil {
			t.Fatal(err)
		}
	}, traffic, stageStart, now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "traffic.jsonl")
	file, err := record.OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range traffic {
		if err := file.Record(synth.Record(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	promSrc, err := prom.New(testserver.PrometheusBackfilled(t, om))
	if err != nil {
		t.Fatal(err)
	}

	dsn := testserver.Postgres(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = testserver.PostgresPassword
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, postgres.Schema); err != nil {
		t.Fatal(err)
	}
	if err := synth.Insert(ctx, conn, traffic); err != nil {
		t.Fatal(err)
	}
	pgSrc, err := postgres.New(dsn+"&password=env:PGPASS", func(string) string { return testserver.PostgresPassword })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pgSrc.Close)

	return map[string]policy.Source{"file": jsonl.Open(path), "prometheus": promSrc, "postgres": pgSrc}
}

// tolerance is how close each source's statistics are to the exact ones: Prometheus keeps no sum of
// squares, so variances come from the buckets and err on the wide side (by 50% for cost, whose recorder
// buckets are 58% apart), and the recorder's latency buckets are 24% wide; PostgreSQL buckets latencies by 2% for
// quantiles; the file source keeps a quantile sketch with 1% relative accuracy.
var tolerance = map[string]synth.Tolerance{
	"prometheus": {Variance: 0.05, VarianceOver: 0.6, Quantile: 0.25},
	"postgres":   {Variance: 1e-9, Quantile: 0.02},
	"file":       {Variance: 1e-9, Quantile: 0.02},
}

func TestSameDecisionFromEverySource(t *testing.T) {
	var traffic []synth.Request
	for i, sc := range scenarios() {
		traffic = append(traffic, synth.Generate(synth.Traffic{Rollout: sc.name, From: stageStart, To: now,
			Stable: sc.stable, Canary: sc.canary, StableProfile: synth.Stable, CanaryProfile: sc.canaryProfile}, uint64(10+i))...)
	}
	srcs := sources(t, traffic)
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			sp := spec(sc.name)
			q, ok := policy.QueryFor(sp, now)
			if !ok {
				t.Fatal("QueryFor: no query for a progressing rollout")
			}
			want := synth.Only(synth.Expected(traffic, sc.name, q.Window), q)
			exact := policy.Judge(sp, policy.Evidence{Stats: want}, now)
			if exact.Action != sc.want {
				t.Errorf("from the exact statistics: %s (%s), want %s", exact.Action, strings.Join(exact.Reasons, "; "), sc.want)
			}
			for name, src := range srcs {
				stats, err := src.Stats(context.Background(), q)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, d := range synth.Diff(want, stats, tolerance[name]) {
					t.Errorf("%s: %s", name, d)
				}
				got := policy.Judge(sp, policy.Evidence{Stats: stats}, now)
				if len(got.Metrics) != len(exact.Metrics) {
					t.Errorf("%s: %d rule results, the exact statistics give %d", name, len(got.Metrics), len(exact.Metrics))
				}
				if got.Action != exact.Action {
					t.Errorf("%s: %s (%s), the exact statistics give %s", name, got.Action,
						strings.Join(got.Reasons, "; "), exact.Action)
				}
				for i, r := range got.Metrics {
					if i < len(exact.Metrics) && r.Verdict != exact.Metrics[i].Verdict {
						t.Errorf("%s: rule %s: %s, the exact statistics give %s", name, r.Name, r.Verdict, exact.Metrics[i].Verdict)
					}
				}
			}
		})
	}
}
