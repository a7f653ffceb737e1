// Package gate evaluates the stage gates of a rollout for the judge: it reads eval results files from the
// repository tree and posts to gate webhooks. It is the I/O side of policy.GateChecker; the decision an
// evals file leads to is policy.JudgeEvals, so the judge stays pure.
//
// It belongs to the policy room and implements policy.GateChecker, the I/O (files, webhooks) the pure
// judge must not do itself.
package gate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/webhook"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// DefaultTimeout bounds a gate webhook call when Keeper.Timeout is zero: the contract's 10 s.
const DefaultTimeout = 10 * time.Second

// Keeper evaluates stage gates: eval files read from the repository tree, and webhooks.
//
// A gate that cannot be evaluated stays shut, with the reason; a webhook's URL (a secret, often) never
// appears in a reason.
type Keeper struct {
	// Repo is the repository tree that eval paths are relative to.
	Repo fs.FS
	// Client posts to gate webhooks; nil means http.DefaultClient.
	Client *http.Client
	// Timeout bounds a webhook call; default DefaultTimeout.
	Timeout time.Duration
	// Getenv resolves a webhook URL written as env:NAME; nil means no environment.
	Getenv func(string) string
}

var _ policy.GateChecker = (*Keeper)(nil)

// Check evaluates the gate of stage (shut, with the reason, when it cannot be evaluated). A stage
// without a gate is open. Check reads the eval file or calls the webhook once; it writes nothing.
func (k *Keeper) Check(ctx context.Context, spec *rollouts.Spec, stage int) policy.GateResult {
	res := policy.GateResult{Stage: stage}
	if stage < 0 || stage >= len(spec.Stages) {
		res.Reason = fmt.Sprintf("stage %d is not a stage of this rollout", stage)
		return res
	}
	g := spec.Stages[stage].Gate
	switch {
	case g == nil:
		res.Open, res.Reason = true, "no gate"
	case g.Evals != "" && g.Webhook != "":
		res.Reason = "the gate sets both evals and webhook; set one"
	case g.Evals != "":
		res.Open, res.Reason = k.checkEvals(g)
	case g.Webhook != "":
		res.Open, res.Reason = k.checkWebhook(ctx, spec, stage, g.Webhook)
	default:
		res.Reason = "the gate sets neither evals nor webhook"
	}
	return res
}

// checkEvals reads an evals gate's file and lets the judge decide it.
func (k *Keeper) checkEvals(g *rollouts.Gate) (bool, string) {
	name := path.Clean(strings.TrimPrefix(g.Evals, "/"))
	if k.Repo == nil {
		return false, fmt.Sprintf("evals %s: no repository to read it from", g.Evals)
	}
	raw, err := fs.ReadFile(k.Repo, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Sprintf("evals %s: file not found", g.Evals)
		}
		return false, fmt.Sprintf("evals %s: %v", g.Evals, err)
	}
	return policy.JudgeEvals(g, raw)
}

// webhookPayload is what a gate webhook receives (CONTRACT.md, "Gates and notifications").
type webhookPayload struct {
	Rollout string            `json:"rollout"`
	Stage   int               `json:"stage"`
	Weight  int               `json:"weight"`
	Stable  rollouts.Variant  `json:"stable"`
	Canary  *rollouts.Variant `json:"canary"`
}

// checkWebhook opens a webhook gate when the POST answers 2xx within the timeout.
func (k *Keeper) checkWebhook(ctx context.Context, spec *rollouts.Spec, stage int, ref string) (bool, string) {
	url := ref
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		url = ""
		if k.Getenv != nil {
			url = k.Getenv(name)
		}
		if url == "" {
			return false, fmt.Sprintf("webhook: environment variable %s is not set", name)
		}
	}
	timeout := k.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ans, err := webhook.Post(ctx, k.Client, url, webhookPayload{Rollout: spec.Name, Stage: stage,
		Weight: spec.Stages[stage].Weight, Stable: spec.Stable, Canary: spec.Canary}, timeout)
	if err != nil {
		return false, "webhook: " + err.Error()
	}
	if !ans.OK {
		reason := "webhook answered " + ans.Status
		if ans.Text != "" {
			reason += ": " + ans.Text
		}
		return false, reason
	}
	return true, "webhook answered " + ans.Status
}
