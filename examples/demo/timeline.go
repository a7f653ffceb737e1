package demo

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"

	"github.com/rollout-dev/rollout/policy"
)

// Timeline prints a story's events as they happen, one line each: simulated time, rollout, what
// happened, the weight from and to, and why. A hold is printed when its reason changes in kind (not
// merely in its counts), so a waiting rollout says what it waits for without a line every hour.
type Timeline struct {
	W io.Writer
	// Color adds ANSI colours; Progress rewrites a status line after each hour. Both are for a
	// terminal only.
	Color    bool
	Progress bool
	// Hours is the length of the story, for the progress line.
	Hours int

	lastHold     map[string]string
	finished     map[string]bool
	served       int
	progressLine bool
}

// ANSI colours of the decisions.
const (
	ansiReset  = "\033[0m"
	ansiBold   = "\033[1m"
	ansiDim    = "\033[2m"
	ansiRed    = "\033[31m"
	ansiGreen  = "\033[32m"
	ansiYellow = "\033[33m"
	ansiBlue   = "\033[34m"
	ansiCyan   = "\033[36m"
)

// Header prints the column titles.
func (t *Timeline) Header() {
	t.line(t.paint(ansiBold, fmt.Sprintf("%-5s %-12s  %-13s  %-9s %-11s  %s", "HOUR", "SIM. TIME", "ROLLOUT", "EVENT", "WEIGHT", "WHY")))
}

// Observe prints one event; it is a Config.Observe.
func (t *Timeline) Observe(e Event) {
	switch e.Kind {
	case Ticked:
		if t.Progress {
			t.clearProgress()
			fmt.Fprintf(t.W, "%s", t.paint(ansiDim, fmt.Sprintf("  … simulated hour %d of %d, %d requests served", e.Hour, t.Hours, t.served)))
			t.progressLine = true
		}
	case Merged:
		m := e.Merge
		how := "merged " + m.Proposal.Branch + " with a merge commit"
		if m.FastForward {
			how = "fast-forwarded " + DefaultBranch + " to " + m.Proposal.Branch
		}
		weight := weights(m.Proposal.Title)
		if !strings.Contains(weight, "%") {
			weight = "100%" // a promotion's title names no weights: the canary becomes everyone's stable
		}
		t.row(e, t.paint(ansiBlue, "merged"), weight, "reviewer "+how)
	case Notified:
		n := e.Notice
		t.row(e, t.paint(ansiRed, "notified"), fmt.Sprintf("%d%% → %d%%", n.From, n.To),
			fmt.Sprintf("%s %s with commit %.8s (told here: the demo has no network)", strings.Join(e.Targets, ", "), n.Decision, n.Commit))
	case Decided:
		t.decided(e)
	}
}

func (t *Timeline) decided(e Event) {
	t.served += e.Stable + e.Canary
	res := e.Result
	if t.lastHold == nil {
		t.lastHold = map[string]string{}
	}
	why := strings.Join(res.Reasons, "; ")
	if res.Err != nil {
		t.row(e, t.paint(ansiRed, "error"), "", res.Err.Error())
		return
	}
	weight := fmt.Sprintf("%d%% → %d%%", res.From, res.To)
	if res.From == res.To {
		weight = fmt.Sprintf("%d%%", res.From)
	}
	if t.finished == nil {
		t.finished = map[string]bool{}
	}
	switch res.Decision {
	case policy.Hold:
		if res.Commit == "" && t.finished[res.Rollout] {
			return
		}
		if res.Commit == "" {
			why = brief(res.Reasons)
			kind := shape(why)
			if t.lastHold[res.Rollout] == kind {
				return
			}
			t.lastHold[res.Rollout] = kind
		} else {
			// A commit on a hold is bookkeeping (a promotion that landed, a metrics outage), no decision.
			t.row(e, t.paint(ansiDim, "recorded"), weight, res.Effect)
			return
		}
		t.row(e, t.paint(ansiYellow, "hold"), weight, why)
		return
	case policy.Start:
		t.row(e, t.paint(ansiCyan, "start"), weight, why)
	case policy.Advance, policy.Promote:
		color := ansiGreen
		t.finished[res.Rollout] = res.Decision == policy.Promote
		if res.Proposal != "" {
			why += " — proposed on " + branchOf(res.Proposal)
		}
		t.row(e, t.paint(color, string(res.Decision)), weight, why)
	case policy.Rollback:
		t.row(e, t.paint(ansiRed+ansiBold, "rollback"), weight, why)
		t.finished[res.Rollout] = true
	default:
		t.row(e, string(res.Decision), weight, why)
	}
	delete(t.lastHold, res.Rollout)
}

// Done ends the progress line.
func (t *Timeline) Done() { t.clearProgress() }

func (t *Timeline) row(e Event, event, weight, why string) {
	// Padding counts runes, not the colour codes around them.
	pad := func(s string, n int) string {
		visible := len([]rune(stripANSI(s)))
		if visible >= n {
			return s
		}
		return s + strings.Repeat(" ", n-visible)
	}
	t.line(fmt.Sprintf("%-5s %-12s  %s  %s %s  %s", fmt.Sprintf("+%02dh", e.Hour), e.At.UTC().Format("Jan _2 15:04"),
		pad(e.Rollout, 13), pad(event, 9), pad(weight, 11), why))
}

func (t *Timeline) line(s string) {
	t.clearProgress()
	fmt.Fprintln(t.W, s)
}

func (t *Timeline) clearProgress() {
	if t.progressLine {
		fmt.Fprint(t.W, "\r\033[K")
		t.progressLine = false
	}
}

func (t *Timeline) paint(code, s string) string {
	if !t.Color {
		return s
	}
	return code + s + ansiReset
}

// brief is the first two reasons of a hold, and how many more there are: the timeline says what a
// rollout waits for; the proposal and `rollout evaluate` give the whole evidence.
func brief(reasons []string) string {
	if len(reasons) <= 2 {
		return strings.Join(reasons, "; ")
	}
	more := "reasons"
	if len(reasons) == 3 {
		more = "reason"
	}
	return fmt.Sprintf("%s; and %d more %s", strings.Join(reasons[:2], "; "), len(reasons)-2, more)
}

// shape is a reason with its numbers and its time estimate taken out: "canary has 12 of 150 requests:
// about 3h more …" and "canary has 40 of 150 requests: about 50m more …" are the same wait.
func shape(s string) string {
	s = estimate.ReplaceAllString(s, "")
	return strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) || r == '.' || r == ',' {
			return -1
		}
		return r
	}, s)
}

// estimate is how long a hold says the rest of its requests take.
var estimate = regexp.MustCompile(`about [^;]*? more at the current traffic`)

// weights is the "from% → to%" part of a proposal title.
func weights(title string) string {
	if _, w, ok := strings.Cut(title, ": "); ok {
		return w
	}
	return ""
}

// branchOf is the branch a local-forge proposal URL names.
func branchOf(url string) string {
	if _, b, ok := strings.Cut(url, "#"); ok {
		return b
	}
	return url
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\033' {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Heading is a section title, underlined.
func (t *Timeline) Heading(title string) string {
	return t.paint(ansiBold, title) + "\n" + strings.Repeat("─", len([]rune(title)))
}
