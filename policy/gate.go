package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/webhook"
	"github.com/rollout-dev/rollout/rollouts"
)

// DefaultGateTimeout bounds a gate webhook call when Gatekeeper.Timeout is zero.
const DefaultGateTimeout = 10 * time.Second

// Gatekeeper evaluates stage gates: eval files read from the repository tree, and webhooks.
//
// A gate that cannot be evaluated stays shut, with the reason; a webhook's URL (a secret, often) never
// appears in a reason.
type Gatekeeper struct {
	// Repo is the repository tree that eval paths are relative to.
	Repo fs.FS
	// Client posts to gate webhooks; nil means http.DefaultClient.
	Client *http.Client
	// Timeout bounds a webhook call; default 10s.
	Timeout time.Duration
	// Getenv resolves a webhook URL written as env:NAME; nil means no environment.
	Getenv func(string) string
}

// Check evaluates the gate of stage (shut, with the reason, when it cannot be evaluated). A stage
// without a gate is open. Check reads the eval file or calls the webhook once; it writes nothing.
func (g *Gatekeeper) Check(ctx context.Context, spec *rollouts.Spec, stage int) GateResult {
	res := GateResult{Stage: stage}
	if stage < 0 || stage >= len(spec.Stages) {
		res.Reason = fmt.Sprintf("stage %d is not a stage of this rollout", stage)
		return res
	}
	gate := spec.Stages[stage].Gate
	switch {
	case gate == nil:
		res.Open, res.Reason = true, "no gate"
	case gate.Evals != "" && gate.Webhook != "":
		res.Reason = "the gate sets both evals and webhook; set one"
	case gate.Evals != "":
		res.Open, res.Reason = g.checkEvals(gate)
	case gate.Webhook != "":
		res.Open, res.Reason = g.checkWebhook(ctx, spec, stage, gate.Webhook)
	default:
		res.Reason = "the gate sets neither evals nor webhook"
	}
	return res
}

// evalFile is the offline eval results file of the contract.
type evalFile struct {
	Cases []evalCase `json:"cases"`
}

type evalCase struct {
	ID     string `json:"id"`
	Stable *bool  `json:"stable"`
	Canary *bool  `json:"canary"`
}

// checkEvals opens an evals gate when the canary's pass rate reaches minPassRate and, with
// noRegressions, every case that passes on stable passes on the canary.
func (g *Gatekeeper) checkEvals(gate *rollouts.Gate) (bool, string) {
	name := path.Clean(strings.TrimPrefix(gate.Evals, "/"))
	if g.Repo == nil {
		return false, fmt.Sprintf("evals %s: no repository to read it from", gate.Evals)
	}
	raw, err := fs.ReadFile(g.Repo, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Sprintf("evals %s: file not found", gate.Evals)
		}
		return false, fmt.Sprintf("evals %s: %v", gate.Evals, err)
	}
	var ef evalFile
	if err := json.Unmarshal(raw, &ef); err != nil {
		return false, fmt.Sprintf("evals %s: not an eval results file: %v", gate.Evals, err)
	}
	if len(ef.Cases) == 0 {
		return false, fmt.Sprintf("evals %s: no cases", gate.Evals)
	}
	passed := 0
	var regressions []string
	for i, c := range ef.Cases {
		if c.Canary == nil || (gate.NoRegressions && c.Stable == nil) {
			id := c.ID
			if id == "" {
				id = fmt.Sprintf("#%d", i+1)
			}
			return false, fmt.Sprintf("evals %s: case %s has no stable or canary result", gate.Evals, id)
		}
		if *c.Canary {
			passed++
		} else if c.Stable != nil && *c.Stable {
			regressions = append(regressions, c.ID)
		}
	}
	rate := float64(passed) / float64(len(ef.Cases))
	summary := fmt.Sprintf("evals %s: canary passes %d of %d cases (%s)", gate.Evals, passed, len(ef.Cases), trimFloat(rate*100, 1)+"%")
	if rate < gate.MinPassRate {
		return false, fmt.Sprintf("%s, below minPassRate %s", summary, trimFloat(gate.MinPassRate*100, 2)+"%")
	}
	if gate.NoRegressions && len(regressions) > 0 {
		shown := regressions
		if len(shown) > 5 {
			shown = shown[:5]
		}
		more := ""
		if len(regressions) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(regressions)-len(shown))
		}
		return false, fmt.Sprintf("%s; %d regressed from stable: %s%s", summary, len(regressions), strings.Join(shown, ", "), more)
	}
	return true, summary
}

// webhookPayload is what a gate webhook receives.
type webhookPayload struct {
	Rollout string            `json:"rollout"`
	Stage   int               `json:"stage"`
	Weight  int               `json:"weight"`
	Stable  rollouts.Variant  `json:"stable"`
	Canary  *rollouts.Variant `json:"canary"`
}

// checkWebhook opens a webhook gate when the POST answers 2xx within the timeout.
func (g *Gatekeeper) checkWebhook(ctx context.Context, spec *rollouts.Spec, stage int, ref string) (bool, string) {
	url := ref
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		url = ""
		if g.Getenv != nil {
			url = g.Getenv(name)
		}
		if url == "" {
			return false, fmt.Sprintf("webhook: environment variable %s is not set", name)
		}
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = DefaultGateTimeout
	}
	ans, err := webhook.Post(ctx, g.Client, url, webhookPayload{Rollout: spec.Name, Stage: stage,
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

// NextGates returns the indexes of the stages whose gates Judge may need for spec now: stage 0 for a
// rollout about to start, the next stage of a running one. Stages without a gate are left out.
func NextGates(spec *rollouts.Spec) []int {
	if spec.Canary == nil || len(spec.Stages) == 0 {
		return nil
	}
	var want []int
	st := spec.Status
	switch {
	case st == nil || st.Phase == rollouts.Pending || st.Phase == "" ||
		(st.Canary != "" && st.Canary != rollouts.Fingerprint(spec.Canary)):
		want = []int{0}
	case st.Phase == rollouts.Progressing && !st.StageStartedAt.IsZero():
		// Acceleration never skips into or over a gated stage, so only the next one matters.
		want = []int{st.Stage + 1}
	}
	var out []int
	for _, i := range want {
		if i >= 0 && i < len(spec.Stages) && spec.Stages[i].Gate != nil {
			out = append(out, i)
		}
	}
	return out
}
