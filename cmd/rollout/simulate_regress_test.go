package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/race"
)

// Each rehearsal flag of simulate makes the rule it is for fire, through evaluate on the records it
// wrote, while the other rules stay quiet.
func TestSimulateRegressions(t *testing.T) {
	race.Skip(t, race.Slow)
	const spec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable: {model: claude-sonnet-4-5-20260301}
canary: {model: claude-sonnet-4-5-20260415}
traffic: {weight: 25}
stages:
  - {weight: 5, minDuration: 1h}
  - {weight: 25, minDuration: 1h}
  - {weight: 50, minDuration: 1h}
  - {weight: 100}
metrics:
  source: file:traffic/summarizer.jsonl
analysis:
  segments: [language]
  rules:
    - {metric: error_rate, max: 5%, maxIncrease: 50%}
    - {metric: projected_extra_cost_per_day, max: 400}
    - {metric: quality_score, maxDecrease: 5%, maturity: 1h} # six hours of records: the default 6h would leave none
    - {metric: canary_win_rate, min: 45%}
status:
  phase: Progressing
  stage: 1
  stageStartedAt: 2026-04-16T11:00:00Z
`
	now := time.Date(2026, 4, 16, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		flags []string
		fires string // the rule whose failure rolls back; "" for a healthy canary that advances
	}{
		{"healthy", nil, ""},
		{"cost", []string{"--regress-cost", "2"}, "projected extra cost per day at 50%"},
		{"segment", []string{"--regress-segment", "language=de"}, "in segment language=de"},
		{"quality", []string{"--regress-quality"}, "quality score"},
		{"win rate", []string{"--regress-win-rate", "0.4"}, "canary win rate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			if err := os.WriteFile("summarizer.yaml", []byte(spec), 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(args ...string) (int, string, string) {
				var out, errOut strings.Builder
				app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Now: func() time.Time { return now }}
				return app.Main(args), out.String(), errOut.String()
			}
			args := append([]string{"simulate", "--spec", "summarizer.yaml", "--hours", "6", "--rate", "6000", "--backdate", "-o", "json"}, c.flags...)
			if code, out, errOut := run(args...); code != 0 {
				t.Fatalf("simulate: exit %d %s %s", code, out, errOut)
			} else if c.fires != "" && strings.Contains(out, `"regressions":[]`) {
				t.Errorf("simulate names no regression: %s", out)
			}
			code, out, errOut := run("evaluate", "--spec", "summarizer.yaml", "--now", now.Format(time.RFC3339), "-o", "json")
			var d struct {
				Decision string   `json:"decision"`
				Reasons  []string `json:"reasons"`
			}
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("evaluate: exit %d %v\n%s\n%s", code, err, out, errOut)
			}
			reasons := strings.Join(d.Reasons, "\n")
			switch {
			case c.fires == "" && d.Decision != "advance":
				t.Errorf("healthy canary: %s, want advance:\n%s", d.Decision, reasons)
			case c.fires != "" && (d.Decision != "rollback" || !strings.Contains(reasons, c.fires)):
				t.Errorf("%s: %s, want a rollback naming %q:\n%s", c.name, d.Decision, c.fires, reasons)
			}
		})
	}
}
