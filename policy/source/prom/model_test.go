package prom

import (
	"regexp"
	"testing"

	"github.com/rollout-dev/rollout/policy"
)

// TestArmByModel: a series' model belongs to an arm with or without a provider prefix; prefixes that
// disagree, and a model both arms use, belong to neither. The label selector lets every match through.
func TestArmByModel(t *testing.T) {
	q := policy.Query{StableModel: "anthropic/claude-a", CanaryModel: "claude-b"}
	selector := regexp.MustCompile(`^(?:` + modelRegex(q) + `)$`) // Prometheus anchors label regexes
	tests := []struct {
		model, provider string
		want            policy.Arm // "" for neither
	}{
		{"claude-a", "", policy.Stable},
		{"anthropic/claude-a", "", policy.Stable},
		{"claude-a", "anthropic", policy.Stable},
		{"claude-a", "openai", ""},
		{"bedrock/claude-a", "", ""},
		{"claude-b", "", policy.Canary},
		{"openrouter/anthropic/claude-b", "", policy.Canary},
		{"claude-b", "bedrock", policy.Canary},
		{"claude-c", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		arm, ok := armByModel(q, tt.model, tt.provider)
		if ok != (tt.want != "") || arm != tt.want {
			t.Errorf("armByModel(%q, %q) = %q, %v; want %q", tt.model, tt.provider, arm, ok, tt.want)
		}
		if ok && !selector.MatchString(tt.model) {
			t.Errorf("the label selector %s drops %q", selector, tt.model)
		}
	}
	if arm, ok := armByModel(policy.Query{StableModel: "m", CanaryModel: "openai/m"}, "m", ""); ok {
		t.Errorf("a model both arms use went to %s; only a variant label can split it", arm)
	}
}
