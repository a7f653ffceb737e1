package gitrepo

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile"
)

// benchRepos are built once per run of the test binary, with git fast-import, and removed by TestMain.
var (
	benchRoot  string
	benchMu    sync.Mutex
	benchCache = map[string]string{}
)

func TestMain(m *testing.M) {
	if runPollsForRSS() {
		os.Exit(0)
	}
	code := m.Run()
	if benchRoot != "" {
		os.RemoveAll(benchRoot)
	}
	os.Exit(code)
}

// benchRepo returns a bare repository whose main branch has commits commits; the first creates files
// spec files, each later one changes one of them. The final tree has the same shape whatever commits is.
func benchRepo(b *testing.B, files, commits int) string {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	key := fmt.Sprintf("%d-%d", files, commits)
	if dir, ok := benchCache[key]; ok {
		return dir
	}
	if benchRoot == "" {
		root, err := os.MkdirTemp("", "gitrepo-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchRoot = root
	}
	dir := filepath.Join(benchRoot, key+".git")
	gittest.Git(b, ".", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Env = gittest.Env()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	inline := func(path, content string) {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
	}
	for c := range commits {
		msg := fmt.Sprintf("commit %d", c)
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Ada <ada@example.com> %d +0000\ndata %d\n%s\n", 1_700_000_000+c, len(msg), msg)
		if c == 0 {
			for f := range files {
				inline(fmt.Sprintf("rollouts/r%04d.yaml", f), benchSpec(f, 0))
			}
			inline("README.md", "bench\n")
		} else {
			f := c % files
			inline(fmt.Sprintf("rollouts/r%04d.yaml", f), benchSpec(f, c))
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("fast-import: %v", err)
	}
	gittest.Git(b, dir, "gc", "--quiet")
	benchCache[key] = dir
	return dir
}

func benchSpec(i, version int) string {
	return fmt.Sprintf(`apiVersion: rollout/v1
kind: Rollout
name: r%04d
description: version %d
stable: {model: claude-sonnet-4-5-20260301, prompt: prompts/v3.md}
canary: {model: claude-sonnet-4-5-20260415, prompt: prompts/v3.md}
traffic: {weight: %d, shadow: 0}
stages:
  - {weight: 5, minDuration: 4h, minRequests: 200}
  - {weight: 25, minDuration: 8h, minRequests: 200}
  - {weight: 100, minDuration: 24h}
metrics: {source: "file:traffic/r%04d.jsonl"}
`, i, version, version%100, i)
}

// snapshotAndRead is what a tick does with git before judging: fetch, then read every spec.
func snapshotAndRead(b *testing.B, r *Remote) int64 {
	snap, err := r.Snapshot(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	entries, err := fs.ReadDir(snap.Files, "rollouts")
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		data, err := fs.ReadFile(snap.Files, "rollouts/"+e.Name())
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(data))
	}
	return n
}

// BenchmarkSnapshot1000Files fetches and reads a repository of 1,000 rollout files; compare with
// BenchmarkGitCLICloneDepth1.
func BenchmarkSnapshot1000Files(b *testing.B) {
	dir := benchRepo(b, 1000, 1)
	r, err := Open(context.Background(), Options{URL: dir, Branch: "main"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.SetBytes(snapshotAndRead(b, r))
	}
}

// BenchmarkGitCLICloneDepth1 is the baseline: `git clone --depth 1` of the same repository.
func BenchmarkGitCLICloneDepth1(b *testing.B) {
	dir := benchRepo(b, 1000, 1)
	work := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(work, fmt.Sprint(i))
		cmd := exec.Command("git", "clone", "--quiet", "--depth", "1", "--branch", "main", "file://"+dir, dst)
		cmd.Env = gittest.Env()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git clone: %v: %s", err, out)
		}
		b.StopTimer()
		os.RemoveAll(dst)
		b.StartTimer()
	}
}

// BenchmarkSnapshotHistory shows that a long history does not slow a snapshot: the ratio of
// commits=10000 to commits=1 should be close to 1.
func BenchmarkSnapshotHistory(b *testing.B) {
	for _, commits := range []int{1, 10000} {
		b.Run(fmt.Sprintf("commits=%d", commits), func(b *testing.B) {
			dir := benchRepo(b, 100, commits)
			r, err := Open(context.Background(), Options{URL: dir, Branch: "main"})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				snapshotAndRead(b, r)
			}
		})
	}
}

// BenchmarkPush measures one commit changing one spec of 1,000, pushed to a local bare repository.
func BenchmarkPush(b *testing.B) {
	src := benchRepo(b, 1000, 1)
	dir := filepath.Join(b.TempDir(), "push.git")
	gittest.Git(b, ".", "clone", "--quiet", "--bare", src, dir)
	r, err := Open(context.Background(), Options{URL: dir, Branch: "main"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		snap, err := r.Snapshot(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := r.Push(context.Background(), reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: snap.Head,
			When: when, Message: "bench", Files: map[string][]byte{"rollouts/r0001.yaml": []byte(benchSpec(1, i+1))}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLog10000Commits reads the history of one spec in a repository of 10,000 commits, as
// `rollout history` does.
func BenchmarkLog10000Commits(b *testing.B) {
	dir := benchRepo(b, 100, 10000)
	r, err := Open(context.Background(), Options{URL: dir, Branch: "main"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		commits, err := r.Log(context.Background(), "rollouts/r0007.yaml", 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(commits) != 101 { // the first commit, then every 100th
			b.Fatalf("%d commits, want 101", len(commits))
		}
	}
}
