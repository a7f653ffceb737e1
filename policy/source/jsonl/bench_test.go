package jsonl

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// readFile is read by TestReadFile, so that the peak RSS of one pass over a large file can be measured
// from outside: go test -c, then /usr/bin/time -v ./jsonl.test -test.run TestReadFile -read-file F.
var readFile = flag.String("read-file", "", "a JSON Lines file for TestReadFile to read once (memory measurement)")

// TestReadFile reads -read-file once and logs what it found and the Go heap it used.
func TestReadFile(t *testing.T) {
	if *readFile == "" {
		t.Skip("no -read-file")
	}
	st, err := Open(*readFile).Stats(context.Background(), policy.Query{Rollout: "summarizer"})
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("stable %d, canary %d, malformed %d; heap sys %.1f MiB, total alloc %.1f MiB",
		st.Stable.Requests, st.Canary.Requests, st.Malformed, float64(ms.HeapSys)/(1<<20), float64(ms.TotalAlloc)/(1<<20))
}

var (
	benchOnce  sync.Once
	benchDir   string
	benchFiles map[string]string
	benchErr   error
)

// synthStart is when the benchmark's traffic starts.
var synthStart = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)

// benchRecords is about the number of records of the benchmark's file (late feedback records on top).
const benchRecords = 1_000_000

// benchSpan is the window of the benchmark's traffic: two days from synthStart.
const benchSpan = 48 * time.Hour

// benchOptions is the benchmark's traffic: about a million requests over two days from 50,000 users
// at a 25% canary, many requests per user, a fifth of the feedback arriving late.
func benchOptions() synth.Options {
	canary := synth.DefaultProfile("model-new")
	canary.ErrorRate = 0.03
	return synth.Options{Seed: 1, From: synthStart, To: synthStart.Add(benchSpan), PerHour: benchRecords / 48,
		Users: 50_000, Activity: 1, DailyAmplitude: 0.3, BadUsers: 0.005, BadUserErrorRate: 0.9, UserLatencySigma: 0.3,
		Stable: synth.DefaultProfile("model-old"), Canary: canary, LateFeedback: 0.2, LateDelay: 10 * time.Minute}
}

// benchSpec is the rollout of the benchmark's traffic: summarizer at 25%.
func benchSpec() *rollouts.Spec {
	spec := synth.Spec("summarizer", synthStart)
	spec.Traffic.Weight = 25
	return spec
}

// benchmarkFiles writes the benchmark's traffic once per test binary, plain and gzipped.
func benchmarkFiles(b *testing.B) map[string]string {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "jsonl-bench-")
		if benchErr != nil {
			return
		}
		plain := filepath.Join(benchDir, "traffic.jsonl")
		gz := filepath.Join(benchDir, "traffic.jsonl.gz")
		benchFiles = map[string]string{"plain": plain, "gzip": gz}
		benchErr = writeSynthetic(plain, false)
		if benchErr == nil {
			benchErr = writeSynthetic(gz, true)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFiles
}

func writeSynthetic(path string, compress bool) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(f)
	if !compress {
		if err := synth.WriteJSONL(w, benchSpec(), benchOptions()); err != nil {
			return err
		}
		return w.Flush()
	}
	zw := gzip.NewWriter(w)
	if err := synth.WriteJSONL(zw, benchSpec(), benchOptions()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return w.Flush()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// BenchmarkStats1M reads 1,000,000 records per op. MB/s is over the file's bytes (uncompressed for
// plain, compressed for gzip); heap-MiB is the Go heap obtained from the OS by the end, an upper bound of
// the peak heap.
func BenchmarkStats1M(b *testing.B) {
	files := benchmarkFiles(b)
	// The query of a spec that excludes and includes keys, as most do.
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: synthStart, To: synthStart.Add(benchSpan)},
		NotRandomised: []string{"vip-*", "beta-*"}}
	for _, kind := range []string{"plain", "gzip"} {
		b.Run(kind, func(b *testing.B) {
			fi, err := os.Stat(files[kind])
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(fi.Size())
			b.ReportAllocs()
			src := Open(files[kind])
			runtime.GC()
			for b.Loop() {
				st, err := src.Stats(context.Background(), q)
				if err != nil {
					b.Fatal(err)
				}
				if n := st.Stable.Requests + st.Canary.Requests; n < benchRecords*9/10 || st.Malformed != 0 || st.Unit != policy.UnitKey {
					b.Fatalf("%d requests, %d malformed, unit %q; want about %d, none, key", n, st.Malformed, st.Unit, benchRecords)
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-MiB")
			if rss, ok := peakRSS(); ok {
				b.ReportMetric(rss, "peak-RSS-MiB")
			}
			b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkStatsSmall reads a file of 1,000 records per op, as a daemon or the demo does every tick:
// what a call costs beyond its records (buffers, decompressor) shows here.
func BenchmarkStatsSmall(b *testing.B) {
	buf := bufferWriter(firstLines(b, 1000, 5))
	dir := b.TempDir()
	files := map[string][]byte{"plain": buf, "gzip": gzipped(b, buf)}
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: synthStart, To: synthStart.Add(48 * time.Hour)}}
	for _, kind := range []string{"plain", "gzip"} {
		b.Run(kind, func(b *testing.B) {
			path := filepath.Join(dir, "small-"+kind+".jsonl")
			if err := os.WriteFile(path, files[kind], 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(files[kind])))
			b.ReportAllocs()
			src := Open(path)
			for b.Loop() {
				st, err := src.Stats(context.Background(), q)
				if err != nil {
					b.Fatal(err)
				}
				if n := st.Stable.Requests + st.Canary.Requests; n < 900 || n > 1000 {
					b.Fatalf("%d records, want about 1000", n)
				}
			}
		})
	}
}

// BenchmarkParse compares the hand-written line parser with the obvious encoding/json decoding that
// it replaces (referenceParse), per record.
func BenchmarkParse(b *testing.B) {
	var lines [][]byte
	for _, l := range splitLines(b, 1000) {
		lines = append(lines, l)
	}
	b.Run("fast-path", func(b *testing.B) {
		var p parser
		var req request
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := p.parse(lines[i%len(lines)], &req); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := referenceParse(lines[i%len(lines)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func splitLines(b *testing.B, n int) [][]byte {
	b.Helper()
	buf := firstLines(b, n, 3)
	var lines [][]byte
	start := 0
	for i, c := range buf {
		if c == '\n' {
			lines = append(lines, buf[start:i+1])
			start = i + 1
		}
	}
	if len(lines) != n {
		b.Fatal(fmt.Sprintf("%d lines, want %d", len(lines), n))
	}
	return lines
}

// firstLines returns the first n records of the benchmark's kind of traffic (no late records), seeded.
func firstLines(tb testing.TB, n int, seed uint64) []byte {
	tb.Helper()
	opts := benchOptions()
	opts.Seed, opts.LateFeedback, opts.PerHour, opts.To = seed, 0, float64(n), opts.From.Add(2*time.Hour)
	var buf bytes.Buffer
	if err := synth.WriteJSONL(&buf, benchSpec(), opts); err != nil {
		tb.Fatal(err)
	}
	out := buf.Bytes()
	for i, at := 0, 0; i < n; i++ {
		next := bytes.IndexByte(out[at:], '\n')
		if next < 0 {
			tb.Fatalf("only %d records", i)
		}
		at += next + 1
		if i == n-1 {
			out = out[:at]
		}
	}
	return out
}

type bufferWriter []byte

func (w *bufferWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}

// peakRSS is the process's peak resident set (VmHWM) in MiB, where /proc tells it. It covers everything
// the test binary did before, the generation of the files included; run the benchmark alone
// (-bench Stats1M/plain) for the source's own peak.
func peakRSS() (float64, bool) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// BenchmarkDuckDB1M times DuckDB (through @duckdb/node-api, from npm) on the benchmark's plain file and
// the same statistics, per op, for the ratio to BenchmarkStats1M/plain: run both in one go test call.
// DUCKDB_NODE_PATH names a node_modules folder holding @duckdb/node-api (npm install @duckdb/node-api
// in a temporary folder); without it, or without node, the benchmark is skipped and says why.
func BenchmarkDuckDB1M(b *testing.B) {
	modules := os.Getenv("DUCKDB_NODE_PATH")
	if modules == "" {
		b.Skip("DUCKDB_NODE_PATH is not set: npm install @duckdb/node-api in a temporary folder and point it at its node_modules")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		b.Skip("node is not installed: DuckDB's comparison needs it")
	}
	files := benchmarkFiles(b)
	script, err := filepath.Abs(filepath.Join("testdata", "duckdb", "bench.mjs"))
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(files["plain"])
	if err != nil {
		b.Fatal(err)
	}
	// One node process runs the query b.N times; the time of each run is DuckDB's own, without node's
	// start-up, so the ratio is fair to DuckDB.
	b.StopTimer()
	cmd := exec.Command(node, script, files["plain"], synthStart.Format(time.RFC3339), synthStart.Add(benchSpan).Format(time.RFC3339), strconv.Itoa(b.N))
	cmd.Env = append(os.Environ(), "DUCKDB_NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("duckdb: %v\n%s", err, out)
	}
	var total float64
	runs := 0
	for _, line := range strings.Split(string(out), "\n") {
		var ms float64
		var rows int
		if _, err := fmt.Sscanf(line, "duckdb-ms %f rows %d", &ms, &rows); err == nil {
			total += ms
			runs++
		}
	}
	if runs != b.N {
		b.Fatalf("duckdb printed %d runs, want %d:\n%s", runs, b.N, out)
	}
	b.ReportMetric(total/float64(runs)*1e6, "ns/op")
	b.ReportMetric(float64(fi.Size())/1e6/(total/float64(runs)/1000), "MB/s")
}

// BenchmarkRecentWindows answers what a reconcile tick asks six hours into a stage: the stage's window
// and its recent windows (policy.WithRecent), over the million-record file. "one-by-one" asks Stats
// once per window, as before StatsWindows; "one-read" reads the file once for all of them. Compare the
// two within one run: the ratio of their ns/op is what a tick saves.
func BenchmarkRecentWindows(b *testing.B) {
	files := benchmarkFiles(b)
	end := synthStart.Add(benchSpan)
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: end.Add(-12 * time.Hour), To: end},
		NotRandomised: []string{"vip-*", "beta-*"}}
	windows := []policy.Window{q.Window}
	for _, from := range policy.RecentStarts(q.Window.From, q.Window.To) {
		windows = append(windows, policy.Window{From: from, To: end})
	}
	src := Open(files["plain"])
	fi, err := os.Stat(files["plain"])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("one-by-one", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			for _, w := range windows {
				wq := q
				wq.Window = w
				if _, err := src.Stats(context.Background(), wq); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(len(windows)), "windows")
	})
	b.Run("one-read", func(b *testing.B) {
		b.SetBytes(fi.Size())
		runtime.GC()
		for b.Loop() {
			if _, err := src.StatsWindows(context.Background(), q, windows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(windows)), "windows")
		if rss, ok := peakRSS(); ok {
			b.ReportMetric(rss, "peak-RSS-MiB")
		}
	})
}
