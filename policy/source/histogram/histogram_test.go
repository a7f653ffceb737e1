package histogram

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestQuantileAndCountAbove(t *testing.T) {
	// 10 observations in (0,1], 30 in (1,2], 60 in (2,4], none above.
	h, err := New([]Bucket{{4, 100}, {1, 10}, {2, 40}, {math.Inf(1), 100}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"count", h.Count(), 100},
		{"q0.05", h.Quantile(0.05), 0.5},
		{"q0.1", h.Quantile(0.1), 1},
		{"q0.25", h.Quantile(0.25), 1.5},
		{"q0.7", h.Quantile(0.7), 3},
		{"q1", h.Quantile(1), 4},
		{"above 0", h.CountAbove(0), 100},
		{"above 0.5", h.CountAbove(0.5), 95},
		{"above 2", h.CountAbove(2), 60},
		{"above 3", h.CountAbove(3), 30},
		{"above 4", h.CountAbove(4), 0},
		{"above 100", h.CountAbove(100), 0},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > 1e-12 {
			t.Errorf("%s = %g, want %g", tt.name, tt.got, tt.want)
		}
	}
}

func TestInfBucket(t *testing.T) {
	h, err := New([]Bucket{{1, 50}, {2, 80}, {math.Inf(1), 100}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Quantile(0.95); got != 2000 {
		t.Errorf("p95 in +Inf bucket = %g, want the highest finite bound 2000", got)
	}
	if got := h.CountAbove(5000); got != 20 {
		t.Errorf("CountAbove past the last bound = %g, want every +Inf observation (20)", got)
	}
}

func TestNonMonotonicCountsAreRepaired(t *testing.T) {
	h, err := New([]Bucket{{1, 10}, {2, 9.999}, {math.Inf(1), 20}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.CountAbove(1.5); got != 10 {
		t.Errorf("CountAbove(1.5) = %g, want 10", got)
	}
}

func TestEmptyAndBad(t *testing.T) {
	h, err := New([]Bucket{{1, 0}, {math.Inf(1), 0}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(h.Quantile(0.5)) || h.CountAbove(0) != 0 {
		t.Errorf("empty histogram: Quantile %g, CountAbove %g", h.Quantile(0.5), h.CountAbove(0))
	}
	for _, bad := range [][]Bucket{nil, {{math.NaN(), 1}}, {{1, 1}, {1, 2}}} {
		if _, err := New(bad, 1); !errors.Is(err, ErrBadBuckets) {
			t.Errorf("New(%v) error = %v, want ErrBadBuckets", bad, err)
		}
	}
}

// TestAccuracyOnSimulatedLatencies checks, over many seeded samples, that quantiles and exceedance counts
// from exponential buckets stay within one bucket of the exact values.
func TestAccuracyOnSimulatedLatencies(t *testing.T) {
	bounds := []float64{math.Inf(1)}
	for b := 10.0; b < 100000; b *= 1.1 {
		bounds = append(bounds, b)
	}
	for seed := uint64(1); seed <= 50; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		xs := make([]float64, 2000)
		for i := range xs {
			xs[i] = math.Exp(6 + 0.5*r.NormFloat64()) // lognormal around 400 ms
		}
		sort.Float64s(xs)
		buckets := make([]Bucket, len(bounds))
		for i, b := range bounds {
			buckets[i] = Bucket{UpperBound: b, Count: float64(sort.Search(len(xs), func(j int) bool { return xs[j] > b }))}
		}
		h, err := New(buckets, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []float64{0.5, 0.95, 0.99} {
			exact := xs[int(math.Ceil(q*float64(len(xs))))-1]
			if got := h.Quantile(q); math.Abs(got-exact)/exact > 0.1 {
				t.Errorf("seed %d: q%.2f = %.1f, exact %.1f: more than one bucket (10%%) off", seed, q, got, exact)
			}
		}
		x := 600.0
		exactAbove := float64(len(xs) - sort.SearchFloat64s(xs, x))
		if got := h.CountAbove(x); math.Abs(got-exactAbove) > 0.1*exactAbove {
			t.Errorf("seed %d: CountAbove(%g) = %.1f, exact %g", seed, x, got, exactAbove)
		}
		mean, variance := h.Moments()
		var s, ss float64
		for _, v := range xs {
			s += v
			ss += v * v
		}
		em := s / float64(len(xs))
		ev := ss/float64(len(xs)) - em*em
		if variance < ev {
			t.Errorf("seed %d: variance %.1f below the exact %.1f: intervals would be too tight", seed, variance, ev)
		}
		if math.Abs(mean-em)/em > 0.01 || math.Abs(variance-ev)/ev > 0.05 {
			t.Errorf("seed %d: moments %.1f/%.1f, exact %.1f/%.1f", seed, mean, variance, em, ev)
		}
	}
}

// TestMonotone checks, on seeded random histograms, that Quantile never decreases with q, CountAbove
// never increases with x, and the two agree: about (1-q)·n observations lie above the q-quantile.
func TestMonotone(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for trial := 0; trial < 200; trial++ {
		var buckets []Bucket
		bound, cum := 0.0, 0.0
		for i := 0; i < 1+r.IntN(20); i++ {
			bound += 0.1 + r.Float64()*10
			cum += float64(r.IntN(50))
			buckets = append(buckets, Bucket{bound, cum})
		}
		buckets = append(buckets, Bucket{math.Inf(1), cum})
		h, err := New(buckets, 1)
		if err != nil {
			t.Fatal(err)
		}
		if h.Count() == 0 {
			continue
		}
		prev := math.Inf(-1)
		for q := 0.0; q <= 1; q += 0.01 {
			v := h.Quantile(q)
			if v < prev-1e-9 {
				t.Fatalf("trial %d: Quantile(%g) = %g < %g", trial, q, v, prev)
			}
			prev = v
			if above := h.CountAbove(v); math.Abs(above-(1-q)*h.Count()) > 1e-6*h.Count() && q > 0 && q < 1 {
				t.Fatalf("trial %d: CountAbove(Quantile(%g)) = %g, want %g", trial, q, above, (1-q)*h.Count())
			}
		}
		prevAbove := math.Inf(1)
		for x := 0.0; x <= bound+1; x += bound / 97 {
			a := h.CountAbove(x)
			if a > prevAbove+1e-9 {
				t.Fatalf("trial %d: CountAbove(%g) = %g > %g", trial, x, a, prevAbove)
			}
			prevAbove = a
		}
	}
}
