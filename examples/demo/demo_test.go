package demo

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

var testStart = time.Date(2026, 4, 16, 9, 0, 0, 0, time.UTC)

// runDefault plays the default story with a seed, with no git binary on the PATH: the demo must work on
// a machine that has only Go.
func runDefault(t *testing.T, seed uint64, hours int) *Outcome {
	t.Helper()
	t.Setenv("PATH", "")
	sc, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Run(context.Background(), Config{Dir: t.TempDir(), Scenario: sc, Start: testStart, Hours: hours,
		Rand: rand.New(rand.NewPCG(seed, 0x5eed))})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDefaultStory checks the storyline for seeds other than the command's default (cmd/rollout's
// TestDemo checks seed 1): it must not hang on one lucky draw.
func TestDefaultStory(t *testing.T) {
	race.Skip(t, race.Slow)
	seeds := []uint64{2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run("seed"+string(rune('0'+seed)), func(t *testing.T) {
			out := runDefault(t, seed, DefaultHours)
			for _, e := range out.Events {
				if e.Kind == Decided && e.Result.Err != nil {
					t.Errorf("hour %d, %s: %v", e.Hour, e.Rollout, e.Result.Err)
				}
			}

			healthy := out.Final[Healthy]
			if healthy.Status == nil || healthy.Status.Phase != rollouts.Completed || healthy.Canary != nil ||
				healthy.Stable.Prompt != "prompts/support/v6.md" || healthy.Previous == nil {
				t.Errorf("%s at the end: %+v, want Completed with v6 as stable and v5 as previous", Healthy, healthy)
			}
			if got := actions(out, Healthy); !containsInOrder(got, policy.Start, policy.Advance, policy.Start, policy.Promote) {
				t.Errorf("%s decisions %v, want start, advance, start, promote", Healthy, got)
			}

			regressed := out.Final[Regressing]
			if regressed.Status == nil || regressed.Status.Phase != rollouts.RolledBack || regressed.Traffic.Weight != 0 {
				t.Errorf("%s at the end: status %+v weight %d, want RolledBack at 0%%", Regressing, regressed.Status, regressed.Traffic.Weight)
			}
			var rollback *Event
			for _, e := range out.Decisions(Regressing) {
				if e.Result.Decision == policy.Rollback {
					rollback = &e
					break
				}
			}
			if rollback == nil {
				t.Fatalf("%s was never rolled back: %v", Regressing, actions(out, Regressing))
			}
			if rollback.Result.From != 5 || rollback.Result.Commit == "" || !strings.Contains(strings.Join(rollback.Result.Reasons, " "), "error rate") {
				t.Errorf("rollback %+v, want from 5%% with a commit, for the error rate", rollback.Result)
			}
			// Once rolled back, it stays rolled back: no later start, and no proposal merged again.
			heads := map[string]bool{}
			for _, e := range out.Events {
				if e.Kind == Merged {
					if heads[e.Merge.Proposal.Head] {
						t.Errorf("hour %d: %s merged twice", e.Hour, e.Merge.Proposal.Branch)
					}
					heads[e.Merge.Proposal.Head] = true
				}
				if e.Rollout == Regressing && e.Hour > rollback.Hour && (e.Kind == Merged ||
					(e.Kind == Decided && e.Result.Decision != policy.Hold)) {
					t.Errorf("hour %d: %s after the rollback", e.Hour, e.Kind)
				}
			}
			notified := false
			for _, e := range out.Events {
				notified = notified || (e.Kind == Notified && e.Rollout == Regressing && e.Notice.Commit == rollback.Result.Commit)
			}
			if !notified {
				t.Error("the rollback was not notified with its commit")
			}

			trickle := out.Final[Trickle]
			if trickle.Status == nil || trickle.Status.Phase != rollouts.Progressing || trickle.Traffic.Weight != 10 {
				t.Errorf("%s at the end: %+v weight %d, want still Progressing at 10%%", Trickle, trickle.Status, trickle.Traffic.Weight)
			}
			last := out.Decisions(Trickle)
			why := strings.Join(last[len(last)-1].Result.Reasons, "; ")
			if last[len(last)-1].Result.Decision != policy.Hold || !strings.Contains(why, "of 400 requests") {
				t.Errorf("%s last decision %s: %s; want a hold for want of requests", Trickle, last[len(last)-1].Result.Decision, why)
			}

			if len(out.Merges()) < 2 || len(out.Proposals) < 2 {
				t.Errorf("%d merges and %d proposals, want at least two of each", len(out.Merges()), len(out.Proposals))
			}
			for _, p := range out.Proposals {
				if !strings.Contains(p.Body, "| metric |") {
					t.Errorf("proposal %q has no evidence table:\n%s", p.Title, p.Body)
				}
			}
		})
	}
}

// TestDeterministic checks that a seed tells the same story: same decisions, same commits. Twelve hours
// hold starts, advances, merges and holds.
func TestDeterministic(t *testing.T) {
	race.Skip(t, race.Slow)
	a, b := runDefault(t, 7, 12), runDefault(t, 7, 12)
	if len(a.Events) != len(b.Events) {
		t.Fatalf("%d events, then %d", len(a.Events), len(b.Events))
	}
	for i := range a.Events {
		ea, eb := a.Events[i], b.Events[i]
		if ea.Kind != eb.Kind || ea.Rollout != eb.Rollout || ea.Hour != eb.Hour {
			t.Fatalf("event %d: %+v, then %+v", i, ea, eb)
		}
		if ea.Kind == Decided && (ea.Result.Decision != eb.Result.Decision || ea.Result.Commit != eb.Result.Commit) {
			t.Fatalf("event %d: %s %s, then %s %s", i, ea.Result.Decision, ea.Result.Commit, eb.Result.Decision, eb.Result.Commit)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	sc, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	good := Config{Dir: t.TempDir(), Scenario: sc, Start: testStart, Hours: 1, Rand: rand.New(rand.NewPCG(1, 1))}
	for name, mutate := range map[string]func(*Config){
		"no dir":   func(c *Config) { c.Dir = "" },
		"no start": func(c *Config) { c.Start = time.Time{} },
		"no hours": func(c *Config) { c.Hours = 0 },
		"no rand":  func(c *Config) { c.Rand = nil },
		"no files": func(c *Config) { c.Scenario.Files = nil },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSourceRefusesPathsOutsideTheDemo(t *testing.T) {
	s := &story{cfg: Config{Dir: t.TempDir()}}
	for _, src := range []string{"prometheus:http://localhost:9090", "file:/etc/passwd", "file:../x.jsonl", "file:"} {
		spec := &rollouts.Spec{Name: "x", Metrics: rollouts.MetricsSource{Source: src}}
		if _, err := s.source(spec); err == nil {
			t.Errorf("source %q: no error", src)
		}
	}
}

func actions(out *Outcome, rollout string) []policy.Action {
	var got []policy.Action
	for _, e := range out.Decisions(rollout) {
		if e.Result.Decision != policy.Hold {
			got = append(got, e.Result.Decision)
		}
	}
	return got
}

func containsInOrder(got []policy.Action, want ...policy.Action) bool {
	i := 0
	for _, a := range got {
		if i < len(want) && a == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestRunStopsWhenCancelled(t *testing.T) {
	sc, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hours := 0
	_, err = Run(ctx, Config{Dir: t.TempDir(), Scenario: sc, Start: testStart, Hours: DefaultHours, Rand: rand.New(rand.NewPCG(1, 1)),
		Observe: func(e Event) {
			if e.Kind == Ticked {
				hours++
				if hours == 2 {
					cancel()
				}
			}
		}})
	if !errors.Is(err, context.Canceled) || hours != 2 {
		t.Errorf("after cancel: %v, %d hours played; want context.Canceled after 2", err, hours)
	}
}

// The healthy rollout's proposals show what its next stage costs, under its cost rule.
func TestProposalsShowTheCostProjection(t *testing.T) {
	race.Skip(t, race.Slow)
	out := runDefault(t, 1, 24)
	shown := false
	for _, p := range out.Proposals {
		if strings.Contains(p.Title, Healthy) {
			shown = true
			if i := strings.Index(p.Body, "### Cost"); i >= 0 {
				t.Logf("%s: %s", p.Title, strings.SplitN(p.Body[i:], "\n\n", 3)[1])
			}
			if !strings.Contains(p.Body, "### Cost") || !strings.Contains(p.Body, "/day at 100%") ||
				!strings.Contains(p.Body, "projected\\_extra\\_cost\\_per\\_day") {
				t.Errorf("proposal %q shows no cost projection:\n%s", p.Title, p.Body)
			}
		}
	}
	if !shown {
		t.Fatalf("no proposal of %s in a day", Healthy)
	}
}
