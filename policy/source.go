// Package policy is the judge: it turns per-arm statistics of a rollout's current stage into a decision
// (start, advance, hold, rollback, promote) with evidence a reviewer can trust.
//
// The judge is pure. It reads metrics only through Source, which this package declares and each metrics
// adapter implements, and gates only through results computed outside it. Its verdicts use always-valid
// confidence sequences, so evaluating a rollout on every tick does not inflate the error rates.
package policy

import (
	"context"
	"errors"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// Window is the stage window [From, To] whose records the judge reads.
type Window struct {
	From time.Time
	To   time.Time
}

// Arm is one side of the comparison.
type Arm string

// The two arms.
const (
	Stable Arm = "stable"
	Canary Arm = "canary"
)

// MetricQuery names one metric the judge needs. Query is set for a source-defined metric (a rule's
// `query`); built-in metrics leave it empty and the source uses its default.
type MetricQuery struct {
	Name  string
	Query string
}

// Query asks a source for the statistics of one rollout over one window.
type Query struct {
	Rollout string
	Window  Window
	Metrics []MetricQuery
}

// Wanted returns the metrics q asks for: q.Metrics, or every built-in metric when it names none.
func (q Query) Wanted() []MetricQuery {
	if len(q.Metrics) > 0 {
		return q.Metrics
	}
	out := make([]MetricQuery, len(rollouts.BuiltinMetricNames))
	for i, name := range rollouts.BuiltinMetricNames {
		out[i] = MetricQuery{Name: name}
	}
	return out
}

// Source reads the per-arm sufficient statistics of one rollout's requests in a window.
//
// Stats is idempotent and writes nothing. It returns an error wrapping ErrSourceUnavailable when the
// source cannot be reached or does not answer in time; a metric the source has no data for is absent
// from the result (or has N == 0), never zero.
type Source interface {
	Stats(ctx context.Context, q Query) (*Stats, error)
}

// ErrSourceUnavailable marks a source error: the judge holds and never advances on it.
var ErrSourceUnavailable = errors.New("metrics source unavailable")

// Stats is what a source returns: per-arm statistics and a report of what it could not read.
type Stats struct {
	Stable ArmStats
	Canary ArmStats
	// Malformed counts the records that could not be read; MalformedLines holds the first few
	// line numbers (file sources) for the report.
	Malformed      int64
	MalformedLines []int64
	// Shadow counts mirrored canary requests (in Canary too, never in Stable).
	Shadow int64
}

// Arm returns the statistics of one arm.
func (s *Stats) Arm(a Arm) *ArmStats {
	if a == Canary {
		return &s.Canary
	}
	return &s.Stable
}

// ArmStats holds one arm's request count and its statistics per metric name.
type ArmStats struct {
	Requests int64
	Metrics  map[string]Sample
}

// SampleKind says which sufficient statistics a Sample carries.
type SampleKind int

// The kinds of sample.
const (
	// Proportion: Sum is the count of events (errors, refusals) among N requests.
	Proportion SampleKind = iota + 1
	// Mean: Sum and SumSquares of N observations (cost, tokens, quality, latency).
	Mean
	// Quantile: Dist holds the distribution of N observations (latency percentiles).
	Quantile
	// Value: a source-defined point value in Sum, with no sampling information; judged as exact.
	Value
)

// Sample is the sufficient statistics of one metric in one arm.
type Sample struct {
	Kind       SampleKind
	N          int64
	Sum        float64
	SumSquares float64
	Dist       Distribution
}

// Distribution is a mergeable summary of observations, from a quantile sketch or a histogram.
type Distribution interface {
	// Count is the number of observations.
	Count() float64
	// Quantile returns the value at rank q in [0, 1].
	Quantile(q float64) float64
	// CountAbove returns the number of observations greater than x.
	CountAbove(x float64) float64
}
