// Package histogram holds a policy.Distribution over cumulative buckets, the shape in which Prometheus
// histograms (`le` buckets) and SQL width_bucket queries summarise observations.
//
// Within a bucket the observations are taken to be spread evenly, as Prometheus's histogram_quantile
// assumes: Quantile and CountAbove interpolate linearly between a bucket's bounds. The error of either is
// at most one bucket's width.
//
// It belongs to the policy room and serves the sources (prom) that read cumulative buckets.
package histogram

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/rollout-dev/rollout/policy"
)

// ErrBadBuckets marks buckets that cannot form a histogram: no buckets, unsorted or NaN bounds.
var ErrBadBuckets = errors.New("bad histogram buckets")

// Bucket is one cumulative bucket: Count observations are at most UpperBound.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Histogram is a Distribution over cumulative buckets. The zero value is an empty histogram.
type Histogram struct {
	bounds []float64 // upper bounds, ascending; the last may be +Inf
	cum    []float64 // cumulative counts, non-decreasing
}

var _ policy.Distribution = (*Histogram)(nil)

// New returns the histogram of buckets, in any order. Cumulative counts that decrease from one bucket to
// the next (rate extrapolation and float noise can cause it in Prometheus) are raised to the previous
// count, as histogram_quantile does. Scale multiplies every bound, to change units (seconds to ms).
func New(buckets []Bucket, scale float64) (*Histogram, error) {
	if len(buckets) == 0 {
		return nil, fmt.Errorf("%w: none", ErrBadBuckets)
	}
	sorted := append([]Bucket(nil), buckets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].UpperBound < sorted[j].UpperBound })
	h := &Histogram{bounds: make([]float64, len(sorted)), cum: make([]float64, len(sorted))}
	for i, b := range sorted {
		if math.IsNaN(b.UpperBound) || math.IsNaN(b.Count) {
			return nil, fmt.Errorf("%w: NaN", ErrBadBuckets)
		}
		if i > 0 && b.UpperBound == sorted[i-1].UpperBound {
			return nil, fmt.Errorf("%w: bound %g twice", ErrBadBuckets, b.UpperBound)
		}
		h.bounds[i] = b.UpperBound * scale
		h.cum[i] = math.Max(b.Count, 0)
		if i > 0 && h.cum[i] < h.cum[i-1] {
			h.cum[i] = h.cum[i-1]
		}
	}
	return h, nil
}

// Count is the number of observations: the count of the last bucket.
func (h *Histogram) Count() float64 {
	if len(h.cum) == 0 {
		return 0
	}
	return h.cum[len(h.cum)-1]
}

// lowerBound is where bucket i starts: the previous bound, or 0 for a first bucket with a positive bound
// (histogram_quantile's assumption for latencies and other non-negative values).
func (h *Histogram) lowerBound(i int) float64 {
	if i > 0 {
		return h.bounds[i-1]
	}
	if h.bounds[0] > 0 {
		return 0
	}
	return h.bounds[0]
}

// Quantile returns the value at rank q in [0, 1], interpolated like histogram_quantile: NaN for an empty
// histogram, and the highest finite bound for a rank in the +Inf bucket.
func (h *Histogram) Quantile(q float64) float64 {
	n := h.Count()
	if n == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = math.Min(math.Max(q, 0), 1)
	rank := q * n
	i := sort.Search(len(h.cum), func(i int) bool { return h.cum[i] >= rank })
	if i == len(h.cum) {
		i = len(h.cum) - 1
	}
	if math.IsInf(h.bounds[i], 1) {
		if i == 0 {
			return math.NaN()
		}
		return h.bounds[i-1]
	}
	if i == 0 && h.bounds[0] <= 0 {
		return h.bounds[0]
	}
	lo, hi := h.lowerBound(i), h.bounds[i]
	below := 0.0
	if i > 0 {
		below = h.cum[i-1]
	}
	inBucket := h.cum[i] - below
	if inBucket == 0 {
		return hi
	}
	return lo + (hi-lo)*(rank-below)/inBucket
}

// CountAbove returns the number of observations greater than x. Within a bucket it interpolates; the
// observations of the +Inf bucket all count as above any x at or past the highest finite bound, so an
// exceedance is never under-counted.
func (h *Histogram) CountAbove(x float64) float64 {
	n := h.Count()
	if n == 0 || math.IsNaN(x) {
		return 0
	}
	return n - h.countAtOrBelow(x)
}

func (h *Histogram) countAtOrBelow(x float64) float64 {
	i := sort.SearchFloat64s(h.bounds, x) // first bound >= x
	if i == len(h.bounds) {
		return h.Count()
	}
	below := 0.0
	if i > 0 {
		below = h.cum[i-1]
	}
	hi := h.bounds[i]
	if x == hi {
		return h.cum[i]
	}
	if math.IsInf(hi, 1) {
		return below
	}
	lo := h.lowerBound(i)
	if x <= lo {
		return below
	}
	return below + (h.cum[i]-below)*(x-lo)/(hi-lo)
}

// Moments returns the mean and the variance of the observations, taking each bucket's observations as
// spread evenly over it, and those of the +Inf bucket as sitting on the highest finite bound. It is the
// spread a Prometheus histogram can give, since it keeps no sum of squares. The estimate errs on the
// wide side (by about width²/6 per observation, twice Sheppard's grouping term), so a confidence
// interval built on it is wider, not tighter, than the exact data would give (checked on seeded
// simulations).
func (h *Histogram) Moments() (mean, variance float64) {
	n := h.Count()
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	var sum, sumSquares, below float64
	for i, hi := range h.bounds {
		c := h.cum[i] - below
		below = h.cum[i]
		if c == 0 {
			continue
		}
		lo := h.lowerBound(i)
		if math.IsInf(hi, 1) {
			if i == 0 {
				return math.NaN(), math.NaN()
			}
			hi = lo
		}
		sum += c * (lo + hi) / 2
		sumSquares += c * (lo*lo + lo*hi + hi*hi) / 3
	}
	mean = sum / n
	return mean, math.Max(sumSquares/n-mean*mean, 0)
}
