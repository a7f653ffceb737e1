package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// TestRequestLevelEvidence: evidence that counts requests does not advance a stage whose assignment
// randomises keys, unless the spec declares the request the unit; a failing rule still rolls back.
func TestRequestLevelEvidence(t *testing.T) {
	later := t0.Add(5 * time.Hour)
	healthy := func(unit Unit) Evidence {
		return Evidence{Stats: &Stats{Unit: unit, Stable: armOf(190000, 1900, 0.87, 0.1), Canary: armOf(10000, 100, 0.87, 0.1)}}
	}
	for _, c := range []struct {
		name, key, unit string
		stats           Unit
		want            Action
	}{
		{"no assignment key", "", "", UnitRequest, Advance},
		{"keys counted", "user_id", "", UnitKey, Advance},
		{"keyed assignment, requests counted", "user_id", "", UnitRequest, Hold},
		{"unit left empty by the source", "user_id", "", "", Hold},
		{"the spec declares the request the unit", "user_id", rollouts.UnitRequest, UnitRequest, Advance},
	} {
		spec := baseSpec()
		spec.Assignment.Key, spec.Assignment.Unit = c.key, c.unit
		d := Judge(spec, healthy(c.stats), later)
		if d.Action != c.want {
			t.Errorf("%s: %s %q, want %s", c.name, d.Action, d.Reasons, c.want)
			continue
		}
		if c.want == Hold && !strings.Contains(strings.Join(d.Reasons, "; "), "the evidence counts requests, not user_id keys") {
			t.Errorf("%s: reasons %q do not say why", c.name, d.Reasons)
		}
	}
	spec := baseSpec()
	spec.Assignment.Key = "user_id"
	bad := Evidence{Stats: &Stats{Unit: UnitRequest, Stable: armOf(100000, 1000, 0.87, 0.1), Canary: armOf(5000, 155, 0.87, 0.1)}}
	if d := Judge(spec, bad, later); d.Action != Rollback {
		t.Errorf("a failing rule on request-level evidence: %s %q, want rollback", d.Action, d.Reasons)
	}
}
