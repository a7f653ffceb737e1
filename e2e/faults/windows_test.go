package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

// TestPromotionWindowsOverGitHub (issue 24 item 3): a rollout whose promotion.windows allow weekdays
// 09:00-16:00 in Berlin, never Fridays, reconciled against the GitHub test server. At 04:00 Berlin
// time its healthy stage holds with the time the next window opens, and no pull request is opened; at
// 11:00 the advance pull request opens. A canary that fails at night rolls back at once: rollbacks
// never wait for a window.
func TestPromotionWindowsOverGitHub(t *testing.T) {
	spec := strings.Replace(progressing("summarizer", "hold"), "promotion:\n", "promotion:\n  windows:\n    timezone: Europe/Berlin\n    allow: [\"Mon-Fri 09:00-16:00\"]\n    deny: [Fri]\n", 1)
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	g.writeTraffic("summarizer", 0.01)
	g.setNow(time.Date(2026, 4, 16, 2, 0, 0, 0, time.UTC)) // Thursday 04:00 CEST
	res := result(t, tick(t, g.process()), "summarizer")
	reasons := strings.Join(res.Reasons, "\n")
	t.Logf("at night: %s: %s", res.Decision, reasons)
	if res.Decision != policy.Hold || !strings.Contains(reasons, "the next window, which opens Thu 2026-04-16 09:00 CEST (in 5h)") || res.Err != nil {
		t.Errorf("at night: %s %q %v", res.Decision, res.Reasons, res.Err)
	}
	if pulls := g.gh.Pulls(); len(pulls) != 0 {
		t.Errorf("a pull request opened outside the windows: %+v", pulls)
	}
	g.setNow(time.Date(2026, 4, 16, 9, 0, 0, 0, time.UTC)) // Thursday 11:00 CEST
	res = result(t, tick(t, g.process()), "summarizer")
	if res.Decision != policy.Advance || res.Proposal == "" {
		t.Errorf("in the window: %s %q", res.Decision, res.Reasons)
	}

	g2 := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	g2.writeTraffic("summarizer", 0.30)
	g2.setNow(time.Date(2026, 4, 17, 21, 0, 0, 0, time.UTC)) // Friday 23:00 CEST
	res = result(t, tick(t, g2.process()), "summarizer")
	if res.Decision != policy.Rollback || res.Commit == "" {
		t.Errorf("a failing canary at night: %s %q", res.Decision, res.Reasons)
	}
	if g2.spec("summarizer").Status.Phase != "RolledBack" {
		t.Errorf("the rollback did not land")
	}
}
