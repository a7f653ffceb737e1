package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// Late metrics and their maturity window.
//
// Feedback and scores arrive after their request, each arm at its own pace: users of one model may
// take longer to give their thumbs, and the thumbs of unhappy users often come first. A late metric
// read over every request so far counts the values already in, so an arm whose good values come later
// looks worse than it is (a false rollback), and one whose values come sooner looks as it truly is
// while the other does not (a bad canary advancing). So a late metric is judged only over requests
// older than its maturity window (rollouts.MaturityOf: the rule's maturity, a default for the built-in
// late metrics), whose late values are all in by assumption, with every late record up to now: the
// comparison is of complete requests in both arms. The window is shown in the evidence.

// Matured is the window a late metric was read over.
type Matured struct {
	// Maturity is the metric's maturity window.
	Maturity rollouts.Duration `json:"maturity"`
	// RequestsTo: only requests up to it were read (their late values up to the window's end).
	RequestsTo time.Time `json:"requestsTo"`
	// Applied is false where the source cannot leave out the later requests: then every request was
	// read, and the evidence says so.
	Applied bool `json:"applied"`
}

// words is the note the evidence adds to a late metric's sentence.
func (m Matured) words() string {
	if !m.Applied {
		return fmt.Sprintf("maturity %s not applied: the source cannot leave out recent requests, so late values still on their way are missing from both arms", m.Maturity)
	}
	return fmt.Sprintf("over requests up to %s only: late values take up to %s (maturity)", m.RequestsTo.UTC().Format("2006-01-02 15:04 UTC"), m.Maturity)
}

// WithMaturity returns a Source that answers each query with src's statistics and, for each metric
// the query gives a maturity window (a default one only where the source attached late records in
// the window, Stats.LateRecords), the statistics of that metric over the requests at least that old
// (Query.RequestsTo), one extra query per distinct window, noted in Stats.Matured. A metric no
// request is old enough for yet has no data. A failing extra query fails the answer.
func WithMaturity(src Source) Source { return maturitySource{src} }

type maturitySource struct{ src Source }

func (m maturitySource) Stats(ctx context.Context, q Query) (*Stats, error) {
	st, err := m.src.Stats(ctx, q)
	if err != nil || st == nil {
		return st, err
	}
	groups := map[time.Duration][]MetricQuery{}
	for _, mq := range q.Metrics {
		if mq.Maturity > 0 && (!mq.DefaultMaturity || st.LateRecords > 0) {
			groups[mq.Maturity] = append(groups[mq.Maturity], mq)
		}
	}
	if len(groups) == 0 {
		return st, nil
	}
	// The maps may be the source's own: write copies.
	for _, arm := range []Arm{Stable, Canary} {
		a := st.Arm(arm)
		a.Metrics = maps.Clone(a.Metrics)
		if a.Metrics == nil {
			a.Metrics = map[string]Sample{}
		}
	}
	st.Matured = maps.Clone(st.Matured)
	if st.Matured == nil {
		st.Matured = map[string]Matured{}
	}
	for _, maturity := range slices.Sorted(maps.Keys(groups)) {
		group := groups[maturity]
		cut := q.Window.To.Add(-maturity)
		info := Matured{Maturity: rollouts.Duration(maturity), RequestsTo: cut, Applied: true}
		var ms *Stats
		if cut.After(q.Window.From) {
			mq := q
			mq.Metrics, mq.RequestsTo = group, cut
			ms, err = m.src.Stats(ctx, mq)
			if err != nil {
				names := make([]string, len(group))
				for i, g := range group {
					names[i] = g.Name
				}
				return nil, fmt.Errorf("%s over requests up to %s: %w", strings.Join(names, ", "), cut.UTC().Format(time.RFC3339), err)
			}
			info.Applied = ms != nil && ms != st && ms.RequestsTo.Equal(cut)
		}
		for _, g := range group {
			st.Matured[g.Name] = info
			if !info.Applied && ms != nil {
				continue // the source read every request: keep the whole window's
			}
			for _, arm := range []Arm{Stable, Canary} {
				delete(st.Arm(arm).Metrics, g.Name)
				if ms == nil {
					continue
				}
				if s, ok := ms.Arm(arm).Metrics[g.Name]; ok {
					st.Arm(arm).Metrics[g.Name] = s
				}
			}
		}
	}
	return st, nil
}
