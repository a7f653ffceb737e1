package report

import (
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/policy/evidence"
)

// Markdown is the report's summary for a GitHub job summary: per rollout, its phase and weight and a
// table of its newest stage's rules (verdict and interval at the last tick), each row naming its chart
// file as Charts names it. A job summary shows no local image, so the charts travel in the artifact
// the summary names; every string from a spec or a commit is escaped.
func Markdown(p Page, artifact string) string {
	var b strings.Builder
	b.WriteString("### rollout report\n\n")
	fmt.Fprintf(&b, "From %s to %s, the judge replayed every %s.", p.Since.UTC().Format("2006-01-02 15:04 MST"),
		p.Now.UTC().Format("2006-01-02 15:04 MST"), strings.TrimSuffix(strings.TrimSuffix(p.Every.String(), "0s"), "0m"))
	if artifact != "" {
		fmt.Fprintf(&b, " The page (index.html) and each chart below (SVG) are in the artifact `%s`.", evidence.Text(artifact))
	}
	b.WriteString("\n")
	for _, problem := range p.Problems {
		fmt.Fprintf(&b, "\n> %s\n", evidence.Text(problem))
	}
	if len(p.Rollouts) == 0 {
		b.WriteString("\n_No rollouts._\n")
	}
	for _, r := range p.Rollouts {
		fmt.Fprintf(&b, "\n#### %s: %s, weight %d%%\n\n", evidence.Text(r.Name), evidence.Text(r.Phase), r.Weight)
		fmt.Fprintf(&b, "%d weight changes in the span; chart `%s`.\n", len(r.Changes), fileName(r.Name, "weight"))
		if len(r.Stages) == 0 {
			b.WriteString("\nNo stage in the span.\n")
		} else {
			st := r.Stages[0]
			fmt.Fprintf(&b, "\nStage %d (weight %d%%), %d ticks:\n\n| rule | limit | at the last tick | interval | chart |\n|---|---|---|---|---|\n",
				st.Index, st.Weight, st.Ticks)
			for _, s := range st.Rules {
				kind, _, _ := strings.Cut(s.Limit, " ")
				fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", cell(s.Rule), cell(s.Limit), cell(lastVerdict(s)), cell(lastInterval(s)),
					fileName(r.Name, fmt.Sprintf("stage%d", st.Index), s.Rule, kind))
			}
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "\n> %s\n", evidence.Text(n))
		}
	}
	return b.String()
}

// cell escapes a table cell: evidence.Text leaves no pipe, line break or HTML.
func cell(s string) string { return evidence.Text(s) }
