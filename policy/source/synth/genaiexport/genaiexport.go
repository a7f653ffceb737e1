// Package genaiexport exports synthetic requests under the Prometheus names that other
// instrumentations write, for the tests of metrics.schema: the OpenTelemetry GenAI semantic conventions
// as the OpenTelemetry Collector's Prometheus exporter writes them, and LiteLLM proxy's Prometheus
// callback. Label names, units and buckets are theirs; feed it with policy/source/synth traffic.
//
// It belongs to the policy room, under synth, whose traffic it exports for the prom source's tests.
package genaiexport

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/policy/source/synth"
)

// OTel serves the OpenTelemetry GenAI metrics as the Collector's Prometheus exporter writes
// them: dots become underscores, the unit s adds _seconds, {token} adds nothing, and an attribute a
// data point does not carry is an empty (absent) label. Buckets are the conventions' advice.
type OTel struct {
	duration *prometheus.HistogramVec
	tokens   *prometheus.HistogramVec
}

var otelLabels = []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_system", "gen_ai_request_model",
	"gen_ai_response_model", "server_address", "error_type", "rollout_name", "rollout_variant"}

// NewOTel registers the OpenTelemetry GenAI histograms in reg.
func NewOTel(reg *prometheus.Registry) *OTel {
	e := &OTel{
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

// OTelAttrs are the attributes an instrumentation sets on one request's data points.
type OTelAttrs struct {
	// Provider is gen_ai.provider.name (current conventions), System gen_ai.system (older ones).
	Provider, System, Model string
	// RolloutName and Variant are the application's own rollout.name and rollout.variant attributes.
	RolloutName, Variant string
}

// Observe records one request: its duration (with error_type when it failed) and, for a successful
// call, its input and output tokens (as prompt and completion under the older conventions).
func (e *OTel) Observe(r synth.Request, a OTelAttrs) {
	errType := ""
	if r.Error {
		errType = "timeout"
	}
	labels := []string{"chat", a.Provider, a.System, a.Model, a.Model + "-2026", "api.example.com", errType, a.RolloutName, a.Variant}
	e.duration.WithLabelValues(labels...).Observe(r.LatencyMS / 1000)
	if r.Error {
		return // a failed call reports no usage
	}
	tokenType := map[bool][2]string{false: {"input", "output"}, true: {"prompt", "completion"}}[a.System != ""]
	noErr := append([]string(nil), labels...)
	e.tokens.WithLabelValues(append([]string{tokenType[0]}, noErr...)...).Observe(float64(r.InputTokens))
	e.tokens.WithLabelValues(append([]string{tokenType[1]}, noErr...)...).Observe(float64(r.OutputTokens))
}

// LiteLLM serves LiteLLM proxy's metrics with the label names its Prometheus callback uses;
// prometheus_client appends _total to counters.
type LiteLLM struct {
	total, success, failure *prometheus.CounterVec
	latency                 *prometheus.HistogramVec
	spend, input, output    *prometheus.CounterVec
}

var (
	liteLLMDeploymentLabels = []string{"requested_model", "litellm_model_name", "model_id", "api_base", "api_provider",
		"hashed_api_key", "api_key_alias", "team", "team_alias"}
	liteLLMUserLabels = []string{"end_user", "hashed_api_key", "api_key_alias", "requested_model", "team", "team_alias", "user", "model"}
)

// NewLiteLLM registers LiteLLM proxy's deployment, latency, spend and token metrics in reg.
func NewLiteLLM(reg *prometheus.Registry) *LiteLLM {
	counter := func(name string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, labels)
	}
	e := &LiteLLM{
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

// Observe records one request routed by the proxy to the deployment whose litellm_params.model is
// deployment ("anthropic/claude-x"); the model label holds it without the provider.
func (e *LiteLLM) Observe(r synth.Request, group, deployment string) {
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
