package githubforge_test

import (
	"context"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestApprovalKeyIsTheTrailers: the approval key of a commit is the Rollout-Approval-Key of its trailer
// block (the message's last paragraph, as git interpret-trailers reads it) in a commit the bot made. A
// line of the body that quotes a key (another stage's, another canary's) is text: before, the first
// such line anywhere in the message was taken for the commit's key, so an approval given on one
// proposal could count for another.
func TestApprovalKeyIsTheTrailers(t *testing.T) {
	fx := setup(t, nil)
	dir, _ := fx.srv.EnableGit(map[string]string{"README.md": "hello\n"})
	c := gittest.Clone(t, dir)
	const bot = "rollout-bot <rollout-bot@users.noreply.github.com>"
	commit := func(author, message string) string {
		t.Helper()
		c.Git("commit", "--quiet", "--allow-empty", "--author", author, "-m", message)
		c.Push("HEAD:main")
		return c.Git("rev-parse", "HEAD")
	}
	for _, tt := range []struct {
		name, author, message, want string
	}{
		{"the bot's trailer block", bot,
			"rollout(s): 5% → 25%\n\nevidence\n<!-- rollout-target:0123456789ab -->\n\nRollout: s\nRollout-Approval-Key: 25% c418639b\n", "25% c418639b"},
		{"a key quoted in the body, the trailer block's differs", bot,
			"rollout(s): 25% → 50%\n\nThe approvals of\nRollout-Approval-Key: 25% c418639b\ndo not carry over.\n\nRollout: s\nRollout-Approval-Key: 50% c418639b\n", "50% c418639b"},
		{"a key quoted in the body, no trailer block", bot,
			"rollout(s): 25% → 50%\n\nQuoting the last proposal:\nRollout-Approval-Key: 25% c418639b\nand more text.\n", ""},
		{"a person's commit", "Ada <ada@example.com>",
			"Tweak the prompt\n\nRollout: s\nRollout-Approval-Key: 25% c418639b\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fx.forge.ApprovalKey(context.Background(), commit(tt.author, tt.message))
			if err != nil || got != tt.want {
				t.Errorf("ApprovalKey = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
