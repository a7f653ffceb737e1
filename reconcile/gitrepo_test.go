package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// barrierRepo runs before each push, so a test can line up two processes or slip a human's push in.
type barrierRepo struct {
	reconcile.Repository
	before func()
}

func (b *barrierRepo) Push(ctx context.Context, req reconcile.PushRequest) (string, error) {
	b.before()
	return b.Repository.Push(ctx, req)
}

func loopOn(t *testing.T, bare string, before func()) *reconcile.Loop {
	t.Helper()
	remote, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	return &reconcile.Loop{Repo: &barrierRepo{Repository: remote, before: before}, Forge: &gitrepo.LocalForge{Remote: remote},
		Sources: func(*rollouts.Spec) (policy.Source, error) { return emptySource{}, nil },
		Gates: func(context.Context, fs.FS, *rollouts.Spec, int) policy.GateResult {
			return policy.GateResult{Open: true}
		},
		Now: func() time.Time { return benchNow }}
}

const pendingSpec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable:
  model: a
canary:
  model: b
traffic:
  weight: 0
stages:
  - {weight: 5, minDuration: 1h}
`

func TestTwoProcessesOnARealRemoteLandOneCommit(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": pendingSpec})
	var ready sync.WaitGroup
	ready.Add(2)
	var once sync.Map
	barrier := func(id int) func() {
		return func() {
			if _, again := once.LoadOrStore(id, true); !again {
				ready.Done()
				ready.Wait() // both have decided on the same snapshot before either pushes
			}
		}
	}
	loops := []*reconcile.Loop{loopOn(t, bare, barrier(0)), loopOn(t, bare, barrier(1))}
	reps := make([]*reconcile.Report, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = l.Tick(context.Background())
		}()
	}
	wg.Wait()
	commits := 0
	for i, rep := range reps {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		r := rep.Results[0]
		if r.Err != nil {
			t.Errorf("process %d: %v", i, r.Err)
		}
		if r.Commit != "" {
			commits++
		} else if r.Decision != policy.Hold {
			t.Errorf("the loser decided %s on its fresh snapshot, want hold", r.Decision)
		}
	}
	log := gittest.Git(t, bare, "log", "--format=%s", "main")
	if commits != 1 || strings.Count(log, "\n") != 1 || !strings.HasPrefix(log, "rollout(summarizer): start stage 0 at 5%") {
		t.Errorf("%d commits reported; log:\n%s", commits, log)
	}
}

func TestRollbackLandsAfterAHumanPushedInBetween(t *testing.T) {
	started := strings.Replace(pendingSpec, "weight: 0", "weight: 5", 1) + "status:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-04-16T00:00:00Z\n"
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": started, "README.md": "hi\n"})
	human := gittest.Clone(t, bare)
	pushes := 0
	l := loopOn(t, bare, func() {
		pushes++
		if pushes <= 2 { // two races in a row: each fresh decision meets another human push
			human.Write(map[string]string{"README.md": fmt.Sprintf("edit %d\n", pushes)})
			human.Commit(fmt.Sprintf("docs %d", pushes))
			human.Push("main")
		}
	})
	l.Judge = func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
		d := policy.Judge(spec, ev, now)
		if spec.Status.Phase == rollouts.Progressing {
			d.Action, d.Next, d.Reasons = policy.Rollback, &policy.Step{}, []string{"error_rate: canary worse than allowed"}
		}
		return d
	}
	rep, err := l.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Err != nil || r.Decision != policy.Rollback || r.Commit == "" {
		t.Fatalf("%+v", r)
	}
	log := gittest.Git(t, bare, "log", "--format=%s", "main")
	if want := "rollout(summarizer): rollback 5% → 0%\ndocs 2\ndocs 1\nInitial commit"; log != want {
		t.Errorf("log:\n%s\nwant:\n%s", log, want)
	}
}

const twoStageSpec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable:
  model: a
canary:
  model: b
traffic:
  weight: 5
stages:
  - {weight: 5, minDuration: 1h}
  - {weight: 25, minDuration: 1h}
status:
  phase: Progressing
  stage: 0
  stageStartedAt: 2026-04-16T00:00:00Z
`

// TestMergedProposalStaysMergedAfterARollback runs the loop on a real bare repository through a whole
// story: it proposes an advance, a human fast-forwards it, the loop rolls back on the default branch and
// the team commits on. From the merge on, the old bot branch never reads as open, and later ticks
// neither propose, refresh nor close it.
func TestMergedProposalStaysMergedAfterARollback(t *testing.T) {
	ctx := context.Background()
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": twoStageSpec, "README.md": "hi\n"})
	remote, err := gitrepo.Open(ctx, gitrepo.Options{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	forge := &gitrepo.LocalForge{Remote: remote, Out: &printed}
	l := &reconcile.Loop{Repo: remote, Forge: forge,
		Sources: func(*rollouts.Spec) (policy.Source, error) { return emptySource{}, nil },
		Gates: func(context.Context, fs.FS, *rollouts.Spec, int) policy.GateResult {
			return policy.GateResult{Open: true}
		},
		Judge: func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
			d := policy.Judge(spec, ev, now)
			if spec.Status != nil && spec.Status.Phase == rollouts.Progressing {
				switch spec.Status.Stage {
				case 0:
					d.Action, d.Next, d.Reasons = policy.Advance, &policy.Step{Stage: 1, Weight: 25}, []string{"every rule passes"}
				case 1:
					d.Action, d.Next, d.Reasons = policy.Rollback, &policy.Step{}, []string{"error_rate: canary worse than allowed"}
				}
			}
			return d
		},
		Now: func() time.Time { return benchNow }}
	tick := func(want policy.Action) reconcile.Result {
		t.Helper()
		rep, err := l.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if r.Err != nil || r.Decision != want {
			t.Fatalf("tick: %+v, want decision %s", r, want)
		}
		return r
	}
	notOpen := func(when string) {
		t.Helper()
		props, err := forge.Proposals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := props["summarizer"]; ok && p.State != reconcile.ProposalMerged {
			t.Fatalf("%s: proposal %s is %s, want merged or gone", when, p.Branch, p.State)
		}
	}

	// The loop proposes stage 1; a human fast-forwards the default branch to it.
	if r := tick(policy.Advance); r.Commit == "" || r.Proposal == "" {
		t.Fatalf("advance did not propose: %+v", r)
	}
	branchHead := gittest.Head(t, bare, "rollout/summarizer")
	human := gittest.Clone(t, bare)
	human.Git("merge", "--quiet", "--ff-only", "origin/rollout/summarizer")
	human.Push("main")
	notOpen("after the fast-forward")

	// The loop rolls back on the default branch, which changes the spec file again.
	if r := tick(policy.Rollback); r.Commit == "" || r.Proposal != "" {
		t.Fatalf("rollback: %+v", r)
	}
	notOpen("after the rollback")

	// The team commits on; the merged branch is now many commits deep in the history.
	human.Pull()
	for i := range 4 {
		human.Write(map[string]string{"README.md": fmt.Sprintf("edit %d\n", i)})
		human.Commit(fmt.Sprintf("docs %d", i))
	}
	human.Push("main")
	notOpen("after later commits")
	mainHead := gittest.Head(t, bare, "main")

	printed.Reset()
	for range 2 {
		if r := tick(policy.Hold); r.Commit != "" || r.Proposal != "" {
			t.Fatalf("a tick after the rollback wrote: %+v", r)
		}
	}
	if printed.Len() != 0 {
		t.Errorf("the forge was used after the rollback:\n%s", printed.String())
	}
	if got := gittest.Head(t, bare, "main"); got != mainHead {
		t.Errorf("main moved from %s to %s", mainHead, got)
	}
	if got, err := gittest.RunGit(bare, "rev-parse", "--verify", "refs/heads/rollout/summarizer"); err == nil && got != branchHead {
		t.Errorf("rollout/summarizer moved from %s to %s", branchHead, got)
	}
	notOpen("after two more ticks")
}

// alerts records the events a loop sends.
type alerts struct{ events []reconcile.Event }

func (a *alerts) Notify(_ context.Context, _ []rollouts.Notify, ev reconcile.Event) error {
	a.events = append(a.events, ev)
	return nil
}

// TestSampleRatioMismatchOnARealRemoteAlertsOncePerEpisode runs a new process per tick (a cron run)
// against a real bare repository: a sample-ratio mismatch is alerted once, with the one commit that
// records its start; the ticks in between write nothing, a plan writes and sends nothing, and one
// commit clears it when the shares match again.
func TestSampleRatioMismatchOnARealRemoteAlertsOncePerEpisode(t *testing.T) {
	spec := twoStageSpec[:strings.Index(twoStageSpec, "status:")] + "rollback:\n  notify: [{webhook: env:ROLLOUT_ROLLBACK_WEBHOOK}]\n" +
		twoStageSpec[strings.Index(twoStageSpec, "status:"):]
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": spec})
	sent := &alerts{}
	mismatch := true
	process := func() *reconcile.Loop {
		l := loopOn(t, bare, func() {})
		l.Notifier = sent
		l.Judge = func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
			d := policy.Decision{Action: policy.Hold, Current: policy.Step{Stage: 0, Weight: 5}, Reasons: []string{"minDuration not reached"}}
			if mismatch {
				d.SampleRatioMismatch = true
				d.Reasons = []string{"sample ratio mismatch: the canary has 10% of keys (100 of 1000), where the spec sets 5%"}
			}
			return d
		}
		return l
	}
	ctx := context.Background()
	for i, m := range []bool{true, true, true, false, false} {
		mismatch = m
		before := gittest.Git(t, bare, "rev-parse", "main")
		if _, err := process().Plan(ctx); err != nil {
			t.Fatal(err)
		}
		if after := gittest.Git(t, bare, "rev-parse", "main"); after != before || len(sent.events) > min(i, 1) {
			t.Fatalf("tick %d: a plan wrote or alerted", i)
		}
		rep, err := process().Tick(ctx)
		if err != nil || rep.Results[0].Err != nil {
			t.Fatalf("tick %d: %v %+v", i, err, rep)
		}
	}
	log := gittest.Git(t, bare, "log", "--format=%s", "main")
	if want := "rollout(summarizer): sample ratio matches again after 0s\nrollout(summarizer): sample ratio mismatch\nInitial commit"; log != want {
		t.Errorf("log:\n%s\nwant:\n%s", log, want)
	}
	started := strings.TrimSpace(gittest.Git(t, bare, "rev-parse", "main~1"))
	if len(sent.events) != 1 || sent.events[0].Decision != "alert" || sent.events[0].Commit != started {
		t.Errorf("alerts = %+v, want one with commit %s", sent.events, started)
	}
}

// TestAPassAskedToStopBeginsNoOtherRollout: a signal during a pass (RunOptions.Stop) lets the rollout
// under way finish (its start lands) and begins no other: each is reported with ErrStopping for the
// next pass, and nothing is published.
func TestAPassAskedToStopBeginsNoOtherRollout(t *testing.T) {
	other := strings.Replace(pendingSpec, "name: summarizer", "name: tagger", 1)
	bare := gittest.NewBare(t, map[string]string{"rollouts/a-summarizer.yaml": pendingSpec, "rollouts/b-tagger.yaml": other})
	l := loopOn(t, bare, func() {})
	stop := make(chan struct{})
	judged := 0
	l.Judge = func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
		judged++
		close(stop) // the signal arrives while the first rollout is judged
		return policy.Judge(spec, ev, now)
	}
	rep, err := l.Run(context.Background(), reconcile.RunOptions{Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	if judged != 1 || len(rep.Results) != 2 {
		t.Fatalf("judged %d, results %+v; want the first rollout alone judged, both reported", judged, rep.Results)
	}
	first, second := rep.Results[0], rep.Results[1]
	if first.Rollout != "summarizer" || first.Decision != policy.Start || first.Commit == "" || first.Err != nil {
		t.Errorf("the rollout under way: %+v, want its start committed", first)
	}
	if second.Rollout != "tagger" || !errors.Is(second.Err, reconcile.ErrStopping) || second.Commit != "" {
		t.Errorf("the rollout after the signal: %+v, want ErrStopping and nothing written", second)
	}
}
