package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/rollouts"
)

// `/rollout promote` walks a rollout through its stages by hand, each a commit with the override
// trailer, the last one making the canary the stable; `/rollout retry` starts a rolled-back rollout
// again at stage 0 with the same canary, and applies to nothing else.
func TestPromoteAndRetryByHand(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick() // start: stage 0 at 5%
	h.loop.Actor = "ada"
	ctx := context.Background()
	if _, err := h.loop.Operate(ctx, "summarizer", OpRetry, ""); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("retry of a progressing rollout: %v", err)
	}
	for i, want := range []struct {
		to    int
		phase rollouts.Phase
	}{{25, rollouts.Progressing}, {100, rollouts.Progressing}, {0, rollouts.Completed}} {
		res, err := h.loop.Operate(ctx, "summarizer", OpPromote, "launch")
		if err != nil {
			t.Fatalf("promote %d: %v", i, err)
		}
		spec := h.spec("summarizer")
		if spec.Traffic.Weight != want.to || spec.Status.Phase != want.phase {
			t.Errorf("promote %d: weight %d phase %s, want %d %s", i, spec.Traffic.Weight, spec.Status.Phase, want.to, want.phase)
		}
		msg := h.repo.commit(res.Commit).message
		if !strings.Contains(msg, "\n"+TrailerOverride+": promote: the evidence rule was skipped by hand: launch") ||
			!strings.Contains(msg, TrailerActor+": ada") {
			t.Errorf("promote %d commit:\n%s", i, msg)
		}
	}
	if _, err := h.loop.Operate(ctx, "summarizer", OpPromote, ""); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("promote of a completed rollout: %v", err)
	}

	h = newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	if _, err := h.loop.Operate(ctx, "summarizer", OpRollback, "bad"); err != nil {
		t.Fatal(err)
	}
	res, err := h.loop.Operate(ctx, "summarizer", OpRetry, "the provider's outage")
	if err != nil {
		t.Fatal(err)
	}
	spec := h.spec("summarizer")
	if spec.Traffic.Weight != 5 || spec.Status.Phase != rollouts.Progressing || spec.Status.Stage != 0 || !spec.Status.StageStartedAt.Equal(h.now) {
		t.Errorf("after retry: weight %d %+v", spec.Traffic.Weight, spec.Status)
	}
	if msg := h.repo.commit(res.Commit).message; !strings.HasPrefix(msg, "rollout(summarizer): retry at stage 0") || !strings.Contains(msg, "the provider's outage") {
		t.Errorf("retry commit:\n%s", msg)
	}
	if _, err := h.loop.Operate(ctx, "summarizer", OpRetry, ""); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("a second retry: %v", err)
	}
}
