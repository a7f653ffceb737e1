// Package record is the application's side of a rollout: it writes what each LLM request did, once, to
// every place the controller may read it from — JSON Lines request records for the `file:` source and
// Prometheus metrics for the `prometheus:` source.
//
// An application builds one Observer, usually Multi(jsonlRecorder, prometheusMetrics), and calls
// Record after each request. Both recorders are safe for concurrent use.
//
// It belongs to the rollouts room: the application's side of the spec, imported by apps, not by the loop.
package record

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Request is one LLM request as the contract's request records describe it. Required: Rollout, Variant
// and a time (Time, or the recorder's clock). Optional fields are pointers: nil means "not measured" and
// is left out, so a quality of 0 stays distinguishable from no quality at all. Go 1.26's new(v) makes
// them one expression: Quality: new(0.87).
type Request struct {
	Time    time.Time
	Rollout string
	// Variant is "stable" or "canary".
	Variant string
	// Shadow marks a mirrored canary call whose answer no user saw.
	Shadow bool
	Key    string
	Model  string
	Prompt string
	// RequestID identifies the request, so that feedback or a score that arrives later (RecordLate)
	// attaches to it. Optional; it must be unique within the rollout.
	RequestID string

	Latency      *time.Duration
	Error        bool
	Refusal      bool
	InputTokens  *int64
	OutputTokens *int64
	CostUSD      *float64
	Quality      *float64
	// Feedback is the user's verdict: negative, zero (neutral) or positive; typically -1, 0 or 1.
	Feedback *int
	// Attrs are the request's attributes that a rollout's analysis.segments may split by
	// ({"language": "de", "tenant": "acme"}): written as the record's attrs object.
	Attrs map[string]string
}

// Observer records requests. Record is safe for concurrent use; it returns ErrInvalid (wrapped) for a
// request that breaks the contract, and records nothing then.
type Observer interface {
	Record(Request) error
}

// ErrInvalid marks a request that breaks the record contract.
var ErrInvalid = errors.New("invalid request record")

// The variants a request may carry.
const (
	Stable = "stable"
	Canary = "canary"
)

// Validate checks r against the record contract. haveClock says whether a zero Time will be filled in
// by the recorder; without a clock a request must carry its Time.
func (r *Request) Validate(haveClock bool) error {
	switch {
	case r.Rollout == "":
		return fmt.Errorf("%w: no rollout", ErrInvalid)
	case r.Variant != Stable && r.Variant != Canary:
		return fmt.Errorf("%w: variant %q is neither %q nor %q", ErrInvalid, r.Variant, Stable, Canary)
	case r.Shadow && r.Variant != Canary:
		return fmt.Errorf("%w: a shadow request is a canary request", ErrInvalid)
	case r.Time.IsZero() && !haveClock:
		return fmt.Errorf("%w: no time, and the recorder has no clock", ErrInvalid)
	case !r.Time.IsZero() && !recordable(r.Time):
		return fmt.Errorf("%w: time %s is outside the years 0 to 9999, which no record's ts can hold", ErrInvalid, r.Time.UTC().Format(time.RFC3339))
	case r.Latency != nil && *r.Latency < 0:
		return fmt.Errorf("%w: negative latency %v", ErrInvalid, *r.Latency)
	case r.InputTokens != nil && *r.InputTokens < 0, r.OutputTokens != nil && *r.OutputTokens < 0:
		return fmt.Errorf("%w: negative token count", ErrInvalid)
	case r.CostUSD != nil && !(*r.CostUSD >= 0 && !math.IsInf(*r.CostUSD, 1)):
		return fmt.Errorf("%w: cost %v is not a finite non-negative number", ErrInvalid, *r.CostUSD)
	case r.Quality != nil && (math.IsNaN(*r.Quality) || math.IsInf(*r.Quality, 0)):
		return fmt.Errorf("%w: quality %v is not a finite number", ErrInvalid, *r.Quality)
	}
	return nil
}

// Late is feedback or a score that arrives after its request was recorded: a thumbs-down minutes
// later, an LLM-as-judge score. The sources attach it to the request with the same RequestID (its arm,
// its key, its window); the latest value of each field wins. A late record whose request the source
// cannot find is counted and reported, never guessed.
type Late struct {
	Time      time.Time
	Rollout   string
	RequestID string
	// Variant is the arm the request was served by, when the application knows it. The JSONL recorder
	// does not need it; the Prometheus collector does (llm_feedback_total and llm_quality_score are
	// labelled by variant).
	Variant  string
	Feedback *int
	Quality  *float64
	// Preferred is a pairwise verdict on the request: which arm's answer a judge (a person or an LLM)
	// preferred for the same input, PreferCanary, PreferStable or PreferTie; empty for none.
	Preferred string
	// Attrs are the request's attributes, which the Prometheus collector (NewMetrics with attributes)
	// labels late feedback with, as it cannot look the request up; the JSONL recorder does not need them.
	Attrs map[string]string
}

// The pairwise verdicts a Late record may carry.
const (
	PreferCanary = "canary"
	PreferStable = "stable"
	PreferTie    = "tie"
)

// LateObserver records late feedback. RecordLate is safe for concurrent use; it returns ErrInvalid
// (wrapped) for a record that breaks the contract, and records nothing then.
type LateObserver interface {
	RecordLate(Late) error
}

// Validate checks l against the record contract; haveClock as for Request.Validate.
func (l *Late) Validate(haveClock bool) error {
	switch {
	case l.Rollout == "":
		return fmt.Errorf("%w: no rollout", ErrInvalid)
	case l.RequestID == "":
		return fmt.Errorf("%w: a late record needs the request_id of its request", ErrInvalid)
	case l.Feedback == nil && l.Quality == nil && l.Preferred == "":
		return fmt.Errorf("%w: a late record carries feedback, quality or preferred", ErrInvalid)
	case l.Preferred != "" && l.Preferred != PreferCanary && l.Preferred != PreferStable && l.Preferred != PreferTie:
		return fmt.Errorf("%w: preferred %q is none of %q, %q and %q", ErrInvalid, l.Preferred, PreferCanary, PreferStable, PreferTie)
	case l.Variant != "" && l.Variant != Stable && l.Variant != Canary:
		return fmt.Errorf("%w: variant %q is neither %q nor %q", ErrInvalid, l.Variant, Stable, Canary)
	case l.Time.IsZero() && !haveClock:
		return fmt.Errorf("%w: no time, and the recorder has no clock", ErrInvalid)
	case !l.Time.IsZero() && !recordable(l.Time):
		return fmt.Errorf("%w: time %s is outside the years 0 to 9999, which no record's ts can hold", ErrInvalid, l.Time.UTC().Format(time.RFC3339))
	case l.Quality != nil && (math.IsNaN(*l.Quality) || math.IsInf(*l.Quality, 0)):
		return fmt.Errorf("%w: quality %v is not a finite number", ErrInvalid, *l.Quality)
	}
	return nil
}

// recordable reports whether t fits a record's ts: RFC 3339 has four-digit years, so the sources read
// a later or earlier one as a malformed line.
func recordable(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// outcome is the llm_requests_total outcome of r: error wins over refusal.
func (r *Request) outcome() string {
	switch {
	case r.Error:
		return "error"
	case r.Refusal:
		return "refusal"
	}
	return "ok"
}

// multi records to several observers.
var _ LateObserver = multi(nil)

type multi []Observer

// Multi returns an Observer that validates a request once and records it to each of observers in
// order, so one call instruments both the file and the Prometheus source. A request without a Time is
// invalid for all of them when one lacks a clock (a JSONL without Now): it is recorded nowhere rather
// than counted by Prometheus alone. An observer's error does not stop the others; the errors are joined.
func Multi(observers ...Observer) Observer {
	return multi(observers)
}

func (m multi) Record(r Request) error {
	if err := r.Validate(m.haveClock()); err != nil {
		return err
	}
	var errs []error
	for _, o := range m {
		if err := o.Record(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// clocked is an observer that may lack the clock stamping a record without a Time (a JSONL without
// Now); an observer that is not one needs no time (Prometheus stamps samples when it scrapes).
type clocked interface{ hasClock() bool }

// haveClock reports whether every observer can record a request without a Time, so that such a
// request is refused by all of them (ErrInvalid, nothing recorded) rather than counted by some.
func (m multi) haveClock() bool {
	for _, o := range m {
		if c, ok := o.(clocked); ok && !c.hasClock() {
			return false
		}
	}
	return true
}

// RecordLate validates l once and records it to each observer that records late feedback.
func (m multi) RecordLate(l Late) error {
	if err := l.Validate(m.haveClock()); err != nil {
		return err
	}
	var errs []error
	for _, o := range m {
		if lo, ok := o.(LateObserver); ok {
			if err := lo.RecordLate(l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
