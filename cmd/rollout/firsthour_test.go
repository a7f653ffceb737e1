package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

// Issue 15, "failures that show": a metrics source that fails is named in reconcile's text output, the
// exit code says a rollout failed, and `status` says since when.
func TestAFailingSourceShowsInTextOutput(t *testing.T) {
	e := newE2E(t)
	e.reconcile() // start
	// A directory where the file was: the source fails to read it (a file not created yet would be no
	// data, which is no failure).
	if err := os.Remove(e.traffic); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.traffic, 0o755); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(time.Hour)
	code, out, errOut := e.run("reconcile")
	if code != exitFailed || !strings.Contains(out, "failed: metrics source") || strings.Contains(out, "nothing to do") {
		t.Errorf("reconcile with the source gone: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = e.run("status")
	if code != 0 || !strings.Contains(out, "metrics source failing since 2026-04-16T11:00:00Z") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, _ = e.run("status", "-o", "json")
	var sts []rolloutStatus
	if err := json.Unmarshal([]byte(out), &sts); err != nil || code != 0 || len(sts) != 1 || sts[0].MetricsFailingSince == nil {
		t.Errorf("status -o json: %d %s (%v)", code, out, err)
	}
	// The outage's commit is bookkeeping: status's last decision is still the start, and history lists
	// no row for it.
	if sts[0].LastDecision == nil || *sts[0].LastDecision != "start" {
		t.Errorf("last decision = %v, want start", sts[0].LastDecision)
	}
	_, out, _ = e.run("history", "summarizer")
	if strings.Contains(out, "metrics source failing") {
		t.Errorf("history lists the bookkeeping:\n%s", out)
	}
}

// Issue 15: an unset env: reference is a warning of validate and plan, naming the variable.
func TestUnsetNotificationVariableWarns(t *testing.T) {
	e := newE2E(t)
	delete(e.env, "ROLLOUT_ROLLBACK_WEBHOOK")
	code, _, errOut := e.run("plan")
	if code != 0 || !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "ROLLOUT_ROLLBACK_WEBHOOK is not set") {
		t.Errorf("plan: exit %d, stderr %s", code, errOut)
	}
	dir := t.TempDir()
	spec := strings.Replace(e2eSpec, "TRAFFIC", e.traffic, 1)
	if err := os.WriteFile(dir+"/summarizer.yaml", []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runApp("validate", dir+"/summarizer.yaml")
	if code != 0 || !strings.Contains(out, "summarizer.yaml:23:") || !strings.Contains(out, "warning: rollback.notify: ROLLOUT_ROLLBACK_WEBHOOK is not set") {
		t.Errorf("validate: exit %d\n%s", code, out)
	}
	code, out, _ = runApp("validate", "-o", "json", dir+"/summarizer.yaml")
	if code != 0 || !strings.Contains(out, `"severity": "warning"`) {
		t.Errorf("validate -o json: exit %d\n%s", code, out)
	}
}

// Issue 15: manual operations record who acted, and history shows it.
func TestHistoryNamesWhoActedByHand(t *testing.T) {
	e := newE2E(t)
	e.reconcile()
	e.env["GIT_AUTHOR_NAME"], e.env["GIT_AUTHOR_EMAIL"] = "Ada", "ada@example.com"
	code, out, errOut := e.run("pause", "summarizer", "--reason", "freeze", "-o", "json")
	var op operationJSON
	if err := json.Unmarshal([]byte(out), &op); err != nil || code != 0 || op.Actor == nil || *op.Actor != "Ada <ada@example.com>" || op.Commit == nil {
		t.Fatalf("pause -o json: %d %s %s (%v)", code, out, errOut, err)
	}
	if msg := gittest.Git(t, e.bare, "log", "-1", "--format=%B", "main"); !strings.Contains(msg, "Rollout-Actor: Ada <ada@example.com>") {
		t.Errorf("pause commit:\n%s", msg)
	}
	e.env["GITHUB_ACTOR"] = "octocat"
	e.run("resume", "summarizer")
	_, out, _ = e.run("history", "summarizer")
	// Issue 27: the text names the person (a name or a login), not the whole identity; JSON keeps it.
	for _, want := range []string{"Ada (via rollout-bot)", "octocat (via rollout-bot)", "pause: freeze"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	if _, out, _ = e.run("history", "summarizer", "-o", "json"); !strings.Contains(out, `"actor": "Ada <ada@example.com>"`) || !strings.Contains(out, `"who": "octocat"`) {
		t.Errorf("history -o json:\n%s", out)
	}
}

// Issue 15: `pause nope` and `history nope` exit alike, and usage errors point to the subcommand's help.
func TestUnknownRolloutAndUsageErrors(t *testing.T) {
	e := newE2E(t)
	for _, args := range [][]string{{"pause", "nope"}, {"history", "nope"}, {"resume", "nope"}, {"rollback", "nope", "--reason", "x"}} {
		code, _, errOut := e.run(args...)
		if code != exitUsage || !strings.Contains(errOut, `no such rollout "nope"`) {
			t.Errorf("%v: exit %d, stderr %s", args, code, errOut)
		}
	}
	// A typo of a rollout's name is told the name it is close to.
	for _, args := range [][]string{{"pause", "summarizr"}, {"history", "sumarizer"}} {
		code, _, errOut := e.run(args...)
		if code != exitUsage || !strings.Contains(errOut, `(did you mean "summarizer"?)`) {
			t.Errorf("%v: exit %d, stderr %s", args, code, errOut)
		}
	}
	code, _, errOut := runApp("plan", "--fromat", "markdown")
	if code != exitUsage || !strings.Contains(errOut, "Run 'rollout plan --help' for usage.") {
		t.Errorf("a mistyped flag: exit %d, stderr %s", code, errOut)
	}
	code, _, errOut = runApp("init", "--dir", "x", "--branch", "main")
	if code != exitUsage || !strings.Contains(errOut, "unknown flag: --branch") {
		t.Errorf("a repository flag on a command that reads no repository: exit %d, stderr %s", code, errOut)
	}
}

// Issue 15: the top-level help lists the environment variables and the exit codes.
func TestHelpListsEnvironmentAndExitCodes(t *testing.T) {
	_, out, _ := runApp("--help")
	for _, want := range []string{"Environment:", "GITHUB_TOKEN", "GITHUB_ACTOR", "ROLLOUT_BOT_NAME", "Exit codes:", "2  usage"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "--repo") {
		t.Errorf("the top-level help offers repository flags that most commands do not take:\n%s", out)
	}
}

// Issue 15: outside a repository, the error suggests --repo.
func TestOutsideARepositorySuggestsRepo(t *testing.T) {
	t.Chdir(t.TempDir())
	code, _, errOut := runApp("plan")
	if code != exitFailed || !strings.Contains(errOut, "--repo") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
}

// Issue 15: every command that prints results takes -o text|json, and prints one JSON value.
func TestEveryResultCommandTakesOutput(t *testing.T) {
	app := &App{Getenv: func(string) string { return "" }}
	root := app.rootCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help", "completion", "schema", "export", "demo", "run", "report":
			continue // schema and export print one JSON document only; demo tells a story; run serves; report writes a page (-o html)
		}
		f := c.Flags().Lookup("output")
		if f == nil || f.Shorthand != "o" || !strings.Contains(f.Usage, "json") {
			t.Errorf("%s has no -o text|json", c.Name())
		}
	}
	e := newE2E(t)
	for _, args := range [][]string{{"plan", "-o", "json"}, {"reconcile", "-o", "json"}, {"status", "-o", "json"}, {"history", "summarizer", "-o", "json"}} {
		_, out, errOut := e.run(args...)
		var v []any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%v: not one JSON array: %v\n%s%s", args, err, out, errOut)
		}
	}
}

// Issue 15, small confusions: the README documents the default salt as the code computes it (with its
// hyphen) and the glob syntax of include/exclude.
func TestReadmeDocumentsSaltAndGlobs(t *testing.T) {
	doc := readme(t)
	spec, _ := rollouts.Parse("x.yaml", []byte("apiVersion: rollout/v1\nkind: Rollout\nname: n\nstable: {model: a}\ncanary: {model: m}\nstages: [{weight: 5, minDuration: 1h}]\nmetrics: {source: 'file:x.jsonl'}\n"))
	if spec == nil || spec.Assignment.Salt != "n-m" {
		t.Fatalf("default salt = %+v", spec)
	}
	for _, want := range []string{"`<name>-<canary.model>`", "`path.Match`"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the README does not document %s", want)
		}
	}
}

// Issue 15: a push refused because the remote is a non-bare repository with the branch checked out
// says why and what to do.
func TestPushToACheckedOutBranchSaysWhatToDo(t *testing.T) {
	e := newE2E(t)
	src := t.TempDir() // a non-bare repository without an origin, its branch checked out
	gittest.Git(t, src, "init", "--quiet")
	if err := os.MkdirAll(src+"/rollouts", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src+"/rollouts/summarizer.yaml", []byte(strings.Replace(e2eSpec, "TRAFFIC", e.traffic, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, src, "add", ".")
	gittest.Git(t, src, "commit", "--quiet", "-m", "specs")
	var out, errBuf strings.Builder
	app := &App{Stdout: &out, Stderr: &errBuf, Getenv: func(k string) string { return e.env[k] }, Now: func() time.Time { return e.now }}
	code, errOut := app.Main([]string{"reconcile", "--repo", src}), errBuf.String()
	if code != exitFailed || !strings.Contains(errOut, "checked out") || !strings.Contains(errOut, "hint:") || !strings.Contains(errOut, "bare repository") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
}

// Issue 15: a bookkeeping commit ("notification pending", with the trailer or, from older versions,
// without it) is not a second rollback row of history, and manual commits show their actor.
func TestHistorySkipsBookkeeping(t *testing.T) {
	spec := func(w int) []byte { return []byte(fmt.Sprintf("traffic:\n  weight: %d\n", w)) }
	trailers := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	commits := []gitrepo.Commit{ // newest first
		{Hash: "5", Subject: "rollout(s): notification delivered", Content: spec(0), Bot: true,
			Trailers: trailers("Rollout", "s", "Rollout-Decision", "rollback", "Rollout-Bookkeeping", "notification")},
		{Hash: "4", Subject: "rollout(s): notification pending", Content: spec(0), Bot: true,
			Trailers: trailers("Rollout", "s", "Rollout-Decision", "rollback")}, // an older version's, without the trailer
		{Hash: "3", Subject: "rollout(s): rollback 5% → 0%", Content: spec(0), Bot: true,
			Trailers: trailers("Rollout", "s", "Rollout-Decision", "rollback", "Rollout-Actor", "Ada <ada@example.com>")},
		{Hash: "2", Subject: "rollout(s): start stage 0 at 5%", Content: spec(5), Bot: true, Trailers: trailers("Rollout", "s", "Rollout-Decision", "start")},
		{Hash: "1", Subject: "add s", Content: spec(0)},
	}
	got := weightChanges("s", commits)
	var hashes []string
	for _, e := range got {
		hashes = append(hashes, e.Commit)
	}
	if strings.Join(hashes, ",") != "1,2,3" {
		t.Errorf("rows %v, want 1,2,3 (no bookkeeping rows)", hashes)
	}
	if len(got) == 3 && got[2].Actor != "Ada <ada@example.com>" {
		t.Errorf("the rollback's actor = %q", got[2].Actor)
	}
}

// Issue 15: a failing source fills the error of reconcile's JSON, which the Action's summary shows.
func TestAFailingSourceFillsTheJSONError(t *testing.T) {
	e := newE2E(t)
	e.reconcile()
	// A directory where the file was: the source fails to read it (a file not created yet would be no
	// data, which is no failure).
	if err := os.Remove(e.traffic); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.traffic, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, _ := e.run("reconcile", "-o", "json")
	var res []resultJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitFailed || len(res) != 1 || res[0].Error == nil ||
		!strings.Contains(*res[0].Error, "metrics source") {
		t.Errorf("exit %d, %s (%v)", code, out, err)
	}
}

// A sample-ratio mismatch is alerted once per episode although every run is a new process: the run
// that sees it begin records status.sampleRatioMismatchSince with the alert, later runs write and send
// nothing, `status` says since when, and the run that sees the shares match again clears it.
func TestSampleRatioMismatchAlertsOnceAcrossRuns(t *testing.T) {
	e := newE2E(t)
	e.reconcile() // start
	e.now = e.now.Add(2 * time.Hour)
	e.weight = 20 // the spec sets 5%
	e.addTraffic(400, 0, 1)
	start := e.head("main")
	for i := range 3 {
		if res := e.reconcile(); *res.Decision != "hold" {
			t.Fatalf("run %d: %+v", i, res)
		}
		if code, _, errOut := e.run("plan"); code != 0 {
			t.Fatalf("plan: exit %d %s", code, errOut)
		}
	}
	log := gittest.Git(t, e.bare, "log", "--format=%s", start+"..main")
	if strings.TrimSpace(log) != "rollout(summarizer): sample ratio mismatch" {
		t.Errorf("commits of the episode's start:\n%s", log)
	}
	if len(e.hooks) != 1 {
		t.Fatalf("%d notifications, want one alert", len(e.hooks))
	}
	if hook := <-e.hooks; !strings.Contains(fmt.Sprint(hook), "alert") || !strings.Contains(fmt.Sprint(hook), "sample ratio") {
		t.Errorf("alert: %v", hook)
	}
	code, out, _ := e.run("status")
	if code != 0 || !strings.Contains(out, "sample ratio mismatch since 2026-04-16T12:00:00Z") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, _ = e.run("status", "-o", "json")
	var sts []rolloutStatus
	if err := json.Unmarshal([]byte(out), &sts); err != nil || code != 0 || len(sts) != 1 || sts[0].SampleRatioMismatchSince == nil ||
		!sts[0].SampleRatioMismatchSince.Equal(e.now) {
		t.Errorf("status -o json: %d %s (%v)", code, out, err)
	}
	// The shares match again: one commit clears it, and no one is told.
	if err := os.WriteFile(e.traffic, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(30 * time.Minute)
	e.weight = 5
	e.addTraffic(400, 0, 2)
	e.reconcile()
	e.reconcile()
	log = gittest.Git(t, e.bare, "log", "--format=%s", start+"..main")
	if strings.TrimSpace(log) != "rollout(summarizer): sample ratio matches again after 30m0s\nrollout(summarizer): sample ratio mismatch" {
		t.Errorf("commits of the episode:\n%s", log)
	}
	if _, out, _ := e.run("status", "-o", "json"); strings.Contains(out, `"sampleRatioMismatchSince":"`) || len(e.hooks) != 0 {
		t.Errorf("after the end: %s, %d notifications", out, len(e.hooks))
	}
}
