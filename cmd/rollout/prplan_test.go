package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
)

var updatePRPlan = flag.Bool("update-prplan", false, "rewrite testdata/pr-plan-unreachable.md")

// prSpec is a running rollout as the default branch holds it, with production metrics in a file the
// runner's checkout does not have.
const prSpec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable:
  model: claude-sonnet-4-5-20260301
  prompt: v3
canary:
  model: claude-sonnet-4-5-20260415
  prompt: v3
traffic:
  weight: 5
assignment:
  key: user_id
stages:
  - {weight: 5, minDuration: 4h, minRequests: 200}
  - {weight: 25, minDuration: 8h, minRequests: 200}
  - {weight: 100, minDuration: 24h}
metrics:
  source: SOURCE
analysis:
  rules:
    - {metric: error_rate, max: 0.02, maxIncrease: 50%}
    - {metric: latency_p95_ms, maxIncrease: 30%}
rollback:
  notify: [{slack: env:ROLLOUT_SLACK_WEBHOOK_URL}]
status:
  phase: Progressing
  stage: 0
  stageStartedAt: 2026-04-16T06:00:00Z
`

// prCheckout is a clone of a repository whose main holds base, on a branch "pr" whose head holds head.
func prCheckout(t *testing.T, base, head string) string {
	t.Helper()
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": base})
	c := gittest.Clone(t, bare)
	c.Git("checkout", "--quiet", "-b", "pr")
	c.Write(map[string]string{"rollouts/summarizer.yaml": head})
	c.Commit("tighten the error rule, keep VIPs on stable")
	return c.Dir
}

func runPlan(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), Getenv: func(k string) string { return env[k] },
		Now: func() time.Time { return time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC) }}
	code := app.Main(args)
	return code, out.String(), errOut.String()
}

// TestPRPlanWithMetricsUnreachable (issue 21 item 3): in a hosted runner a file: source is not in the
// checkout; the plan of a pull request that changes a running rollout says what changes for which
// users, the stages, rules, source and targets, says plainly that production metrics are not reachable
// here, and exits 0.
func TestPRPlanWithMetricsUnreachable(t *testing.T) {
	base := strings.Replace(prSpec, "SOURCE", "file:traffic/summarizer.jsonl", 1)
	head := strings.Replace(base, "max: 0.02,", "max: 0.01,", 1)
	head = strings.Replace(head, "  key: user_id\n", "  key: user_id\n  exclude: [\"vip-*\"]\n", 1)
	dir := prCheckout(t, base, head)
	code, out, errOut := runPlan(t, nil, "plan", "--repo", dir, "--base", "main", "--format", "markdown")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"What this pull request changes",
		"rules: error_rate at most 0.02, at most +50% over stable; latency_p95_ms at most +30% over stable → error_rate at most 0.01",
		"always stable: vip-*",
		"5% of users by user_id get the canary now",
		"stages: 5% (≥4h, ≥200 requests an arm) → 25% (≥8h, ≥200 requests an arm) → 100% (≥1d)",
		"metrics: file:traffic/summarizer.jsonl",
		"notifies: slack env:ROLLOUT_SLACK_WEBHOOK_URL",
		"production metrics are not reachable from this runner",
		"the metrics file traffic/summarizer.jsonl is not in this checkout",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan does not say %q", want)
		}
	}
	if strings.Contains(out, "**failed**") {
		t.Errorf("the plan reports a failure:\n%s", out)
	}
	golden := filepath.Join("testdata", "pr-plan-unreachable.md")
	if *updatePRPlan {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	// The heading holds the commit, which differs from run to run.
	if trim := func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return rest }; trim(string(want)) != trim(out) {
		t.Errorf("plan differs from %s (-update-prplan to rewrite):\n%s", golden, out)
	}

	// The same with -o json: no error, exit 0.
	code, jsonOut, _ := runPlan(t, nil, "plan", "--repo", dir, "--base", "main", "-o", "json")
	if code != exitOK || !strings.Contains(jsonOut, `"error": null`) && !strings.Contains(jsonOut, `"error":null`) {
		t.Errorf("plan -o json: exit %d\n%s", code, jsonOut)
	}
}

// TestPRPlanDoesNotContactASourceThePRChanged (issue 22 item 1): a pull request that points a running
// rollout's source at another host, or changes a rule's query, gets a plan that does not contact it,
// even with an allowed name; the plan says so and exits 0. An unchanged source is read as before.
func TestPRPlanDoesNotContactASourceThePRChanged(t *testing.T) {
	attacker := listen(t)
	legit := listen(t)
	env := map[string]string{"ROLLOUT_CH_PASS": "the-real-password"}
	base := strings.Replace(prSpec, "SOURCE", "clickhouse://reader:env:ROLLOUT_CH_PASS@"+legit.ln.Addr().String()+"/db", 1)
	for name, head := range map[string]string{
		"host":  strings.Replace(base, legit.ln.Addr().String(), attacker.ln.Addr().String(), 1),
		"query": strings.Replace(base, "{metric: latency_p95_ms, maxIncrease: 30%}", `{metric: latency_p95_ms, maxIncrease: 30%, query: "SELECT 1"}`, 1),
		"user":  strings.Replace(base, "reader:", "admin:", 1),
	} {
		dir := prCheckout(t, base, head)
		code, out, errOut := runPlan(t, env, "plan", "--repo", dir, "--base", "main", "--format", "markdown")
		if code != exitOK || !strings.Contains(out, "metrics not read") || !strings.Contains(out, "this pull request changes") {
			t.Errorf("%s: exit %d\n%s\n%s", name, code, out, errOut)
		}
		if strings.Contains(out+errOut, "the-real-password") {
			t.Errorf("%s: the password reached the output", name)
		}
	}
	if n, _ := attacker.connections(); n != 0 {
		t.Errorf("the host the pull request chose got %d connections", n)
	}
	if n, _ := legit.connections(); n != 0 {
		t.Errorf("a changed query reached the real source (%d connections)", n)
	}
	// Unchanged: the source is read (the listener answers nothing, so the plan says it is unreachable).
	dir := prCheckout(t, base, strings.Replace(base, "max: 0.02,", "max: 0.01,", 1))
	code, out, _ := runPlan(t, env, "plan", "--repo", dir, "--base", "main")
	if n, _ := legit.connections(); n == 0 {
		t.Errorf("an unchanged source was not contacted (exit %d):\n%s", code, out)
	}
	// A base branch the checkout does not have: nothing is contacted.
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": base})
	c := gittest.Clone(t, bare)
	before, _ := legit.connections()
	code, out, _ = runPlan(t, env, "plan", "--repo", c.Dir, "--base", "release")
	if after, _ := legit.connections(); after != before || code != exitOK || !strings.Contains(out, "is not in this checkout") {
		t.Errorf("unknown base: %d new connections, exit %d\n%s", after-before, code, out)
	}
}

// TestPRPlanWithARefusedConnection: a source the runner cannot connect to (nothing listens) is a note
// of the pull request's plan, exit 0; the same outside a pull request's plan is a failure, exit 1.
func TestPRPlanWithARefusedConnection(t *testing.T) {
	ln := listen(t)
	addr := ln.ln.Addr().String()
	ln.ln.Close() // now refused
	for _, src := range []string{"prometheus:http://" + addr, "clickhouse://reader@" + addr + "/db", "postgres://reader@" + addr + "/db?sslmode=disable"} {
		base := strings.Replace(prSpec, "SOURCE", src, 1)
		dir := prCheckout(t, base, strings.Replace(base, "max: 0.02,", "max: 0.01,", 1))
		code, out, errOut := runPlan(t, nil, "plan", "--repo", dir, "--base", "main")
		if code != exitOK || !strings.Contains(out, "production metrics are not reachable from this runner") {
			t.Errorf("%s: exit %d\n%s\n%s", src, code, out, errOut)
		}
		if code, _, _ := runPlan(t, nil, "plan", "--repo", dir); code != exitFailed {
			t.Errorf("%s: plan of the default branch: exit %d, want %d", src, code, exitFailed)
		}
	}
}

// TestPRPlanWithoutTheSourcesSecret: the pull-request workflow gets no secret (docs/github.md), so a
// source whose password is env:ROLLOUT_… finds it unset there. The plan says the metrics are not
// reachable from this runner and exits 0, never contacting the source; the reconciler, which has the
// secret, reads it. Outside a pull request's plan an unset password still fails the run.
func TestPRPlanWithoutTheSourcesSecret(t *testing.T) {
	src := listen(t)
	addr := src.ln.Addr().String()
	for _, source := range []string{"clickhouse://rollout@" + addr + "/default?password=env:ROLLOUT_CLICKHOUSE_PASSWORD",
		"postgres://reader:env:ROLLOUT_PG_PASSWORD@" + addr + "/telemetry"} {
		base := strings.Replace(prSpec, "SOURCE", source, 1)
		dir := prCheckout(t, base, strings.Replace(base, "max: 0.02,", "max: 0.01,", 1))
		code, out, errOut := runPlan(t, nil, "plan", "--repo", dir, "--base", "main")
		if code != exitOK || !strings.Contains(out, "production metrics are not reachable from this runner") || !strings.Contains(out, "is not set") {
			t.Errorf("%s: exit %d\n%s\n%s", source, code, out, errOut)
		}
		if code, _, _ := runPlan(t, nil, "plan", "--repo", dir); code != exitFailed {
			t.Errorf("%s: plan of the default branch: exit %d, want %d", source, code, exitFailed)
		}
	}
	if n, _ := src.connections(); n != 0 {
		t.Errorf("the source got %d connections without its password", n)
	}
}

// TestPRPlanDoesNotCallAGateWebhookThePRChose: a pull request that adds a rollout with a webhook gate,
// points a running rollout's gate at another host or adds a gate gets a plan that does not POST to it
// (the runner would otherwise call any host the pull request names, inside a self-hosted runner's
// network too, and quote its answer in the plan comment); the plan says so and exits 0. A gate the base
// branch already calls is called as before.
func TestPRPlanDoesNotCallAGateWebhookThePRChose(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "INTERNAL-ANSWER")
	}))
	t.Cleanup(srv.Close)
	base := strings.Replace(prSpec, "SOURCE", "file:traffic/summarizer.jsonl", 1)
	gated := func(spec, path string) string {
		return strings.Replace(spec, "{weight: 25, minDuration: 8h, minRequests: 200}",
			`{weight: 25, minDuration: 8h, minRequests: 200, gate: {webhook: "`+srv.URL+path+`"}}`, 1)
	}
	pendingSpec := strings.Replace(strings.Replace(prSpec, "SOURCE", "file:traffic/new.jsonl", 1), "name: summarizer", "name: newcomer", 1)
	pendingSpec = strings.Replace(pendingSpec, "{weight: 5, minDuration: 4h, minRequests: 200}",
		`{weight: 5, minDuration: 4h, minRequests: 200, gate: {webhook: "`+srv.URL+`/new"}}`, 1)
	pendingSpec = pendingSpec[:strings.Index(pendingSpec, "status:")]
	for _, tt := range []struct {
		name, base, head, path string
		called                 bool
	}{
		{"a new rollout's gate", base, pendingSpec, "/new", false},
		{"a gate added", base, gated(base, "/added"), "/added", false},
		{"a gate moved", gated(base, "/legit"), gated(base, "/moved"), "/moved", false},
		{"a gate kept", gated(base, "/kept"), strings.Replace(gated(base, "/kept"), "max: 0.02,", "max: 0.01,", 1), "/kept", true},
	} {
		dir := prCheckout(t, tt.base, tt.head)
		code, out, errOut := runPlan(t, nil, "plan", "--repo", dir, "--base", "main", "--format", "markdown")
		mu.Lock()
		n := calls[tt.path]
		mu.Unlock()
		if code != exitOK {
			t.Errorf("%s: exit %d\n%s\n%s", tt.name, code, out, errOut)
		}
		if called := n > 0; called != tt.called {
			t.Errorf("%s: the gate webhook got %d calls, want called %t\n%s", tt.name, n, tt.called, out)
		}
		if !tt.called && strings.Contains(out, "INTERNAL-ANSWER") {
			t.Errorf("%s: the plan quotes the answer of a host the pull request chose:\n%s", tt.name, out)
		}
		// A pending rollout's hold lists its gate; a running one's lists the unreachable metrics first.
		if tt.path == "/new" && !strings.Contains(out, "gate webhook not called: the rollout is new in this pull request") {
			t.Errorf("%s: the plan does not say why the gate was not called:\n%s", tt.name, out)
		}
	}
}

// TestPRPlanOfTheBaseItselfSaysSo: on pull_request_target, actions/checkout checks out the base branch,
// not the pull request, so `plan --base` compares the base with itself; the plan must not pass for the
// pull request's ("nothing changes" under a "this pull request" heading) but say what it is, in the
// comment and on standard error. The pull request's own checkout gets no such warning.
func TestPRPlanOfTheBaseItselfSaysSo(t *testing.T) {
	base := strings.Replace(prSpec, "SOURCE", "file:traffic/summarizer.jsonl", 1)
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": base})
	onBase := gittest.Clone(t, bare)
	for _, tt := range []struct {
		name, dir, event, want string
	}{
		{"pull_request_target", onBase.Dir, "pull_request_target", "on pull_request_target the checkout is the base branch, not the pull request"},
		{"the base checked out by hand", onBase.Dir, "", "the checkout is the base branch's own commit, not the pull request"},
		{"the pull request", prCheckout(t, base, strings.Replace(base, "max: 0.02,", "max: 0.01,", 1)), "pull_request", ""},
	} {
		code, out, errOut := runPlan(t, map[string]string{"GITHUB_EVENT_NAME": tt.event}, "plan", "--repo", tt.dir, "--base", "main", "--format", "markdown")
		if code != exitOK {
			t.Errorf("%s: exit %d\n%s\n%s", tt.name, code, out, errOut)
		}
		if tt.want == "" {
			if strings.Contains(out+errOut, "not of a pull request") || !strings.Contains(out, "rollout plan for this pull request") {
				t.Errorf("%s: a pull request's plan says it is not one:\n%s\n%s", tt.name, out, errOut)
			}
			continue
		}
		heading, _, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(heading, "### rollout plan of main (") || !strings.HasSuffix(heading, "), not of a pull request") ||
			!strings.Contains(out, "> **Warning:** "+tt.want) || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: the plan does not say it is not the pull request's:\n%s\n%s", tt.name, out, errOut)
		}
	}
}

// TestPRPlanDoesNotFollowALinkOutOfTheCheckout: a running rollout reads file:traffic/summarizer.jsonl,
// relative to the checkout the Action runs in, which the pull request's author fills. A pull request
// that makes it a symbolic link to a file of the runner's (another rollout's traffic on a self-hosted
// runner) gets a plan that does not read it, and says so; a link that stays in the checkout is read.
func TestPRPlanDoesNotFollowALinkOutOfTheCheckout(t *testing.T) {
	base := strings.Replace(prSpec, "SOURCE", "file:traffic/summarizer.jsonl", 1)
	dir := prCheckout(t, base, strings.Replace(base, "max: 0.02,", "max: 0.01,", 1))
	t.Chdir(dir)
	var records strings.Builder
	for i := range 3 {
		fmt.Fprintf(&records, `{"ts":"2026-04-16T07:0%d:00Z","rollout":"summarizer","variant":"canary","key":"u%d","latency_ms":900}`+"\n", i, i)
	}
	outside := filepath.Join(t.TempDir(), "production.jsonl")
	inside := filepath.Join(dir, "traffic", "recorded.jsonl")
	for _, f := range []string{outside, inside} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(records.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, target string
		followed     bool
	}{
		{"a link out of the checkout", outside, false},
		{"a link within the checkout", "recorded.jsonl", true},
	} {
		link := filepath.Join(dir, "traffic", "summarizer.jsonl")
		_ = os.Remove(link)
		if err := os.Symlink(tt.target, link); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runPlan(t, nil, "plan", "--repo", dir, "--base", "main", "--format", "markdown")
		if code != exitOK {
			t.Errorf("%s: exit %d\n%s\n%s", tt.name, code, out, errOut)
		}
		refused := strings.Contains(out, "metrics not read: the metrics file traffic/summarizer.jsonl is in this pull request's checkout, where a symbolic link leads out of it")
		if refused == tt.followed || strings.Contains(out, "canary has 3 of") == !tt.followed {
			t.Errorf("%s: followed %t, want %t:\n%s", tt.name, !refused, tt.followed, out)
		}
	}
}

// TestPRPlanReadsNoLinkOutOfTheCheckout: the files a spec names (here a gate's eval results) are read
// from the pull request's checkout, which its author fills: one that is a symbolic link to a file of the
// runner's (another team's eval results) is not followed, so nothing it holds reaches the plan comment.
// A link within the checkout is followed.
func TestPRPlanReadsNoLinkOutOfTheCheckout(t *testing.T) {
	spec := strings.Replace(strings.Replace(prSpec, "SOURCE", "file:traffic/new.jsonl", 1), "name: summarizer", "name: newcomer", 1)
	spec = strings.Replace(spec, "{weight: 5, minDuration: 4h, minRequests: 200}",
		`{weight: 5, minDuration: 4h, minRequests: 200, gate: {evals: evals/newcomer.json, minPassRate: 0.95}}`, 1)
	spec = spec[:strings.Index(spec, "status:")]
	base := strings.Replace(prSpec, "SOURCE", "file:traffic/summarizer.jsonl", 1)
	evals := `{"cases": [{"id": "confidential-case-7", "stable": true, "canary": false}]}`
	outside := filepath.Join(t.TempDir(), "their-evals.json")
	if err := os.WriteFile(outside, []byte(evals), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		outside  bool
		followed bool
	}{
		{"a link out of the checkout", true, false},
		{"a link within the checkout", false, true},
	} {
		bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": base})
		c := gittest.Clone(t, bare)
		c.Git("checkout", "--quiet", "-b", "pr")
		c.Write(map[string]string{"rollouts/newcomer.yaml": spec, "evals/ours.json": evals})
		target := "ours.json"
		if tt.outside {
			target = outside
		}
		if err := os.Symlink(target, filepath.Join(c.Dir, "evals", "newcomer.json")); err != nil {
			t.Fatal(err)
		}
		c.Commit("a gated canary")
		code, out, errOut := runPlan(t, nil, "plan", "--repo", c.Dir, "--base", "main", "--format", "markdown")
		if code != exitOK {
			t.Errorf("%s: exit %d\n%s\n%s", tt.name, code, out, errOut)
		}
		if followed := strings.Contains(out, "confidential-case-7") || strings.Contains(out, "0 of 1"); followed != tt.followed {
			t.Errorf("%s: followed %t, want %t:\n%s", tt.name, followed, tt.followed, out)
		}
		if !tt.followed && !strings.Contains(out, "a symbolic link leads outside the repository") {
			t.Errorf("%s: the plan does not say why the gate's file was not read:\n%s", tt.name, out)
		}
	}
}
