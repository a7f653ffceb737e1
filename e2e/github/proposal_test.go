package e2egithub_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
)

// humanMarker is the hidden line of the forge's one comment about human commits.
const humanMarker = "<!-- rollout:human-commits -->"

// firstProposal sets up a world whose rollout has started (at t0+1m) and whose healthy stage 0 made
// the bot open its pull request 5% → 25% (at t0+2h1m). It returns the pull request's number.
func firstProposal(t *testing.T, name, promotion string) (*world, int) {
	t.Helper()
	w := newWorld(t, map[string]string{"rollouts/" + name + ".yaml": specFile(name, promotion)})
	return w, w.stageZeroPassed(name)
}

// onlyPull is the one bot pull request of a rollout.
func (w *world) onlyPull(name string) githubtest.PullRequest {
	w.t.Helper()
	prs := w.botPulls(name)
	if len(prs) != 1 {
		w.t.Fatalf("%d bot pull requests for %s, want 1: %+v", len(prs), name, prs)
	}
	return prs[0]
}

// TestHumanCommitsStopForcePushes: once a human pushed to the bot's branch, the bot never pushes to it
// again, says so once in a comment, and keeps the evidence in the description current, also when main
// moves on and the bot would otherwise rebuild its branch.
func TestHumanCommitsStopForcePushes(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "summarizer"
	w, n := firstProposal(t, name, "pull-request")
	bodyBefore := w.pull(n).Body

	// Alice adjusts the proposal on the bot's branch.
	aliceHead := w.humanCommit("rollout/"+name, map[string]string{"docs/why.md": "because\n"}, "Explain the bump")
	if w.pull(n).Head != "rollout/"+name {
		t.Fatal("pull request lost its branch")
	}

	// More traffic: the evidence changes; the bot refreshes the description and leaves the branch.
	w.traffic(name, t0.Add(2*time.Hour+time.Minute), t0.Add(3*time.Hour), 4000, 50, healthyCanary(), 11)
	w.at(t0.Add(3 * time.Hour))
	r := w.result(w.tick(), name)
	if r.Commit != "" || w.head("rollout/"+name) != aliceHead {
		t.Fatalf("the bot pushed over Alice's commit: commit %q, branch at %s", r.Commit, w.head("rollout/"+name))
	}
	p := w.pull(n)
	if p.Body == bodyBefore || !strings.Contains(p.Body, reconcile.Marker(name)) {
		t.Errorf("evidence not refreshed (effect %q)", r.Effect)
	}
	if c := humanComments(p); c != 1 {
		t.Errorf("%d comments about human commits, want 1: %q", c, p.CommentBodies)
	}
	if !strings.Contains(strings.Join(p.CommentBodies, ""), aliceHead) {
		t.Errorf("the comment does not name Alice's commit %s", aliceHead)
	}

	// Main moves on (a human edits the spec's description): the bot would rebuild its branch on the new
	// main, but the branch is Alice's now. Still no push, the title kept, still one comment.
	mainPath := "rollouts/" + name + ".yaml"
	edited := strings.Replace(w.file(w.head("main"), mainPath), "Sonnet 4.5 April bump", "Sonnet 4.5 April bump (reviewed)", 1)
	w.humanCommit("main", map[string]string{mainPath: edited}, "Clarify the description")
	w.traffic(name, t0.Add(3*time.Hour), t0.Add(4*time.Hour), 4000, 50, healthyCanary(), 12)
	w.at(t0.Add(4 * time.Hour))
	bodyBefore = w.pull(n).Body
	r = w.result(w.tick(), name)
	if r.Commit != "" || w.head("rollout/"+name) != aliceHead {
		t.Fatalf("after main moved the bot pushed: commit %q, branch at %s (effect %q)", r.Commit, w.head("rollout/"+name), r.Effect)
	}
	p = w.pull(n)
	if p.Title != "rollout(summarizer): 5% → 25%" || p.Body == bodyBefore || humanComments(p) != 1 {
		t.Errorf("after main moved: title %q, body refreshed %v, %d human comments (effect %q)",
			p.Title, p.Body != bodyBefore, humanComments(p), r.Effect)
	}
	if len(w.botPulls(name)) != 1 {
		t.Errorf("%d bot pull requests, want 1", len(w.botPulls(name)))
	}
	// Refreshing the evidence leaves the rest alone: reviewers asked once, labels as they were.
	if p.ReviewRequests != 1 || !slices.Equal(p.Labels, []string{"rollout", "llm"}) {
		t.Errorf("after two refreshes: %d review requests, labels %v", p.ReviewRequests, p.Labels)
	}
}

func humanComments(p githubtest.PullRequest) int {
	n := 0
	for _, c := range p.CommentBodies {
		if strings.Contains(c, humanMarker) {
			n++
		}
	}
	return n
}

// TestClosedProposalNotReopened: a reviewer closing the bot's pull request means "not this stage"; the
// bot does not propose it again while the decision stays the same, and does once it changes (here: a
// new canary, started over at stage 0).
func TestClosedProposalNotReopened(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "summarizer"
	w, n := firstProposal(t, name, "pull-request")
	branchHead := w.head("rollout/" + name)
	w.srv.ClosePull(n)

	for i, at := range []time.Duration{3 * time.Hour, 4 * time.Hour} {
		w.traffic(name, t0.Add(at-time.Hour), t0.Add(at), 4000, 50, healthyCanary(), int64(20+i))
		w.at(t0.Add(at))
		r := w.result(w.tick(), name)
		if r.Decision != policy.Advance || r.Commit != "" || r.Proposal != "" {
			t.Fatalf("tick %d after the close: %s commit %q proposal %q", i, r.Decision, r.Commit, r.Proposal)
		}
		if p := w.pull(n); p.State != "closed" || len(w.botPulls(name)) != 1 || w.head("rollout/"+name) != branchHead {
			t.Fatalf("tick %d after the close reopened or pushed: %+v", i, w.botPulls(name))
		}
	}

	// A new canary: the rollout starts over, and its stage 0 earns a new pull request.
	w.startCanary(name, "claude-sonnet-4-5-20260501")
	restart := t0.Add(5 * time.Hour)
	w.at(restart)
	if r := w.result(w.tick(), name); r.Decision != policy.Start || r.Commit == "" {
		t.Fatalf("new canary: %s %q %v", r.Decision, r.Commit, r.Reasons)
	}
	fresh := healthyCanary()
	fresh.Model = "claude-sonnet-4-5-20260501"
	w.traffic(name, restart, restart.Add(2*time.Hour), 4000, 50, fresh, 30)
	w.at(restart.Add(2 * time.Hour))
	r := w.result(w.tick(), name)
	prs := w.botPulls(name)
	if r.Decision != policy.Advance || len(prs) != 2 || prs[1].State != "open" {
		t.Fatalf("the new canary's stage 0 passed but got no new pull request: %s effect %q, pulls %+v", r.Decision, r.Effect, prs)
	}
}

// TestAutoMerge: promotion.via auto-merge asks GitHub to merge once checks pass; when the repository
// forbids auto-merge the bot merges a mergeable pull request itself, and says clearly when it cannot.
func TestAutoMerge(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	t.Run("enabled", func(t *testing.T) {
		t.Parallel()
		const name = "tagger"
		w := newWorld(t, map[string]string{"rollouts/" + name + ".yaml": specFile(name, "auto-merge")})
		w.srv.AutoMergeAllowed = true
		n := w.stageZeroPassed(name)
		p := w.pull(n)
		if !p.AutoMerge || p.MergeMethod != "" && p.MergeMethod != "merge" || p.State != "open" {
			t.Fatalf("pull request #%d: auto-merge %v (%s), %s", n, p.AutoMerge, p.MergeMethod, p.State)
		}
		// Checks pass; GitHub merges. The next tick starts stage 1.
		w.srv.MergePull(n)
		w.at(w.clock.Now().Add(5 * time.Minute))
		if r := w.result(w.tick(), name); r.Decision != policy.Start || r.To != 25 || r.Commit == "" {
			t.Fatalf("after GitHub merged: %s →%d %q", r.Decision, r.To, r.Commit)
		}
	})
	t.Run("forbidden", func(t *testing.T) {
		t.Parallel()
		const name = "tagger"
		w := newWorld(t, map[string]string{"rollouts/" + name + ".yaml": specFile(name, "auto-merge")})
		w.srv.AutoMergeAllowed = false
		w.startCanary(name, canaryModel)
		w.at(t0.Add(time.Minute))
		w.result(w.tick(), name)
		w.traffic(name, t0.Add(time.Minute), t0.Add(2*time.Hour), 8000, 50, healthyCanary(), 1)
		w.at(t0.Add(2*time.Hour + time.Minute))
		rep := w.tick()
		r := rep.Results[0]
		if !errors.Is(r.Err, githubforge.ErrAutoMerge) || !strings.Contains(r.Err.Error(), "not allowed") {
			t.Fatalf("auto-merge on a repository that forbids it, pull request not mergeable: error %v", r.Err)
		}
		n := w.onlyPull(name).Number
		if p := w.pull(n); p.State != "open" || p.AutoMerge {
			t.Fatalf("pull request #%d: %s auto-merge %v", n, p.State, p.AutoMerge)
		}
		// Checks pass: the pull request is mergeable; the next tick, with new traffic, merges it.
		w.srv.SetMergeable(n, true, "clean")
		w.traffic(name, t0.Add(2*time.Hour), t0.Add(2*time.Hour+10*time.Minute), 400, 50, healthyCanary(), 2)
		w.at(t0.Add(2*time.Hour + 10*time.Minute))
		r = w.result(w.tick(), name)
		if p := w.pull(n); !p.Merged {
			t.Fatalf("mergeable pull request #%d not merged by the next tick (effect %q)", n, r.Effect)
		}
		if s := w.spec(w.head("main"), "rollouts/"+name+".yaml"); s.Traffic.Weight != 25 {
			t.Errorf("main's weight %d after the merge, want 25", s.Traffic.Weight)
		}
	})
}

// TestAutoMergeRetriedWithSameEvidence: a pull request GitHub cannot auto-merge yet is tried again on
// every pass, not only when the evidence changes: once its checks pass it is merged by the next pass,
// with identical evidence. A pull request with auto-merge already on costs no call beyond the list.
func TestAutoMergeRetriedWithSameEvidence(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "tagger"
	w := newWorld(t, map[string]string{"rollouts/" + name + ".yaml": specFile(name, "auto-merge")})
	w.srv.AutoMergeAllowed = false
	w.startCanary(name, canaryModel)
	w.at(t0.Add(time.Minute))
	w.result(w.tick(), name)
	w.traffic(name, t0.Add(time.Minute), t0.Add(2*time.Hour), 8000, 50, healthyCanary(), 1)
	w.at(t0.Add(2*time.Hour + time.Minute))
	if r := w.tick().Results[0]; !errors.Is(r.Err, githubforge.ErrAutoMerge) {
		t.Fatalf("pull request not mergeable yet: error %v", r.Err)
	}
	n := w.onlyPull(name).Number
	body := w.pull(n).Body

	// Checks pass. Same clock, same traffic: the same evidence, and the pass merges.
	w.srv.SetMergeable(n, true, "clean")
	r := w.result(w.tick(), name)
	if p := w.pull(n); !p.Merged || p.Body != body {
		t.Fatalf("mergeable pull request #%d not merged by a pass with the same evidence (effect %q, err %v)", n, r.Effect, r.Err)
	}

	// With auto-merge turned on by GitHub, a holding pass lists and calls nothing else.
	w2 := newWorld(t, map[string]string{"rollouts/" + name + ".yaml": specFile(name, "auto-merge")})
	w2.srv.AutoMergeAllowed = true
	n2 := w2.stageZeroPassed(name)
	if !w2.pull(n2).AutoMerge {
		t.Fatalf("auto-merge not on")
	}
	w2.srv.ResetCalls()
	w2.result(w2.tick(), name)
	if calls := w2.srv.Calls(); calls["GET /repos/{owner}/{repo}/pulls/{number}"] != 0 || calls["POST /graphql"] != 0 {
		t.Errorf("a pass over a pull request with auto-merge on: %v", calls)
	}
}

// stageZeroPassed starts a rollout, feeds it a healthy stage 0 and ticks: the bot's pull request.
func (w *world) stageZeroPassed(name string) int {
	w.t.Helper()
	w.startCanary(name, canaryModel)
	w.at(t0.Add(time.Minute))
	w.result(w.tick(), name)
	w.traffic(name, t0.Add(time.Minute), t0.Add(2*time.Hour), 8000, 50, healthyCanary(), 1)
	w.at(t0.Add(2*time.Hour + time.Minute))
	if r := w.result(w.tick(), name); r.Decision != policy.Advance {
		w.t.Fatalf("healthy stage 0: %s %v", r.Decision, r.Reasons)
	}
	return w.onlyPull(name).Number
}

// TestRollbackUnderRateLimit: with the API's rate limit spent when the pull requests are listed, a
// regression still rolls back at once (the commit needs git only), and the pull request the listing
// could not show is closed, with a comment, by its known branch in the same tick (issue 22; issue 16's
// test, TestRolledBackProposalClosedWhileListingFails, keeps the case where that fails too).
func TestRollbackUnderRateLimit(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "summarizer"
	w, n := firstProposal(t, name, "pull-request")
	w.traffic(name, t0.Add(2*time.Hour+time.Minute), t0.Add(3*time.Hour), 4000, 50, brokenCanary(), 40)
	w.at(t0.Add(3 * time.Hour))
	w.srv.Fail(1, githubtest.Fault{Status: 403, Primary: true, ResetIn: time.Hour}) // the list call
	before := w.head("main")
	r := w.result(w.tick(), name)
	if r.Decision != policy.Rollback || r.Commit == "" || w.head("main") != r.Commit || w.commit(r.Commit).ParentHashes[0].String() != before {
		t.Fatalf("rate-limited regression: %s commit %q (%s)", r.Decision, r.Commit, r.Effect)
	}
	w.assertBotCommit(r.Commit, "rollout(summarizer): rollback 5% → 0%", name, "rollback")
	for _, d := range w.waits() {
		if d > 2*time.Minute {
			t.Errorf("the tick waited %s for the rate limit; a rollback never waits an hour", d)
		}
	}
	if evs := w.events(); len(evs) != 1 || evs[0].Commit != r.Commit {
		t.Errorf("webhook events %+v, want the rollback", evs)
	}

	p := w.pull(n)
	if p.State != "closed" || p.Merged || len(p.CommentBodies) != 1 || !strings.Contains(p.CommentBodies[0], "Rolled back in "+r.Commit) {
		t.Fatalf("the stale pull request: %s merged=%v comments %q", p.State, p.Merged, p.CommentBodies)
	}

	// The limit resets: nothing else is written.
	w.at(t0.Add(4*time.Hour + time.Minute))
	r = w.result(w.tick(), name)
	if p := w.pull(n); len(p.CommentBodies) != 1 || r.Commit != "" {
		t.Fatalf("after the reset: comments %q; commit %q (%s)", p.CommentBodies, r.Commit, r.Effect)
	}
}
