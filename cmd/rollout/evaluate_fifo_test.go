//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEvaluateRefusesNamedPipes runs `rollout evaluate` end to end with a named pipe nobody writes as
// its metrics file, then as its spec file: open(2) on such a pipe blocks forever (the command hung for
// more than 400 s), where now each run answers at once with an error naming the file. The deadline
// only turns a hang into a failure; it is not a speed target.
func TestEvaluateRefusesNamedPipes(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "traffic.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	t.Cleanup(func() {
		// Should a reader be blocked in open(2) after all, a writer's open and close releases it.
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	// A repository whose prompt and gate evals files are pipes, and a spec file that is one.
	repo := filepath.Join(dir, "repo")
	for _, d := range []string{"rollouts", "prompts", "evals"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := os.ReadFile("testdata/evaluate/summarizer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gated := strings.NewReplacer("prompts/summarize/v3.md", "prompts/p.md",
		"{weight: 25, minDuration: 8h,  minRequests: 200}", "{weight: 25, minDuration: 8h,  minRequests: 200, gate: {evals: evals/e.json}}").Replace(string(spec))
	if err := os.WriteFile(filepath.Join(repo, "rollouts", "s.yaml"), []byte(gated), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"prompts/p.md", "evals/e.json", "rollouts/t.yaml"} {
		if err := syscall.Mkfifo(filepath.Join(repo, p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"metrics file", []string{"evaluate", "--spec", "testdata/evaluate/summarizer.yaml", "--metrics", "file:" + fifo},
			[]string{fifo + ": not a regular file (a named pipe)"}},
		{"spec file", []string{"evaluate", "--spec", fifo}, []string{fifo + ": not a regular file (a named pipe)"}},
		{"validate: spec, prompt and evals files", []string{"--repo", repo, "validate"}, []string{
			"s.yaml:7:11: warning: stable.prompt: \"prompts/p.md\" is not a regular file (a named pipe)",
			"s.yaml:16:68: warning: stages[2].gate.evals: \"evals/e.json\" is not a regular file (a named pipe)",
			"t.yaml:1:1: cannot read: not a regular file (a named pipe)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, out, errOut := testApp()
			done := make(chan int, 1)
			go func() { done <- app.Main(tc.args) }()
			select {
			case code := <-done:
				all := out.String() + errOut.String()
				if code != exitFailed {
					t.Errorf("exit %d, want %d:\n%s", code, exitFailed, all)
				}
				for _, want := range tc.want {
					if !strings.Contains(all, want) {
						t.Errorf("output does not say %q:\n%s", want, all)
					}
				}
			case <-time.After(30 * time.Second):
				t.Fatal("rollout evaluate is still blocked on a named pipe after 30s")
			}
		})
	}
}
