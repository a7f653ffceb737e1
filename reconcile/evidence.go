package reconcile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rollout-dev/rollout/policy"
)

// Marker is the hidden line by which a proposal body names its rollout, for forges that must find the
// bot's proposals among others.
func Marker(rollout string) string { return "<!-- rollout:" + rollout + " -->" }

// EvidenceBody is the body of a proposal: the evidence table, the judge's reasons, and the hidden
// markers of the rollout and of the change proposed (target).
func EvidenceBody(rollout string, d policy.Decision, target, bot string) string {
	var b strings.Builder
	b.WriteString(EvidenceMarkdown(d))
	fmt.Fprintf(&b, "\n<sub>Proposed by %s. Merging applies the change; the stage's metrics window starts when it lands on the default branch.</sub>\n\n", bot)
	b.WriteString(Marker(rollout) + "\n")
	if target != "" {
		fmt.Fprintf(&b, "<!-- rollout-target:%s -->\n", target)
	}
	return b.String()
}

// EvidenceMarkdown renders a decision as markdown: a heading, the metrics table and the reasons.
func EvidenceMarkdown(d policy.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s: %s", d.Rollout, d.Action)
	if d.Next != nil {
		fmt.Fprintf(&b, " (stage %d, %d%% → stage %d, %d%%)", d.Current.Stage, d.Current.Weight, d.Next.Stage, d.Next.Weight)
	} else {
		fmt.Fprintf(&b, " (stage %d, %d%%)", d.Current.Stage, d.Current.Weight)
	}
	b.WriteString("\n\n")
	if len(d.Metrics) > 0 {
		b.WriteString("| metric | stable | canary | interval | verdict | reason |\n|---|---:|---:|---|---|---|\n")
		for _, m := range d.Metrics {
			interval := "–"
			if m.Interval != nil {
				interval = "[" + num(m.Interval.Low) + ", " + num(m.Interval.High) + "]"
			}
			fmt.Fprintf(&b, "| %s | %s (n=%d) | %s (n=%d) | %s | %s | %s |\n", cell(m.Name), num(m.Stable.Value), m.Stable.N,
				num(m.Canary.Value), m.Canary.N, interval, m.Verdict, cell(m.Reason))
		}
		b.WriteString("\n")
	}
	if len(d.Reasons) > 0 {
		b.WriteString("**Why**\n\n")
		for _, r := range d.Reasons {
			fmt.Fprintf(&b, "- %s\n", Inline(r))
		}
	}
	return b.String()
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func cell(s string) string { return strings.ReplaceAll(Inline(s), "|", `\|`) }

// inlineEscaper neutralises what GitHub's markdown would act on in text that comes from a spec or from
// metrics (a source's path, a metric's name, an error): HTML tags and entities, @mentions (a zero-width
// space after the @), and link or code syntax (with the backslash that would undo an escape).
var inlineEscaper = strings.NewReplacer(`\`, `\\`, "&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u200b",
	"[", `\[`, "]", `\]`, "`", "\\`")

// Inline is s on one line, safe to put in a pull request body or comment.
func Inline(s string) string { return inlineEscaper.Replace(oneLine(s)) }
