// Package evidence renders the judge's evidence for one rollout as the Markdown body of a pull request:
// the decision and its reasons, a table of every rule (stable, canary, change, interval, verdict), the
// sample sizes, the stage timeline and mermaid charts GitHub draws. Its evidence table (Rows) is the
// only one: `evaluate`'s terminal table (TextTable), the pull request body and `plan --format markdown`
// (MarkdownTable, Markdown) print the same columns with the same units and separators.
//
// The body is built for an audience that did not write its inputs: every string that comes from a spec
// or from a metrics source is escaped against Markdown and HTML, and the body stays within GitHub's
// 65,536-character limit by cutting detail, never the decision.
//
// It belongs to the policy room: it renders what policy.Judge decided, and is read by reconcile and cmd.
package evidence

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// MaxBody is GitHub's limit on the body of a pull request or comment, in characters.
const MaxBody = 65536

// Step is one weight change in the rollout's history: when it landed, the stage and the weight.
type Step struct {
	At     time.Time
	Stage  int
	Weight int
	// Commit is the commit that set it, "" when unknown.
	Commit string
}

// Input is what one body shows.
type Input struct {
	Spec     *rollouts.Spec
	Decision policy.Decision
	// Timeline is the rollout's weight history, oldest first; when empty, the stage the spec's status
	// records stands in for it.
	Timeline []Step
	// Now is when the evidence was judged.
	Now time.Time
}

// Marker is the hidden line that identifies the body of rollout name's pull request.
func Marker(name string) string {
	return "<!-- rollout:" + markerSafe(name) + " -->"
}

// Title is the pull request title the contract fixes: rollout(<name>): <from>% → <to>%.
func Title(d policy.Decision) string {
	to := d.Current.Weight
	switch {
	case d.Action == policy.Rollback:
		to = 0
	case d.Next != nil:
		to = d.Next.Weight
	}
	return fmt.Sprintf("rollout(%s): %d%% → %d%%", d.Rollout, d.Current.Weight, to)
}

// Render returns the Markdown body, at most MaxBody characters.
func Render(in Input) string {
	var head strings.Builder
	d := in.Decision
	name := d.Rollout
	if name == "" && in.Spec != nil {
		name = in.Spec.Name
	}
	head.WriteString(Marker(name) + "\n")
	fmt.Fprintf(&head, "## Rollout `%s`: %s\n\n", code(name), Text(string(d.Action)))
	fmt.Fprintf(&head, "**Decision: %s** — %s\n", Text(string(d.Action)), stepWords(d))
	if in.Spec != nil {
		if in.Spec.Canary != nil {
			fmt.Fprintf(&head, "\nStable `%s` → canary `%s`\n", code(variantWords(in.Spec.Stable)), code(variantWords(*in.Spec.Canary)))
		}
		if in.Spec.Description != "" {
			fmt.Fprintf(&head, "\n> %s\n", Text(in.Spec.Description))
		}
	}
	if !in.Now.IsZero() {
		fmt.Fprintf(&head, "\nJudged at %s.\n", in.Now.UTC().Format(time.RFC3339))
	}

	sections := [][]string{
		reasons(d),
		table(d),
		segments(d),
		cost(d),
		samples(d),
		timeline(in),
		charts(in),
	}
	return assemble(head.String(), sections)
}

// cutNote ends a body that lost detail to the size limit.
const cutNote = "\n\n_Detail cut to fit GitHub's 65,536-character limit; run `rollout evaluate -o json` for all of it._\n"

// assemble appends the sections' chunks in order while they fit, keeping room for cutNote.
func assemble(head string, sections [][]string) string {
	var b strings.Builder
	b.WriteString(head)
	budget := MaxBody - utf8.RuneCountInString(head) - utf8.RuneCountInString(cutNote)
	for _, chunks := range sections {
		for _, c := range chunks {
			n := utf8.RuneCountInString(c)
			if n > budget {
				b.WriteString(cutNote)
				return b.String()
			}
			b.WriteString(c)
			budget -= n
		}
	}
	return b.String()
}

func stepWords(d policy.Decision) string {
	cur := fmt.Sprintf("stage %d at %d%%", d.Current.Stage, d.Current.Weight)
	if d.Current.Shadow > 0 {
		cur += fmt.Sprintf(" (shadow %d%%)", d.Current.Shadow)
	}
	if d.Next == nil {
		return cur + ", unchanged"
	}
	next := fmt.Sprintf("stage %d at %d%%", d.Next.Stage, d.Next.Weight)
	if d.Next.Shadow > 0 {
		next += fmt.Sprintf(" (shadow %d%%)", d.Next.Shadow)
	}
	switch d.Action {
	case policy.Rollback:
		next = "0% (every user back on stable)"
	case policy.Promote:
		next = "canary becomes the new stable"
	}
	return cur + " → " + next
}

func variantWords(v rollouts.Variant) string {
	if v.Prompt == "" {
		return v.Model
	}
	return v.Model + " + " + v.Prompt
}

func reasons(d policy.Decision) []string {
	if len(d.Reasons) == 0 {
		return nil
	}
	out := []string{"\n### Why\n"}
	for _, r := range d.Reasons {
		out = append(out, "- "+Text(r)+"\n")
	}
	return out
}

func table(d policy.Decision) []string {
	if len(d.Metrics) == 0 {
		return nil
	}
	head := "\n### Evidence\n\n"
	if d.SampleRatioMismatch {
		head += "> **Sample ratio mismatch**: the canary's share of traffic is not the one the spec sets, so this evidence cannot be trusted.\n\n"
	}
	out := []string{head + MarkdownTable(nil)}
	for _, r := range Rows(d) {
		out = append(out, strings.TrimPrefix(MarkdownTable([]Row{r}), MarkdownTable(nil)))
	}
	var details []string
	for _, m := range d.Metrics {
		if m.Reason != "" {
			details = append(details, "- **"+Text(m.Name)+"**: "+Text(m.Reason)+"\n")
		}
	}
	var levels []string
	for _, m := range d.Metrics {
		for _, l := range m.Limits {
			if iv := l.Interval; iv != nil && (iv.LowConfidence > 0 || iv.HighConfidence > 0) {
				levels = append(levels, fmt.Sprintf("- **%s** %s: %s\n", Text(m.Name), cell(limitCell(m.Name, m.Rule, l.Limit)), cell(iv.Label())))
			}
		}
	}
	if len(details) > 0 || len(levels) > 0 {
		out = append(out, "\n<details><summary>What each rule found, and how sure</summary>\n\n")
		out = append(out, details...)
		if len(levels) > 0 {
			out = append(out, "\nIntervals are always-valid confidence sequences: they hold at every tick at once, so looking every hour does not inflate the error. Each end has its own one-sided confidence: the end that could show a limit broken is the rollback test's (1 − confidence, split over the limits), the other the advance test's (advanceConfidence). Relative intervals are of canary ÷ stable − 1.\n\n")
			out = append(out, levels...)
		}
		out = append(out, "\n</details>\n")
	}
	return out
}

func samples(d policy.Decision) []string {
	var stable, canary int64
	for _, m := range d.Metrics {
		stable, canary = max(stable, m.Stable.N), max(canary, m.Canary.N)
	}
	if len(d.Metrics) == 0 {
		return nil
	}
	out := fmt.Sprintf("\nSample sizes in this stage's window: stable %s, canary %s (the most observations of any metric).\n",
		policy.FormatCount(stable), policy.FormatCount(canary))
	switch d.Unit {
	case policy.UnitKey:
		out += "\nUnit: the assignment key. Variances are computed over keys, so one user's many requests count as one correlated unit.\n"
	case policy.UnitRequest:
		out += "\nUnit: request. The metrics source counts requests only, so each request is treated as independent; where users send many requests each, the intervals are narrower than they should be.\n"
	}
	if w := d.Window; w != nil && !w.From.IsZero() {
		out += fmt.Sprintf("\nBoth arms compared from %s (the stage's first canary record) to %s.\n",
			w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339))
	}
	if d.NotRandomised > 0 {
		out += fmt.Sprintf("\n%s requests of keys matched by assignment.include or exclude (not randomised) are left out of both arms.\n", policy.FormatCount(d.NotRandomised))
	}
	return []string{out}
}

func timelineSteps(in Input) []Step {
	if len(in.Timeline) > 0 {
		return in.Timeline
	}
	if in.Spec != nil && in.Spec.Status != nil && !in.Spec.Status.StageStartedAt.IsZero() {
		return []Step{{At: in.Spec.Status.StageStartedAt, Stage: in.Spec.Status.Stage, Weight: in.Decision.Current.Weight}}
	}
	return nil
}

func timeline(in Input) []string {
	steps := timelineSteps(in)
	if len(steps) == 0 {
		return nil
	}
	out := []string{"\n### Stage timeline\n\n| since | stage | weight | commit |\n|---|---:|---:|---|\n"}
	for _, s := range steps {
		commit := "—"
		if s.Commit != "" {
			commit = "`" + code(shortSHA(s.Commit)) + "`"
		}
		out = append(out, fmt.Sprintf("| %s | %d | %d%% | %s |\n", s.At.UTC().Format("2006-01-02 15:04"), s.Stage, s.Weight, commit))
	}
	return out
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func charts(in Input) []string {
	var out []string
	if steps := timelineSteps(in); len(steps) > 0 {
		var labels, weights []string
		for _, s := range steps {
			labels = append(labels, `"`+s.At.UTC().Format("01-02 15:04")+`"`)
			weights = append(weights, strconv.Itoa(s.Weight))
		}
		if d := in.Decision; d.Next != nil && !in.Now.IsZero() {
			to := d.Next.Weight
			if d.Action == policy.Rollback {
				to = 0
			}
			labels = append(labels, `"next"`)
			weights = append(weights, strconv.Itoa(to))
		}
		out = append(out, "\n```mermaid\nxychart-beta\n  title \"Canary weight over time (%)\"\n  x-axis ["+
			strings.Join(labels, ", ")+"]\n  y-axis \"weight %\" 0 --> 100\n  line ["+strings.Join(weights, ", ")+"]\n```\n")
	}
	var names, used, limit []string
	for _, m := range in.Decision.Metrics {
		for _, u := range limitUses(m) {
			names = append(names, `"`+mermaidText(u.name)+`"`)
			used = append(used, strconv.FormatFloat(math.Round(u.percent), 'f', -1, 64))
			limit = append(limit, "100")
		}
	}
	if len(names) > 0 {
		out = append(out, "\n```mermaid\nxychart-beta\n  title \"Worst end of each interval, as % of its limit (above 100: beyond it)\"\n  x-axis ["+
			strings.Join(names, ", ")+"]\n  y-axis \"% of limit\" 0 --> 300\n  bar ["+strings.Join(used, ", ")+"]\n  line ["+
			strings.Join(limit, ", ")+"]\n```\n")
	}
	return out
}

// limitUse is how far a limit's interval reaches towards that limit.
type limitUse struct {
	name    string
	percent float64
}

// limitUses returns, for each limit of m with a bounded interval on the limit's own scale, how far the
// interval's worst end goes towards the limit, in percent (100 is the limit itself), clipped to 0..300
// for the chart. An end the data cannot bound yet is left out rather than drawn as 300%, and a relative
// interval is never divided by an absolute limit or the other way round.
func limitUses(m policy.RuleResult) []limitUse {
	if m.Advisory {
		return nil
	}
	if len(m.Limits) == 0 {
		if u, ok := legacyLimitUse(m); ok {
			return []limitUse{{m.Name, u}}
		}
		return nil
	}
	var out []limitUse
	r := m.Rule
	for _, l := range m.Limits {
		iv := l.Interval
		if iv == nil {
			continue
		}
		var u float64
		switch {
		case strings.HasPrefix(l.Limit, "maxIncrease") && iv.Scale == policy.ScaleRelative && r.MaxIncrease != nil && *r.MaxIncrease != 0:
			u = iv.High / float64(*r.MaxIncrease)
		case strings.HasPrefix(l.Limit, "maxDecrease") && iv.Scale == policy.ScaleRelative && r.MaxDecrease != nil && *r.MaxDecrease != 0:
			u = -iv.Low / float64(*r.MaxDecrease)
		case strings.HasPrefix(l.Limit, "max ") && iv.Scale == policy.ScaleAbsolute && r.Max != nil && *r.Max != 0:
			u = iv.High / *r.Max
		case strings.HasPrefix(l.Limit, "min ") && iv.Scale == policy.ScaleAbsolute && r.Min != nil && iv.Low > 0:
			u = *r.Min / iv.Low
		default:
			continue
		}
		if math.IsNaN(u) || math.IsInf(u, 0) {
			continue
		}
		name := m.Name
		if len(m.Limits) > 1 {
			name += " " + strings.Fields(l.Limit)[0]
		}
		out = append(out, limitUse{name, math.Min(math.Max(u*100, 0), 300)})
	}
	return out
}

// legacyLimitUse reads an interval that does not record its limits, by the rule's first limit.
func legacyLimitUse(m policy.RuleResult) (float64, bool) {
	if m.Interval == nil {
		return 0, false
	}
	r, lo, hi := m.Rule, m.Interval.Low, m.Interval.High
	var u float64
	switch {
	case r.Max != nil && *r.Max != 0:
		u = hi / *r.Max
	case r.MaxIncrease != nil && *r.MaxIncrease != 0:
		u = hi / float64(*r.MaxIncrease)
	case r.Min != nil && lo > 0:
		u = *r.Min / lo
	case r.MaxDecrease != nil && *r.MaxDecrease != 0:
		u = -lo / float64(*r.MaxDecrease)
	default:
		return 0, false
	}
	if math.IsNaN(u) || math.IsInf(u, 0) {
		return 0, false
	}
	return math.Min(math.Max(u*100, 0), 300), true
}

// maxText bounds one escaped string, so that no single value crowds out the rest.
const maxText = 2000

// Text escapes s for Markdown prose and table cells: HTML is inert (&, <, > become entities), Markdown
// punctuation is backslash-escaped, line breaks become spaces (a cell or list item stays one line),
// and @mentions cannot ping anyone. Long strings are cut.
func Text(s string) string {
	if utf8.RuneCountInString(s) > maxText {
		s = string([]rune(s)[:maxText]) + "…"
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\n', '\r', '\t', '\v', '\f', '\u2028', '\u2029':
			b.WriteByte(' ')
		case '@':
			b.WriteString("@\u200b") // a zero-width space: no mention, no notification
		case '\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '+', '-', '.', '!', '|', '~', ':', '=':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			if r < 0x20 || r == 0x7f {
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// code makes s safe inside a single-backtick code span: no backticks, pipes or line breaks, which
// would end the span or the table cell.
func code(s string) string {
	if utf8.RuneCountInString(s) > maxText {
		s = string([]rune(s)[:maxText]) + "…"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '`':
			return '\''
		case r == '|':
			return '/'
		case r < 0x20, r == 0x7f, r == '\u2028', r == '\u2029':
			return ' '
		}
		return r
	}, s)
}

// mermaidText keeps what a mermaid label inside quotes can hold safely.
func mermaidText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 40 {
			break
		}
		if r < utf8.RuneSelf && (r == ' ' || r == '_' || r == '-' || r == '.' || r == '%' ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// markerSafe keeps a marker an HTML comment whatever the name holds.
func markerSafe(s string) string {
	return strings.NewReplacer("--", "", ">", "", "<", "", "\n", " ").Replace(code(s))
}
