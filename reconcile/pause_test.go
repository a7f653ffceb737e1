package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// pausedSpec is specFor with one rule that rolls back a canary whose error rate is shown above 5%.
func pausedSpec() string {
	return strings.Replace(specFor("summarizer", "pull-request", "hold"), "analysis:\n",
		"analysis:\n  rules:\n    - {metric: error_rate, max: 0.05}\n", 1)
}

// errorRate answers with 38,000 stable requests at 1% errors and 2,000 canary requests at canaryRate.
func errorRate(canaryRate float64) fakeSource {
	return func(policy.Query) (*policy.Stats, error) {
		arm := func(n int64, rate float64) policy.ArmStats {
			return policy.ArmStats{Requests: n, Metrics: map[string]policy.Sample{"error_rate": {Kind: policy.Proportion, N: n, Sum: rate * float64(n)}}}
		}
		return &policy.Stats{Unit: policy.UnitRequest, Stable: arm(38000, 0.01), Canary: arm(2000, canaryRate)}, nil
	}
}

// TestPauseClosesTheAdvanceProposal: `rollout pause` closes the open advance proposal with a comment
// that says the rollout was paused, in the same pass as the pause commit.
func TestPauseClosesTheAdvanceProposal(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": pausedSpec()})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick() // opens #1
	if len(h.forge.proposals) != 1 || h.forge.proposals[0].State != ProposalOpen {
		t.Fatalf("proposals %+v, want one open", h.forge.proposals)
	}
	res, err := h.loop.Operate(context.Background(), "summarizer", OpPause, "investigating latency")
	if err != nil {
		t.Fatal(err)
	}
	if h.forge.proposals[0].State != ProposalClosed {
		t.Fatalf("the advance proposal is still open after the pause")
	}
	comment := h.forge.comments[h.forge.proposals[0].Number]
	for _, want := range []string{"paused in " + res.Commit, "paused by hand: investigating latency", "a pause stops advancing", "Rollback rules still apply"} {
		if !strings.Contains(comment, want) {
			t.Errorf("close comment lacks %q:\n%s", want, comment)
		}
	}
	h.quiet()
}

// TestPausedRolloutIsStillProtected: a rollout paused by an edit of its status (not through `rollout
// pause`) with an open advance proposal gets the proposal closed with a comment, holds while its canary
// is healthy, and is rolled back when its canary fails 15% of requests.
func TestPausedRolloutIsStillProtected(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": pausedSpec()})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick() // opens #1
	src := h.repo.file("main", "rollouts/summarizer.yaml")
	h.repo.commitAs("main", "alice", "pause the summarizer", map[string]string{"rollouts/summarizer.yaml": strings.Replace(src, "phase: Progressing", "phase: Paused\n  message: waiting for the eval run", 1)})

	h.realJudge()
	healthy := errorRate(0.01)
	h.loop.Sources = func(*rollouts.Spec) (policy.Source, error) { return healthy, nil }
	h.now = t0.Add(5 * time.Hour)
	res := h.only(h.tick())
	if res.Effect != "close the proposal: the rollout is paused" || h.forge.proposals[0].State != ProposalClosed {
		t.Fatalf("tick while paused: %+v, proposal %+v", res, h.forge.proposals[0])
	}
	if c := h.forge.comments[h.forge.proposals[0].Number]; !strings.Contains(c, "paused (waiting for the eval run)") || !strings.Contains(c, "no longer apply") {
		t.Errorf("close comment %q", c)
	}
	// Healthy and paused: nothing advances, nothing is written.
	res = h.only(h.tick())
	if res.Decision != policy.Hold || res.Commit != "" || !strings.Contains(strings.Join(res.Reasons, "\n"), "paused: waiting for the eval run") {
		t.Fatalf("healthy while paused: %+v", res)
	}
	if len(h.forge.proposals) != 1 {
		t.Fatalf("a paused rollout proposed again: %+v", h.forge.proposals)
	}

	failing := errorRate(0.15)
	h.loop.Sources = func(*rollouts.Spec) (policy.Source, error) { return failing, nil }
	res = h.only(h.tick())
	if res.Decision != policy.Rollback || res.Commit == "" || res.Commit != h.repo.head("main") {
		t.Fatalf("a paused canary failing 15%% is not rolled back: %+v", res)
	}
	if st := h.spec("summarizer").Status; st.Phase != rollouts.RolledBack || h.spec("summarizer").Traffic.Weight != 0 {
		t.Errorf("after the rollback: %+v weight %d", st, h.spec("summarizer").Traffic.Weight)
	}
	if len(h.notes.events) != 1 || h.notes.events[0].Decision != "rollback" {
		t.Errorf("events %+v, want one rollback notification", h.notes.events)
	}
}
