// Package notify delivers rollback events and alerts to the targets a rollout names: Slack incoming
// webhooks and generic JSON webhooks.
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

	"github.com/rollout-dev/rollout/internal/webhook"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// DefaultTimeout bounds one delivery.
const DefaultTimeout = 10 * time.Second

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
			errs = append(errs, d.deliver(ctx, "slack", t.Slack, slackMessage(ev)))
		}
		if t.Webhook != "" {
			errs = append(errs, d.deliver(ctx, "webhook", t.Webhook, webhookPayload(ev)))
		}
	}
	return errors.Join(errs...)
}

// deliver posts payload as JSON to the URL that ref names.
func (d *Dispatcher) deliver(ctx context.Context, kind, ref string, payload any) error {
	u, err := d.resolve(ref)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, refName(ref), err)
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ans, err := webhook.Post(ctx, d.Client, u, payload, timeout)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, ref, err)
	}
	if !ans.OK {
		return fmt.Errorf("%s %s: answered %s: %s", kind, ref, ans.Status, ans.Text)
	}
	return nil
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

// webhookEvent is the JSON body of a generic webhook, as the contract names it.
type webhookEvent struct {
	Rollout  string   `json:"rollout"`
	Decision string   `json:"decision"`
	From     int      `json:"from"`
	To       int      `json:"to"`
	Reasons  []string `json:"reasons"`
	Commit   string   `json:"commit"`
	// Next says how to try again after a rollback; absent for other events.
	Next string `json:"next,omitempty"`
}

func webhookPayload(ev reconcile.Event) webhookEvent {
	reasons := ev.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	return webhookEvent{Rollout: ev.Rollout, Decision: ev.Decision, From: ev.From, To: ev.To, Reasons: reasons, Commit: ev.Commit, Next: ev.Next}
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

func slackMessage(ev reconcile.Event) slack {
	var head string
	switch ev.Decision {
	case "rollback":
		head = fmt.Sprintf(":rotating_light: *%s* rolled back: %d%% → %d%%", ev.Rollout, ev.From, ev.To)
	default:
		head = fmt.Sprintf(":warning: *%s*: %s (traffic %d%%)", ev.Rollout, ev.Decision, ev.To)
	}
	var b strings.Builder
	for _, r := range ev.Reasons {
		fmt.Fprintf(&b, "• %s\n", slackEscape(r))
	}
	if ev.Commit != "" {
		fmt.Fprintf(&b, "commit `%s`\n", ev.Commit)
	}
	if ev.Next != "" {
		fmt.Fprintf(&b, "Next: %s\n", slackEscape(ev.Next))
	}
	blocks := []slackBlock{{Type: "section", Text: &slackText{Type: "mrkdwn", Text: head}}}
	if b.Len() > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: strings.TrimSpace(b.String())}})
	}
	text := fmt.Sprintf("%s: %s %d%% → %d%%", ev.Rollout, ev.Decision, ev.From, ev.To)
	return slack{Text: text, Blocks: blocks}
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
