package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rollout-dev/rollout/internal/syncbuf"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// fakeClock is a clock that moves only when the test says, to the deadline of the daemon's sleep.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters chan waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, waiters: make(chan waiter, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waiters <- waiter{at: c.Now().Add(d), ch: ch}
	return ch
}

// next waits for the daemon to sleep, moves the clock to the end of that sleep and wakes it.
func (c *fakeClock) next(t *testing.T) time.Time {
	t.Helper()
	select {
	case w := <-c.waiters:
		c.mu.Lock()
		c.now = w.at
		c.mu.Unlock()
		w.ch <- w.at
		return w.at
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon never slept")
		return time.Time{}
	}
}

// fakeReconciler serves fixed specs and records each pass with the clock's time.
type fakeReconciler struct {
	clock *fakeClock
	set   *rollouts.Set
	calls chan string
	// hold blocks the passes that include the rollout until the channel is closed.
	hold map[string]chan struct{}
	// ctxErr records the pass context's error at the end of each pass.
	mu       sync.Mutex
	ctxErr   []error
	specsErr error
	// results, when set, is what a pass reports for a rollout (default: hold).
	results map[string]reconcile.Result
	// reading, when set, is called at the start of each reading of the specs; its error is the
	// reading's.
	reading func(ctx context.Context) error
	// panics, when set, makes a pass of the rollout panic with its value, outside any one rollout's
	// evaluation (as the forge's listing would).
	panics map[string]any
}

func (f *fakeReconciler) Specs(ctx context.Context) (*rollouts.Set, error) {
	if f.reading != nil {
		if err := f.reading(ctx); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.specsErr != nil {
		return nil, f.specsErr
	}
	return f.set, nil
}

func (f *fakeReconciler) Run(ctx context.Context, opts reconcile.RunOptions) (*reconcile.Report, error) {
	f.calls <- fmt.Sprintf("%s %s", f.clock.Now().Format("15:04"), strings.Join(opts.Only, ","))
	for _, n := range opts.Only {
		if ch, ok := f.hold[n]; ok {
			<-ch
		}
	}
	f.mu.Lock()
	f.ctxErr = append(f.ctxErr, ctx.Err())
	f.mu.Unlock()
	for _, n := range opts.Only {
		if p, ok := f.panics[n]; ok {
			panic(p)
		}
	}
	rep := &reconcile.Report{}
	for _, n := range opts.Only {
		res, ok := f.results[n]
		if !ok {
			res = reconcile.Result{Rollout: n, Decision: policy.Hold}
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

func specs(schedules map[string]string) *rollouts.Set {
	set := &rollouts.Set{}
	for _, name := range []string{"a", "b"} {
		if s, ok := schedules[name]; ok {
			set.Documents = append(set.Documents, &rollouts.Document{Path: name + ".yaml", Spec: &rollouts.Spec{Name: name, Schedule: s}})
		}
	}
	return set
}

func start(t *testing.T, d *Daemon) (cancel func(), done chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return cancel, done
}

func drain(ch chan string) []string {
	var out []string
	for {
		select {
		case c := <-ch:
			out = append(out, c)
		default:
			return out
		}
	}
}

func TestEachRolloutOnItsOwnSchedule(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *", "b": "0 * * * *"}), calls: make(chan string, 32)}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Hour}
	passed := make(chan []string, 8)
	d.AfterPass = func(names []string) { passed <- names }
	cancel, done := start(t, d)

	var got []string
	for range 4 {
		clock.next(t)
		got = append(got, recv(t, rec.calls))
		recv(t, passed) // the pass is over before the clock moves on
	}
	want := []string{"10:15 a", "10:30 a", "10:45 a", "11:00 a,b"}
	if !slices.Equal(got, want) {
		t.Errorf("passes = %q, want %q", got, want)
	}

	addr, err := d.Addr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "rollout_tick_duration_seconds"} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
	}
	cancel()
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	if extra := drain(rec.calls); len(extra) > 0 {
		t.Errorf("extra passes %q", extra)
	}
	if n := testutil.ToFloat64(d.ticks.WithLabelValues("ok")); n != 4 {
		t.Errorf("ticks ok = %v, want 4", n)
	}
	if n := testutil.ToFloat64(d.decision.WithLabelValues("a", "hold")); n != 4 {
		t.Errorf("decisions a hold = %v, want 4", n)
	}
	if _, err := http.Get("http://" + addr.String() + "/healthz"); err == nil {
		t.Errorf("the server still answers after Run returned")
	}
}

func TestARolloutIsNeverEvaluatedTwiceAtOnce(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	release := make(chan struct{})
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *"}), calls: make(chan string, 32),
		hold: map[string]chan struct{}{"a": release}}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Hour}
	cancel, done := start(t, d)

	clock.next(t) // 10:15: a starts and blocks
	if c := recv(t, rec.calls); c != "10:15 a" {
		t.Fatalf("first pass %q", c)
	}
	clock.next(t)          // 10:30: a is still running
	clock.next(t)          // 10:45: still running
	recv(t, clock.waiters) // the daemon has dealt with 10:45 and sleeps again
	close(release)
	cancel() // SIGTERM: the pass in flight finishes, no new one starts
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	done <- nil
	if extra := drain(rec.calls); len(extra) > 0 {
		t.Errorf("a was evaluated again while running: %q", extra)
	}
	if len(rec.ctxErr) != 1 || rec.ctxErr[0] != nil {
		t.Errorf("the pass in flight saw a cancelled context: %v", rec.ctxErr)
	}
	if n := testutil.ToFloat64(d.ticks.WithLabelValues("skipped")); n != 2 {
		t.Errorf("skipped passes on /metrics = %v, want 2 (10:30 and 10:45)", n)
	}
}

func TestShutdownWaitsForThePassInFlight(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	release := make(chan struct{})
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *"}), calls: make(chan string, 32),
		hold: map[string]chan struct{}{"a": release}}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Hour}
	cancel, done := start(t, d)
	clock.next(t)
	recv(t, rec.calls)
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned with a pass in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	done <- nil
	if n := testutil.ToFloat64(d.ticks.WithLabelValues("ok")); n != 1 {
		t.Errorf("the pass in flight did not finish: ticks %v", n)
	}
}

func TestHealthzFailsWhileTheRepositoryCannotBeRead(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	rec := &fakeReconciler{clock: clock, calls: make(chan string, 1), specsErr: errors.New("dial tcp: secret.example.com refused")}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After}
	start(t, d)
	w := recv(t, clock.waiters) // the first reading has failed by the time the daemon sleeps
	addr, err := d.Addr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "secret") {
		t.Errorf("healthz = %d %q", resp.StatusCode, body)
	}
	if w.at.Sub(clock.Now()) != DefaultPoll {
		t.Errorf("slept %s, want the poll interval", w.at.Sub(clock.Now()))
	}
}

// recv receives from ch, failing the test instead of hanging when nothing comes.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received in 10s")
		var zero T
		return zero
	}
}

// TestIdleConnectionsCannotStallTheDaemon opens many idle connections to the daemon (on loopback, a
// bounded number): the server holds at most MaxConns of them at once, closes each one that sends no
// request headers in time, the goroutines it spends stay bounded, and the schedule keeps running.
func TestIdleConnectionsCannotStallTheDaemon(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *"}), calls: make(chan string, 32)}
	const maxConns, idle = 8, 300
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Hour,
		MaxConns: maxConns, ReadHeaderTimeout: 200 * time.Millisecond}
	passed := make(chan []string, 8)
	d.AfterPass = func(names []string) { passed <- names }
	start(t, d)
	addr, err := d.Addr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(addr.String()); host != "127.0.0.1" {
		t.Fatalf("listening on %s", addr)
	}
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The server serves at most maxConns at once, however many are waiting.
	peak := 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		open := int(testutil.ToFloat64(d.conns))
		peak = max(peak, open)
		if open > maxConns {
			t.Fatalf("%d connections served at once, limit %d", open, maxConns)
		}
		if peak == maxConns {
			break
		}
		runtime.Gosched()
	}
	if peak != maxConns {
		t.Fatalf("the server never took %d connections (peak %d)", maxConns, peak)
	}
	if grown := runtime.NumGoroutine() - before; grown > 2*maxConns+8 {
		t.Errorf("%d idle connections cost %d goroutines; the limit is %d connections", idle, grown, maxConns)
	}
	// The schedule is not stalled by them.
	clock.next(t)
	if c := recv(t, rec.calls); c != "10:15 a" {
		t.Fatalf("pass %q", c)
	}
	recv(t, passed)
	// A connection that sends no request is closed by the server.
	conns[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("an idle connection was not closed by the server: %v", err)
	}
	// And once the idle ones are gone, /healthz answers.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz = %d", resp.StatusCode)
	}
}

// TestProbesCannotBeStarved: 64 slow keep-alive clients take every connection slot of the main
// listener (the red team's 64 clients answered 0 of 14 /healthz probes in 70 s). /healthz and /readyz
// answer on their own listener whatever the main one holds; and on the main listener, a newcomer is
// served once the others are idle keep-alives, the longest idle closed to make room. On loopback, with
// deadlines only: a probe that is starved fails the test at its deadline instead of hanging it.
func TestProbesCannotBeStarved(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *"}), calls: make(chan string, 32)}
	const slots = 64
	// Timeouts far beyond the test: only the listeners' fairness can let a probe through.
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After,
		Poll: time.Hour, MaxConns: slots, ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour}
	start(t, d)
	ctx := context.Background()
	addr, err := d.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	healthAddr, err := d.HealthAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	dial := func(a net.Addr) net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", a.String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(deadline)
		t.Cleanup(func() { c.Close() })
		return c
	}
	// get sends one keep-alive request on c and reads the status line and headers of its answer, then
	// the body by its length.
	get := func(c net.Conn, path string) int {
		t.Helper()
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	// 64 slow clients: each sends half a request and nothing more, holding its slot.
	for range slots {
		c := dial(addr)
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitConns(t, d, slots)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := get(dial(healthAddr), path); code != http.StatusOK {
			t.Errorf("%s with every main slot held: %d", path, code)
		}
	}
	// The health listener serves nothing else.
	if code := get(dial(healthAddr), "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the health listener: %d, want 404", code)
	}

	// The slow clients finish their requests and stay connected, idle between requests: a newcomer on
	// the main listener is served, and the connection idle the longest is the one closed.
	t.Run("idle keep-alives make room", func(t *testing.T) {
		d2 := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After,
			Poll: time.Hour, MaxConns: slots, ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour}
		start(t, d2)
		addr2, err := d2.Addr(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var idle []net.Conn
		for i := range slots {
			c := dial(addr2)
			if code := get(c, "/healthz"); code != http.StatusOK {
				t.Fatalf("keep-alive client: %d", code)
			}
			// The server marks a connection idle after the client has its answer: wait for it, so
			// that the order in which they turned idle is the order of idle.
			waitIdle(t, d2, i+1)
			idle = append(idle, c)
		}
		waitConns(t, d2, slots)
		if code := get(dial(addr2), "/healthz"); code != http.StatusOK {
			t.Errorf("a newcomer with every slot held by idle keep-alives: %d", code)
		}
		if _, err := idle[0].Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("the longest-idle connection was not the one closed: %v", err)
		}
	})
}

// waitConns waits until the daemon's main listener serves n connections (the server counts a
// connection once its goroutine runs), failing at the test's deadline rather than sleeping.
// waitIdle waits until n connections of d's main listener are idle keep-alives.
func waitIdle(t *testing.T, d *Daemon, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.mu.Lock()
		ln := d.mainListener
		d.mu.Unlock()
		if ln != nil && ln.idleConns() >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d idle connections", n)
		}
		runtime.Gosched()
	}
}

func waitConns(t *testing.T, d *Daemon, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for int(testutil.ToFloat64(d.conns)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%v connections served, want %d", testutil.ToFloat64(d.conns), n)
		}
		runtime.Gosched()
	}
}

// TestNoPassStartsAfterShutdownBegins: SIGTERM arrives while the daemon reads the specs (a fetch of a
// second or more, once a minute). The reading fails with the cancelled context; no pass may start after
// it, for the daemon is asked to stop and only the passes already in flight may hold it up (a pass begun
// now could be killed at the end of the grace period, between a rollback commit and its notification).
func TestNoPassStartsAfterShutdownBegins(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	readings := 0
	inReading := make(chan struct{})
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *"}), calls: make(chan string, 32),
		reading: func(ctx context.Context) error {
			readings++
			if readings == 1 {
				return nil
			}
			close(inReading)
			<-ctx.Done() // the fetch is cut short by the signal
			return fmt.Errorf("snapshot: %w", ctx.Err())
		}}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Hour}
	cancel, done := start(t, d)
	clock.next(t) // 10:15: a is due, and the reading of the specs is under way
	recv(t, inReading)
	cancel()
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	done <- nil
	if calls := drain(rec.calls); len(calls) > 0 {
		t.Errorf("passes started after the daemon was told to stop: %q", calls)
	}
}

// TestSchedulesAreInUTC: a spec's schedule is cron in UTC (as `rollout init` writes, and as GitHub
// Actions and the CronJob read theirs), whatever the time zone of the machine the daemon runs on;
// CRON_TZ= picks another zone.
func TestSchedulesAreInUTC(t *testing.T) {
	newYork := time.FixedZone("EST", -5*3600)
	for _, tt := range []struct{ schedule, want string }{
		{"0 9 * * *", "2026-04-16T09:00:00Z"},
		{"CRON_TZ=Asia/Tokyo 0 17 * * *", "2026-04-16T08:00:00Z"},
	} {
		t.Run(tt.schedule, func(t *testing.T) {
			// 02:07 in New York is 07:07 UTC.
			clock := newFakeClock(time.Date(2026, 4, 16, 2, 7, 0, 0, newYork))
			rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": tt.schedule}), calls: make(chan string, 32)}
			d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: 24 * time.Hour}
			start(t, d)
			if at := clock.next(t); !at.Equal(mustTime(t, tt.want)) {
				t.Errorf("first pass due at %s, want %s", at.UTC().Format(time.RFC3339), tt.want)
			}
			recv(t, rec.calls)
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestANewSpecThatFailsToLoadIsReported: a file added while the daemon runs whose spec does not load (a
// schedule that is no cron expression) was never seen valid, so it has no place in the schedule. It is
// reported anyway: logged with file:line:col once per distinct problem, and counted on /metrics while it
// lasts, so that an operator learns that the rollout is not judged; the other rollouts go on.
func TestANewSpecThatFailsToLoadIsReported(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	set := specs(map[string]string{"a": "*/15 * * * *"})
	set.Problems = []rollouts.Problem{{File: "rollouts/c.yaml", Line: 24, Col: 11, Message: `schedule: invalid cron expression "every 5 minutes"`}}
	rec := &fakeReconciler{clock: clock, set: set, calls: make(chan string, 32)}
	var logs syncbuf.Buffer
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After,
		Poll: 5 * time.Minute, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	passed := make(chan []string, 8)
	d.AfterPass = func(names []string) { passed <- names }
	start(t, d)
	clock.next(t) // 10:12
	clock.next(t) // 10:15: a's pass
	if c := recv(t, rec.calls); c != "10:15 a" {
		t.Errorf("pass %q, want a at 10:15", c)
	}
	recv(t, passed)
	clock.next(t)               // 10:20: the same problem at every reading
	w := recv(t, clock.waiters) // the reading of 10:20 is over
	clock.waiters <- w
	want := `rollouts/c.yaml:24:11: schedule: invalid cron expression \"every 5 minutes\"`
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Errorf("the problem is logged %d times, want once:\n%s", n, logs.String())
	}
	if got := series(t, scrape(t, d), "rollout_invalid_specs"); !slices.Equal(got, []string{" 1"}) {
		t.Errorf("rollout_invalid_specs = %q, want 1", got)
	}

	// Fixed: the count drops.
	rec.mu.Lock()
	rec.set = specs(map[string]string{"a": "*/15 * * * *"})
	rec.mu.Unlock()
	clock.next(t) // 10:25
	recv(t, clock.waiters)
	if got := series(t, scrape(t, d), "rollout_invalid_specs"); !slices.Equal(got, []string{" 0"}) {
		t.Errorf("rollout_invalid_specs once fixed = %q, want 0", got)
	}
}

// TestAnOlderPassDoesNotHideAFailedReading: a pass takes its snapshot, then runs for minutes (slow
// metrics queries); meanwhile a reading of the specs fails. The pass that ends afterwards read the
// repository before that failure, so the probes keep saying what the last try found: 503.
func TestAnOlderPassDoesNotHideAFailedReading(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	release := make(chan struct{})
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *"}), calls: make(chan string, 32),
		hold: map[string]chan struct{}{"a": release}}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Hour}
	passed := make(chan []string, 8)
	d.AfterPass = func(names []string) { passed <- names }
	start(t, d)
	clock.next(t) // 10:15: a's pass starts and runs on
	recv(t, rec.calls)
	rec.mu.Lock()
	rec.specsErr = errors.New("snapshot: no answer within 2m0s")
	rec.mu.Unlock()
	clock.next(t)               // 10:30: the reading fails
	w := recv(t, clock.waiters) // and is over
	clock.waiters <- w
	close(release)
	recv(t, passed)
	addr, err := d.HealthAddr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d after the last reading failed, want 503", resp.StatusCode)
	}
}

// TestARolloutAddedWhileRunningWaitsForItsSchedule: a spec merged while the daemon runs is first
// evaluated at its schedule's next time after it appeared, as cron runs a line added to a crontab, not
// at once because a time of its schedule passed since the daemon started: a rollout judged only on
// weekday mornings, merged on a Friday afternoon, does not start its canary for the weekend.
func TestARolloutAddedWhileRunningWaitsForItsSchedule(t *testing.T) {
	friday := time.Date(2026, 4, 17, 8, 0, 0, 0, time.UTC)
	clock := newFakeClock(friday)
	const weekdays = "0 9 * * 1-5"
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": weekdays}), calls: make(chan string, 32)}
	// The daemon logs the rollouts of a pass before it sleeps: the test reads whether a pass began there.
	var logs syncbuf.Buffer
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After,
		Poll: 6 * time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	passed := make(chan []string, 8)
	d.AfterPass = func(names []string) { passed <- names }
	start(t, d)
	clock.next(t) // Friday 09:00: a
	recv(t, rec.calls)
	recv(t, passed)
	rec.mu.Lock()
	rec.set = specs(map[string]string{"a": weekdays, "b": weekdays}) // b is merged
	rec.mu.Unlock()
	monday := time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC)
	for passes := strings.Count(logs.String(), "msg=pass "); ; {
		at := clock.next(t)
		w := recv(t, clock.waiters) // the reading is over
		clock.waiters <- w
		if strings.Count(logs.String(), "msg=pass ") == passes {
			if !at.Before(monday) {
				t.Fatalf("no pass by %s", at.Format(time.RFC3339))
			}
			continue
		}
		if !at.Equal(monday) || !strings.Contains(logs.String(), "msg=pass rollouts=\"[a b]\"") {
			t.Errorf("a pass at %s:\n%s\nwant a and b at their schedule's next time, %s", at.Format(time.RFC3339), logs.String(), monday.Format(time.RFC3339))
		}
		recv(t, passed)
		return
	}
}

// TestTheLogSaysWhenTheNextPassIsDue: the daemon reads the specs every --poll, but a pass is due only
// at a rollout's schedule. Its "next pass" line names that time, once, with the rollouts due then, not
// the next reading of the specs at every reading (which read as a pass due in a minute, every minute).
func TestTheLogSaysWhenTheNextPassIsDue(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "0 * * * *", "b": "0 */2 * * *"}), calls: make(chan string, 32)}
	var logs syncbuf.Buffer
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After,
		Poll: time.Minute, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	start(t, d)
	for range 3 { // 10:08, 10:09, 10:10: readings, no pass
		clock.next(t)
	}
	w := recv(t, clock.waiters)
	clock.waiters <- w
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="next pass"`) {
			_, l, _ = strings.Cut(l, `msg="next pass" `)
			lines = append(lines, l)
		}
	}
	if want := []string{"at=2026-04-16T11:00:00Z in=53m0s rollouts=[a]"}; !slices.Equal(lines, want) {
		t.Errorf("next pass lines %q, want %q", lines, want)
	}
}

// TestLivenessIsTheDaemonsOwn: a liveness probe restarts the pod when it fails, and a restart does not
// cure a git outage (the new process cannot even open the repository, and crash-loops until the outage
// ends, then waits out its back-off). /livez therefore says whether the daemon itself goes on: 200
// while the repository cannot be read (that is /readyz's 503), 503 once its schedule has made no
// progress for longer than Poll and Stall together (a reading stuck past every timeout).
func TestLivenessIsTheDaemonsOwn(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	readings := 0
	stuck, unstick := make(chan struct{}), make(chan struct{})
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "0 * * * *"}), calls: make(chan string, 32),
		specsErr: errors.New("snapshot: no answer within 2m0s"),
		reading: func(ctx context.Context) error {
			if readings++; readings == 3 {
				close(stuck)
				<-unstick
			}
			return nil
		}}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After,
		Poll: time.Minute, Stall: 10 * time.Minute}
	start(t, d)
	addr, err := d.HealthAddr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	clock.next(t) // 10:08: the repository still cannot be read
	w := recv(t, clock.waiters)
	clock.waiters <- w
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while the repository cannot be read, want 503", code)
	}
	if code := get("/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d while the repository cannot be read, want 200: a restart does not help", code)
	}

	clock.next(t) // 10:09: this reading hangs
	recv(t, stuck)
	clock.mu.Lock()
	clock.now = clock.now.Add(10*time.Minute + time.Minute) // Poll and Stall have passed: 10:20
	clock.mu.Unlock()
	if code := get("/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d at the end of Poll and Stall, want 200", code)
	}
	clock.mu.Lock()
	clock.now = clock.now.Add(time.Second)
	clock.mu.Unlock()
	if code := get("/livez"); code != http.StatusServiceUnavailable {
		t.Errorf("/livez = %d with the schedule stuck past Poll and Stall, want 503", code)
	}
	close(unstick)
	w = recv(t, clock.waiters) // the schedule goes on
	clock.waiters <- w
	if code := get("/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d once the schedule went on, want 200", code)
	}
}

// targetNotifier records the targets of each delivery and fails, once each, the targets named in down;
// those named in unset it never reaches (not configured).
type targetNotifier struct {
	mu    sync.Mutex
	calls [][]string
	down  map[string]bool
	unset map[string]bool
}

var _ Notifier = (*targetNotifier)(nil)

func (n *targetNotifier) Notify(ctx context.Context, targets []rollouts.Notify, ev reconcile.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var names []string
	var errs []error
	for _, t := range targets {
		name := reconcile.TargetName("webhook", t.Webhook)
		names = append(names, name)
		if n.unset[name] {
			errs = append(errs, &reconcile.TargetError{Target: name, Err: fmt.Errorf("ROLLOUT_UNSET is not set: %w", reconcile.ErrTargetNotConfigured)})
		}
		if n.down[name] {
			delete(n.down, name)
			errs = append(errs, &reconcile.TargetError{Target: name, Err: errors.New("answered 500 Internal Server Error")})
		}
	}
	n.calls = append(n.calls, names)
	return errors.Join(errs...)
}

// TestAnInvalidSpecAlertIsRetriedWhereItFailed: the alert for a live rollout whose spec turned invalid
// goes to the webhooks of its last valid spec; the on-call one fails, and one is not configured here.
// The next reading retries the on-call one alone (not the team's webhook again, every --poll, nor the
// one that no retry can reach), and once delivered the alert is not sent again.
func TestAnInvalidSpecAlertIsRetriedWhereItFailed(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	live := &rollouts.Spec{Name: "a", Schedule: "0 * * * *", Traffic: rollouts.Traffic{Weight: 5},
		Rollback: rollouts.RollbackPolicy{Notify: []rollouts.Notify{{Webhook: "env:ROLLOUT_TEAM"}, {Webhook: "env:ROLLOUT_ONCALL"}, {Webhook: "env:ROLLOUT_UNSET"}}}}
	rec := &fakeReconciler{clock: clock, set: &rollouts.Set{Documents: []*rollouts.Document{{Path: "a.yaml", Spec: live}}}, calls: make(chan string, 32)}
	notes := &targetNotifier{down: map[string]bool{"webhook env:ROLLOUT_ONCALL": true}, unset: map[string]bool{"webhook env:ROLLOUT_UNSET": true}}
	d := &Daemon{Reconciler: rec, Notifier: notes, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Minute}
	start(t, d)
	w := recv(t, clock.waiters) // the first reading knows a as valid and live
	clock.waiters <- w
	rec.mu.Lock()
	rec.set = &rollouts.Set{Problems: []rollouts.Problem{{File: "a.yaml", Line: 3, Col: 1, Message: "stages: required"}}}
	rec.mu.Unlock()
	for range 3 { // 10:08 alerts, 10:09 retries, 10:10 has nothing to send
		clock.next(t)
	}
	w = recv(t, clock.waiters)
	clock.waiters <- w
	notes.mu.Lock()
	defer notes.mu.Unlock()
	want := [][]string{{"webhook env:ROLLOUT_TEAM", "webhook env:ROLLOUT_ONCALL", "webhook env:ROLLOUT_UNSET"}, {"webhook env:ROLLOUT_ONCALL"}}
	if !slices.EqualFunc(notes.calls, want, slices.Equal) {
		t.Errorf("alert deliveries %q, want %q", notes.calls, want)
	}
}

// TestAPanicInAPassFailsThatPassAlone: a panic in a pass outside any one rollout (the forge's listing,
// publishing stale rollouts) while another rollout's pass is in flight is logged with its stack,
// counted, and fails that pass as a failed pass does (/readyz 503, /livez 200); the daemon lives on,
// the pass in flight finishes, and the next pass runs. Before, the panic ended the process.
func TestAPanicInAPassFailsThatPassAlone(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC))
	release := make(chan struct{})
	rec := &fakeReconciler{clock: clock, set: specs(map[string]string{"a": "*/15 * * * *", "b": "*/10 * * * *"}),
		calls: make(chan string, 32), hold: map[string]chan struct{}{"b": release},
		panics: map[string]any{"a": "runtime error: index out of range [3] with length 3"}}
	var log syncbuf.Buffer
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Now: clock.Now, After: clock.After,
		Poll: time.Hour, Log: slog.New(slog.NewTextHandler(&log, nil))}
	passed := make(chan []string, 8)
	d.AfterPass = func(names []string) { passed <- names }
	start(t, d)
	clock.next(t) // 10:10: b's pass starts and runs on
	recv(t, rec.calls)
	clock.next(t) // 10:15: a's pass panics
	recv(t, rec.calls)
	if got := recv(t, passed); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("passed %v, want a's", got)
	}
	close(release)
	if got := recv(t, passed); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("passed %v, want b's, in flight when a's panicked", got)
	}
	for _, want := range []string{"panic in a reconcile pass", "index out of range", "goroutine "} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	if got := testutil.ToFloat64(d.panics); got != 1 {
		t.Errorf("rollout_panics_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(d.ticks.WithLabelValues("failed")); got != 1 {
		t.Errorf("rollout_ticks_total{failed} = %v, want 1", got)
	}
	addr, err := d.HealthAddr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/readyz": http.StatusServiceUnavailable, "/livez": http.StatusOK} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s = %d after the panicked pass, want %d", path, resp.StatusCode, want)
		}
	}
	clock.next(t) // 10:20: b again: the daemon lives on
	if got := recv(t, rec.calls); got != "10:20 b" {
		t.Errorf("next pass %q, want 10:20 b", got)
	}
}
