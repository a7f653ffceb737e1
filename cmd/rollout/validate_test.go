package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/rollouts"
)

// The broken-spec corpus under testdata/specs, shown through `rollout validate` in each format.
func TestValidateCorpus(t *testing.T) {
	base, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join("testdata", "specs"))
	tests := []struct {
		golden   string
		args     []string
		wantCode int
	}{
		{"validate/corpus.txt", []string{"validate"}, exitFailed},
		{"validate/corpus.github", []string{"validate", "--format", "github"}, exitFailed},
		{"validate/corpus.json", []string{"validate", "--format=json"}, exitFailed},
		{"validate/good.txt", []string{"validate", "rollouts/good.yaml"}, exitOK},
		{"validate/lints.txt", []string{"validate", "rollouts/lints.yaml", "rollouts/escape.yaml"}, exitOK},
		{"validate/lints-strict.github", []string{"validate", "--strict", "--format", "github", "rollouts/lints.yaml"}, exitFailed},
		{"validate/missing.txt", []string{"validate", "rollouts/nope.yaml", "rollouts/good.yaml"}, exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			code, stdout, stderr := runApp(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			checkGolden(t, base, tt.golden, []byte(stdout+"--- stderr\n"+stderr))
		})
	}
}

func TestValidateJSONShape(t *testing.T) {
	t.Chdir(filepath.Join("testdata", "specs"))
	code, stdout, _ := runApp("validate", "--format", "json", "rollouts/good.yaml", "rollouts/typos.yaml")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	var report struct {
		Valid    bool
		Rollouts []struct{ Name, File string }
		Problems []struct {
			File, Severity, Message string
			Line, Col               int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if report.Valid || len(report.Rollouts) != 1 || report.Rollouts[0].Name != "summarizer" {
		t.Errorf("report = %+v", report)
	}
	for _, p := range report.Problems {
		if p.Severity == "warning" && p.File == "rollouts/good.yaml" {
			continue // the contract's example runs a query on a file: source, which lint points out
		}
		if p.File != "rollouts/typos.yaml" || p.Line == 0 || p.Col == 0 || p.Severity != "error" {
			t.Errorf("problem %+v", p)
		}
	}
}

// Secrets in a spec are never echoed, in any format.
func TestValidateNeverPrintsSecrets(t *testing.T) {
	t.Chdir(filepath.Join("testdata", "specs"))
	for _, format := range []string{"text", "github", "json"} {
		_, stdout, stderr := runApp("validate", "--format", format, "rollouts/secrets.yaml")
		for _, secret := range []string{"s3cr3t-t0ken", "XXXXXXXXXXXXXXXX", "hooks.slack.com"} {
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("%s output holds %q:\n%s", format, secret, stdout)
			}
		}
	}
}

func TestValidateUsage(t *testing.T) {
	tests := [][]string{
		{"validate", "--format", "xml"},
		{"validate", "--no-such-flag"},
	}
	for _, args := range tests {
		if code, _, stderr := runApp(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2; stderr %s", args, code, stderr)
		}
	}
}

// The default is the --dir folder of the --repo checkout.
func TestValidateDefaultDir(t *testing.T) {
	code, stdout, stderr := runApp("validate", "--repo", filepath.Join("..", "..", "rollouts", "testdata"), "--dir", "edit")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "11 rollouts valid, 0 errors") {
		t.Errorf("summary: %s", stderr)
	}
}

func TestEscapeWorkflowCommand(t *testing.T) {
	if got := escapeData("50% done\nnext"); got != "50%25 done%0Anext" {
		t.Errorf("escapeData = %q", got)
	}
	if got := escapeProperty("a:b,c"); got != "a%3Ab%2Cc" {
		t.Errorf("escapeProperty = %q", got)
	}
}

// Every example repository under examples/ validates with no errors, its lints resolved against its
// own tree.
func TestValidateExamples(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "rollouts"))
	for _, dir := range dirs {
		repo := filepath.Dir(dir)
		code, stdout, stderr := runApp("validate", "--repo", repo)
		if code != exitOK || !strings.Contains(stderr, " 0 errors") {
			t.Errorf("%s: exit %d\n%s%s", repo, code, stdout, stderr)
		}
	}
}

// A folder without spec files is valid (a repository before its first rollout), but the user hears that
// nothing was checked.
func TestValidateEmptyFolderHints(t *testing.T) {
	code, _, stderr := runApp("validate", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	if !strings.Contains(stderr, "0 rollouts valid") || !strings.Contains(stderr, "hint: no spec files") {
		t.Errorf("stderr = %q", stderr)
	}
}

// Outside a checkout, the missing rollouts folder is an error with the next step.
func TestValidateOutsideACheckoutHints(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "rollouts")
	code, _, stderr := runApp("validate", missing)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(stderr, "hint: there is no "+missing+" here: run rollout inside the checkout") {
		t.Errorf("stderr = %q", stderr)
	}
}

// A stage that starts in the future is an error of `rollout validate`, which checks it against its
// clock and names clock skew; the same spec is valid once that time has come.
func TestValidateFutureStageStart(t *testing.T) {
	dir := t.TempDir()
	spec := "apiVersion: rollout/v1\nkind: Rollout\nname: skew\nstable: {model: m-20260101}\ncanary: {model: c-20260202}\n" +
		"traffic: {weight: 5}\nstages: [{weight: 5}, {weight: 100}]\nstatus:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-05-24T09:00:00Z\n"
	path := filepath.Join(dir, "skew.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  time.Time
		code int
		want string
	}{
		{time.Date(2026, 4, 17, 12, 0, 0, 0, time.UTC), exitFailed, "skew.yaml:11:19: status.stageStartedAt: 2026-05-24T09:00:00Z is 885h0m0s in the future (now is 2026-04-17T12:00:00Z): clock skew"},
		// A minute of skew, once tolerated silently, is an error too.
		{time.Date(2026, 5, 24, 8, 59, 0, 0, time.UTC), exitFailed, "skew.yaml:11:19: status.stageStartedAt: 2026-05-24T09:00:00Z is 1m0s in the future (now is 2026-05-24T08:59:00Z): clock skew"},
		{time.Date(2026, 5, 24, 9, 0, 0, 0, time.UTC), exitOK, ""},
	} {
		var stdout, stderr bytes.Buffer
		app := &App{Stdin: bytes.NewReader(nil), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" },
			Now: func() time.Time { return tc.now }}
		code := app.Main([]string{"validate", path})
		if code != tc.code {
			t.Errorf("now %s: exit %d, want %d\n%s%s", tc.now, code, tc.code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("output does not name the clock skew at its position:\n%s", stdout.String())
		}
	}
}

// A spec whose running canary refers to a prompt file that the checkout changed validates, with a note
// that the rollout starts over at stage 0, naming the file, in every format.
func TestValidateNotesAPromptRestart(t *testing.T) {
	dir := t.TempDir()
	spec := "apiVersion: rollout/v1\nkind: Rollout\nname: summarizer\nstable: {model: m-20260101}\n" +
		"canary: {model: m-20260101, prompt: prompts/summarize/v4.md}\ntraffic: {weight: 5}\nstages: [{weight: 5}, {weight: 100}]\n" +
		"status:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-04-16T00:00:00Z\n"
	parsed, problems := rollouts.Parse("rollouts/summarizer.yaml", []byte(spec))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	rollouts.ReadSpecReferences(parsed, fstest.MapFS{"prompts/summarize/v4.md": {Data: []byte("three sentences\n")}})
	st := *parsed.Status
	st.Canary, st.Files = rollouts.CanaryFingerprint(parsed), rollouts.CanaryFiles(parsed)
	running, err := rollouts.Edit([]byte(spec), rollouts.Change{Status: &st})
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rollouts/summarizer.yaml", string(running))
	write("prompts/summarize/v4.md", "three sentences\n")
	if code, stdout, stderr := runApp("--repo", dir, "validate"); code != exitOK || strings.Contains(stdout, "note:") {
		t.Fatalf("unchanged prompt: exit %d\n%s%s", code, stdout, stderr)
	}
	write("prompts/summarize/v4.md", "one sentence\n")
	const note = "summarizer: prompt prompts/summarize/v4.md changed: the rollout starts over at stage 0 once this is on the default branch"
	for _, format := range []string{"text", "github", "json"} {
		code, stdout, stderr := runApp("--repo", dir, "validate", "--format", format)
		if code != exitOK || !strings.Contains(stdout, note) {
			t.Errorf("--format %s: exit %d, want 0 and the note %q:\n%s%s", format, code, note, stdout, stderr)
		}
	}
}

// The metrics source and schema and the durations the run cannot read are refused by validate, each at
// file:line:col of the offending value, without echoing a source's password.
func TestValidateSourcesSchemasAndDurations(t *testing.T) {
	t.Chdir(filepath.Join("testdata", "specs"))
	code, stdout, stderr := runApp("validate", "rollouts/sources.yaml", "rollouts/schemas.yaml", "rollouts/durations.yaml")
	if code != exitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	const forms = "file:PATH, prometheus:URL, postgres://…, postgresql://… or clickhouse://…"
	const durations = "; want a Go duration such as 4h or 1h30m, with d for days (2d, 1.5d, 1d12h)"
	want := []string{
		`rollouts/durations.yaml:9:31: stages[1].minDuration: invalid duration "1day": unknown unit "day" (write 1d)` + durations,
		`rollouts/durations.yaml:10:53: stages[2].maxDuration: invalid duration "2d-3h": unexpected '-'` + durations,
		`rollouts/durations.yaml:12:17: rollback.keepPrevious: invalid duration "30 days": a space is not allowed in a duration` + durations,
		`rollouts/schemas.yaml:10:11: metrics.schema: otel-genai is read from Prometheus; want a prometheus:URL source, not a file source`,
		`rollouts/sources.yaml:9:11: metrics.source: unsupported metrics source "mysql"; want ` + forms,
		`rollouts/sources.yaml:10:11: metrics.schema: "otel_genai" is not one of rollout, otel-genai, litellm, langfuse, helicone; did you mean "otel-genai"?`,
	}
	if got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("validate printed:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
	}
	if !strings.Contains(stderr, "0 rollouts valid, 6 errors") {
		t.Errorf("summary: %s", stderr)
	}
	if strings.Contains(stdout+stderr, "hunter2") {
		t.Errorf("the source's password reached the output:\n%s", stdout)
	}
}

// validate refuses exactly the metrics sources the run cannot open as unsupported: both go by
// rollouts.SourceKindOf.
func TestValidateAgreesWithTheRunOnSources(t *testing.T) {
	app, _, _ := testApp()
	const spec = "apiVersion: rollout/v1\nkind: Rollout\nname: r\nstable: {model: m-20260101}\nstages: [{weight: 100}]\nmetrics: {source: '%s'}\n"
	for _, src := range []string{
		"file:traffic/x.jsonl", prom.Scheme + "http://127.0.0.1:9090", "postgres://reader@127.0.0.1/telemetry",
		"postgresql://reader@127.0.0.1/telemetry", "clickhouse://reader@127.0.0.1:8123/default",
		"mysql://h/db", "redis://h", "http://example.com/metrics", "clickhouse+http://h/db", "postgres:h/db", "jsonl:x", "chdb:x",
	} {
		_, problems := rollouts.Parse("r.yaml", []byte(fmt.Sprintf(spec, src)))
		_, err := app.openSource(&rollouts.Spec{Name: "r"}, src)
		unsupported := err != nil && strings.Contains(err.Error(), "unsupported metrics source")
		if (len(problems) > 0) != unsupported {
			t.Errorf("%s: validate says %v, the run says %v", src, problems, err)
		}
	}
	if kind, ok := rollouts.SourceKindOf(prom.Scheme + "http://p"); !ok || kind != rollouts.SourcePrometheus {
		t.Errorf("prom.Scheme %q is not a Prometheus source to rollouts", prom.Scheme)
	}
}

// TestValidateWarnsOfASpecInASubfolder: a rollout spec put in a subfolder of rollouts/ (by team, say) is
// read by no command; validate says so, on the files on disk as on a branch, and --strict fails on it.
// Other YAML in a subfolder (a gateway config) is no spec and gets no warning.
func TestValidateWarnsOfASpecInASubfolder(t *testing.T) {
	files := map[string]string{
		"rollouts/g.yaml":               gated("g"),
		"rollouts/team-a/tagger.yaml":   gated("tagger"),
		"rollouts/gateway/litellm.yaml": "model_list: []\n",
	}
	const want = "rollouts/team-a/tagger.yaml:1:1: warning: a rollout spec in a subfolder of rollouts: specs are read only directly in that folder, so no command reads this one; move it up to rollouts"
	bare := gittest.NewBare(t, files)
	inTempDir(t, files)
	for _, args := range [][]string{{"validate"}, {"validate", "--repo", bare}} {
		code, stdout, stderr := runApp(args...)
		if code != exitOK || !strings.Contains(stdout, want) || strings.Contains(stdout, "litellm.yaml") {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
	if code, stdout, _ := runApp("validate", "--strict"); code != exitFailed {
		t.Errorf("--strict: exit %d\n%s", code, stdout)
	}
}
