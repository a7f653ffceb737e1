package jsonl

import (
	"cmp"
	"sync"

	"github.com/axiomhq/hyperloglog"

	"github.com/rollout-dev/rollout/policy"
)

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
	// CanaryWinRate is the canary's share of pairwise verdicts ("preferred"), a tie counting half,
	// kept in the canary arm at the key bucket of the request the verdict names.
	CanaryWinRate = "canary_win_rate"
)

// The moments an arm keeps per key bucket, one per measured field.
const (
	mError = iota
	mRefusal
	mNegFeedback
	mLatency
	mCost
	mInput
	mOutput
	mQuality
	mWin
	nMoments
)

// moments accumulates the sufficient statistics of a mean or a proportion.
type moments struct {
	n, sum, sumSquares float64
}

func (m *moments) add(v float64) {
	m.n++
	m.sum += v
	m.sumSquares += v * v
}

// replace swaps one observation old for v, keeping n.
func (m *moments) replace(old, v float64) {
	m.sum += v - old
	m.sumSquares += v*v - old*old
}

// arm accumulates one arm's records, per key bucket: every request of one key lands in one bucket, so
// the judge can treat buckets as independent units however correlated one user's requests are. Memory
// is fixed (KeyBuckets × the moments, plus latency bins for the buckets that have latencies) whatever
// the number of records or keys.
type arm struct {
	requests int64
	buckets  [policy.KeyBuckets][nMoments]moments
	// touched lists the buckets with at least one request, in first-seen order; seen marks them.
	touched []uint16
	seen    [policy.KeyBuckets]bool
	// bins[b] counts bucket b's latencies per policy.QuantileBin; nil until the bucket has one.
	bins          [policy.KeyBuckets]*[policy.QuantileBins]uint32
	latencySketch *Sketch
	units         unitCounter
	keyed         bool // some request carried a key
}

// MaxExactKeys is how many distinct keys per arm a Stats call counts exactly (by a set of 64-bit
// hashes, about 2.5 MiB at the bound); beyond it the count is a HyperLogLog estimate.
const MaxExactKeys = 1 << 17

// unitCounter counts the distinct units (keys; a keyless request counts one) of an arm: exactly up to
// MaxExactKeys, which covers the rollouts the sample-ratio check is most often run on, then with a
// HyperLogLog (github.com/axiomhq/hyperloglog, precision 16: about 0.4% standard error in 64 KiB), so
// memory stays bounded however many users there are. The exact set holds 64-bit hashes of the keys,
// whose collisions (about n²/2^65) are negligible, in an open-addressing table (linear probing, at
// most half full): one probe per request in the common case, where a Go map costs several times more.
type unitCounter struct {
	slots  []uint64 // hashes with the low bit set; 0 is empty
	n      int
	sketch *hyperloglog.Sketch
	limit  int // MaxExactKeys when zero
}

// add counts the unit whose hash64 is h.
func (u *unitCounter) add(h uint64) {
	if u.sketch != nil {
		u.sketch.InsertHash(h)
		return
	}
	if u.insert(h | 1) {
		if u.n > cmp.Or(u.limit, MaxExactKeys) {
			u.sketch = hyperloglog.New16()
			for _, k := range u.slots {
				if k != 0 {
					u.sketch.InsertHash(k)
				}
			}
			clear(u.slots)
			u.n = 0
		}
	}
}

// insert adds h to the exact set and reports whether it was new.
func (u *unitCounter) insert(h uint64) bool {
	if 2*(u.n+1) > len(u.slots) {
		old := u.slots
		u.slots = make([]uint64, max(1024, 2*len(old)))
		u.n = 0
		for _, k := range old {
			if k != 0 {
				u.insert(k)
			}
		}
	}
	mask := uint64(len(u.slots) - 1)
	for i := (h >> 32) & mask; ; i = (i + 1) & mask {
		switch u.slots[i] {
		case h:
			return false
		case 0:
			u.slots[i] = h
			u.n++
			return true
		}
	}
}

func (u *unitCounter) count() int64 {
	if u.sketch != nil {
		return int64(u.sketch.Estimate())
	}
	return int64(u.n)
}

func (u *unitCounter) reset() {
	clear(u.slots)
	u.n = 0
	u.sketch = nil
}

// arms holds the accumulators of finished Stats calls for the next ones: an arm is 200 KiB, too much to
// allocate on every tick of a small file.
var arms = sync.Pool{New: func() any { return new(arm) }}

func getArm() *arm { return arms.Get().(*arm) }

// putArm clears a and gives it back. Only the touched buckets need clearing.
func putArm(a *arm) {
	for _, b := range a.touched {
		a.buckets[b] = [nMoments]moments{}
		a.seen[b] = false
		if a.bins[b] != nil {
			*a.bins[b] = [policy.QuantileBins]uint32{}
		}
	}
	a.touched = a.touched[:0]
	a.requests, a.latencySketch, a.keyed = 0, nil, false
	a.units.reset()
	arms.Put(a)
}

// add counts r in bucket, r.unit being the hash of its key (or of its stand-in for a keyless request).
func (a *arm) add(r *request, bucket int) {
	a.requests++
	if !a.seen[bucket] {
		a.seen[bucket] = true
		a.touched = append(a.touched, uint16(bucket))
	}
	a.units.add(r.unit)
	if r.key != nil {
		a.keyed = true
	}
	m := &a.buckets[bucket]
	if r.has&hasError != 0 {
		m[mError].add(b2f(r.isError))
	}
	if r.has&hasRefusal != 0 {
		m[mRefusal].add(b2f(r.refusal))
	}
	if r.has&hasFeedback != 0 {
		m[mNegFeedback].add(b2f(r.feedback < 0))
	}
	if r.has&hasLatency != 0 {
		m[mLatency].add(r.latencyMs)
		if a.latencySketch == nil {
			a.latencySketch = NewSketch()
		}
		// Latencies are finite and non-negative here, the only values the sketch could reject.
		_ = a.latencySketch.Add(r.latencyMs)
		bins := a.bins[bucket]
		if bins == nil {
			bins = new([policy.QuantileBins]uint32)
			a.bins[bucket] = bins
		}
		bins[policy.QuantileBin(r.latencyMs)]++
	}
	if r.has&hasCost != 0 {
		m[mCost].add(r.costUSD)
	}
	if r.has&hasInputTokens != 0 {
		m[mInput].add(r.inputTokens)
	}
	if r.has&hasOutputTokens != 0 {
		m[mOutput].add(r.outputTokens)
	}
	if r.has&hasQuality != 0 {
		m[mQuality].add(r.quality)
	}
}

// addWin counts a pairwise verdict worth v to the canary in bucket, which the arm marks as touched
// without counting a request.
func (a *arm) addWin(bucket int, v float64) {
	if !a.seen[bucket] {
		a.seen[bucket] = true
		a.touched = append(a.touched, uint16(bucket))
	}
	a.buckets[bucket][mWin].add(v)
}

// metricMoments maps each built-in metric to its moments and kind.
var metricMoments = map[string]struct {
	moment int
	kind   policy.SampleKind
}{
	ErrorRate:              {mError, policy.Proportion},
	RefusalRate:            {mRefusal, policy.Proportion},
	NegativeFeedbackRate:   {mNegFeedback, policy.Proportion},
	LatencyMeanMs:          {mLatency, policy.Mean},
	LatencyP50Ms:           {mLatency, policy.Quantile},
	LatencyP95Ms:           {mLatency, policy.Quantile},
	LatencyP99Ms:           {mLatency, policy.Quantile},
	CostPerRequest:         {mCost, policy.Mean},
	InputTokensPerRequest:  {mInput, policy.Mean},
	OutputTokensPerRequest: {mOutput, policy.Mean},
	QualityScore:           {mQuality, policy.Mean},
	CanaryWinRate:          {mWin, policy.Proportion},
}

// stats returns the arm's statistics for the metrics asked: totals and the sums per key bucket.
func (a *arm) stats(metrics []policy.MetricQuery) policy.ArmStats {
	out := policy.ArmStats{Requests: a.requests, Metrics: map[string]policy.Sample{}}
	if a.requests > 0 {
		out.Keys = a.units.count()
	}
	var (
		clusters [nMoments][]policy.Cluster
		bins     []float64 // backing array of every bucket's latency bins, shared by the quantiles
	)
	for _, m := range metrics {
		mm, ok := metricMoments[m.Name]
		if !ok {
			continue
		}
		if clusters[mm.moment] == nil {
			clusters[mm.moment] = a.clusters(mm.moment, mm.kind == policy.Quantile, &bins)
		} else if mm.kind == policy.Quantile && len(clusters[mm.moment]) > 0 && clusters[mm.moment][0].Bins == nil {
			clusters[mm.moment] = a.clusters(mm.moment, true, &bins)
		}
		s := policy.Sample{Kind: mm.kind, Clusters: clusters[mm.moment]}
		var n float64
		for _, c := range s.Clusters {
			n += c.N
			s.Sum += c.Sum
			s.SumSquares += c.SumSquares
		}
		s.N = int64(n)
		if mm.kind == policy.Quantile && a.latencySketch != nil {
			s.Dist = a.latencySketch
		}
		out.Metrics[m.Name] = s
	}
	return out
}

// clusters returns one moment's sums per touched bucket that has data, in bucket order, with the
// latency bins when withBins.
func (a *arm) clusters(moment int, withBins bool, bins *[]float64) []policy.Cluster {
	out := make([]policy.Cluster, 0, len(a.touched))
	for b := range policy.KeyBuckets {
		if !a.seen[b] {
			continue
		}
		m := a.buckets[b][moment]
		if m.n == 0 {
			continue
		}
		c := policy.Cluster{Bucket: b, N: m.n, Sum: m.sum, SumSquares: m.sumSquares}
		if withBins && a.bins[b] != nil {
			if len(*bins) == 0 {
				*bins = make([]float64, 0, len(a.touched)*policy.QuantileBins)
			}
			start := len(*bins)
			for _, v := range a.bins[b] {
				*bins = append(*bins, float64(v))
			}
			c.Bins = (*bins)[start:len(*bins):len(*bins)]
		}
		out = append(out, c)
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
