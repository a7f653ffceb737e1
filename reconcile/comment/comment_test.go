package comment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/reconcile"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // verb|rest
	}{
		{"one", "/rollout pause holiday freeze", []string{"pause|holiday freeze"}},
		{"leading spaces and case", "   /rollout ROLLBACK  bad  canary  ", []string{"rollback|bad  canary"}},
		{"two", "/rollout pause a\ntext\n/rollout resume", []string{"pause|a", "resume|"}},
		{"crlf", "/rollout plan\r\n/rollout retry\r\n", []string{"plan|", "retry|"}},
		{"fenced", "```\n/rollout rollback x\n```\n/rollout plan", []string{"plan|"}},
		{"fence with info", "```sh\n/rollout rollback x\n```", nil},
		{"tilde fence", "~~~~\n/rollout rollback x\n~~~\n/rollout rollback y\n~~~~", nil},
		{"unclosed fence", "```\n/rollout rollback x", nil},
		{"indented code", "    /rollout rollback x", nil},
		{"tab code", "\t/rollout rollback x", nil},
		{"quote", "> /rollout rollback x", nil},
		{"inline code", "`/rollout rollback x`", nil},
		{"mid-line", "please /rollout rollback x", nil},
		{"prefix of a word", "/rollouts pause", nil},
		{"bare", "/rollout", []string{"|"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range Parse(tc.body) {
				got = append(got, c.Verb+"|"+c.Rest)
			}
			if strings.Join(got, ";") != strings.Join(tc.want, ";") {
				t.Errorf("Parse(%q) = %q, want %q", tc.body, got, tc.want)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	ev, err := ParseEvent([]byte(`{"action":"created","issue":{"number":7,"pull_request":{"url":"u"}},"comment":{"id":42,"body":"/rollout plan","user":{"login":"ada","type":"User"}}}`))
	if err != nil || ev.Number != 7 || !ev.Pull || ev.CommentID != 42 || ev.Login != "ada" || ev.Action != "created" {
		t.Errorf("ParseEvent = %+v, %v", ev, err)
	}
	ev, err = ParseEvent([]byte(`{"action":"created","issue":{"number":8},"comment":{"id":43,"body":"x","user":{"login":"ada"}}}`))
	if err != nil || ev.Pull {
		t.Errorf("an issue: %+v, %v", ev, err)
	}
	if _, err := ParseEvent([]byte(`{"action":"opened","pull_request":{"number":7}}`)); !errors.Is(err, ErrNotComment) {
		t.Errorf("a pull_request event: %v", err)
	}
	if _, err := ParseEvent([]byte(`{`)); err == nil {
		t.Errorf("bad JSON accepted")
	}
}

// fakeThread is a hand-written Thread that records what it was asked.
type fakeThread struct {
	perms     map[string]string
	rollout   string
	permErr   error
	replies   []string
	reactions []string
}

var _ Thread = (*fakeThread)(nil)

func (f *fakeThread) Permission(_ context.Context, login string) (string, error) {
	if f.permErr != nil {
		return "", f.permErr
	}
	if p, ok := f.perms[login]; ok {
		return p, nil
	}
	return "none", nil
}

func (f *fakeThread) RolloutOf(context.Context, int) (string, error) { return f.rollout, nil }

func (f *fakeThread) Reply(_ context.Context, _ int, body string) (string, error) {
	f.replies = append(f.replies, body)
	return fmt.Sprintf("https://github.example/c/%d", len(f.replies)), nil
}

func (f *fakeThread) React(_ context.Context, _ int64, content string) error {
	f.reactions = append(f.reactions, content)
	return nil
}

// operations records the operations asked for and answers each.
type operations struct {
	calls []string
	err   error
}

func (o *operations) operate(_ context.Context, name string, op reconcile.Operation, reason, actor string) (reconcile.Result, error) {
	o.calls = append(o.calls, fmt.Sprintf("%s %s %q by %s", op, name, reason, actor))
	if o.err != nil {
		return reconcile.Result{Rollout: name, From: 25, To: 25}, o.err
	}
	return reconcile.Result{Rollout: name, From: 25, To: 0, Commit: "0123456789abcdef"}, nil
}

func TestHandle(t *testing.T) {
	perms := map[string]string{"ada": "admin", "wes": "write", "rita": "read"}
	for _, tc := range []struct {
		name      string
		ev        Event
		rollout   string
		opErr     error
		calls     []string
		reply     string // a substring of the one reply; "" for no reply
		reactions string
		plan      bool
		failed    bool
	}{
		{name: "implied on the bot's pull request", ev: Event{Action: "created", Pull: true, Body: "/rollout rollback summaries truncated", Login: "wes"},
			rollout: "summarizer", calls: []string{`rollback summarizer "summaries truncated" by wes`}, reply: "summarizer: rolled back, 25% → 0%", reactions: "+1"},
		{name: "named although implied", ev: Event{Action: "created", Pull: true, Body: "/rollout pause summarizer freeze", Login: "ada"},
			rollout: "summarizer", calls: []string{`pause summarizer "freeze" by ada`}, reply: "paused", reactions: "+1"},
		{name: "named elsewhere", ev: Event{Action: "created", Pull: true, Body: "/rollout promote chat now", Login: "ada"},
			calls: []string{`promote chat "now" by ada`}, reply: "skipping the evidence rule", reactions: "+1"},
		{name: "unnamed elsewhere", ev: Event{Action: "created", Body: "/rollout resume", Login: "ada"},
			reply: "name the rollout", reactions: "confused"},
		{name: "read permission", ev: Event{Action: "created", Pull: true, Body: "/rollout rollback x", Login: "rita"},
			rollout: "summarizer", reply: "yours is read", reactions: "confused"},
		{name: "no permission", ev: Event{Action: "created", Pull: true, Body: "/rollout rollback x", Login: "mallory"},
			rollout: "summarizer", reply: "yours is none", reactions: "confused"},
		{name: "edited", ev: Event{Action: "edited", Pull: true, Body: "/rollout rollback x", Login: "ada"}, rollout: "summarizer"},
		{name: "a bot", ev: Event{Action: "created", Pull: true, Body: "/rollout rollback x", Login: "other[bot]", UserType: "Bot"}, rollout: "summarizer"},
		{name: "no command", ev: Event{Action: "created", Pull: true, Body: "LGTM", Login: "ada"}, rollout: "summarizer"},
		{name: "plan only", ev: Event{Action: "created", Pull: true, Body: "/rollout plan", Login: "wes"}, rollout: "summarizer", reactions: "+1", plan: true},
		{name: "rollback without reason", ev: Event{Action: "created", Pull: true, Body: "/rollout rollback", Login: "wes"},
			rollout: "summarizer", reply: "needs a reason", reactions: "confused"},
		{name: "does not apply", ev: Event{Action: "created", Pull: true, Body: "/rollout resume", Login: "wes"}, rollout: "summarizer",
			opErr: fmt.Errorf("resume summarizer: %w: it is progressing", reconcile.ErrNotApplicable),
			calls: []string{`resume summarizer "" by wes`}, reply: "does not apply", reactions: "confused"},
		{name: "push fails", ev: Event{Action: "created", Pull: true, Body: "/rollout pause", Login: "wes"}, rollout: "summarizer",
			opErr: errors.New("push: remote hung up"), calls: []string{`pause summarizer "" by wes`}, reply: "remote hung up", reactions: "confused", failed: true},
		{name: "too many", ev: Event{Action: "created", Pull: true, Body: strings.Repeat("/rollout plan\n", MaxCommands+1), Login: "wes"},
			rollout: "summarizer", reply: "runs at most", reactions: "confused"},
		{name: "two in order", ev: Event{Action: "created", Pull: true, Body: "/rollout pause a\n/rollout plan\n/rollout resume", Login: "wes"},
			rollout: "summarizer", calls: []string{`pause summarizer "a" by wes`, `resume summarizer "" by wes`}, reply: "the default branch's plan comment", reactions: "+1", plan: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := &fakeThread{perms: perms, rollout: tc.rollout}
			ops := &operations{err: tc.opErr}
			h := &Handler{Thread: th, Operate: ops.operate, Repository: "acme/llm-config", CommitURL: "https://github.example/acme/llm-config/commit/"}
			out, err := h.Handle(context.Background(), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ops.calls, "\n") != strings.Join(tc.calls, "\n") {
				t.Errorf("operations = %q, want %q", ops.calls, tc.calls)
			}
			switch {
			case tc.reply == "" && len(th.replies) != 0:
				t.Errorf("replied %q", th.replies)
			case tc.reply != "" && (len(th.replies) != 1 || !strings.Contains(th.replies[0], tc.reply)):
				t.Errorf("replies = %q, want one holding %q", th.replies, tc.reply)
			}
			if strings.Join(th.reactions, ",") != tc.reactions {
				t.Errorf("reactions = %q, want %q", th.reactions, tc.reactions)
			}
			if out.Plan != tc.plan {
				t.Errorf("plan = %t", out.Plan)
			}
			failed := false
			for _, r := range out.Commands {
				failed = failed || r.Failed
			}
			if failed != tc.failed {
				t.Errorf("failed = %t, want %t", failed, tc.failed)
			}
			if tc.reply == "" && tc.reactions == "" && out.Ignored == "" {
				t.Errorf("nothing done, but not said why: %+v", out)
			}
		})
	}
}

func TestHandlePermissionUnknown(t *testing.T) {
	th := &fakeThread{permErr: errors.New("502")}
	ops := &operations{}
	_, err := (&Handler{Thread: th, Operate: ops.operate}).Handle(context.Background(), Event{Action: "created", Body: "/rollout rollback x y", Login: "ada"})
	if err == nil || len(ops.calls) != 0 {
		t.Errorf("a permission that could not be read: err %v, operations %q", err, ops.calls)
	}
}
