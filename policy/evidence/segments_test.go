package evidence_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence"
	"github.com/rollout-dev/rollout/rollouts"
)

// A rollback for a regression confined to one segment shows that segment in its own table.
func TestRenderWorstSegment(t *testing.T) {
	s := spec()
	s.Stages = []rollouts.Stage{{Weight: 5}, {Weight: 25}, {Weight: 100}}
	s.Status.Stage = 0
	s.Analysis = rollouts.Analysis{Confidence: 0.95, Segments: []string{"language"}, Rules: []rollouts.Rule{
		{Metric: "error_rate", Max: ptr(0.05), MaxIncrease: ptr(rollouts.Ratio(0.5))},
	}}
	arm := func(n int64, errs float64) policy.ArmStats {
		return policy.ArmStats{Requests: n, Metrics: map[string]policy.Sample{"error_rate": {Kind: policy.Proportion, N: n, Sum: errs}}}
	}
	stats := &policy.Stats{Unit: policy.UnitRequest, From: day.Add(24 * time.Hour),
		Stable: arm(20000, 200), Canary: arm(1000, 19),
		Segments: []policy.SegmentStats{
			{Segment: policy.Attr{Name: "language", Value: "en"}, Stats: &policy.Stats{Unit: policy.UnitRequest, Stable: arm(18000, 180), Canary: arm(900, 9)}},
			{Segment: policy.Attr{Name: "language", Value: "de"}, Stats: &policy.Stats{Unit: policy.UnitRequest, Stable: arm(2000, 20), Canary: arm(100, 10)}},
		}}
	now := day.Add(30 * time.Hour)
	d := policy.Judge(s, policy.Evidence{Stats: stats}, now)
	if d.Action != policy.Rollback || !strings.Contains(strings.Join(d.Reasons, "\n"), "in segment language=de") {
		t.Fatalf("decision %s %q, want a rollback naming language=de", d.Action, d.Reasons)
	}
	got := evidence.Render(evidence.Input{Spec: s, Decision: d, Now: now})
	golden := filepath.Join("testdata", "segmented.md")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("body differs from %s (run go test -update and review the diff):\n%s", golden, got)
	}
	if !strings.Contains(got, "| error\\_rate in language\\=de | 1% (n=2,000) | 10% (n=100) |") {
		t.Errorf("no worst-segment row for language=de:\n%s", got)
	}
}
