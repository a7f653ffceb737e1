//go:build unix

package faults

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
)

// The runner's patience when it cancels a job (actions/runner, ProcessInvoker.CancelAndKillProcessTree
// with killProcessOnCancel false, as ScriptHandler runs a `run:` step): SIGINT to the step's process,
// up to 7.5 s for it to end, SIGTERM, up to 2.5 s more, then SIGKILL to that one process. Processes left
// over are killed when the job ends ("Terminate orphan process").
const (
	runnerSIGINTWait  = 7500 * time.Millisecond
	runnerSIGTERMWait = 2500 * time.Millisecond
)

// TestCancelledActionFinishesTheRollback: the job running the Action is cancelled (timeout-minutes, a
// person's cancel) after a rollback commit landed, while the webhook of rollback.notify is slow to
// answer. The test is the runner: it runs the "Run rollout" step of action.yml as the runner does,
// with the real binary and the GitHub test server, and sends the step's process SIGINT, then SIGTERM,
// each once the previous one was dealt with (or the runner's wait ran out), then kills whatever is left.
// rollout hears both, as one request to stop, and finishes: the webhook fails, so the commit that records
// the notification as owed lands on main and the next pass delivers it; the step fails. Before, the
// signals reached the bash of the step's script only: it died of SIGTERM, and rollout, which never heard
// anything, was killed with the job, between the rollback commit and its notification, with no record
// that one was owed.
func TestCancelledActionFinishesTheRollback(t *testing.T) {
	race.Skip(t, race.OutOfProcess)
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("the action's script needs jq")
	}
	for _, tt := range []struct {
		command, args string
		what          string                                 // what rollout says it finishes first
		message       string                                 // in the rollback commit
		env           func(t *testing.T, g *github) []string // the event, for comment
		// hangs: the webhook never answers, and the runner kills the step when its patience ends.
		hangs bool
	}{
		{"reconcile", "", "the pass", "rollout(summarizer): rollback 5% → 0%", nil, false},
		{"reconcile, webhook hangs", "", "the pass", "rollout(summarizer): rollback 5% → 0%", nil, true},
		{"rollback", "summarizer\n--reason\nbad summaries", "the rollback", "- by hand: bad summaries", nil, false},
		{"comment", "", "the comment's commands", "- by hand: summaries are truncated", func(t *testing.T, g *github) []string {
			pr := g.gh.AddPull("feature/docs", "main", "Docs", "", "ada")
			g.gh.SetPermission("ada", "write")
			event := g.commentEvent(t, pr, "ada", "created", "/rollout rollback summarizer summaries are truncated")
			return []string{"GITHUB_EVENT_NAME=issue_comment", "GITHUB_EVENT_PATH=" + event, "GITHUB_ACTOR=ada"}
		}, false},
	} {
		t.Run(tt.command, func(t *testing.T) {
			command, _, _ := strings.Cut(tt.command, ",")
			g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
			g.writeTraffic("summarizer", 0.30) // a canary that fails: reconcile rolls it back
			var env []string
			if tt.env != nil {
				env = tt.env(t, g)
			}
			// The webhook fails, once the test lets it answer (every try of the notifier after that
			// fails at once).
			arrived, answer := make(chan struct{}, 1), make(chan struct{})
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case arrived <- struct{}{}:
				default:
				}
				<-answer
				w.WriteHeader(http.StatusBadGateway)
			}))
			t.Cleanup(hook.Close)
			var once sync.Once
			letAnswer := func() { once.Do(func() { close(answer) }) }
			defer letAnswer() // a test that fails early lets the server close

			step := cancelledStep(t, g, command, tt.args, rolloutBin(t), append(env, "ROLLOUT_ROLLBACK_WEBHOOK="+hook.URL+"/services/"+g.hook.secret)...)
			select {
			case <-arrived: // the rollback commit has landed; its notification is under way
			case <-step.exited:
				t.Fatalf("the step ended before notifying: %v\n%s", step.err, step.printed())
			case <-time.After(60 * time.Second):
				t.Fatalf("no notification\n%s", step.printed())
			}
			for _, c := range []struct {
				sig  syscall.Signal
				said string
				wait time.Duration
			}{
				{syscall.SIGINT, "interrupt: finishing " + tt.what + " first", runnerSIGINTWait},
				{syscall.SIGTERM, "terminated: still finishing " + tt.what, runnerSIGTERMWait},
			} {
				if err := step.cmd.Process.Signal(c.sig); err != nil {
					t.Fatal(err)
				}
				if !step.until(c.wait, func() bool { return strings.Contains(step.rolloutSaid(), c.said) }) && !step.ended() {
					t.Errorf("after the runner's %v, rollout did not say %q", c.sig, c.said)
				}
				if tt.hangs {
					step.until(c.wait, step.ended) // the runner's whole patience, no more
				}
				if step.ended() {
					break
				}
			}
			if !step.ended() && !tt.hangs {
				letAnswer() // the webhook fails: rollout records the notification as owed
				select {
				case <-step.exited:
				case <-time.After(60 * time.Second):
					t.Errorf("the step did not end once the webhook answered")
				}
			}
			// The runner's SIGKILL, and the job's end: whatever the step left is killed before the
			// webhook lets a notification through.
			step.killLeftovers()

			log := g.git("log", "--format=%B", "-2", "main")
			for _, want := range []string{tt.message, "Rollout-Notification: pending"} {
				if !strings.Contains(log, want) {
					t.Errorf("main lacks %q:\n%s\nthe step printed:\n%s", want, log, step.printed())
				}
			}
			var exit *exec.ExitError
			if !errors.As(step.err, &exit) || exit.Sys().(syscall.WaitStatus).Signaled() {
				t.Errorf("the step ended with %v, want a failure it reports: a cancelled step never succeeds\n%s", step.err, step.printed())
			}
			if p := step.printed(); !strings.Contains(p, "SIGINT: passed on to rollout") || !strings.Contains(p, "interrupt: finishing "+tt.what+" first") {
				t.Errorf("the step's log does not say that rollout heard the cancel:\n%s", p)
			}
		})
	}
}

// TestCancelBeforeRolloutWritesStopsAtOnce: a job cancelled while rollout has not started writing yet
// (it reads the specs, asks the metrics) ends at the runner's SIGINT, as rollout run in a terminal ends
// at a Ctrl-C. A script's background command starts with SIGINT ignored; rollout, run so by the Action's
// script to pass the runner's signals on, ignored it until it began to write, so the cancel waited for
// the runner's SIGTERM, 7.5 s later, and a rollout that began writing in between wrote on. The binary
// here is a stand-in that does not handle signals, waiting as rollout does for a slow source.
func TestCancelBeforeRolloutWritesStopsAtOnce(t *testing.T) {
	race.Skip(t, race.OutOfProcess)
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("the action's script needs jq")
	}
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	dir := t.TempDir()
	ready, bin := filepath.Join(dir, "ready"), filepath.Join(dir, "rollout")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n: > \"$ROLLOUT_TEST_READY\"\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	step := cancelledStep(t, g, "reconcile", "", bin, "ROLLOUT_TEST_READY="+ready)
	if !step.until(60*time.Second, func() bool { _, err := os.Stat(ready); return err == nil }) {
		t.Fatalf("the stand-in did not start: %v\n%s", step.err, step.printed())
	}
	if err := step.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !step.until(runnerSIGINTWait, step.ended) {
		t.Fatalf("the step did not end within the runner's %v after SIGINT\n%s", runnerSIGINTWait, step.printed())
	}
	var exit *exec.ExitError
	if !errors.As(step.err, &exit) || exit.ExitCode() != 128+int(syscall.SIGINT) {
		t.Errorf("the step ended with %v, want exit %d (rollout's own: killed by SIGINT)\n%s", step.err, 128+int(syscall.SIGINT), step.printed())
	}
}

// runningStep is the "Run rollout" step of action.yml, running as a runner runs it.
type runningStep struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    string // the step's output, as the runner would log it
	tmp    string // the TMPDIR of the step, where run.sh keeps what rollout says
	exited chan struct{}
	err    error // how the step ended, once exited is closed
}

// cancelledStep starts the "Run rollout" step of action.yml for command with args (the inputs), with
// bin as the installed binary and env added to the step's environment, in a process group of its own
// (so that the test can kill what the step leaves, as the runner does at the job's end).
func cancelledStep(t *testing.T, g *github, command, args, bin string, env ...string) *runningStep {
	t.Helper()
	r := newActionRun(t, g, "v1", map[string]string{"command": command, "args": args})
	r.outputs = map[string]map[string]string{"install": {"bin": bin}}
	r.summary = filepath.Join(r.temp, "summary.md")
	var cmd *exec.Cmd
	for i, s := range actionSteps(t) {
		if s.ID == "run" {
			cmd = r.stepCommand(i, s, filepath.Join(r.temp, "output"))
		}
	}
	if cmd == nil {
		t.Fatal(`action.yml has no step "run"`)
	}
	s := &runningStep{t: t, cmd: cmd, out: filepath.Join(r.temp, "printed"), tmp: t.TempDir(), exited: make(chan struct{})}
	cmd.Env = append(append(cmd.Env, "TMPDIR="+s.tmp), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a pipe: the step has ended when its process has, whatever it left behind holding
	// the runner's pipes (the runner waits 5 s more for those, then goes on).
	f, err := os.Create(s.out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.killLeftovers)
	return s
}

// ended says whether the step's process has ended.
func (s *runningStep) ended() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// until waits at most d for cond to hold, as long as the step runs; it says whether cond held. It
// looks every few milliseconds: cond reads files, which a busy loop would read thousands of times.
func (s *runningStep) until(d time.Duration, cond func() bool) bool {
	deadline := time.After(d)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-s.exited:
			return cond()
		case <-deadline:
			return cond()
		case <-poll.C:
		}
	}
	return true
}

// rolloutSaid is what rollout wrote so far to the files run.sh keeps its messages in (they reach the
// log once rollout ends).
func (s *runningStep) rolloutSaid() string {
	files, _ := filepath.Glob(filepath.Join(s.tmp, "*", "*.txt"))
	var said strings.Builder
	for _, f := range files {
		b, _ := os.ReadFile(f)
		said.Write(b)
	}
	return said.String()
}

// printed is what the step printed.
func (s *runningStep) printed() string {
	b, _ := os.ReadFile(s.out)
	return string(b)
}

// killLeftovers kills every process of the step's group, as the runner kills the step and then the
// processes a job left.
func (s *runningStep) killLeftovers() {
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.t.Errorf("kill the step's processes: %v", err)
	}
	<-s.exited
}
