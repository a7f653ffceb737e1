package jsonl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
)

// TestStatsConcurrentLimits runs many Stats calls at once, on plain and gzip files, with different line
// limits, each file holding lines just under and just over its source's limit: every call sees exactly
// its own limit and the same statistics as a call alone, whatever buffers the calls before it used.
func TestStatsConcurrentLimits(t *testing.T) {
	dir := t.TempDir()
	line := func(pad int, isError bool) string {
		return fmt.Sprintf(`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","pad":"%s","latency_ms":10,"error":%t}`+"\n",
			strings.Repeat("x", pad), isError)
	}
	type tc struct {
		src  *Source
		want int64 // malformed lines: the over-long ones
	}
	var cases []tc
	for i, limit := range []int{200, 4 << 10, 100 << 10, DefaultMaxLineBytes} {
		under, over := line(limit-120, false), line(limit+1, true)
		content := strings.Repeat(under+over, 3) + under
		for _, gz := range []bool{false, true} {
			path := filepath.Join(dir, fmt.Sprintf("limit%d.jsonl", i))
			data := []byte(content)
			if gz {
				path += ".gz"
				data = gzipped(t, data)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			src := &Source{Path: path}
			if limit != DefaultMaxLineBytes {
				src.MaxLineBytes = limit
			}
			cases = append(cases, tc{src, 3})
		}
	}
	check := func(c tc) error {
		st, err := c.src.Stats(context.Background(), policy.Query{Rollout: "r"})
		if err != nil {
			return err
		}
		if e := st.Canary.Metrics[ErrorRate]; st.Malformed != c.want || st.Canary.Requests != 4 || e.N != 4 || e.Sum != 0 {
			return fmt.Errorf("%s (limit %d): malformed %d, canary %d requests, error_rate %+v; want %d malformed, 4 requests, 0 of 4",
				c.src.Path, c.src.MaxLineBytes, st.Malformed, st.Canary.Requests, e, c.want)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 8*len(cases))
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = check(cases[i%len(cases)])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestStatsReusesItsBuffers checks that a Stats call on a small file does not allocate a line buffer of
// DefaultMaxLineBytes each time (what it returns, the per-bucket latency bins of every key bucket
// included, stays under half of that). (Under the race detector sync.Pool drops a random share of what is put
// back, so the bound is not checked there.)
func TestStatsReusesItsBuffers(t *testing.T) {
	race.Skip(t, "sync.Pool drops items at random under the race detector")
	dir := t.TempDir()
	records := strings.Repeat(`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","latency_ms":10,"error":false}`+"\n", 100)
	plain := filepath.Join(dir, "small.jsonl")
	compressed := filepath.Join(dir, "small.jsonl.gz")
	if err := os.WriteFile(plain, []byte(records), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(compressed, gzipped(t, []byte(records)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{plain, compressed} {
		src := Open(path)
		q := policy.Query{Rollout: "r"}
		if _, err := src.Stats(context.Background(), q); err != nil { // the first call fills the pools
			t.Fatal(err)
		}
		const calls = 100
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range calls {
			if _, err := src.Stats(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		if perCall := (after.TotalAlloc - before.TotalAlloc) / calls; perCall > DefaultMaxLineBytes/2 {
			t.Errorf("%s: %d bytes allocated per Stats call, want under %d", filepath.Base(path), perCall, DefaultMaxLineBytes/2)
		}
	}
}
