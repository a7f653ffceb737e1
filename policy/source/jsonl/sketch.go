package jsonl

import (
	"fmt"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/rollout-dev/rollout/policy"
)

// SketchAccuracy is the relative accuracy of the latency quantiles: a reported p95 is within 1% of a
// true observation at that rank.
const SketchAccuracy = 0.01

// Sketch is a mergeable latency distribution backed by a DDSketch (github.com/DataDog/sketches-go), a
// quantile sketch with relative-error guarantees and memory that grows with the log of the value range,
// not with the number of observations.
type Sketch struct {
	s *ddsketch.DDSketch
}

var _ policy.Distribution = (*Sketch)(nil)

// NewSketch returns an empty sketch with SketchAccuracy.
func NewSketch() *Sketch {
	s, err := ddsketch.NewDefaultDDSketch(SketchAccuracy)
	if err != nil {
		// The accuracy is a constant in (0, 1); ddsketch only rejects values outside it.
		panic(fmt.Sprintf("ddsketch with accuracy %v: %v", SketchAccuracy, err))
	}
	return &Sketch{s: s}
}

// Add records one observation. Negative, NaN and infinite values are the caller's to reject.
func (s *Sketch) Add(v float64) error {
	if err := s.s.Add(v); err != nil {
		return fmt.Errorf("add %v to sketch: %w", v, err)
	}
	return nil
}

// Merge adds every observation of o to s.
func (s *Sketch) Merge(o *Sketch) error {
	if err := s.s.MergeWith(o.s); err != nil {
		return fmt.Errorf("merge sketches: %w", err)
	}
	return nil
}

// Count is the number of observations.
func (s *Sketch) Count() float64 { return s.s.GetCount() }

// Quantile returns the value at rank q in [0, 1], or NaN for an empty sketch or a q outside [0, 1].
func (s *Sketch) Quantile(q float64) float64 {
	v, err := s.s.GetValueAtQuantile(q)
	if err != nil {
		return math.NaN()
	}
	return v
}

// CountAbove returns the number of observations greater than x. Observations are known only to the
// sketch's relative accuracy, so those in the same bucket as x count as not above it.
func (s *Sketch) CountAbove(x float64) float64 {
	var n float64
	s.s.ForEach(func(value, count float64) bool {
		if value > x {
			n += count
		}
		return false
	})
	return n
}
