package record

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// The metric names of the contract's Prometheus table; the Prometheus source's default queries read them.
const (
	MetricRequests = "llm_requests_total"
	MetricDuration = "llm_request_duration_seconds"
	MetricCost     = "llm_request_cost_usd"
	MetricTokens   = "llm_request_tokens"
	MetricQuality  = "llm_quality_score"
	MetricFeedback = "llm_feedback_total"
)

// The label names of the contract's Prometheus table.
const (
	LabelRollout   = "rollout"
	LabelVariant   = "variant"
	LabelOutcome   = "outcome"   // ok | error | refusal
	LabelDirection = "direction" // input | output
	LabelValue     = "value"     // positive | neutral | negative
)

// Bucket layouts of the histograms. They are exported so that a quantile computed from the buckets
// (histogram_quantile) can be read knowing its resolution; changing them changes every series.
var (
	// DurationBuckets: 10 ms to 5 min in 48 steps of about 24%, fine enough to compare p95s that
	// differ by 30%.
	DurationBuckets = prometheus.ExponentialBucketsRange(0.01, 300, 48)
	// CostBuckets: $0.00001 to $10 per request, about 58% apart.
	CostBuckets = prometheus.ExponentialBucketsRange(1e-5, 10, 31)
	// TokenBuckets: 1 to 1,000,000 tokens, about 58% apart.
	TokenBuckets = prometheus.ExponentialBucketsRange(1, 1e6, 31)
	// QualityBuckets: scores in [0, 1] in steps of 0.05 (others land in the first or +Inf bucket).
	QualityBuckets = prometheus.LinearBuckets(0, 0.05, 21)
)

// Metrics is a Prometheus collector exporting the contract's request metrics. Register it once
// (registry.MustRegister(m)) and call Record for each request. It is safe for concurrent use.
// Request.Time is ignored: Prometheus stamps samples when it scrapes. Shadow requests count as canary.
// A label value that is not valid UTF-8 (an attribute taken from a request) is exported with each bad
// byte as U+FFFD, the value the JSONL recorder writes.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	cost     *prometheus.HistogramVec
	tokens   *prometheus.HistogramVec
	quality  *prometheus.HistogramVec
	feedback *prometheus.CounterVec
	// attrs are the request attributes exported as labels of every series (NewMetrics' arguments).
	attrs []string
}

var (
	_ Observer             = (*Metrics)(nil)
	_ LateObserver         = (*Metrics)(nil)
	_ prometheus.Collector = (*Metrics)(nil)
)

// NewMetrics returns the collector, not yet registered. attrs name request attributes (Request.Attrs)
// to export as labels of every series, for rollouts whose analysis.segments split by them: keep them to
// a few values each (a language, a tenant tier), as every combination is a series of its own.
func NewMetrics(attrs ...string) *Metrics {
	l := func(names ...string) []string { return append(names, attrs...) }
	arm := l(LabelRollout, LabelVariant)
	return &Metrics{attrs: attrs,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests, Help: "LLM requests by rollout, variant and outcome (ok, error or refusal).",
		}, l(LabelRollout, LabelVariant, LabelOutcome)),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricDuration, Help: "LLM request latency in seconds.", Buckets: DurationBuckets,
		}, arm),
		cost: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricCost, Help: "LLM request cost in US dollars.", Buckets: CostBuckets,
		}, arm),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricTokens, Help: "LLM request tokens by direction (input or output).", Buckets: TokenBuckets,
		}, l(LabelRollout, LabelVariant, LabelDirection)),
		quality: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricQuality, Help: "Quality score of graded LLM responses.", Buckets: QualityBuckets,
		}, arm),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFeedback, Help: "User feedback on LLM responses by value (positive, neutral or negative).",
		}, l(LabelRollout, LabelVariant, LabelValue)),
	}
}

// Describe sends the descriptors of every metric.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect sends the current value of every series.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.cost, m.tokens, m.quality, m.feedback}
}

// Init creates every series of rollout at zero, for both variants. Call it once per rollout when the
// application starts: Prometheus's increase() cannot count the requests made before the first scrape
// that saw a series, so a series born with its first request would hide that request from the judge.
func (m *Metrics) Init(rollout string) { m.InitAttrs(rollout, nil) }

// InitAttrs is Init for the requests whose attributes hold attrs (a value of each of the collector's
// attributes; one left out is exported empty): call it for each combination the application serves.
func (m *Metrics) InitAttrs(rollout string, attrs map[string]string) {
	for _, variant := range []string{"stable", "canary"} {
		for _, outcome := range []string{"ok", "error", "refusal"} {
			m.requests.WithLabelValues(m.values(attrs, rollout, variant, outcome)...)
		}
		m.duration.WithLabelValues(m.values(attrs, rollout, variant)...)
		m.cost.WithLabelValues(m.values(attrs, rollout, variant)...)
		m.tokens.WithLabelValues(m.values(attrs, rollout, variant, "input")...)
		m.tokens.WithLabelValues(m.values(attrs, rollout, variant, "output")...)
		m.quality.WithLabelValues(m.values(attrs, rollout, variant)...)
		for _, value := range []string{"positive", "neutral", "negative"} {
			m.feedback.WithLabelValues(m.values(attrs, rollout, variant, value)...)
		}
	}
}

// Record counts r and observes its measured fields; fields left nil are not observed. An invalid request
// returns ErrInvalid and changes nothing.
func (m *Metrics) Record(r Request) error {
	if err := r.Validate(true); err != nil {
		return err
	}
	m.requests.WithLabelValues(m.values(r.Attrs, r.Rollout, r.Variant, r.outcome())...).Inc()
	if r.Latency != nil {
		m.duration.WithLabelValues(m.values(r.Attrs, r.Rollout, r.Variant)...).Observe(r.Latency.Seconds())
	}
	if r.CostUSD != nil {
		m.cost.WithLabelValues(m.values(r.Attrs, r.Rollout, r.Variant)...).Observe(*r.CostUSD)
	}
	if r.InputTokens != nil {
		m.tokens.WithLabelValues(m.values(r.Attrs, r.Rollout, r.Variant, "input")...).Observe(float64(*r.InputTokens))
	}
	if r.OutputTokens != nil {
		m.tokens.WithLabelValues(m.values(r.Attrs, r.Rollout, r.Variant, "output")...).Observe(float64(*r.OutputTokens))
	}
	if r.Quality != nil {
		m.quality.WithLabelValues(m.values(r.Attrs, r.Rollout, r.Variant)...).Observe(*r.Quality)
	}
	if r.Feedback != nil {
		m.feedback.WithLabelValues(m.values(r.Attrs, r.Rollout, r.Variant, feedbackValue(*r.Feedback))...).Inc()
	}
	return nil
}

// RecordLate counts late feedback in llm_feedback_total and observes a late score in
// llm_quality_score, under the request's variant, which l must name: Prometheus cannot look the request
// up. A counter cannot take back the request's earlier value, so record feedback either with the
// request or late, not both. An invalid record returns ErrInvalid and changes nothing.
func (m *Metrics) RecordLate(l Late) error {
	if err := l.Validate(true); err != nil {
		return err
	}
	if l.Variant == "" {
		return fmt.Errorf("%w: the Prometheus collector needs the late record's variant", ErrInvalid)
	}
	if l.Quality != nil {
		m.quality.WithLabelValues(m.values(l.Attrs, l.Rollout, l.Variant)...).Observe(*l.Quality)
	}
	if l.Feedback != nil {
		m.feedback.WithLabelValues(m.values(l.Attrs, l.Rollout, l.Variant, feedbackValue(*l.Feedback))...).Inc()
	}
	return nil
}

// feedbackValue is the llm_feedback_total value label of a feedback.
func feedbackValue(f int) string {
	switch {
	case f < 0:
		return "negative"
	case f > 0:
		return "positive"
	}
	return "neutral"
}

// values are a series' label values: names, then the request's attributes. Each is made valid UTF-8
// first, as the JSONL recorder writes it (an invalid byte becomes U+FFFD): client_golang panics on a
// label value that is not, and an attribute often comes from a request header or a user's input.
func (m *Metrics) values(attrs map[string]string, names ...string) []string {
	for _, a := range m.attrs {
		names = append(names, attrs[a])
	}
	for i, v := range names {
		names[i] = validUTF8(v)
	}
	return names
}

// validUTF8 returns s with each byte that is not part of valid UTF-8 replaced by U+FFFD, as
// appendString writes it to a JSON Lines record, so that both sources see one value.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
