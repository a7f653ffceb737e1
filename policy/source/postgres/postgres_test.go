package postgres_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/postgres"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

var (
	from = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	to   = from.Add(time.Hour)
)

func getenv(name string) string {
	if name == "PGPASS" {
		return testserver.PostgresPassword
	}
	return ""
}

func allBuiltins() []policy.MetricQuery {
	var ms []policy.MetricQuery
	for _, n := range synth.BuiltinMetrics {
		ms = append(ms, policy.MetricQuery{Name: n})
	}
	return ms
}

// database starts PostgreSQL, creates the table from schema.sql, loads traffic, and returns the DSN
// with an env: password.
func database(t testing.TB, traffic []synth.Request) string {
	t.Helper()
	dsn := testserver.Postgres(t) + "&password=env:PGPASS"
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(strings.Replace(dsn, "env:PGPASS", testserver.PostgresPassword, 1))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, postgres.Schema); err != nil {
		t.Fatalf("schema.sql: %v", err)
	}
	if err := synth.Insert(ctx, conn, traffic); err != nil {
		t.Fatal(err)
	}
	return dsn
}

func TestStatsMatchTheTraffic(t *testing.T) {
	canary := synth.Stable
	canary.Model, canary.LatencyMedian, canary.ErrorRate = "model-canary", 520, 0.05
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 3000, Canary: 600,
		ShadowShare: 0.25, StableProfile: synth.Stable, CanaryProfile: canary}, 1)
	// Another rollout's rows and rows outside the window must not count.
	traffic = append(traffic, synth.Generate(synth.Traffic{Rollout: "other", From: from, To: to, Stable: 100, Canary: 100,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 3)...)
	traffic = append(traffic, synth.Generate(synth.Traffic{Rollout: "summarizer", From: to, To: to.Add(time.Hour), Stable: 100, Canary: 100,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 4)...)
	src, err := postgres.New(database(t, traffic), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins()}
	got, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if n := src.Queries(); n != 2 {
		t.Errorf("one Stats call sent %d queries, want 2 (aggregates, latency histogram)", n)
	}
	want := synth.Expected(traffic, q.Rollout, q.Window)
	// Means and variances are exact; quantiles come from 2%-wide buckets.
	for _, d := range synth.Diff(want, got, synth.Tolerance{Variance: 1e-9, Quantile: 0.02}) {
		t.Error(d)
	}

	if got.Shadow != want.Shadow || want.Shadow == 0 {
		t.Errorf("shadow = %d, want %d (> 0)", got.Shadow, want.Shadow)
	}

	// A query that names no metric gets every built-in.
	all, err := src.Stats(context.Background(), policy.Query{Rollout: q.Rollout, Window: q.Window})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range synth.Diff(want, all, synth.Tolerance{Variance: 1e-9, Quantile: 0.02}) {
		t.Errorf("no metrics named: %s", d)
	}

	empty, err := src.Stats(context.Background(), policy.Query{Rollout: "nope", Window: q.Window, Metrics: q.Metrics})
	if err != nil {
		t.Fatal(err)
	}
	if empty.Stable.Requests != 0 || len(empty.Stable.Metrics)+len(empty.Canary.Metrics) != 0 {
		t.Errorf("unknown rollout: got %+v, want no data", empty)
	}
}

func TestOwnSQL(t *testing.T) {
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 400, Canary: 200,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 2)
	src, err := postgres.New(database(t, traffic), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want := synth.Expected(traffic, "summarizer", policy.Window{From: from, To: to})
	tests := []struct {
		name, sql string
		want      func(policy.Arm) policy.Sample
		wantErr   error
	}{
		{
			name: "a mean",
			sql: `SELECT variant, count(*) AS n, sum(latency_ms) AS sum, sum(latency_ms^2) AS sumsq FROM llm_requests
			      WHERE rollout = {{rollout}} AND "timestamp" BETWEEN {{from}} AND {{to}} GROUP BY variant;`,
			want: func(a policy.Arm) policy.Sample { return want.Arm(a).Metrics["latency_mean_ms"] },
		},
		{
			name: "a proportion, with a placeholder used twice and one not at all",
			sql: `SELECT variant, count(*) AS n, count(*) FILTER (WHERE status <> 'ok' AND rollout = {{rollout}}) AS sum,
			      NULL AS sumsq FROM llm_requests WHERE rollout = {{rollout}} AND "timestamp" <= {{to}} GROUP BY variant`,
			want: func(a policy.Arm) policy.Sample { return want.Arm(a).Metrics["error_rate"] },
		},
		{name: "missing column", sql: `SELECT variant, count(*) AS n FROM llm_requests GROUP BY variant`, wantErr: postgres.ErrBadQuery},
		{name: "syntax error", sql: `SELEC 1`, wantErr: postgres.ErrBadQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.Stats(context.Background(), policy.Query{Rollout: "summarizer",
				Window: policy.Window{From: from, To: to}, Metrics: []policy.MetricQuery{{Name: "custom", Query: tt.sql}}})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "custom") {
					t.Fatalf("error = %v, want %v naming the metric", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
				g, w := got.Arm(arm).Metrics["custom"], tt.want(arm)
				if g.Kind != w.Kind || g.N != w.N || !close(g.Sum, w.Sum) || (w.Kind == policy.Mean && !close(g.SumSquares, w.SumSquares)) {
					t.Errorf("%s: got kind %d n %d sum %g ss %g, want kind %d n %d sum %g ss %g", arm, g.Kind, g.N, g.Sum, g.SumSquares, w.Kind, w.N, w.Sum, w.SumSquares)
				}
			}
		})
	}
}

func close(a, b float64) bool { return a == b || (a-b)/b < 1e-9 && (b-a)/b < 1e-9 }

func TestDSN(t *testing.T) {
	tests := []struct {
		name, dsn string
		wantErr   error
	}{
		{"env in the query", "postgres://u@127.0.0.1:1/db?password=env:PGPASS", nil},
		{"env in the userinfo", "postgres://u:env:PGPASS@127.0.0.1:1/db", nil},
		{"no password", "postgresql://u@127.0.0.1:1/db?sslmode=disable", nil},
		{"literal password", "postgres://u:hunter2@127.0.0.1:1/db", postgres.ErrBadDSN},
		{"literal password in the query", "postgres://u@127.0.0.1:1/db?password=hunter2", postgres.ErrBadDSN},
		{"unset variable", "postgres://u@127.0.0.1:1/db?password=env:NOPE", postgres.ErrBadDSN},
		{"not postgres", "mysql://u@127.0.0.1/db", postgres.ErrBadDSN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := postgres.New(tt.dsn, getenv)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			src.Close()
		})
	}
}

func TestUnavailable(t *testing.T) {
	src, err := postgres.New("postgres://u@127.0.0.1:1/db?password=env:PGPASS", getenv, postgres.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins()})
	if !errors.Is(err, policy.ErrSourceUnavailable) {
		t.Fatalf("error = %v, want ErrSourceUnavailable", err)
	}
	if strings.Contains(err.Error(), testserver.PostgresPassword) {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestWrongPasswordIsUnavailableAndNotLogged(t *testing.T) {
	dsn := testserver.Postgres(t) + "&password=env:PGPASS"
	src, err := postgres.New(dsn, func(string) string { return "wrong-secret" })
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins()})
	if !errors.Is(err, policy.ErrSourceUnavailable) || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error = %v, want ErrSourceUnavailable without the password", err)
	}
}

func TestTimeoutIsBounded(t *testing.T) {
	// A server that accepts connections and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	src, err := postgres.New("postgres://u@"+l.Addr().String()+"/db?sslmode=disable", getenv, postgres.WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: from, To: to}})
	if !errors.Is(err, policy.ErrSourceUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want ErrSourceUnavailable after the deadline", err)
	}
}

// testSegments are the attributes of the segment tests' keys.
var testSegments = []synth.SegmentShares{
	{Attr: "language", Values: []string{"en", "de", "fr"}, Shares: []float64{0.7, 0.2, 0.1}},
	{Attr: "tenant", Values: []string{"acme", "globex"}},
}

func TestSegments(t *testing.T) {
	canary := synth.Stable
	canary.Model, canary.ErrorRate = "model-canary", 0.05
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 2000, Canary: 500,
		StableProfile: synth.Stable, CanaryProfile: canary, Segments: testSegments}, 7)
	src, err := postgres.New(database(t, traffic), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins(),
		Segments: []string{"language", "tenant"}}
	got, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want := synth.ExpectedFor(traffic, q)
	for _, name := range q.Segments {
		if g, w := got.SegmentValues[name], want.SegmentValues[name]; !slices.Equal(g, w) || len(w) == 0 {
			t.Errorf("%s values = %q, want %q", name, g, w)
		}
	}
	for _, f := range [][]policy.Attr{{{Name: "language", Value: "de"}}, {{Name: "language", Value: "fr"}, {Name: "tenant", Value: "acme"}}} {
		fq := q
		fq.Segments, fq.Filter = nil, f
		got, err := src.Stats(context.Background(), fq)
		if err != nil {
			t.Fatal(err)
		}
		want := synth.ExpectedFor(traffic, fq)
		if want.Canary.Requests == 0 || want.Stable.Requests == 0 {
			t.Fatalf("%v: the traffic has no requests in the segment", f)
		}
		for _, d := range synth.Diff(want, got, synth.Tolerance{Variance: 1e-9, Quantile: 0.02}) {
			t.Errorf("%v: %s", f, d)
		}
	}
	// A column the table does not have is the query's error, never a segment without data.
	bad := q
	bad.Segments = []string{"region"}
	if _, err := src.Stats(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("missing column: err = %v, want one naming the column", err)
	}
	bad.Segments = []string{`x" OR 1=1 --`}
	if _, err := src.Stats(context.Background(), bad); !errors.Is(err, postgres.ErrBadSegment) {
		t.Errorf("injected name: err = %v, want ErrBadSegment", err)
	}
}

// Pairwise verdicts in llm_feedback.preferred make the canary's win share, whichever arm served the
// request each names, the latest verdict of a request winning.
func TestCanaryWinRate(t *testing.T) {
	at := func(min int) time.Time { return from.Add(time.Duration(min) * time.Minute) }
	reqs := []synth.Request{
		{TS: at(1), Rollout: "r", Variant: policy.Canary, Key: "u1", RequestID: "a", Model: "m"},
		{TS: at(2), Rollout: "r", Variant: policy.Stable, Key: "u2", RequestID: "b", Model: "m"},
		{TS: at(3), Rollout: "r", Variant: policy.Canary, Key: "u3", RequestID: "c", Model: "m"},
		{TS: at(10), Rollout: "r", RequestID: "a", Late: true, Preferred: "stable"},
		{TS: at(11), Rollout: "r", RequestID: "a", Late: true, Preferred: "canary"},
		{TS: at(12), Rollout: "r", RequestID: "b", Late: true, Preferred: "tie"},
		{TS: at(13), Rollout: "r", RequestID: "c", Late: true, Preferred: "stable"},
		{TS: at(14), Rollout: "r", RequestID: "nope", Late: true, Preferred: "canary"},
	}
	src, err := postgres.New(database(t, reqs), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, err := src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: from, To: to},
		Metrics: []policy.MetricQuery{{Name: "canary_win_rate"}, {Name: "error_rate"}}})
	if err != nil {
		t.Fatal(err)
	}
	// a: canary (the latest), b: a tie, c: stable.
	if w := st.Canary.Metrics["canary_win_rate"]; w.Kind != policy.Proportion || w.N != 3 || w.Sum != 1.5 || w.SumSquares != 1.25 || len(w.Clusters) != 3 {
		t.Errorf("canary_win_rate = %+v, want 1.5 of 3 in 3 key buckets", w)
	}
	if _, ok := st.Stable.Metrics["canary_win_rate"]; ok {
		t.Error("stable carries pairwise verdicts")
	}
	if st.LateUnmatched != 1 {
		t.Errorf("LateUnmatched = %d, want 1", st.LateUnmatched)
	}
}
