package policy

import (
	"reflect"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

func TestNextGates(t *testing.T) {
	gated := func(edit func(*rollouts.Spec)) *rollouts.Spec {
		s := baseSpec()
		s.Stages[0].Gate = &rollouts.Gate{Evals: "e.json"}
		s.Stages[2].Gate = &rollouts.Gate{Webhook: "env:G"}
		edit(s)
		return s
	}
	tests := []struct {
		name string
		spec *rollouts.Spec
		want []int
	}{
		{"pending needs stage 0", gated(func(s *rollouts.Spec) { s.Status = nil }), []int{0}},
		{"a changed canary needs stage 0", gated(func(s *rollouts.Spec) { s.Status.Canary = "x" }), []int{0}},
		{"a running stage needs the next", gated(func(s *rollouts.Spec) {}), []int{2}},
		{"no gate on the next stage", gated(func(s *rollouts.Spec) { s.Status.Stage = 2 }), nil},
		{"a stage awaiting its window needs nothing", gated(func(s *rollouts.Spec) { s.Status.StageStartedAt = time.Time{} }), nil},
		{"paused needs nothing", gated(func(s *rollouts.Spec) { s.Status.Phase = rollouts.Paused }), nil},
		{"no canary needs nothing", gated(func(s *rollouts.Spec) { s.Canary = nil }), nil},
	}
	for _, tt := range tests {
		if got := NextGates(tt.spec); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
