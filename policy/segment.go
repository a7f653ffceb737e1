package policy

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/rollout-dev/rollout/rollouts"
)

// Segments: the fail side of every rule within each value of a request attribute.
//
// A regression confined to a tenth of the traffic (one language, one tenant, one route) is diluted
// tenfold in the pooled comparison. So when the spec names analysis.segments, each tick also judges
// every rule within each value of each named attribute (a segment) that has data, on the rollback side
// only: a failing segment rolls the canary back, while advancing still needs the pooled evidence.
//
// The error budget: with segments, each limit's rollback budget (see budgetOf) is halved; the pooled
// test (the whole window and its recent windows) keeps one half, the segments share the other, split
// evenly over the K segments of the stage (Bonferroni). Bonferroni because the segment tests are
// repeated on every tick over always-valid sequences and the union bound holds whatever their
// dependence, which keeps "a healthy canary is rolled back with probability at most 1-confidence"
// true with segments on; with a handful of segments, Holm or Šidák would gain little. K is the number
// of segment values the source reports in the stage's window (at most MaxSegmentValues per attribute),
// which settles within the stage's first minutes; a value that appears later lowers every segment's
// level.
//
// Each segment is its own comparison: the same rules, the same per-key units (a key whose requests
// carry several values counts in each), from the same start as the pooled window.

// Attr is one request attribute and a value of it: one segment, "language=de".
type Attr struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// String writes a as name=value.
func (a Attr) String() string { return a.Name + "=" + a.Value }

// ValidAttrName reports whether name can be a segment attribute: letters, digits and _, starting with
// a letter or _, as a JSON key, a SQL column and a Prometheus label all can (rollouts validates
// analysis.segments the same way; sources check again before a name reaches a query).
func ValidAttrName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// MaxSegmentValues bounds how many values of one attribute are judged as segments: the most frequent.
const MaxSegmentValues = 20

// SegmentStats is the statistics of one segment of a stage.
type SegmentStats struct {
	Segment Attr
	Stats   *Stats
}

// SegmentResult is the evidence of a rule in its worst segment: the one that fails, else the one whose
// rollback end comes closest to the limit.
type SegmentResult struct {
	Segment  Attr      `json:"segment"`
	Verdict  Verdict   `json:"verdict"`
	Stable   ArmValue  `json:"stable"`
	Canary   ArmValue  `json:"canary"`
	Reason   string    `json:"reason"`
	Interval *Interval `json:"interval"`
	// Segments is how many segments were judged for the rule (the Bonferroni divisor is the count of
	// segments of the stage).
	Segments int `json:"segments"`
}

// TopSegmentValues returns the values of counts, most frequent first (ties by value), at most
// MaxSegmentValues: what a source reports in Stats.SegmentValues. Empty values are left out.
func TopSegmentValues(counts map[string]int64) []string {
	out := make([]string, 0, len(counts))
	for v := range counts {
		if v != "" {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if len(out) > MaxSegmentValues {
		out = out[:MaxSegmentValues]
	}
	return out
}

// WithSegments returns a Source that answers a query naming Segments with src's statistics and, in
// Stats.Segments, those of each value src reports for each attribute (src asked again with the value
// as a Filter, from the pooled window's start). A segment query that fails fails the whole answer: a
// metrics outage never advances. A query without Segments goes to src unchanged.
func WithSegments(src Source) Source { return segmentSource{pooled: src, each: src} }

// ForTick returns the source a tick judges with: src's statistics of the stage's window and of its
// recent windows (WithRecent), late metrics over the requests old enough (WithMaturity), and each
// segment's statistics (WithSegments). Segments are judged over the whole window only, so a segment's
// query skips the recent windows: one query a segment, not one per window.
func ForTick(src Source) Source {
	matured := WithMaturity(src)
	return segmentSource{pooled: WithRecent(matured), each: matured}
}

// segmentSource asks pooled for the query's statistics and each for a segment's.
type segmentSource struct{ pooled, each Source }

func (s segmentSource) Stats(ctx context.Context, q Query) (*Stats, error) {
	st, err := s.pooled.Stats(ctx, q)
	if err != nil || st == nil || len(q.Segments) == 0 {
		return st, err
	}
	for _, name := range q.Segments {
		for _, v := range st.SegmentValues[name] {
			sq := q
			sq.Segments = nil
			sq.Filter = append(slices.Clone(q.Filter), Attr{Name: name, Value: v})
			if !st.From.IsZero() && st.From.After(sq.Window.From) {
				sq.Window.From = st.From
			}
			ss, err := s.each.Stats(ctx, sq)
			if err != nil {
				return nil, fmt.Errorf("segment %s=%s: %w", name, v, err)
			}
			if ss == st {
				c := *ss
				c.Segments = nil
				ss = &c
			}
			st.Segments = append(st.Segments, SegmentStats{Segment: Attr{Name: name, Value: v}, Stats: ss})
		}
	}
	return st, nil
}

// judgeSegments judges every rule of spec within each segment of stats, on the rollback side, records
// each rule's worst segment in results (which holds the pooled results, in the spec's order), and
// returns the sentences of the limits a segment shows broken, each naming its segment.
func judgeSegments(spec *rollouts.Spec, stats *Stats, results []RuleResult) []string {
	if len(spec.Analysis.Segments) == 0 || len(stats.Segments) == 0 || len(results) != len(spec.Analysis.Rules) {
		return nil
	}
	budget := budgetOf(spec, stats)
	b := errorBudget{fail: budget.segments / float64(len(stats.Segments)), pass: budget.pass}
	var failed []string
	worst := make([]float64, len(spec.Analysis.Rules))
	judged := make([]int, len(spec.Analysis.Rules))
	for _, seg := range stats.Segments {
		if seg.Stats == nil {
			continue
		}
		for i, r := range spec.Analysis.Rules {
			o := judgeRule(r, seg.Stats, b)
			for _, f := range o.failures {
				failed = append(failed, fmt.Sprintf("in segment %s (%d canary, %d stable requests): %s",
					seg.Segment, seg.Stats.Canary.Requests, seg.Stats.Stable.Requests, f))
			}
			score, ok := breachScore(r, o)
			if !ok {
				continue
			}
			judged[i]++
			if o.Verdict == Fail {
				score = math.Inf(1)
			}
			cur := results[i].Segment
			if cur == nil || score > worst[i] {
				worst[i] = score
				results[i].Segment = &SegmentResult{Segment: seg.Segment, Verdict: o.Verdict, Stable: o.Stable,
					Canary: o.Canary, Reason: o.Reason, Interval: o.Interval}
			}
		}
	}
	for i := range results {
		if results[i].Segment != nil {
			results[i].Segment.Segments = judged[i]
		}
	}
	return failed
}

// breachScore is how close o's rollback ends come to breaking their limits, on each limit's own scale
// (positive: broken), and false when o has no interval (too little data in the segment).
func breachScore(r rollouts.Rule, o ruleOutcome) (float64, bool) {
	limits := limitsOf(r)
	if len(o.Limits) != len(limits) {
		return 0, false
	}
	score, ok := math.Inf(-1), false
	for i, l := range limits {
		iv := o.Limits[i].Interval
		if iv == nil {
			continue
		}
		var s float64
		switch l.kind {
		case limitMaxIncrease, limitMax:
			s = iv.Low - l.value
		case limitMaxDecrease:
			s = -l.value - iv.High
		default:
			s = l.value - iv.High
		}
		score, ok = max(score, s), true
	}
	return score, ok
}
