package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/gitrepo"
	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestReconcileOnGitHubByEnvironmentAlone runs `rollout reconcile` as the Action does: GITHUB_TOKEN,
// GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_SERVER_URL point at an in-memory GitHub that is also the
// git remote (smart HTTP through git http-backend), and no --repo is given.
func TestReconcileOnGitHubByEnvironmentAlone(t *testing.T) {
	e := newE2E(t) // for the traffic file and the webhook
	srv := githubtest.New(t, "acme", "llm-config", func() time.Time { return e.now })
	srv.Token = "ghs_test_token"
	dir, _ := srv.EnableGit(map[string]string{"rollouts/summarizer.yaml": strings.Replace(e2eSpec, "TRAFFIC", e.traffic, 1)})
	srv.Logins = map[string]string{gitrepo.DefaultAuthorEmail: "rollout-bot[bot]"}
	env := map[string]string{"GITHUB_TOKEN": srv.Token, "GITHUB_REPOSITORY": "acme/llm-config",
		"GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": srv.URL, "ROLLBACK_WEBHOOK": e.env["ROLLBACK_WEBHOOK"]}
	run := func() resultJSON {
		t.Helper()
		var out, errOut bytes.Buffer
		app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Now: func() time.Time { return e.now }}
		if code := app.Main([]string{"reconcile", "-o", "json"}); code != 0 {
			t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
		}
		if strings.Contains(out.String()+errOut.String(), srv.Token) {
			t.Fatalf("the token leaked into the output")
		}
		var res resultJSON
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%q: %v", out.String(), err)
		}
		return res
	}
	if res := run(); *res.Decision != "start" || res.Commit == nil || gittest.Head(t, dir, "main") != *res.Commit {
		t.Fatalf("start: %+v", res)
	}
	e.now = e.now.Add(2 * time.Hour)
	e.addTraffic(400, 0, 1)
	res := run()
	if *res.Decision != "advance" || res.Proposal == nil || !strings.Contains(*res.Proposal, "/pull/") {
		t.Fatalf("advance: %+v", res)
	}
	pulls := srv.Pulls()
	if len(pulls) != 1 || pulls[0].Title != "rollout(summarizer): 5% → 25%" || !strings.Contains(pulls[0].Body, "<!-- rollout:summarizer -->") {
		t.Fatalf("pulls = %+v", pulls)
	}
	srv.ResetCalls()
	if res := run(); *res.Decision != "advance" || res.Commit != nil {
		t.Fatalf("second pass: %+v", res)
	}
	if w := writesOf(srv.Calls()); w != 0 {
		t.Errorf("an unchanged pass wrote to GitHub: %v", srv.Calls())
	}
}

func writesOf(calls map[string]int) int {
	n := 0
	for k, v := range calls {
		if !strings.HasPrefix(k, "GET ") && !strings.Contains(k, "git-upload-pack") && !strings.Contains(k, "info/refs") {
			n += v
		}
	}
	return n
}

// TestSignedCommitsNeedGitHub: --signed-commits outside GitHub is a usage error. (On GitHub it wraps
// the repository in githubforge.SignedRepository; githubtest's Git Data API does not share the
// repository EnableGit serves, so that path is covered by githubforge's own tests.)
func TestSignedCommitsNeedGitHub(t *testing.T) {
	e := newE2E(t)
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Now: func() time.Time { return e.now }}
	if code := app.Main([]string{"reconcile", "--signed-commits", "--repo", e.bare}); code != exitUsage || !strings.Contains(errOut.String(), "needs GitHub") {
		t.Errorf("exit %d, want 2: %s", code, errOut.String())
	}
}
