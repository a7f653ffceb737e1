package prom_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

// TestSegments reads a segment's statistics from series labelled with the attribute, against a real
// Prometheus holding what it would have scraped from an application exporting the attributes.
func TestSegments(t *testing.T) {
	canary := synth.Stable
	canary.Model, canary.ErrorRate = "model-canary", 0.05
	segments := []synth.SegmentShares{{Attr: "language", Values: []string{"en", "de", "fr"}, Shares: []float64{0.7, 0.2, 0.1}}}
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 3000, Canary: 600,
		StableProfile: synth.Stable, CanaryProfile: canary, Segments: segments}, 5)
	// Prometheus counts both arms over the whole window: let the segment's first canary request open
	// it, as Generate does for the pooled traffic.
	for i, r := range traffic {
		if r.Variant == policy.Canary && r.Attrs["language"] == "de" {
			traffic[i].TS = from.Add(time.Millisecond)
			slices.SortStableFunc(traffic, func(a, b synth.Request) int { return a.TS.Compare(b.TS) })
			break
		}
	}
	exp := synth.NewSegmentExporter([]string{"language"}, "summarizer")
	om, err := synth.OpenMetrics(exp.Registry, exp.Observe, traffic, from, to, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	src, err := prom.New("prometheus:" + testserver.PrometheusBackfilled(t, om))
	if err != nil {
		t.Fatal(err)
	}
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins(), Segments: []string{"language"}}
	pooled, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want := synth.ExpectedFor(traffic, q)
	if got := pooled.SegmentValues["language"]; !slices.Equal(got, want.SegmentValues["language"]) {
		t.Errorf("values %q, want %q", got, want.SegmentValues["language"])
	}
	for _, d := range synth.Diff(want, pooled, synth.Tolerance{Variance: 0.1, Quantile: 0.1}) {
		t.Errorf("pooled: %s", d)
	}
	q.Segments, q.Filter = nil, []policy.Attr{{Name: "language", Value: "de"}}
	de, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want = synth.ExpectedFor(traffic, q)
	if want.Canary.Requests == 0 {
		t.Fatal("no canary requests in the segment")
	}
	for _, d := range synth.Diff(want, de, synth.Tolerance{Variance: 0.1, Quantile: 0.1}) {
		t.Errorf("language=de: %s", d)
	}
	q.Filter = []policy.Attr{{Name: `language="de"} or vector(1) #`, Value: "x"}}
	if _, err := src.Stats(context.Background(), q); !errors.Is(err, prom.ErrBadSegment) {
		t.Errorf("an injected label: err = %v, want ErrBadSegment", err)
	}
}
