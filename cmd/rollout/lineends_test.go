package main

import (
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestValidateReadsAPromptWithCRLFAsCommitted: on Windows git checks a prompt out with CRLF line ends
// (core.autocrlf) and commits it with LF. validate in such a checkout, and the plan of a pull request
// checked out there, must not announce that the running rollout restarts at stage 0 because its prompt
// "changed"; a prompt whose words changed still does, whatever its line ends.
func TestValidateReadsAPromptWithCRLFAsCommitted(t *testing.T) {
	spec := strings.Replace(gated("g"), "status:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-04-16T00:00:00Z\n", "", 1)
	spec = strings.Replace(spec, "  weight: 5\n", "  weight: 0\n", 1)
	bare := gittest.NewBare(t, map[string]string{"rollouts/g.yaml": spec, "prompts/p.md": "Answer briefly.\nBe kind.\n",
		"evals/g.json": evalsPass})
	if _, stderr, code := historyMain("reconcile", "--repo", bare); code != exitOK {
		t.Fatalf("reconcile: exit %d\n%s", code, stderr)
	}
	checkout := gittest.Clone(t, bare)
	if !strings.Contains(checkout.Git("show", "HEAD:rollouts/g.yaml"), "canary: ") {
		t.Fatal("the start did not record the canary's fingerprint")
	}
	const restart = "starts over at stage 0"
	for _, tt := range []struct {
		name, prompt string
		restarts     bool
		decision     string
	}{
		{"CRLF", "Answer briefly.\r\nBe kind.\r\n", false, `"decision":"hold"`},
		{"changed", "Answer at length.\r\nBe kind.\r\n", true, `"decision":"start"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkout.Write(map[string]string{"prompts/p.md": tt.prompt})
			stdout, stderr, code := historyMain("validate", "--repo", checkout.Dir)
			if code != exitOK || strings.Contains(stdout, restart) != tt.restarts {
				t.Errorf("validate: exit %d, restart announced %v, want %v\nstdout: %s\nstderr: %s", code, !tt.restarts, tt.restarts, stdout, stderr)
			}
			stdout, stderr, _ = historyMain("plan", "--repo", checkout.Dir, "--base", "main", "-o", "json")
			if !strings.Contains(stdout, tt.decision) {
				t.Errorf("plan --base: want %s\nstdout: %s\nstderr: %s", tt.decision, stdout, stderr)
			}
		})
	}
}
