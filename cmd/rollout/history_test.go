package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
)

const historySpec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable:
  model: claude-sonnet-4-5-20260301
canary:
  model: claude-sonnet-4-5-20260415
traffic:
  weight: %d
  shadow: 0
stages:
  - {weight: 5, minDuration: 4h, minRequests: 200}
  - {weight: 25, minDuration: 8h, minRequests: 200}
metrics:
  source: file:traffic/summarizer.jsonl
`

func historySpecAt(weight int) []byte {
	return []byte(strings.Replace(historySpec, "%d", strconv.Itoa(weight), 1))
}

// historyRepo makes a remote where the bot starts the rollout at 5%, a human changes the description
// only, the bot advances to 25% on its branch (merged by a human) and then rolls back.
func historyRepo(t *testing.T) string {
	t.Helper()
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": string(historySpecAt(0))})
	ctx := context.Background()
	r, err := gitrepo.Open(ctx, gitrepo.Options{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	push := func(branch, expect string, weight int, msg string, when time.Time) string {
		t.Helper()
		snap, err := r.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if expect == "head" {
			expect = snap.Head
		}
		c, err := r.Push(ctx, reconcile.PushRequest{Branch: branch, Parent: snap.Head, Expect: expect, When: when, Message: msg,
			Files: map[string][]byte{"rollouts/summarizer.yaml": historySpecAt(weight)}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	push("main", "head", 5, "rollout(summarizer): start 0% → 5%\n\nRollout: summarizer\nRollout-Decision: start\n", at)
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"README.md": "unrelated\n"})
	human.Commit("docs")
	human.Push()
	push("rollout/summarizer", "", 25, "rollout(summarizer): 5% → 25%\n\nRollout: summarizer\nRollout-Decision: advance\n", at.Add(5*time.Hour))
	human.Git("pull", "--quiet")
	human.Git("merge", "--quiet", "--no-ff", "-m", "Merge rollout/summarizer", "origin/rollout/summarizer")
	human.Push()
	push("main", "head", 0, "rollout(summarizer): rollback 25% → 0%\n\nerror_rate: 4.1% > 2%\n\nRollout: summarizer\nRollout-Decision: rollback\n", at.Add(9*time.Hour))
	return bare
}

func historyMain(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" },
		Now: func() time.Time { return time.Date(2026, 4, 17, 0, 0, 0, 0, time.UTC) }}
	code = app.Main(args)
	return out.String(), errOut.String(), code
}

func TestHistoryJSON(t *testing.T) {
	bare := historyRepo(t)
	stdout, stderr, code := historyMain("history", "summarizer", "--repo", bare, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var entries []historyEntry
	if err := json.Unmarshal([]byte(stdout), &entries); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	type change struct {
		from, to *int
		decision string
		author   string
	}
	w := func(n int) *int { return &n }
	want := []change{
		{nil, w(0), "", gittest.HumanName},
		{w(0), w(5), "start", "rollout-bot"},
		{w(5), w(25), "advance", "rollout-bot"},
		{w(25), w(0), "rollback", "rollout-bot"},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d:\n%s", len(entries), len(want), stdout)
	}
	for i, e := range entries {
		if !sameInt(e.From, want[i].from) || !sameInt(e.To, want[i].to) || e.Decision != want[i].decision || e.Author != want[i].author {
			t.Errorf("entry %d = %+v, want %+v", i, e, want[i])
		}
	}
	if entries[3].Subject != "rollout(summarizer): rollback 25% → 0%" || !entries[3].When.Equal(time.Date(2026, 4, 16, 19, 0, 0, 0, time.UTC)) {
		t.Errorf("rollback entry = %+v", entries[3])
	}
}

func TestHistoryTable(t *testing.T) {
	bare := historyRepo(t)
	stdout, stderr, code := historyMain("history", "summarizer", "--repo", bare)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "WHEN") {
		t.Fatalf("table:\n%s", stdout)
	}
	for i, want := range []string{"-  → 0%", "0% → 5%", "5% → 25%", "25% → 0%"} {
		fields := strings.Join(strings.Fields(lines[i+1]), " ")
		if !strings.Contains(fields, strings.Join(strings.Fields(want), " ")) {
			t.Errorf("line %d = %q, want %q", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[4], "rollback") || !strings.Contains(lines[4], "rollout-bot") {
		t.Errorf("last line = %q", lines[4])
	}
}

func TestHistoryErrors(t *testing.T) {
	bare := historyRepo(t)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"history"}, exitUsage, "accepts 1 arg"},
		{[]string{"history", "summarizer", "--repo", bare, "-o", "yaml"}, exitUsage, "unknown output format"},
		{[]string{"history", "nope", "--repo", bare}, exitUsage, `no such rollout "nope"`},
		{[]string{"history", "summarizer", "--repo", bare + "-missing"}, exitFailed, "repository path"},
	}
	for _, tt := range tests {
		_, stderr, code := historyMain(tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q", tt.args, code, stderr, tt.code, tt.msg)
		}
	}
}

func TestHistoryOverHTTPWithGitHubToken(t *testing.T) {
	bare := historyRepo(t)
	srv := gittest.NewServer(t, filepath.Dir(bare))
	srv.RequireAuth("x-access-token", "ghs_secret")
	url := srv.URL + "/" + filepath.Base(bare)
	var out, errOut bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), Now: func() time.Time { return time.Date(2026, 4, 17, 0, 0, 0, 0, time.UTC) },
		Getenv: func(k string) string {
			if k == "GITHUB_TOKEN" {
				return "ghs_secret"
			}
			return ""
		}}
	if code := app.Main([]string{"history", "summarizer", "--repo", url}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "25% → 0%") {
		t.Fatalf("history over HTTP:\n%s", out.String())
	}
	// Without the token: a clear error that names the remote, never a secret.
	_, stderr, code := historyMain("history", "summarizer", "--repo", url)
	if code != exitFailed || !strings.Contains(stderr, "authentication required") || strings.Contains(stderr, "ghs_secret") {
		t.Fatalf("without a token: exit %d, %q", code, stderr)
	}
}

// TestHistoryFollowsRenamedSpec: a team renames the spec file after the rollout's decisions. Its
// history still shows every weight change, each with the file it was made in, and status still knows
// the last decision, as `git log --follow` would.
func TestHistoryFollowsRenamedSpec(t *testing.T) {
	bare := historyRepo(t)
	human := gittest.Clone(t, bare)
	human.Git("mv", "rollouts/summarizer.yaml", "rollouts/summarizer.yml")
	human.Commit("use .yml like the other configs")
	human.Push()

	stdout, stderr, code := historyMain("history", "summarizer", "--repo", bare, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var entries []historyEntry
	if err := json.Unmarshal([]byte(stdout), &entries); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s", percentChange(e.From, e.To), e.File))
	}
	want := []string{"- → 0% rollouts/summarizer.yaml", "0% → 5% rollouts/summarizer.yaml",
		"5% → 25% rollouts/summarizer.yaml", "25% → 0% rollouts/summarizer.yaml"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history after the rename:\n got  %q\n want %q", got, want)
	}

	stdout, stderr, code = historyMain("status", "--repo", bare, "-o", "json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	var statuses []rolloutStatus
	if err := json.Unmarshal([]byte(stdout), &statuses); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(statuses) != 1 || statuses[0].File != "rollouts/summarizer.yml" || statuses[0].LastDecision == nil || *statuses[0].LastDecision != "rollback" {
		t.Errorf("status after the rename = %s", stdout)
	}
}

// TestReportFollowsRenamedSpec: the report draws the weight over time from the same history, so the
// changes made before a rename are still on its chart.
func TestReportFollowsRenamedSpec(t *testing.T) {
	bare := historyRepo(t)
	human := gittest.Clone(t, bare)
	human.Git("mv", "rollouts/summarizer.yaml", "rollouts/summarizer.yml")
	human.Commit("use .yml like the other configs")
	human.Push()
	t.Chdir(t.TempDir()) // the spec's file: source is missing there: the report says so and still draws the weight

	html := filepath.Join(t.TempDir(), "report.html")
	if _, stderr, code := historyMain("report", "--repo", bare, "--now", "2026-04-17T00:00:00Z", "--no-cache", "--out", html); code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, decision := range []string{"start", "advance", "rollback"} {
		commit := gittest.Git(t, bare, "log", "--format=%H", "--grep=Rollout-Decision: "+decision, "main")
		if commit == "" || !strings.Contains(string(page), commit[:8]) {
			t.Errorf("the report does not show the %s commit %q made before the rename", decision, commit)
		}
	}
}
