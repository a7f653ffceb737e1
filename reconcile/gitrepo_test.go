package reconcile_test

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/gitrepo"
	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
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
