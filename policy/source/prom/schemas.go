package prom

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/histogram"
	"github.com/rollout-dev/rollout/rollouts"
)

// The other schemas a Prometheus source may hold (metrics.schema), for applications already
// instrumented without the rollout recorder.
//
// otel-genai: the OpenTelemetry GenAI semantic conventions as the OpenTelemetry Collector's Prometheus
// exporters write them: gen_ai_client_operation_duration_seconds (a histogram; a failed call carries
// error_type) and gen_ai_client_token_usage (a histogram, gen_ai_token_type = input | output; the older
// prompt | completion are read too). A series belongs to an arm by its rollout_variant label (the
// attribute rollout.variant) where it has one, else by gen_ai_request_model matched against the spec's
// stable and canary models, with or without a provider prefix ("openai/gpt-4o" matches gpt-4o; a
// prefix must then agree with gen_ai_provider_name or, in older conventions, gen_ai_system, where the
// series has one). rollout_name (rollout.name) scopes a series to one rollout where present. The
// conventions hold no cost, refusal, feedback or quality: those metrics have no data, never zero.
//
// litellm: LiteLLM proxy's Prometheus metrics: litellm_deployment_total_requests_total and
// litellm_deployment_failure_responses_total (or _success_ + _failure_ where total is missing) by
// litellm_model_name, the litellm_request_total_latency_metric histogram (seconds), and the counters
// litellm_spend_metric_total, litellm_input_tokens_metric_total and litellm_output_tokens_metric_total
// by model, each matched against the spec's models with or without the provider prefix. Spend and
// tokens are plain counters: their per-request means come without any spread, so cost_per_request and
// the token metrics are reported as advisory values (shown, never a cause to act).

// schemaPart is one tagged sub-query of a schema's query.
type schemaPart struct {
	tag  string // the partLabel value
	expr string // PromQL with %[1]s = range, %[2]s = evaluation time
}

// A schema reads a Query's statistics from one PromQL query.
type schema struct {
	parts func(q policy.Query) []schemaPart
	// arm places one returned series in an arm; ok is false for a series of neither.
	arm     func(q policy.Query, m model.Metric) (policy.Arm, bool)
	metrics map[string]func(r schemaSeries, arm policy.Arm) (policy.Sample, bool)
	// requests counts an arm's requests.
	requests func(r schemaSeries, arm policy.Arm) int64
	// requestPart tags the part that counts every request, by what tells the arms apart: the one
	// firstCanaryQuery reads.
	requestPart string
}

// schemaSeries is what a schema's query returned, summed per part, arm and label.
type schemaSeries struct {
	counts  map[schemaKey]float64
	buckets map[schemaKey][]histogram.Bucket
	sums    map[schemaKey]float64
}

type schemaKey struct {
	part  string
	arm   policy.Arm
	label string // outcome or token direction; "" where the part has none
}

var schemas = map[string]schema{
	rollouts.SchemaOTelGenAI: otelSchema,
	rollouts.SchemaLiteLLM:   liteLLMSchema,
}

// SchemaMetrics returns the built-in metrics a schema can hold; the others have no data. It is nil for
// the rollout schema, which holds them all.
func SchemaMetrics(name string) []string {
	sc, ok := schemas[name]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(sc.metrics))
	for m := range sc.metrics {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// modelRegex matches a model label holding either model, with or without a provider prefix.
func modelRegex(q policy.Query) string {
	var alts []string
	for _, m := range []string{q.StableModel, q.CanaryModel} {
		if m != "" {
			alts = append(alts, regexp.QuoteMeta(bareModel(m)))
		}
	}
	if len(alts) == 0 {
		return "$^" // no model: nothing matches
	}
	return `(?:.*/)?(?:` + strings.Join(alts, "|") + `)`
}

// bareModel drops a provider prefix: "anthropic/claude-x" → "claude-x".
func bareModel(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[i+1:]
	}
	return m
}

// provider returns the provider prefix of a model, or "".
func provider(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[:i]
	}
	return ""
}

// armByModel matches a series' model (and provider, where known) against the spec's models. A series
// that matches both, as when stable and canary share a model, belongs to neither: only a variant
// label can tell those apart.
func armByModel(q policy.Query, model, seriesProvider string) (policy.Arm, bool) {
	if model == "" {
		return "", false
	}
	matches := func(spec string) bool {
		if spec == "" || bareModel(spec) != bareModel(model) {
			return false
		}
		// Where both name a provider, they must agree.
		want, got := provider(spec), provider(model)
		if got == "" {
			got = seriesProvider
		}
		return want == "" || got == "" || strings.EqualFold(want, got)
	}
	stable, canary := matches(q.StableModel), matches(q.CanaryModel)
	switch {
	case stable && !canary:
		return policy.Stable, true
	case canary && !stable:
		return policy.Canary, true
	}
	return "", false
}

// otelScopes are the two selectors of every otel-genai part: series the application labelled with
// its variant, and unlabelled series of the spec's models. rollout_name="" matches a series without it.
func otelScopes(q policy.Query) []string {
	name := `rollout_name=~"|` + regexp.QuoteMeta(q.Rollout) + `"` + filterMatchers(q.Filter)
	return []string{
		`rollout_variant=~"stable|canary",` + name,
		`rollout_variant="",` + name + `,gen_ai_request_model=~` + strconv.Quote(modelRegex(q)),
	}
}

const otelBy = "rollout_variant, gen_ai_request_model, gen_ai_provider_name, gen_ai_system"

var otelSchema = schema{
	parts: func(q policy.Query) []schemaPart {
		var out []schemaPart
		for _, sel := range otelScopes(q) {
			out = append(out,
				schemaPart{"otel_requests", `sum by (` + otelBy + `, error_type) (increase(gen_ai_client_operation_duration_seconds_count{` + sel + `}[%[1]s] @ %[2]s))`},
				schemaPart{"otel_duration", `sum by (` + otelBy + `, le) (increase(gen_ai_client_operation_duration_seconds_bucket{` + sel + `}[%[1]s] @ %[2]s))`},
				schemaPart{"otel_duration", `sum by (` + otelBy + `) (increase(gen_ai_client_operation_duration_seconds_sum{` + sel + `}[%[1]s] @ %[2]s))`},
				schemaPart{"otel_tokens", `sum by (` + otelBy + `, gen_ai_token_type, le) (increase(gen_ai_client_token_usage_bucket{` + sel + `}[%[1]s] @ %[2]s))`},
				schemaPart{"otel_tokens", `sum by (` + otelBy + `, gen_ai_token_type) (increase(gen_ai_client_token_usage_sum{` + sel + `}[%[1]s] @ %[2]s))`},
			)
		}
		return out
	},
	arm: func(q policy.Query, m model.Metric) (policy.Arm, bool) {
		switch v := string(m["rollout_variant"]); v {
		case string(policy.Stable), string(policy.Canary):
			return policy.Arm(v), true
		}
		p := string(m["gen_ai_provider_name"])
		if p == "" {
			p = string(m["gen_ai_system"])
		}
		return armByModel(q, string(m["gen_ai_request_model"]), p)
	},
	metrics: map[string]func(schemaSeries, policy.Arm) (policy.Sample, bool){
		"error_rate":                schemaProportion("otel_requests", "error"),
		"latency_mean_ms":           schemaMean("otel_duration", "", 1000),
		"latency_p50_ms":            schemaQuantile("otel_duration", 1000),
		"latency_p95_ms":            schemaQuantile("otel_duration", 1000),
		"latency_p99_ms":            schemaQuantile("otel_duration", 1000),
		"input_tokens_per_request":  schemaMean("otel_tokens", "input", 1),
		"output_tokens_per_request": schemaMean("otel_tokens", "output", 1),
	},
	requests:    func(r schemaSeries, arm policy.Arm) int64 { return r.total("otel_requests", arm) },
	requestPart: "otel_requests",
}

var liteLLMSchema = schema{
	parts: func(q policy.Query) []schemaPart {
		re := strconv.Quote(modelRegex(q))
		deployment := `{litellm_model_name=~` + re + filterMatchers(q.Filter) + `}`
		byModel := `{model=~` + re + filterMatchers(q.Filter) + `}`
		return []schemaPart{
			{"litellm_total", `sum by (litellm_model_name, api_provider) (increase(litellm_deployment_total_requests_total` + deployment + `[%[1]s] @ %[2]s))`},
			{"litellm_success", `sum by (litellm_model_name, api_provider) (increase(litellm_deployment_success_responses_total` + deployment + `[%[1]s] @ %[2]s))`},
			{"litellm_failure", `sum by (litellm_model_name, api_provider) (increase(litellm_deployment_failure_responses_total` + deployment + `[%[1]s] @ %[2]s))`},
			{"litellm_latency", `sum by (model, le) (increase(litellm_request_total_latency_metric_bucket` + byModel + `[%[1]s] @ %[2]s))`},
			{"litellm_latency", `sum by (model) (increase(litellm_request_total_latency_metric_sum` + byModel + `[%[1]s] @ %[2]s))`},
			{"litellm_spend", `sum by (model) (increase(litellm_spend_metric_total` + byModel + `[%[1]s] @ %[2]s))`},
			{"litellm_input_tokens", `sum by (model) (increase(litellm_input_tokens_metric_total` + byModel + `[%[1]s] @ %[2]s))`},
			{"litellm_output_tokens", `sum by (model) (increase(litellm_output_tokens_metric_total` + byModel + `[%[1]s] @ %[2]s))`},
		}
	},
	arm: func(q policy.Query, m model.Metric) (policy.Arm, bool) {
		name := string(m["litellm_model_name"])
		if name == "" {
			name = string(m["model"])
		}
		return armByModel(q, name, string(m["api_provider"]))
	},
	metrics: map[string]func(schemaSeries, policy.Arm) (policy.Sample, bool){
		"error_rate":                liteLLMErrorRate,
		"latency_mean_ms":           schemaMean("litellm_latency", "", 1000),
		"latency_p50_ms":            schemaQuantile("litellm_latency", 1000),
		"latency_p95_ms":            schemaQuantile("litellm_latency", 1000),
		"latency_p99_ms":            schemaQuantile("litellm_latency", 1000),
		"cost_per_request":          liteLLMPerRequest("litellm_spend"),
		"input_tokens_per_request":  liteLLMPerRequest("litellm_input_tokens"),
		"output_tokens_per_request": liteLLMPerRequest("litellm_output_tokens"),
	},
	requests:    liteLLMRequests,
	requestPart: "litellm_total",
}

// query joins a schema's parts into one PromQL query.
func (sc schema) query(q policy.Query, w window) string {
	parts := sc.parts(q)
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf(`label_replace(`+p.expr+`, "%[3]s", "%[4]s", "", "")`, w.rng, w.atTime, partLabel, p.tag)
	}
	return strings.Join(out, " or ")
}

// firstCanaryQuery is the firstIncrease of this schema's request part, one sample per series. Which
// series are the canary's is known only from their labels, after the query (takeFirstCanary with
// sc.arm).
func (sc schema) firstCanaryQuery(q policy.Query, w window) string {
	var out []string
	for _, p := range sc.parts(q) {
		if p.tag == sc.requestPart {
			out = append(out, firstIncrease(func(rng string) string { return strings.Replace(p.expr, "[%[1]s] @ %[2]s", "["+rng+"]", 1) }, w))
		}
	}
	return strings.Join(out, " or ")
}

// read indexes a schema query's result by part, arm and label.
func (sc schema) read(q policy.Query, vec model.Vector) schemaSeries {
	r := schemaSeries{counts: map[schemaKey]float64{}, buckets: map[schemaKey][]histogram.Bucket{}, sums: map[schemaKey]float64{}}
	for _, smp := range vec {
		v := float64(smp.Value)
		if math.IsNaN(v) {
			continue
		}
		arm, ok := sc.arm(q, smp.Metric)
		if !ok {
			continue
		}
		part := string(smp.Metric[partLabel])
		label := ""
		switch part {
		case "otel_requests":
			label = "ok"
			if smp.Metric["error_type"] != "" {
				label = "error"
			}
		case "otel_tokens":
			label = tokenDirection(string(smp.Metric["gen_ai_token_type"]))
			if label == "" {
				continue
			}
		}
		k := schemaKey{part, arm, label}
		le, hasLe := smp.Metric["le"]
		switch {
		case hasLe:
			bound, err := strconv.ParseFloat(string(le), 64)
			if err != nil {
				continue
			}
			r.buckets[k] = append(r.buckets[k], histogram.Bucket{UpperBound: bound, Count: v})
		case part == "otel_duration" || part == "otel_tokens" || part == "litellm_latency":
			r.sums[k] += v
		default:
			r.counts[k] += v
		}
	}
	for k, bs := range r.buckets {
		r.buckets[k] = mergeBuckets(bs)
	}
	return r
}

// mergeBuckets adds up buckets of the same bound (several models or providers in one arm).
func mergeBuckets(bs []histogram.Bucket) []histogram.Bucket {
	sort.Slice(bs, func(i, j int) bool { return bs[i].UpperBound < bs[j].UpperBound })
	out := bs[:0]
	for _, b := range bs {
		if n := len(out); n > 0 && out[n-1].UpperBound == b.UpperBound {
			out[n-1].Count += b.Count
			continue
		}
		out = append(out, b)
	}
	return out
}

// tokenDirection maps gen_ai_token_type, current (input, output) or older (prompt, completion).
func tokenDirection(t string) string {
	switch t {
	case "input", "prompt":
		return "input"
	case "output", "completion":
		return "output"
	}
	return ""
}

func (r schemaSeries) total(part string, arm policy.Arm) int64 {
	var n float64
	for k, v := range r.counts {
		if k.part == part && k.arm == arm {
			n += v
		}
	}
	return int64(math.Round(n))
}

func schemaProportion(part, event string) func(schemaSeries, policy.Arm) (policy.Sample, bool) {
	return func(r schemaSeries, arm policy.Arm) (policy.Sample, bool) {
		n := r.total(part, arm)
		if n == 0 {
			return policy.Sample{}, false
		}
		return policy.Sample{Kind: policy.Proportion, N: n, Sum: math.Round(r.counts[schemaKey{part, arm, event}])}, true
	}
}

func (r schemaSeries) hist(part string, arm policy.Arm, label string, scale float64) (*histogram.Histogram, float64, bool) {
	k := schemaKey{part, arm, label}
	h, err := histogram.New(r.buckets[k], scale)
	if err != nil || math.Round(h.Count()) == 0 {
		return nil, 0, false
	}
	return h, r.sums[k] * scale, true
}

// schemaMean is mean over a schema's histogram: N and Sum exact, SumSquares from the buckets.
func schemaMean(part, label string, scale float64) func(schemaSeries, policy.Arm) (policy.Sample, bool) {
	return func(r schemaSeries, arm policy.Arm) (policy.Sample, bool) {
		h, sum, ok := r.hist(part, arm, label, scale)
		if !ok {
			return policy.Sample{}, false
		}
		return meanSample(h, sum), true
	}
}

func schemaQuantile(part string, scale float64) func(schemaSeries, policy.Arm) (policy.Sample, bool) {
	return func(r schemaSeries, arm policy.Arm) (policy.Sample, bool) {
		h, sum, ok := r.hist(part, arm, "", scale)
		if !ok {
			return policy.Sample{}, false
		}
		return quantileSample(h, sum), true
	}
}

// liteLLMRequests is the deployment total, or success plus failure where the proxy exports no total.
func liteLLMRequests(r schemaSeries, arm policy.Arm) int64 {
	if n := r.total("litellm_total", arm); n > 0 {
		return n
	}
	return r.total("litellm_success", arm) + r.total("litellm_failure", arm)
}

func liteLLMErrorRate(r schemaSeries, arm policy.Arm) (policy.Sample, bool) {
	n := liteLLMRequests(r, arm)
	if n == 0 {
		return policy.Sample{}, false
	}
	failed := min(r.total("litellm_failure", arm), n)
	return policy.Sample{Kind: policy.Proportion, N: n, Sum: float64(failed)}, true
}

// liteLLMPerRequest divides a counter by the arm's requests: a mean without a spread, so advisory.
func liteLLMPerRequest(part string) func(schemaSeries, policy.Arm) (policy.Sample, bool) {
	return func(r schemaSeries, arm policy.Arm) (policy.Sample, bool) {
		n := liteLLMRequests(r, arm)
		var total float64
		found := false
		for k, v := range r.counts {
			if k.part == part && k.arm == arm {
				total += v
				found = true
			}
		}
		if n == 0 || !found {
			return policy.Sample{}, false
		}
		return policy.Sample{Kind: policy.Value, N: n, Sum: total / float64(n)}, true
	}
}
