package e2egithub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestPauseStillRollsBack pauses a rollout whose 5% → 25% pull request is open, against the GitHub test
// server: the pause commit lands on main and the pull request is closed with a comment saying it was
// paused. While paused a healthy canary holds and nothing is proposed; when the canary starts failing a
// quarter of its requests, the paused rollout is rolled back on main and the webhook is told.
func TestPauseStillRollsBack(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "summarizer"
	path := "rollouts/" + name + ".yaml"
	w := newWorld(t, map[string]string{path: specFile(name, "pull-request")})
	w.startCanary(name, canaryModel)
	stage0 := t0.Add(time.Minute)
	w.at(stage0)
	if r := w.result(w.tick(), name); r.Decision != policy.Start {
		t.Fatalf("after the spec merge: %s (%s)", r.Decision, r.Effect)
	}
	w.traffic(name, stage0, stage0.Add(2*time.Hour), 4000, 50, healthyCanary(), 1)
	w.at(stage0.Add(2 * time.Hour))
	if r := w.result(w.tick(), name); r.Decision != policy.Advance || r.Proposal == "" {
		t.Fatalf("healthy stage 0: %s proposal %q reasons %v", r.Decision, r.Proposal, r.Reasons)
	}
	pr := w.botPulls(name)[0]

	res, err := w.loop.Operate(w.ctx, name, reconcile.OpPause, "holiday freeze")
	if err != nil {
		t.Fatalf("pause: %v", err)
	}
	if s := w.spec(w.head("main"), path); res.Commit != w.head("main") || s.Status.Phase != rollouts.Paused || s.Traffic.Weight != 5 {
		t.Fatalf("pause commit %s, main %s, status %+v", res.Commit, w.head("main"), s.Status)
	}
	closed := w.pull(pr.Number)
	if closed.State != "closed" || closed.Merged {
		t.Fatalf("the 5%% → 25%% pull request is %s (merged %v) after the pause, want closed", closed.State, closed.Merged)
	}
	if len(closed.CommentBodies) == 0 || !strings.Contains(closed.CommentBodies[len(closed.CommentBodies)-1], "paused in "+res.Commit+" (paused by hand: holiday freeze)") {
		t.Errorf("close comments %q, want one saying it was paused", closed.CommentBodies)
	}

	// Paused and healthy: hold; nothing proposed, nothing written.
	w.traffic(name, stage0.Add(2*time.Hour), stage0.Add(3*time.Hour), 2000, 50, healthyCanary(), 2)
	w.at(stage0.Add(3 * time.Hour))
	head := w.head("main")
	if r := w.result(w.tick(), name); r.Decision != policy.Hold || r.Commit != "" || len(w.botPulls(name)) != 1 || w.head("main") != head {
		t.Fatalf("paused and healthy: %s commit %q pulls %d", r.Decision, r.Commit, len(w.botPulls(name)))
	}

	// Paused and failing: rolled back all the same.
	w.traffic(name, stage0.Add(3*time.Hour), stage0.Add(5*time.Hour), 4000, 50, brokenCanary(), 3)
	w.at(stage0.Add(5 * time.Hour))
	r := w.result(w.tick(), name)
	if r.Decision != policy.Rollback || r.Commit == "" || w.head("main") != r.Commit {
		t.Fatalf("paused and failing: %s commit %q main %s reasons %v", r.Decision, r.Commit, w.head("main"), r.Reasons)
	}
	if s := w.spec(r.Commit, path); s.Status.Phase != rollouts.RolledBack || s.Traffic.Weight != 0 {
		t.Errorf("after the rollback: weight %d status %+v", s.Traffic.Weight, s.Status)
	}
	if ev := w.events(); len(ev) != 1 || ev[0].Decision != "rollback" || ev[0].Commit != r.Commit {
		t.Errorf("webhook events %+v, want the rollback", ev)
	}
}
