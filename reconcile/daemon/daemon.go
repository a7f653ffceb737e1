// Package daemon runs the reconciler as a long-lived process (`rollout run`): each rollout is evaluated
// on its own cron schedule, specs are re-read on every wake-up, and /healthz and /metrics are served.
// /healthz, /readyz and /livez have a listener of their own (HealthListen), so that no client of /metrics
// can starve the probes that decide whether the daemon is restarted. /healthz and /readyz say whether
// the repository could be read on the last try; /livez whether the schedule itself goes on, since a
// restart cures a stuck daemon but not a git outage.
//
// A rollout the daemon has seen keeps its place in the schedule when its spec turns invalid (a bad edit,
// a second file taking its name): while its canary holds traffic that is an alert, logged, counted on
// /metrics (rollout_invalid_spec_alerts_total) and sent to the notification targets its last valid spec
// named, because nothing judges that canary until a human repairs the file.
//
// The HTTP server is bounded: read-header, read, write and idle timeouts, header bytes, and at most
// MaxConns connections at once, of which idle keep-alive ones are closed, longest idle first, when a new
// client needs the slot; so idle or slow clients cannot exhaust memory or file descriptors, stall the
// reconciler, or hold every slot. It listens on loopback unless told otherwise.
//
// Time comes from injected functions (Now, After), so tests drive the schedule without sleeping.
//
// It belongs to the reconcile room: it runs reconcile's loop on a schedule; cmd wires it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
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
	// DefaultStall is how long beyond Poll the schedule may go without progress (a reading of the specs
	// stuck past every timeout of git's exchanges, which are 2 minutes each) before /livez fails.
	DefaultStall = 15 * time.Minute
	// DefaultListen is loopback: /metrics is for a local scraper or a sidecar. Exposing it is a choice
	// made with --listen (":9090", or a pod IP) behind a network policy.
	DefaultListen = "127.0.0.1:9090"
	// DefaultHealthListen is the address of /healthz and /readyz alone, on loopback; a pod's probes
	// need --health-addr on its IP (":9091").
	DefaultHealthListen = "127.0.0.1:9091"
	// healthMaxConns bounds the health listener's connections; probes use one at a time.
	healthMaxConns = 16
	// DefaultMaxConns bounds the connections served at once; more wait in the kernel's backlog.
	DefaultMaxConns = 64
	// DefaultReadHeaderTimeout, DefaultIdleTimeout and DefaultWriteTimeout bound a client's request
	// headers, its keep-alive silence and the time to answer it.
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
)

// InvalidSpecDecision is the decision of the event sent when a live rollout's spec turns invalid.
const InvalidSpecDecision = "invalid-spec"

// Notifier delivers an alert to a rollout's notification targets; reconcile.Notifier implements it.
// It is not idempotent; a failed delivery is retried on the next reading of the specs.
type Notifier interface {
	Notify(ctx context.Context, targets []rollouts.Notify, ev reconcile.Event) error
}

// Daemon evaluates each rollout on its own schedule until its context ends, then finishes the passes
// in flight and stops its HTTP server.
type Daemon struct {
	Reconciler Reconciler
	// Listen is the address of /healthz and /metrics, such as "127.0.0.1:9090" or "127.0.0.1:0";
	// empty means DefaultListen.
	Listen string
	// HealthListen is the address of /healthz, /readyz and /livez alone, such as "127.0.0.1:9091"; empty means
	// DefaultHealthListen. Its server has the same bounds as Listen's, with its own connection slots.
	HealthListen string
	// MaxConns bounds the HTTP connections served at once (0: DefaultMaxConns). ReadHeaderTimeout,
	// IdleTimeout and WriteTimeout bound each one (0: their defaults).
	MaxConns          int
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	WriteTimeout      time.Duration
	// Notifier, when set, receives the alert for a live rollout whose spec turned invalid, addressed to
	// the notification targets of its last valid spec.
	Notifier Notifier
	Now      func() time.Time
	// After returns a channel that delivers once d has passed; nil uses time.After.
	After func(d time.Duration) <-chan time.Time
	// Poll bounds the sleep between two readings of the specs; default DefaultPoll.
	Poll time.Duration
	// Stall is how long beyond Poll the schedule may make no progress before /livez answers 503;
	// default DefaultStall.
	Stall time.Duration
	Log   *slog.Logger
	// AfterPass, when set, is called once a pass has ended: its outcome is on /metrics and its rollouts
	// may run again. Tests use it to wait for a pass instead of sleeping.
	AfterPass func(names []string)

	addr       chan net.Addr
	healthAddr chan net.Addr
	initOnce   sync.Once
	registry   *prometheus.Registry
	ticks      *prometheus.CounterVec
	duration   prometheus.Histogram
	decision   *prometheus.CounterVec
	invalid    *prometheus.CounterVec
	badFiles   prometheus.Gauge
	conns      prometheus.Gauge
	panics     prometheus.Counter
	rollouts   *rolloutGauges

	mu sync.Mutex
	// mainListener is the main listener once Run serves it (guarded by mu).
	mainListener *fairListener
	running      map[string]bool
	// healthy is the outcome of the latest try to read the repository, made at healthAt.
	healthy  error
	healthAt time.Time
	// progress is when the schedule last went on: began a reading of the specs, or went to sleep.
	progress time.Time
}

func (d *Daemon) init() {
	d.initOnce.Do(func() {
		d.addr = make(chan net.Addr, 1)
		d.healthAddr = make(chan net.Addr, 1)
		d.registry = prometheus.NewRegistry()
		d.ticks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollout_ticks_total", Help: "Reconcile passes, by result (ok: every rollout reconciled; failed: a rollout or the pass failed; skipped: a rollout was due while its previous pass still ran).",
		}, []string{"result"})
		d.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rollout_tick_duration_seconds", Help: "Duration of one reconcile pass.", Buckets: prometheus.DefBuckets,
		})
		d.decision = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollout_decisions_total", Help: "Decisions by rollout and decision; error counts failed evaluations.",
		}, []string{"rollout", "decision"})
		d.invalid = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollout_invalid_spec_alerts_total",
			Help: "Alerts raised because the spec of a rollout whose canary holds traffic turned invalid (once per distinct problem).",
		}, []string{"rollout"})
		d.badFiles = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rollout_invalid_specs",
			Help: "Spec files that failed to load at the last reading of the specs; their rollouts are not judged until fixed.",
		})
		d.conns = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rollout_http_connections", Help: "HTTP connections of /healthz and /metrics open now.",
		})
		d.panics = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rollout_panics_total",
			Help: "Panics caught in a reconcile pass or a reading of the specs (an internal error: the log has the stack); the pass counts as failed.",
		})
		d.rollouts = newRolloutGauges(d.now)
		d.registry.MustRegister(d.panics, d.ticks, d.duration, d.decision, d.invalid, d.badFiles, d.conns, d.rollouts)
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

// HealthAddr returns the address /healthz and /readyz listen on, once they do.
func (d *Daemon) HealthAddr(ctx context.Context) (net.Addr, error) {
	d.init()
	select {
	case a := <-d.healthAddr:
		d.healthAddr <- a
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
	listen := d.Listen
	if listen == "" {
		listen = DefaultListen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	healthListen := d.HealthListen
	if healthListen == "" {
		healthListen = DefaultHealthListen
	}
	healthLn, err := net.Listen("tcp", healthListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen %s (health): %w", healthListen, err)
	}
	d.addr <- ln.Addr()
	d.healthAddr <- healthLn.Addr()
	srv := d.server(ln, orDefault(d.MaxConns, DefaultMaxConns), d.handler(), d.conns)
	d.mu.Lock()
	d.mainListener = srv.ln
	d.mu.Unlock()
	health := d.server(healthLn, healthMaxConns, d.healthHandler(), nil)
	healthServed := make(chan error, 1)
	go func() { healthServed <- health.srv.Serve(health.ln) }()
	served := make(chan error, 1)
	go func() { served <- srv.srv.Serve(srv.ln) }()
	d.log().Info("serving", "addr", ln.Addr().String(), "health", healthLn.Addr().String())

	var inflight sync.WaitGroup
	d.schedule(ctx, &inflight)
	d.log().Info("stopping: finishing the passes in flight")
	inflight.Wait()

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := errors.Join(srv.srv.Shutdown(shutdownCtx), health.srv.Shutdown(shutdownCtx)); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	for _, ch := range []chan error{served, healthServed} {
		if err := <-ch; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	d.log().Info("stopped")
	return nil
}

// knownRollout is what the daemon remembers of a rollout from its last valid spec, so that the rollout
// keeps its schedule and its alert targets while its file is broken.
type knownRollout struct {
	file     string
	schedule string
	notify   []rollouts.Notify
	// live is true while the canary holds traffic (Progressing or Paused, or a weight or shadow above 0).
	live   bool
	weight int
	// invalid holds the problems of the file while it fails to load ("" when it loads); notified says
	// whether the alert for those problems was delivered, and owed names the targets that still wait
	// for it (nil: every target).
	invalid  string
	problems []string
	notified bool
	owed     []string
}

// schedule is the daemon's main loop: read the specs, start the passes that are due, sleep until the
// next one is due (or Poll), until ctx ends.
func (d *Daemon) schedule(ctx context.Context, inflight *sync.WaitGroup) {
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	schedules := map[string]cron.Schedule{}
	// last is, for each rollout, when it was last due, or when the daemon first saw it: a rollout is
	// first due at its schedule's next time after it appeared (as cron runs a line added to a crontab),
	// not at once because a time of its schedule passed before it was merged.
	last := map[string]time.Time{}
	known := map[string]*knownRollout{}
	// unscheduled holds the problems of each file that fails to load and names no rollout the daemon
	// knows, as last logged.
	unscheduled := map[string]string{}
	// announced is the last "next pass" logged, so that it is said once per change.
	announced := ""
	for ctx.Err() == nil {
		// Schedules are cron in UTC (CRON_TZ= names another zone), whatever the machine's zone:
		// robfig/cron reads an expression without CRON_TZ in the zone of the time it is given.
		now := d.Now().UTC()
		d.progressed(now)
		wake := now.Add(d.poll())
		set, err := d.specs(ctx)
		if ctx.Err() != nil {
			// Told to stop during the reading (which failed, or is stale): start nothing more.
			return
		}
		d.setHealth(err, now)
		if err != nil {
			d.log().Error("read specs", "error", err)
		}
		if set != nil {
			d.remember(ctx, set, known, unscheduled)
			d.rollouts.specs(set, func(name string) bool { return known[name] != nil })
		}
		for name := range last {
			if known[name] == nil {
				delete(last, name) // its spec is gone: should it come back, it is new again
			}
		}
		names := make([]string, 0, len(known))
		for name := range known {
			names = append(names, name)
		}
		sort.Strings(names)
		var due []string
		// nextDue is when the next pass is due, and nextNames the rollouts due then.
		var nextDue time.Time
		var nextNames []string
		for _, name := range names {
			k := known[name]
			expr := k.schedule
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
				from, last[name] = now, now
			}
			next := sched.Next(from)
			if !next.After(now) {
				switch {
				case k.invalid != "":
					// Not evaluated, and said so at every due time, not only once.
					last[name] = now
					d.decision.WithLabelValues(name, "error").Inc()
					d.ticks.WithLabelValues("failed").Inc()
					d.log().Error("rollout not evaluated: its spec is invalid", "rollout", name, "file", k.file,
						"problems", k.problems)
				case d.claim(name):
					due = append(due, name)
					last[name] = now
				default:
					// Its previous pass is still running: this due time is skipped, not queued, so a
					// pass that never ends holds one goroutine, not one more per due time.
					last[name] = now
					d.ticks.WithLabelValues("skipped").Inc()
					d.log().Warn("pass skipped: the rollout's previous pass is still running", "rollout", name)
				}
				next = sched.Next(now)
			}
			if next.Before(wake) {
				wake = next
			}
			switch {
			case nextDue.IsZero() || next.Before(nextDue):
				nextDue, nextNames = next, []string{name}
			case next.Equal(nextDue):
				nextNames = append(nextNames, name)
			}
		}
		if len(due) > 0 {
			sort.Strings(due)
			d.log().Info("pass", "rollouts", due)
		}
		// Say when the next pass is due (a rollout's schedule, not the next reading of the specs), once
		// per change, so that a quiet daemon reads as waiting.
		if nextDue.IsZero() {
			if announced != "none" {
				d.log().Info("no rollout to schedule; reading the specs again", "every", d.poll().String())
				announced = "none"
			}
		} else if key := nextDue.Format(time.RFC3339) + strings.Join(nextNames, ","); key != announced {
			d.log().Info("next pass", "at", nextDue.Format(time.RFC3339), "in", nextDue.Sub(now).Round(time.Second).String(), "rollouts", nextNames)
			announced = key
		}
		if len(due) > 0 {
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				d.pass(context.WithoutCancel(ctx), due)
			}()
		}
		d.progressed(d.Now())
		select {
		case <-ctx.Done():
		case <-d.after(wake.Sub(now)):
		}
	}
}

// remember updates what the daemon knows of each rollout from a fresh reading of the specs. A rollout
// it knew whose file now fails to load stays known, with its problems; one whose file is gone (or loads
// as another rollout) is forgotten. A file that fails to load and holds no rollout the daemon knows (one
// added broken) has no place in the schedule: it is logged once per distinct set of problems, recorded
// in unscheduled, and counted on /metrics with the others while it lasts.
func (d *Daemon) remember(ctx context.Context, set *rollouts.Set, known map[string]*knownRollout, unscheduled map[string]string) {
	present := map[string]bool{}
	for _, doc := range set.Documents {
		spec := doc.Spec
		present[spec.Name] = true
		k := known[spec.Name]
		if k == nil {
			k = &knownRollout{}
			known[spec.Name] = k
		}
		if k.invalid != "" {
			d.log().Info("spec is valid again", "rollout", spec.Name, "file", doc.Path)
		}
		*k = knownRollout{file: doc.Path, schedule: spec.Schedule, notify: spec.Targets(rollouts.EventAlert), live: holdsTraffic(spec),
			weight: spec.Traffic.Weight}
	}
	problems := map[string][]string{}
	for _, p := range set.Errors() {
		problems[p.File] = append(problems[p.File], p.Error())
	}
	d.badFiles.Set(float64(len(problems)))
	names := make([]string, 0, len(known))
	for name := range known {
		if !present[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		k := known[name]
		msgs := problems[k.file]
		if len(msgs) == 0 {
			d.log().Warn("rollout's spec is gone; no longer scheduled", "rollout", name, "file", k.file)
			delete(known, name)
			continue
		}
		d.invalidSpec(ctx, name, k, msgs)
	}
	d.unknownInvalid(problems, known, unscheduled)
}

// unknownInvalid logs the files that fail to load and hold no known rollout, once per distinct set of
// problems, and forgets those that load again or are gone.
func (d *Daemon) unknownInvalid(problems map[string][]string, known map[string]*knownRollout, unscheduled map[string]string) {
	claimed := map[string]bool{}
	for _, k := range known {
		claimed[k.file] = true
	}
	files := make([]string, 0, len(problems))
	for file := range problems {
		if !claimed[file] {
			files = append(files, file)
		}
	}
	sort.Strings(files)
	seen := map[string]bool{}
	for _, file := range files {
		seen[file] = true
		key := strings.Join(problems[file], "\n")
		if unscheduled[file] == key {
			continue
		}
		unscheduled[file] = key
		d.log().Error("spec is invalid: its rollout is not scheduled until the file is fixed", "file", file, "problems", problems[file])
	}
	for file := range unscheduled {
		if !seen[file] {
			delete(unscheduled, file)
		}
	}
}

// invalidSpec reports a known rollout whose file fails to load: once per distinct set of problems in
// the log and, for a live rollout, on /metrics; and to the last valid spec's notification targets until
// delivered.
func (d *Daemon) invalidSpec(ctx context.Context, name string, k *knownRollout, msgs []string) {
	key := strings.Join(msgs, "\n")
	if k.invalid != key {
		k.invalid, k.problems, k.notified, k.owed = key, msgs, false, nil
		if k.live {
			d.invalid.WithLabelValues(name).Inc()
			d.log().Error("the spec of a live rollout is invalid: its canary is not judged, nor rolled back, until the file is fixed",
				"rollout", name, "file", k.file, "weight", k.weight, "problems", msgs)
		} else {
			d.log().Warn("rollout skipped: its spec is invalid", "rollout", name, "file", k.file, "problems", msgs)
		}
	}
	if !k.live || k.notified || d.Notifier == nil || len(k.notify) == 0 {
		return
	}
	reasons := append([]string{fmt.Sprintf("the spec %s no longer loads; the canary at %d%% is not judged until it is fixed", k.file, k.weight)}, msgs...)
	ev := reconcile.Event{Rollout: name, Event: rollouts.EventAlert, Decision: InvalidSpecDecision, From: k.weight, To: k.weight, Reasons: reasons}
	err := d.Notifier.Notify(ctx, reconcile.OwedTargets(k.notify, k.owed), ev)
	if err == nil {
		k.notified = true
		return
	}
	// Retried at the next reading, to the targets that did not get it alone: the others are not told
	// again every --poll; a target that is not configured is not retried.
	owed, named := reconcile.FailedTargets(err)
	if named && len(owed) == 0 {
		k.notified = true
		d.log().Warn("alert not delivered: no target is configured here", "rollout", name, "error", err)
		return
	}
	if named {
		k.owed = owed
	}
	d.log().Warn("alert not delivered; retrying at the next reading", "rollout", name, "error", err)
}

// holdsTraffic reports whether a rollout's canary serves users now, so that losing its spec matters.
func holdsTraffic(spec *rollouts.Spec) bool {
	if spec.Traffic.Weight > 0 || spec.Traffic.Shadow > 0 {
		return true
	}
	return spec.Status != nil && (spec.Status.Phase == rollouts.Progressing || spec.Status.Phase == rollouts.Paused)
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
	rep, err := d.run(ctx, names)
	d.duration.Observe(d.Now().Sub(started).Seconds())
	if err != nil {
		d.ticks.WithLabelValues("failed").Inc()
		d.setHealth(err, started)
		d.log().Error("reconcile", "rollouts", names, "error", err)
		return
	}
	d.setHealth(nil, started)
	d.rollouts.passed(rep, d.Now())
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

// run runs one pass of the named rollouts. A panic outside a single rollout (the forge's listing, the
// publishing of stale rollouts), which the loop's own isolation of each rollout does not catch, becomes
// the pass's error, logged with its stack and counted: it fails this pass as any failed pass does, and
// neither the process nor the other passes in flight end with it.
func (d *Daemon) run(ctx context.Context, names []string) (rep *reconcile.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.panics.Inc()
			d.log().Error("panic in a reconcile pass", "rollouts", names, "panic", p, "stack", string(debug.Stack()))
			rep, err = nil, fmt.Errorf("internal error: %v", p)
		}
	}()
	return d.Reconciler.Run(ctx, reconcile.RunOptions{Only: names})
}

// specs reads the specs; a panic becomes the reading's error, as in run, so that the schedule goes on.
func (d *Daemon) specs(ctx context.Context) (set *rollouts.Set, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.panics.Inc()
			d.log().Error("panic reading the specs", "panic", p, "stack", string(debug.Stack()))
			set, err = nil, fmt.Errorf("internal error: %v", p)
		}
	}()
	return d.Reconciler.Specs(ctx)
}

// boundedServer is an HTTP server and the fair, bounded listener it serves.
type boundedServer struct {
	srv *http.Server
	ln  *fairListener
}

// server returns the bounded server of handler on ln: at most maxConns connections, the longest-idle
// keep-alive closed for a newcomer, and every phase of a request timed; gauge, when set, counts the
// open connections.
func (d *Daemon) server(ln net.Listener, maxConns int, handler http.Handler, gauge prometheus.Gauge) boundedServer {
	fair := newFairListener(ln, maxConns)
	return boundedServer{ln: fair, srv: &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: orDefault(d.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(d.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		WriteTimeout:      orDefault(d.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(d.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    8 << 10,
		ConnState: func(c net.Conn, state http.ConnState) {
			fair.track(c, state)
			if gauge == nil {
				return
			}
			switch state {
			case http.StateNew:
				gauge.Inc()
			case http.StateClosed, http.StateHijacked:
				gauge.Dec()
			}
		},
	}}
}

// setHealth records the outcome of a try to read the repository begun at at, unless a later try's is
// known: a pass that read the repository before a failed reading and ends after it must not make the
// probes say the repository can be read.
func (d *Daemon) setHealth(err error, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if at.Before(d.healthAt) {
		return
	}
	d.healthy, d.healthAt = err, at
}

// handler serves /healthz (200 while the repository could be read on the last try, 503 otherwise) and
// /metrics.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.serveHealth)
	mux.HandleFunc("GET /livez", d.serveLive)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
	return mux
}

// healthHandler serves the health listener: /healthz, /readyz and /livez, nothing else.
func (d *Daemon) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.serveHealth)
	mux.HandleFunc("GET /readyz", d.serveHealth)
	mux.HandleFunc("GET /livez", d.serveLive)
	return mux
}

// progressed records that the schedule went on at at.
func (d *Daemon) progressed(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.progress = at
}

// serveLive answers 200 while the schedule goes on, whatever git, GitHub or the metrics sources do (a
// restart cures none of them), and 503 once it has made no progress for longer than Poll and Stall: a
// daemon that a restart may cure.
func (d *Daemon) serveLive(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	last := d.progress
	d.mu.Unlock()
	if !last.IsZero() && d.now().Sub(last) > d.poll()+orDefault(d.Stall, DefaultStall) {
		http.Error(w, "stalled: the schedule has made no progress since "+last.UTC().Format(time.RFC3339), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// serveHealth answers 200 while the repository could be read on the last try, 503 otherwise.
func (d *Daemon) serveHealth(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	err := d.healthy
	d.mu.Unlock()
	if err != nil {
		// The error may name internals; the log has the detail.
		http.Error(w, "unhealthy: cannot read the repository", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// now is Now, or the wall clock when it is not set.
func (d *Daemon) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
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
