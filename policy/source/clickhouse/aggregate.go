package clickhouse

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"context"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/histogram"
)

// quantileMetrics are the built-ins read from the latency bins.
var quantileMetrics = map[string]bool{"latency_p50_ms": true, "latency_p95_ms": true, "latency_p99_ms": true}

// meanMetrics are the built-in means, in the column order of aggregatesSQL.
var meanMetrics = []string{"latency_mean_ms", "cost_per_request", "input_tokens_per_request", "output_tokens_per_request", "quality_score"}

// The queries are flat: each aggregate reads the schema's column expressions over its FROM clause
// directly. ClickHouse 18.16 materialises every column of a subquery, which made the same query over
// a subquery of normalised rows three times slower.

// expand replaces each {column} of tmpl with the schema's expression for it, in parentheses.
func expand(tmpl string, cols map[string]string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		j := strings.IndexByte(tmpl, '}')
		if i < 0 || j < i {
			break
		}
		b.WriteString(tmpl[:i])
		expr, ok := cols[tmpl[i+1:j]]
		if !ok {
			panic("clickhouse: no column " + tmpl[i+1:j]) // a bug in this package's SQL, caught by every test
		}
		b.WriteString("(" + expr + ")")
		tmpl = tmpl[j+1:]
	}
	b.WriteString(tmpl)
	return b.String()
}

// startSQL is where both arms start: the first canary record of a randomised key in the window (0,
// ClickHouse's min of nothing, when there is none: then every record counts).
func startSQL(sch schema, sc scope) string {
	cols := sch.columns(sc, false)
	return "(SELECT " + expand("min({ts_ms})", cols) + " " + sch.from(sc, false) + " AND " + expand("{arm} = 2 AND {nr} = 0", cols) + ")"
}

// cellSQL packs randomisation, arm and key bucket into one integer (nr·4096 + arm·1024 + bucket):
// ClickHouse groups by one integer much faster than by three columns.
const cellSQL = "toUInt32({nr}) * 4096 + toUInt32({arm}) * 1024 + {bucket}"

// cellBinSQL packs a cell and a latency bin into one integer (cell·256 + bin), for the bins queries.
const cellBinSQL = "(" + cellSQL + ") * 256 + {bin}"

// keyWordSQL is word w of a cell's distinct-key bitmap: each key sets bit (hash/1024) mod 64 of word
// (hash/65536) mod keyWords.
func keyWordSQL(w int) string {
	return fmt.Sprintf("groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv({key_hash}, 1024) %% 64), {key_hash} != 0 AND intDiv({key_hash}, 65536) %% %d = %d)", keyWords, w)
}

// keyWords is the number of 64-bit words per key bucket of the distinct-key bitmap: 1024 × 8 × 64 =
// 2^19 bits per arm.
const keyWords = 8

// keyBits is the size of one arm's distinct-key bitmap.
const keyBits = policy.KeyBuckets * keyWords * 64

// An aggregate is one group of columns of aggregatesSQL, read only when a wanted metric needs it.
type aggregate struct {
	exprs  []string                         // aggregates over the normalised columns
	rollup []string                         // the same columns from llm_requests_rollup's states (rollup.sql)
	add    func(b *bucketSums, v []float64) // what the columns add to one bucket
}

// sql is the aggregate's columns, comma-separated.
func (a aggregate) sql() string { return strings.Join(a.exprs, ", ") }

// moments is count, sum and sum of squares of a nullable column.
func moments(col string, i int) aggregate {
	return aggregate{
		exprs:  []string{"count({" + col + "})", "ifNull(sum({" + col + "}), 0)", "ifNull(sum({" + col + "} * {" + col + "}), 0)"},
		rollup: []string{"sumMerge(" + col + "_n)", "sumMerge(" + col + "_sum)", "sumMerge(" + col + "_sumsq)"},
		add:    func(b *bucketSums, v []float64) { b.means[i].add(moment{n: v[0], sum: v[1], sumSq: v[2]}) },
	}
}

// aggregates per metric: what each built-in needs, in the order the query computes them.
var (
	errAggregate = aggregate{[]string{"sum({err})"}, []string{"sumMerge(errors)"},
		func(b *bucketSums, v []float64) { b.errors += v[0] }}
	refusalAggregate = aggregate{[]string{"count({refusal})", "ifNull(sum({refusal}), 0)"},
		[]string{"toFloat64(countMerge(requests))", "sumMerge(refusals)"}, // refusal is never NULL there
		func(b *bucketSums, v []float64) { b.refusals.add(moment{n: v[0], sum: v[1]}) }}
	feedbackAggregate = aggregate{[]string{"count({feedback})", "countIf(ifNull({feedback}, 0) < 0)"},
		[]string{"sumMerge(feedback_n)", "sumMerge(feedback_neg)"},
		func(b *bucketSums, v []float64) { b.feedback.add(moment{n: v[0], sum: v[1]}) }}
	metricAggregates = map[string]aggregate{
		"error_rate": errAggregate, "refusal_rate": refusalAggregate, "negative_feedback_rate": feedbackAggregate,
		"latency_mean_ms": moments("latency", 0), "latency_p50_ms": moments("latency", 0), "latency_p95_ms": moments("latency", 0),
		"latency_p99_ms": moments("latency", 0), "cost_per_request": moments("cost", 1), "input_tokens_per_request": moments("in_tok", 2),
		"output_tokens_per_request": moments("out_tok", 3), "quality_score": moments("quality", 4),
	}
)

// wantedAggregates returns the aggregates the built-in metrics of q need, each once, in a fixed order.
func wantedAggregates(q policy.Query) []aggregate {
	need := map[string]bool{}
	for _, m := range q.Metrics {
		if _, ok := metricAggregates[m.Name]; ok && m.Query == "" {
			need[metricAggregates[m.Name].sql()] = true
		}
	}
	var out []aggregate
	seen := map[string]bool{}
	for _, name := range []string{"error_rate", "refusal_rate", "negative_feedback_rate", "latency_mean_ms", "cost_per_request",
		"input_tokens_per_request", "output_tokens_per_request", "quality_score"} {
		a := metricAggregates[name]
		if need[a.sql()] && !seen[a.sql()] {
			seen[a.sql()] = true
			out = append(out, a)
		}
	}
	return out
}

// aggregatesSQL computes, per randomisation, arm and key bucket: the requests, shadow requests and the
// distinct-key bitmap, then what each wanted metric needs (wanted). Only this package's templates go
// through expand; the FROM clause, which holds the rollout's name, is added as it is.
//
// Distinct keys are counted by linear counting over a bitmap (Whang et al. 1990): each key sets one bit
// of 2^19 per arm, chosen by its hash, and the arm's count is −m·ln(unset/m). Exact counting (uniq,
// uniqExact) cost ClickHouse four times the bare GROUP BY of the benchmark on its own; the bitmap costs
// a few OR instructions per row, and its relative error is about 0.1% at 200,000 keys per arm, 0.15% at
// a million, far below the sampling noise of a sample-ratio test on as many keys.
func aggregatesSQL(sch schema, sc scope, wanted []aggregate) string {
	var b strings.Builder
	b.WriteString(`SELECT ` + cellSQL + ` AS cell, any(start), any(late_ids),
  count(), sum({shadow})`)
	for w := 0; w < keyWords; w++ {
		b.WriteString(",\n  " + keyWordSQL(w))
	}
	for _, a := range wanted {
		b.WriteString(",\n  " + a.sql())
	}
	cols := sch.columns(sc, true)
	return "WITH " + startSQL(sch, sc) + " AS start, " + sch.lateIDs(sc) + " AS late_ids\n" + expand(b.String(), cols) + "\n" +
		sch.from(sc, true) + "\n  AND " + expand("{ts_ms} >= start", cols) + "\nGROUP BY cell\n" + sch.settings + "\nFORMAT TabSeparated"
}

// lateSQL computes, per cell, how the late records change the feedback and quality sums of the
// requests they name: the count of requests matched, then the differences (new − own) of the feedback
// count, the negative feedback count, and the quality count, sum and sum of squares. It runs only when
// the aggregates found late records. start is where both arms start, in Unix milliseconds: startSQL,
// or the literal the rollup's start query found.
func lateSQL(sch schema, sc scope, start string) string {
	cols := sch.columns(sc, true)
	return "WITH " + start + " AS start\n" + expand(`SELECT `+cellSQL+` AS cell, count(),
  count({new_feedback}) - count({feedback}), countIf(ifNull({new_feedback}, 0) < 0) - countIf(ifNull({feedback}, 0) < 0),
  count({new_quality}) - count({quality}), ifNull(sum({new_quality}), 0) - ifNull(sum({quality}), 0),
  ifNull(sum({new_quality} * {new_quality}), 0) - ifNull(sum({quality} * {quality}), 0)`, cols) + "\n" +
		sch.lateFrom(sc) + "\n  AND " + expand("{ts_ms} >= start", cols) + "\nGROUP BY cell\n" + sch.settings + "\nFORMAT TabSeparated"
}

// binsSQL counts each key bucket's latencies per bin of policy.QuantileBin, grouped by one integer
// (cell·256 + bin).
func binsSQL(sch schema, sc scope) string {
	cols := sch.columns(sc, false)
	return "WITH " + startSQL(sch, sc) + " AS start\n" + expand("SELECT "+cellBinSQL+" AS cell_bin, count()", cols) + "\n" +
		sch.from(sc, false) + "\n  AND " + expand("{ts_ms} >= start AND {nr} = 0 AND isNotNull({latency})", cols) +
		"\nGROUP BY cell_bin\n" + sch.settings + "\nFORMAT TabSeparated"
}

// cell unpacks cellSQL.
func cell(v float64) (nr bool, arm, bucket int) {
	c := int64(v)
	return c/4096 != 0, int(c/1024%4) - 1, int(c % 1024)
}

// moment is the count, sum and sum of squares of one metric.
type moment struct{ n, sum, sumSq float64 }

func (m *moment) add(o moment) { m.n += o.n; m.sum += o.sum; m.sumSq += o.sumSq }

// bucketSums holds one key bucket's sums in one arm.
type bucketSums struct {
	requests, errors   float64
	refusals, feedback moment // n and events (sum)
	means              [5]moment
	bins               []float64
	binned             float64
}

// accumulator gathers the rows of both queries into per-arm, per-bucket sums.
type accumulator struct {
	q          policy.Query
	keyBitsSet [2]int  // bits set in each arm's distinct-key bitmap
	lateIDs    float64 // distinct request ids of late records in the window
	buckets    [2]map[int]*bucketSums
}

func newAccumulator(q policy.Query) *accumulator {
	return &accumulator{q: q, buckets: [2]map[int]*bucketSums{{}, {}}}
}

func armIndex(variant string) (int, bool) {
	switch variant {
	case string(policy.Stable):
		return 0, true
	case string(policy.Canary):
		return 1, true
	}
	return 0, false
}

func (a *accumulator) bucket(arm, b int) *bucketSums {
	s := a.buckets[arm][b]
	if s == nil {
		s = &bucketSums{}
		a.buckets[arm][b] = s
	}
	return s
}

func (s *Source) aggregates(ctx context.Context, sql string, wanted []aggregate, acc *accumulator, stats *policy.Stats) error {
	width := 5 + keyWords
	for _, a := range wanted {
		width += len(a.exprs)
	}
	err := s.query(ctx, sql, func(f []string) error {
		if len(f) != width {
			return fmt.Errorf("%d columns, want %d", len(f), width)
		}
		v, err := numbers(f[:5])
		if err != nil {
			return err
		}
		nr, arm, bucket := cell(v[0])
		start, late, requests, shadow := v[1], v[2], v[3], v[4]
		if start > 0 {
			stats.From = time.UnixMilli(int64(start)).UTC()
		}
		acc.lateIDs = late
		if nr {
			stats.NotRandomised += int64(requests)
			return nil
		}
		if arm < 0 || arm > 1 {
			return nil
		}
		for _, word := range f[5 : 5+keyWords] {
			if word == `\N` {
				continue // no key in this bucket (a NULL key hash under join_use_nulls)
			}
			w, err := strconv.ParseUint(word, 10, 64)
			if err != nil {
				return fmt.Errorf("key bitmap %q: %w", word, err)
			}
			acc.keyBitsSet[arm] += bits.OnesCount64(w)
		}
		stats.Arm([]policy.Arm{policy.Stable, policy.Canary}[arm]).Requests += int64(requests)
		if arm == 1 {
			stats.Shadow += int64(shadow)
		}
		b := acc.bucket(arm, bucket)
		b.requests += requests
		rest, err := numbers(f[5+keyWords:])
		if err != nil {
			return err
		}
		for _, a := range wanted {
			a.add(b, rest[:len(a.exprs)])
			rest = rest[len(a.exprs):]
		}
		return nil
	})
	if err != nil {
		return err
	}
	for arm, set := range acc.keyBitsSet {
		stats.Arm([]policy.Arm{policy.Stable, policy.Canary}[arm]).Keys = linearCount(set)
	}
	stats.LateUnmatched = int64(acc.lateIDs) // until lateRecords matches them
	return nil
}

// linearCount estimates the distinct keys that set `set` bits of the keyBits-bit bitmap.
func linearCount(set int) int64 {
	if set <= 0 {
		return 0
	}
	unset := float64(keyBits - set)
	if unset < 1 {
		unset = 1 // saturated: the estimate's upper end
	}
	return int64(math.Round(-keyBits * math.Log(unset/keyBits)))
}

// lateRecords applies the answer of lateSQL: the late records' changes to feedback and quality, and
// the count of late records that matched no request of the judged span.
func (s *Source) lateRecords(ctx context.Context, sql string, acc *accumulator, stats *policy.Stats) error {
	matched := 0.0
	err := s.query(ctx, sql, func(f []string) error {
		if len(f) != 7 {
			return fmt.Errorf("%d columns, want 7", len(f))
		}
		v, err := numbers(f)
		if err != nil {
			return err
		}
		nr, arm, bucket := cell(v[0])
		matched += v[1]
		if nr || arm < 0 || arm > 1 {
			return nil
		}
		b := acc.bucket(arm, bucket)
		b.feedback.add(moment{n: v[2], sum: v[3]})
		b.means[4].add(moment{n: v[4], sum: v[5], sumSq: v[6]}) // quality_score
		return nil
	})
	if err != nil {
		return err
	}
	stats.LateUnmatched = max(int64(acc.lateIDs-matched), 0)
	return nil
}

// latencyBins reads the answer of binsSQL (or rollupBinsSQL): each arm's and key bucket's latency counts
// per bin, keyed by arm·1024 + bucket. It touches no accumulator, so that it runs while the aggregates
// query does.
func (s *Source) latencyBins(ctx context.Context, sql string) (map[int][]float64, error) {
	bins := map[int][]float64{}
	// Tens of thousands of lines of two unsigned integers: parsed in place.
	err := s.queryLines(ctx, sql, func(line []byte) error {
		tab := bytes.IndexByte(line, '\t')
		if tab < 0 || bytes.IndexByte(line[tab+1:], '\t') >= 0 {
			return fmt.Errorf("latency bins: line %q, want two columns", line)
		}
		cellBin, err1 := strconv.ParseUint(string(line[:tab]), 10, 64)
		n, err2 := strconv.ParseUint(string(line[tab+1:]), 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("latency bins: %w", err)
		}
		nr, arm, bucket := cell(float64(cellBin / 256))
		bin := int(cellBin % 256)
		if nr || arm < 0 || arm > 1 || bin >= policy.QuantileBins {
			return nil
		}
		k := arm*policy.KeyBuckets + bucket
		if bins[k] == nil {
			bins[k] = make([]float64, policy.QuantileBins)
		}
		bins[k][bin] += float64(n)
		return nil
	})
	return bins, err
}

// addBins adds what latencyBins read to the buckets.
func (a *accumulator) addBins(bins map[int][]float64) {
	for k, counts := range bins {
		b := a.bucket(k/policy.KeyBuckets, k%policy.KeyBuckets)
		if b.bins == nil {
			b.bins = make([]float64, policy.QuantileBins)
		}
		for i, n := range counts {
			b.bins[i] += n
			b.binned += n
		}
	}
}

// fill turns the per-bucket sums into the samples q asks for: totals and clusters.
func (a *accumulator) fill(stats *policy.Stats) error {
	for arm, byBucket := range a.buckets {
		as := stats.Arm([]policy.Arm{policy.Stable, policy.Canary}[arm])
		order := make([]int, 0, len(byBucket))
		for b := 0; b < policy.KeyBuckets; b++ {
			if byBucket[b] != nil {
				order = append(order, b)
			}
		}
		for _, m := range a.q.Metrics {
			if m.Query != "" {
				continue
			}
			sample, ok, err := a.sample(m.Name, byBucket, order)
			if err != nil {
				return err
			}
			if ok {
				as.Metrics[m.Name] = sample
			}
		}
	}
	return nil
}

func (a *accumulator) sample(name string, byBucket map[int]*bucketSums, order []int) (policy.Sample, bool, error) {
	var total moment
	var clusters []policy.Cluster
	add := func(b int, m moment, bins []float64) {
		if m.n <= 0 {
			return
		}
		total.add(m)
		clusters = append(clusters, policy.Cluster{Bucket: b, N: m.n, Sum: m.sum, SumSquares: m.sumSq, Bins: bins})
	}
	kind := policy.Mean
	switch {
	case name == "error_rate" || name == "refusal_rate" || name == "negative_feedback_rate":
		kind = policy.Proportion
		for _, b := range order {
			s := byBucket[b]
			m := map[string]moment{"error_rate": {n: s.requests, sum: s.errors}, "refusal_rate": s.refusals,
				"negative_feedback_rate": s.feedback}[name]
			m.sumSq = 0
			add(b, m, nil)
		}
	case quantileMetrics[name]:
		kind = policy.Quantile
		for _, b := range order {
			s := byBucket[b]
			if s.binned <= 0 {
				continue
			}
			m := s.means[0]
			m.n = s.binned
			add(b, m, s.bins)
		}
	default:
		i := indexOf(meanMetrics, name)
		if i < 0 {
			return policy.Sample{}, false, nil // not a built-in this source computes
		}
		for _, b := range order {
			add(b, byBucket[b].means[i], nil)
		}
	}
	if total.n <= 0 {
		return policy.Sample{}, false, nil
	}
	sample := policy.Sample{Kind: kind, N: int64(math.Round(total.n)), Sum: total.sum, Clusters: clusters}
	if kind == policy.Mean || kind == policy.Quantile {
		sample.SumSquares = total.sumSq
	}
	if kind == policy.Quantile {
		h, err := binsHistogram(clusters)
		if err != nil {
			return policy.Sample{}, false, err
		}
		sample.Dist = h
	}
	return sample, true, nil
}

// binsHistogram sums the clusters' bins into a histogram whose bucket i ends at QuantileBinUpper(i).
func binsHistogram(clusters []policy.Cluster) (*histogram.Histogram, error) {
	counts := make([]float64, policy.QuantileBins)
	for _, c := range clusters {
		for i, n := range c.Bins {
			counts[i] += n
		}
	}
	buckets := make([]histogram.Bucket, policy.QuantileBins)
	cum := 0.0
	for i, n := range counts {
		cum += n
		buckets[i] = histogram.Bucket{UpperBound: policy.QuantileBinUpper(i), Count: cum}
	}
	h, err := histogram.New(buckets, 1)
	if err != nil {
		return nil, fmt.Errorf("latency bins: %w", err)
	}
	return h, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// numbers parses TabSeparated numbers; \N (NULL), nan and inf read as 0, ClickHouse's answers for
// sums over nothing.
func numbers(fields []string) ([]float64, error) {
	out := make([]float64, len(fields))
	for i, f := range fields {
		if f == `\N` || f == "nan" || f == "-nan" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("column %d: %q is not a number", i+2, f)
		}
		if math.IsInf(v, 0) {
			return nil, fmt.Errorf("column %d: %q is not finite", i+2, f)
		}
		out[i] = v
	}
	return out, nil
}
