package clickhouse_test

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
	"github.com/rollout-dev/rollout/rollouts"
)

var (
	stageStart = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	now        = stageStart.Add(2 * time.Hour)
)

func getenv(name string) string {
	if name == "CHPASS" {
		return testserver.ClickHousePassword
	}
	return ""
}

// open returns a source over srv's database db with an env: password.
func open(t testing.TB, srv *testserver.ClickHouseServer, db string) *clickhouse.Source {
	t.Helper()
	u := strings.TrimSuffix(srv.URL, "/default") + "/" + db + "?password=env:CHPASS"
	src, err := clickhouse.New(u, getenv)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// database creates db on srv and returns srv, for loaders that write to it.
func database(t testing.TB, srv *testserver.ClickHouseServer, db string) *testserver.ClickHouseServer {
	t.Helper()
	srv.Exec(t, "CREATE DATABASE IF NOT EXISTS "+db)
	return &testserver.ClickHouseServer{URL: strings.TrimSuffix(srv.URL, "/default") + "/" + db,
		HTTP: srv.HTTP + "?database=" + db, Engine: srv.Engine}
}

func ratio(r rollouts.Ratio) *rollouts.Ratio { return &r }
func limit(f float64) *float64               { return &f }

// spec is a rollout at its 25% stage since stageStart, judged on proportions, means and a quantile.
func spec(name, schema string) *rollouts.Spec {
	canary := &rollouts.Variant{Model: "model-canary"}
	return &rollouts.Spec{
		APIVersion: rollouts.APIVersion, Kind: rollouts.Kind, Name: name,
		Stable: rollouts.Variant{Model: "model-stable"}, Canary: canary,
		Traffic:    rollouts.Traffic{Weight: 25},
		Assignment: rollouts.Assignment{Exclude: []string{"vip-*"}},
		Metrics:    rollouts.MetricsSource{Schema: schema},
		Stages: []rollouts.Stage{
			{Weight: 25, MinDuration: rollouts.Duration(time.Hour), MinRequests: 200},
			{Weight: 100},
		},
		Analysis: rollouts.Analysis{Confidence: 0.95, Rules: []rollouts.Rule{
			{Metric: "error_rate", Max: limit(0.08)},
			{Metric: "latency_mean_ms", MaxIncrease: ratio(0.3)},
			{Metric: "latency_p95_ms", MaxIncrease: ratio(0.5)},
			{Metric: "cost_per_request", MaxIncrease: ratio(0.5)},
		}},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 0, StageStartedAt: stageStart,
			Canary: rollouts.Fingerprint(canary)},
	}
}

// schemaCase is one schema on one engine.
type schemaCase struct {
	schema string
	load   func(testing.TB, *testserver.ClickHouseServer, []request)
	// qualityScale is how the schema stores quality (Helicone's scores are integers: percent).
	qualityScale float64
}

var cases = []schemaCase{
	{rollouts.SchemaRollout, loadRollout, 1},
	{rollouts.SchemaLangfuse, loadLangfuse, 1},
	{rollouts.SchemaHelicone, loadHelicone, 100},
}

// TestSchemasOnDebianClickHouse runs the rollout schema through the Debian package's ClickHouse 18.16
// over its real HTTP interface.
func TestSchemasOnDebianClickHouse(t *testing.T) {
	srv := testserver.ClickHouse(t)
	t.Logf("engine: %s", srv.Engine)
	testSchema(t, srv, cases[0])
}

// TestSchemasOnChdb runs every schema, Langfuse's and Helicone's with Map columns and FINAL on
// ReplacingMergeTree, through a current ClickHouse engine (chdb) behind the HTTP front.
func TestSchemasOnChdb(t *testing.T) {
	srv := testserver.Chdb(t)
	t.Logf("engine: %s", srv.Engine)
	for _, c := range cases {
		t.Run(c.schema, func(t *testing.T) { testSchema(t, srv, c) })
	}
}

func testSchema(t *testing.T, srv *testserver.ClickHouseServer, c schemaCase) {
	db := "db_" + c.schema
	data := database(t, srv, db)
	healthyReqs := traffic(1, "healthy", stageStart, now, 2400, 4, 0.25, healthy, healthy)
	bad := healthy
	bad.errorRate, bad.latencyMedian = 0.2, 800
	failingReqs := traffic(2, "failing", stageStart, now, 2400, 4, 0.25, healthy, bad)
	// Before the stage, another rollout, and keys that are not randomised: none may count.
	others := traffic(3, "healthy", stageStart.Add(-time.Hour), stageStart.Add(-time.Minute), 50, 2, 0.5, healthy, healthy)
	others = append(others, traffic(4, "other", stageStart, now, 50, 2, 0.5, healthy, bad)...)
	vips := traffic(5, "healthy", stageStart, now, 20, 3, 0.5, healthy, bad)
	for i := range vips {
		vips[i].key, vips[i].id = "vip-"+vips[i].key, "vip-"+vips[i].id
	}
	var all []request
	for _, part := range [][]request{healthyReqs, failingReqs, others, vips} {
		all = append(all, part...)
	}
	c.load(t, data, all)
	src := open(t, srv, db)

	t.Run("statistics match the traffic", func(t *testing.T) {
		sp := spec("healthy", c.schema)
		q, _ := policy.QueryFor(sp, now)
		q.Metrics = nil // every built-in
		got, err := src.Stats(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if n := src.Queries(); n != 2 {
			t.Errorf("one Stats call sent %d queries, want 2 (aggregates, latency bins)", n)
		}
		first := stageStart.Add(24 * time.Hour)
		for _, r := range healthyReqs {
			if r.variant == "canary" && r.ts.Before(first) {
				first = r.ts
			}
		}
		if !got.From.Equal(first.Truncate(resolution(c.schema))) {
			t.Errorf("From = %s, want the first canary record %s", got.From, first)
		}
		want := totals(healthyReqs, "healthy", got.From, now)
		if got.Unit != policy.UnitKey {
			t.Errorf("Unit = %q, want key", got.Unit)
		}
		if wantNR := int64(len(vips)); got.NotRandomised != wantNR {
			t.Errorf("NotRandomised = %d, want %d", got.NotRandomised, wantNR)
		}
		for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
			checkArm(t, arm, got.Arm(arm), want[string(arm)], c.qualityScale)
		}

		q.Rollout = "nope"
		empty, err := src.Stats(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if empty.Stable.Requests+empty.Canary.Requests != 0 || len(empty.Stable.Metrics)+len(empty.Canary.Metrics) != 0 || !empty.From.IsZero() {
			t.Errorf("unknown rollout: got %+v, want no data", empty)
		}
	})

	t.Run("a healthy canary advances", func(t *testing.T) {
		d := judge(t, src, spec("healthy", c.schema))
		if d.Action != policy.Advance {
			t.Errorf("decision %s, want advance: %v", d.Action, d.Reasons)
		}
	})
	t.Run("a failing canary rolls back", func(t *testing.T) {
		d := judge(t, src, spec("failing", c.schema))
		if d.Action != policy.Rollback {
			t.Errorf("decision %s, want rollback: %v", d.Action, d.Reasons)
		}
	})
}

// resolution is how finely a schema stores time: whole seconds in llm_requests (DateTime, for 18.16),
// milliseconds in Langfuse's and Helicone's DateTime64(3).
func resolution(schema string) time.Duration {
	if schema == rollouts.SchemaRollout {
		return time.Second
	}
	return time.Millisecond
}

func judge(t *testing.T, src policy.Source, sp *rollouts.Spec) policy.Decision {
	t.Helper()
	q, ok := policy.QueryFor(sp, now)
	if !ok {
		t.Fatal("no query for the spec")
	}
	stats, err := src.Stats(context.Background(), q)
	return policy.Judge(sp, policy.Evidence{Stats: stats, Err: err}, now)
}

func near(got, want float64) bool {
	return got == want || math.Abs(got-want) <= 1e-9*math.Max(math.Abs(want), 1)
}

func sum(xs []float64, f func(float64) float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += f(x)
	}
	return s
}

func checkArm(t *testing.T, arm policy.Arm, got *policy.ArmStats, want *armTotals, qualityScale float64) {
	t.Helper()
	if got.Requests != want.requests || want.requests == 0 {
		t.Errorf("%s: %d requests, want %d (> 0)", arm, got.Requests, want.requests)
	}
	if got.Keys != int64(len(want.keys)) {
		t.Errorf("%s: %d keys, want %d", arm, got.Keys, len(want.keys))
	}
	id := func(x float64) float64 { return x }
	sq := func(x float64) float64 { return x * x }
	checks := []struct {
		metric     string
		kind       policy.SampleKind
		n          int64
		sum, sumSq float64
	}{
		{"error_rate", policy.Proportion, want.requests, float64(want.errors), 0},
		{"negative_feedback_rate", policy.Proportion, want.feedbackN, float64(want.negative), 0},
		{"latency_mean_ms", policy.Mean, want.requests, sum(want.latency, id), sum(want.latency, sq)},
		{"cost_per_request", policy.Mean, want.requests, sum(want.cost, id), sum(want.cost, sq)},
		{"quality_score", policy.Mean, want.requests, sum(want.quality, func(x float64) float64 { return math.Round(x * qualityScale) }),
			sum(want.quality, func(x float64) float64 { return math.Pow(math.Round(x*qualityScale), 2) })},
	}
	if qualityScale == 1 {
		checks[4].sum, checks[4].sumSq = sum(want.quality, id), sum(want.quality, sq)
	}
	for _, c := range checks {
		s, ok := got.Metrics[c.metric]
		if !ok {
			t.Errorf("%s %s: missing", arm, c.metric)
			continue
		}
		if s.Kind != c.kind || s.N != c.n || !near(s.Sum, c.sum) || !near(s.SumSquares, c.sumSq) {
			t.Errorf("%s %s: got kind %d n %d sum %g sumsq %g, want kind %d n %d sum %g sumsq %g", arm, c.metric,
				s.Kind, s.N, s.Sum, s.SumSquares, c.kind, c.n, c.sum, c.sumSq)
		}
		checkClusters(t, arm, c.metric, s, 100)
	}
	p95 := got.Metrics["latency_p95_ms"]
	if p95.Kind != policy.Quantile || p95.N != want.requests || p95.Dist == nil {
		t.Fatalf("%s latency_p95_ms: got %+v", arm, p95)
	}
	checkClusters(t, arm, "latency_p95_ms", p95, 100)
	bins := make([]float64, policy.QuantileBins)
	for _, c := range p95.Clusters {
		for i, n := range c.Bins {
			bins[i] += n
		}
	}
	for i := range bins {
		if bins[i] != want.bins[i] {
			t.Errorf("%s: bin %d holds %g latencies, want %g (policy.QuantileBin)", arm, i, bins[i], want.bins[i])
		}
	}
}

// checkClusters wants the clusters to add up to the totals, in distinct buckets, at least minClusters.
func checkClusters(t *testing.T, arm policy.Arm, metric string, s policy.Sample, minClusters int) {
	t.Helper()
	var n, total float64
	seen := map[int]bool{}
	for _, c := range s.Clusters {
		if seen[c.Bucket] || c.Bucket < 0 || c.Bucket >= policy.KeyBuckets {
			t.Errorf("%s %s: bucket %d twice or out of range", arm, metric, c.Bucket)
		}
		seen[c.Bucket] = true
		n += c.N
		total += c.Sum
		if s.Kind == policy.Quantile {
			binned := 0.0
			for _, b := range c.Bins {
				binned += b
			}
			if binned != c.N {
				t.Errorf("%s %s bucket %d: %g binned of %g", arm, metric, c.Bucket, binned, c.N)
			}
		}
	}
	if int64(n) != s.N || !near(total, s.Sum) || len(s.Clusters) < minClusters {
		t.Errorf("%s %s: clusters hold n %g sum %g in %d buckets; totals n %d sum %g", arm, metric, n, total, len(s.Clusters), s.N, s.Sum)
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		name, url string
		wantErr   error
	}{
		{"env in the query", "clickhouse://u@127.0.0.1:1/db?password=env:CHPASS", nil},
		{"env in the userinfo", "clickhouse://u:env:CHPASS@127.0.0.1:1/db", nil},
		{"no password, secure", "clickhouse://u@ch.example.com/db?secure=true&timeout=5s", nil},
		{"literal password", "clickhouse://u:hunter2@127.0.0.1:1/db", clickhouse.ErrBadURL},
		{"literal password in the query", "clickhouse://u@127.0.0.1:1/db?password=hunter2", clickhouse.ErrBadURL},
		{"unset variable", "clickhouse://u@127.0.0.1:1/db?password=env:NOPE", clickhouse.ErrBadURL},
		{"bad secure", "clickhouse://u@127.0.0.1:1/db?secure=maybe", clickhouse.ErrBadURL},
		{"bad timeout", "clickhouse://u@127.0.0.1:1/db?timeout=soon", clickhouse.ErrBadURL},
		{"not clickhouse", "postgres://u@127.0.0.1/db", clickhouse.ErrBadURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := clickhouse.New(tt.url, getenv)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	src, err := clickhouse.New("clickhouse://u@"+addr+"/db?password=env:CHPASS", getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: stageStart, To: now}})
	if !errors.Is(err, policy.ErrSourceUnavailable) || strings.Contains(err.Error(), testserver.ClickHousePassword) {
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
	src, err := clickhouse.New("clickhouse://u@"+l.Addr().String()+"/db", getenv, clickhouse.WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: stageStart, To: now}})
	if !errors.Is(err, policy.ErrSourceUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want ErrSourceUnavailable after the deadline", err)
	}
}

func TestUnknownSchema(t *testing.T) {
	src, err := clickhouse.New("clickhouse://u@127.0.0.1:1/db", getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Schema: rollouts.SchemaLiteLLM})
	if !errors.Is(err, clickhouse.ErrUnknownSchema) {
		t.Fatalf("error = %v, want ErrUnknownSchema", err)
	}
}
