package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile/comment"
)

// commentFixture is a GitHub test server that is also the git remote of a started rollout, and a pull
// request to comment on.
type commentFixture struct {
	t    *testing.T
	srv  *githubtest.Server
	dir  string // the served bare repository
	env  map[string]string
	now  func() time.Time
	pull int
}

func newCommentFixture(t *testing.T) *commentFixture {
	e := newE2E(t) // for the traffic file and the webhook
	srv := githubtest.New(t, "acme", "llm-config", func() time.Time { return e.now })
	srv.Token = "ghs_test_token"
	dir, _ := srv.EnableGit(map[string]string{"rollouts/summarizer.yaml": strings.Replace(e2eSpec, "TRAFFIC", e.traffic, 1)})
	env := map[string]string{"GITHUB_TOKEN": srv.Token, "GITHUB_REPOSITORY": "acme/llm-config",
		"GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": srv.URL, "ROLLOUT_ROLLBACK_WEBHOOK": e.env["ROLLOUT_ROLLBACK_WEBHOOK"]}
	now := func() time.Time { return e.now }
	if res := githubRun(t, env, now, []string{srv.Token}, "reconcile", "-o", "json"); *res.Decision != "start" {
		t.Fatalf("start: %+v", res)
	}
	f := &commentFixture{t: t, srv: srv, dir: dir, env: env, now: now,
		pull: srv.AddPull("feature/docs", "main", "Docs", "", "ada")}
	srv.ResetCalls()
	return f
}

// commentResult is one run of `rollout comment`: its exit code, outcome (-o json) and stderr, and the
// answer on the pull request: the comments posted after the command's and the reactions on it.
type commentResult struct {
	code      int
	outcome   comment.Outcome
	stderr    string
	replies   []string
	reactions []string
}

// comment posts body on the pull request as login (of type "User" or "Bot") and runs `rollout comment`
// on the issue_comment event with action ("created", "edited"), plus args.
func (f *commentFixture) comment(login, typ, action, body string, args ...string) commentResult {
	f.t.Helper()
	id := f.srv.AddComment(f.pull, login, typ, body)
	before := len(f.srv.Comments(f.pull))
	ev := map[string]any{
		"action":  action,
		"issue":   map[string]any{"number": f.pull, "pull_request": map[string]any{"url": "x"}},
		"comment": map[string]any{"id": id, "body": body, "user": map[string]any{"login": login, "type": typ}},
	}
	raw, _ := json.Marshal(ev)
	path := filepath.Join(f.t.TempDir(), "event.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		f.t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return f.env[k] }, Now: f.now,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
	run := commentResult{code: app.Main(append([]string{"comment", "--event", path, "-o", "json"}, args...)), stderr: errOut.String()}
	if err := json.Unmarshal(out.Bytes(), &run.outcome); err != nil {
		f.t.Fatalf("exit %d, stdout %q (%v), stderr %s", run.code, out.String(), err, run.stderr)
	}
	for _, c := range f.srv.Comments(f.pull)[before:] {
		run.replies = append(run.replies, c.Body)
	}
	for _, r := range f.srv.Reactions() {
		if r.CommentID == id {
			run.reactions = append(run.reactions, r.Content)
		}
	}
	return run
}

// gitCalls counts the requests the git remote served.
func (f *commentFixture) gitCalls() int {
	n := 0
	for route, calls := range f.srv.Calls() {
		if strings.HasPrefix(route, "GIT ") {
			n += calls
		}
	}
	return n
}

// answered reports whether the run got one reply that holds text and the one reaction reaction.
func (r commentResult) answered(text, reaction string) bool {
	return len(r.replies) == 1 && strings.Contains(r.replies[0], text) && slices.Equal(r.reactions, []string{reaction})
}

// TestCommentChecksPermissionBeforeOpeningTheRepository: a comment from anyone is untrusted input, so
// the permission check and the other refusals come before the git remote is contacted at all; so does
// `/rollout plan`, which runs no operation. A commenter with write permission still runs the command,
// and a remote that cannot be opened then fails the command, in the reply and the exit code.
func TestCommentChecksPermissionBeforeOpeningTheRepository(t *testing.T) {
	f := newCommentFixture(t)
	f.srv.SetPermission("rita", "read")
	f.srv.SetPermission("ada", "write")
	head := gittest.Head(t, f.dir, "main")

	for _, c := range []struct {
		name, login, typ, action, body string
		want                           func(commentResult) bool
	}{
		{"read permission", "rita", "User", "created", "/rollout rollback summarizer it looks bad", func(r commentResult) bool {
			return strings.Contains(r.outcome.Refused, "rita has read permission") && r.answered("@rita, thank you", "confused")
		}},
		{"no access", "mallory", "User", "created", "/rollout pause summarizer because", func(r commentResult) bool {
			return strings.Contains(r.outcome.Refused, "mallory has read permission") && r.answered("@mallory, thank you", "confused")
		}},
		{"edited", "ada", "User", "edited", "/rollout pause summarizer because", func(r commentResult) bool {
			return strings.Contains(r.outcome.Ignored, "edited") && len(r.replies)+len(r.reactions) == 0
		}},
		{"bot", "ada", "Bot", "created", "/rollout pause summarizer because", func(r commentResult) bool {
			return strings.Contains(r.outcome.Ignored, "bot") && len(r.replies)+len(r.reactions) == 0
		}},
		{"too many commands", "ada", "User", "created", strings.Repeat("/rollout resume summarizer\n", comment.MaxCommands+1), func(r commentResult) bool {
			return strings.Contains(r.outcome.Refused, "commands in one comment") && r.answered("none ran", "confused")
		}},
		{"plan", "ada", "User", "created", "/rollout plan", func(r commentResult) bool {
			return r.outcome.Plan && len(r.replies) == 0 && slices.Equal(r.reactions, []string{"+1"})
		}},
	} {
		run := f.comment(c.login, c.typ, c.action, c.body)
		if run.code != 0 || !c.want(run) {
			t.Errorf("%s: exit %d, outcome %+v, replies %q, reactions %q, stderr %s", c.name, run.code, run.outcome, run.replies, run.reactions, run.stderr)
		}
		if n := f.gitCalls(); n != 0 {
			t.Errorf("%s: the git remote served %d requests: %v", c.name, n, f.srv.Calls())
		}
	}
	if gittest.Head(t, f.dir, "main") != head {
		t.Fatalf("a refused comment made a commit")
	}

	// Nothing listens on a closed loopback port: refusing does not need the remote, running a command does.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + l.Addr().String() + "/acme/llm-config.git"
	l.Close()
	if run := f.comment("rita", "User", "created", "/rollout pause summarizer because", "--repo", gone); run.code != 0 || !run.answered("@rita, thank you", "confused") {
		t.Errorf("refusal with the remote gone: exit %d, outcome %+v, stderr %s", run.code, run.outcome, run.stderr)
	}
	run := f.comment("ada", "User", "created", "/rollout pause summarizer because", "--repo", gone)
	if cmds := run.outcome.Commands; run.code != exitFailed || len(cmds) != 1 || cmds[0].Error == nil || !strings.Contains(*cmds[0].Error, "open repository") ||
		!strings.Contains(run.stderr, "open repository") || !run.answered("❌ open repository", "confused") {
		t.Errorf("command with the remote gone: exit %d, outcome %+v, replies %q, stderr %s", run.code, run.outcome, run.replies, run.stderr)
	}

	run = f.comment("ada", "User", "created", "/rollout pause summarizer checking the dashboards")
	if cmds := run.outcome.Commands; run.code != 0 || len(cmds) != 1 || cmds[0].Error != nil || cmds[0].Commit == "" {
		t.Fatalf("ada's pause: exit %d, outcome %+v, stderr %s", run.code, run.outcome, run.stderr)
	}
	if got := gittest.Head(t, f.dir, "main"); got != run.outcome.Commands[0].Commit {
		t.Errorf("main at %s, the pause commit is %s", got, run.outcome.Commands[0].Commit)
	}
	if msg := gittest.Git(t, f.dir, "log", "-1", "--format=%B", "main"); !strings.Contains(msg, "Rollout-Actor: ada") {
		t.Errorf("pause commit:\n%s", msg)
	}
	if !run.answered("@ada, done as you asked", "+1") {
		t.Errorf("replies %q, reactions %q", run.replies, run.reactions)
	}
	if f.gitCalls() == 0 {
		t.Errorf("the pause landed without the git remote: %v", f.srv.Calls())
	}
}
