package policy

import (
	"context"
	"io/fs"
	"net/http"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// TODO(issue 3): placeholder until the gates land; every gate stays shut.

// Gatekeeper evaluates stage gates: eval files read from the repository tree, and webhooks.
type Gatekeeper struct {
	// Repo is the repository tree that eval paths are relative to.
	Repo fs.FS
	// Client posts to gate webhooks.
	Client *http.Client
	// Timeout bounds a webhook call; default 10s.
	Timeout time.Duration
}

// Check evaluates the gate of stage (shut, with the reason, when it cannot be evaluated).
func (g *Gatekeeper) Check(ctx context.Context, spec *rollouts.Spec, stage int) GateResult {
	return GateResult{Stage: stage, Open: false, Reason: "gates are not evaluated yet"}
}

// NextGates returns the indexes of the stages whose gates Judge may need for spec now.
func NextGates(spec *rollouts.Spec) []int { return nil }
