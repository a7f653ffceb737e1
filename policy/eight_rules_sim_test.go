package policy_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// The metrics a multiSource keeps per key bucket, as a per-key source sums them.
const (
	mmError = iota
	mmRefusal
	mmLatency
	mmCost
	mmOutput
	mmQuality  // late
	mmFeedback // late: negative feedback among the feedback given
	mmCount
)

// multiMetric names each metric of a multiSource and its kind.
var multiMetric = [mmCount]struct {
	name string
	kind policy.SampleKind
}{
	{"error_rate", policy.Proportion}, {"refusal_rate", policy.Proportion}, {"latency_mean_ms", policy.Mean},
	{"cost_per_request", policy.Mean}, {"output_tokens_per_request", policy.Mean}, {"quality_score", policy.Mean},
	{"negative_feedback_rate", policy.Proportion},
}

// moments are one bucket's sufficient statistics of one metric.
type moments struct{ n, sum, ss float64 }

func (m *moments) add(v float64) { m.n, m.sum, m.ss = m.n+1, m.sum+v, m.ss+v*v }

// multiSums are one arm's sums per metric and key bucket.
type multiSums struct {
	m [mmCount][policy.KeyBuckets]moments
}

func (s *multiSums) sample(metric int) (policy.Sample, bool) {
	var cs []policy.Cluster
	var n, sum, ss float64
	for b := range policy.KeyBuckets {
		if c := s.m[metric][b]; c.n > 0 {
			cs = append(cs, policy.Cluster{Bucket: b, N: c.n, Sum: c.sum, SumSquares: c.ss})
			n, sum, ss = n+c.n, sum+c.sum, ss+c.ss
		}
	}
	return policy.Sample{Kind: multiMetric[metric].kind, N: int64(n), Sum: sum, SumSquares: ss, Clusters: cs}, n > 0
}

// multiRequest is what a late record needs of its request.
type multiRequest struct {
	ts     time.Time
	arm    int
	bucket int
}

// multiSource is a per-key source of every built-in metric but the token inputs over the requests
// drawn so far, as the file source counts them: both arms from the first canary record, late feedback
// and scores attached to their requests, latency in quantile bins per key bucket. It honours
// Query.RequestsTo (a cut that only moves forward, as the ticks' does) for the late metrics, keeping
// their sums over every request and over the requests up to the cut, so each tick costs
// O(buckets × metrics) and policy.WithMaturity can judge them over matured requests.
type multiSource struct {
	from     time.Time
	reqs     []multiRequest
	index    map[string]int
	requests [2]int64
	keys     [2]map[string]bool
	late     int64
	all      [2]multiSums
	matured  [2]multiSums
	bins     [2][policy.KeyBuckets][]float64
	dist     [2]logBins
	cut      time.Time
	next     int // reqs[:next] are in matured
	// pending holds the late values of requests not yet in matured, by request index.
	pending map[int][]lateValue
}

// lateValue is one late metric's value of a request.
type lateValue struct {
	metric int
	v      float64
}

func newMultiSource() *multiSource {
	return &multiSource{index: map[string]int{}, keys: [2]map[string]bool{{}, {}}, pending: map[int][]lateValue{}}
}

// lateValues lists r's feedback and quality as late metric values.
func lateValues(r synth.Request) []lateValue {
	var out []lateValue
	if r.Quality != nil {
		out = append(out, lateValue{mmQuality, *r.Quality})
	}
	if r.Feedback != nil {
		out = append(out, lateValue{mmFeedback, b2f(*r.Feedback < 0)})
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// attach adds the late values of request i.
func (s *multiSource) attach(i int, vs []lateValue) {
	q := s.reqs[i]
	for _, v := range vs {
		s.all[q.arm].m[v.metric][q.bucket].add(v.v)
		if i < s.next {
			s.matured[q.arm].m[v.metric][q.bucket].add(v.v)
		}
	}
	if i >= s.next {
		s.pending[i] = append(s.pending[i], vs...)
	}
}

func (s *multiSource) add(r synth.Request) {
	if r.Late {
		if i, ok := s.index[r.RequestID]; ok {
			if vs := lateValues(r); len(vs) > 0 {
				s.late++
				s.attach(i, vs)
			}
		}
		return
	}
	if r.Shadow {
		return
	}
	arm := armIndex(r.Variant == policy.Canary)
	if arm == 1 && s.from.IsZero() {
		s.from = r.TS
	}
	if s.from.IsZero() {
		return
	}
	b := policy.KeyBucket(r.Key)
	i := len(s.reqs)
	s.index[r.RequestID] = i
	s.reqs = append(s.reqs, multiRequest{ts: r.TS, arm: arm, bucket: b})
	s.requests[arm]++
	s.keys[arm][r.Key] = true
	a := &s.all[arm]
	a.m[mmError][b].add(b2f(r.Error))
	a.m[mmRefusal][b].add(b2f(r.Refusal))
	a.m[mmLatency][b].add(r.LatencyMS)
	a.m[mmCost][b].add(r.CostUSD)
	a.m[mmOutput][b].add(float64(r.OutputTokens))
	if s.bins[arm][b] == nil {
		s.bins[arm][b] = make([]float64, policy.QuantileBins)
	}
	bin := policy.QuantileBin(r.LatencyMS)
	s.bins[arm][b][bin]++
	s.dist[arm].bins[bin]++
	s.dist[arm].total++
	if vs := lateValues(r); len(vs) > 0 {
		s.attach(i, vs)
	}
}

// Stats answers the metrics q asks for: over every request, or the late ones over the requests up to
// q.RequestsTo.
func (s *multiSource) Stats(_ context.Context, q policy.Query) (*policy.Stats, error) {
	st := &policy.Stats{Unit: policy.UnitKey, From: s.from, RequestsTo: q.RequestsTo, LateRecords: s.late}
	wanted := map[string]bool{}
	for _, m := range q.Wanted() {
		wanted[m.Name] = true
	}
	sums, metrics := &s.all, []int{mmError, mmRefusal, mmLatency, mmCost, mmOutput, mmQuality, mmFeedback}
	if !q.RequestsTo.IsZero() {
		if q.RequestsTo.Before(s.cut) {
			return nil, errors.New("multiSource: the cut moved back")
		}
		s.cut = q.RequestsTo
		for ; s.next < len(s.reqs) && !s.reqs[s.next].ts.After(s.cut); s.next++ {
			r := s.reqs[s.next]
			for _, v := range s.pending[s.next] {
				s.matured[r.arm].m[v.metric][r.bucket].add(v.v)
			}
			delete(s.pending, s.next)
		}
		sums, metrics = &s.matured, []int{mmQuality, mmFeedback}
	}
	for i, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		a := st.Arm(arm)
		a.Requests, a.Keys = s.requests[i], int64(len(s.keys[i]))
		a.Metrics = map[string]policy.Sample{}
		for _, m := range metrics {
			if !wanted[multiMetric[m].name] {
				continue
			}
			if smp, ok := sums[i].sample(m); ok {
				a.Metrics[multiMetric[m].name] = smp
			}
		}
		if q.RequestsTo.IsZero() && wanted["latency_p95_ms"] && s.dist[i].total > 0 {
			lat, _ := sums[i].sample(mmLatency)
			cs := slices.Clone(lat.Clusters)
			for j := range cs {
				cs[j].Bins, cs[j].SumSquares = s.bins[i][cs[j].Bucket], 0
			}
			a.Metrics["latency_p95_ms"] = policy.Sample{Kind: policy.Quantile, N: lat.N, Sum: lat.Sum,
				Dist: &s.dist[i], Clusters: cs}
		}
	}
	return st, nil
}

// eightRules is a realistic analysis of an LLM canary: errors (absolute and relative), refusals,
// latency's mean and p95, cost, output tokens, the quality score and negative feedback.
func eightRules() []rollouts.Rule {
	return []rollouts.Rule{
		{Metric: "error_rate", Max: f64(0.02), MaxIncrease: maxIncrease(0.5)},
		{Metric: "refusal_rate", MaxIncrease: maxIncrease(1)},
		{Metric: "latency_mean_ms", MaxIncrease: maxIncrease(0.2)},
		{Metric: "latency_p95_ms", MaxIncrease: maxIncrease(0.3)},
		{Metric: "cost_per_request", MaxIncrease: maxIncrease(0.5)},
		{Metric: "output_tokens_per_request", MaxIncrease: maxIncrease(0.3)},
		{Metric: "quality_score", MaxDecrease: maxIncrease(0.05)},
		{Metric: "negative_feedback_rate", MaxIncrease: maxIncrease(0.5)},
	}
}

func f64(v float64) *float64 { return &v }

// eightRuleOutcome is how one eight-rule stage ended, and when each rule first passed.
type eightRuleOutcome struct {
	action    policy.Action
	hours     float64
	firstPass map[string]float64 // hours; absent: never passed
	holding   []string           // the rules not passing at the last tick
}

// eightRuleStage plays a healthy canary's 5% stage (400 canary requests an hour, 4,000 keyed users,
// feedback and scores arriving late, a mean of an hour after their request) judged on eightRules
// through policy.WithMaturity on every 15-minute tick for 36 hours.
func eightRuleStage(t testing.TB, seed int) eightRuleOutcome {
	spec := stageSpec(eightRules()...)
	opts := synth.Options{Seed: uint64(900 + seed), From: trafficStart, To: trafficStart.Add(36 * time.Hour),
		PerHour: 8000, Users: 4000, Activity: 1, KeyPrefix: fmt.Sprintf("s%d-user-", seed),
		LateFeedback: 1, LateDelay: time.Hour,
		Stable: synth.DefaultProfile("m-stable"), Canary: synth.DefaultProfile("m-canary")}
	src := newMultiSource()
	out := eightRuleOutcome{action: policy.Hold, hours: math.Inf(1), firstPass: map[string]float64{}}
	maturedTicks(t, spec, opts, src, func(now time.Time, d policy.Decision) bool {
		h := now.Sub(trafficStart).Hours()
		out.holding = out.holding[:0]
		for _, m := range d.Metrics {
			if m.Verdict == policy.Pass {
				if _, ok := out.firstPass[m.Name]; !ok {
					out.firstPass[m.Name] = h
				}
			} else {
				out.holding = append(out.holding, m.Name+": "+m.Reason)
			}
		}
		if d.Action == policy.Advance || d.Action == policy.Rollback {
			out.action, out.hours = d.Action, h
			return true
		}
		return false
	})
	return out
}

// TestEightRulesAdvance (issue 23, item 6): a healthy canary judged on eight rules at once
// (eightRules: nine limits; 400 canary requests an hour at 5%, keyed users, feedback and scores late
// and judged over matured requests) advances within 36 hours in most stages. The advance side is an
// intersection-union test, each limit at 1-advanceConfidence, so the stage waits for its slowest
// limit. The review found eight rules never advancing in 36 h; with this traffic they do. Target: at
// least 90% advanced within 36 h. Measured on these seeds: advanced 40 of 40, a median 12 h in with
// the two-arm clock n_c+n_s, 11.5 h with the information-equivalent clock (twoArmTime); the last rule
// to pass is negative_feedback_rate in 35 of 40 (a median 10.25 h in: the default 6-hour maturity
// window, then 40 thumbs an hour), quality_score next (7 h), every other rule within 3.5 h.
func TestEightRulesAdvance(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	runs := trafficRuns(t)
	var hours []float64
	advanced, rolledBack := 0, 0
	last := map[string]int{} // the rule that passed last, per advanced run
	firstPass := map[string][]float64{}
	for seed := range runs {
		out := eightRuleStage(t, seed)
		hours = append(hours, out.hours)
		switch out.action {
		case policy.Advance:
			advanced++
			slowest, at := "", -1.0
			for name, h := range out.firstPass {
				if h > at {
					slowest, at = name, h
				}
			}
			last[slowest]++
		case policy.Rollback:
			rolledBack++
		default:
			if os.Getenv("ROLLOUT_SIM_VERBOSE") != "" {
				t.Logf("seed %d held: %s", seed, strings.Join(out.holding, " | "))
			}
		}
		for name, h := range out.firstPass {
			firstPass[name] = append(firstPass[name], h)
		}
	}
	names := make([]string, 0, len(firstPass))
	for name := range firstPass {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Logf("  %s: first passed in %d of %d runs, a median %.2f h in; the last to pass in %d", name,
			len(firstPass[name]), runs, median(firstPass[name]), last[name])
	}
	t.Logf("eight rules, healthy canary at 400 canary requests an hour: advanced within 36 h in %s (target ≥ 90%%), a median %.2f h in; rolled back %s",
		rate(advanced, runs), median(hours), rate(rolledBack, runs))
	if float64(advanced)/float64(runs) < 0.9 {
		t.Errorf("advanced %s within 36 h, want ≥ 90%%", rate(advanced, runs))
	}
}
