package clickhouse_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
)

// benchRows is a day of a 100-requests-a-second application.
const benchRows = 10_000_000

// BenchmarkTick times one tick's Stats call for every built-in metric over 10 million llm_requests
// rows, in the Debian package's ClickHouse 18.16 and in chdb's current engine, each next to ClickHouse's
// own bare GROUP BY over the same rows in the same run (bare-groupby): compare the ns/op (the target is
// tick ≤ 3× bare; ratio measures it in turns). The day of traffic starts at 37 minutes past an hour and
// the window ends with it, as a tick's window ends now, so a tick reads 24 hours from the hourly rollup
// (rollup.sql; the last one partial) and the first 23 minutes from llm_requests; tick-*-raw is
// the same tick in a database without the rollup. The ticks report the process's peak resident memory
// (peak-rss-MiB, VmHWM; target ≤ 64) and the Go heap's peak. ClickHouse generates the rows itself
// (INSERT … SELECT FROM numbers), so the load takes seconds; the tables are then merged, as a day-old
// table is. The benchmark is not part of the test run: go test -run '^$' -bench Tick -benchtime 5x ./policy/source/clickhouse
func BenchmarkTick(b *testing.B) {
	for _, engine := range []struct {
		name  string
		start func(testing.TB) *testserver.ClickHouseServer
	}{{"debian", testserver.ClickHouse}, {"chdb", testserver.Chdb}} {
		b.Run(engine.name, func(b *testing.B) { benchmarkTick(b, engine.start(b)) })
	}
}

func benchmarkTick(b *testing.B, srv *testserver.ClickHouseServer) {
	rolled, plain := database(b, srv, "bench_rollup"), database(b, srv, "bench_plain")
	for _, st := range clickhouse.Statements(clickhouse.Schema + ";\n" + clickhouse.Rollup) {
		rolled.Exec(b, st)
	}
	plain.Exec(b, clickhouse.Schema)
	// The rollup holds the hours from two after its creation on.
	dayStart := serverNow(b, srv).Truncate(time.Hour).Add(2*time.Hour + 37*time.Minute)
	// 200,000 users, 10% of them on the canary, over one day; latency 50-2050 ms, 2% errors, 30% with
	// feedback.
	insert := fmt.Sprintf(`INSERT INTO llm_requests (ts, rollout, variant, key, request_id, model, latency_ms, error,
  refusal, input_tokens, output_tokens, cost_usd, quality, feedback)
SELECT toDateTime(%d + intDiv(number * 86400, %d)) AS ts, 'bench',
  CAST(if(cityHash64(concat('user-', toString(number %% 200000))) %% 100 < 10, 'canary', 'stable') AS Enum8('' = 0, 'stable' = 1, 'canary' = 2)),
  concat('user-', toString(number %% 200000)), concat('r-', toString(number)), 'model',
  toFloat64(50 + cityHash64(number) %% 2000), toUInt8(cityHash64(number, 1) %% 100 < 2), toUInt8(cityHash64(number, 2) %% 100 < 1),
  toUInt32(800 + number %% 400), toUInt32(200 + number %% 200), 0.000001 * (1000 + number %% 2000), 0.5 + (number %% 50) / 100,
  if(number %% 10 < 3, toInt8(number %% 3) - 1, NULL)
FROM numbers(%d)`, dayStart.Unix(), benchRows, benchRows)
	for _, db := range []*testserver.ClickHouseServer{plain, rolled} {
		start := time.Now()
		db.Exec(b, insert)
		b.Logf("%s %s: inserted %d rows in %s", srv.Engine, strings.TrimPrefix(db.HTTP, srv.HTTP), benchRows, time.Since(start).Round(time.Millisecond))
	}
	// A day-old table has been merged in the background; merge now what the INSERT left in parts (the
	// rollup gets one part per block of about a million rows), in every table, the bare query's too.
	for _, table := range []string{"bench_plain.llm_requests", "bench_rollup.llm_requests", "bench_rollup.llm_requests_rollup",
		"bench_rollup.llm_requests_rollup_latency"} {
		srv.Exec(b, "OPTIMIZE TABLE "+table+" FINAL")
	}
	window := policy.Window{From: dayStart, To: dayStart.Add(24 * time.Hour)}
	// Every built-in metric, and a typical spec's four rules (error rate, mean and p95 latency, cost).
	all := policy.Query{Rollout: "bench", Window: window}
	typical := policy.Query{Rollout: "bench", Window: window, Metrics: []policy.MetricQuery{
		{Name: "error_rate"}, {Name: "latency_mean_ms"}, {Name: "latency_p95_ms"}, {Name: "cost_per_request"}}}
	for _, db := range []struct {
		suffix, name string
		rollup       bool
	}{{"", "bench_rollup", true}, {"-raw", "bench_plain", false}} {
		u := strings.TrimSuffix(srv.URL, "/default") + "/" + db.name + "?password=env:CHPASS"
		src, err := clickhouse.New(u, getenv, clickhouse.WithTimeout(10*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		b.Run("tick-all"+db.suffix, func(b *testing.B) { benchmarkStats(b, src, all) })
		b.Run("tick-typical"+db.suffix, func(b *testing.B) { benchmarkStats(b, src, typical) })
		if got := src.RollupReads() > 0; src.Queries() > 0 && got != db.rollup { // (unless -bench left the ticks out)
			b.Fatalf("%s: read the rollup %v, want %v", db.name, got, db.rollup)
		}
	}
	bare := func(b *testing.B) {
		out := plain.Exec(b, "SELECT variant, count(), sum(latency_ms) FROM llm_requests GROUP BY variant FORMAT TabSeparated")
		if strings.Count(out, "\n") != 2 {
			b.Fatalf("bare query answered %q", out)
		}
	}
	b.Run("bare-groupby", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			bare(b)
		}
	})
	// The ratios, with the bare query and both ticks taking turns, so that a noisy machine slows all
	// three alike: all-x-bare and typical-x-bare are the targets' numbers (≤ 3).
	b.Run("ratio", func(b *testing.B) {
		src := open(b, srv, "bench_rollup")
		var tBare, tAll, tTypical time.Duration
		for i := 0; i < b.N; i++ {
			for _, step := range []struct {
				sum *time.Duration
				run func()
			}{
				{&tBare, func() { bare(b) }},
				{&tAll, func() { statsOf(b, src, all) }},
				{&tTypical, func() { statsOf(b, src, typical) }},
			} {
				start := time.Now()
				step.run()
				*step.sum += time.Since(start)
			}
		}
		b.ReportMetric(float64(tAll)/float64(tBare), "all-x-bare")
		b.ReportMetric(float64(tTypical)/float64(tBare), "typical-x-bare")
	})
}

// statsOf runs one tick's Stats call and checks that it saw every row.
func statsOf(b *testing.B, src *clickhouse.Source, q policy.Query) {
	stats, err := src.Stats(context.Background(), q)
	if err != nil {
		b.Fatal(err)
	}
	if got := stats.Stable.Requests + stats.Canary.Requests; got != benchRows {
		b.Fatalf("%d requests, want %d", got, benchRows)
	}
}

// benchmarkStats times src.Stats(q) and reports the process's peak memory.
func benchmarkStats(b *testing.B, src *clickhouse.Source, q policy.Query) {
	var peakHeap uint64
	for i := 0; i < b.N; i++ {
		statsOf(b, src, q)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapInuse)
	}
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
}

// peakRSS is the process's peak resident set size (VmHWM), in bytes.
func peakRSS(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
