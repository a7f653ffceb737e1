package policy

import (
	"strconv"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/rollouts"
)

// clustersOf returns k buckets of n requests each at the given rate, from bucket first on.
func clustersOf(first, k int, n, rate float64) []Cluster {
	cs := make([]Cluster, k)
	for i := range cs {
		cs[i] = Cluster{Bucket: first + i, N: n, Sum: n * rate}
	}
	return cs
}

func keyedArm(cs []Cluster, keys int64) ArmStats {
	var n, sum float64
	for _, c := range cs {
		n += c.N
		sum += c.Sum
	}
	return ArmStats{Requests: int64(n), Keys: keys, Metrics: map[string]Sample{
		"error_rate": {Kind: Proportion, N: int64(n), Sum: sum, Clusters: cs}}}
}

// TestCollapsedEffectiveKeysNeverPass: a canary whose requests come almost all from one key is never
// passed, however narrow its interval, and the evidence says why; the same canary with its requests
// spread over its keys passes.
func TestCollapsedEffectiveKeysNeverPass(t *testing.T) {
	rule := rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)}
	stable := keyedArm(clustersOf(0, 1000, 100, 0.01), 2000)
	spread := keyedArm(clustersOf(0, 400, 50, 0.01), 400)
	bot := keyedArm(append(clustersOf(0, 200, 10, 0.01), Cluster{Bucket: 900, N: 20000, Sum: 200}), 201)
	budget := errorBudget{fail: 0.05, pass: 0.2}

	ok := judgeRule(rule, &Stats{Unit: UnitKey, Stable: stable, Canary: spread}, budget)
	if ok.Verdict != Pass {
		t.Fatalf("spread canary: %s (%s), want pass", ok.Verdict, ok.Reason)
	}
	got := judgeRule(rule, &Stats{Unit: UnitKey, Stable: stable, Canary: bot}, budget)
	if got.Verdict != Inconclusive || !strings.Contains(got.Reason, "canary's requests come from few keys (effective keys 1") {
		t.Errorf("one key holds 99%% of the canary: %s (%s), want inconclusive naming the effective keys", got.Verdict, got.Reason)
	}
	if got.Limits[0].Verdict != Inconclusive {
		t.Errorf("limit verdict %s, want inconclusive", got.Limits[0].Verdict)
	}
}

// TestBorrowedSpread: a canary that drew none of the stable arm's dominant keys takes the variance it
// would have had under the assignment, not the small one its own keys show.
func TestBorrowedSpread(t *testing.T) {
	stable := keyedArm(append(clustersOf(0, 1000, 10, 0.01), Cluster{Bucket: 1001, N: 10000, Sum: 800}), 2000)
	canary := keyedArm(clustersOf(0, 100, 10, 0.0175), 100)
	s, _ := estimate(stable.Metrics["error_rate"], true, UnitKey, stable.Keys)
	c, _ := estimate(canary.Metrics["error_rate"], true, UnitKey, canary.Keys)
	own := c.v
	borrowSpread(&s, &c)
	if !(c.v > 10*own) {
		t.Errorf("canary variance %g after borrowing, own %g: want the stable arm's spread to widen it", c.v, own)
	}
	if s.v <= 0 {
		t.Errorf("stable variance %g", s.v)
	}
}

// TestBurnInCountsKeysWithData (issue 23, item 6): the burn-in counts at most one key per value of
// the metric, not the arm's keys. A rule whose canary has 28 values (say thumbs) from an arm of 400
// keys has too few to be judged, however clear its 28 are; with 40 values it is judged.
func TestBurnInCountsKeysWithData(t *testing.T) {
	rule := rollouts.Rule{Metric: "error_rate", MaxIncrease: ratio(0.5)}
	stable := keyedArm(clustersOf(0, 1000, 10, 0.01), 2000)
	budget := errorBudget{fail: 0.05, pass: 0.2}
	for _, c := range []struct {
		values int
		judged bool
	}{{28, false}, {40, true}} {
		canary := keyedArm(clustersOf(0, c.values, 1, 0), 400) // one value from each of a few keys
		got := judgeRule(rule, &Stats{Unit: UnitKey, Stable: stable, Canary: canary}, budget)
		tooFew := strings.Contains(got.Reason, "too few keys yet (canary "+strconv.Itoa(c.values)+",")
		if tooFew == c.judged {
			t.Errorf("%d values from an arm of 400 keys: %s (%s), want judged %v", c.values, got.Verdict, got.Reason, c.judged)
		}
	}
}
