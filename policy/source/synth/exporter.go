package synth

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Exporter exports requests under the contract's Prometheus names, the way the application's recorder
// does; it stands in for the recorder in the sources' tests.
type Exporter struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	feedback *prometheus.CounterVec
	duration *prometheus.HistogramVec
	cost     *prometheus.HistogramVec
	tokens   *prometheus.HistogramVec
	quality  *prometheus.HistogramVec
	// attrs are the request attributes exported as labels of every series (NewSegmentExporter).
	attrs []string
}

// NewExporter registers the contract's metrics and creates the series of rollouts at zero, so that the
// first scrape sees every counter start from 0 (increase() counts nothing before a series' first sample).
func NewExporter(rollouts ...string) *Exporter { return NewSegmentExporter(nil, rollouts...) }

// NewSegmentExporter is NewExporter with the request attributes attrs as labels of every series, as
// an application exports the attributes its rollouts' analysis.segments split by.
func NewSegmentExporter(attrs []string, rollouts ...string) *Exporter {
	l := func(names ...string) []string { return append(names, attrs...) }
	e := &Exporter{attrs: attrs,
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llm_requests_total", Help: "LLM requests by outcome."},
			l("rollout", "variant", "outcome")),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llm_feedback_total", Help: "User feedback."},
			l("rollout", "variant", "value")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llm_request_duration_seconds", Help: "Latency.",
			Buckets: prometheus.ExponentialBuckets(0.01, 1.1, 90)}, l("rollout", "variant")),
		cost: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llm_request_cost_usd", Help: "Cost.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 1.2, 40)}, l("rollout", "variant")),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llm_request_tokens", Help: "Tokens.",
			Buckets: prometheus.ExponentialBuckets(1, 1.2, 70)}, l("rollout", "variant", "direction")),
		quality: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llm_quality_score", Help: "Quality.",
			Buckets: prometheus.LinearBuckets(0.05, 0.05, 20)}, l("rollout", "variant")),
	}
	e.Registry.MustRegister(e.requests, e.feedback, e.duration, e.cost, e.tokens, e.quality)
	if len(attrs) == 0 {
		// With attributes, a series is created by its first request: its values are not known before.
		for _, rollout := range rollouts {
			e.zero(rollout)
		}
	}
	return e
}

func (e *Exporter) zero(rollout string) {
	for _, v := range []string{"stable", "canary"} {
		for _, o := range []string{"ok", "error", "refusal"} {
			e.requests.WithLabelValues(rollout, v, o)
		}
		for _, f := range []string{"positive", "neutral", "negative"} {
			e.feedback.WithLabelValues(rollout, v, f)
		}
		e.duration.WithLabelValues(rollout, v)
		e.cost.WithLabelValues(rollout, v)
		e.tokens.WithLabelValues(rollout, v, "input")
		e.tokens.WithLabelValues(rollout, v, "output")
		e.quality.WithLabelValues(rollout, v)
	}
}

// Observe records one request.
func (e *Exporter) Observe(r Request) {
	attrs := r.Attrs
	v := string(r.Variant)
	outcome := "ok"
	switch {
	case r.Error:
		outcome = "error"
	case r.Refusal:
		outcome = "refusal"
	}
	e.requests.WithLabelValues(e.values(attrs, r.Rollout, v, outcome)...).Inc()
	e.duration.WithLabelValues(e.values(attrs, r.Rollout, v)...).Observe(r.LatencyMS / 1000)
	e.cost.WithLabelValues(e.values(attrs, r.Rollout, v)...).Observe(r.CostUSD)
	e.tokens.WithLabelValues(e.values(attrs, r.Rollout, v, "input")...).Observe(float64(r.InputTokens))
	e.tokens.WithLabelValues(e.values(attrs, r.Rollout, v, "output")...).Observe(float64(r.OutputTokens))
	if r.Quality != nil {
		e.quality.WithLabelValues(e.values(attrs, r.Rollout, v)...).Observe(*r.Quality)
	}
	if r.Feedback != nil {
		value := map[int]string{-1: "negative", 0: "neutral", 1: "positive"}[*r.Feedback]
		e.feedback.WithLabelValues(e.values(attrs, r.Rollout, v, value)...).Inc()
	}
}

// values are a series' label values: names, then the request's attributes.
func (e *Exporter) values(attrs map[string]string, names ...string) []string {
	for _, a := range e.attrs {
		names = append(names, attrs[a])
	}
	return names
}

// OpenMetrics feeds reqs (sorted by time) to a gatherer's collectors through observe, gathers a
// snapshot every step from `from` to `to` (both included), and returns the snapshots as one OpenMetrics
// text with timestamps, for `promtool tsdb create-blocks-from openmetrics`: what Prometheus would have
// scraped every step.
//
// A series that first appears after from also gets a zero point at from, as if the application had
// created it at start-up: increase() takes a series' first sample as its baseline, so without that point
// the requests before the first scrape that saw the series would not count.
func OpenMetrics(g prometheus.Gatherer, observe func(Request), reqs []Request, from, to time.Time, step time.Duration) ([]byte, error) {
	type seriesPoints struct {
		labels string
		points []*dto.Metric
	}
	families := map[string]*dto.MetricFamily{}
	series := map[string]map[string]*seriesPoints{}
	next := 0
	for at := from; !at.After(to); at = at.Add(step) {
		for next < len(reqs) && !reqs[next].TS.After(at) {
			observe(reqs[next])
			next++
		}
		mfs, err := g.Gather()
		if err != nil {
			return nil, fmt.Errorf("gather: %w", err)
		}
		for _, mf := range mfs {
			name := mf.GetName()
			if families[name] == nil {
				families[name] = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type}
				series[name] = map[string]*seriesPoints{}
			}
			for _, m := range mf.Metric {
				key := labelKey(m)
				sp := series[name][key]
				if sp == nil {
					sp = &seriesPoints{labels: key}
					series[name][key] = sp
					if at.After(from) {
						sp.points = append(sp.points, zeroAt(m, from))
					}
				}
				m.TimestampMs = proto64(at.UnixMilli())
				if m.Counter != nil {
					m.Counter.CreatedTimestamp = nil
				}
				if m.Histogram != nil {
					m.Histogram.CreatedTimestamp = nil
				}
				sp.points = append(sp.points, m)
			}
		}
	}
	var out bytes.Buffer
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mf := families[n]
		keys := make([]string, 0, len(series[n]))
		for k := range series[n] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys { // a series' points together, in time order
			mf.Metric = append(mf.Metric, series[n][k].points...)
		}
		if _, err := expfmt.MetricFamilyToOpenMetrics(&out, mf); err != nil {
			return nil, fmt.Errorf("encode %s: %w", n, err)
		}
	}
	out.WriteString("# EOF\n")
	return out.Bytes(), nil
}

// zeroAt returns a copy of m with every count and sum at zero, stamped at.
func zeroAt(m *dto.Metric, at time.Time) *dto.Metric {
	z := &dto.Metric{Label: m.Label, TimestampMs: proto64(at.UnixMilli())}
	zero := 0.0
	var zeroCount uint64
	switch {
	case m.Counter != nil:
		z.Counter = &dto.Counter{Value: &zero}
	case m.Histogram != nil:
		h := &dto.Histogram{SampleCount: &zeroCount, SampleSum: &zero}
		for _, b := range m.Histogram.Bucket {
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: b.UpperBound, CumulativeCount: &zeroCount})
		}
		z.Histogram = h
	case m.Gauge != nil:
		z.Gauge = &dto.Gauge{Value: &zero}
	}
	return z
}

func labelKey(m *dto.Metric) string {
	var b bytes.Buffer
	for _, lp := range m.Label {
		b.WriteString(lp.GetName() + "=" + strconv.Quote(lp.GetValue()) + ",")
	}
	return b.String()
}

func proto64(v int64) *int64 { return &v }
