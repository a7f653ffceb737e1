package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// runEnv runs the CLI with the given environment.
func runEnv(env map[string]string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	app := &App{Stdin: bytes.NewReader(nil), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	code := app.Main(args)
	return code, stdout.String(), stderr.String()
}

// In GitHub Actions without a usable token, GitHub mode is skipped with a warning that says what is
// missing; outside Actions nothing is said.
func TestGitHubModeSkippedIsWarned(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"rollouts/.keep": ""})
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no token", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/llm"}, "GitHub mode was skipped (no token: GITHUB_TOKEN is empty"},
		{"no repository", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "t0k3n"}, "GitHub mode was skipped (GITHUB_REPOSITORY is not set)"},
		{"not in Actions", map[string]string{"GITHUB_REPOSITORY": "acme/llm"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, stderr := runEnv(tc.env, "--repo", bare, "plan")
			if tc.want == "" && strings.Contains(stderr, "GitHub mode") || tc.want != "" && !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr = %q, want %q", stderr, tc.want)
			}
			if strings.Contains(stderr, "t0k3n") {
				t.Errorf("the token reached stderr: %q", stderr)
			}
		})
	}
}

// plan, reconcile and status that find no spec say where they looked, and fail in CI.
func TestNoSpecsSaysWhereItLooked(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"rollouts/.keep": "", "README.md": "app\n"})
	for _, cmd := range [][]string{{"plan"}, {"reconcile"}, {"status"}} {
		for _, ci := range []string{"", "true"} {
			code, _, stderr := runEnv(map[string]string{"CI": ci}, append([]string{"--repo", bare}, cmd...)...)
			want := 0
			if ci == "true" {
				want = exitFailed
			}
			if code != want || !strings.Contains(stderr, "no rollout specs found in rollouts/*.yaml on branch main of "+bare) {
				t.Errorf("%s (CI=%q): exit %d (want %d), stderr %q", cmd[0], ci, code, want, stderr)
			}
		}
	}
}

// A metrics file the application has not created yet is no data, not a failure: reconcile holds with
// "no data yet", exits 0 and commits nothing (no "metrics source failing" bookkeeping), run after run.
func TestNoDataYetHoldsWithoutCommits(t *testing.T) {
	e := newE2E(t)
	e.reconcile() // start
	if err := os.Remove(e.traffic); err != nil {
		t.Fatal(err)
	}
	head := e.head("main")
	for i := 0; i < 4; i++ {
		e.now = e.now.Add(time.Hour)
		code, out, errOut := e.run("reconcile", "-o", "json")
		var res []resultJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res) != 1 || res[0].Error != nil ||
			res[0].Decision == nil || *res[0].Decision != "hold" || !strings.Contains(strings.Join(res[0].Reasons, "\n"), "no data yet: "+e.traffic+" does not exist yet") {
			t.Fatalf("run %d: exit %d\n%s\n%s (%v)", i, code, out, errOut, err)
		}
	}
	if e.head("main") != head {
		t.Errorf("no data yet committed to main")
	}
	code, out, _ := e.run("reconcile")
	if code != 0 || strings.Contains(out, "failed") {
		t.Errorf("text output: exit %d\n%s", code, out)
	}
}

// A malformed line is counted and reported, never silently dropped: reconcile and plan give it among
// the decision's reasons (-o json) and as a warning (stderr), which says where it is and why.
func TestMalformedLinesAreReported(t *testing.T) {
	e := newE2E(t)
	e.reconcile() // start
	e.addTraffic(300, 0.01, 1)
	f, err := os.OpenFile(e.traffic, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("garbage line\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := "1 malformed records skipped in file:" + e.traffic
	for _, cmd := range []string{"plan", "reconcile"} {
		code, out, errOut := e.run(cmd, "-o", "json")
		var res []resultJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res) != 1 {
			t.Fatalf("%s: exit %d\n%s\n%s (%v)", cmd, code, out, errOut, err)
		}
		if !strings.Contains(strings.Join(res[0].Reasons, "\n"), want) || !strings.Contains(strings.Join(res[0].Warnings, "\n"), want) {
			t.Errorf("%s -o json: reasons %q, warnings %q; want both to say %q", cmd, res[0].Reasons, res[0].Warnings, want)
		}
		code, _, errOut = e.run(cmd)
		if code != 0 || !strings.Contains(errOut, "rollout: warning: summarizer: "+want) || !strings.Contains(errOut, "invalid JSON") {
			t.Errorf("%s (text): exit %d, stderr %q", cmd, code, errOut)
		}
	}
}
