package demo

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
)

func decided(hour int, rollout string, action policy.Action, from, to int, reasons ...string) Event {
	return Event{Kind: Decided, Hour: hour, At: testStart.Add(time.Duration(hour) * time.Hour), Rollout: rollout,
		Result: &reconcile.Result{Rollout: rollout, Decision: action, From: from, To: to, Reasons: reasons}}
}

func TestTimeline(t *testing.T) {
	events := []Event{
		decided(1, "a", policy.Start, 0, 5, "new canary"),
		decided(2, "a", policy.Hold, 5, 5, "canary has 10 of 60 requests"),
		decided(3, "a", policy.Hold, 5, 5, "canary has 20 of 60 requests"), // same wait: not printed
		decided(4, "a", policy.Hold, 5, 5, "quality score: too few observations yet"),
		decided(5, "a", policy.Rollback, 5, 0, "error rate exceeds"),
		decided(6, "a", policy.Hold, 0, 0, "rolled back"), // finished: not printed
		{Kind: Ticked, Hour: 6},
		decided(7, "b", policy.Hold, 0, 0, "one", "two", "three", "four"),
		{Kind: Decided, Hour: 8, Rollout: "b", Result: &reconcile.Result{Rollout: "b", Err: errors.New("push main: remote moved")}},
	}
	var plain bytes.Buffer
	tl := &Timeline{W: &plain, Hours: 8}
	for _, e := range events {
		tl.Observe(e)
	}
	tl.Done()
	lines := strings.Split(strings.TrimRight(plain.String(), "\n"), "\n")
	want := []string{
		"+01h  Apr 16 10:00  a              start     0% → 5%      new canary",
		"+02h  Apr 16 11:00  a              hold      5%           canary has 10 of 60 requests",
		"+04h  Apr 16 13:00  a              hold      5%           quality score: too few observations yet",
		"+05h  Apr 16 14:00  a              rollback  5% → 0%      error rate exceeds",
		"+07h  Apr 16 16:00  b              hold      0%           one; two; and 2 more reasons",
		"+08h  Jan  1 00:00  b              error                  push main: remote moved",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if strings.ContainsAny(plain.String(), "\033\r") {
		t.Error("escape codes without Color and Progress")
	}

	var tty bytes.Buffer
	tl = &Timeline{W: &tty, Color: true, Progress: true, Hours: 8}
	for _, e := range events {
		tl.Observe(e)
	}
	tl.Done()
	out := tty.String()
	for _, want := range []string{ansiRed + ansiBold + "rollback" + ansiReset, ansiCyan + "start" + ansiReset, "… simulated hour 6 of 8, 0 requests served", "\r\033[K"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
	// Colour codes do not count toward the column widths.
	if got := stripANSI(out); !strings.Contains(got, "a              rollback  5% → 0%      error rate exceeds") {
		t.Errorf("columns shifted by colour codes:\n%s", got)
	}
}

func TestShapeIgnoresCounts(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"canary has 12 of 150 requests", "canary has 140 of 150 requests", true},
		{"canary has 12 of 1,500 requests: about 3h more at the current traffic", "canary has 1,140 of 1,500 requests: about 40m more at the current traffic", true},
		{"minDuration 4h not reached (1h so far)", "minDuration 4h not reached (3h so far)", true},
		{"error rate 1.2% is not yet shown", "error rate 3.4% is not yet shown", true},
		{"canary has 12 of 150 requests", "quality score: no data for the canary", false},
	} {
		if got := shape(tc.a) == shape(tc.b); got != tc.same {
			t.Errorf("shape(%q) == shape(%q): %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// BenchmarkDefaultStory plays the whole default story: `rollout demo` must finish in under ten
// seconds on a small machine.
func BenchmarkDefaultStory(b *testing.B) {
	sc, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, err := Run(context.Background(), Config{Dir: b.TempDir(), Scenario: sc, Start: testStart, Hours: DefaultHours,
			Rand: rand.New(rand.NewPCG(uint64(i), 1))})
		if err != nil {
			b.Fatal(err)
		}
	}
}
