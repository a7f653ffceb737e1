package faults

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/daemon"
)

// passes is the daemon's reconciler: the real loop, reporting each finished pass on a channel.
type passes struct {
	*reconcile.Loop
	done chan *reconcile.Report
}

func (p *passes) Run(ctx context.Context, opts reconcile.RunOptions) (*reconcile.Report, error) {
	rep, err := p.Loop.Run(ctx, opts)
	p.done <- rep
	return rep, err
}

// TestDaemonEndpointsExposeNoSecrets runs `rollout run` (the daemon) over the GitHub test server with the
// token and a webhook URL in play, through a rollback whose notification fails, then a pass while
// the remote fails. /metrics and /healthz name no token, no webhook URL, no credentials.
func TestDaemonEndpointsExposeNoSecrets(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.30)
	g.hook.fail(http.StatusInternalServerError)
	rec := &passes{Loop: g.process(), done: make(chan *reconcile.Report, 10)}

	// The daemon's clock moves only when it sleeps: its first two sleeps end at once, later ones never.
	var mu sync.Mutex
	clock, sleeps := t0.Add(2*time.Hour), 0
	passed := make(chan []string, 10)
	d := &daemon.Daemon{Reconciler: rec, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Poll: time.Hour,
		AfterPass: func(names []string) { passed <- names },
		Now:       func() time.Time { mu.Lock(); defer mu.Unlock(); return clock },
		After: func(dur time.Duration) <-chan time.Time {
			mu.Lock()
			defer mu.Unlock()
			sleeps++
			if sleeps > 2 {
				return nil
			}
			clock = clock.Add(dur)
			ch := make(chan time.Time, 1)
			ch <- clock
			return ch
		}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	addr, err := d.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := <-rec.done
	<-passed // the pass's outcome is on /metrics
	if r := result(t, rep, "summarizer"); r.Decision != "rollback" || r.Commit == "" || r.Err == nil {
		t.Fatalf("the daemon's pass: %+v", r)
	}
	get := func(path string) string {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	metrics, health := get("/metrics"), get("/healthz")
	if !strings.Contains(metrics, `rollout_decisions_total{`) {
		t.Fatalf("/metrics holds no decisions; the check below proves nothing:\n%s", metrics)
	}
	for _, secret := range []string{ghToken, g.hook.secret, g.hook.url(), "x-access-token", g.gh.URL} {
		if strings.Contains(metrics, secret) || strings.Contains(health, secret) {
			t.Errorf("an endpoint holds %q:\n%s\n%s", secret, metrics, health)
		}
	}
	if found := leaks(g.logs.String(), ghToken, g.hook.secret); len(found) > 0 {
		t.Errorf("the daemon's logs hold %q", found)
	}
}
