package jsonl

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// TestSketchAgainstExact compares the sketch with exact order statistics of lognormal latencies.
func TestSketchAgainstExact(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	const n = 50_000
	values := make([]float64, n)
	s := NewSketch()
	for i := range values {
		values[i] = 800 * math.Exp(0.6*r.NormFloat64())
		if err := s.Add(values[i]); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(values)
	if s.Count() != n {
		t.Fatalf("Count = %v, want %d", s.Count(), n)
	}
	for _, q := range []float64{0.01, 0.5, 0.95, 0.99, 0.999} {
		exact := values[int(q*(n-1))]
		if got := s.Quantile(q); math.Abs(got-exact) > SketchAccuracy*exact {
			t.Errorf("Quantile(%v) = %v, exact %v (accuracy %v)", q, got, exact, SketchAccuracy)
		}
		// Observations above a quantile: exact up to the ones sharing x's bucket (within ±accuracy of x).
		x := exact
		above, _ := slices.BinarySearch(values, x*(1+2*SketchAccuracy))
		below, _ := slices.BinarySearch(values, x*(1-2*SketchAccuracy))
		if got := s.CountAbove(x); got > float64(n-below) || got < float64(n-above) {
			t.Errorf("CountAbove(%v) = %v, want within [%d, %d]", x, got, n-above, n-below)
		}
	}
	if got := s.CountAbove(values[n-1] * 2); got != 0 {
		t.Errorf("CountAbove(beyond max) = %v", got)
	}
	if got := s.CountAbove(-1); got != n {
		t.Errorf("CountAbove(-1) = %v, want %d", got, n)
	}

	other := NewSketch()
	for range 1000 {
		_ = other.Add(1e6)
	}
	if err := s.Merge(other); err != nil {
		t.Fatal(err)
	}
	if s.Count() != n+1000 || s.CountAbove(5e5) != 1000 {
		t.Errorf("after merge: Count %v, CountAbove(5e5) %v", s.Count(), s.CountAbove(5e5))
	}
	if !math.IsNaN(NewSketch().Quantile(0.5)) {
		t.Error("empty sketch quantile is not NaN")
	}
}
