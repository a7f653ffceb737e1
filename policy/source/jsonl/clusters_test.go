package jsonl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/hostfile"
	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

var simStart = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

// simulated returns a day of clustered traffic of summarizer at 20% (users with many requests, bad
// users, a deploy lag, late feedback, excluded vip keys), as raw requests and as JSON Lines.
func simulated(t testing.TB) ([]synth.Request, []byte, policy.Query) {
	t.Helper()
	spec := synth.Spec("summarizer", simStart)
	spec.Traffic.Weight = 20
	spec.Assignment.Exclude = []string{"vip-*"}
	keys := make([]string, 0, 2050)
	for i := range 2000 {
		keys = append(keys, "user-"+itoa(i))
	}
	for i := range 50 {
		keys = append(keys, "vip-"+itoa(i))
	}
	canary := synth.DefaultProfile("model-new")
	canary.LatencyMedian = 900
	opts := synth.Options{Seed: 11, From: simStart, To: simStart.Add(12 * time.Hour), PerHour: 2000, Keys: keys, Activity: 1,
		DeployLag: 20 * time.Minute, BadUsers: 0.01, BadUserErrorRate: 0.9, UserLatencySigma: 0.3,
		Stable: synth.DefaultProfile("model-old"), Canary: canary, LateFeedback: 0.4, LateDelay: 15 * time.Minute}
	reqs, err := synth.Collect(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, r := range reqs {
		buf.Write(synth.AppendJSON(nil, r))
	}
	q, _ := policy.QueryFor(spec, simStart.Add(10*time.Hour))
	q.Window.From = simStart
	q.Metrics = nil
	return reqs, buf.Bytes(), q
}

// simulatedFile is simulated written to a file in a temp folder, whose path it returns.
func simulatedFile(t testing.TB) (string, []synth.Request, policy.Query) {
	t.Helper()
	reqs, content, q := simulated(t)
	path := filepath.Join(t.TempDir(), "traffic.jsonl")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, reqs, q
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// TestStatsMatchSimulatedTraffic checks every statistic of the source against the exact truth computed
// from the raw requests: totals, sums per key bucket with their latency bins, distinct keys, the window
// start at the first canary record, the excluded keys and the late feedback attached to its requests.
func TestStatsMatchSimulatedTraffic(t *testing.T) {
	reqs, content, q := simulated(t)
	if len(q.NotRandomised) == 0 {
		t.Fatal("the query names no excluded keys")
	}
	got, err := (&Source{}).Read(context.Background(), bytes.NewReader(content), q)
	if err != nil {
		t.Fatal(err)
	}
	want := synth.ExpectedFor(reqs, q)
	for _, d := range synth.Diff(want, got, synth.Tolerance{Variance: 1e-9, Quantile: 2 * SketchAccuracy}) {
		t.Error(d)
	}
	for _, d := range synth.DiffClusters(want, got, 1e-9) {
		t.Error(d)
	}
	if got.Unit != policy.UnitKey || !got.From.Equal(want.From) || got.From.Equal(simStart) {
		t.Errorf("unit %q, from %s; want key, %s (after the deploy lag)", got.Unit, got.From, want.From)
	}
	if got.NotRandomised != want.NotRandomised || got.NotRandomised == 0 {
		t.Errorf("not randomised = %d, want %d (> 0)", got.NotRandomised, want.NotRandomised)
	}
	if got.LateUnmatched != 0 || got.Malformed != 0 {
		t.Errorf("late unmatched %d, malformed %d; want 0, 0", got.LateUnmatched, got.Malformed)
	}
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		g, w := got.Arm(arm).Keys, want.Arm(arm).Keys
		if math.Abs(float64(g-w)) > 0.02*float64(w) || w == 0 {
			t.Errorf("%s keys = %d, want %d ± 2%%", arm, g, w)
		}
	}
}

// TestStatsOutOfOrder checks that a file whose requests are shuffled gives the same statistics as the
// file in time order: the second pass finds the stable records after the first canary record.
func TestStatsOutOfOrder(t *testing.T) {
	race.Skip(t, race.Slow)
	reqs, content, q := simulated(t)
	shuffled := shuffledRequests(reqs, rand.New(rand.NewPCG(1, 2)))
	want, err := (&Source{}).Read(context.Background(), bytes.NewReader(content), q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&Source{}).Read(context.Background(), bytes.NewReader(shuffled), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range synth.Diff(want, got, synth.Tolerance{Variance: 1e-6, Quantile: 1e-9}) {
		t.Error(d)
	}
	if !got.From.Equal(want.From) {
		t.Errorf("from = %s, want %s", got.From, want.From)
	}
	// A reader that cannot seek cannot be read twice.
	_, err = (&Source{}).Read(context.Background(), io.MultiReader(bytes.NewReader(shuffled)), q)
	if !errors.Is(err, ErrNeedsSeek) {
		t.Errorf("shuffled records from a pipe: err = %v, want ErrNeedsSeek", err)
	}
	// A file is read twice: Stats finds the same.
	path := filepath.Join(t.TempDir(), "shuffled.jsonl")
	if err := os.WriteFile(path, shuffled, 0o644); err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(t.TempDir(), "shuffled.jsonl.gz")
	if err := os.WriteFile(gz, gzipped(t, shuffled), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, gz} {
		fromFile := stats(t, p, q)
		if fromFile.Stable.Requests != want.Stable.Requests || fromFile.Canary.Requests != want.Canary.Requests {
			t.Errorf("%s: %d/%d requests, want %d/%d", filepath.Base(p), fromFile.Stable.Requests, fromFile.Canary.Requests, want.Stable.Requests, want.Canary.Requests)
		}
	}
}

// shuffledRequests is reqs as JSON Lines with the requests in an order rng draws, their late records
// after them all: a file out of time order around its first canary record.
func shuffledRequests(reqs []synth.Request, rng *rand.Rand) []byte {
	var requests, late [][]byte
	for _, r := range reqs {
		line := synth.AppendJSON(nil, r)
		if r.Late {
			late = append(late, line)
		} else {
			requests = append(requests, line)
		}
	}
	rng.Shuffle(len(requests), func(i, j int) { requests[i], requests[j] = requests[j], requests[i] })
	return append(bytes.Join(requests, nil), bytes.Join(late, nil)...)
}

func TestStatsWithoutCanaryRecords(t *testing.T) {
	content := `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"stable","key":"a","error":true}
{"ts":"2026-04-16T10:01:00Z","rollout":"r","variant":"stable","error":false}
`
	st, err := (&Source{}).Read(context.Background(), bytes.NewReader([]byte(content)), policy.Query{Rollout: "r"})
	if err != nil {
		t.Fatal(err)
	}
	// No canary record: nothing to align to, so stable counts over the whole window (the judge then
	// sees an empty canary arm); a keyless request is its own unit.
	if st.Stable.Requests != 2 || st.Stable.Keys != 2 || !st.From.IsZero() || st.Unit != policy.UnitKey {
		t.Errorf("stable %d requests, %d keys, from %s, unit %s; want 2, 2, zero, key", st.Stable.Requests, st.Stable.Keys, st.From, st.Unit)
	}
	if c := st.Stable.Metrics[ErrorRate].Clusters; len(c) != 2 {
		t.Errorf("error_rate clusters = %+v, want one per unit", c)
	}
}

func TestLateFeedback(t *testing.T) {
	content := `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","key":"a","request_id":"1","feedback":1,"quality":0.5}
{"ts":"2026-04-16T10:00:01Z","rollout":"r","variant":"stable","key":"b","request_id":"2"}
{"ts":"2026-04-16T10:00:02Z","rollout":"r","variant":"stable","key":"vip-1","request_id":"3"}
{"ts":"2026-04-16T10:01:00Z","rollout":"r","request_id":"1","feedback":-1}
{"ts":"2026-04-16T10:02:00Z","rollout":"r","request_id":"1","quality":0.9}
{"ts":"2026-04-16T10:02:00Z","rollout":"r","request_id":"2","quality":0.25}
{"ts":"2026-04-16T10:03:00Z","rollout":"r","request_id":"3","feedback":-1}
{"ts":"2026-04-16T10:03:00Z","rollout":"r","request_id":"404","feedback":-1}
{"ts":"2026-04-16T10:03:00Z","rollout":"other","request_id":"1","feedback":1}
{"ts":"2026-04-16T12:00:00Z","rollout":"r","request_id":"2","feedback":-1}
{"ts":"2026-04-16T10:04:00Z","rollout":"r","request_id":"5"}
`
	q := policy.Query{Rollout: "r", NotRandomised: []string{"vip-*"}, Window: window("2026-04-16T10:00:00Z", "2026-04-16T11:00:00Z")}
	st, err := (&Source{}).Read(context.Background(), bytes.NewReader([]byte(content)), q)
	if err != nil {
		t.Fatal(err)
	}
	// The latest value wins; a late record after the window's end is not there yet; one for a request
	// not randomised is left out with it; an unknown request is counted; a late record without
	// feedback or quality is malformed.
	if f := st.Canary.Metrics[NegativeFeedbackRate]; f.N != 1 || f.Sum != 1 {
		t.Errorf("canary negative feedback = %+v, want 1 of 1", f)
	}
	if q := st.Canary.Metrics[QualityScore]; q.N != 1 || !closeTo(q.Sum, 0.9) || !closeTo(q.SumSquares, 0.81) {
		t.Errorf("canary quality = %+v, want one score of 0.9", q)
	}
	if q, f := st.Stable.Metrics[QualityScore], st.Stable.Metrics[NegativeFeedbackRate]; q.N != 1 || q.Sum != 0.25 || f.N != 0 {
		t.Errorf("stable quality %+v, feedback %+v; want one score of 0.25, no feedback", q, f)
	}
	if st.LateUnmatched != 1 || st.NotRandomised != 1 || st.Malformed != 1 || !equalInts(st.MalformedLines, []int64{11}) {
		t.Errorf("late unmatched %d, not randomised %d, malformed %d %v; want 1, 1, 1 [11]", st.LateUnmatched, st.NotRandomised, st.Malformed, st.MalformedLines)
	}

	// Beyond MaxLateRequests the oldest requests are forgotten: their late records are unmatched.
	var b bytes.Buffer
	for i := range 1000 {
		b.WriteString(`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","request_id":"` + itoa(i) + `"}` + "\n")
	}
	for i := range 1000 {
		b.WriteString(`{"ts":"2026-04-16T10:30:00Z","rollout":"r","request_id":"` + itoa(i) + `","feedback":-1}` + "\n")
	}
	small := &Source{MaxLateRequests: 64}
	st, err = small.Read(context.Background(), bytes.NewReader(b.Bytes()), policy.Query{Rollout: "r"})
	if err != nil {
		t.Fatal(err)
	}
	matched := st.Canary.Metrics[NegativeFeedbackRate].N
	if matched+st.LateUnmatched != 1000 || matched > 64 || st.LateUnmatched < 900 {
		t.Errorf("with 64 remembered requests: %d matched, %d unmatched; want at most 64 matched, the rest unmatched", matched, st.LateUnmatched)
	}
}

// TestNeverEndingFiles reads a file too large to finish (a sparse file of zeros) and refuses what is not
// a regular file, /dev/zero and a FIFO, including one a writer holds open: each call returns, on the
// size bound, the context or at once, and leaves no goroutine behind.
func TestNeverEndingFiles(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.jsonl")
	if f, err := os.Create(huge); err != nil {
		t.Fatal(err)
	} else if err := f.Truncate(1 << 40); err != nil { // a TiB of zeros, on no disk
		f.Close()
		t.Skipf("no sparse files here: %v", err)
	} else {
		f.Close()
	}
	_, err := (&Source{Path: huge, MaxBytes: 64 << 20}).Stats(context.Background(), policy.Query{Rollout: "r"})
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, policy.ErrSourceUnavailable) {
		t.Errorf("a TiB with a 64 MiB bound: err = %v, want ErrTooLarge", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Open(huge).Stats(ctx, policy.Query{Rollout: "r"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a TiB with a cancelled context: err = %v, want Canceled", err)
	}
	// The source's own time bound is a source error: the judge holds.
	_, err = (&Source{Path: huge, Timeout: time.Nanosecond}).Stats(context.Background(), policy.Query{Rollout: "r"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, policy.ErrSourceUnavailable) {
		t.Errorf("a TiB past the source's timeout: err = %v, want DeadlineExceeded and ErrSourceUnavailable", err)
	}

	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Without a writer, open(2) would block forever where no context reaches it.
	for _, path := range []string{fifo, "/dev/zero"} {
		_, err = Open(path).Stats(context.Background(), policy.Query{Rollout: "r"})
		if !errors.Is(err, hostfile.ErrNotRegular) || !errors.Is(err, policy.ErrSourceUnavailable) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want ErrNotRegular and ErrSourceUnavailable, naming the path", path, err)
		}
	}
	// A writer that holds the pipe open and writes one record, then nothing: still refused.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString(`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary"}` + "\n"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(fifo).Stats(context.Background(), policy.Query{Rollout: "r"})
	if !errors.Is(err, hostfile.ErrNotRegular) {
		t.Errorf("a pipe with a writer: err = %v, want ErrNotRegular", err)
	}
	for range 100 {
		if runtime.NumGoroutine() <= before {
			break
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after, %d before", n, before)
	}
}

func TestKeyBucketIsPolicys(t *testing.T) {
	for _, k := range []string{"", "u-1", "user-1842", "é", "vip-007"} {
		if got, want := keyBucket([]byte(k)), policy.KeyBucket(k); got != want {
			t.Errorf("keyBucket(%q) = %d, want %d", k, got, want)
		}
	}
	_ = rollouts.MatchesAny
}

// TestUnitCounter: exact up to its limit, then an estimate within 1% (precision-16 HyperLogLog).
func TestUnitCounter(t *testing.T) {
	u := unitCounter{limit: 1000}
	for round := range 2 {
		for i := range 1000 {
			u.add(hash64([]byte("user-" + itoa(i))))
		}
		if n := u.count(); n != 1000 || u.sketch != nil {
			t.Fatalf("round %d: %d units counted, want exactly 1000", round, n)
		}
	}
	for i := range 200_000 {
		u.add(hash64([]byte("user-" + itoa(i))))
	}
	if n := u.count(); u.sketch == nil || math.Abs(float64(n)-200_000) > 2000 {
		t.Errorf("%d units estimated, want 200,000 ± 1%%", n)
	}
	u.reset()
	u.add(hash64([]byte("x")))
	if n := u.count(); n != 1 {
		t.Errorf("after reset: %d, want 1", n)
	}
}
