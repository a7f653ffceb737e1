package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/internal/syncbuf"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/reconcile/notify"
	"github.com/rollout-dev/rollout/rollouts"
)

// t0 is when every test's rollouts entered their current stage.
var t0 = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

// specYAML is a rollout at stage 0 (5%) since t0. Its one rule rolls back a canary whose error rate is
// shown above 5%, and advances one shown below it after an hour and 100 requests per arm.
const specYAML = `apiVersion: rollout/v1
kind: Rollout
name: NAME
stable:
  model: claude-sonnet-4-5-20260301
  prompt: v3
canary:
  model: claude-sonnet-4-5-20260415
  prompt: v3
traffic:
  weight: 5   # set by the controller
stages:
  - {weight: 5, minDuration: 1h, minRequests: 100}
  - {weight: 25, minDuration: 1h, minRequests: 100}
  - {weight: 100, minDuration: 1h}
metrics:
  source: file:traffic/NAME.jsonl
analysis:
  rules:
    - {metric: error_rate, max: 0.05}
  onMetricsError: ON_ERROR
promotion:
  via: pull-request
  labels: [rollout]
rollback:
  notify: [{webhook: env:ROLLOUT_ROLLBACK_WEBHOOK}]
status:
  phase: Progressing
  stage: 0
  stageStartedAt: 2026-04-16T00:00:00Z
`

// progressing is the spec of rollout name at stage 0, with onMetricsError onError.
func progressing(name, onError string) string {
	return strings.NewReplacer("NAME", name, "ON_ERROR", onError).Replace(specYAML)
}

// pending is the spec of rollout name before the controller started it: no status, weight 0.
func pending(name string) string {
	s := progressing(name, "hold")
	s = s[:strings.Index(s, "status:")]
	return strings.Replace(s, "weight: 5   # set", "weight: 0   # set", 1)
}

// world is one repository with its traffic files, its webhook and a clock the test moves.
type world struct {
	t    *testing.T
	bare string
	// url is what the bot opens: the bare repository's path, or its smart-HTTP URL when srv is set.
	url     string
	srv     *gittest.Server
	traffic string
	hook    *webhook
	logs    *syncbuf.Buffer

	mu  sync.Mutex
	now time.Time
}

// newWorld makes a bare repository holding files (path to content). overHTTP serves it over smart HTTP.
func newWorld(t *testing.T, files map[string]string, overHTTP bool) *world {
	t.Helper()
	w := &world{t: t, bare: gittest.NewBare(t, files), traffic: t.TempDir(), hook: newWebhook(t), logs: &syncbuf.Buffer{},
		now: t0.Add(2 * time.Hour)}
	w.url = w.bare
	if overHTTP {
		w.srv = gittest.NewServer(t, filepath.Dir(w.bare))
		w.url = w.srv.URL + "/" + filepath.Base(w.bare)
	}
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) setNow(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = now
}

// remote opens the repository as a fresh process would.
func (w *world) remote(opts gitrepo.Options) *gitrepo.Remote {
	w.t.Helper()
	if opts.URL == "" {
		opts.URL = w.url
	}
	r, err := gitrepo.Open(context.Background(), opts)
	if err != nil {
		w.t.Fatalf("open %s: %v", w.url, err)
	}
	return r
}

// sources reads each spec's file: source from the world's traffic folder.
func (w *world) sources(spec *rollouts.Spec) (policy.Source, error) {
	return jsonl.Open(filepath.Join(w.traffic, strings.TrimPrefix(spec.Metrics.Source, "file:"))), nil
}

// loop is a `rollout reconcile` process over repo and forge with the real judge, the real gatekeeper,
// JSON Lines sources and the HTTP notifier posting to the world's webhook.
func (w *world) loop(repo reconcile.Repository, forge reconcile.Forge) *reconcile.Loop {
	return &reconcile.Loop{Repo: repo, Forge: forge, Sources: w.sources, Now: w.clock,
		Notifier: &notify.Dispatcher{Client: w.hook.srv.Client(), Getenv: w.hook.getenv, Timeout: 5 * time.Second},
		Log:      slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// localLoop is a loop over a fresh remote and its local forge.
func (w *world) localLoop() *reconcile.Loop {
	r := w.remote(gitrepo.Options{})
	return w.loop(r, &gitrepo.LocalForge{Remote: r, Out: io.Discard})
}

// writeTraffic writes an hour of traffic of rollout name from t0: 4,000 requests, 5% on the canary as
// the spec's stage sets (the judge checks the split), whose error rate is canaryErrors (the stable's is
// 1%).
func (w *world) writeTraffic(name string, canaryErrors float64) {
	w.t.Helper()
	w.writeTrafficFrom(name, t0, canaryErrors)
}

// writeTrafficFrom is writeTraffic for a stage that started at start.
func (w *world) writeTrafficFrom(name string, start time.Time, canaryErrors float64) {
	w.t.Helper()
	canary := synth.DefaultProfile("claude-sonnet-4-5-20260415")
	canary.ErrorRate = canaryErrors
	spec := synth.Spec(name, start)
	spec.Traffic.Weight = 5 // as the spec's first stage routes: the judge checks the split
	var buf bytes.Buffer
	err := synth.WriteJSONL(&buf, spec, synth.Options{Seed: 7, From: start.Add(time.Minute), To: start.Add(51 * time.Minute),
		PerHour: 4800, Stable: synth.DefaultProfile("claude-sonnet-4-5-20260301"), Canary: canary})
	if err != nil {
		w.t.Fatal(err)
	}
	w.writeFile("traffic/"+name+".jsonl", buf.Bytes())
}

// writeFile writes a file under the traffic folder.
func (w *world) writeFile(rel string, content []byte) {
	w.t.Helper()
	p := filepath.Join(w.traffic, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// git runs git in the bare repository.
func (w *world) git(args ...string) string {
	w.t.Helper()
	return gittest.Git(w.t, w.bare, args...)
}

// subjects lists the commit subjects of ref, newest first.
func (w *world) subjects(ref string) []string {
	w.t.Helper()
	return strings.Split(w.git("log", "--format=%s", ref), "\n")
}

// refs lists every ref of the repository with its commit.
func (w *world) refs() string {
	w.t.Helper()
	return w.git("for-each-ref", "--format=%(refname) %(objectname)")
}

// spec parses the spec of rollout name as it is on main.
func (w *world) spec(name string) *rollouts.Spec {
	w.t.Helper()
	src := w.git("show", "main:rollouts/"+name+".yaml")
	spec, problems := rollouts.Parse("rollouts/"+name+".yaml", []byte(src))
	if spec == nil {
		w.t.Fatalf("spec %s on main: %v", name, problems)
	}
	return spec
}

// tick runs one pass of l and fails the test if the pass as a whole failed.
func tick(t *testing.T, l *reconcile.Loop) *reconcile.Report {
	t.Helper()
	rep, err := l.Tick(context.Background())
	if err != nil {
		t.Fatalf("tick: %v", err)
	}
	return rep
}

// result returns the result of rollout name in rep.
func result(t *testing.T, rep *reconcile.Report, name string) reconcile.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Rollout == name {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", name, rep.Results)
	return reconcile.Result{}
}

// webhook is a loopback notification receiver. Its URL holds a secret path, as Slack's do.
type webhook struct {
	srv    *httptest.Server
	secret string

	mu     sync.Mutex
	events []reconcile.Event
	bodies []string
	// status, when not zero, is answered instead of 204.
	status int
}

func newWebhook(t *testing.T) *webhook {
	h := &webhook{secret: "T0SECRET/B0SECRET/XXhooksecretXX"}
	h.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.status != 0 {
			rw.WriteHeader(h.status)
			return
		}
		var ev reconcile.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook got %q: %v", body, err)
		}
		h.events = append(h.events, ev)
		h.bodies = append(h.bodies, string(body))
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// url is the webhook's secret URL, which only the environment holds.
func (h *webhook) url() string { return h.srv.URL + "/services/" + h.secret }

func (h *webhook) getenv(name string) string {
	if name == "ROLLOUT_ROLLBACK_WEBHOOK" {
		return h.url()
	}
	return ""
}

func (h *webhook) received() []reconcile.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]reconcile.Event(nil), h.events...)
}

func (h *webhook) fail(status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = status
}

// pushHook is a Repository that runs before ahead of its At-th Push (the first when At is 0); it stands
// for whatever happens in the world between the bot's fetch and its push.
type pushHook struct {
	reconcile.Repository
	At     int
	before func(req reconcile.PushRequest)

	mu     sync.Mutex
	pushes int
}

func (p *pushHook) Push(ctx context.Context, req reconcile.PushRequest) (string, error) {
	p.mu.Lock()
	p.pushes++
	fire := p.pushes == max(p.At, 1)
	p.mu.Unlock()
	if fire {
		p.before(req)
	}
	return p.Repository.Push(ctx, req)
}
