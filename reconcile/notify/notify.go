// Package notify delivers a rollout's lifecycle events (rollbacks and alerts, and for the targets that
// choose them start, proposed, started, promoted, paused, resumed, stuck and override) to the targets a
// rollout names: Slack incoming webhooks and generic JSON webhooks.
//
// A target's URL is a secret, so a spec names it by reference (env:NAME) and this package resolves it
// at delivery time. URLs never appear in errors or logs: a failure names the reference instead.
//
// It belongs to the reconcile room and adapts Slack and JSON webhooks to reconcile.Notifier.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rollout-dev/rollout/internal/webhook"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// DefaultTimeout bounds one delivery.
const DefaultTimeout = 10 * time.Second

// DefaultStoppingGrace bounds a delivery once the process was asked to stop (Dispatcher.Stopping): a
// GitHub Actions runner kills a cancelled step 10 s after its first signal, and recording the
// notification as owed takes a push.
const DefaultStoppingGrace = 2 * time.Second

// ErrLiteralURL is returned for a target written as a literal URL instead of an env: reference.
var ErrLiteralURL = errors.New("notification target must be an env: reference, never a literal URL")

// ErrUnset is returned when a target's environment variable is empty. It wraps
// reconcile.ErrTargetNotConfigured: the loop reports it as a warning and never retries it.
var ErrUnset error = unsetError{}

type unsetError struct{}

func (unsetError) Error() string        { return "environment variable is not set" }
func (unsetError) Is(target error) bool { return target == reconcile.ErrTargetNotConfigured }

// refusedError is a target whose variable Dispatcher.Allow refused: it says why, naming the variable
// (never reading it), and wraps reconcile.ErrTargetNotConfigured: a warning, never retried.
type refusedError struct{ err error }

func (e refusedError) Error() string   { return e.err.Error() }
func (e refusedError) Unwrap() []error { return []error{e.err, reconcile.ErrTargetNotConfigured} }

// Dispatcher delivers events over HTTP. It implements reconcile.Notifier.
type Dispatcher struct {
	// Client posts the messages; nil uses http.DefaultClient.
	Client *http.Client
	// Getenv resolves env: references.
	Getenv func(string) string
	// Allow says whether a target may reference the variable name (the operator's allow-list); nil
	// allows every name. A refused variable is never read and its target is not sent to: like an unset
	// one, a warning that names the variable.
	Allow func(name string) error
	// Timeout bounds each delivery; default DefaultTimeout.
	Timeout time.Duration
	// Stopping, once closed, says the process was asked to stop (a signal, with a runner or a
	// kubelet that kills it seconds later): a delivery under way or to come then gets at most
	// StoppingGrace more, so that a target that hangs leaves the time to record the notification as
	// owed rather than being killed with it unsaid.
	Stopping <-chan struct{}
	// StoppingGrace is a delivery's time once Stopping is closed; default DefaultStoppingGrace.
	StoppingGrace time.Duration
	// CommitURL, when set, is the URL prefix of a commit (https://github.com/acme/llm-config/commit/),
	// so that a Slack message links the commit it reports.
	CommitURL string
}

var (
	_ reconcile.Notifier      = (*Dispatcher)(nil)
	_ reconcile.TargetChecker = (*Dispatcher)(nil)
)

// Check returns one problem per target that Notify could not deliver to as configured now: an env:
// reference whose variable is unset or not allowed, or a literal URL. It sends nothing and names variables, never
// their values.
func (d *Dispatcher) Check(targets []rollouts.Notify) []string {
	var out []string
	for _, t := range targets {
		for _, tg := range []struct{ kind, ref string }{{"slack", t.Slack}, {"webhook", t.Webhook}} {
			if tg.ref == "" {
				continue
			}
			if _, err := d.resolve(tg.ref); err != nil {
				name := strings.TrimPrefix(tg.ref, "env:")
				var refused refusedError
				switch {
				case errors.Is(err, ErrUnset):
					out = append(out, fmt.Sprintf("%s %s: %s is not set, so this target gets no notification", tg.kind, refName(tg.ref), name))
				case errors.As(err, &refused):
					out = append(out, fmt.Sprintf("%s %s: %v, so this target gets no notification", tg.kind, refName(tg.ref), err))
				default:
					out = append(out, fmt.Sprintf("%s %s: %v", tg.kind, refName(tg.ref), err))
				}
			}
		}
	}
	return out
}

// Notify delivers ev to every target, each within the timeout. It tries them all and returns their
// failures joined; a failure names the target's reference, never its URL.
func (d *Dispatcher) Notify(ctx context.Context, targets []rollouts.Notify, ev reconcile.Event) error {
	var errs []error
	for _, t := range targets {
		if t.Slack != "" {
			errs = append(errs, d.deliver(ctx, "slack", t.Slack, d.slackMessage(ev)))
		}
		if t.Webhook != "" {
			errs = append(errs, d.deliver(ctx, "webhook", t.Webhook, webhookPayload(ev)))
		}
	}
	return errors.Join(errs...)
}

// deliver posts payload as JSON to the URL that ref names. Its error is a *reconcile.TargetError
// naming the target.
func (d *Dispatcher) deliver(ctx context.Context, kind, ref string, payload any) error {
	failed := func(err error) error {
		return &reconcile.TargetError{Target: reconcile.TargetName(kind, refName(ref)), Err: err}
	}
	u, err := d.resolve(ref)
	if err != nil {
		return failed(err)
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := d.hurried(ctx)
	defer cancel()
	ans, err := webhook.Post(ctx, d.Client, u, payload, timeout)
	if err != nil {
		if errors.Is(context.Cause(ctx), errStopping) {
			err = errStopping
		}
		return failed(err)
	}
	if !ans.OK {
		return failed(fmt.Errorf("answered %s: %s", ans.Status, ans.Text))
	}
	return nil
}

// errStopping is why a delivery was cut short (Dispatcher.Stopping).
var errStopping = errors.New("cut short: the process was asked to stop")

// hurried is ctx, ended StoppingGrace after Stopping closes (at once when the grace is negative).
func (d *Dispatcher) hurried(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.Stopping == nil {
		return ctx, func() {}
	}
	grace := d.StoppingGrace
	if grace == 0 {
		grace = DefaultStoppingGrace
	}
	ctx, cancel := context.WithCancelCause(ctx)
	if grace < 0 {
		select {
		case <-d.Stopping:
			cancel(errStopping)
			return ctx, func() { cancel(nil) }
		default:
		}
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-d.Stopping:
		case <-done:
			return
		}
		if grace > 0 {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
		cancel(errStopping)
	}()
	return ctx, func() {
		close(done)
		cancel(nil)
	}
}

// resolve returns the URL an env: reference names.
func (d *Dispatcher) resolve(ref string) (string, error) {
	name, ok := strings.CutPrefix(ref, "env:")
	if !ok {
		return "", ErrLiteralURL
	}
	if d.Allow != nil {
		if err := d.Allow(name); err != nil {
			return "", refusedError{err}
		}
	}
	if d.Getenv == nil {
		return "", ErrUnset
	}
	v := strings.TrimSpace(d.Getenv(name))
	if v == "" {
		return "", ErrUnset
	}
	return v, nil
}

// refName is what an error may show of a reference: the reference itself, or a placeholder for a
// literal (which may be a secret).
func refName(ref string) string {
	if strings.HasPrefix(ref, "env:") {
		return ref
	}
	return "<literal>"
}

// webhookEvent is the JSON body of a generic webhook, as the contract names it, plus the event.
type webhookEvent struct {
	Rollout  string   `json:"rollout"`
	Event    string   `json:"event"`
	Decision string   `json:"decision"`
	From     int      `json:"from"`
	To       int      `json:"to"`
	Reasons  []string `json:"reasons"`
	Commit   string   `json:"commit"`
	Proposal string   `json:"proposal,omitempty"`
	Evidence string   `json:"evidence,omitempty"`
	// Next says how to try again after a rollback; absent for other events.
	Next string `json:"next,omitempty"`
}

func webhookPayload(ev reconcile.Event) webhookEvent {
	reasons := ev.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	return webhookEvent{Rollout: ev.Rollout, Event: eventOf(ev), Decision: ev.Decision, From: ev.From, To: ev.To, Reasons: reasons,
		Commit: ev.Commit, Proposal: ev.Proposal, Evidence: ev.Evidence, Next: ev.Next}
}

// eventOf is ev's event, for an Event made before events were named: its decision (rollback, alert).
func eventOf(ev reconcile.Event) string {
	if ev.Event != "" {
		return ev.Event
	}
	return ev.Decision
}

// slack is an incoming-webhook message: text for notifications, blocks for the channel.
type slack struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type string     `json:"type"`
	Text *slackText `json:"text,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// heads are the first line of a Slack message, by event: %[1]s the rollout, %[2]d and %[3]d the weights.
var heads = map[string]string{
	rollouts.EventRollback: ":rotating_light: *%[1]s* rolled back: %[2]d%% → %[3]d%%",
	rollouts.EventStart:    ":seedling: *%[1]s* started its canary at %[3]d%%",
	rollouts.EventProposed: ":mag: *%[1]s*: the next step is proposed, %[2]d%% → %[3]d%%; it waits for a review",
	rollouts.EventStarted:  ":arrow_forward: *%[1]s* is at %[3]d%% now: the stage's window started",
	rollouts.EventPromoted: ":tada: *%[1]s* promoted: the canary is the stable",
	rollouts.EventPaused:   ":double_vertical_bar: *%[1]s* paused at %[3]d%%",
	rollouts.EventResumed:  ":arrow_forward: *%[1]s* resumed at %[3]d%%",
	rollouts.EventStuck:    ":hourglass: *%[1]s* is held at %[3]d%% past its stage's maxDuration",
	rollouts.EventOverride: ":warning: *%[1]s*: a rule was skipped by hand, %[2]d%% → %[3]d%%",
}

func (d *Dispatcher) slackMessage(ev reconcile.Event) slack {
	format, ok := heads[eventOf(ev)]
	if !ok {
		format = ":warning: *%[1]s*: " + slackEscape(ev.Decision) + " (traffic %[3]d%%)"
	}
	head := fmt.Sprintf(format, slackEscape(ev.Rollout), ev.From, ev.To)
	var tail strings.Builder
	if ev.Next != "" {
		fmt.Fprintf(&tail, "Next: %s\n", slackEscape(ev.Next))
	}
	var links []string
	if ev.Proposal != "" {
		links = append(links, fmt.Sprintf("<%s|pull request>", slackEscape(ev.Proposal)))
	}
	if ev.Commit != "" {
		// A commit id is hex; escaped all the same, since the loop may take it from a commit's trailer.
		commit := slackEscape(strings.NewReplacer("|", "", "`", "").Replace(ev.Commit))
		if d.CommitURL != "" {
			links = append(links, fmt.Sprintf("<%s%s|commit `%s`>", slackEscape(d.CommitURL), commit, short(commit)))
		} else {
			links = append(links, fmt.Sprintf("commit `%s`", commit))
		}
	}
	if ev.Evidence != "" {
		links = append(links, fmt.Sprintf("<%s|evidence>", slackEscape(ev.Evidence)))
	}
	tail.WriteString(strings.Join(links, " · "))
	var b strings.Builder
	b.WriteString(slackReasons(ev.Reasons, slackSectionLimit-utf8.RuneCountInString(tail.String())))
	b.WriteString(tail.String())
	blocks := []slackBlock{{Type: "section", Text: &slackText{Type: "mrkdwn", Text: head}}}
	if strings.TrimSpace(b.String()) != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: strings.TrimSpace(b.String())}})
	}
	text := fmt.Sprintf("%s: %s %d%% → %d%%", ev.Rollout, eventOf(ev), ev.From, ev.To)
	return slack{Text: text, Blocks: blocks}
}

// slackSectionLimit is the most characters Slack accepts in a section block's text: a longer one makes
// it refuse the whole message (400 invalid_blocks).
const slackSectionLimit = 3000

// slackReasons lists reasons as bullet lines within budget characters: as many as fit, then how many
// more there are (the commit's message and the webhook's body hold them all).
func slackReasons(reasons []string, budget int) string {
	const moreRoom = 40 // "• …and 1234 more reasons\n", with room to spare
	var b strings.Builder
	used := 0
	for i, r := range reasons {
		line := fmt.Sprintf("• %s\n", slackEscape(r))
		n := utf8.RuneCountInString(line)
		room := budget - used
		if i < len(reasons)-1 {
			room -= moreRoom
		}
		if n > room {
			if used == 0 && room > moreRoom {
				// One long reason: its beginning, rather than nothing.
				line = string([]rune(line)[:room-2]) + "…\n"
				b.WriteString(line)
				i++
			}
			switch rest := len(reasons) - i; {
			case rest == 1:
				b.WriteString("• …and 1 more reason\n")
			case rest > 1:
				fmt.Fprintf(&b, "• …and %d more reasons\n", rest)
			}
			return b.String()
		}
		b.WriteString(line)
		used += n
	}
	return b.String()
}

func short(sha string) string { return sha[:min(7, len(sha))] }

// slackEscape escapes the three characters Slack's mrkdwn treats as control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
