package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
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
		"GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": srv.URL, "ROLLOUT_ROLLBACK_WEBHOOK": e.env["ROLLOUT_ROLLBACK_WEBHOOK"]}
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
		var res []resultJSON
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res) != 1 {
			t.Fatalf("%q: %v", out.String(), err)
		}
		return res[0]
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

// TestReconcileSignedCommits runs `rollout reconcile --signed-commits` on GitHub: the start commit is
// created through the Git Data API, lands on main of the repository the server serves over git, and
// GitHub signs it; the bot never pushes over git.
func TestReconcileSignedCommits(t *testing.T) {
	e := newE2E(t)
	srv := githubtest.New(t, "acme", "llm-config", func() time.Time { return e.now })
	srv.Token = "ghs_test_token"
	dir, _ := srv.EnableGit(map[string]string{"rollouts/summarizer.yaml": strings.Replace(e2eSpec, "TRAFFIC", e.traffic, 1)})
	initial := gittest.Head(t, dir, "main")
	env := map[string]string{"GITHUB_TOKEN": srv.Token, "GITHUB_REPOSITORY": "acme/llm-config",
		"GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": srv.URL, "ROLLOUT_ROLLBACK_WEBHOOK": e.env["ROLLOUT_ROLLBACK_WEBHOOK"]}
	res := githubRun(t, env, func() time.Time { return e.now }, []string{srv.Token}, "reconcile", "--signed-commits", "-o", "json")
	if *res.Decision != "start" || res.Commit == nil || gittest.Head(t, dir, "main") != *res.Commit {
		t.Fatalf("start: %+v, main at %s", res, gittest.Head(t, dir, "main"))
	}
	c, ok := srv.Commit(*res.Commit)
	if !ok || !c.Verified || len(c.Parents) != 1 || c.Parents[0] != initial ||
		!strings.HasPrefix(c.Message, "rollout(summarizer): start stage 0 at 5%") || !strings.Contains(c.Files["rollouts/summarizer.yaml"], "weight: 5") {
		t.Errorf("start commit %+v", c)
	}
	calls := srv.Calls()
	if calls["GIT git-receive-pack"] != 0 || calls["POST /repos/{owner}/{repo}/git/commits"] != 1 || calls["PATCH /repos/{owner}/{repo}/git/refs/{ref}"] != 1 {
		t.Errorf("the commit did not go through the API alone: %v", calls)
	}
}

// TestSignedCommitsNeedGitHub: --signed-commits outside GitHub is a usage error.
func TestSignedCommitsNeedGitHub(t *testing.T) {
	e := newE2E(t)
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Now: func() time.Time { return e.now }}
	if code := app.Main([]string{"reconcile", "--signed-commits", "--repo", e.bare}); code != exitUsage || !strings.Contains(errOut.String(), "needs GitHub") {
		t.Errorf("exit %d, want 2: %s", code, errOut.String())
	}
}

// githubRun runs the command line with env and returns its one reconcile result; it fails the test on
// a non-zero exit and on any secret in the output.
func githubRun(t *testing.T, env map[string]string, now func() time.Time, secrets []string, args ...string) resultJSON {
	t.Helper()
	var out, errOut bytes.Buffer
	// The clock stands still between calls, so GitHub's second between writes would be a real second.
	app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Now: now,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
	if code := app.Main(args); code != 0 {
		t.Fatalf("%v: exit %d: %s %s", args, code, out.String(), errOut.String())
	}
	for _, s := range secrets {
		if strings.Contains(out.String()+errOut.String(), s) {
			t.Fatalf("a secret leaked into the output: %s %s", out.String(), errOut.String())
		}
	}
	var res []resultJSON
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res) != 1 {
		t.Fatalf("%q: %v", out.String(), err)
	}
	return res[0]
}

// TestReconcileAsGitHubApp: a GitHub App alone (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY, no
// GITHUB_TOKEN) selects the GitHub forge, and git clones and pushes with the App's installation token:
// the server accepts no other token from the bot.
func TestReconcileAsGitHubApp(t *testing.T) {
	e := newE2E(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	srv := githubtest.New(t, "acme", "llm-config", func() time.Time { return e.now })
	srv.Token = "ghp_the_humans_token" // the bot does not have it
	dir, _ := srv.EnableGit(map[string]string{"rollouts/summarizer.yaml": strings.Replace(e2eSpec, "TRAFFIC", e.traffic, 1)})
	srv.Logins = map[string]string{gitrepo.DefaultAuthorEmail: "rollout-bot[bot]"}
	env := map[string]string{"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": string(pemKey), "GITHUB_REPOSITORY": "acme/llm-config",
		"GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": srv.URL, "ROLLOUT_ROLLBACK_WEBHOOK": e.env["ROLLOUT_ROLLBACK_WEBHOOK"]}
	now := func() time.Time { return e.now }
	secrets := []string{strings.Split(string(pemKey), "\n")[1], "ghs_fake"}

	if res := githubRun(t, env, now, secrets, "reconcile", "-o", "json"); *res.Decision != "start" || res.Commit == nil || gittest.Head(t, dir, "main") != *res.Commit {
		t.Fatalf("start: %+v", res)
	}
	if calls := srv.Calls(); calls["POST /app/installations/{installation_id}/access_tokens"] < 1 {
		t.Errorf("no installation token minted: %v", calls)
	}
	e.now = e.now.Add(2 * time.Hour)
	e.addTraffic(400, 0, 1)
	res := githubRun(t, env, now, secrets, "reconcile", "-o", "json")
	if *res.Decision != "advance" || res.Proposal == nil || !strings.Contains(*res.Proposal, "/pull/") {
		t.Fatalf("advance: %+v", res)
	}
	if pulls := srv.Pulls(); len(pulls) != 1 || pulls[0].Title != "rollout(summarizer): 5% → 25%" {
		t.Fatalf("pulls = %+v", pulls)
	}
	if head := gittest.Head(t, dir, "rollout/summarizer"); head == "" {
		t.Errorf("no bot branch pushed")
	}
}

// TestReconcileWithTokenFile: --token-file stands for GITHUB_TOKEN, for a token kept out of the
// environment; a missing or empty file is a clear error that names the file, never its content.
func TestReconcileWithTokenFile(t *testing.T) {
	e := newE2E(t)
	srv := githubtest.New(t, "acme", "llm-config", func() time.Time { return e.now })
	srv.Token = "ghs_from_a_file"
	dir, _ := srv.EnableGit(map[string]string{"rollouts/summarizer.yaml": strings.Replace(e2eSpec, "TRAFFIC", e.traffic, 1)})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(srv.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GITHUB_REPOSITORY": "acme/llm-config", "GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": srv.URL}
	now := func() time.Time { return e.now }
	res := githubRun(t, env, now, []string{srv.Token}, "reconcile", "-o", "json", "--token-file", tokenFile)
	if *res.Decision != "start" || res.Commit == nil || gittest.Head(t, dir, "main") != *res.Commit {
		t.Fatalf("start: %+v", res)
	}
	if srv.Calls()["GET /repos/{owner}/{repo}/pulls"] != 1 {
		t.Errorf("the GitHub forge was not used: %v", srv.Calls())
	}

	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "missing"), empty} {
		var out, errOut bytes.Buffer
		app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Now: now}
		if code := app.Main([]string{"reconcile", "--token-file", path}); code != exitUsage || !strings.Contains(errOut.String(), path) {
			t.Errorf("--token-file %s: exit %d: %s", path, code, errOut.String())
		}
	}
}
