package faults

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
)

// TestForkPullRequestNeedsNoSecrets: on a pull request from a fork there is no token and no webhook
// URL. `rollout validate` checks specs with an empty environment, and a plan runs over an anonymous
// remote with no forge and no notifier configuration: it decides every rollout and writes nothing.
func TestForkPullRequestNeedsNoSecrets(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "summarizer.yaml")
	if err := os.WriteFile(spec, []byte(progressing("summarizer", "hold")), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runRollout(t, "validate", spec); code != 0 || !strings.Contains(out, "1 rollout valid") {
		t.Fatalf("validate with an empty environment: exit %d\n%s", code, out)
	}

	w := newWorld(t, map[string]string{
		"rollouts/healthy.yaml": progressing("healthy", "hold"),
		"rollouts/failing.yaml": progressing("failing", "hold"),
		"rollouts/pending.yaml": pending("pending"),
	}, true)
	w.writeTraffic("healthy", 0.01)
	w.writeTraffic("failing", 0.30)
	before := w.refs()
	r := w.remote(gitrepo.Options{}) // anonymous
	l := w.loop(r, nil)
	l.Notifier = nil
	rep, err := l.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]policy.Action{"healthy": policy.Advance, "failing": policy.Rollback, "pending": policy.Start} {
		if res := result(t, rep, name); res.Decision != want || res.Err != nil || res.Commit != "" {
			t.Errorf("plan of %s: %+v, want %s and no error", name, res, want)
		}
	}
	// The command itself, with an empty environment, over the same remote.
	cmd := exec.Command(rolloutBin(t), "plan", "--repo", w.url, "-o", "json")
	cmd.Dir = w.traffic
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1"}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"decision":"advance"`) || !strings.Contains(string(out), `"decision":"rollback"`) {
		t.Errorf("rollout plan with an empty environment: %v\n%s", err, out)
	}
	if got := w.refs(); got != before {
		t.Errorf("plan wrote to git")
	}
	if evs := w.hook.received(); len(evs) != 0 {
		t.Errorf("plan notified: %+v", evs)
	}
}

// TestPlanWithReadOnlyTokenOnlyReads: a plan through the GitHub forge makes read calls only, so a
// read-only GITHUB_TOKEN is enough: git fetches, REST GETs, no push and no write call.
func TestPlanWithReadOnlyTokenOnlyReads(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/healthy.yaml": progressing("healthy", "hold"), "rollouts/failing.yaml": progressing("failing", "hold")})
	g.writeTraffic("healthy", 0.01)
	g.writeTraffic("failing", 0.30)
	g.gh.ResetCalls()
	rep, err := g.process().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res := result(t, rep, "healthy"); res.Decision != policy.Advance || res.Err != nil {
		t.Errorf("healthy: %+v", res)
	}
	if res := result(t, rep, "failing"); res.Decision != policy.Rollback || res.Err != nil {
		t.Errorf("failing: %+v", res)
	}
	for call, n := range g.gh.Calls() {
		if !strings.HasPrefix(call, "GET ") && call != "GIT git-upload-pack" && call != "GIT info/refs" {
			t.Errorf("plan called %s %d times", call, n)
		}
	}
	if len(g.gh.Pulls()) != 0 || g.head("rollout/healthy") != "" {
		t.Errorf("plan wrote: pulls %+v", g.gh.Pulls())
	}
}
