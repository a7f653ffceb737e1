package jsonl

import (
	"bufio"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
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

const benchRecords = 1_000_000

// benchmarkFiles writes 1,000,000 synthetic records once per test binary, plain and gzipped.
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
		if err := Synthesize(w, synthConfig(benchRecords), rand.New(rand.NewSource(1))); err != nil {
			return err
		}
		return w.Flush()
	}
	zw := gzip.NewWriter(w)
	if err := Synthesize(zw, synthConfig(benchRecords), rand.New(rand.NewSource(1))); err != nil {
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
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: synthStart, To: synthStart.Add(48 * time.Hour)}}
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
				if n := st.Stable.Requests + st.Canary.Requests; n != benchRecords {
					b.Fatalf("%d records, want %d", n, benchRecords)
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkStatsSmall reads a file of 1,000 records per op, as a daemon or the demo does every tick:
// what a call costs beyond its records (buffers, decompressor) shows here.
func BenchmarkStatsSmall(b *testing.B) {
	var buf bufferWriter
	if err := Synthesize(&buf, synthConfig(1000), rand.New(rand.NewSource(5))); err != nil {
		b.Fatal(err)
	}
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
				if n := st.Stable.Requests + st.Canary.Requests; n != 1000 {
					b.Fatalf("%d records, want 1000", n)
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
	var buf bufferWriter
	if err := Synthesize(&buf, synthConfig(n), rand.New(rand.NewSource(3))); err != nil {
		b.Fatal(err)
	}
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

type bufferWriter []byte

func (w *bufferWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}
