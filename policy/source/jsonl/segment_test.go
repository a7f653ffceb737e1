package jsonl

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

// segmentRecords holds requests with attrs (escaped, null, repeated, missing), late feedback and
// pairwise verdicts on them, and malformed attrs and verdicts.
const segmentRecords = `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","key":"u1","request_id":"c1","error":true,"attrs":{"language":"de","tenant":"acme"}}
{"ts":"2026-04-16T10:00:01Z","rollout":"r","variant":"stable","key":"u2","request_id":"s1","error":false,"attrs":{"language":"de"}}
{"ts":"2026-04-16T10:00:02Z","rollout":"r","variant":"stable","key":"u3","request_id":"s2","error":true,"attrs":{"language":"en","tenant":"acme"}}
{"ts":"2026-04-16T10:00:03Z","rollout":"r","variant":"canary","key":"u4","request_id":"c2","error":false,"attrs":{"language":"\u0065n","language":"fr"}}
{"ts":"2026-04-16T10:00:04Z","rollout":"r","variant":"canary","key":"u5","request_id":"c3","error":false,"attrs":{"language":null}}
{"ts":"2026-04-16T10:00:05Z","rollout":"r","variant":"canary","key":"u6","request_id":"c4","error":false}
{"ts":"2026-04-16T10:00:06Z","rollout":"r","variant":"canary","key":"u7","request_id":"c5","error":false,"attrs":{"language":"de"}}
{"ts":"2026-04-16T10:00:07Z","rollout":"r","variant":"canary","key":"u8","error":false,"attrs":{"language":3}}
{"ts":"2026-04-16T10:00:08Z","rollout":"r","variant":"canary","key":"u8","error":false,"attrs":["de"]}
{"ts":"2026-04-16T10:05:00Z","rollout":"r","request_id":"c1","feedback":-1}
{"ts":"2026-04-16T10:05:01Z","rollout":"r","request_id":"c1","preferred":"stable"}
{"ts":"2026-04-16T10:05:02Z","rollout":"r","request_id":"s1","preferred":"tie"}
{"ts":"2026-04-16T10:05:03Z","rollout":"r","request_id":"c2","preferred":"canary"}
{"ts":"2026-04-16T10:05:04Z","rollout":"r","request_id":"c5","preferred":"stable"}
{"ts":"2026-04-16T10:05:05Z","rollout":"r","request_id":"c5","preferred":"canary"}
{"ts":"2026-04-16T10:05:06Z","rollout":"r","request_id":"c3","preferred":"both"}
`

func segmentStats(t *testing.T, q policy.Query) *policy.Stats {
	t.Helper()
	q.Rollout = "r"
	q.Metrics = []policy.MetricQuery{{Name: "error_rate"}, {Name: "negative_feedback_rate"}, {Name: "canary_win_rate"}}
	st, err := new(Source).Read(context.Background(), strings.NewReader(segmentRecords), q)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSegmentValuesAndFilter(t *testing.T) {
	all := segmentStats(t, policy.Query{Segments: []string{"language", "tenant", "route"}})
	// de: c1, s1, c5; en: s2 (an escaped value read as such: c2's first language is overridden); fr:
	// c2 (the last of a repeated name wins); c3 (null) and c4 (no attrs) carry none.
	if got, want := all.SegmentValues["language"], []string{"de", "en", "fr"}; !slices.Equal(got, want) {
		t.Errorf("language values = %q, want %q (most frequent first)", got, want)
	}
	if got, want := all.SegmentValues["tenant"], []string{"acme"}; !slices.Equal(got, want) {
		t.Errorf("tenant values = %q, want %q", got, want)
	}
	if got := all.SegmentValues["route"]; len(got) != 0 {
		t.Errorf("route values = %q, want none", got)
	}
	// Two malformed attrs and one malformed verdict, each reported with its line.
	if all.Malformed != 3 || !slices.Equal(all.MalformedLines, []int64{8, 9, 16}) {
		t.Errorf("malformed = %d on lines %v, want 3 on lines 8, 9, 16 (%q)", all.Malformed, all.MalformedLines, all.MalformedReasons)
	}

	de := segmentStats(t, policy.Query{Filter: []policy.Attr{{Name: "language", Value: "de"}}})
	if de.Canary.Requests != 2 || de.Stable.Requests != 1 {
		t.Fatalf("language=de: canary %d, stable %d requests, want 2 and 1", de.Canary.Requests, de.Stable.Requests)
	}
	if e := de.Canary.Metrics["error_rate"]; e.N != 2 || e.Sum != 1 {
		t.Errorf("language=de canary errors %v/%d, want 1/2", e.Sum, e.N)
	}
	if f := de.Canary.Metrics["negative_feedback_rate"]; f.N != 1 || f.Sum != 1 {
		t.Errorf("language=de late feedback %v/%d, want 1/1: a late record follows its request into the segment", f.Sum, f.N)
	}
	if de.LateUnmatched != 0 {
		t.Errorf("LateUnmatched = %d in a segment: late records of other segments' requests are not unmatched", de.LateUnmatched)
	}
	// c1 stable (0), s1 tie (0.5), c5 stable then canary (the latest wins: 1).
	if w := de.Canary.Metrics["canary_win_rate"]; w.N != 3 || w.Sum != 1.5 {
		t.Errorf("language=de canary_win_rate %v/%d, want 1.5/3", w.Sum, w.N)
	}
	if _, ok := de.Stable.Metrics["canary_win_rate"]; ok && de.Stable.Metrics["canary_win_rate"].N != 0 {
		t.Errorf("stable carries pairwise verdicts: %+v", de.Stable.Metrics["canary_win_rate"])
	}

	both := segmentStats(t, policy.Query{Filter: []policy.Attr{{Name: "language", Value: "de"}, {Name: "tenant", Value: "acme"}}})
	if both.Canary.Requests != 1 || both.Stable.Requests != 0 {
		t.Errorf("language=de, tenant=acme: canary %d, stable %d, want 1 and 0", both.Canary.Requests, both.Stable.Requests)
	}
	fr := segmentStats(t, policy.Query{Filter: []policy.Attr{{Name: "language", Value: "fr"}}})
	if fr.Canary.Requests != 1 {
		t.Errorf("language=fr (a repeated name, the last wins): canary %d, want 1", fr.Canary.Requests)
	}
}

func TestWinRateWholeWindow(t *testing.T) {
	st := segmentStats(t, policy.Query{Window: policy.Window{To: time.Date(2026, 4, 17, 0, 0, 0, 0, time.UTC)}})
	// c1 0, s1 0.5, c2 1, c5 1; c3's "both" is malformed.
	if w := st.Canary.Metrics["canary_win_rate"]; w.Kind != policy.Proportion || w.N != 4 || w.Sum != 2.5 {
		t.Errorf("canary_win_rate = %+v, want a proportion of 2.5/4", w)
	}
	if !strings.Contains(strings.Join(st.MalformedReasons, "|"), `preferred must be "canary", "stable" or "tie"`) {
		t.Errorf("reasons %q do not say what preferred may be", st.MalformedReasons)
	}
}

func TestSegmentsThroughPolicy(t *testing.T) {
	src := policy.WithSegments(sourceFunc(func(ctx context.Context, q policy.Query) (*policy.Stats, error) {
		q.Rollout = "r"
		return new(Source).Read(ctx, strings.NewReader(segmentRecords), q)
	}))
	st, err := src.Stats(context.Background(), policy.Query{Rollout: "r", Segments: []string{"language"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range st.Segments {
		got = append(got, s.Segment.String())
	}
	if want := []string{"language=de", "language=en", "language=fr"}; !slices.Equal(got, want) {
		t.Errorf("segments %q, want %q", got, want)
	}
}

type sourceFunc func(context.Context, policy.Query) (*policy.Stats, error)

func (f sourceFunc) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	return f(ctx, q)
}
