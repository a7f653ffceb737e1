package faults

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile/daemon"
)

// stepClock is a daemon clock that moves only when the test wakes the daemon from a sleep.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  chan stepSleep
	stopped chan struct{}
}

type stepSleep struct {
	until time.Time
	wake  chan time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.sleeps <- stepSleep{until: c.Now().Add(d), wake: ch}
	return ch
}

// sleeping waits until the daemon sleeps: the reading of the specs before it is over.
func (c *stepClock) sleeping(t *testing.T) stepSleep {
	t.Helper()
	select {
	case s := <-c.sleeps:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon never slept")
		return stepSleep{}
	}
}

// wake ends a sleep: the clock moves to its end.
func (c *stepClock) wake(s stepSleep) {
	c.mu.Lock()
	c.now = s.until
	c.mu.Unlock()
	s.wake <- s.until
}

// TestDaemonAlertsWhenALiveSpecTurnsInvalid runs the real daemon over a real repository with two
// rollouts whose canaries hold 5% of traffic. A human pushes a broken edit of one and a second file that
// takes the other's name. Each is an alert: logged, counted on /metrics, and posted (decision
// invalid-spec) to the webhook of its last valid spec, once per distinct problem; at each due time the
// rollout is counted as an error instead of vanishing from the schedule. Once the file is fixed, the
// rollout is evaluated again on its schedule.
func TestDaemonAlertsWhenALiveSpecTurnsInvalid(t *testing.T) {
	w := newWorld(t, map[string]string{
		"rollouts/summarizer.yaml": progressing("summarizer", "hold"),
		"rollouts/classifier.yaml": progressing("classifier", "hold"),
	}, false)
	loop := w.localLoop()
	clock := &stepClock{now: t0.Add(2*time.Hour + 7*time.Minute), sleeps: make(chan stepSleep, 4)}
	passed := make(chan []string, 10)
	d := &daemon.Daemon{Reconciler: loop, Notifier: loop.Notifier, Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", Poll: time.Hour, Log: loop.Log,
		Now: clock.Now, After: clock.After, AfterPass: func(names []string) { passed <- names }}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- d.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case s := <-clock.sleeps:
			clock.wake(s)
		default:
		}
		if err := <-stopped; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	addr, err := d.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	metrics := func() string {
		t.Helper()
		resp, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}

	first := clock.sleeping(t) // both specs read while valid; next due at 02:15
	human := gittest.Clone(t, w.bare)
	human.Write(map[string]string{
		"rollouts/summarizer.yaml": strings.Replace(progressing("summarizer", "hold"), "weight: 5   #", "weight: lots   #", 1),
		"rollouts/copy.yaml":       progressing("classifier", "hold"),
	})
	human.Commit("edit specs")
	human.Push()

	clock.wake(first) // 02:15: both due, neither loads
	second := clock.sleeping(t)
	events := w.hook.received()
	alerted := map[string]string{}
	for _, ev := range events {
		if ev.Decision != daemon.InvalidSpecDecision || ev.From != 5 {
			t.Errorf("event %+v", ev)
		}
		alerted[ev.Rollout] = strings.Join(ev.Reasons, "\n")
	}
	if len(events) != 2 || !strings.Contains(alerted["summarizer"], "rollouts/summarizer.yaml:") ||
		!strings.Contains(alerted["classifier"], "also the name of") {
		t.Fatalf("alerts posted: %+v", events)
	}
	m := metrics()
	for _, want := range []string{
		`rollout_invalid_spec_alerts_total{rollout="classifier"} 1`,
		`rollout_invalid_spec_alerts_total{rollout="summarizer"} 1`,
		`rollout_decisions_total{decision="error",rollout="summarizer"} 1`,
		`rollout_decisions_total{decision="error",rollout="classifier"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, m)
		}
	}
	if logs := w.logs.String(); !strings.Contains(logs, "the spec of a live rollout is invalid") {
		t.Errorf("no alert in the log:\n%s", logs)
	}

	clock.wake(second) // 02:30: the same problems: no second alert, but still counted as an error
	third := clock.sleeping(t)
	if n := len(w.hook.received()); n != 2 {
		t.Errorf("the same problem was alerted again: %d events", n)
	}
	m = metrics()
	for _, want := range []string{
		`rollout_invalid_spec_alerts_total{rollout="summarizer"} 1`,
		`rollout_decisions_total{decision="error",rollout="summarizer"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, m)
		}
	}

	human.Write(map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	human.Commit("fix the spec")
	human.Push()
	clock.wake(third) // 02:45: summarizer loads again and is evaluated on its schedule
	select {
	case names := <-passed:
		if strings.Join(names, ",") != "summarizer" {
			t.Errorf("pass over %v, want summarizer", names)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the repaired rollout was never evaluated")
	}
}
