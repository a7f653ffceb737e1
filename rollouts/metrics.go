package rollouts

import "sort"

// MetricKind says what kind of statistic a metric is, which decides how it is estimated and compared.
type MetricKind string

// The kinds of built-in metrics.
const (
	// Proportion is a share of requests, in 0..1 (error_rate): counts and successes per arm.
	Proportion MetricKind = "proportion"
	// Mean is an average per request (cost_per_request): count, sum and sum of squares per arm.
	Mean MetricKind = "mean"
	// Quantile is a percentile of a distribution (latency_p95_ms), with its Q.
	Quantile MetricKind = "quantile"
)

// Direction says which way a metric gets worse.
type Direction int

// The directions of a metric.
const (
	// LowerIsBetter metrics get worse as they rise (error rate, latency, cost): maxIncrease and max
	// limit them, and maxDecrease or min make no sense.
	LowerIsBetter Direction = iota
	// HigherIsBetter metrics get worse as they fall (quality): maxDecrease and min limit them.
	HigherIsBetter
	// EitherWay metrics have no better side (token counts): every limit is allowed.
	EitherWay
)

// Metric describes one built-in metric.
type Metric struct {
	Kind MetricKind
	// Q is the quantile, in 0..1, of a Quantile metric; 0 otherwise.
	Q float64
	// Better says which way the metric improves.
	Better Direction
	// Field is the request-record field the metric is computed from (see CONTRACT.md).
	Field string
	// Late: the metric's values may arrive after the request (late feedback or score records), so
	// it is judged over requests older than its maturity window (Rule.Maturity, MaturityOf).
	Late bool
	// CanaryOnly: the metric has no stable value to compare with, so only max and min limit it.
	CanaryOnly bool
}

// BuiltinMetricNames lists the built-in metrics in the contract's order. A source asked for no metric in
// particular computes all of them.
var BuiltinMetricNames = []string{
	"error_rate", "refusal_rate", "negative_feedback_rate",
	"latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
	"cost_per_request", "input_tokens_per_request", "output_tokens_per_request", "quality_score",
}

// BuiltinMetrics holds the metrics every source knows, by name. A rule with a query may name any
// other metric; a rule without one must name one of these.
var BuiltinMetrics = map[string]Metric{
	"error_rate":                {Kind: Proportion, Better: LowerIsBetter, Field: "error"},
	"refusal_rate":              {Kind: Proportion, Better: LowerIsBetter, Field: "refusal"},
	"negative_feedback_rate":    {Kind: Proportion, Better: LowerIsBetter, Field: "feedback", Late: true},
	"latency_mean_ms":           {Kind: Mean, Better: LowerIsBetter, Field: "latency_ms"},
	"latency_p50_ms":            {Kind: Quantile, Q: 0.50, Better: LowerIsBetter, Field: "latency_ms"},
	"latency_p95_ms":            {Kind: Quantile, Q: 0.95, Better: LowerIsBetter, Field: "latency_ms"},
	"latency_p99_ms":            {Kind: Quantile, Q: 0.99, Better: LowerIsBetter, Field: "latency_ms"},
	"cost_per_request":          {Kind: Mean, Better: LowerIsBetter, Field: "cost_usd"},
	"input_tokens_per_request":  {Kind: Mean, Better: EitherWay, Field: "input_tokens"},
	"output_tokens_per_request": {Kind: Mean, Better: EitherWay, Field: "output_tokens"},
	"quality_score":             {Kind: Mean, Better: HigherIsBetter, Field: "quality", Late: true},
	// canary_win_rate is the canary's share of pairwise verdicts (late records' "preferred"), a tie
	// counting half; it has no stable side, so it is judged with min.
	"canary_win_rate": {Kind: Proportion, Better: HigherIsBetter, Field: "preferred", CanaryOnly: true},
	// projected_extra_cost_per_day is the extra spend per day, in USD, at the next stage's weight:
	// the canary's cost per request minus stable's, times the rollout's measured requests per day,
	// times the next stage's weight; the judge derives it from cost_per_request. Judged with max.
	"projected_extra_cost_per_day": {Kind: Mean, Better: LowerIsBetter, Field: "cost_usd", CanaryOnly: true},
	// cost_per_day is another name of projected_extra_cost_per_day, as issue 25 first wrote it.
	"cost_per_day": {Kind: Mean, Better: LowerIsBetter, Field: "cost_usd", CanaryOnly: true},
}

// ExtraMetrics lists the built-in metrics beyond BuiltinMetricNames: judged when a rule names them,
// never asked of a source that is asked for every metric.
var ExtraMetrics = []string{"canary_win_rate", "projected_extra_cost_per_day", "cost_per_day"}

// MetricAliases maps the other names of built-in metrics to theirs.
var MetricAliases = map[string]string{"cost_per_day": "projected_extra_cost_per_day"}

// builtinMetricNames lists BuiltinMetrics in sorted order, for suggestions.
func builtinMetricNames() []string {
	names := make([]string, 0, len(BuiltinMetrics))
	for k := range BuiltinMetrics {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
