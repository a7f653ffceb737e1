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
	"github.com/rollout-dev/rollout/source/clickhouse"
)

// benchRows is a day of a 100-requests-a-second application.
const benchRows = 10_000_000

// BenchmarkTick times one tick's Stats call for every built-in metric over 10 million llm_requests
// rows, in the Debian package's ClickHouse 18.16 and in chdb's current engine, each next to ClickHouse's own bare GROUP BY over the same rows in
// the same run (bare-groupby): compare the two ns/op (the target is tick ≤ 3× bare). The tick reports
// the process's peak resident memory (peak-rss-MiB, VmHWM; target ≤ 64) and the Go heap's peak.
// ClickHouse generates the rows itself (INSERT … SELECT FROM numbers), so the load takes seconds, and
// the benchmark is not part of the test run: go test -run '^$' -bench Tick -benchtime 5x ./source/clickhouse
func BenchmarkTick(b *testing.B) {
	for _, engine := range []struct {
		name  string
		start func(testing.TB) *testserver.ClickHouseServer
	}{{"debian", testserver.ClickHouse}, {"chdb", testserver.Chdb}} {
		b.Run(engine.name, func(b *testing.B) { benchmarkTick(b, engine.start(b)) })
	}
}

func benchmarkTick(b *testing.B, srv *testserver.ClickHouseServer) {
	srv.Exec(b, clickhouse.Schema)
	start := time.Now()
	// 200,000 users, 10% of them on the canary, over one day; latency 50-2050 ms, 2% errors, 30% with
	// feedback.
	srv.Exec(b, fmt.Sprintf(`INSERT INTO llm_requests (ts, rollout, variant, key, request_id, model, latency_ms, error,
  refusal, input_tokens, output_tokens, cost_usd, quality, feedback)
SELECT toDateTime(%d + intDiv(number * 86400, %d)) AS ts, 'bench',
  CAST(if(cityHash64(concat('user-', toString(number %% 200000))) %% 100 < 10, 'canary', 'stable') AS Enum8('' = 0, 'stable' = 1, 'canary' = 2)),
  concat('user-', toString(number %% 200000)), concat('r-', toString(number)), 'model',
  toFloat64(50 + cityHash64(number) %% 2000), toUInt8(cityHash64(number, 1) %% 100 < 2), toUInt8(cityHash64(number, 2) %% 100 < 1),
  toUInt32(800 + number %% 400), toUInt32(200 + number %% 200), 0.000001 * (1000 + number %% 2000), 0.5 + (number %% 50) / 100,
  if(number %% 10 < 3, toInt8(number %% 3) - 1, NULL)
FROM numbers(%d)`, stageStart.Unix(), benchRows, benchRows))
	b.Logf("%s: inserted %d rows in %s", srv.Engine, benchRows, time.Since(start).Round(time.Millisecond))
	src, err := clickhouse.New(srv.URL+"?password=env:CHPASS", getenv, clickhouse.WithTimeout(10*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	window := policy.Window{From: stageStart, To: stageStart.Add(24 * time.Hour)}
	// Every built-in metric, and a typical spec's four rules (error rate, mean and p95 latency, cost).
	all := policy.Query{Rollout: "bench", Window: window}
	typical := policy.Query{Rollout: "bench", Window: window, Metrics: []policy.MetricQuery{
		{Name: "error_rate"}, {Name: "latency_mean_ms"}, {Name: "latency_p95_ms"}, {Name: "cost_per_request"}}}
	b.Run("tick-all", func(b *testing.B) { benchmarkStats(b, src, all) })
	b.Run("tick-typical", func(b *testing.B) { benchmarkStats(b, src, typical) })
	b.Run("bare-groupby", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			out := srv.Exec(b, "SELECT variant, count(), sum(latency_ms) FROM llm_requests GROUP BY variant FORMAT TabSeparated")
			if strings.Count(out, "\n") != 2 {
				b.Fatalf("bare query answered %q", out)
			}
		}
	})
}

// benchmarkStats times src.Stats(q) and reports the process's peak memory.
func benchmarkStats(b *testing.B, src *clickhouse.Source, q policy.Query) {
	var peakHeap uint64
	for i := 0; i < b.N; i++ {
		stats, err := src.Stats(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		if got := stats.Stable.Requests + stats.Canary.Requests; got != benchRows {
			b.Fatalf("%d requests, want %d", got, benchRows)
		}
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
