package evidence

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// Row is one line of the evidence table, as plain text: the terminal, the pull request body and
// `plan --format markdown` all print these rows, so they show the same columns with the same units
// and separators. A caller may append rows of its own (a segment, a projection) before printing.
type Row struct {
	Metric string
	// Stable and Canary are an arm's value in the metric's unit and its observations: "1.11% (n=48,210)",
	// or "no data".
	Stable, Canary string
	// Change is canary ÷ stable − 1 ("+5.4%"), "—" when it cannot be computed.
	Change string
	// Interval is the always-valid interval on the limit's own scale: a relative change for maxIncrease
	// and maxDecrease, the metric's value for max and min; "—" when there is none.
	Interval string
	// Limit is the limit as the spec sets it, in the metric's unit: "maxIncrease +50%", "max 2%".
	Limit   string
	Verdict policy.Verdict
}

// Columns are the headings of the evidence table, in order.
var Columns = []string{"metric", "stable", "canary", "change", "interval", "limit", "verdict"}

// cells returns the row's columns in the order of Columns.
func (r Row) cells() []string {
	return []string{r.Metric, r.Stable, r.Canary, r.Change, r.Interval, r.Limit, string(r.Verdict)}
}

// Rows returns the evidence table of a decision: one row per limit of each rule (each interval on its
// limit's own scale, so a relative interval never sits next to an absolute limit), one row for a rule
// without limit results.
func Rows(d policy.Decision) []Row {
	var out []Row
	for _, m := range d.Metrics {
		base := Row{Metric: m.Name, Stable: arm(m.Name, m.Stable), Canary: arm(m.Name, m.Canary),
			Change: change(m.Stable, m.Canary), Interval: "—", Limit: ruleLimits(m.Name, m.Rule), Verdict: m.Verdict}
		switch {
		case m.Advisory:
			base.Verdict = "advisory"
			out = append(out, base)
		case len(m.Limits) > 0:
			for _, l := range m.Limits {
				row := base
				row.Interval = interval(m.Name, m.Rule, l.Interval)
				row.Limit = limitCell(m.Name, m.Rule, l.Limit)
				row.Verdict = l.Verdict
				out = append(out, row)
			}
		default:
			base.Interval = interval(m.Name, m.Rule, m.Interval)
			out = append(out, base)
		}
	}
	return out
}

// TextTable prints rows as an aligned table for a terminal, headed by Columns in capitals.
func TextTable(rows []Row) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(Columns, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	tw.Flush()
	return b.String()
}

var verdictIcon = map[policy.Verdict]string{policy.Pass: "✅ pass", policy.Fail: "❌ fail",
	policy.Inconclusive: "⏳ inconclusive", "advisory": "ℹ️ advisory"}

// MarkdownTable prints rows as a GitHub table, every cell escaped (a metric's name comes from a spec).
func MarkdownTable(rows []Row) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(Columns, " | ") + " |\n|---|---:|---:|---:|---|---|---|\n")
	for _, r := range rows {
		cells := r.cells()
		cells[0] = Text(cells[0])
		for i := 1; i < len(cells); i++ {
			cells[i] = cell(cells[i])
		}
		if icon, ok := verdictIcon[r.Verdict]; ok {
			cells[len(cells)-1] = icon
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

// Markdown is the evidence of a decision for a comment that shows several rollouts (`plan --format
// markdown`): the decision, its reasons and the evidence table of the pull request body.
func Markdown(d policy.Decision) string {
	var b strings.Builder
	step := stepWords(d)
	if d.Next == nil {
		step = fmt.Sprintf("stays at stage %d, %d%%", d.Current.Stage, d.Current.Weight)
		if d.Current.Shadow > 0 {
			step += fmt.Sprintf(" (shadow %d%%)", d.Current.Shadow)
		}
	}
	fmt.Fprintf(&b, "**%s** — %s\n", Text(string(d.Action)), step)
	if len(d.Reasons) > 0 {
		b.WriteString("\n")
		for _, r := range d.Reasons {
			b.WriteString("- " + listItem(r) + "\n")
		}
	}
	if rows := Rows(d); len(rows) > 0 {
		b.WriteString("\n" + MarkdownTable(rows))
	}
	return b.String()
}

// cellEscaper keeps a cell that is not at the start of a line inert with fewer backslashes than Text:
// mid-line, only emphasis, code, links, strike-through, HTML, a pipe and a mention can act.
var cellEscaper = strings.NewReplacer(`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "|", `\|`,
	"~", `\~`, "&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u200b", "\n", " ", "\r", " ")

// cell escapes a table cell other than the metric's name.
func cell(s string) string { return cellEscaper.Replace(s) }

// listItem escapes a list item's text as cell does, and keeps its start from opening a nested block (a
// list, a heading, a quote) with a zero-width space.
func listItem(s string) string {
	s = cell(s)
	if s != "" && strings.ContainsRune("0123456789#>+-=", rune(s[0])) {
		s = "&#8203;" + s
	}
	return s
}

func arm(metric string, a policy.ArmValue) string {
	if a.N == 0 {
		return "no data"
	}
	return fmt.Sprintf("%s (n=%s)", policy.FormatValue(metric, a.Value), policy.FormatCount(a.N))
}

func change(stable, canary policy.ArmValue) string {
	if stable.N == 0 || canary.N == 0 || stable.Value == 0 {
		return "—"
	}
	return policy.FormatChange(canary.Value/stable.Value - 1)
}

// interval shows an interval on its own scale. An interval that does not say its scale is read from
// the rule's kind.
func interval(metric string, r rollouts.Rule, iv *policy.Interval) string {
	if iv == nil {
		return "—"
	}
	relative := iv.Scale == policy.ScaleRelative ||
		iv.Scale == "" && r.Max == nil && r.Min == nil && (r.MaxIncrease != nil || r.MaxDecrease != nil)
	if relative {
		return policy.FormatChange(iv.Low) + " … " + policy.FormatChange(iv.High)
	}
	return policy.FormatValue(metric, iv.Low) + " … " + policy.FormatValue(metric, iv.High)
}

// limitCell writes the limit a LimitResult names ("maxIncrease 50%", "max 0.02") in the metric's unit,
// from the rule's own value.
func limitCell(metric string, r rollouts.Rule, words string) string {
	kind, _, _ := strings.Cut(words, " ")
	switch {
	case kind == "maxIncrease" && r.MaxIncrease != nil:
		return "maxIncrease " + policy.FormatChange(float64(*r.MaxIncrease))
	case kind == "maxDecrease" && r.MaxDecrease != nil:
		return "maxDecrease " + policy.FormatChange(-float64(*r.MaxDecrease))
	case kind == "max" && r.Max != nil:
		return "max " + policy.FormatValue(metric, *r.Max)
	case kind == "min" && r.Min != nil:
		return "min " + policy.FormatValue(metric, *r.Min)
	}
	return words
}

// ruleLimits writes every limit of a rule, in the metric's unit.
func ruleLimits(metric string, r rollouts.Rule) string {
	var parts []string
	for _, kind := range []string{"maxIncrease", "maxDecrease", "max", "min"} {
		if s := limitCell(metric, r, kind); s != kind {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}
