package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// Outside promotion.windows an advance holds and says when the next window opens; a rollback does not
// wait, and inside the window the advance goes ahead.
func TestJudgeHoldsAdvanceOutsideWindows(t *testing.T) {
	windows := &rollouts.Windows{TimeZone: "Europe/Berlin", Allow: []string{"Mon-Fri 09:00-16:00"}, Deny: []string{"Fri"}}
	failing := &Stats{Stable: armOf(100000, 1000, 0.87, 0.1), Canary: armOf(5000, 750, 0.87, 0.1)}
	thursday := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC) // t0
	for _, tc := range []struct {
		name   string
		now    time.Time
		stats  *Stats
		want   Action
		reason string
	}{
		{"night: advance waits", thursday.Add(20 * time.Hour), healthy(), Hold,
			"outside the promotion windows: the advance waits for the next window, which opens Mon 2026-04-20 09:00 CEST (in 3d11h)"},
		{"in the window: advance", thursday.Add(12 * time.Hour), healthy(), Advance, ""},
		{"Friday: advance waits", thursday.Add(34 * time.Hour), healthy(), Hold, "opens Mon 2026-04-20 09:00 CEST"},
		{"night: rollback goes ahead", thursday.Add(20 * time.Hour), failing, Rollback, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.Promotion.Windows = windows
			d := Judge(spec, Evidence{Stats: tc.stats}, tc.now)
			if d.Action != tc.want || !strings.Contains(strings.Join(d.Reasons, "\n"), tc.reason) {
				t.Errorf("decision %s %q, want %s with %q", d.Action, d.Reasons, tc.want, tc.reason)
			}
			if d.Action == Hold && (d.Next != nil || len(d.Metrics) == 0) {
				t.Errorf("a window hold should keep the evidence and no next stage: %+v", d)
			}
		})
	}
	spec := baseSpec()
	spec.Status.Stage = 4
	spec.Traffic.Weight = 100
	spec.Promotion.Windows = windows
	if d := Judge(spec, Evidence{Stats: healthy()}, thursday.Add(20*time.Hour+24*time.Hour*6)); d.Action != Hold ||
		!strings.Contains(strings.Join(d.Reasons, "\n"), "the promotion waits") {
		t.Errorf("promotion outside the window: %s %q", d.Action, d.Reasons)
	}
}

// A stage held past maxDuration with onInconclusive: hold says so in Stuck, for the `stuck` event.
func TestJudgeMarksStuck(t *testing.T) {
	spec := baseSpec()
	spec.Status.Stage = 2
	spec.Traffic.Weight = 25
	few := &Stats{Stable: armOf(600, 6, 0.87, 0.1), Canary: armOf(210, 3, 0.87, 0.1)}
	if d := Judge(spec, Evidence{Stats: few}, t0.Add(80*time.Hour)); d.Action != Hold || !d.Stuck {
		t.Errorf("past maxDuration: %s stuck %t %q", d.Action, d.Stuck, d.Reasons)
	}
	if d := Judge(spec, Evidence{Stats: few}, t0.Add(10*time.Hour)); d.Stuck {
		t.Errorf("before maxDuration: stuck %q", d.Reasons)
	}
}
