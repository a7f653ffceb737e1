package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
)

const promptSpec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable:
  model: claude-sonnet-4-5-20260301
canary:
  model: claude-sonnet-4-5-20260415
  prompt: prompts/summarize/v4.md
traffic:
  weight: 0
  routes:
    - litellm: gateway/litellm.yaml
stages:
  - {weight: 5, minDuration: 1h}
  - {weight: 25, minDuration: 1h}
  - {weight: 100}
promotion: {via: commit}
analysis:
  rules:
    - {metric: error_rate, max: 0.05}
`

// TestReferencedFileEditRestartsAtStageZero edits, on the default branch of a real git remote, only a
// file that a running canary refers to: its prompt file, then its LiteLLM entry. Each edit restarts the
// rollout at stage 0 with a commit that names the file; the controller's own weight edits of the same
// route file, and a prompt edit that is undone, restart nothing.
func TestReferencedFileEditRestartsAtStageZero(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/summarizer.yaml": promptSpec,
		"prompts/summarize/v4.md":  "Summarize the text in three sentences.\n",
		"gateway/litellm.yaml":     routedLiteLLM,
	})
	t0 := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	healthy := armsSource{0.01, 0.01}
	show := func(rev, file string) string { return gittest.Git(t, bare, "show", rev+":"+file) }

	res := tick(t, routedLoop(t, bare, healthy, t0))
	if res.Decision != policy.Start || res.Commit == "" {
		t.Fatalf("first tick: %+v, want a start commit", res)
	}
	if spec := show(res.Commit, "rollouts/summarizer.yaml"); !strings.Contains(spec, "files: {gateway/litellm.yaml: ") || !strings.Contains(spec, "prompts/summarize/v4.md: ") {
		t.Fatalf("the start's status records no file hashes:\n%s", spec)
	}
	// Two hours later stage 0 passed: the advance to 25% lands (promotion.via: commit), editing the
	// route file's weights, which is no change of the canary.
	res = tick(t, routedLoop(t, bare, healthy, t0.Add(2*time.Hour)))
	if res.Decision != policy.Advance || res.Commit == "" {
		t.Fatalf("second tick: %+v, want an advance commit", res)
	}
	res = tick(t, routedLoop(t, bare, healthy, t0.Add(2*time.Hour+time.Minute)))
	if res.Decision == policy.Start {
		t.Fatalf("the controller's own route edit restarted the rollout: %+v", res)
	}

	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"prompts/summarize/v4.md": "Summarize the text in one sentence.\n"})
	human.Commit("shorter summaries")
	human.Push()

	res = tick(t, routedLoop(t, bare, healthy, t0.Add(3*time.Hour)))
	if res.Decision != policy.Start || res.Commit == "" {
		t.Fatalf("tick after the prompt edit: %+v, want a restart at stage 0", res)
	}
	msg := gittest.Git(t, bare, "log", "-1", "--format=%B", res.Commit)
	if subject := strings.SplitN(msg, "\n", 2)[0]; subject != "rollout(summarizer): restart at stage 0 (5%): prompt prompts/summarize/v4.md changed" {
		t.Errorf("restart subject %q", subject)
	}
	if spec := show(res.Commit, "rollouts/summarizer.yaml"); !strings.Contains(spec, "weight: 5\n") || !strings.Contains(spec, "stage: 0\n") {
		t.Errorf("the restart is not at stage 0:\n%s", spec)
	}
	res = tick(t, routedLoop(t, bare, healthy, t0.Add(3*time.Hour+time.Minute)))
	if res.Decision == policy.Start || res.Commit != "" {
		t.Fatalf("the tick after the restart: %+v, want nothing written", res)
	}

	// The canary's LiteLLM entry gains a parameter: the canary is another deployment now.
	human.Pull()
	litellm := show("HEAD", "gateway/litellm.yaml")
	edited := strings.Replace(litellm, "model: anthropic/claude-sonnet-4-5-20260415   # canary\n", "model: anthropic/claude-sonnet-4-5-20260415   # canary\n      temperature: 0.2\n", 1)
	if edited == litellm {
		t.Fatalf("test setup: the canary entry was not found in\n%s", litellm)
	}
	human.Write(map[string]string{"gateway/litellm.yaml": edited})
	human.Commit("warmer canary")
	human.Push()
	res = tick(t, routedLoop(t, bare, healthy, t0.Add(4*time.Hour)))
	if res.Decision != policy.Start || res.Commit == "" {
		t.Fatalf("tick after the route entry edit: %+v, want a restart", res)
	}
	if msg := gittest.Git(t, bare, "log", "-1", "--format=%s", res.Commit); !strings.Contains(msg, "route gateway/litellm.yaml's canary entry changed") {
		t.Errorf("restart subject %q does not name the route entry", msg)
	}
}
