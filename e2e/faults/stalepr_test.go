package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

// TestRollbackClosesAStalePullRequestBehindManyOthers: the bot's advance pull request is open, then the
// team opens 320 pull requests of its own, so the bot's lies beyond the pages a tick lists. The canary
// turns bad: the rollback lands and the stale pull request is closed with a comment naming it, found
// through the bot's branches in a fixed number of calls.
func TestRollbackClosesAStalePullRequestBehindManyOthers(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	pr := g.advanced("summarizer")
	g.setNow(g.clock().Add(time.Minute))
	for i := range 320 {
		g.gh.AddPull(fmt.Sprintf("feature/f%03d", i), "main", "feature", "body", "alice")
	}
	g.writeTraffic("summarizer", 0.30)
	g.gh.ResetCalls()
	res := result(t, tick(t, g.process()), "summarizer")
	if res.Decision != policy.Rollback || res.Err != nil || res.Commit == "" {
		t.Fatalf("rollback: %+v", res)
	}
	closed, _ := g.gh.Pull(pr.Number)
	if closed.State != "closed" || len(closed.CommentBodies) != 1 || !strings.Contains(closed.CommentBodies[0], res.Commit) {
		t.Errorf("the stale pull request after the rollback: %+v", closed)
	}
	calls := g.gh.Calls()
	if n := calls["GET /repos/{owner}/{repo}/pulls"]; n != 3+1 {
		t.Errorf("%d pull request lists, want 3 pages and one look for the bot's branch", n)
	}
	if n := calls["GET /repos/{owner}/{repo}/git/matching-refs/{ref}"]; n != 1 {
		t.Errorf("%d branch lists, want 1", n)
	}
}
