package growthbook_test

import (
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/export/growthbook"
)

func TestFeatureOf(t *testing.T) {
	spec := func(weight, shadow int, salt string) *rollouts.Spec {
		return &rollouts.Spec{Name: "r", Stable: rollouts.Variant{Model: "a", Prompt: "p1"}, Canary: &rollouts.Variant{Model: "b", Prompt: "p2"},
			Traffic: rollouts.Traffic{Weight: weight, Shadow: shadow}, Assignment: rollouts.Assignment{Salt: salt}}
	}
	tests := []struct {
		name      string
		spec      *rollouts.Spec
		rules     int
		attr      string
		warnings  []string
		describes string
	}{
		{"weight 0: stable, no rules", spec(0, 0, "s"), 0, "", nil, "no canary traffic"},
		{"no canary", &rollouts.Spec{Name: "r", Stable: rollouts.Variant{Model: "a"}, Traffic: rollouts.Traffic{Weight: 50}}, 0, "", nil, "no canary traffic"},
		{"split on the default attribute", spec(30, 0, "s"), 1, growthbook.DefaultHashAttribute, nil, "30% of id"},
		{"shadow is said, not dropped", spec(30, 10, "s"), 1, "id", []string{"traffic.shadow 10% is not expressed"}, "traffic.shadow 10% is not expressed"},
		// Its salt hashes the empty key onto the canary, which GrowthBook would skip: a forced rule.
		{"an emoji salt warns about Python", spec(30, 0, "s-😀"), 2, "id", []string{"Python SDK hashes it differently"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, warnings, err := growthbook.FeatureOf(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if f.DefaultValue != (growthbook.Value{Variant: "stable", Model: "a", Prompt: tt.spec.Stable.Prompt}) || len(f.Rules) != tt.rules {
				t.Fatalf("feature %+v, want the stable value and %d rules", f, tt.rules)
			}
			if tt.rules > 0 {
				r := f.Rules[len(f.Rules)-1]
				if r.HashAttribute != tt.attr || r.HashVersion != 2 || r.Seed != tt.spec.Assignment.Salt || !r.DisableStickyBucketing ||
					r.Ranges[0] != [2]float64{0, 0.3} || r.Variations[0].Variant != "canary" {
					t.Errorf("split rule %+v", r)
				}
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d", warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q, want it to say %q", warnings[i], w)
				}
			}
			if !strings.Contains(f.Description, tt.describes) {
				t.Errorf("description %q, want it to say %q", f.Description, tt.describes)
			}
		})
	}
	if _, _, err := growthbook.Build([]*rollouts.Spec{spec(5, 0, "a"), spec(5, 0, "b")}); err == nil {
		t.Error("two rollouts with one name: no error")
	}
}
