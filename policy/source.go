// Package policy is the judge: it turns per-arm statistics of a rollout's current stage into a decision
// (start, advance, hold, rollback, promote) with evidence a reviewer can trust.
//
// The judge is pure. It reads metrics only through Source, which this package declares and each metrics
// adapter implements, and gates only through results computed outside it. Its verdicts use always-valid
// confidence sequences, so evaluating a rollout on every tick does not inflate the error rates.
//
// In the house's four rooms (rollouts ← policy ← reconcile ← cmd) this is the policy room. It declares
// the interfaces that feed the judge, Source and GateChecker; its sub-packages implement them: source/<name>
// (one per metrics store), gate (stage gates) and evidence (the judge's report). It never imports them.
package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// Window is the stage window [From, To] whose records the judge reads.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
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
	// Maturity is the metric's maturity window (rollouts.MaturityOf): its late values are complete
	// only for requests at least this old. WithMaturity reads the metric over those requests only;
	// a source itself need not look at it.
	Maturity time.Duration
	// DefaultMaturity: Maturity is the default of a late metric, not the rule's own, and applies only
	// where the source has attached late records in the window (Stats.LateRecords): where every value
	// comes with its request there is nothing to wait for.
	DefaultMaturity bool
}

// Query asks a source for the statistics of one rollout over one window.
type Query struct {
	Rollout string
	Window  Window
	Metrics []MetricQuery
	// NotRandomised holds glob patterns (path.Match syntax, as assignment.include and exclude) of keys
	// that bypass the hash. Their requests stay out of both arms and are counted in Stats.NotRandomised.
	NotRandomised []string
	// Schema is what the source holds (rollouts.SchemaRollout when empty). Sources that find the
	// variant by model (otel-genai, litellm) read StableModel and CanaryModel.
	Schema      string
	StableModel string
	CanaryModel string
	// RequestsTo, when set (before Window.To), leaves out the requests after it while late records
	// (feedback, scores) up to Window.To still attach to the requests kept: the statistics of requests
	// old enough for their late values to be in (see WithMaturity). A source that honours it says so
	// in Stats.RequestsTo; one that cannot leaves that zero.
	RequestsTo time.Time
	// Segments names the request attributes (analysis.segments) whose values the source reports in
	// Stats.SegmentValues; see WithSegments.
	Segments []string
	// Filter keeps only the requests whose attributes hold every one of these values; a request
	// without the attribute does not match. Late records follow their request.
	Filter []Attr
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
// source cannot be reached or does not answer in time, and one wrapping ErrNoData when the store the
// application writes has not been created yet (a JSON Lines file not there yet); a metric the source
// has no data for is absent from the result (or has N == 0), never zero. No requests at all for the
// rollout is statistics with no requests, not an error.
type Source interface {
	Stats(ctx context.Context, q Query) (*Stats, error)
}

// WindowsSource is a Source that answers one query over several windows in one read of its store: a
// JSON Lines file read once for the stage's window and its recent windows, or for the ticks a report
// replays, instead of once per window.
type WindowsSource interface {
	Source
	// StatsWindows returns the statistics of q (whose own Window is ignored) over each of windows, in
	// order, as Stats would return them one by one. An error is the whole call's.
	StatsWindows(ctx context.Context, q Query, windows []Window) ([]*Stats, error)
}

// StatsWindows returns src's statistics of q over each of windows, in order: in one read when src is
// a WindowsSource, else by one Stats call per window.
func StatsWindows(ctx context.Context, src Source, q Query, windows []Window) ([]*Stats, error) {
	if ws, ok := src.(WindowsSource); ok {
		return ws.StatsWindows(ctx, q, windows)
	}
	out := make([]*Stats, len(windows))
	for i, w := range windows {
		wq := q
		wq.Window = w
		st, err := src.Stats(ctx, wq)
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// ErrSourceUnavailable marks a source error: the judge holds and never advances on it.
var ErrSourceUnavailable = errors.New("metrics source unavailable")

// ErrNoData marks a source's answer that it holds nothing yet: the store the application writes to
// does not exist yet. It is not a failure: the judge holds with the reason "no data yet", nothing is
// bookkept, and `onMetricsError: rollback` does not count it.
var ErrNoData = errors.New("no data yet")

// MalformedSummary says how many records of source st skipped as malformed, on which lines, and why:
// "2 malformed records skipped in file:t.jsonl (lines 3, 7): variant must be stable or canary", or
// "(lines 3, 7): line 3: invalid JSON; line 7: variant must be stable or canary" when the reasons differ.
func MalformedSummary(source string, st *Stats) string {
	out := fmt.Sprintf("%d malformed records skipped in %s", st.Malformed, source)
	if len(st.MalformedLines) == 0 {
		return out
	}
	lines := make([]string, len(st.MalformedLines))
	for i, n := range st.MalformedLines {
		lines[i] = strconv.FormatInt(n, 10)
	}
	out += " (lines " + strings.Join(lines, ", ") + ")"
	if len(st.MalformedReasons) != len(st.MalformedLines) {
		return out
	}
	same := true
	for _, r := range st.MalformedReasons {
		same = same && r == st.MalformedReasons[0]
	}
	if same {
		return out + ": " + st.MalformedReasons[0]
	}
	whys := make([]string, len(lines))
	for i := range lines {
		whys[i] = "line " + lines[i] + ": " + st.MalformedReasons[i]
	}
	return out + ": " + strings.Join(whys, "; ")
}

// NoDataReason is the judge's reason for a source answer wrapping ErrNoData: "no data yet: <what the
// source said>".
func NoDataReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ErrNoData.Error()+": "); i >= 0 {
		return msg[i:]
	}
	if strings.Contains(msg, ErrNoData.Error()) {
		return ErrNoData.Error()
	}
	return ErrNoData.Error() + ": " + msg
}

// Unit is what the statistics treat as one independent observation.
type Unit string

// The units of analysis.
const (
	// UnitRequest: the source counts requests only (Prometheus), so each request is treated as
	// independent. evaluate and the PR evidence say so.
	UnitRequest Unit = "request"
	// UnitKey: the source knows each request's assignment key and groups requests by key bucket (see
	// KeyBuckets), so one user's many requests count as one correlated unit.
	UnitKey Unit = "key"
)

// KeyBuckets is the number of hash buckets of the assignment key that a per-key source groups each
// arm's requests into. Every request of one key lands in one bucket, so buckets are independent units
// whatever the correlation inside a user, and variances computed over buckets stay valid (a cluster-
// robust, delta-method variance); a few thousand buckets keep memory and SQL result sizes bounded.
const KeyBuckets = 1024

// KeyBucket returns the bucket of an assignment key: 32-bit FNV-1a of the key, modulo KeyBuckets. SQL
// sources may use their engine's own hash instead; any function that puts every request of one key in
// one bucket is valid.
func KeyBucket(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % KeyBuckets)
}

// Cluster holds one metric's sums over the requests of one key bucket of one arm.
type Cluster struct {
	// Bucket is the key bucket, in [0, KeyBuckets).
	Bucket int
	// N is the number of observations (requests with a value for the metric).
	N float64
	// Sum is the sum of the values (the count of events, for a proportion).
	Sum float64
	// SumSquares is the sum of squared values (Mean samples).
	SumSquares float64
	// Bins counts the observations per bin of QuantileBin (Quantile samples only; nil otherwise).
	Bins []float64
}

// QuantileBins is the number of bins of QuantileBin.
const QuantileBins = 200

// quantileGamma is the ratio between consecutive bin edges: 10% relative resolution.
const quantileGamma = 1.1

// QuantileBin returns the bin of a value for per-cluster quantile counts: bin 0 holds values ≤ 1,
// bin i (1 ≤ i < QuantileBins-1) holds (1.1^(i-1), 1.1^i], the last bin everything above. For
// latency in milliseconds that spans 1 ms to about 19 hours at 10% resolution.
func QuantileBin(v float64) int {
	if !(v > 1) {
		return 0
	}
	i := int(math.Ceil(math.Log(v) / math.Log(quantileGamma)))
	if i < 1 {
		i = 1
	}
	if i >= QuantileBins {
		i = QuantileBins - 1
	}
	return i
}

// QuantileBinUpper returns the upper edge of bin i (+Inf for the last bin).
func QuantileBinUpper(i int) float64 {
	if i >= QuantileBins-1 {
		return math.Inf(1)
	}
	return math.Pow(quantileGamma, float64(i))
}

// Stats is what a source returns: per-arm statistics and a report of what it could not read.
type Stats struct {
	// Unit is the unit of analysis of the Clusters of every sample; UnitRequest when empty.
	Unit Unit
	// From is where both arms' window really starts: the stage's first canary record (zero when the
	// canary has none yet). Records before it are ignored in both arms.
	From time.Time
	// NotRandomised counts the requests of keys matched by Query.NotRandomised, left out of both arms.
	NotRandomised int64
	// LateUnmatched counts late feedback or score records whose request_id matched no request.
	LateUnmatched int64
	// LateRecords counts the late feedback or score records attached to a request of the window; 0
	// where the source does not count them.
	LateRecords int64
	Stable      ArmStats
	Canary      ArmStats
	// KeysExact says both arms' Keys are exact counts of distinct keys (0 included), not
	// bounded-memory estimates: the sample-ratio test then allows no slack around the expected share
	// (see srmTolerance). The file source counts exactly up to jsonl.MaxExactKeys keys per arm, PostgreSQL
	// always (count(DISTINCT)); ClickHouse estimates.
	KeysExact bool
	// Malformed counts the records that could not be read; MalformedLines holds the first few
	// line numbers (file sources) for the report, and MalformedReasons why each could not be read
	// ("variant must be stable or canary"), one per line number where the source knows it.
	Malformed        int64
	MalformedLines   []int64
	MalformedReasons []string
	// OtherRollouts names a few rollouts the source holds records of, when it holds none of the one
	// asked for: a hint at a misspelt name.
	OtherRollouts []string
	// Shadow counts mirrored canary requests (in Canary too, never in Stable).
	Shadow int64
	// RequestsTo echoes Query.RequestsTo when the source honoured it; zero otherwise.
	RequestsTo time.Time
	// Matured holds, per late metric judged over matured requests only, the window it was read over
	// (set by WithMaturity).
	Matured map[string]Matured
	// Recent holds the statistics of the stage's recent windows (see RecentStarts and WithRecent), for
	// the fail-side check that catches a regression beginning mid-stage; empty where the source was
	// asked for the whole window only.
	Recent []RecentStats
	// SegmentValues holds, per attribute the query named in Segments, the values its requests in the
	// window carry (at most MaxSegmentValues, the most frequent first).
	SegmentValues map[string][]string
	// Segments holds the statistics of each segment (one attribute value), filled by WithSegments.
	Segments []SegmentStats
}

// RecentStats is the statistics of one recent window of a stage: from From (a point of the stage's
// hourly grid, see RecentStarts) to the window's end.
type RecentStats struct {
	From  time.Time
	Stats *Stats
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
	// Keys is the number of distinct randomised assignment keys seen in the arm (an estimate with
	// bounded memory where the exact set would not fit); 0 where the source does not know keys.
	Keys    int64
	Metrics map[string]Sample
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
	// Value: a source-defined point value in Sum, with no sampling information: advisory, shown and
	// never a cause to act.
	Value
)

// Sample is the sufficient statistics of one metric in one arm.
type Sample struct {
	Kind       SampleKind
	N          int64
	Sum        float64
	SumSquares float64
	Dist       Distribution
	// Clusters holds the sums per key bucket when Stats.Unit is UnitKey (empty buckets left out); N,
	// Sum, SumSquares and Dist stay the totals over all of them.
	Clusters []Cluster
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
