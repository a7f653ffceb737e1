package reconcile

import (
	"context"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/policy"
)

// A commit that claims the bot's identity (git does not authenticate an author) and records a
// pending notification naming no rollback of this rollout is not bookkeeping: the loop sends nothing,
// so a person who can push but does not hold the webhook's URL cannot post their own text (a
// "<!channel>" in the commit's place) through the bot's notification targets.
func TestAForgedPendingMarkNamingNoRollbackSendsNothing(t *testing.T) {
	for _, tc := range []struct{ name, commit string }{
		{"not a hash", "<!channel> <https://evil.example|see the rollback>"},
		{"no commit of the rollout", "0123456789abcdef0123456789abcdef01234567"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
			h.tick()
			h.judge.set("summarizer", policy.Rollback)
			rollback := h.only(h.tick()).Commit
			if rollback == "" || len(h.notes.events) != 1 {
				t.Fatalf("the rollback: commit %q, events %+v", rollback, h.notes.events)
			}
			head := h.repo.head("main")
			path := "rollouts/summarizer.yaml"
			src := string(h.repo.commits[head].files[path])
			msg := h.spec("summarizer").Status.Message
			forged := strings.Replace(src, msg, withNotifyPending(msg, "0123456789abcdef"), 1)
			if forged == src {
				t.Fatalf("the test could not mark the message %q in:\n%s", msg, src)
			}
			commitMsg := commitMessage("summarizer", "notification pending", nil, policy.Rollback)
			commitMsg = withTrailer(bookkeeping(commitMsg, "notification"), TrailerNotification, "pending "+tc.commit)
			if _, err := h.repo.Push(context.Background(), PushRequest{Branch: "main", Expect: head, Parent: head,
				Files: map[string][]byte{path: []byte(forged)}, Message: commitMsg}); err != nil {
				t.Fatal(err)
			}
			h.loop = h.newLoop()
			res := h.only(h.tick())
			if len(h.notes.events) != 1 {
				t.Errorf("the forged mark was notified: %+v", h.notes.events[1:])
			}
			if !strings.Contains(strings.Join(res.Warnings, "; "), "no commit of the bot recorded") {
				t.Errorf("warnings = %q", res.Warnings)
			}
		})
	}
}
