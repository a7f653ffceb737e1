package synth

import (
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

func ratio(r rollouts.Ratio) *rollouts.Ratio { return &r }
func limit(f float64) *float64               { return &f }

// Spec is a rollout in its 25% stage since stageStart (minimum 4 h, 200 requests per arm), judged on
// every kind of built-in metric: proportions, means and a quantile.
func Spec(name string, stageStart time.Time) *rollouts.Spec {
	canary := &rollouts.Variant{Model: "model-canary", Prompt: "v3"}
	return &rollouts.Spec{
		APIVersion: rollouts.APIVersion, Kind: rollouts.Kind, Name: name,
		Stable:  rollouts.Variant{Model: "model-stable", Prompt: "v3"},
		Canary:  canary,
		Traffic: rollouts.Traffic{Weight: 25},
		Stages: []rollouts.Stage{
			{Weight: 5, MinDuration: rollouts.Duration(time.Hour), MinRequests: 200},
			{Weight: 25, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 50, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 100},
		},
		Analysis: rollouts.Analysis{Confidence: 0.95, Rules: []rollouts.Rule{
			{Metric: "error_rate", Max: limit(0.05), MaxIncrease: ratio(0.5)},
			{Metric: "latency_p95_ms", MaxIncrease: ratio(0.3)},
			{Metric: "latency_mean_ms", MaxIncrease: ratio(0.3)},
			{Metric: "cost_per_request", MaxIncrease: ratio(0.5)},
			{Metric: "quality_score", MaxDecrease: ratio(0.05)},
			{Metric: "refusal_rate", MaxIncrease: ratio(1)},
		}},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 1, StageStartedAt: stageStart,
			Canary: rollouts.Fingerprint(canary)},
	}
}
