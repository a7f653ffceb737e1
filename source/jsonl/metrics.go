package jsonl

import "github.com/rollout-dev/rollout/policy"

// The built-in metrics of the contract, as this source computes them from records.
const (
	ErrorRate              = "error_rate"               // Proportion of records with error: true, over records carrying error
	RefusalRate            = "refusal_rate"             // Proportion of records with refusal: true, over records carrying refusal
	NegativeFeedbackRate   = "negative_feedback_rate"   // Proportion of feedback < 0, over records carrying feedback
	LatencyMeanMs          = "latency_mean_ms"          // Mean of latency_ms
	LatencyP50Ms           = "latency_p50_ms"           // Quantile of latency_ms
	LatencyP95Ms           = "latency_p95_ms"           // Quantile of latency_ms
	LatencyP99Ms           = "latency_p99_ms"           // Quantile of latency_ms
	CostPerRequest         = "cost_per_request"         // Mean of cost_usd
	InputTokensPerRequest  = "input_tokens_per_request" // Mean of input_tokens
	OutputTokensPerRequest = "output_tokens_per_request"
	QualityScore           = "quality_score" // Mean of quality
)

// moments accumulates the sufficient statistics of a mean or a proportion.
type moments struct {
	n               int64
	sum, sumSquares float64
}

func (m *moments) add(v float64) {
	m.n++
	m.sum += v
	m.sumSquares += v * v
}

func (m *moments) sample(kind policy.SampleKind) policy.Sample {
	return policy.Sample{Kind: kind, N: m.n, Sum: m.sum, SumSquares: m.sumSquares}
}

// arm accumulates one arm's records.
type arm struct {
	requests                      int64
	errors, refusals, negFeedback moments
	latency, cost, input, output  moments
	quality                       moments
	latencySketch                 *Sketch
}

func (a *arm) add(r *request) {
	a.requests++
	if r.has&hasError != 0 {
		a.errors.add(b2f(r.isError))
	}
	if r.has&hasRefusal != 0 {
		a.refusals.add(b2f(r.refusal))
	}
	if r.has&hasFeedback != 0 {
		a.negFeedback.add(b2f(r.feedback < 0))
	}
	if r.has&hasLatency != 0 {
		a.latency.add(r.latencyMs)
		if a.latencySketch == nil {
			a.latencySketch = NewSketch()
		}
		// Latencies are finite and non-negative here, the only values the sketch could reject.
		_ = a.latencySketch.Add(r.latencyMs)
	}
	if r.has&hasCost != 0 {
		a.cost.add(r.costUSD)
	}
	if r.has&hasInputTokens != 0 {
		a.input.add(r.inputTokens)
	}
	if r.has&hasOutputTokens != 0 {
		a.output.add(r.outputTokens)
	}
	if r.has&hasQuality != 0 {
		a.quality.add(r.quality)
	}
}

// stats returns the arm's statistics for the metrics asked.
func (a *arm) stats(metrics []policy.MetricQuery) policy.ArmStats {
	out := policy.ArmStats{Requests: a.requests, Metrics: map[string]policy.Sample{}}
	for _, m := range metrics {
		if s, ok := a.sample(m.Name); ok {
			out.Metrics[m.Name] = s
		}
	}
	return out
}

// sample returns one metric's sample, and false for a name the source does not compute.
func (a *arm) sample(name string) (policy.Sample, bool) {
	switch name {
	case ErrorRate:
		return a.errors.sample(policy.Proportion), true
	case RefusalRate:
		return a.refusals.sample(policy.Proportion), true
	case NegativeFeedbackRate:
		return a.negFeedback.sample(policy.Proportion), true
	case LatencyMeanMs:
		return a.latency.sample(policy.Mean), true
	case LatencyP50Ms, LatencyP95Ms, LatencyP99Ms:
		s := a.latency.sample(policy.Quantile)
		if a.latencySketch != nil {
			s.Dist = a.latencySketch
		}
		return s, true
	case CostPerRequest:
		return a.cost.sample(policy.Mean), true
	case InputTokensPerRequest:
		return a.input.sample(policy.Mean), true
	case OutputTokensPerRequest:
		return a.output.sample(policy.Mean), true
	case QualityScore:
		return a.quality.sample(policy.Mean), true
	}
	return policy.Sample{}, false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
