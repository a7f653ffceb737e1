package faults

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestHumanCommitBetweenFetchAndPush: a human pushes to main after the bot fetched and before it pushes
// its rollback. The remote refuses the bot's push, the bot fetches again, decides again on the new
// state, and its rollback lands on top: the human's commit is kept.
func TestHumanCommitBetweenFetchAndPush(t *testing.T) {
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold"), "README.md": "hello\n"}, true)
	w.writeTraffic("summarizer", 0.30)
	human := gittest.Clone(t, w.bare)
	var humanCommit string
	r := w.remote(gitrepo.Options{})
	l := w.loop(&pushHook{Repository: r, before: func(reconcile.PushRequest) {
		human.Write(map[string]string{"README.md": "hello, with a human's edit\n"})
		humanCommit = human.Commit("docs: a human's edit")
		human.Push("main")
	}}, &gitrepo.LocalForge{Remote: r})
	res := result(t, tick(t, l), "summarizer")
	if res.Decision != policy.Rollback || res.Err != nil || res.Commit == "" {
		t.Fatalf("rollback with a human push in between: %+v", res)
	}
	want := []string{"rollout(summarizer): rollback 5% → 0%", "docs: a human's edit", "Initial commit"}
	if got := w.subjects("main"); !slices.Equal(got, want) {
		t.Fatalf("main = %q, want %q", got, want)
	}
	if parent := w.git("rev-parse", res.Commit+"^"); parent != humanCommit {
		t.Errorf("rollback's parent = %s, want the human's %s", parent, humanCommit)
	}
	if got := w.git("show", "main:README.md"); got != "hello, with a human's edit" {
		t.Errorf("README.md = %q: the human's edit was lost", got)
	}
	if st := w.spec("summarizer").Status; st.Phase != rollouts.RolledBack {
		t.Errorf("status = %+v", st)
	}
	if evs := w.hook.received(); len(evs) != 1 || evs[0].Decision != "rollback" || evs[0].Commit != res.Commit {
		t.Errorf("notifications = %+v, want one for %s", evs, res.Commit)
	}
}

// TestUnreachableRemoteWritesNothing: a remote that fails or hangs during the snapshot fails the pass
// with a transient error; one that fails during the push leaves every ref as it was, a repository that
// passes fsck, and no notification of a rollback that did not land. Once the remote is back, the next
// tick lands the rollback, once.
func TestUnreachableRemoteWritesNothing(t *testing.T) {
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")}, true)
	w.writeTraffic("summarizer", 0.30)
	before := w.refs()
	ctx := context.Background()

	// The snapshot fails: the pass reports it and does nothing.
	l := w.localLoop()
	w.srv.FailNext(5, http.StatusBadGateway)
	if _, err := l.Tick(ctx); !errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("tick against a failing remote: %v, want ErrTransient", err)
	}
	// The snapshot hangs: the remote's timeout bounds it.
	w.srv.Heal()
	impatient := w.remote(gitrepo.Options{Timeout: 300 * time.Millisecond})
	w.srv.HangNext(1)
	if _, err := w.loop(impatient, nil).Tick(ctx); !errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("tick against a hanging remote: %v, want ErrTransient", err)
	}
	// The push fails, after a good snapshot.
	w.srv.Heal()
	r := w.remote(gitrepo.Options{})
	l = w.loop(&pushHook{Repository: r, before: func(reconcile.PushRequest) { w.srv.FailNext(20, http.StatusBadGateway) }}, nil)
	res := result(t, tick(t, l), "summarizer")
	if res.Decision != policy.Rollback || res.Commit != "" || !errors.Is(res.Err, reconcile.ErrTransient) {
		t.Fatalf("rollback against a remote failing the push: %+v", res)
	}
	if got := w.refs(); got != before {
		t.Fatalf("refs changed by a failed push:\n%s\nwas\n%s", got, before)
	}
	w.git("fsck", "--strict", "--no-dangling")
	if evs := w.hook.received(); len(evs) != 0 {
		t.Fatalf("a rollback that did not land was notified: %+v", evs)
	}
	// The remote is back: the next tick lands it.
	w.srv.Heal()
	res = result(t, tick(t, w.localLoop()), "summarizer")
	if res.Decision != policy.Rollback || res.Err != nil || res.Commit == "" {
		t.Fatalf("rollback once the remote is back: %+v", res)
	}
	if got := w.subjects("main"); len(got) != 2 {
		t.Fatalf("main = %q, want one rollback commit", got)
	}
	if evs := w.hook.received(); len(evs) != 1 || evs[0].Commit != res.Commit {
		t.Fatalf("notifications = %+v", evs)
	}
}

// TestTwoProcessesAtOnce: two `rollout reconcile` processes (each its own remote over smart HTTP) tick
// at the same moment, both having fetched before either pushes. Exactly one start commit lands; later,
// exactly one rollback commit lands. The loser decides again on the winner's commit and writes nothing.
func TestTwoProcessesAtOnce(t *testing.T) {
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": pending("summarizer")}, true)
	race := func(wantDecision policy.Action) {
		t.Helper()
		var ready sync.WaitGroup
		ready.Add(2)
		loops := make([]*reconcile.Loop, 2)
		for i := range loops {
			r := w.remote(gitrepo.Options{})
			// Each process pushes only after both have fetched and decided.
			loops[i] = w.loop(&pushHook{Repository: r, before: func(reconcile.PushRequest) { ready.Done(); ready.Wait() }},
				&gitrepo.LocalForge{Remote: r})
		}
		reps := make([]*reconcile.Report, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, l := range loops {
			wg.Go(func() { reps[i], errs[i] = l.Tick(context.Background()) })
		}
		wg.Wait()
		commits := 0
		for i, rep := range reps {
			if errs[i] != nil {
				t.Fatalf("process %d: %v", i, errs[i])
			}
			res := result(t, rep, "summarizer")
			if res.Err != nil {
				t.Errorf("process %d: %+v", i, res)
			}
			if res.Commit != "" {
				commits++
				if res.Decision != wantDecision {
					t.Errorf("winner decided %s, want %s", res.Decision, wantDecision)
				}
			} else if res.Decision != policy.Hold {
				t.Errorf("loser decided %s on the winner's commit, want hold", res.Decision)
			}
		}
		if commits != 1 {
			t.Errorf("%d processes committed, want exactly 1", commits)
		}
	}
	// The application has not written a request yet: an empty file, so that the loser's fresh decision
	// is a plain hold rather than a failing source (which records its start).
	w.writeFile("traffic/summarizer.jsonl", nil)
	race(policy.Start)
	if got := w.subjects("main"); len(got) != 2 || !strings.Contains(got[0], "start") {
		t.Fatalf("main after the start race = %q", got)
	}
	w.writeTrafficFrom("summarizer", w.clock(), 0.30)
	w.setNow(w.clock().Add(2 * time.Hour))
	race(policy.Rollback)
	if got := w.subjects("main"); len(got) != 3 || !strings.Contains(got[0], "rollback") {
		t.Fatalf("main after the rollback race = %q", got)
	}
	if evs := w.hook.received(); len(evs) != 1 {
		t.Errorf("notifications = %+v, want exactly one rollback", evs)
	}
}

// TestFailedRollbackNotificationIsRetried: the webhook is down when the rollback lands. The rollback
// stays, the failure is reported, git records that the notification is pending (a second commit on
// top of the bot's own rollback), and the next process delivers it, once.
func TestFailedRollbackNotificationIsRetried(t *testing.T) {
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")}, true)
	w.writeTraffic("summarizer", 0.30)
	w.hook.fail(http.StatusInternalServerError)
	res := result(t, tick(t, w.localLoop()), "summarizer")
	if res.Decision != policy.Rollback || res.Commit == "" || res.Err == nil || !strings.Contains(res.Err.Error(), "notify") {
		t.Fatalf("rollback with the webhook down: %+v", res)
	}
	want := []string{"rollout(summarizer): notification pending", "rollout(summarizer): rollback 5% → 0%", "Initial commit"}
	if got := w.subjects("main"); !slices.Equal(got, want) {
		t.Fatalf("main = %q, want %q", got, want)
	}
	w.hook.fail(0)
	res = result(t, tick(t, w.localLoop()), "summarizer")
	if res.Err != nil {
		t.Fatalf("next tick: %+v", res)
	}
	if evs := w.hook.received(); len(evs) != 1 || evs[0].Decision != "rollback" || evs[0].From != 5 {
		t.Fatalf("notifications = %+v, want the rollback once", evs)
	}
	if st := w.spec("summarizer").Status; st.Phase != rollouts.RolledBack || strings.Contains(st.Message, "pending") {
		t.Errorf("status after delivery = %+v", st)
	}
	res = result(t, tick(t, w.localLoop()), "summarizer")
	if res.Err != nil || res.Commit != "" || len(w.hook.received()) != 1 {
		t.Errorf("a third tick: %+v, notifications %d", res, len(w.hook.received()))
	}
}

// TestHumanPushAfterRollbackKeepsTheFailure: the rollback lands, its notification fails, and a human
// pushes before the bot can record that the notification is pending. The landed rollback is not decided
// again: the result still carries the rollback commit and the notification failure, so the report
// fails, and the pending mark is recorded on top of the human's commit, for the next tick to deliver.
func TestHumanPushAfterRollbackKeepsTheFailure(t *testing.T) {
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold"), "README.md": "hello\n"}, true)
	w.writeTraffic("summarizer", 0.30)
	w.hook.fail(http.StatusInternalServerError)
	human := gittest.Clone(t, w.bare)
	r := w.remote(gitrepo.Options{})
	l := w.loop(&pushHook{Repository: r, At: 2, before: func(reconcile.PushRequest) {
		human.Pull()
		human.Write(map[string]string{"README.md": "edited\n"})
		human.Commit("docs")
		human.Push("main")
	}}, &gitrepo.LocalForge{Remote: r})
	rep := tick(t, l)
	res := result(t, rep, "summarizer")
	if res.Decision != policy.Rollback || res.Commit == "" || res.Err == nil || !strings.Contains(res.Err.Error(), "notify") || !rep.Failed() {
		t.Fatalf("rollback whose notification failed: %+v", res)
	}
	if got := w.subjects("main"); got[0] != "rollout(summarizer): notification pending" || got[1] != "docs" || got[2] != "rollout(summarizer): rollback 5% → 0%" {
		t.Errorf("main = %q", got)
	}
}
