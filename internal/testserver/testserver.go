// Package testserver starts real Prometheus, PostgreSQL and ClickHouse servers for integration tests:
// the Debian binaries, in the test's temp directory, on free loopback ports, stopped when the test ends.
// A current ClickHouse engine, which Debian does not package, runs as chdb (npm) behind a small
// test-only HTTP front (Chdb).
//
// When a binary is missing the test is skipped, unless ROLLOUT_INTEGRATION=1 (set by .ci/test), in which
// case it fails: CI must never pass by skipping.
package testserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds the wait for a server to accept requests.
const readyTimeout = 60 * time.Second

// missing skips or fails the test for a binary that is not installed.
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("ROLLOUT_INTEGRATION") == "1" {
		t.Fatalf("%s is not installed (ROLLOUT_INTEGRATION=1: run .ci/test as root to install it)", what)
	}
	t.Skipf("%s is not installed; set ROLLOUT_INTEGRATION=1 to make this a failure", what)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is a started server whose output is kept for the failure message.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
	// kill stops the server with SIGKILL instead of asking it to shut down.
	kill bool
}

func start(t testing.TB, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop asks the server to shut down (SIGINT: fast shutdown for PostgreSQL, clean for Prometheus) and
// kills it if it has not stopped in time; a process marked kill is killed at once.
func (p *process) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	if p.kill {
		_ = p.cmd.Process.Kill()
		<-p.done
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop on SIGINT; killed it\n%s", p.name, p.out.String())
	}
}

// waitReady polls ready until it succeeds, the process exits, or readyTimeout passes. It is the one
// place tests wait on a real server.
func (p *process) waitReady(t testing.TB, ready func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v\n%s", p.name, readyTimeout, err, p.out.String())
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, p.out.String())
		case <-tick.C:
		}
	}
}

// httpReady is a readiness check that wants 200 from url.
func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
}

// syncBuffer collects a server's output from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) < 1<<20 {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
