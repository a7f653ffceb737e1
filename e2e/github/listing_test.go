package e2egithub_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
)

// TestRolledBackProposalClosedWhileListingFails: after a rollback, the pull request listing keeps
// failing. Every pass must either close the stale advance pull request by its known branch
// (rollout/<name>) or report the failure; before issue 22 the passes after the rollback answered hold,
// exit 0, and the pull request stayed open (forever when git/matching-refs answered 404).
func TestRolledBackProposalClosedWhileListingFails(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "summarizer"
	pullsRoute := "GET /repos/{owner}/{repo}/pulls"
	refsRoute := "GET /repos/{owner}/{repo}/git/matching-refs/{ref}"

	t.Run("matching-refs answers 404", func(t *testing.T) {
		t.Parallel()
		w, n := firstProposal(t, name, "pull-request")
		// More pull requests than the listing's pages hold, so the listing needs the bot's branches,
		// which the token may not read.
		for i := range 320 {
			w.srv.AddPull(fmt.Sprintf("feature/f%d", i), "main", "feature", "b", "alice")
		}
		w.srv.FailRoute(refsRoute, 1000, githubtest.Fault{Status: 404})
		w.traffic(name, t0.Add(2*time.Hour+time.Minute), t0.Add(3*time.Hour), 4000, 50, brokenCanary(), 40)
		w.at(t0.Add(3 * time.Hour))
		r := w.result(w.tick(), name)
		if r.Decision != policy.Rollback || r.Commit == "" {
			t.Fatalf("regression: %s commit %q (%s)", r.Decision, r.Commit, r.Effect)
		}
		if p := w.pull(n); p.State != "closed" || len(p.CommentBodies) != 1 || !strings.Contains(p.CommentBodies[0], "Rolled back in "+r.Commit) {
			t.Fatalf("the stale pull request: %s, comments %q; want it closed by its branch with the rollback's comment", p.State, p.CommentBodies)
		}
		// Later passes with the listing still failing: nothing open, nothing to report, nothing written.
		for i := range 2 {
			w.at(t0.Add(3*time.Hour + time.Duration(i+1)*15*time.Minute))
			if r := w.result(w.tick(), name); r.Commit != "" {
				t.Errorf("pass %d after the rollback wrote %s", i+1, r.Commit)
			}
		}
		if p := w.pull(n); len(p.CommentBodies) != 1 {
			t.Errorf("comments %q, want the one", p.CommentBodies)
		}
	})

	t.Run("the pull requests cannot be listed", func(t *testing.T) {
		t.Parallel()
		w, n := firstProposal(t, name, "pull-request")
		w.srv.FailRoute(pullsRoute, 100000, githubtest.Fault{Status: 502})
		w.traffic(name, t0.Add(2*time.Hour+time.Minute), t0.Add(3*time.Hour), 4000, 50, brokenCanary(), 40)
		w.at(t0.Add(3 * time.Hour))
		r := w.failedResult(w.tick(), name)
		if r.Decision != policy.Rollback || r.Commit == "" || !strings.Contains(r.Err.Error(), "is not closed yet") {
			t.Fatalf("regression: %s commit %q err %v", r.Decision, r.Commit, r.Err)
		}
		// Every pass while the listing fails reports it: the pull request may be open.
		for i := range 3 {
			w.at(t0.Add(3*time.Hour + time.Duration(i+1)*15*time.Minute))
			r := w.failedResult(w.tick(), name)
			if r.Commit != "" || !strings.Contains(r.Err.Error(), "is not closed yet") || !strings.Contains(r.Err.Error(), "502") {
				t.Errorf("pass %d after the rollback: commit %q, err %v", i+1, r.Commit, r.Err)
			}
		}
		if p := w.pull(n); p.State != "open" {
			t.Fatalf("pull request %s while GitHub failed", p.State)
		}
		w.srv.Heal()
		w.at(t0.Add(4 * time.Hour))
		w.result(w.tick(), name)
		if p := w.pull(n); p.State != "closed" || len(p.CommentBodies) != 1 || !strings.Contains(p.CommentBodies[0], "rolled back") {
			t.Errorf("after GitHub recovered: %s, comments %q", p.State, p.CommentBodies)
		}
	})
}
