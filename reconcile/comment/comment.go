// Package comment operates rollouts from pull request comments: it reads GitHub's issue_comment event,
// finds the `/rollout …` commands in the comment, checks that the commenter may act (write permission
// or above, as GitHub's collaborator permission API reports it), runs each command as the same commit
// the CLI makes (with the commenter as the commit's actor), and answers with a reply and a reaction.
//
// A comment is untrusted input: only a new comment runs commands (an edited one could replay or
// change a command after the fact), text in code blocks and quotes is never a command, and nothing
// is done for a commenter without write permission, who gets a polite refusal.
package comment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/reconcile"
)

// Thread is the conversation on GitHub that the commands come from and are answered on.
type Thread interface {
	// Permission returns the repository permission of login: "admin", "write", "read" or "none".
	// It is read-only and idempotent.
	Permission(ctx context.Context, login string) (string, error)
	// RolloutOf returns the rollout whose bot pull request number is, "" for any other pull request
	// or issue. It is read-only and idempotent.
	RolloutOf(ctx context.Context, number int) (string, error)
	// Reply comments on issue or pull request number and returns the comment's URL. Not idempotent.
	Reply(ctx context.Context, number int, body string) (string, error)
	// React puts a reaction on a comment; reacting twice the same way is one reaction.
	React(ctx context.Context, commentID int64, content string) error
}

// Operate runs one manual operation on a rollout as a commit, on behalf of actor.
type Operate func(ctx context.Context, name string, op reconcile.Operation, reason, actor string) (reconcile.Result, error)

// Event is the part of GitHub's issue_comment event that the commands need.
type Event struct {
	// Action is "created", "edited" or "deleted".
	Action string
	// Number is the issue or pull request commented on; Pull is true for a pull request.
	Number int
	Pull   bool
	// CommentID, Body, Login and UserType ("User", "Bot") are the comment's.
	CommentID int64
	Body      string
	Login     string
	UserType  string
}

// ErrNotComment is returned by ParseEvent for an event that is not an issue comment.
var ErrNotComment = errors.New("not an issue_comment event")

// ParseEvent reads GitHub's issue_comment event payload (the file GITHUB_EVENT_PATH names).
func ParseEvent(raw []byte) (Event, error) {
	var p struct {
		Action string `json:"action"`
		Issue  *struct {
			Number      int             `json:"number"`
			PullRequest json.RawMessage `json:"pull_request"`
		} `json:"issue"`
		Comment *struct {
			ID   int64  `json:"id"`
			Body string `json:"body"`
			User struct {
				Login string `json:"login"`
				Type  string `json:"type"`
			} `json:"user"`
		} `json:"comment"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return Event{}, fmt.Errorf("read the event: %w", err)
	}
	if p.Issue == nil || p.Comment == nil || p.Issue.Number == 0 || p.Comment.ID == 0 {
		return Event{}, ErrNotComment
	}
	pull := len(p.Issue.PullRequest) > 0 && string(p.Issue.PullRequest) != "null"
	return Event{Action: p.Action, Number: p.Issue.Number, Pull: pull, CommentID: p.Comment.ID, Body: p.Comment.Body,
		Login: p.Comment.User.Login, UserType: p.Comment.User.Type}, nil
}

// The verbs of `/rollout VERB …`.
const (
	VerbRollback = "rollback"
	VerbPause    = "pause"
	VerbResume   = "resume"
	VerbPromote  = "promote"
	VerbRetry    = "retry"
	VerbPlan     = "plan"
)

// verbs maps each verb to its operation ("" for plan, which writes nothing).
var verbs = map[string]reconcile.Operation{
	VerbRollback: reconcile.OpRollback, VerbPause: reconcile.OpPause, VerbResume: reconcile.OpResume,
	VerbPromote: reconcile.OpPromote, VerbRetry: reconcile.OpRetry, VerbPlan: "",
}

// usage lists the commands, for a reply to one it does not know.
const usage = "`/rollout rollback <reason>`, `/rollout pause <reason>`, `/rollout resume`, `/rollout promote`, `/rollout retry`, `/rollout plan`"

// MaxCommands is the most commands one comment may hold; a comment with more runs none.
const MaxCommands = 5

// Command is one `/rollout …` line of a comment.
type Command struct {
	// Verb is the word after /rollout, lower-cased; Rest the text after it, trimmed.
	Verb, Rest string
	// Text is the whole line as written, trimmed.
	Text string
}

// Parse finds the commands of a comment: lines that begin with `/rollout` (after at most three
// spaces), outside fenced code blocks, indented code blocks and quotes, in the order written.
func Parse(body string) []Command {
	var out []Command
	fence := ""
	for _, raw := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		indent := len(raw) - len(strings.TrimLeft(raw, " "))
		line := strings.TrimSpace(raw)
		if fence != "" {
			if indent < 4 && strings.HasPrefix(line, fence) && strings.Trim(line, fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if indent < 4 {
			if f := fenceOf(line); f != "" {
				fence = f
				continue
			}
		}
		if indent >= 4 || strings.HasPrefix(raw, "\t") {
			continue // an indented code block
		}
		rest, ok := strings.CutPrefix(line, "/rollout")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		rest = strings.TrimSpace(rest)
		verb, args, _ := strings.Cut(rest, " ")
		out = append(out, Command{Verb: strings.ToLower(strings.TrimSpace(verb)), Rest: strings.TrimSpace(args), Text: line})
	}
	return out
}

// fenceOf returns the fence a line opens (``` or ~~~, three or more), "" if none.
func fenceOf(line string) string {
	for _, c := range []string{"`", "~"} {
		n := len(line) - len(strings.TrimLeft(line, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// Handler answers the commands of one comment.
type Handler struct {
	Thread  Thread
	Operate Operate
	// Repository is owner/name, for the refusal; CommitURL, when set, is the URL prefix of a commit
	// (https://github.com/owner/name/commit/), so that the reply links each commit.
	Repository string
	CommitURL  string
}

// Outcome is what Handle did with a comment.
type Outcome struct {
	// Ignored says why the comment ran no command without an answer ("" when it was answered).
	Ignored string `json:"ignored,omitempty"`
	// Refused says why the commenter was turned away ("" when not).
	Refused string `json:"refused,omitempty"`
	// Commands holds each command's result, in the order written.
	Commands []Result `json:"commands"`
	// Plan is true when a command asked for the plan comment again.
	Plan bool `json:"plan"`
	// Number is the issue or pull request commented on; Reply is the URL of the reply, "" for none.
	Number int    `json:"number"`
	Reply  string `json:"reply,omitempty"`
}

// Result is the result of one command.
type Result struct {
	Command string  `json:"command"`
	Rollout string  `json:"rollout,omitempty"`
	From    int     `json:"from"`
	To      int     `json:"to"`
	Commit  string  `json:"commit,omitempty"`
	Error   *string `json:"error"`
	// Failed is set when the operation failed for a reason other than the command itself (a push
	// that failed, say): the step should fail so that someone looks.
	Failed bool `json:"-"`
}

// Write permissions: the legacy base roles that may act (maintain reads as write).
var mayAct = map[string]bool{"admin": true, "write": true}

// Handle runs the commands of ev. It returns an error only when it could not answer at all (the
// permission could not be read, the reply could not be posted); a command that failed is reported in
// the reply and in the outcome.
func (h *Handler) Handle(ctx context.Context, ev Event) (Outcome, error) {
	out := Outcome{Number: ev.Number, Commands: []Result{}}
	cmds := Parse(ev.Body)
	switch {
	case len(cmds) == 0:
		out.Ignored = "the comment holds no /rollout command"
		return out, nil
	case ev.Action != "created":
		// An edit could change a command that already ran, or run one long after it was written.
		out.Ignored = fmt.Sprintf("the comment was %s: only a new comment runs commands", ev.Action)
		return out, nil
	case strings.EqualFold(ev.UserType, "Bot"):
		out.Ignored = "the comment is a bot's: bots' comments run no commands"
		return out, nil
	}
	perm, err := h.Thread.Permission(ctx, ev.Login)
	if err != nil {
		return out, fmt.Errorf("check the permission of %s: %w", ev.Login, err)
	}
	if !mayAct[perm] {
		out.Refused = fmt.Sprintf("%s has %s permission", ev.Login, perm)
		body := fmt.Sprintf("@%s, thank you for the suggestion. Rollout commands are acted on only for people with write "+
			"permission or above on %s, and yours is %s, so nothing was done. Someone with write access can run it.", ev.Login, h.repository(), perm)
		return h.answer(ctx, ev, out, body, "confused")
	}
	if len(cmds) > MaxCommands {
		out.Refused = fmt.Sprintf("%d commands in one comment; at most %d run", len(cmds), MaxCommands)
		body := fmt.Sprintf("@%s, this comment holds %d `/rollout` commands; one comment runs at most %d, so none ran.", ev.Login, len(cmds), MaxCommands)
		return h.answer(ctx, ev, out, body, "confused")
	}
	implied := ""
	if ev.Pull {
		if implied, err = h.Thread.RolloutOf(ctx, ev.Number); err != nil {
			return out, fmt.Errorf("read pull request #%d: %w", ev.Number, err)
		}
	}
	var lines []string
	ok := true
	onlyPlan := true
	for _, c := range cmds {
		r, line := h.run(ctx, c, implied, ev.Login)
		if c.Verb == VerbPlan && r.Error == nil {
			out.Plan = true
		} else {
			onlyPlan = false
		}
		ok = ok && r.Error == nil
		out.Commands = append(out.Commands, r)
		lines = append(lines, fmt.Sprintf("- `%s`: %s", strings.ReplaceAll(c.Text, "`", "'"), line))
	}
	reaction := "+1"
	if !ok {
		reaction = "confused"
	}
	if onlyPlan {
		// The plan comment, updated next, is the answer.
		if err := h.Thread.React(ctx, ev.CommentID, reaction); err != nil {
			return out, err
		}
		return out, nil
	}
	body := fmt.Sprintf("@%s, done as you asked:\n\n%s\n", ev.Login, strings.Join(lines, "\n"))
	if !ok {
		body = fmt.Sprintf("@%s, not everything you asked could be done:\n\n%s\n", ev.Login, strings.Join(lines, "\n"))
	}
	return h.answer(ctx, ev, out, body, reaction)
}

func (h *Handler) answer(ctx context.Context, ev Event, out Outcome, body, reaction string) (Outcome, error) {
	url, err := h.Thread.Reply(ctx, ev.Number, body)
	if err != nil {
		return out, err
	}
	out.Reply = url
	// The reaction only marks the command as seen: the reply already says what happened.
	if err := h.Thread.React(ctx, ev.CommentID, reaction); err != nil {
		return out, err
	}
	return out, nil
}

func (h *Handler) repository() string {
	if h.Repository == "" {
		return "this repository"
	}
	return h.Repository
}

// run runs one command and words its result for the reply.
func (h *Handler) run(ctx context.Context, c Command, implied, actor string) (Result, string) {
	r := Result{Command: c.Text}
	fail := func(format string, args ...any) (Result, string) {
		msg := fmt.Sprintf(format, args...)
		r.Error = &msg
		return r, "❌ " + msg
	}
	op, known := verbs[c.Verb]
	if !known {
		return fail("unknown command %q; the commands are %s", c.Verb, usage)
	}
	name, reason := implied, c.Rest
	if first, rest, _ := strings.Cut(c.Rest, " "); implied != "" && first == implied {
		reason = strings.TrimSpace(rest) // the rollout named although implied
	} else if implied == "" && c.Verb != VerbPlan {
		if first == "" {
			return fail("name the rollout: `/rollout %s NAME%s` (only the bot's pull request of a rollout implies it)", c.Verb, reasonHint(c.Verb))
		}
		name, reason = first, strings.TrimSpace(rest)
	}
	r.Rollout = name
	if c.Verb == VerbPlan {
		return r, "✅ the default branch's plan comment is updated"
	}
	if c.Verb == VerbRollback && reason == "" {
		return fail("a rollback needs a reason: `/rollout rollback <reason>`; it goes into the commit and the notification")
	}
	res, err := h.Operate(ctx, name, op, reason, actor)
	r.From, r.To, r.Commit = res.From, res.To, res.Commit
	if res.Commit == "" && err != nil {
		r.Failed = !errors.Is(err, reconcile.ErrNotApplicable) && !errors.Is(err, reconcile.ErrUnknownRollout)
		return fail("%v", err)
	}
	weight := fmt.Sprintf("%d%% → %d%%", res.From, res.To)
	if res.From == res.To {
		weight = fmt.Sprintf("at %d%%", res.To)
	}
	line := fmt.Sprintf("✅ %s: %s, %s, in %s", name, done(op), weight, h.commitRef(res.Commit))
	if err != nil {
		// The commit landed; what failed after it (a notification) is retried by the next pass.
		line += fmt.Sprintf(" (then: %v; the next reconcile retries it)", err)
	}
	return r, line
}

func reasonHint(verb string) string {
	switch verb {
	case VerbRollback:
		return " <reason>"
	case VerbPause:
		return " [reason]"
	}
	return ""
}

func done(op reconcile.Operation) string {
	switch op {
	case reconcile.OpRollback:
		return "rolled back"
	case reconcile.OpPause:
		return "paused"
	case reconcile.OpResume:
		return "resumed"
	case reconcile.OpPromote:
		return "promoted now, skipping the evidence rule (an override, recorded in the commit)"
	case reconcile.OpRetry:
		return "started again at stage 0"
	}
	return string(op)
}

func (h *Handler) commitRef(sha string) string {
	short := sha[:min(7, len(sha))]
	if h.CommitURL == "" {
		return "`" + short + "`"
	}
	return fmt.Sprintf("[`%s`](%s%s)", short, h.CommitURL, sha)
}
