// Package synth is the one synthetic-traffic generator of the project: tests, the demo, the examples'
// traffic files, the benchmarks and `rollout simulate` all draw their LLM requests here.
//
// Simulate draws what a rollout's application serves: users with many requests each, per-user
// propensities (some users fail far more, some are slower), a daily cycle, a deploy lag before the
// canary serves, regressions from a time or a weight on, late feedback, and variants assigned by the
// spec's own rollouts.Assigner, all deterministic from a seed. WriteJSONL writes it as JSON Lines
// request records (the `file:` source), Insert as rows of the PostgreSQL source's tables:
//
//	err := synth.WriteJSONL(w, spec, synth.Options{Seed: 1, From: start, To: start.Add(24 * time.Hour),
//		PerHour: 400, Users: 2000, Stable: synth.DefaultProfile("model-a"), Canary: synth.DefaultProfile("model-b")})
//
// Generate is the simpler fixed-count mode (so many requests per arm, independent users) that the
// sources' cross-checks use, and Expected computes from raw requests the statistics every source should
// report, so that the file, Prometheus and SQL sources are checked against the same truth.
//
// It belongs to the policy room, beside the sources whose tests it feeds: it writes the same traffic into
// every store and computes the exact policy.Stats a source must return for it.
package synth

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// Request is one synthetic request, with the fields of the contract's JSONL record.
type Request struct {
	TS      time.Time
	Rollout string
	Variant policy.Arm
	Shadow  bool // a mirrored canary call
	Key     string
	Model   string
	Prompt  string
	// RequestID identifies the request, so that late feedback can attach to it.
	RequestID string
	// Late marks a late feedback record: only TS, Rollout, RequestID, Feedback and Quality are set.
	Late         bool
	LatencyMS    float64
	Error        bool
	Refusal      bool
	InputTokens  int
	OutputTokens int
	CostUSD      float64
	Quality      *float64
	Feedback     *int // -1, 0 or 1
	// Attrs are the request's segment attributes (its user's, see Options.Segments); shared between
	// the requests of one user: read only.
	Attrs map[string]string
	// Preferred is a late record's pairwise verdict: "canary", "stable" or "tie" (see
	// Profile.PairwiseShare).
	Preferred string
}

// Profile is how one arm behaves. Generate reads the fields up to NegativeRate (with fixed token,
// quality and feedback shares); Simulate reads them all.
type Profile struct {
	Model         string
	LatencyMedian float64 // ms, lognormal
	LatencySigma  float64
	ErrorRate     float64
	RefusalRate   float64
	// CostPerToken prices a request: (input + 4 × output tokens) × CostPerToken.
	CostPerToken float64
	Quality      float64 // mean quality score in [0,1]
	NegativeRate float64 // share of feedback that is negative

	Prompt string
	// InputTokensMean and OutputTokensMean are the means of exponential token counts (1100 and 275
	// when zero); an errored request has no output.
	InputTokensMean, OutputTokensMean float64
	// QualityShare is the share of successful requests that get a quality score, QualitySD its spread
	// (0.1 when zero).
	QualityShare, QualitySD float64
	// FeedbackShare is the share of successful requests with user feedback; NeutralRate of it is 0,
	// NegativeRate -1, the rest +1.
	FeedbackShare, NeutralRate float64
	// LateDelay and NegativeLateDelay, when set, are this arm's mean delays of late records (see
	// Options.LateDelay and Options.NegativeLateDelay): the canary's users may give their thumbs later
	// or sooner than stable's.
	LateDelay, NegativeLateDelay time.Duration
	// PairwiseShare is the share of the canary's requests that a judge compares with the stable
	// answer for the same input (Simulate; read from the canary's profile): each gets a late pairwise
	// record, PairwiseDelay after it on average, that prefers the canary with probability WinRate,
	// calls a tie with TieRate, and prefers stable otherwise.
	PairwiseShare, WinRate, TieRate float64
	PairwiseDelay                   time.Duration
}

func (p Profile) inputMean() float64  { return cmp.Or(p.InputTokensMean, 1100) }
func (p Profile) outputMean() float64 { return cmp.Or(p.OutputTokensMean, 275) }
func (p Profile) qualitySD() float64  { return cmp.Or(p.QualitySD, 0.1) }

// DefaultProfile is a plausible arm for Simulate: 1% errors, 2% refusals, ~800 ms median latency, ~1,200
// input and ~300 output tokens, quality around 0.85 on a fifth of the requests, feedback on a tenth
// (10% negative, 30% neutral).
func DefaultProfile(model string) Profile {
	return Profile{Model: model, Prompt: "v3", LatencyMedian: 800, LatencySigma: 0.5, ErrorRate: 0.01, RefusalRate: 0.02,
		CostPerToken: 3e-6, Quality: 0.85, NegativeRate: 0.1, InputTokensMean: 1200, OutputTokensMean: 300,
		QualityShare: 0.2, QualitySD: 0.08, FeedbackShare: 0.1, NeutralRate: 0.3}
}

// Stable is a healthy stable arm.
var Stable = Profile{Model: "model-stable", LatencyMedian: 400, LatencySigma: 0.5, ErrorRate: 0.02, RefusalRate: 0.01,
	CostPerToken: 2e-6, Quality: 0.85, NegativeRate: 0.1}

// Traffic describes a window of traffic for one rollout.
type Traffic struct {
	Rollout string
	From    time.Time
	To      time.Time
	// Requests per arm.
	Stable, Canary int
	// ShadowShare is the share of canary requests that are mirrored calls.
	ShadowShare   float64
	StableProfile Profile
	CanaryProfile Profile
	// Segments gives each key one value of each attribute, in its requests' attrs.
	Segments []SegmentShares
}

// Generate returns the requests of tr, seeded, sorted by time, every one strictly inside (From, To).
func Generate(tr Traffic, seed uint64) []Request {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	span := tr.To.Sub(tr.From)
	var out []Request
	add := func(arm policy.Arm, p Profile, n int) {
		for i := 0; i < n; i++ {
			// Whole milliseconds, at least 1 ms inside the window, as every store keeps them.
			at := tr.From.Add(time.Duration(1+r.Int64N(span.Milliseconds()-1)) * time.Millisecond)
			req := Request{
				TS: at, Rollout: tr.Rollout, Variant: arm, Model: p.Model,
				Key:       "u-" + itoa(r.IntN(100000)),
				LatencyMS: math.Round(p.LatencyMedian*math.Exp(p.LatencySigma*r.NormFloat64())*10) / 10,
			}
			req.Attrs = keyAttrs(seed, req.Key, tr.Segments)
			if arm == policy.Canary && tr.ShadowShare > 0 {
				req.Shadow = r.Float64() < tr.ShadowShare
			}
			switch u := r.Float64(); {
			case u < p.ErrorRate:
				req.Error = true
			case u < p.ErrorRate+p.RefusalRate:
				req.Refusal = true
			}
			req.InputTokens = 200 + r.IntN(1800)
			req.OutputTokens = 50 + r.IntN(450)
			req.CostUSD = float64(req.InputTokens+4*req.OutputTokens) * p.CostPerToken
			if r.Float64() < 0.8 {
				q := math.Min(1, math.Max(0, p.Quality+0.1*r.NormFloat64()))
				q = math.Round(q*1000) / 1000
				req.Quality = &q
			}
			if r.Float64() < 0.3 {
				f := 1
				switch u := r.Float64(); {
				case u < p.NegativeRate:
					f = -1
				case u < p.NegativeRate+0.3:
					f = 0
				}
				req.Feedback = &f
			}
			out = append(out, req)
		}
	}
	add(policy.Stable, tr.StableProfile, tr.Stable)
	add(policy.Canary, tr.CanaryProfile, tr.Canary)
	if tr.Canary > 0 {
		// The first canary request opens the window, so that sources that compare both arms from the
		// first canary record and those that cannot tell (Prometheus) count the same requests.
		out[tr.Stable].TS = tr.From.Add(time.Millisecond)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].TS.Before(out[j].TS) })
	return out
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

// BuiltinMetrics are the names of the contract's built-in metrics.
var BuiltinMetrics = []string{"error_rate", "refusal_rate", "negative_feedback_rate", "latency_mean_ms",
	"latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "cost_per_request", "input_tokens_per_request",
	"output_tokens_per_request", "quality_score"}

// Expected computes, from the raw requests of rollout, the statistics a source should report for the window: exact
// counts, sums and sums of squares, and for the quantile metrics the exact sorted observations.
func Expected(reqs []Request, rollout string, w policy.Window) *policy.Stats {
	return ExpectedFor(reqs, policy.Query{Rollout: rollout, Window: w})
}

// ExpectedFor is Expected for a whole query, as the contract counts: both arms from the first
// canary record in the window, keys matched by q.NotRandomised left out (and counted), late records
// attached to their requests, exact distinct keys per arm, and the sums per key bucket (a keyless
// request bucketed by its request_id) in Clusters. With q.Filter, only the requests whose attrs hold
// its values count (their late records follow them); with q.Segments, SegmentValues holds the values
// of the requests in the window, most frequent first.
func ExpectedFor(reqs []Request, q policy.Query) *policy.Stats {
	rollout, w := q.Rollout, q.Window
	st := &policy.Stats{Unit: policy.UnitKey, KeysExact: true}
	if len(q.Filter) > 0 {
		var kept []Request
		for _, r := range reqs {
			if r.Late || matches(q.Filter, r) {
				kept = append(kept, r)
			}
		}
		reqs = kept
	}
	if len(q.Segments) > 0 {
		st.SegmentValues = map[string][]string{}
		for _, name := range q.Segments {
			counts := map[string]int64{}
			for _, r := range reqs {
				if !r.Late && r.Rollout == rollout && !r.TS.Before(w.From) && !r.TS.After(w.To) && r.Attrs[name] != "" {
					counts[r.Attrs[name]]++
				}
			}
			st.SegmentValues[name] = policy.TopSegmentValues(counts)
		}
	}
	var first time.Time
	for _, r := range attachLate(reqs, rollout, w.To) {
		if r.Variant == policy.Canary && !r.TS.Before(w.From) && !r.TS.After(w.To) && !afterRequests(q, r) && !notRandomised(q, r) &&
			(first.IsZero() || r.TS.Before(first)) {
			first = r.TS
		}
	}
	st.From = first
	st.RequestsTo = q.RequestsTo
	keys := map[policy.Arm]map[string]bool{policy.Stable: {}, policy.Canary: {}}
	clusters := map[policy.Arm]map[string]map[int]*policy.Cluster{policy.Stable: {}, policy.Canary: {}}
	cluster := func(arm policy.Arm, metric string, r Request) *policy.Cluster {
		unit := r.Key
		if unit == "" {
			unit = r.RequestID
		}
		b := policy.KeyBucket(unit)
		if clusters[arm][metric] == nil {
			clusters[arm][metric] = map[int]*policy.Cluster{}
		}
		c := clusters[arm][metric][b]
		if c == nil {
			c = &policy.Cluster{Bucket: b}
			clusters[arm][metric][b] = c
		}
		return c
	}
	addCluster := func(arm policy.Arm, metric string, r Request, v float64) {
		c := cluster(arm, metric, r)
		c.N++
		c.Sum += v
		c.SumSquares += v * v
	}
	type acc struct{ n, sum, ss float64 }
	type armAcc struct {
		requests                        int64
		errors, refusals, fbN, fbNeg    float64
		latency, cost, in, out, quality acc
		latencies                       []float64
	}
	arms := map[policy.Arm]*armAcc{policy.Stable: {}, policy.Canary: {}}
	addTo := func(a *acc, v float64) { a.n++; a.sum += v; a.ss += v * v }
	reqs = attachLate(reqs, rollout, w.To)
	for _, r := range reqs {
		if r.Late || r.Rollout != rollout || r.TS.Before(w.From) || r.TS.After(w.To) || afterRequests(q, r) {
			continue
		}
		if notRandomised(q, r) {
			st.NotRandomised++
			continue
		}
		if !first.IsZero() && r.TS.Before(first) {
			continue
		}
		a := arms[r.Variant]
		a.requests++
		keys[r.Variant][r.Key] = true
		addCluster(r.Variant, "error_rate", r, b2f(r.Error))
		addCluster(r.Variant, "refusal_rate", r, b2f(r.Refusal))
		addCluster(r.Variant, "latency_mean_ms", r, r.LatencyMS)
		addCluster(r.Variant, "cost_per_request", r, r.CostUSD)
		addCluster(r.Variant, "input_tokens_per_request", r, float64(r.InputTokens))
		addCluster(r.Variant, "output_tokens_per_request", r, float64(r.OutputTokens))
		if r.Quality != nil {
			addCluster(r.Variant, "quality_score", r, *r.Quality)
		}
		if r.Feedback != nil {
			addCluster(r.Variant, "negative_feedback_rate", r, b2f(*r.Feedback < 0))
		}
		c := cluster(r.Variant, "latency_p95_ms", r)
		if c.Bins == nil {
			c.Bins = make([]float64, policy.QuantileBins)
		}
		c.N++
		c.Sum += r.LatencyMS
		c.SumSquares += r.LatencyMS * r.LatencyMS
		c.Bins[policy.QuantileBin(r.LatencyMS)]++
		if r.Shadow {
			st.Shadow++
		}
		if r.Error {
			a.errors++
		}
		if r.Refusal {
			a.refusals++
		}
		addTo(&a.latency, r.LatencyMS)
		a.latencies = append(a.latencies, r.LatencyMS)
		addTo(&a.cost, r.CostUSD)
		addTo(&a.in, float64(r.InputTokens))
		addTo(&a.out, float64(r.OutputTokens))
		if r.Quality != nil {
			addTo(&a.quality, *r.Quality)
		}
		if r.Feedback != nil {
			a.fbN++
			if *r.Feedback < 0 {
				a.fbNeg++
			}
		}
	}
	for arm, a := range arms {
		as := st.Arm(arm)
		as.Requests = a.requests
		as.Keys = int64(len(keys[arm]))
		as.Metrics = map[string]policy.Sample{}
		if a.requests == 0 {
			continue
		}
		prop := func(events, n float64) policy.Sample {
			return policy.Sample{Kind: policy.Proportion, N: int64(n), Sum: events}
		}
		mean := func(c acc) policy.Sample {
			return policy.Sample{Kind: policy.Mean, N: int64(c.n), Sum: c.sum, SumSquares: c.ss}
		}
		as.Metrics["error_rate"] = prop(a.errors, float64(a.requests))
		as.Metrics["refusal_rate"] = prop(a.refusals, float64(a.requests))
		if a.fbN > 0 {
			as.Metrics["negative_feedback_rate"] = prop(a.fbNeg, a.fbN)
		}
		as.Metrics["latency_mean_ms"] = mean(a.latency)
		sort.Float64s(a.latencies)
		exact := Exact(a.latencies)
		for _, name := range []string{"latency_p50_ms", "latency_p95_ms", "latency_p99_ms"} {
			as.Metrics[name] = policy.Sample{Kind: policy.Quantile, N: a.requests, Sum: a.latency.sum, Dist: exact}
		}
		as.Metrics["cost_per_request"] = mean(a.cost)
		as.Metrics["input_tokens_per_request"] = mean(a.in)
		as.Metrics["output_tokens_per_request"] = mean(a.out)
		if a.quality.n > 0 {
			as.Metrics["quality_score"] = mean(a.quality)
		}
		for name, s := range as.Metrics {
			source := name
			if s.Kind == policy.Quantile {
				source = "latency_p95_ms"
			}
			for _, c := range clusters[arm][source] {
				s.Clusters = append(s.Clusters, *c)
			}
			sort.Slice(s.Clusters, func(i, j int) bool { return s.Clusters[i].Bucket < s.Clusters[j].Bucket })
			as.Metrics[name] = s
		}
	}
	return st
}

// afterRequests reports whether r is after the query's RequestsTo (a query for matured requests).
func afterRequests(q policy.Query, r Request) bool {
	return !q.RequestsTo.IsZero() && r.TS.After(q.RequestsTo)
}

// matches reports whether r's attrs hold every value of filter.
func matches(filter []policy.Attr, r Request) bool {
	for _, f := range filter {
		if v, ok := r.Attrs[f.Name]; !ok || v != f.Value {
			return false
		}
	}
	return true
}

func notRandomised(q policy.Query, r Request) bool {
	return r.Key != "" && rollouts.MatchesAny(q.NotRandomised, r.Key)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// DiffClusters lists the differences between the sums per key bucket of want and got, beyond a
// relative tolerance rel (bins compared exactly).
func DiffClusters(want, got *policy.Stats, rel float64) []string {
	var diffs []string
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		for name, ws := range want.Arm(arm).Metrics {
			gs := got.Arm(arm).Metrics[name]
			if len(gs.Clusters) != len(ws.Clusters) {
				diffs = append(diffs, fmt.Sprintf("%s %s: %d clusters, want %d", arm, name, len(gs.Clusters), len(ws.Clusters)))
				continue
			}
			byBucket := map[int]policy.Cluster{}
			for _, c := range gs.Clusters {
				byBucket[c.Bucket] = c
			}
			for _, w := range ws.Clusters {
				g, ok := byBucket[w.Bucket]
				if !ok || g.N != w.N || !near(g.Sum, w.Sum, rel) || !near(g.SumSquares, w.SumSquares, rel) {
					diffs = append(diffs, fmt.Sprintf("%s %s bucket %d = %+v, want %+v", arm, name, w.Bucket, g, w))
					continue
				}
				if ws.Kind == policy.Quantile && len(g.Bins) > 0 {
					for i := range w.Bins {
						if g.Bins[i] != w.Bins[i] {
							diffs = append(diffs, fmt.Sprintf("%s %s bucket %d bin %d = %g, want %g", arm, name, w.Bucket, i, g.Bins[i], w.Bins[i]))
							break
						}
					}
				}
			}
		}
	}
	return diffs
}

// Exact is the Distribution of sorted observations themselves.
type Exact []float64

var _ policy.Distribution = Exact(nil)

// Count is the number of observations.
func (e Exact) Count() float64 { return float64(len(e)) }

// Quantile returns the smallest observation at or above rank q.
func (e Exact) Quantile(q float64) float64 {
	if len(e) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(e)))) - 1
	return e[min(max(i, 0), len(e)-1)]
}

// CountAbove returns the number of observations greater than x.
func (e Exact) CountAbove(x float64) float64 {
	return float64(len(e) - sort.Search(len(e), func(i int) bool { return e[i] > x }))
}

// attachLate returns reqs with each late record of rollout up to `to` applied to its request (the
// latest value of each field wins), leaving reqs itself unchanged.
func attachLate(reqs []Request, rollout string, to time.Time) []Request {
	index := map[string]int{}
	var out []Request
	for _, r := range reqs {
		if r.Rollout != rollout {
			continue
		}
		if !r.Late {
			if r.RequestID != "" {
				index[r.RequestID] = len(out)
			}
			out = append(out, r)
			continue
		}
		i, ok := index[r.RequestID]
		if !ok || r.TS.After(to) {
			continue
		}
		if r.Feedback != nil {
			out[i].Feedback = r.Feedback
		}
		if r.Quality != nil {
			out[i].Quality = r.Quality
		}
	}
	return out
}
