package synth

import (
	"fmt"
	"math"
	"sort"

	"github.com/rollout-dev/rollout/policy"
)

// Tolerance says how far a source may be from the exact statistics, relatively. Counts and sums must
// always match (up to float rounding).
type Tolerance struct {
	// Variance bounds the relative error of a Mean sample's variance (histograms keep no sum of squares).
	Variance float64
	// VarianceOver, when larger, bounds an overestimate of the variance instead: histogram estimates
	// err on the wide side, by more the coarser the buckets.
	VarianceOver float64
	// Quantile bounds the relative error of p50, p95 and p99 (about one bucket's width).
	Quantile float64
}

// Diff lists the differences between the exact statistics want and a source's got, beyond tol.
func Diff(want, got *policy.Stats, tol Tolerance) []string {
	var diffs []string
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		w, g := want.Arm(arm), got.Arm(arm)
		if w.Requests != g.Requests {
			diffs = append(diffs, fmt.Sprintf("%s requests = %d, want %d", arm, g.Requests, w.Requests))
		}
		names := make([]string, 0, len(w.Metrics))
		for n := range w.Metrics {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ws := w.Metrics[n]
			gs, ok := g.Metrics[n]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s missing", arm, n))
				continue
			}
			if gs.Kind != ws.Kind || gs.N != ws.N {
				diffs = append(diffs, fmt.Sprintf("%s %s kind/N = %d/%d, want %d/%d", arm, n, gs.Kind, gs.N, ws.Kind, ws.N))
				continue
			}
			switch ws.Kind {
			case policy.Proportion:
				if gs.Sum != ws.Sum {
					diffs = append(diffs, fmt.Sprintf("%s %s events = %g, want %g", arm, n, gs.Sum, ws.Sum))
				}
			case policy.Mean:
				if !near(gs.Sum, ws.Sum, 1e-9) {
					diffs = append(diffs, fmt.Sprintf("%s %s sum = %.10g, want %.10g", arm, n, gs.Sum, ws.Sum))
				}
				nf := float64(ws.N)
				wv := ws.SumSquares/nf - (ws.Sum/nf)*(ws.Sum/nf)
				gv := gs.SumSquares/nf - (gs.Sum/nf)*(gs.Sum/nf)
				rel := math.Max(tol.Variance, 1e-6)
				if gv > wv && tol.VarianceOver > rel {
					rel = tol.VarianceOver
				}
				if !near(gv, wv, rel) {
					diffs = append(diffs, fmt.Sprintf("%s %s variance = %.6g, want %.6g (±%g)", arm, n, gv, wv, tol.Variance))
				}
			case policy.Quantile:
				if gs.Dist == nil || gs.Dist.Count() != ws.Dist.Count() {
					diffs = append(diffs, fmt.Sprintf("%s %s distribution count differs", arm, n))
					continue
				}
				for _, q := range []float64{0.5, 0.95, 0.99} {
					if float64(ws.N)*(1-q) < 5 {
						continue // rank conventions differ where fewer than 5 observations lie above
					}
					if wq, gq := ws.Dist.Quantile(q), gs.Dist.Quantile(q); !near(gq, wq, tol.Quantile) {
						diffs = append(diffs, fmt.Sprintf("%s %s q%g = %.6g, want %.6g (±%g)", arm, n, q, gq, wq, tol.Quantile))
					}
				}
			}
		}
	}
	return diffs
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-12)
}

// Only keeps, in both arms of st, the metrics that q asks for.
func Only(st *policy.Stats, q policy.Query) *policy.Stats {
	asked := map[string]bool{}
	for _, m := range q.Metrics {
		asked[m.Name] = true
	}
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		for name := range st.Arm(arm).Metrics {
			if !asked[name] {
				delete(st.Arm(arm).Metrics, name)
			}
		}
	}
	return st
}
