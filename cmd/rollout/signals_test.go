package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/internal/syncbuf"
)

// processEnv, when set in a test binary's environment, makes it run `rollout` with the arguments it
// holds (one a line) instead of the tests: a real process, for the tests that signal one. Its clock
// stands at processNowEnv (RFC 3339).
const (
	processEnv    = "ROLLOUT_TEST_PROCESS_ARGS"
	processNowEnv = "ROLLOUT_TEST_PROCESS_NOW"
)

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(processEnv); ok {
		now, err := time.Parse(time.RFC3339, os.Getenv(processNowEnv))
		if err != nil {
			panic(err)
		}
		app := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Now: func() time.Time { return now }}
		os.Exit(app.Main(strings.Split(args, "\n")))
	}
	os.Exit(m.Run())
}

// TestSIGTERMLetsTheRollbackFinish: `rollout reconcile` (in the CronJob, which Kubernetes signals at its
// activeDeadlineSeconds or on a node drain) and `rollout rollback` get SIGTERM after their rollback
// commit landed, while the webhook of rollback.notify is slow to answer. The process finishes what it
// started: when the webhook then fails, the commit that records the notification as owed lands, so the
// next pass delivers it. Killed at the signal, the process left a rollback nobody was told of and no
// record that anyone should be.
func TestSIGTERMLetsTheRollbackFinish(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		what    string
		message string
	}{
		{[]string{"reconcile"}, "the pass", "rollout(summarizer): rollback 5% → 0%"},
		{[]string{"rollback", "summarizer", "--reason", "bad summaries"}, "the rollback", "- by hand: bad summaries"},
	} {
		t.Run(tt.args[0], func(t *testing.T) { sigtermDuringRollback(t, tt.args, tt.what, tt.message) })
	}
}

func sigtermDuringRollback(t *testing.T, args []string, what, message string) {
	hook, arrived, answer := slowWebhook(t)
	cmd, bare := rollingBack(t, args, hook)
	stderr := sigtermWhileNotifying(t, cmd, args[0], what, arrived, answer, syscall.SIGTERM)
	log := gittest.Git(t, bare, "log", "--format=%B", "-2", "main")
	for _, want := range []string{message, "Rollout-Notification: pending"} {
		if !strings.Contains(log, want) {
			t.Errorf("main lacks %q:\n%s\nstderr:\n%s", want, log, stderr)
		}
	}
}

// slowWebhook is a notification target that says on arrived that a notification came and answers it
// (502) when told on answer, or when the test ends.
func slowWebhook(t *testing.T) (url string, arrived, answer chan struct{}) {
	arrived, answer = make(chan struct{}, 1), make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-answer
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(answer) }) // runs first: a test that fails early lets the server close
	return hook.URL + "/secret-token", arrived, answer
}

// rollingBack returns the process (this test binary, as rollout) that runs args against a repository
// whose started rollout's canary fails, so that it is rolled back and hook notified; and the repository.
func rollingBack(t *testing.T, args []string, hook string) (cmd *exec.Cmd, bare string) {
	e := newE2E(t)
	if res := e.reconcile(); res.Decision == nil || *res.Decision != "start" {
		t.Fatalf("start: %+v", res)
	}
	e.now = e.now.Add(2 * time.Hour)
	e.addTraffic(400, 0.5, 2) // a canary that fails: reconcile rolls it back
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(gittest.Env(), processEnv+"="+strings.Join(append(args, "--repo", e.bare), "\n"),
		processNowEnv+"="+e.now.Format(time.RFC3339), "ROLLOUT_ROLLBACK_WEBHOOK="+hook, "HOME="+t.TempDir())
	return cmd, e.bare
}

// startUntilNotifying starts cmd and returns once the notification of its rollback arrived, with what
// it prints and its exit to come.
func startUntilNotifying(t *testing.T, cmd *exec.Cmd, name string, arrived chan struct{}) (*syncbuf.Buffer, chan error) {
	t.Helper()
	stderr := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-arrived: // the rollback commit has landed; the notification is under way
	case err := <-exited:
		t.Fatalf("%s exited before notifying: %v\n%s", name, err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no notification\n%s", stderr.String())
	}
	return stderr, exited
}

// sigtermWhileNotifying starts cmd, which makes a rollback commit and then notifies a webhook that
// signals arrived and answers (502) on answer; it sends the first of signals while the notification is
// under way, the others once the process says it finishes first, and fails the test if the process was
// killed mid-way rather than finishing what it started (what). It returns what the process printed.
func sigtermWhileNotifying(t *testing.T, cmd *exec.Cmd, name, what string, arrived, answer chan struct{}, signals ...syscall.Signal) string {
	t.Helper()
	stderr, exited := startUntilNotifying(t, cmd, name, arrived)
	if err := cmd.Process.Signal(signals[0]); err != nil {
		t.Fatal(err)
	}
	// The webhook answers once the process has dealt with the signal: it says it finishes first, or
	// it is gone.
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for done := false; !done; {
		select {
		case err = <-exited:
			done = true
		default:
			if strings.Contains(stderr.String(), "finishing "+what+" first") {
				for _, sig := range signals[1:] {
					if err := cmd.Process.Signal(sig); err != nil {
						t.Fatal(err)
					}
					for !strings.Contains(stderr.String(), sig.String()+": still finishing") && time.Now().Before(deadline) {
						runtime.Gosched()
					}
				}
				answer <- struct{}{}
				err, done = <-exited, true
			} else if time.Now().After(deadline) {
				t.Fatalf("%s neither finished nor ended after the signal\n%s", name, stderr.String())
			}
			runtime.Gosched()
		}
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Errorf("%s was killed by the signal mid-way:\n%s", name, stderr.String())
	}
	return stderr.String()
}

// TestSIGTERMLetsACommentsRollbackFinish: the Action's `rollout comment` on `/rollout rollback`, whose
// job is cancelled (a newer run, a timeout: the runner sends SIGINT, then SIGTERM) after the rollback
// commit landed, while the webhook of rollback.notify is slow to answer, finishes as `rollout rollback`
// does: the notification owed is recorded in git, so the next pass delivers it. Before, the signal
// killed it between the commit and its notification, which nobody then knew was owed.
func TestSIGTERMLetsACommentsRollbackFinish(t *testing.T) {
	f := newCommentFixture(t)
	f.srv.SetPermission("ada", "write")
	hook, arrived, answer := slowWebhook(t)
	body := "/rollout rollback summarizer summaries are truncated"
	id := f.srv.AddComment(f.pull, "ada", "User", body)
	raw, _ := json.Marshal(map[string]any{
		"action":  "created",
		"issue":   map[string]any{"number": f.pull, "pull_request": map[string]any{"url": "x"}},
		"comment": map[string]any{"id": id, "body": body, "user": map[string]any{"login": "ada", "type": "User"}},
	})
	event := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(event, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(gittest.Env(), processEnv+"=comment\n--event\n"+event, processNowEnv+"="+f.now().Format(time.RFC3339),
		"ROLLOUT_ROLLBACK_WEBHOOK="+hook, "HOME="+t.TempDir())
	for _, k := range []string{"GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_SERVER_URL"} {
		cmd.Env = append(cmd.Env, k+"="+f.env[k])
	}
	// As a runner cancels a job: SIGINT, then SIGTERM, which must not end the process at once.
	stderr := sigtermWhileNotifying(t, cmd, "comment", "the comment's commands", arrived, answer, syscall.SIGINT, syscall.SIGTERM)
	log := gittest.Git(t, f.dir, "log", "--format=%B", "-2", "main")
	for _, want := range []string{"- by hand: summaries are truncated", "Rollout-Actor: ada", "Rollout-Notification: pending"} {
		if !strings.Contains(log, want) {
			t.Errorf("main lacks %q:\n%s\nstderr:\n%s", want, log, stderr)
		}
	}
}

// TestTheSameSignalTwiceStopsAtOnce: a person who signals again (a second Ctrl-C, a second SIGTERM)
// does not wait for a slow notification: the process ends at once, with the exit code a shell gives a
// process the signal killed (128 + 15).
func TestTheSameSignalTwiceStopsAtOnce(t *testing.T) {
	hook, arrived, _ := slowWebhook(t)
	cmd, _ := rollingBack(t, []string{"reconcile"}, hook)
	stderr, exited := startUntilNotifying(t, cmd, "reconcile", arrived)
	deadline := time.Now().Add(30 * time.Second)
	for _, wait := range []string{"finishing the pass first", "stopping at once"} {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for !strings.Contains(stderr.String(), wait) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after SIGTERM:\n%s", wait, stderr.String())
			}
			runtime.Gosched()
		}
	}
	err := <-exited
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("exit %v, want %d\n%s", err, 128+int(syscall.SIGTERM), stderr.String())
	}
}
