package evidence

import (
	"github.com/rollout-dev/rollout/policy"
)

// segments is the table of each rule's worst segment (analysis.segments): the one that fails, else
// the one whose rollback end comes closest to the limit. Empty when the rollout judges no segments.
func segments(d policy.Decision) []string {
	var rows []Row
	for _, m := range d.Metrics {
		s := m.Segment
		if s == nil {
			continue
		}
		rows = append(rows, Row{Metric: m.Name + " in " + s.Segment.String(), Stable: arm(m.Name, s.Stable), Canary: arm(m.Name, s.Canary),
			Change: change(s.Stable, s.Canary), Interval: interval(m.Name, m.Rule, s.Interval), Limit: ruleLimits(m.Name, m.Rule), Verdict: s.Verdict})
	}
	if len(rows) == 0 {
		return nil
	}
	return []string{"\n### Worst segment\n\nEach rule is also judged within every segment (analysis.segments) on the rollback side, its error budget split over the segments (Bonferroni); advancing still needs the pooled evidence above.\n\n" +
		MarkdownTable(rows)}
}
