package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

const simulateSpec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable: {model: claude-sonnet-4-5-20260301}
canary: {model: claude-sonnet-4-5-20260415}
traffic: {weight: 25}
stages:
  - {weight: 5, minDuration: 1h}
  - {weight: 25, minDuration: 1h}
metrics:
  source: file:traffic/summarizer.jsonl
analysis:
  rules:
    - {metric: error_rate, max: 0.1}
status:
  phase: Progressing
  stage: 1
  stageStartedAt: 2026-04-16T11:00:00Z
`

// simulate writes the spec's traffic in the present, split at its weight, healthy or regressing, and
// --backdate moves the stage's start back by minimal edit.
func TestSimulate(t *testing.T) {
	now := time.Date(2026, 4, 16, 12, 0, 0, 0, time.UTC)
	t.Chdir(t.TempDir())
	if err := os.WriteFile("summarizer.yaml", []byte(simulateSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Now: func() time.Time { return now }}
		return app.Main(args), out.String(), errOut.String()
	}
	code, out, errOut := run("simulate", "--spec", "summarizer.yaml", "--hours", "2", "--rate", "1000", "-o", "json")
	var sim simulation
	// Users are routed by the spec's assignment, so the canary's share of requests is about the weight.
	if err := json.Unmarshal([]byte(out), &sim); err != nil || code != 0 || sim.Backdated {
		t.Fatalf("simulate: exit %d %s %s (%v)", code, out, errOut, err)
	}
	total := sim.Stable + sim.Canary
	if share := float64(sim.Canary) / float64(total); total < 1600 || total > 2800 || share < 0.2 || share > 0.3 {
		t.Fatalf("simulate: %d stable and %d canary requests, want about 2,000 (more near the daily peak) with 25%% on the canary", sim.Stable, sim.Canary)
	}
	errorsBy := func() (stable, canary, n int) {
		f, err := os.Open(filepath.Join("traffic", "summarizer.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r struct {
				TS      time.Time `json:"ts"`
				Variant string    `json:"variant"`
				Error   bool      `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			if r.TS.Before(now.Add(-2*time.Hour)) || r.TS.After(now) {
				t.Fatalf("record at %s, outside the last two hours", r.TS)
			}
			n++
			if r.Error && r.Variant == "canary" {
				canary++
			} else if r.Error {
				stable++
			}
		}
		return stable, canary, n
	}
	if _, canary, n := errorsBy(); n != total || canary > 30 {
		t.Errorf("healthy: %d records, %d canary errors", n, canary)
	}
	code, _, errOut = run("simulate", "--spec", "summarizer.yaml", "--hours", "2", "--rate", "1000", "--regress", "--backdate", "--seed", "2")
	if code != 0 {
		t.Fatalf("regress: exit %d %s", code, errOut)
	}
	if _, canary, n := errorsBy(); n < total+1600 || canary < 50 {
		t.Errorf("regressing: %d records, %d canary errors; want about 75 more", n, canary)
	}
	src, _ := os.ReadFile("summarizer.yaml")
	spec, _ := rollouts.Parse("summarizer.yaml", src)
	if spec == nil || !spec.Status.StageStartedAt.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("--backdate left the spec:\n%s", src)
	}
	if strings.Replace(string(src), "2026-04-16T10:00:00Z", "2026-04-16T11:00:00Z", 1) != simulateSpec {
		t.Errorf("--backdate changed more than stageStartedAt:\n%s", src)
	}
	if code, _, errOut := run("simulate"); code != exitUsage || !strings.Contains(errOut, "--spec") {
		t.Errorf("no --spec: exit %d %s", code, errOut)
	}
}

// --backdate warns when the file already holds records of the rollout in the backdated window (an
// earlier simulate's, routed at an earlier stage's weight), since the judge would count them too; the
// records of other rollouts, or older ones, are not its business.
func TestSimulateBackdateWarnsOfRecordsInTheWindow(t *testing.T) {
	now := time.Date(2026, 4, 16, 12, 0, 0, 0, time.UTC)
	t.Chdir(t.TempDir())
	if err := os.WriteFile("summarizer.yaml", []byte(simulateSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("traffic", 0o755); err != nil {
		t.Fatal(err)
	}
	older := `{"ts":"2026-04-16T08:00:00Z","rollout":"summarizer","variant":"canary"}` + "\n" +
		`{"ts":"2026-04-16T11:00:00Z","rollout":"tagger","variant":"canary"}` + "\n"
	if err := os.WriteFile(filepath.Join("traffic", "summarizer.jsonl"), []byte(older), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Now: func() time.Time { return now }}
		return app.Main(args), errOut.String()
	}
	if code, errOut := run("simulate", "--spec", "summarizer.yaml", "--hours", "2", "--rate", "100", "--backdate"); code != 0 || errOut != "" {
		t.Fatalf("first simulate: exit %d, stderr %q; want no warning", code, errOut)
	}
	code, errOut := run("simulate", "--spec", "summarizer.yaml", "--hours", "1", "--rate", "100", "--regress", "--backdate")
	if code != 0 || !strings.Contains(errOut, "warning: traffic/summarizer.jsonl already holds") ||
		!strings.Contains(errOut, "sample-ratio mismatch") || !strings.Contains(errOut, "since 2026-04-16T11:00:00Z") {
		t.Errorf("second simulate into the first one's hours: exit %d, stderr %q", code, errOut)
	}
}

// --backdate checks everything it needs before it writes: a spec that is not progressing, or a spec
// file that cannot be written, fails with no record appended to the traffic file.
func TestSimulateBackdateChecksBeforeItWrites(t *testing.T) {
	now := time.Date(2026, 4, 16, 12, 0, 0, 0, time.UTC)
	pending := simulateSpec[:strings.Index(simulateSpec, "status:")]
	for _, tc := range []struct {
		name, spec string
		mode       os.FileMode
		want       string
	}{
		{"not progressing", pending, 0o644, "is not progressing yet"},
		{"read-only spec file", simulateSpec, 0o444, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == 0o444 && os.Geteuid() == 0 {
				t.Skip("root writes read-only files")
			}
			t.Chdir(t.TempDir())
			if err := os.WriteFile("summarizer.yaml", []byte(tc.spec), tc.mode); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Now: func() time.Time { return now }}
			code := app.Main([]string{"simulate", "--spec", "summarizer.yaml", "--hours", "2", "--rate", "100", "--backdate"})
			if code == 0 || !strings.Contains(errOut.String(), tc.want) || !strings.Contains(errOut.String(), "no records were written") {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, errOut.String(), tc.want)
			}
			if _, err := os.Stat(filepath.Join("traffic", "summarizer.jsonl")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("records were written before the check: %v", err)
			}
		})
	}
}
