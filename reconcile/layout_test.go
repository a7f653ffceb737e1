package reconcile_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// A spec in any layout that validate accepts takes the loop's edits on a real repository: a JSON spec
// is rolled back (and stays JSON), a one-line flow mapping too, and a spec with document markers
// starts with its status inside the document (issue 16: "the file is not a block mapping", and a
// status appended after the end marker).
func TestEveryLayoutValidateAcceptsTakesTheLoopsEdits(t *testing.T) {
	const jsonSpec = `{
  "apiVersion": "rollout/v1",
  "kind": "Rollout",
  "name": "summarizer",
  "stable": {"model": "a"},
  "canary": {"model": "b"},
  "traffic": {"weight": 5},
  "stages": [{"weight": 5, "minDuration": "1h"}, {"weight": 100}],
  "analysis": {"rules": [{"metric": "error_rate", "max": "2%", "maxIncrease": "50%"}]},
  "status": {"phase": "Progressing", "stage": 0, "stageStartedAt": "2026-04-16T00:00:00Z"}
}
`
	tests := []struct {
		name, spec string
		rollback   bool
		want       policy.Action
		check      func(t *testing.T, after string)
	}{
		{"json rollback", jsonSpec, true, policy.Rollback, func(t *testing.T, after string) {
			if !json.Valid([]byte(after)) {
				t.Errorf("the rolled-back spec is no longer JSON:\n%s", after)
			}
		}},
		{"flow mapping rollback", `{apiVersion: rollout/v1, kind: Rollout, name: summarizer, stable: {model: a}, canary: {model: b}, traffic: {weight: 5}, stages: [{weight: 5, minDuration: 1h}], status: {phase: Progressing, stage: 0, stageStartedAt: 2026-04-16T00:00:00Z}}`,
			true, policy.Rollback, func(t *testing.T, after string) {
				if strings.Count(after, "\n") > 1 {
					t.Errorf("the one-line spec grew lines:\n%s", after)
				}
			}},
		{"document markers start", "---\n" + pendingSpec + "...\n# notes after the document\n", false, policy.Start, func(t *testing.T, after string) {
			if i, j := strings.Index(after, "status:"), strings.Index(after, "\n...\n"); i < 0 || j < i {
				t.Errorf("the status is not inside the document:\n%s", after)
			}
		}},
		{"trailing document marker rollback", pendingSpec[:strings.Index(pendingSpec, "stages:")] + "stages: [{weight: 5}, {weight: 100}]\nstatus: {phase: Progressing, stage: 0, stageStartedAt: 2026-04-16T00:00:00Z}\n---\n",
			true, policy.Rollback, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rollback {
				tt.spec = strings.Replace(tt.spec, "weight: 0\n", "weight: 5\n", 1)
			}
			if _, problems := rollouts.Parse("s.yaml", []byte(tt.spec)); len(problems) > 0 {
				t.Fatalf("the spec is not valid: %v", problems)
			}
			bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": tt.spec})
			l := loopOn(t, bare, func() {})
			l.Judge = func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
				d := policy.Judge(spec, ev, now)
				if tt.rollback {
					d.Action, d.Next, d.Reasons = policy.Rollback, &policy.Step{}, []string{"error_rate: canary worse than allowed"}
				}
				return d
			}
			rep, err := l.Tick(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Results[0]
			if r.Err != nil || r.Decision != tt.want || r.Commit == "" {
				t.Fatalf("result %+v, want a %s commit", r, tt.want)
			}
			after := gittest.Git(t, bare, "show", "main:rollouts/summarizer.yaml")
			spec, problems := rollouts.Parse("s.yaml", []byte(after))
			if len(problems) > 0 {
				t.Fatalf("the committed spec is not valid: %v\n%s", problems, after)
			}
			wantWeight, wantPhase := 5, rollouts.Progressing
			if tt.rollback {
				wantWeight, wantPhase = 0, rollouts.RolledBack
			}
			if spec.Traffic.Weight != wantWeight || spec.Status == nil || spec.Status.Phase != wantPhase {
				t.Errorf("committed traffic %+v status %+v, want weight %d phase %s\n%s", spec.Traffic, spec.Status, wantWeight, wantPhase, after)
			}
			if tt.check != nil {
				tt.check(t, after)
			}
		})
	}
}
