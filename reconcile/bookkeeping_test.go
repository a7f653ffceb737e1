package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/policy"
)

// Issue 16 item 12: a --reason that ends like the bot's pending mark is text a person wrote; the next
// tick must not notify for the commit it names.
func TestAPendingMarkInAReasonIsNotBookkeeping(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	if _, err := h.loop.Operate(context.Background(), "summarizer", OpRollback, "oops [notification pending for deadbeef]"); err != nil {
		t.Fatal(err)
	}
	if !notifyPending(h.spec("summarizer").Status.Message) {
		t.Fatalf("the test needs the mark in the message: %q", h.spec("summarizer").Status.Message)
	}
	events := len(h.notes.events)
	h.loop = h.newLoop()
	res := h.only(h.tick())
	if len(h.notes.events) != events || res.Commit != "" {
		t.Fatalf("the next tick acted on a person's text: %+v events %+v", res, h.notes.events[events:])
	}
	if !strings.Contains(strings.Join(res.Warnings, "; "), "no commit of the bot recorded") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	// Issue 22 item 8: once per episode, not on every pass of the same loop (the daemon).
	for i := 0; i < 3; i++ {
		if res := h.only(h.tick()); strings.Contains(strings.Join(res.Warnings, "; "), "no commit of the bot recorded") {
			t.Fatalf("pass %d warned again: %q", i+2, res.Warnings)
		}
	}
}

// The pending mark of a real failure is recorded in the bot's trailers, and only the bot's commit counts.
func TestPendingNotificationIsRecordedInTheBotsTrailers(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Rollback)
	h.notes.err = errors.New("webhook answered 500")
	rollback := h.tick().Results[0].Commit
	msg := h.repo.commit(h.repo.head("main")).message
	for _, want := range []string{"rollout(summarizer): notification pending", TrailerBookkeeping + ": notification", TrailerNotification + ": pending " + rollback} {
		if !strings.Contains(msg, want) {
			t.Errorf("pending commit lacks %q:\n%s", want, msg)
		}
	}
	// A person's later commit that copies the mark changes nothing: the bot's newest commit decides.
	h.notes.err = nil
	h.loop = h.newLoop()
	h.only(h.tick())
	if len(h.notes.events) != 1 || h.notes.events[0].Commit != rollback {
		t.Fatalf("events = %+v", h.notes.events)
	}
	if log := h.repo.log("main"); log[0] != "rollout(summarizer): notification delivered" {
		t.Errorf("log %q", log[:2])
	}
}

// An unset env: reference is a warning, never a pending notification that fails every later pass.
func TestUnsetNotificationTargetIsAWarning(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Rollback)
	h.notes.err = fmt.Errorf("slack env:ROLLOUT_SLACK_WEBHOOK_URL: environment variable is not set: %w", ErrTargetNotConfigured)
	res := h.only(h.tick())
	if res.Decision != policy.Rollback || res.Commit == "" || res.Commit != h.repo.head("main") {
		t.Fatalf("%+v", res)
	}
	if w := strings.Join(res.Warnings, "; "); !strings.Contains(w, "notification not sent: slack env:ROLLOUT_SLACK_WEBHOOK_URL") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if notifyPending(h.spec("summarizer").Status.Message) {
		t.Errorf("an unset variable left the notification pending")
	}
	h.quiet()
}

// A pending notification whose targets were removed from the spec commits what really happened.
func TestPendingNotificationWithoutTargetsSaysDropped(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Rollback)
	h.notes.err = errors.New("webhook answered 500")
	h.tick()
	src := h.repo.file("main", "rollouts/summarizer.yaml")
	i := strings.Index(src, "  notify:")
	if i < 0 {
		t.Fatalf("the spec has no notify line:\n%s", src)
	}
	end := i + strings.Index(src[i:], "\n") + 1
	h.repo.commitAs("main", "alice", "no more slack", map[string]string{"rollouts/summarizer.yaml": src[:i] + src[end:]})
	h.notes.err = nil
	res := h.only(h.tick())
	msg := h.repo.commit(res.Commit).message
	if !strings.HasPrefix(msg, "rollout(summarizer): notification dropped") || strings.Contains(msg, "delivered") || len(h.notes.events) != 0 {
		t.Errorf("commit:\n%s\nevents %+v", msg, h.notes.events)
	}
	h.quiet()
}

// A manual operation names the person who asked for it, in a trailer of the bot's commit.
func TestManualOperationsNameTheActor(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.loop.Actor = "Ada Lovelace <ada@example.com>"
	for _, op := range []Operation{OpPause, OpResume, OpRollback} {
		res, err := h.loop.Operate(context.Background(), "summarizer", op, "because")
		if err != nil {
			t.Fatal(err)
		}
		if msg := h.repo.commit(res.Commit).message; !strings.Contains(msg, "\n"+TrailerActor+": Ada Lovelace <ada@example.com>\n") {
			t.Errorf("%s commit:\n%s", op, msg)
		}
	}
}

// Issue 15: the promotion of a canary already at 100% is not titled "100% → 100%".
func TestPromotionTitleSaysPromote(t *testing.T) {
	if got := PromoteTitle("s"); got != "rollout(s): promote the canary to stable" {
		t.Errorf("PromoteTitle = %q", got)
	}
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Promote)
	h.tick()
	if p := h.forge.proposals[0]; strings.Contains(p.Title, "100% → 100%") || p.Title != "rollout(summarizer): 5% → 100%" {
		t.Errorf("title from 5%% = %q", p.Title)
	}
}

// Issue 16 item 12: a manual rollback whose pull-request listing fails still lands, fails the command
// (the open pull request is named as left open), and the next pass closes the pull request.
func TestManualRollbackWhenTheForgeCannotList(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick() // opens #1
	h.forge.listErr = errors.New("502 bad gateway")
	res, err := h.loop.Operate(context.Background(), "summarizer", OpRollback, "bad outputs")
	if res.Commit == "" || h.repo.head("main") != res.Commit || err == nil || !strings.Contains(err.Error(), "not closed yet") {
		t.Fatalf("manual rollback: %+v, %v", res, err)
	}
	h.forge.listErr = nil
	h.judge.set("summarizer", policy.Hold)
	if r := h.only(h.tick()); r.Effect != "close the stale proposal" || h.forge.proposals[0].State != ProposalClosed {
		t.Fatalf("next pass: %+v", r)
	}
}
