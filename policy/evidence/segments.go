package evidence

import (
	"fmt"

	"github.com/rollout-dev/rollout/policy"
)

// segments is the table of each rule's worst segment (analysis.segments): the one that fails, else
// the one whose rollback end comes closest to the limit. Empty when the rollout judges no segments.
func segments(d policy.Decision) []string {
	var rows []string
	for _, m := range d.Metrics {
		s := m.Segment
		if s == nil {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %s | `%s` | %s | %s | %s | %s | %s |\n", Text(m.Name), code(s.Segment.String()),
			number(s.Stable.Value, s.Stable.N), number(s.Canary.Value, s.Canary.N), change(s.Stable, s.Canary),
			intervalCell(m.Rule, s.Interval), verdictCell(s.Verdict)))
	}
	if len(rows) == 0 {
		return nil
	}
	out := []string{"\n### Worst segment\n\nEach rule is also judged within every segment (analysis.segments) on the rollback side, its error budget split over the segments (Bonferroni); advancing still needs the pooled evidence above.\n\n" +
		"| metric | segment | stable | canary | change | interval | verdict |\n|---|---|---:|---:|---:|---|---|\n"}
	return append(out, rows...)
}
