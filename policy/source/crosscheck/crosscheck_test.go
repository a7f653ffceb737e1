package crosscheck_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/policy/source/postgres"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts/record"
)

var (
	stageStart = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	now        = stageStart.Add(6 * time.Hour)
)

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

// sources starts Prometheus (backfilled with what it would have scraped from the recorder every step)
// and PostgreSQL, loads the traffic of every scenario into both, and returns the sources.
func sources(t testing.TB, traffic []synth.Request, step time.Duration) map[string]policy.Source {
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
	}, traffic, stageStart, now, step)
	if err != nil {
		t.Fatal(err)
	}
	// One request log per rollout, as a team keeps them (file:traffic/<rollout>.jsonl).
	dir := t.TempDir()
	files := map[string]*record.JSONL{}
	for _, r := range traffic {
		file := files[r.Rollout]
		if file == nil {
			if file, err = record.OpenJSONL(filepath.Join(dir, r.Rollout+".jsonl")); err != nil {
				t.Fatal(err)
			}
			files[r.Rollout] = file
		}
		if err := file.Record(synth.Record(r)); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range files {
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
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

	return map[string]policy.Source{"file": fileDir(dir), "prometheus": promSrc, "postgres": pgSrc}
}

// fileDir is the file source of each rollout: DIR/<rollout>.jsonl.
type fileDir string

func (d fileDir) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	return jsonl.Open(filepath.Join(string(d), q.Rollout+".jsonl")).Stats(ctx, q)
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
	srcs := sources(t, traffic, 5*time.Minute)
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			sp := synth.Spec(sc.name, stageStart)
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
					// Prometheus's variances come from its buckets and err on the wide side, so a rule
					// may stay inconclusive where the exact statistics decide it; never the reverse.
					if name == "prometheus" && i < len(exact.Metrics) && r.Verdict == policy.Inconclusive {
						continue
					}
					if i < len(exact.Metrics) && r.Verdict != exact.Metrics[i].Verdict {
						t.Errorf("%s: rule %s: %s, the exact statistics give %s", name, r.Name, r.Verdict, exact.Metrics[i].Verdict)
					}
				}
			}
		})
	}
}

// TestDecisionAgreementRate judges many seeded rollouts of each scenario through every source and
// counts how often each source's decision is the exact statistics' one.
func TestDecisionAgreementRate(t *testing.T) {
	race.Skip(t, race.Slow)
	if testing.Short() {
		t.Skip("many rollouts")
	}
	const seeds = 10
	type rollout struct {
		name string
		sc   scenario
	}
	var traffic []synth.Request
	var all []rollout
	for i, sc := range scenarios() {
		for seed := 0; seed < seeds; seed++ {
			name := fmt.Sprintf("%s-%d", sc.name, seed)
			all = append(all, rollout{name, sc})
			traffic = append(traffic, synth.Generate(synth.Traffic{Rollout: name, From: stageStart, To: now,
				Stable: sc.stable, Canary: sc.canary, StableProfile: synth.Stable, CanaryProfile: sc.canaryProfile},
				uint64(1000*i+seed))...)
		}
	}
	srcs := sources(t, traffic, 2*time.Hour)
	agree := map[string]int{}
	wanted := 0
	for _, r := range all {
		sp := synth.Spec(r.name, stageStart)
		q, _ := policy.QueryFor(sp, now)
		exact := policy.Judge(sp, policy.Evidence{Stats: synth.Expected(traffic, r.name, q.Window)}, now)
		if exact.Action == r.sc.want {
			wanted++
		}
		for name, src := range srcs {
			stats, err := src.Stats(context.Background(), q)
			if err != nil {
				t.Fatalf("%s %s: %v", name, r.name, err)
			}
			if got := policy.Judge(sp, policy.Evidence{Stats: stats}, now); got.Action == exact.Action {
				agree[name]++
			} else {
				t.Logf("%s %s: %s, exact %s", name, r.name, got.Action, exact.Action)
			}
		}
	}
	t.Logf("of %d rollouts: %d reach the scenario's decision; agreement with it: %v", len(all), wanted, agree)
	// The file source is exact and must always agree. PostgreSQL bins latencies by 2% for quantiles and
	// Prometheus keeps histograms, so either may flip a rollout that sits on a limit's edge.
	minimum := map[string]float64{"file": 1, "postgres": 0.95, "prometheus": 0.9}
	for name, share := range minimum {
		if got := float64(agree[name]) / float64(len(all)); got < share {
			t.Errorf("%s agrees on %.0f%% of rollouts, want at least %.0f%%", name, 100*got, 100*share)
		}
	}
	// A stage advances only on evidence (advanceConfidence), so a few healthy seeds still hold after 6
	// hours at this traffic: that is the judge being careful, not a source disagreeing.
	if float64(wanted)/float64(len(all)) < 0.8 {
		t.Errorf("only %d of %d rollouts reach their scenario's decision", wanted, len(all))
	}
}

// BenchmarkTick times one tick's Stats call, every rule of the spec, against each source holding the
// same traffic: 10,000 requests of the rollout over 6 hours (the file also holds its 10,000 lines).
func BenchmarkTick(b *testing.B) {
	healthy := scenarios()[0]
	traffic := synth.Generate(synth.Traffic{Rollout: "bench", From: stageStart, To: now, Stable: 8000, Canary: 2000,
		StableProfile: synth.Stable, CanaryProfile: healthy.canaryProfile}, 1)
	srcs := sources(b, traffic, time.Minute)
	q, _ := policy.QueryFor(synth.Spec("bench", stageStart), now)
	for _, name := range []string{"file", "prometheus", "postgres"} {
		b.Run(name, func(b *testing.B) {
			src := srcs[name]
			counter, counts := src.(interface{ Queries() int64 })
			before := int64(0)
			if counts {
				before = counter.Queries()
			}
			for b.Loop() {
				if _, err := src.Stats(context.Background(), q); err != nil {
					b.Fatal(err)
				}
			}
			if counts {
				b.ReportMetric(float64(counter.Queries()-before)/float64(b.N), "queries/op")
			}
		})
	}
}
