package postgres_test

import (
	"context"
	"fmt"
	"math"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/postgres"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

var day = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

// clustered is six hours of summarizer at 20%: users with many requests, bad users, a deploy lag
// before the first canary record, excluded vip keys, late feedback (and one late record for a request
// that does not exist).
func clustered(t testing.TB) ([]synth.Request, policy.Query) {
	t.Helper()
	spec := synth.Spec("summarizer", day)
	spec.Traffic.Weight = 20
	spec.Assignment.Exclude = []string{"vip-*", "test-[0-4]?"}
	var keys []string
	for i := range 1500 {
		keys = append(keys, fmt.Sprintf("user-%d", i))
	}
	for i := range 40 {
		keys = append(keys, fmt.Sprintf("vip-%d", i), fmt.Sprintf("test-%d", i))
	}
	canary := synth.DefaultProfile("model-canary")
	canary.ErrorRate = 0.03
	reqs, err := synth.Collect(spec, synth.Options{Seed: 3, From: day, To: day.Add(6 * time.Hour), PerHour: 1500, Keys: keys,
		Activity: 1, DeployLag: 25 * time.Minute, BadUsers: 0.01, BadUserErrorRate: 0.9, UserLatencySigma: 0.3,
		Stable: synth.DefaultProfile("model-stable"), Canary: canary, LateFeedback: 0.5, LateDelay: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	reqs = append(reqs, synth.Request{TS: day.Add(time.Hour), Rollout: "summarizer", RequestID: "no-such-request", Late: true, Feedback: new(-1)})
	q, _ := policy.QueryFor(spec, day.Add(5*time.Hour))
	q.Window.From = day
	q.Metrics = allBuiltins()
	return reqs, q
}

// TestClusters checks every statistic against the exact truth computed from the raw requests: totals,
// sums and latency bins per key bucket (summed over buckets, since PostgreSQL hashes keys its own way),
// distinct keys, the window from the first canary record, the excluded keys, the late feedback.
func TestClusters(t *testing.T) {
	reqs, q := clustered(t)
	src, err := postgres.New(database(t, reqs), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want := synth.ExpectedFor(reqs, q)
	for _, d := range synth.Diff(want, got, synth.Tolerance{Variance: 1e-9, Quantile: 0.02}) {
		t.Error(d)
	}
	if got.Unit != policy.UnitKey || !got.From.Equal(want.From) || !got.From.After(day) {
		t.Errorf("unit %q, from %s; want key, %s (after the deploy lag)", got.Unit, got.From, want.From)
	}
	if got.NotRandomised != want.NotRandomised || got.NotRandomised == 0 {
		t.Errorf("not randomised = %d, want %d (> 0)", got.NotRandomised, want.NotRandomised)
	}
	if got.LateUnmatched != 1 {
		t.Errorf("late unmatched = %d, want 1", got.LateUnmatched)
	}
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		g, w := got.Arm(arm), want.Arm(arm)
		if g.Keys != w.Keys {
			t.Errorf("%s keys = %d, want %d", arm, g.Keys, w.Keys)
		}
		for name, ws := range w.Metrics {
			gs := g.Metrics[name]
			if len(gs.Clusters) == 0 || len(gs.Clusters) > policy.KeyBuckets || (name == "error_rate" && len(gs.Clusters) < 100) {
				t.Errorf("%s %s: %d clusters", arm, name, len(gs.Clusters))
				continue
			}
			var n, sum, bins float64
			for _, c := range gs.Clusters {
				n += c.N
				sum += c.Sum
				for _, b := range c.Bins {
					bins += b
				}
			}
			if n != float64(ws.N) || math.Abs(sum-ws.Sum) > 1e-9*math.Max(1, math.Abs(ws.Sum)) {
				t.Errorf("%s %s: clusters sum to n %g sum %g, want %d %g", arm, name, n, sum, ws.N, ws.Sum)
			}
			if ws.Kind == policy.Quantile && bins != float64(ws.N) {
				t.Errorf("%s %s: %g observations in the bins, want %d", arm, name, bins, ws.N)
			}
		}
	}
	if n := src.Queries(); n != 2 {
		t.Errorf("%d queries, want 2", n)
	}
	// A quantile asked alone still has its sums and clusters, and nothing else is returned.
	only, err := src.Stats(context.Background(), policy.Query{Rollout: q.Rollout, Window: q.Window, NotRandomised: q.NotRandomised,
		Metrics: []policy.MetricQuery{{Name: "latency_p95_ms"}}})
	if err != nil {
		t.Fatal(err)
	}
	p95, w95 := only.Canary.Metrics["latency_p95_ms"], want.Canary.Metrics["latency_p95_ms"]
	if len(only.Canary.Metrics) != 1 || p95.N != w95.N || math.Abs(p95.Sum-w95.Sum) > 1e-9*w95.Sum || len(p95.Clusters) == 0 || p95.Clusters[0].Bins == nil {
		t.Errorf("p95 alone: %d metrics, n %d sum %g, %d clusters; want 1, %d, %g, clusters with bins",
			len(only.Canary.Metrics), p95.N, p95.Sum, len(p95.Clusters), w95.N, w95.Sum)
	}
}

// TestOwnSQLShapes runs source-defined queries of each accepted result shape.
func TestOwnSQLShapes(t *testing.T) {
	reqs, q := clustered(t)
	src, err := postgres.New(database(t, reqs), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want := synth.ExpectedFor(reqs, q)
	run := func(t *testing.T, sql string) *policy.Stats {
		t.Helper()
		st, err := src.Stats(context.Background(), policy.Query{Rollout: q.Rollout, Window: q.Window,
			Metrics: []policy.MetricQuery{{Name: "custom", Query: sql}}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	const where = `FROM llm_requests WHERE rollout = {{rollout}} AND "timestamp" BETWEEN {{from}} AND {{to}}`
	t.Run("events and total per variant", func(t *testing.T) {
		st := run(t, `SELECT variant, count(*) FILTER (WHERE status <> 'ok') AS events, count(*) AS total `+where+` GROUP BY variant`)
		for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
			if s := st.Arm(arm).Metrics["custom"]; s.Kind != policy.Proportion || s.N == 0 || s.Sum == 0 {
				t.Errorf("%s: %+v, want a proportion with events", arm, s)
			}
		}
	})
	t.Run("sum, sumsq and count per variant and key bucket", func(t *testing.T) {
		st := run(t, `SELECT variant, hashtext(request_key) & 1023 AS bucket, count(latency_ms) AS count, sum(latency_ms) AS sum,
			sum(latency_ms * latency_ms) AS sumsq `+where+` GROUP BY 1, 2`)
		for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
			s := st.Arm(arm).Metrics["custom"]
			if s.Kind != policy.Mean || s.N == 0 || len(s.Clusters) < 100 {
				t.Errorf("%s: kind %d n %d, %d clusters; want a mean per key bucket", arm, s.Kind, s.N, len(s.Clusters))
			}
		}
	})
	t.Run("a bare value per arm is advisory", func(t *testing.T) {
		st := run(t, `SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) `+where+` AND variant = {{variant}}`)
		for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
			s := st.Arm(arm).Metrics["custom"]
			p99 := want.Arm(arm).Metrics["latency_p99_ms"].Dist.Quantile(0.99)
			if s.Kind != policy.Value || math.Abs(s.Sum-p99) > 0.2*p99 {
				t.Errorf("%s: %+v, want a value near %g", arm, s, p99)
			}
		}
	})
	t.Run("a value column per variant", func(t *testing.T) {
		st := run(t, `SELECT variant, avg(cost_usd) AS value `+where+` GROUP BY variant`)
		if s := st.Canary.Metrics["custom"]; s.Kind != policy.Value || s.Sum <= 0 {
			t.Errorf("canary: %+v, want a value", s)
		}
	})
	t.Run("no accepted shape", func(t *testing.T) {
		_, err := src.Stats(context.Background(), policy.Query{Rollout: q.Rollout, Window: q.Window,
			Metrics: []policy.MetricQuery{{Name: "custom", Query: `SELECT variant, 1 AS x, 2 AS y ` + where + ` GROUP BY variant`}}})
		if err == nil || !strings.Contains(err.Error(), "events, total") {
			t.Errorf("err = %v, want one naming the accepted shapes", err)
		}
	})
}

// TestGlobsOnTheServer checks that PostgreSQL matches exactly the keys path.Match matches, as the
// application's assignment does.
func TestGlobsOnTheServer(t *testing.T) {
	dsn := testserver.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, strings.Replace(dsn, "sslmode=disable", "sslmode=disable&password="+testserver.PostgresPassword, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	globs := [][]string{{"vip-*"}, {"beta-?", "a.b"}, {"[a-c]x*", "[^0-9]"}, {`x\*y`, "*.*"}, {"(", "a|b", "^$"}, {"[", "ok"}}
	keys := []string{"vip-1", "vip-", "vip/1", "beta-1", "beta-12", "a.b", "axb", "bxz", "dx", "q", "7", "x*y", "xzy", "a|b", "(", "^$", ".", "", "ok"}
	for _, g := range globs {
		re := postgres.GlobsRegexp(g)
		for _, k := range keys {
			want := false
			for _, p := range g {
				if ok, _ := path.Match(p, k); ok {
					want = true
				}
			}
			var got bool
			if err := conn.QueryRow(ctx, `SELECT $1::text <> '' AND $2::text ~ $1::text`, re, k).Scan(&got); err != nil {
				t.Fatalf("%v on %q: %v", g, re, err)
			}
			if got != want {
				t.Errorf("globs %q (regexp %q) on %q: %v, path.Match %v", g, re, k, got, want)
			}
		}
	}
}
