package prom_test

import (
	"context"
	"errors"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/internal/synth"
	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/source/prom"
)

// otelExporter serves the OpenTelemetry GenAI metrics as the Collector's Prometheus exporter writes
// them: dots become underscores, the unit s adds _seconds, {token} adds nothing, and an attribute a
// data point does not carry is an empty (absent) label. Buckets are the conventions' advice.
type otelExporter struct {
	duration *prometheus.HistogramVec
	tokens   *prometheus.HistogramVec
}

var otelLabels = []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_system", "gen_ai_request_model",
	"gen_ai_response_model", "server_address", "error_type", "rollout_name", "rollout_variant"}

func newOTelExporter(reg *prometheus.Registry) *otelExporter {
	e := &otelExporter{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_client_operation_duration_seconds",
			Help:    "GenAI operation duration.",
			Buckets: []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}}, otelLabels),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_client_token_usage",
			Help:    "Measures number of input and output tokens used.",
			Buckets: []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}},
			append([]string{"gen_ai_token_type"}, otelLabels...)),
	}
	reg.MustRegister(e.duration, e.tokens)
	return e
}

// otelAttrs are the attributes an instrumentation sets on one request's data points.
type otelAttrs struct {
	provider, system, model, rolloutName, variant string
}

func (e *otelExporter) observe(r synth.Request, a otelAttrs) {
	errType := ""
	if r.Error {
		errType = "timeout"
	}
	labels := []string{"chat", a.provider, a.system, a.model, a.model + "-2026", "api.example.com", errType, a.rolloutName, a.variant}
	e.duration.WithLabelValues(labels...).Observe(r.LatencyMS / 1000)
	if r.Error {
		return // a failed call reports no usage
	}
	tokenType := map[bool][2]string{false: {"input", "output"}, true: {"prompt", "completion"}}[a.system != ""]
	noErr := append([]string(nil), labels...)
	e.tokens.WithLabelValues(append([]string{tokenType[0]}, noErr...)...).Observe(float64(r.InputTokens))
	e.tokens.WithLabelValues(append([]string{tokenType[1]}, noErr...)...).Observe(float64(r.OutputTokens))
}

// liteLLMExporter serves LiteLLM proxy's metrics with the label names its Prometheus callback uses;
// prometheus_client appends _total to counters.
type liteLLMExporter struct {
	total, success, failure *prometheus.CounterVec
	latency                 *prometheus.HistogramVec
	spend, input, output    *prometheus.CounterVec
}

var (
	liteLLMDeploymentLabels = []string{"requested_model", "litellm_model_name", "model_id", "api_base", "api_provider",
		"hashed_api_key", "api_key_alias", "team", "team_alias"}
	liteLLMUserLabels = []string{"end_user", "hashed_api_key", "api_key_alias", "requested_model", "team", "team_alias", "user", "model"}
)

func newLiteLLMExporter(reg *prometheus.Registry) *liteLLMExporter {
	counter := func(name string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, labels)
	}
	e := &liteLLMExporter{
		total:   counter("litellm_deployment_total_requests_total", liteLLMDeploymentLabels),
		success: counter("litellm_deployment_success_responses_total", liteLLMDeploymentLabels),
		failure: counter("litellm_deployment_failure_responses_total", append(append([]string(nil), liteLLMDeploymentLabels...), "exception_status", "exception_class")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "litellm_request_total_latency_metric", Help: "Total latency (seconds)",
			Buckets: []float64{0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 8.5, 9, 9.5, 10, 15, 20, 25, 30, 60, 120, 180, 240, 300}},
			liteLLMUserLabels),
		spend:  counter("litellm_spend_metric_total", []string{"end_user", "hashed_api_key", "api_key_alias", "model", "team", "team_alias", "user"}),
		input:  counter("litellm_input_tokens_metric_total", liteLLMUserLabels),
		output: counter("litellm_output_tokens_metric_total", liteLLMUserLabels),
	}
	reg.MustRegister(e.total, e.success, e.failure, e.latency, e.spend, e.input, e.output)
	return e
}

// observe records one request routed by the proxy to the deployment whose litellm_params.model is
// deployment ("anthropic/claude-x"); the model label holds it without the provider.
func (e *liteLLMExporter) observe(r synth.Request, group, deployment string) {
	prov, bare := "", deployment
	for i := len(deployment) - 1; i >= 0; i-- {
		if deployment[i] == '/' {
			prov, bare = deployment[:i], deployment[i+1:]
			break
		}
	}
	dep := []string{group, deployment, "id-" + bare, "https://api.example.com", prov, "hash", "alias", "team-1", "team"}
	e.total.WithLabelValues(dep...).Inc()
	if r.Error {
		e.failure.WithLabelValues(append(dep, "500", "InternalServerError")...).Inc()
		return
	}
	e.success.WithLabelValues(dep...).Inc()
	user := []string{"", "hash", "alias", group, "team-1", "team", "user-1", bare}
	e.latency.WithLabelValues(user...).Observe(r.LatencyMS / 1000)
	e.spend.WithLabelValues("", "hash", "alias", bare, "team-1", "team", "user-1").Add(r.CostUSD)
	e.input.WithLabelValues(user...).Add(float64(r.InputTokens))
	e.output.WithLabelValues(user...).Add(float64(r.OutputTokens))
}

// schemaCase is one rollout of the schema tests: its spec's models and how its traffic is exported.
type schemaCase struct {
	rollout, schema     string
	stableModel, canary string
	failing             bool
	export              func(r synth.Request)
}

func schemaSpec(c schemaCase, stageStart time.Time) *rollouts.Spec {
	canary := &rollouts.Variant{Model: c.canary, Prompt: "v4"}
	limit := func(f float64) *float64 { return &f }
	ratio := func(r rollouts.Ratio) *rollouts.Ratio { return &r }
	rules := []rollouts.Rule{
		{Metric: "error_rate", Max: limit(0.05), MaxIncrease: ratio(1)},
		{Metric: "latency_p95_ms", MaxIncrease: ratio(0.5)},
		{Metric: "latency_mean_ms", MaxIncrease: ratio(0.5)},
	}
	return &rollouts.Spec{
		APIVersion: rollouts.APIVersion, Kind: rollouts.Kind, Name: c.rollout,
		Stable:  rollouts.Variant{Model: c.stableModel, Prompt: "v3"},
		Canary:  canary,
		Traffic: rollouts.Traffic{Weight: 50},
		Stages: []rollouts.Stage{
			{Weight: 10, MinDuration: rollouts.Duration(time.Hour), MinRequests: 200},
			{Weight: 50, MinDuration: rollouts.Duration(time.Hour), MinRequests: 200},
			{Weight: 100},
		},
		Metrics:  rollouts.MetricsSource{Source: "prometheus:http://unused", Schema: c.schema},
		Analysis: rollouts.Analysis{Confidence: 0.95, AdvanceConfidence: 0.8, Rules: rules},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 1, StageStartedAt: stageStart,
			Canary: rollouts.Fingerprint(canary)},
	}
}

// TestSchemasThroughPrometheus feeds a real Prometheus with OpenTelemetry GenAI and LiteLLM metrics,
// as their instrumentations name and label them, and judges a healthy and a failing canary of each.
func TestSchemasThroughPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	otel := newOTelExporter(reg)
	lite := newLiteLLMExporter(reg)
	cases := []schemaCase{
		// Current attribute names, no rollout labels: the arm is found by model; the spec names one
		// model with its provider prefix.
		{rollout: "otel-failing", schema: rollouts.SchemaOTelGenAI, stableModel: "anthropic/claude-a", canary: "claude-b", failing: true,
			export: func(r synth.Request) {
				m := map[policy.Arm]string{policy.Stable: "claude-a", policy.Canary: "claude-b"}[r.Variant]
				otel.observe(r, otelAttrs{provider: "anthropic", model: m})
			}},
		// Older attribute names (gen_ai_system, prompt/completion) and rollout.name/rollout.variant
		// attributes: a prompt change on one model, which only the variant label can split.
		{rollout: "otel-healthy", schema: rollouts.SchemaOTelGenAI, stableModel: "gpt-4o", canary: "gpt-4o",
			export: func(r synth.Request) {
				otel.observe(r, otelAttrs{system: "openai", model: "gpt-4o", rolloutName: "otel-healthy", variant: string(r.Variant)})
			}},
		// LiteLLM: deployments named with their provider, specs with and without it.
		{rollout: "litellm-healthy", schema: rollouts.SchemaLiteLLM, stableModel: "gpt-5-mini", canary: "openai/gpt-5",
			export: func(r synth.Request) {
				lite.observe(r, "chat", map[policy.Arm]string{policy.Stable: "openai/gpt-5-mini", policy.Canary: "openai/gpt-5"}[r.Variant])
			}},
		{rollout: "litellm-failing", schema: rollouts.SchemaLiteLLM, stableModel: "anthropic/claude-x", canary: "claude-y", failing: true,
			export: func(r synth.Request) {
				lite.observe(r, "summarize", map[policy.Arm]string{policy.Stable: "anthropic/claude-x", policy.Canary: "anthropic/claude-y"}[r.Variant])
			}},
	}
	byRollout := map[string]schemaCase{}
	var traffic []synth.Request
	for i, c := range cases {
		byRollout[c.rollout] = c
		canary := synth.Stable
		if c.failing {
			canary.ErrorRate, canary.LatencyMedian = 0.12, 900
		}
		traffic = append(traffic, synth.Generate(synth.Traffic{Rollout: c.rollout, From: from, To: to, Stable: 4000, Canary: 4000,
			StableProfile: synth.Stable, CanaryProfile: canary}, uint64(10+i))...)
	}
	// Another rollout on the same model, labelled with its own name and failing everything: it must
	// not leak into otel-healthy.
	noise := synth.Stable
	noise.ErrorRate = 0.9
	for _, r := range synth.Generate(synth.Traffic{Rollout: "otel-other", From: from, To: to, Stable: 500, Canary: 500,
		StableProfile: noise, CanaryProfile: noise}, 99) {
		traffic = append(traffic, r)
	}
	sort.SliceStable(traffic, func(i, j int) bool { return traffic[i].TS.Before(traffic[j].TS) })
	observe := func(r synth.Request) {
		if c, ok := byRollout[r.Rollout]; ok {
			c.export(r)
			return
		}
		otel.observe(r, otelAttrs{system: "openai", model: "gpt-4o", rolloutName: r.Rollout, variant: string(r.Variant)})
	}
	om, err := synth.OpenMetrics(reg, observe, traffic, from, to, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	src, err := prom.New(testserver.PrometheusBackfilled(t, om))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range cases {
		t.Run(c.rollout, func(t *testing.T) {
			spec := schemaSpec(c, from)
			q, ok := policy.QueryFor(spec, to)
			if !ok {
				t.Fatal("no query for a progressing rollout")
			}
			q.Metrics = nil // every built-in: the schema's, and no data for the rest
			before := src.Queries()
			got, err := src.Stats(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if n := src.Queries() - before; n != 1 {
				t.Errorf("one Stats call sent %d queries, want 1", n)
			}
			if got.Unit != policy.UnitRequest {
				t.Errorf("unit %q, want %q: Prometheus counts requests, not keys", got.Unit, policy.UnitRequest)
			}
			want := synth.Expected(traffic, c.rollout, policy.Window{From: from, To: to})
			for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
				g, w := got.Arm(arm), want.Arm(arm)
				if g.Requests != w.Requests {
					t.Errorf("%s: %d requests, want %d", arm, g.Requests, w.Requests)
				}
				if ge, we := g.Metrics["error_rate"], w.Metrics["error_rate"]; ge.Kind != policy.Proportion || ge.N != we.N || ge.Sum != we.Sum {
					t.Errorf("%s: error_rate %+v, want %+v", arm, g.Metrics["error_rate"], w.Metrics["error_rate"])
				}
				if s := g.Metrics["latency_p95_ms"]; s.Dist == nil || math.Abs(s.Dist.Quantile(0.95)/w.Metrics["latency_p95_ms"].Dist.Quantile(0.95)-1) > 0.35 {
					t.Errorf("%s: latency_p95_ms %+v, want near %g", arm, s, w.Metrics["latency_p95_ms"].Dist.Quantile(0.95))
				}
				for _, absent := range []string{"quality_score", "negative_feedback_rate", "refusal_rate"} {
					if s, ok := g.Metrics[absent]; ok {
						t.Errorf("%s: %s = %+v, want no data: the %s schema has none", arm, absent, s, c.schema)
					}
				}
				switch c.schema {
				case rollouts.SchemaOTelGenAI:
					if s, ok := g.Metrics["cost_per_request"]; ok {
						t.Errorf("%s: cost_per_request = %+v, want no data", arm, s)
					}
					if s := g.Metrics["output_tokens_per_request"]; s.Kind != policy.Mean || s.N != w.Requests-int64(w.Metrics["error_rate"].Sum) {
						t.Errorf("%s: output tokens %+v, want a mean over the successful requests", arm, s)
					}
				case rollouts.SchemaLiteLLM:
					if s := g.Metrics["cost_per_request"]; s.Kind != policy.Value || !(s.Sum > 0) {
						t.Errorf("%s: cost_per_request %+v, want an advisory value", arm, s)
					}
				}
			}
			d := policy.Judge(spec, policy.Evidence{Stats: got}, to)
			wantAction := policy.Advance
			if c.failing {
				wantAction = policy.Rollback
			}
			if d.Action != wantAction {
				t.Errorf("decision %s, want %s; reasons %q", d.Action, wantAction, d.Reasons)
			}
		})
	}
}

// TestRuleQueryCounts runs rules' own queries that return counts the judge can test, through a real
// Prometheus: a Proportion from events and total, a Mean from sum, sum of squares and count.
func TestRuleQueryCounts(t *testing.T) {
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 700, Canary: 300,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 3)
	src, err := prom.New(backfilled(t, traffic))
	if err != nil {
		t.Fatal(err)
	}
	want := synth.Expected(traffic, "summarizer", policy.Window{From: from, To: to})
	stat := func(name, expr string) string { return `label_replace(` + expr + `, "stat", "` + name + `", "", "")` }
	errorsOf := `sum(increase(llm_requests_total{rollout="{{rollout}}",variant="{{variant}}",outcome="error"}[{{window}}]))`
	requestsOf := `sum(increase(llm_requests_total{rollout="{{rollout}}",variant="{{variant}}"}[{{window}}]))`
	tests := []struct {
		name, query string
		want        func(arm policy.Arm) policy.Sample
		wantErr     bool
	}{
		{name: "events and total", query: stat("events", errorsOf) + " or " + stat("total", requestsOf),
			want: func(arm policy.Arm) policy.Sample {
				e := want.Arm(arm).Metrics["error_rate"]
				return policy.Sample{Kind: policy.Proportion, N: e.N, Sum: e.Sum}
			}},
		{name: "n, sum and sumsq", query: stat("n", "vector(10)") + " or " + stat("sum", "vector(50)") + " or " + stat("sumsq", "vector(300)"),
			want: func(policy.Arm) policy.Sample {
				return policy.Sample{Kind: policy.Mean, N: 10, Sum: 50, SumSquares: 300}
			}},
		{name: "one bare value stays advisory", query: requestsOf,
			want: func(arm policy.Arm) policy.Sample {
				n := want.Arm(arm).Requests
				return policy.Sample{Kind: policy.Value, N: n, Sum: float64(n)}
			}},
		{name: "unknown stat", query: stat("mean", "vector(1)") + " or " + stat("n", "vector(2)"), wantErr: true},
		{name: "no total", query: stat("events", errorsOf), wantErr: true},
		{name: "more events than requests", query: stat("events", "vector(5)") + " or " + stat("total", "vector(2)"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.Stats(context.Background(), policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to},
				Metrics: []policy.MetricQuery{{Name: "error_rate"}, {Name: "custom", Query: tt.query}}})
			if tt.wantErr {
				if err == nil || !errors.Is(err, prom.ErrBadQuery) {
					t.Fatalf("error = %v, want ErrBadQuery", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
				g, w := got.Arm(arm).Metrics["custom"], tt.want(arm)
				if g.Kind != w.Kind || g.N != w.N || g.Sum != w.Sum || g.SumSquares != w.SumSquares {
					t.Errorf("%s: got %+v, want %+v", arm, g, w)
				}
			}
		})
	}
}
