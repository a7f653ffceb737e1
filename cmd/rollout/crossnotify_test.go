package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// oncall is the URL of the notification target both tests guard.
const oncall = "http://127.0.0.1:1/hooks/oncall-SECRET-0123"

// oncallSpecs returns two specs: summarizer, whose rollback webhook is env:ROLLOUT_ONCALL_URL, and chat,
// whose ClickHouse source sends that variable as its password to a server that reports on got every
// password it receives.
func oncallSpecs(t *testing.T) (got chan string, notifier, reader string) {
	got = make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, _ := r.BasicAuth()
		got <- pass
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	notifier = strings.NewReplacer("NAME", "summarizer", "SOURCE", "file:metrics.jsonl",
		"slack: env:ROLLOUT_SLACK_WEBHOOK_URL", "webhook: env:ROLLOUT_ONCALL_URL").Replace(secretSpec)
	reader = strings.NewReplacer("NAME", "chat", "SOURCE", "clickhouse://x:env:ROLLOUT_ONCALL_URL@"+host+"/db").Replace(secretSpec)
	return got, notifier, reader
}

// TestASourceCannotReadAnotherRolloutsNotifier: a notification target's variable is the secret that
// lets anyone post to the channel, so no metrics source or gate reads it, whichever spec of the
// repository names it as a target. Here summarizer notifies env:ROLLOUT_ONCALL_URL and chat's source
// sends env:ROLLOUT_ONCALL_URL as its password to a host chat chose: plan and reconcile refuse it,
// name it, and the host gets nothing; validate warns at its file:line:col.
func TestASourceCannotReadAnotherRolloutsNotifier(t *testing.T) {
	got, notifier, reader := oncallSpecs(t)
	files := map[string]string{"rollouts/summarizer.yaml": notifier, "rollouts/chat.yaml": reader}
	bare := gittest.NewBare(t, files)
	getenv := func(k string) string {
		if k == "ROLLOUT_ONCALL_URL" {
			return oncall
		}
		return ""
	}
	for _, args := range [][]string{{"plan"}, {"reconcile", "--dry-run"}} {
		var out, errOut bytes.Buffer
		app := &App{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), Getenv: getenv,
			Now: func() time.Time { return time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC) }}
		code := app.Main(append(args, "--repo", bare))
		all := out.String() + errOut.String()
		t.Logf("%v: exit %d\n%s", args, code, all)
		if !strings.Contains(all, "env:ROLLOUT_ONCALL_URL") {
			t.Errorf("%v: the output does not name the refused env:ROLLOUT_ONCALL_URL", args)
		}
		if strings.Contains(all, oncall) {
			t.Errorf("%v: the output holds the notifier's URL", args)
		}
	}
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	var out bytes.Buffer
	app := &App{Stdout: &out, Stderr: &out, Getenv: getenv, Now: func() time.Time { return time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC) }}
	app.Main([]string{"validate", "--repo", dir})
	if line, col := positionOf([]byte(reader), "env:ROLLOUT_ONCALL_URL"); !strings.Contains(out.String(), fmt.Sprintf("rollouts/chat.yaml:%d:%d", line, col)) {
		t.Errorf("validate does not warn at chat's reference:\n%s", out.String())
	}
	close(got)
	for pass := range got {
		if strings.Contains(pass, "oncall") {
			t.Errorf("chat's host received the notifier's URL %q", pass)
		}
	}
}

// A pull request's plan keeps the base branch's notifier names too: a pull request that deletes the
// rollout whose target references env:ROLLOUT_ONCALL_URL does not make it readable by an unchanged
// source of another rollout, which the plan contacts.
func TestAPullRequestCannotFreeANotifiersVariable(t *testing.T) {
	got, notifier, reader := oncallSpecs(t)
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": notifier, "rollouts/chat.yaml": reader})
	c := gittest.Clone(t, bare)
	c.Git("checkout", "--quiet", "-b", "pr")
	c.Git("rm", "--quiet", "rollouts/summarizer.yaml")
	c.Commit("retire summarizer")
	code, out, errOut := runPlan(t, map[string]string{"ROLLOUT_ONCALL_URL": oncall}, "plan", "--repo", c.Dir, "--base", "main")
	t.Logf("exit %d\n%s\n%s", code, out, errOut)
	close(got)
	for pass := range got {
		if strings.Contains(pass, "oncall") {
			t.Errorf("chat's host received the base's notifier URL %q", pass)
		}
	}
	if !strings.Contains(out+errOut, "env:ROLLOUT_ONCALL_URL") {
		t.Errorf("the plan does not name the refused env:ROLLOUT_ONCALL_URL")
	}
}
