package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// receiver is a real HTTP endpoint that records the path of every request it gets.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

// TestANotificationTargetResolvesOnlyAllowedNames (issue 22): a notification target's env: reference
// resolves through the operator's allow-list, like a source's. SLACK_WEBHOOK_URL, set but not allowed,
// is not posted to, and the rollback warns naming the variable (never its value); listed in
// ROLLOUT_ALLOW_ENV it is posted to. GITHUB_TOKEN as a webhook never resolves, even when listed.
func TestANotificationTargetResolvesOnlyAllowedNames(t *testing.T) {
	spec := strings.Replace(e2eSpec, "notify: [{webhook: env:ROLLOUT_ROLLBACK_WEBHOOK}]",
		"notify: [{slack: env:SLACK_WEBHOOK_URL}, {webhook: env:GITHUB_TOKEN}]", 1)
	for _, tc := range []struct {
		name, allow string
		want        []string
	}{
		{"not allowed", "", nil},
		{"listed", "SLACK_WEBHOOK_URL,GITHUB_TOKEN", []string{"/slack-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hooks := newReceiver(t)
			e := newE2EWith(t, spec)
			e.env = map[string]string{"SLACK_WEBHOOK_URL": hooks.srv.URL + "/slack-secret", "GITHUB_TOKEN": hooks.srv.URL + "/ghs-secret",
				"ROLLOUT_ALLOW_ENV": tc.allow}
			e.reconcile()
			code, out, errOut := e.run("rollback", "summarizer", "--reason", "bad summaries")
			if code != 0 || !strings.Contains(out, "summarizer: rollback 5% → 0%") {
				t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errOut)
			}
			if got := hooks.got(); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("the receiver got %q, want %q", got, tc.want)
			}
			if strings.Contains(out+errOut, "secret") {
				t.Errorf("a target's value leaked:\n%s\n%s", out, errOut)
			}
			if !strings.Contains(errOut, "webhook env:GITHUB_TOKEN: env:GITHUB_TOKEN is never resolved from a spec") {
				t.Errorf("no warning names env:GITHUB_TOKEN:\n%s", errOut)
			}
			refused := strings.Contains(errOut, "slack env:SLACK_WEBHOOK_URL: env:SLACK_WEBHOOK_URL is not allowed")
			if refused != (tc.allow == "") {
				t.Errorf("warns that env:SLACK_WEBHOOK_URL is not allowed: %t, want %t:\n%s", refused, tc.allow == "", errOut)
			}
			// A refused target is a warning, not a pending notification: the next pass does not fail for it.
			if spec := e.show("main:rollouts/summarizer.yaml"); strings.Contains(spec, "[notification pending") {
				t.Errorf("a refused target left a pending notification:\n%s", spec)
			}
			if code, out, errOut := e.run("reconcile"); code != 0 {
				t.Errorf("the next pass: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}

// TestValidateWarnsOfNotifyTargetsOutsideTheAllowList: validate warns at file:line:col of a
// notification target whose env: name the allow-list does not resolve, once (not also as unset).
func TestValidateWarnsOfNotifyTargetsOutsideTheAllowList(t *testing.T) {
	dir := t.TempDir()
	spec := strings.NewReplacer("NAME", "summarizer", "SOURCE", "prometheus:http://127.0.0.1:1").Replace(secretSpec)
	spec = strings.Replace(spec, "notify: [{slack: env:ROLLOUT_SLACK_WEBHOOK_URL}]",
		"notify: [{slack: env:SLACK_WEBHOOK_URL}, {webhook: env:GITHUB_TOKEN}, {webhook: env:ROLLOUT_HOOK}]", 1)
	// A top-level notify target is named by its own field.
	spec = strings.TrimRight(spec, "\n") + "\nnotify: [{webhook: env:TEAM_HOOK, on: [start]}, {slack: env:ROLLOUT_TEAM_SLACK}]\n"
	writeFile(t, dir+"/rollouts/summarizer.yaml", spec)
	line := strings.Count(spec, "\n")
	for _, tc := range []struct {
		name  string
		env   map[string]string
		want  []string
		never []string
	}{
		{"unset and not allowed", map[string]string{}, []string{
			"rollouts/summarizer.yaml:19:20: warning: rollback.notify: env:SLACK_WEBHOOK_URL is not allowed",
			"ROLLOUT_ALLOW_ENV=SLACK_WEBHOOK_URL or --allow-env SLACK_WEBHOOK_URL",
			"rollouts/summarizer.yaml:19:54: warning: rollback.notify: env:GITHUB_TOKEN is never resolved from a spec",
			"rollouts/summarizer.yaml:19:83: warning: rollback.notify: ROLLOUT_HOOK is not set",
			fmt.Sprintf("rollouts/summarizer.yaml:%d:20: warning: notify: env:TEAM_HOOK is not allowed", line),
			fmt.Sprintf("rollouts/summarizer.yaml:%d:57: warning: notify: ROLLOUT_TEAM_SLACK is not set", line),
		}, []string{"SLACK_WEBHOOK_URL is not set", "GITHUB_TOKEN is not set", "rollback.notify: env:TEAM_HOOK", "rollback.notify: ROLLOUT_TEAM_SLACK"}},
		{"set, SLACK_WEBHOOK_URL listed", map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.example/a", "GITHUB_TOKEN": "ghs_x",
			"ROLLOUT_HOOK": "https://hooks.example/b", "ROLLOUT_ALLOW_ENV": "SLACK_WEBHOOK_URL,GITHUB_TOKEN"}, []string{
			"rollouts/summarizer.yaml:19:54: warning: rollback.notify: env:GITHUB_TOKEN is never resolved from a spec",
		}, []string{"SLACK_WEBHOOK_URL", "ROLLOUT_HOOK", "ghs_x", "hooks.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return tc.env[k] }}
			code := app.Main([]string{"validate", "--repo", dir})
			if code != 0 {
				t.Errorf("exit %d: warnings only", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("validate does not say %q:\n%s", w, out.String())
				}
			}
			for _, n := range tc.never {
				if strings.Contains(out.String(), n) {
					t.Errorf("validate says %q:\n%s", n, out.String())
				}
			}
		})
	}
}
