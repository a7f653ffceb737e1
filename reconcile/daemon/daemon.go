// Package daemon runs the reconciler as a long-lived process (`rollout run`): each rollout is evaluated
// on its own cron schedule, specs are re-read on every wake-up, and /healthz and /metrics are served.
//
// Time comes from injected functions (Now, After), so tests drive the schedule without sleeping.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// Reconciler is the loop the daemon drives; *reconcile.Loop implements it.
//
// Specs reads the specs of the default branch and writes nothing. Run is one pass over the named
// rollouts; its error is for the pass as a whole, a rollout's failure is in the report.
type Reconciler interface {
	Specs(ctx context.Context) (*rollouts.Set, error)
	Run(ctx context.Context, opts reconcile.RunOptions) (*reconcile.Report, error)
}

var _ Reconciler = (*reconcile.Loop)(nil)

// Defaults of the daemon's optional fields.
const (
	// DefaultSchedule applies to a spec without a schedule.
	DefaultSchedule = "*/15 * * * *"
	// DefaultPoll is the longest the daemon sleeps before reading the specs again.
	DefaultPoll = time.Minute
)

// Daemon evaluates each rollout on its own schedule until its context ends, then finishes the passes
// in flight and stops its HTTP server.
type Daemon struct {
	Reconciler Reconciler
	// Listen is the address of /healthz and /metrics, such as ":8080" or "127.0.0.1:0".
	Listen string
	Now    func() time.Time
	// After returns a channel that delivers once d has passed; nil uses time.After.
	After func(d time.Duration) <-chan time.Time
	// Poll bounds the sleep between two readings of the specs; default DefaultPoll.
	Poll time.Duration
	Log  *slog.Logger
	// AfterPass, when set, is called once a pass has ended: its outcome is on /metrics and its rollouts
	// may run again. Tests use it to wait for a pass instead of sleeping.
	AfterPass func(names []string)

	addr     chan net.Addr
	initOnce sync.Once
	registry *prometheus.Registry
	ticks    *prometheus.CounterVec
	duration prometheus.Histogram
	decision *prometheus.CounterVec

	mu      sync.Mutex
	running map[string]bool
	healthy error
}

func (d *Daemon) init() {
	d.initOnce.Do(func() {
		d.addr = make(chan net.Addr, 1)
		d.registry = prometheus.NewRegistry()
		d.ticks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollout_ticks_total", Help: "Reconcile passes, by result (ok: every rollout reconciled; failed: a rollout or the pass failed).",
		}, []string{"result"})
		d.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rollout_tick_duration_seconds", Help: "Duration of one reconcile pass.", Buckets: prometheus.DefBuckets,
		})
		d.decision = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollout_decisions_total", Help: "Decisions by rollout and decision; error counts failed evaluations.",
		}, []string{"rollout", "decision"})
		d.registry.MustRegister(d.ticks, d.duration, d.decision)
		d.running = map[string]bool{}
	})
}

// Registry is the daemon's metrics registry, served on /metrics.
func (d *Daemon) Registry() *prometheus.Registry { d.init(); return d.registry }

// Addr returns the address the HTTP server listens on, once it does (for tests listening on :0).
func (d *Daemon) Addr(ctx context.Context) (net.Addr, error) {
	d.init()
	select {
	case a := <-d.addr:
		d.addr <- a
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run serves /healthz and /metrics and evaluates rollouts on their schedules until ctx ends. Passes in
// flight when ctx ends run to completion (they are not cancelled: a rollback half-done is worse than a
// late exit); then the server shuts down and Run returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	d.init()
	if d.Now == nil {
		return errors.New("daemon: Now is not set")
	}
	ln, err := net.Listen("tcp", d.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", d.Listen, err)
	}
	d.addr <- ln.Addr()
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	d.log().Info("serving", "addr", ln.Addr().String())

	var inflight sync.WaitGroup
	d.schedule(ctx, &inflight)
	d.log().Info("stopping: finishing the passes in flight")
	inflight.Wait()

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	d.log().Info("stopped")
	return nil
}

// schedule is the daemon's main loop: read the specs, start the passes that are due, sleep until the
// next one is due (or Poll), until ctx ends.
func (d *Daemon) schedule(ctx context.Context, inflight *sync.WaitGroup) {
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	schedules := map[string]cron.Schedule{}
	last := map[string]time.Time{}
	start := d.Now()
	var announced time.Time
	for ctx.Err() == nil {
		now := d.Now()
		wake := now.Add(d.poll())
		set, err := d.Reconciler.Specs(ctx)
		d.setHealth(err)
		if err != nil {
			d.log().Error("read specs", "error", err)
		}
		var due []string
		if set != nil {
			for _, doc := range set.Documents {
				name, expr := doc.Spec.Name, doc.Spec.Schedule
				if expr == "" {
					expr = DefaultSchedule
				}
				sched, ok := schedules[expr]
				if !ok {
					if sched, err = parser.Parse(expr); err != nil {
						d.log().Error("bad schedule", "rollout", name, "schedule", expr, "error", err)
						continue
					}
					schedules[expr] = sched
				}
				from, ok := last[name]
				if !ok {
					from = start
				}
				next := sched.Next(from)
				if !next.After(now) {
					if d.claim(name) {
						due = append(due, name)
						last[name] = now
					}
					next = sched.Next(now)
				}
				if next.Before(wake) {
					wake = next
				}
			}
		}
		if len(due) > 0 {
			sort.Strings(due)
			d.log().Info("pass", "rollouts", due)
		}
		if !wake.Equal(announced) {
			// Say when the next pass is due, once per change, so that a quiet daemon reads as waiting.
			d.log().Info("next pass", "at", wake.UTC().Format(time.RFC3339), "in", wake.Sub(now).Round(time.Second).String())
			announced = wake
		}
		if len(due) > 0 {
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				d.pass(context.WithoutCancel(ctx), due)
			}()
		}
		select {
		case <-ctx.Done():
		case <-d.after(wake.Sub(now)):
		}
	}
}

// claim marks a rollout as being evaluated; false if it already is.
func (d *Daemon) claim(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running[name] {
		return false
	}
	d.running[name] = true
	return true
}

// pass reconciles the named rollouts once and records the outcome.
func (d *Daemon) pass(ctx context.Context, names []string) {
	defer func() {
		d.mu.Lock()
		for _, n := range names {
			delete(d.running, n)
		}
		d.mu.Unlock()
		if d.AfterPass != nil {
			d.AfterPass(names)
		}
	}()
	started := d.Now()
	rep, err := d.Reconciler.Run(ctx, reconcile.RunOptions{Only: names})
	d.duration.Observe(d.Now().Sub(started).Seconds())
	if err != nil {
		d.ticks.WithLabelValues("failed").Inc()
		d.setHealth(err)
		d.log().Error("reconcile", "rollouts", names, "error", err)
		return
	}
	d.setHealth(nil)
	result := "ok"
	for _, r := range rep.Results {
		decision := string(r.Decision)
		if r.Err != nil {
			result, decision = "failed", "error"
			d.log().Error("rollout failed", "rollout", r.Rollout, "error", r.Err)
		}
		d.decision.WithLabelValues(r.Rollout, decision).Inc()
	}
	d.ticks.WithLabelValues(result).Inc()
}

func (d *Daemon) setHealth(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.healthy = err
}

// handler serves /healthz (200 while the repository could be read on the last try, 503 otherwise) and
// /metrics.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		err := d.healthy
		d.mu.Unlock()
		if err != nil {
			// The error may name internals; the log has the detail.
			http.Error(w, "unhealthy: cannot read the repository", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
	return mux
}

func (d *Daemon) after(dur time.Duration) <-chan time.Time {
	if d.After == nil {
		return time.After(dur)
	}
	return d.After(dur)
}

func (d *Daemon) poll() time.Duration {
	if d.Poll <= 0 {
		return DefaultPoll
	}
	return d.Poll
}

func (d *Daemon) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
