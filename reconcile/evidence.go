package reconcile

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence"
	"github.com/rollout-dev/rollout/rollouts"
)

// Marker is the hidden line by which a proposal body names its rollout, for forges that must find the
// bot's proposals among others.
func Marker(rollout string) string { return "<!-- rollout:" + rollout + " -->" }

// EvidenceBody is the body of a proposal: the evidence package's rendering of the decision on spec
// (table, sample sizes, timeline, charts, escaped), a line naming the bot, and the hidden markers of the
// rollout and of the change proposed (target). With reportURL set (the published `rollout report`
// page), it links the rollout's charts there. It holds no clock reading, so the same evidence renders
// the same body and an unchanged proposal is not edited.
func EvidenceBody(spec *rollouts.Spec, d policy.Decision, target, bot, reportURL string) string {
	var tail strings.Builder
	if link := ReportLink(reportURL, spec.Name); link != "" {
		fmt.Fprintf(&tail, "\nEvery rule's estimate and interval over time, against its limit: [charts of %s](%s).\n", evidence.Text(spec.Name), link)
	}
	if routes := spec.Traffic.Routes; len(routes) > 0 {
		files := make([]string, len(routes))
		for i, r := range routes {
			files[i] = "`" + strings.NewReplacer("`", "", "\n", " ", "\r", " ").Replace(r.RoutePath()) + "`" // a code span: nothing in it is markdown
		}
		fmt.Fprintf(&tail, "\nBesides the spec, this commit sets the same split in the gateway routes (traffic.routes): %s.\n", strings.Join(files, ", "))
	}
	fmt.Fprintf(&tail, "\n<sub>Proposed by %s. Merging applies the change; the stage's metrics window starts when it lands on the default branch.</sub>\n\n", evidence.Text(bot))
	body := evidence.Render(evidence.Input{Spec: spec, Decision: d})
	if m := Marker(spec.Name); !strings.Contains(body, m) {
		tail.WriteString(m + "\n")
	}
	if target != "" {
		fmt.Fprintf(&tail, "<!-- rollout-target:%s -->\n", target)
	}
	// The body must stay within GitHub's limit with the tail: cut the evidence's last sections (the
	// decision is at its head) at a section break.
	if budget := evidence.MaxBody - utf8.RuneCountInString(tail.String()); utf8.RuneCountInString(body) > budget {
		cut := []rune(body)[:budget-len(bodyCut)]
		body = string(cut)
		if i := strings.LastIndex(body, "\n\n"); i > 0 {
			body = body[:i]
		}
		body += bodyCut
	}
	return body + tail.String()
}

// bodyCut ends an evidence body cut to make room for the proposal's markers.
const bodyCut = "\n\n_Detail cut to fit GitHub's limit._\n"

// Cell is Inline for a Markdown table cell: a pipe cannot end the cell either. Every string a table
// shows that comes from a file name, a spec or metrics goes through it.
func Cell(s string) string { return strings.ReplaceAll(Inline(s), "|", `\|`) }

// inlineEscaper neutralises what GitHub's markdown would act on in text that comes from a spec or from
// metrics (a source's path, a metric's name, an error): HTML tags and entities, @mentions (a zero-width
// space after the @), and link or code syntax (with the backslash that would undo an escape).
var inlineEscaper = strings.NewReplacer(`\`, `\\`, "&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u200b",
	"[", `\[`, "]", `\]`, "`", "\\`")

// Inline is s on one line, safe to put in a pull request body or comment.
func Inline(s string) string { return inlineEscaper.Replace(oneLine(s)) }

// ReportLink is the address of rollout's section in the report page published at reportURL (its
// anchor is "r-" and the rollout's name, as `rollout report` writes it), or "" when reportURL is not
// an http(s) address: a link in a pull request must not run script or point at a file.
func ReportLink(reportURL, rollout string) string {
	u, err := url.Parse(strings.TrimSpace(reportURL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	u.Fragment = "r-" + rollout
	return u.String()
}
