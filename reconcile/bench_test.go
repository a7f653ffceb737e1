package reconcile_test

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

const benchSpec = `apiVersion: rollout/v1
kind: Rollout
name: r%04d
stable:
  model: claude-sonnet-4-5-20260301
canary:
  model: claude-sonnet-4-5-20260415
traffic:
  weight: 5
stages:
  - {weight: 5, minDuration: 4h, minRequests: 200}
  - {weight: 100, minDuration: 4h}
metrics:
  source: file:traffic.jsonl
analysis:
  rules:
    - {metric: error_rate, max: 0.02}
status:
  phase: Progressing
  stage: 0
  stageStartedAt: 2026-04-16T00:00:00Z
`

var benchNow = time.Date(2026, 4, 16, 1, 0, 0, 0, time.UTC)

// benchRepo builds, with git fast-import, a bare repository holding rollouts specs (all holding: their
// stage's minDuration has not passed) after commits commits; the commits after the first change a
// README, so the final tree is the same whatever the history's length.
func benchRepo(b *testing.B, rollouts, commits int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "bench.git")
	gittest.Git(b, ".", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Env = dir, gittest.Env()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(stdin)
	blob := func(s string) {
		fmt.Fprintf(w, "data %d\n%s\n", len(s), s)
	}
	for i := 1; i <= commits; i++ {
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter A U Thor <a@example.com> %d +0000\n", 1700000000+i)
		blob(fmt.Sprintf("commit %d", i))
		if i == 1 {
			for r := range rollouts {
				fmt.Fprintf(w, "M 100644 inline rollouts/r%04d.yaml\n", r)
				blob(fmt.Sprintf(benchSpec, r))
			}
		}
		fmt.Fprintf(w, "M 100644 inline README.md\n")
		blob(fmt.Sprintf("revision %d\n", i))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// emptySource answers every query with no data, so the judge holds on minDuration alone.
type emptySource struct{}

func (emptySource) Stats(context.Context, policy.Query) (*policy.Stats, error) {
	return &policy.Stats{}, nil
}

func benchLoop(b *testing.B, dir string) *reconcile.Loop {
	b.Helper()
	remote, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: dir})
	if err != nil {
		b.Fatal(err)
	}
	return &reconcile.Loop{Repo: remote, Forge: &gitrepo.LocalForge{Remote: remote},
		Sources: func(*rollouts.Spec) (policy.Source, error) { return emptySource{}, nil },
		Gates: func(context.Context, fs.FS, *rollouts.Spec, int) policy.GateResult {
			return policy.GateResult{Open: true}
		},
		Now: func() time.Time { return benchNow }}
}

func tickHolding(b *testing.B, l *reconcile.Loop, want int) {
	rep, err := l.Tick(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if len(rep.Results) != want {
		b.Fatalf("%d results, want %d", len(rep.Results), want)
	}
	for _, r := range rep.Results {
		if r.Err != nil || r.Decision != policy.Hold || r.Commit != "" {
			b.Fatalf("%s: %s %v", r.Rollout, r.Decision, r.Err)
		}
	}
}

// BenchmarkTick1000 is one tick over 1,000 holding rollouts, next to `git clone --depth 1` of the same
// repository by the git CLI: the floor any tick that reads the specs pays.
func BenchmarkTick1000(b *testing.B) {
	dir := benchRepo(b, 1000, 1)
	b.Run("tick", func(b *testing.B) {
		l := benchLoop(b, dir)
		b.ReportAllocs()
		for b.Loop() {
			tickHolding(b, l, 1000)
		}
	})
	b.Run("git-clone-depth-1", func(b *testing.B) {
		for b.Loop() {
			dst := filepath.Join(b.TempDir(), "clone")
			cmd := exec.Command("git", "clone", "--quiet", "--depth", "1", "file://"+dir, dst)
			cmd.Env = gittest.Env()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			os.RemoveAll(dst)
		}
	})
}

// BenchmarkTickHistory is a tick over 10 rollouts on a repository with one commit and on one with
// 10,000: a depth-1 fetch makes the two cost the same.
func BenchmarkTickHistory(b *testing.B) {
	for _, commits := range []int{1, 10000} {
		dir := benchRepo(b, 10, commits)
		b.Run(fmt.Sprintf("commits=%d", commits), func(b *testing.B) {
			l := benchLoop(b, dir)
			b.ReportAllocs()
			for b.Loop() {
				tickHolding(b, l, 10)
			}
		})
	}
}
