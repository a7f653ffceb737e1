package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/policy/source/synth/genaiexport"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestEvaluateOTelSchemaNamesMetricsWithoutData runs `rollout evaluate` on a spec whose metrics are
// the OpenTelemetry GenAI conventions in a real Prometheus: the failing canary rolls back, and the
// rules on cost and quality, which the conventions do not hold, are named as having no data.
func TestEvaluateOTelSchemaNamesMetricsWithoutData(t *testing.T) {
	from := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	now := from.Add(6 * time.Hour)
	canary := synth.Stable
	canary.ErrorRate = 0.1
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: now, Stable: 5000, Canary: 1000,
		StableProfile: synth.Stable, CanaryProfile: canary}, 8)
	reg := prometheus.NewRegistry()
	otel := genaiexport.NewOTel(reg)
	om, err := synth.OpenMetrics(reg, func(r synth.Request) {
		model := map[policy.Arm]string{policy.Stable: "claude-sonnet-4-5-20260301", policy.Canary: "claude-sonnet-4-5-20260415"}[r.Variant]
		otel.Observe(r, genaiexport.OTelAttrs{Provider: "anthropic", Model: model})
	}, traffic, from, now, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	promURL := testserver.PrometheusBackfilled(t, om)

	spec := `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable: {model: anthropic/claude-sonnet-4-5-20260301}
canary: {model: anthropic/claude-sonnet-4-5-20260415}
traffic: {weight: 5}
stages:
  - {weight: 5, minDuration: 4h, minRequests: 200}
  - {weight: 100}
metrics:
  source: prometheus:` + promURL + `
  schema: otel-genai
analysis:
  rules:
    - {metric: error_rate, max: 0.05, maxIncrease: 50%}
    - {metric: latency_p95_ms, maxIncrease: 30%}
    - {metric: cost_per_request, maxIncrease: 50%}
    - {metric: quality_score, maxDecrease: 5%}
status: {phase: Progressing, stage: 0, stageStartedAt: 2026-04-16T00:00:00Z}
`
	path := filepath.Join(t.TempDir(), "summarizer.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	app, out, errOut := testApp()
	if code := app.Main([]string{"evaluate", "--spec", path, "--now", now.Format(time.RFC3339)}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"summarizer: rollback", "error_rate", "no data: cost_per_request (not in the otel-genai schema), quality_score (not in the otel-genai schema)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}

	app, out, errOut = testApp()
	if code := app.Main([]string{"evaluate", "--spec", path, "--now", now.Format(time.RFC3339), "-o", "json"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ev struct {
		Decision string   `json:"decision"`
		NoData   []string `json:"noData"`
	}
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Decision != "rollback" || strings.Join(ev.NoData, ",") != "cost_per_request,quality_score" {
		t.Errorf("decision %s, noData %q; want rollback and the two metrics the conventions lack", ev.Decision, ev.NoData)
	}
}

// TestSchemaNeedsPrometheus: the otel-genai and litellm schemas are Prometheus names, langfuse and
// helicone ClickHouse tables; a spec that points them at another source gets an error (the judge then
// holds), never a silent misreading.
func TestSchemaNeedsPrometheus(t *testing.T) {
	app, _, _ := testApp()
	for _, tt := range []struct {
		schema, source string
		ok             bool
	}{
		{"otel-genai", "prometheus:http://127.0.0.1:9090", true},
		{"litellm", "prometheus:http://127.0.0.1:9090", true},
		{"otel-genai", "file:traffic/x.jsonl", false},
		{"litellm", "postgres://reader@127.0.0.1/telemetry", false},
		{"langfuse", "postgres://reader@127.0.0.1/telemetry", false},
		{"helicone", "prometheus:http://127.0.0.1:9090", false},
		{"rollout", "file:traffic/x.jsonl", true},
	} {
		spec := &rollouts.Spec{Name: "r", Metrics: rollouts.MetricsSource{Source: tt.source, Schema: tt.schema}}
		_, err := app.openSource(spec, "")
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "metrics.schema "+tt.schema+" is read from ")) {
			t.Errorf("schema %s on %s: error %v", tt.schema, tt.source, err)
		}
	}
}
