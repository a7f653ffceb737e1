package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/rollouts"
)

// GateChecker evaluates the gate of one stage of a rollout: it reads an eval results file or calls a
// webhook, the I/O the judge never does itself. The judge reads only the GateResults it returns
// (Evidence.Gates); package gate implements it, and cmd/rollout and reconcile wire that in.
//
// Check is idempotent for eval files and calls a webhook at most once per call. It never fails: a gate
// that cannot be evaluated (a missing file, an unset variable, a webhook that does not answer 2xx in
// time) is shut, with the reason; a webhook URL, often a secret, never appears in a reason.
type GateChecker interface {
	Check(ctx context.Context, spec *rollouts.Spec, stage int) GateResult
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

// JudgeEvals decides an evals gate from the contents of its results file: open when the canary's pass
// rate reaches minPassRate and, with noRegressions, every case that passes on stable passes on the
// canary. It is pure; reading the file is the GateChecker's job.
func JudgeEvals(gate *rollouts.Gate, raw []byte) (open bool, reason string) {
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
		changedCanary(spec):
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
