// Package examples_test checks the GitHub Action (action.yml at the repository root, and the script it
// runs) and the example workflows: they parse, hold the keys GitHub requires, never splice inputs into
// a shell, and the script turns rollout's JSON into the job summary and the `decisions` output.
package examples_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/internal/githubtest"
)

type step struct {
	Name             string            `yaml:"name"`
	ID               string            `yaml:"id"`
	If               string            `yaml:"if"`
	Uses             string            `yaml:"uses"`
	Run              string            `yaml:"run"`
	Shell            string            `yaml:"shell"`
	With             map[string]string `yaml:"with"`
	Env              map[string]string `yaml:"env"`
	WorkingDirectory string            `yaml:"working-directory"`
}

type action struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Inputs      map[string]struct {
		Description string `yaml:"description"`
		Required    bool   `yaml:"required"`
		Default     string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []step `yaml:"steps"`
	} `yaml:"runs"`
}

type concurrency struct {
	Group            string `yaml:"group"`
	CancelInProgress bool   `yaml:"cancel-in-progress"`
	Queue            string `yaml:"queue"`
}

type workflow struct {
	Name        string               `yaml:"name"`
	On          map[string]yaml.Node `yaml:"on"`
	Permissions map[string]string    `yaml:"permissions"`
	Concurrency concurrency          `yaml:"concurrency"`
	Jobs        map[string]struct {
		RunsOn      string      `yaml:"runs-on"`
		Concurrency concurrency `yaml:"concurrency"`
		Steps       []step      `yaml:"steps"`
	} `yaml:"jobs"`
}

func strictDecode(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestActionMetadata(t *testing.T) {
	var a action
	strictDecode(t, "../../action.yml", &a)
	if a.Name == "" || a.Description == "" {
		t.Error("name and description are required")
	}
	for _, in := range []string{"command", "dir", "args", "token", "export-growthbook"} {
		if a.Inputs[in].Description == "" {
			t.Errorf("input %q missing or undocumented", in)
		}
	}
	if a.Inputs["token"].Default != "${{ github.token }}" {
		t.Errorf("token default = %q", a.Inputs["token"].Default)
	}
	if v := a.Outputs["bin"].Value; v != "${{ steps.install.outputs.bin }}" {
		t.Errorf("output bin = %q", v)
	}
	if v := a.Outputs["decisions"].Value; v != "${{ steps.run.outputs.decisions }}" {
		t.Errorf("decisions output value = %q", v)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q", a.Runs.Using)
	}
	if a.Inputs["version"].Description == "" {
		t.Error("input version missing or undocumented")
	}
	var install, setupGo, run bool
	for _, s := range a.Runs.Steps {
		if s.ID == "install" {
			install = s.Env["ACTION_REF"] == "${{ github.action_ref }}" && s.Env["INPUT_VERSION"] == "${{ inputs.version }}" &&
				s.Env["ACTION_REPOSITORY"] == "${{ github.action_repository }}"
		}
		if strings.HasPrefix(s.Uses, "actions/setup-go@") {
			// Go is set up only to build from source, when the ref has no release.
			setupGo = s.With["go-version-file"] == "${{ github.action_path }}/go.mod" && s.If == "steps.install.outputs.build == 'true'"
		}
		if s.Run != "" && s.Shell == "" {
			t.Errorf("step %q: a composite run step needs a shell", s.Name)
		}
		if s.ID == "run" {
			run = s.Env["GITHUB_TOKEN"] == "${{ inputs.token }}" && s.Env["INPUT_ARGS"] == "${{ inputs.args }}"
		}
		checkNoInjection(t, "action.yml", s)
	}
	if !install {
		t.Error("no install step given the action's ref, repository and the version input")
	}
	if !setupGo {
		t.Error("no actions/setup-go step reading the action's own go.mod, only when there is no release")
	}
	if !run {
		t.Error("the run step does not pass the token and inputs through env")
	}
	if _, err := os.Stat(filepath.Join("..", "..", "action", "run.sh")); err != nil {
		t.Error(err)
	}
}

// checkNoInjection fails on a run script that splices an expression in: inputs and event fields go
// through env, so that a crafted value cannot run commands.
func checkNoInjection(t *testing.T, file string, s step) {
	t.Helper()
	if strings.Contains(s.Run, "${{") {
		t.Errorf("%s: step %q splices an expression into its script: %q", file, s.Name, s.Run)
	}
}

func TestExampleWorkflows(t *testing.T) {
	tests := []struct {
		file        string
		trigger     string
		permissions map[string]string
		command     string
		group       string
	}{
		{"reconcile.yml", "schedule", map[string]string{"contents": "read"}, "reconcile", "rollout-reconcile"},
		{"pull-request.yml", "pull_request", map[string]string{"contents": "read", "pull-requests": "write"}, "plan", ""},
		{"rollback.yml", "workflow_dispatch", map[string]string{"contents": "read"}, "rollback", "rollout-reconcile"},
		{"comment.yml", "issue_comment", map[string]string{"contents": "read"}, "comment", ""},
		{"report-pages.yml", "schedule", map[string]string{"contents": "read", "pages": "write", "id-token": "write"}, "report", "rollout-report-pages"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var w workflow
			strictDecode(t, tt.file, &w)
			if _, ok := w.On[tt.trigger]; !ok || w.Name == "" {
				t.Errorf("name %q, triggers %v: want %s", w.Name, keys(w.On), tt.trigger)
			}
			if len(w.Permissions) != len(tt.permissions) {
				t.Errorf("permissions = %v, want exactly %v", w.Permissions, tt.permissions)
			}
			for k, v := range tt.permissions {
				if w.Permissions[k] != v {
					t.Errorf("permissions[%s] = %q, want %q", k, w.Permissions[k], v)
				}
			}
			if tt.group != "" && (w.Concurrency.Group != tt.group || w.Concurrency.CancelInProgress) {
				t.Errorf("concurrency = %+v, want group %s without cancelling", w.Concurrency, tt.group)
			}
			if len(w.Jobs) == 0 {
				t.Fatal("no jobs")
			}
			found := false
			for _, j := range w.Jobs {
				if j.RunsOn == "" {
					t.Error("a job without runs-on")
				}
				for _, s := range j.Steps {
					if s.Uses == "" && s.Run == "" {
						t.Errorf("step %q neither uses nor runs", s.Name)
					}
					if strings.HasPrefix(s.Uses, "rollout-dev/rollout@") && s.With["command"] == tt.command {
						found = true
					}
					checkNoInjection(t, tt.file, s)
				}
			}
			if !found {
				t.Errorf("no step runs the action with command %q", tt.command)
			}
			if tt.trigger == "schedule" {
				var crons []struct {
					Cron string `yaml:"cron"`
				}
				node := w.On["schedule"]
				if err := node.Decode(&crons); err != nil || len(crons) == 0 || len(strings.Fields(crons[0].Cron)) != 5 {
					t.Errorf("schedule = %+v, %v", crons, err)
				}
			}
		})
	}
}

// TestSharedGroupQueuesEveryRun: the workflows that commit to the default branch share one concurrency
// group, never cancel a run in progress and queue every run (queue: max). Without the queue GitHub keeps
// one pending run per group and cancels it when the next arrives, so a scheduled reconcile or any comment
// would cancel a rollback dispatched, or commented, while a reconcile was going. The comment workflow
// joins at the job's level, behind its `if`, so that a comment without a command never enters the group.
func TestSharedGroupQueuesEveryRun(t *testing.T) {
	for _, tt := range []struct {
		file     string
		jobLevel bool
	}{{"reconcile.yml", false}, {"rollback.yml", false}, {"comment.yml", true}} {
		var w workflow
		strictDecode(t, tt.file, &w)
		groups := []concurrency{w.Concurrency}
		if tt.jobLevel {
			groups = nil
			if w.Concurrency.Group != "" {
				t.Errorf("%s: a workflow-level group %q: every comment would enter it", tt.file, w.Concurrency.Group)
			}
			for _, j := range w.Jobs {
				groups = append(groups, j.Concurrency)
			}
		}
		for _, c := range groups {
			if c.Group != "rollout-reconcile" || c.CancelInProgress || c.Queue != "max" {
				t.Errorf("%s: concurrency %+v, want group rollout-reconcile, no cancel-in-progress, queue: max", tt.file, c)
			}
		}
	}
}

// TestWorkflowsGiveRolloutWhatItReads: every `with` key of a step that runs the action is an input of
// action.yml, and every environment variable such a step sets is one a spec can reference (a name
// beginning with ROLLOUT_, or one the step lists in ROLLOUT_ALLOW_ENV). A secret under any other name
// (PGPASSWORD, a Slack URL under its own name) never resolves, so the copied workflow would run with
// no password and no notification.
func TestWorkflowsGiveRolloutWhatItReads(t *testing.T) {
	var a action
	strictDecode(t, "../../action.yml", &a)
	files, err := filepath.Glob("*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflow: %v", err)
	}
	for _, file := range files {
		var w workflow
		strictDecode(t, file, &w)
		for _, j := range w.Jobs {
			for _, s := range j.Steps {
				if !strings.HasPrefix(s.Uses, "rollout-dev/rollout@") {
					continue
				}
				for k := range s.With {
					if _, ok := a.Inputs[k]; !ok {
						t.Errorf("%s: step %q passes %q, which action.yml does not take (inputs: %v)", file, s.Name, k, keys(a.Inputs))
					}
				}
				allowed := map[string]bool{}
				for _, name := range strings.Split(s.Env["ROLLOUT_ALLOW_ENV"], ",") {
					allowed[strings.TrimSpace(name)] = true
				}
				for k := range s.Env {
					if !strings.HasPrefix(k, "ROLLOUT_") && !allowed[k] {
						t.Errorf("%s: step %q sets %s, which no spec can reference: name it ROLLOUT_%s (env:ROLLOUT_%s in the spec)", file, s.Name, k, k, k)
					}
				}
			}
		}
	}
}

// pinnedUse is a third-party action pinned to a full commit, with its release tag in a comment.
var (
	usesRe    = regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(\S+)(.*)$`)
	pinnedUse = regexp.MustCompile(`^([\w.-]+/[\w.-]+(?:/[\w./-]+)?)@([0-9a-f]{40})$`)
	tagNote   = regexp.MustCompile(`^\s+#\s+(v\d+\.\d+\.\d+)\s*$`)
)

// Every third-party action in the Action, the examples and the project's own workflows is pinned by
// commit SHA, with the tag in a comment: a moved tag cannot change what runs in a job that holds
// contents: write. One action and tag is pinned to one SHA everywhere.
func TestActionsPinnedBySHA(t *testing.T) {
	files := []string{"../../action.yml"}
	for _, glob := range []string{"*.yml", "*.yaml", "../../.github/workflows/*.yml", "../../.github/workflows/*.yaml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	pins := map[string]string{} // action@tag → sha
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range usesRe.FindAllStringSubmatch(string(raw), -1) {
			use, rest := m[1], m[2]
			// This project's own action, used by its ref as the examples document, and local actions.
			if strings.HasPrefix(use, "rollout-dev/rollout@") || strings.HasPrefix(use, "./") {
				continue
			}
			p, tag := pinnedUse.FindStringSubmatch(use), tagNote.FindStringSubmatch(rest)
			if p == nil || tag == nil {
				t.Errorf("%s: %q is not pinned as OWNER/REPO@<40-hex commit> # vX.Y.Z", f, strings.TrimSpace(m[0]))
				continue
			}
			key := p[1] + "@" + tag[1]
			if sha, ok := pins[key]; ok && sha != p[2] {
				t.Errorf("%s: %s pinned to %s here and %s elsewhere", f, key, p[2], sha)
			}
			pins[key] = p[2]
		}
	}
	if len(pins) == 0 {
		t.Fatal("no third-party action found: the pattern is broken")
	}
}

// TestWritersUseOneNarrowedAppToken: reconcile.yml and rollback.yml write with the same GitHub App's
// token, narrowed to contents and pull requests, and pass it to the checkout and the action (so that
// their pushes start the workflows chained on them); both keep the GrowthBook export in the commits
// they make, so that a rollback reaches applications whatever the token.
func TestWritersUseOneNarrowedAppToken(t *testing.T) {
	var app map[string]string
	for _, file := range []string{"reconcile.yml", "rollback.yml"} {
		var w workflow
		strictDecode(t, file, &w)
		for _, j := range w.Jobs {
			appID := ""
			for i, s := range j.Steps {
				switch {
				case strings.HasPrefix(s.Uses, "actions/create-github-app-token@"):
					if i != 0 {
						t.Errorf("%s: the App token step is step %d, want the first", file, i)
					}
					appID = s.ID
					perms := map[string]string{}
					for k, v := range s.With {
						if strings.HasPrefix(k, "permission-") {
							perms[k] = v
						}
					}
					if len(perms) != 2 || perms["permission-contents"] != "write" || perms["permission-pull-requests"] != "write" {
						t.Errorf("%s: the App token's permissions are %v, want contents and pull-requests write alone", file, perms)
					}
					who := map[string]string{"client-id": s.With["client-id"], "private-key": s.With["private-key"]}
					if app == nil {
						app = who
					} else if who["client-id"] != app["client-id"] || who["private-key"] != app["private-key"] {
						t.Errorf("%s: App %v, want the same App as reconcile.yml (%v)", file, who, app)
					}
				case strings.HasPrefix(s.Uses, "actions/checkout@"), strings.HasPrefix(s.Uses, "rollout-dev/rollout@"):
					if want := "${{ steps." + appID + ".outputs.token }}"; appID == "" || s.With["token"] != want {
						t.Errorf("%s: step %q has token %q, want the App's (%s)", file, s.Uses, s.With["token"], want)
					}
					if strings.HasPrefix(s.Uses, "rollout-dev/rollout@") && s.With["export-growthbook"] != "features/growthbook.json" {
						t.Errorf("%s: export-growthbook = %q, want features/growthbook.json", file, s.With["export-growthbook"])
					}
				}
			}
			if appID == "" {
				t.Errorf("%s: no App token step", file)
			}
		}
	}
}

// TestRunScriptWarnsOfUnchainedPushes: a command that commits with the job's own GITHUB_TOKEN and keeps
// no export says that chained workflows will not run after a rollback, as an annotation and in the
// summary; with the export, another token or a read-only command it says nothing.
func TestRunScriptWarnsOfUnchainedPushes(t *testing.T) {
	dir := t.TempDir()
	fakeBin(t, dir, "rollout", `echo '[]'`)
	for _, tt := range []struct {
		command, isGitHubToken, export string
		warn                           bool
	}{
		{"reconcile", "true", "", true},
		{"rollback", "true", "", true},
		{"reconcile", "true", "features/growthbook.json", false},
		{"reconcile", "false", "", false},
		{"status", "true", "", false},
	} {
		summary, _, stdout, err := runScript(t, dir, map[string]string{"ROLLOUT_BIN": dir + "/rollout", "INPUT_COMMAND": tt.command,
			"ROLLOUT_TOKEN_IS_GITHUB_TOKEN": tt.isGitHubToken, "ROLLOUT_EXPORT_GROWTHBOOK": tt.export})
		if err != nil {
			t.Fatalf("%+v: %v\n%s", tt, err, stdout)
		}
		annotated := strings.Contains(stdout, "::warning title=rollout: rollbacks may not reach your applications::this job pushes with GITHUB_TOKEN")
		summarised := strings.Contains(summary, "export-growthbook")
		if annotated != tt.warn || summarised != tt.warn {
			t.Errorf("%+v: annotation %v, in the summary %v, want %v\n%s\n%s", tt, annotated, summarised, tt.warn, stdout, summary)
		}
	}
}

// TestRunScriptInstall: the install command runs nothing but `rollout version`, for a later step that
// runs the binary from the bin output.
func TestRunScriptInstall(t *testing.T) {
	dir := t.TempDir()
	fakeBin(t, dir, "rollout", `echo "$@" >> "$(dirname "$0")/calls"; echo "rollout version v1.4.0"`)
	summary, _, stdout, err := runScript(t, dir, map[string]string{"ROLLOUT_BIN": dir + "/rollout", "INPUT_COMMAND": "install"})
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if strings.TrimSpace(string(calls)) != "version\nversion" || !strings.Contains(summary, "rollout version v1.4.0") {
		t.Errorf("calls %q, summary %q", calls, summary)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// fakeBin writes an executable script named name into dir.
func fakeBin(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/usr/bin/env bash\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runScript runs action/run.sh with bin first on PATH.
func runScript(t *testing.T, bin string, env map[string]string) (summary, output, stdout string, err error) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq is not installed (GitHub's runners have it)")
	}
	dir := t.TempDir()
	summaryFile, outputFile := filepath.Join(dir, "summary.md"), filepath.Join(dir, "output")
	cmd := exec.Command("bash", "../../action/run.sh")
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "GITHUB_STEP_SUMMARY=" + summaryFile, "GITHUB_OUTPUT=" + outputFile}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	s, _ := os.ReadFile(summaryFile)
	o, _ := os.ReadFile(outputFile)
	return string(s), string(o), string(out), err
}

func TestRunScriptSyntax(t *testing.T) {
	if out, err := exec.Command("bash", "-n", "../../action/run.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
}

var decisionsRe = regexp.MustCompile(`(?s)decisions<<(\S+)\n(.*)\n(\S+)\n`)

func TestRunScriptReconcile(t *testing.T) {
	dir := t.TempDir()
	// The fake rollout records its arguments and prints what `reconcile -o json` prints.
	fakeBin(t, dir, "rollout", `printf '%s\n' "$@" > "$(dirname "$0")/args"
echo '[{"rollout":"summarizer","decision":"advance","from":5,"to":25,"commit":"abc","proposal":"https://github.com/acme/x/pull/7","error":null},{"rollout":"bad|<b>","decision":"hold","from":5,"to":5,"commit":null,"proposal":null,"error":"metrics: 503"}]'
exit 1
`)
	summary, output, stdout, err := runScript(t, dir, map[string]string{"ROLLOUT_BIN": dir + "/rollout",
		"INPUT_COMMAND": "reconcile", "INPUT_DIR": "specs", "INPUT_ARGS": "--branch main"})
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit = %v (want 1, rollout's own), output %s", err, stdout)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got := strings.Fields(string(args)); strings.Join(got, " ") != "reconcile --dir specs -o json --branch main" {
		t.Errorf("rollout ran with %q", got)
	}
	for _, want := range []string{"| summarizer | advance | 5 → 25 | https://github.com/acme/x/pull/7 |  |", "| bad  b  | hold |", "metrics: 503"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	m := decisionsRe.FindStringSubmatch(output)
	if m == nil || m[1] != m[3] {
		t.Fatalf("output = %q", output)
	}
	var decisions []map[string]any
	if err := json.Unmarshal([]byte(m[2]), &decisions); err != nil || len(decisions) != 2 || decisions[0]["decision"] != "advance" {
		t.Errorf("decisions = %s (%v)", m[2], err)
	}
}

// runnerCommands returns the workflow commands the Actions runner would run from log: lines that begin,
// after leading spaces, with "::" (and the older "##[" form anywhere in a line), except while
// ::stop-commands::TOKEN holds them until a line ::TOKEN::.
func runnerCommands(log string) []string {
	var run []string
	stopped := ""
	for _, line := range strings.Split(log, "\n") {
		trimmed := strings.TrimLeft(line, " \t")
		if !strings.HasPrefix(trimmed, "::") && !strings.Contains(line, "##[") {
			continue
		}
		if stopped != "" {
			if trimmed == "::"+stopped+"::" {
				stopped = ""
			}
			continue
		}
		if token, ok := strings.CutPrefix(trimmed, "::stop-commands::"); ok && token != "" {
			stopped = token
			continue
		}
		run = append(run, line)
	}
	return run
}

// TestRunScriptRunsNoCommandFromRolloutsOutput: rollout's messages quote file names and spec values a
// pull request chose, such as a spec file named "x<newline>::add-mask::…"; run.sh shows everything
// rollout prints with the runner's workflow commands stopped, so none of it runs as a command (an
// annotation, a mask, stop-commands, an output), whatever the command and whether it failed.
func TestRunScriptRunsNoCommandFromRolloutsOutput(t *testing.T) {
	dir := t.TempDir()
	fakeBin(t, dir, "rollout", `hostile='rollout: rollouts/x
::error file=rollouts/ok.yaml,line=1::spoofed
  ::add-mask::ghp_token
::stop-commands::guess
::rollout-guess::
::set-output name=decisions::[]
text ##[set-output name=x;]y'
echo "$hostile" >&2
case "$1" in
  reconcile|plan|status) echo '[]' ;;
  comment) echo '{"commands": [], "plan": true, "number": 7}' ;;
  evaluate) echo '{}' ;;
  report) ;;
  *) echo "$hostile" ;;
esac
printf 'no newline at the end ::error::x' >&2
exit 1
`)
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, []byte(`{"comment": {"id": 1}, "issue": {"number": 7}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, command := range []string{"reconcile", "plan", "status", "comment", "evaluate", "report", "rollback", "history"} {
		_, _, log, _ := runScript(t, dir, map[string]string{"ROLLOUT_BIN": dir + "/rollout", "INPUT_COMMAND": command,
			"INPUT_COMMENT": "false", "GITHUB_EVENT_PATH": event, "RUNNER_TEMP": t.TempDir(),
			// The plan comment of `comment` finds no GitHub: a port on loopback that refuses.
			"GITHUB_REPOSITORY": "acme/llm-config", "GITHUB_API_URL": "http://127.0.0.1:1", "ROLLOUT_COMMENT_AUTHOR": "rollout-bot"})
		if !strings.Contains(log, "spoofed") {
			t.Errorf("%s: rollout's output is not in the log:\n%s", command, log)
		}
		if run := runnerCommands(log); len(run) > 0 {
			t.Errorf("%s: the runner would run %q from rollout's output:\n%s", command, run, log)
		}
	}
}

func TestRunScriptArgsPerLine(t *testing.T) {
	dir := t.TempDir()
	fakeBin(t, dir, "rollout", `printf '%s\n' "$@" > "$(dirname "$0")/args"; echo rolled back`)
	summary, _, _, err := runScript(t, dir, map[string]string{"ROLLOUT_BIN": dir + "/rollout",
		"INPUT_COMMAND": "rollback", "INPUT_ARGS": "summarizer\n--reason\nlatency; rm -rf / $(id)\n"})
	if err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	want := "rollback\n--dir\nrollouts\nsummarizer\n--reason\nlatency; rm -rf / $(id)\n"
	if string(args) != want {
		t.Errorf("args = %q, want %q", args, want)
	}
	if !strings.Contains(summary, "rolled back") {
		t.Errorf("summary = %q", summary)
	}
}

// fakePlan is a rollout for run.sh's tests that prints, for `plan`, the JSON and the Markdown that
// `rollout plan` prints for n rollouts (one table line each, then each rollout's evidence, evidence
// bytes long), the shape of cmd/rollout/testdata/plan.md.
func fakePlan(t *testing.T, dir string, n, evidence int) {
	t.Helper()
	var md, js strings.Builder
	md.WriteString("### rollout plan for main at 905a1d21215e\n\n| rollout | decision | weight | would do |\n|---|---|---|---|\n")
	for i := range n {
		fmt.Fprintf(&md, "| r%03d | start | 0%% → 5%% | commit the start of stage 0 |\n", i)
	}
	md.WriteString("\n")
	js.WriteString("[")
	for i := range n {
		fmt.Fprintf(&md, "<details><summary>r%03d: evidence</summary>\n\n### r%03d: start (stage 0, 0%% → stage 0, 5%%)\n\n%s\n\n</details>\n\n",
			i, i, strings.Repeat("p95 latency → ", evidence/16)) // "→" is three bytes, one character
		if i > 0 {
			js.WriteString(",")
		}
		fmt.Fprintf(&js, `{"rollout":"r%03d","decision":"start","from":0,"to":5}`, i)
	}
	js.WriteString("]\n")
	if err := os.WriteFile(filepath.Join(dir, "plan.md"), []byte(md.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.json"), []byte(js.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	fakeBin(t, dir, "rollout", `case "$*" in
*"-o json"*) cat "$(dirname "$0")/plan.json" ;;
*) cat "$(dirname "$0")/plan.md" ;;
esac`)
}

// TestRunScriptPlanComment runs action/run.sh for `plan` on a pull request against the GitHub test
// server: it keeps one plan comment of its own, creating it, then updating it, and never touches a
// comment someone else wrote with the same marker (before issue 22 it edited the first comment from
// anyone that held the marker). A plan longer than a comment holds (80 rollouts with evidence) is cut
// under GitHub's 65,536 characters, keeping every rollout's line, summarising the rollouts whose
// evidence does not fit one line each and linking to the job summary, which holds it all.
func TestRunScriptPlanComment(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (GitHub's runners have it)")
	}
	const marker = "<!-- rollout:plan -->"
	srv := githubtest.New(t, "acme", "llm-config", func() time.Time { return time.Date(2026, 4, 16, 12, 0, 0, 0, time.UTC) })
	srv.Token = "ghs_test"
	n := srv.AddPull("feature/canary", "main", "Try the new model", "", "alice")
	hijack := marker + "\nmallory's text, formatted to look like the plan"
	theirs := srv.AddComment(n, "mallory", "User", hijack)
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, []byte(fmt.Sprintf(`{"pull_request":{"number":%d}}`, n)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ROLLOUT_BIN": dir + "/rollout", "INPUT_COMMAND": "plan", "GITHUB_EVENT_PATH": event,
		"GITHUB_REPOSITORY": "acme/llm-config", "GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_RUN_ID": "4242", "GH_TOKEN": srv.Token}
	ours := func() githubtest.Comment {
		t.Helper()
		var own []githubtest.Comment
		for _, c := range srv.Comments(n) {
			if c.ID == theirs {
				if c.Body != hijack {
					t.Errorf("mallory's comment was edited: %q", c.Body)
				}
				continue
			}
			own = append(own, c)
		}
		if len(own) != 1 || own[0].Login != "rollout-bot[bot]" || !strings.HasPrefix(own[0].Body, marker+"\n") {
			t.Fatalf("want one plan comment of the bot's, got %+v", own)
		}
		return own[0]
	}

	fakePlan(t, dir, 2, 100)
	summary, output, stdout, err := runScript(t, dir, env)
	if err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	first := ours()
	if !strings.Contains(first.Body, "| r001 | start |") || !strings.Contains(first.Body, "<summary>r001: evidence</summary>") {
		t.Errorf("comment = %q", first.Body)
	}
	if !strings.Contains(summary, "| r001 | start |") || !strings.Contains(output, `"decision":"start"`) {
		t.Errorf("summary %q output %q", summary, output)
	}

	fakePlan(t, dir, 80, 2000)
	summary, _, stdout, err = runScript(t, dir, env)
	if err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	c := ours()
	if c.ID != first.ID {
		t.Errorf("the plan comment was not updated in place: %d, then %d", first.ID, c.ID)
	}
	if chars := len([]rune(c.Body)); chars > 65536 || chars < 50000 {
		t.Errorf("the comment holds %d characters; want it under GitHub's 65,536, and filled", chars)
	}
	for i := range 80 {
		if !strings.Contains(c.Body, fmt.Sprintf("| r%03d | start |", i)) {
			t.Errorf("the comment lost r%03d's line", i)
		}
		if !strings.Contains(summary, fmt.Sprintf("<summary>r%03d: evidence</summary>", i)) {
			t.Errorf("the job summary lost r%03d's evidence", i)
		}
	}
	// With an App's installation token (an Action's GITHUB_TOKEN), GET /user answers 403: the comment
	// of its own is the one the App wrote as its bot.
	n = srv.AddPull("feature/other", "main", "Another model", "", "alice")
	theirs = srv.AddComment(n, "mallory", "User", hijack)
	if err := os.WriteFile(event, []byte(fmt.Sprintf(`{"pull_request":{"number":%d}}`, n)), 0o644); err != nil {
		t.Fatal(err)
	}
	env["GH_TOKEN"] = srv.InstallationToken()
	fakePlan(t, dir, 1, 100)
	for range 2 {
		if _, _, stdout, err := runScript(t, dir, env); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
	}
	if c := ours(); !strings.Contains(c.Body, "| r000 | start |") {
		t.Errorf("with an installation token: comment %q", c.Body)
	}
	shown := strings.Count(c.Body, ": evidence</summary>")
	cut := strings.Count(c.Body, "`: evidence in the job summary")
	if shown == 0 || shown+cut != 80 || !strings.Contains(c.Body, fmt.Sprintf("%d rollouts' evidence is in [the job summary](https://github.com/acme/llm-config/actions/runs/4242)", cut)) ||
		!strings.Contains(c.Body, "- `r079`: evidence in the job summary") {
		t.Errorf("%d rollouts' evidence shown, %d summarised; comment ends %q", shown, cut, c.Body[max(0, len(c.Body)-400):])
	}
}

// A pass that fails as a whole prints no rollout; the summary says why instead of "no rollouts".
func TestRunScriptReportsAFailedPass(t *testing.T) {
	dir := t.TempDir()
	fakeBin(t, dir, "rollout", "echo 'rollout: fetch main: authentication required' >&2\nexit 1\n")
	summary, _, _, err := runScript(t, dir, map[string]string{"ROLLOUT_BIN": dir + "/rollout",
		"INPUT_COMMAND": "reconcile", "INPUT_DIR": "rollouts"})
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit = %v, want 1", err)
	}
	for _, want := range []string{"rollout reconcile failed (exit 1)", "fetch main: authentication required"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}

// The pull request's plan is the pull request's: the example workflow plans the checkout against the
// pull request's base branch (issue 15), not the default branch as it stands.
func TestPullRequestWorkflowPlansItsHead(t *testing.T) {
	var w workflow
	strictDecode(t, "pull-request.yml", &w)
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			if s.With["command"] == "plan" {
				if args := s.With["args"]; !strings.Contains(args, "--base ${{ github.base_ref }}") || !strings.Contains(args, "--repo .") {
					t.Errorf("plan args = %q, want the checkout planned against the base branch", args)
				}
				return
			}
		}
	}
	t.Fatal("no plan step")
}

// The summary of `status` fills its columns from status's own fields (last decision, weight, error).
func TestRunScriptStatusSummary(t *testing.T) {
	dir := t.TempDir()
	fakeBin(t, dir, "rollout", `echo '[{"rollout":"summarizer","phase":"RolledBack","weight":0,"lastDecision":"rollback","proposal":null,"error":null},{"rollout":"tagger","phase":"Progressing","weight":10,"lastDecision":"start","proposal":null,"error":"metrics source: 503"}]'`)
	summary, _, stdout, err := runScript(t, dir, map[string]string{"ROLLOUT_BIN": dir + "/rollout", "INPUT_COMMAND": "status"})
	if err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	for _, want := range []string{"| summarizer | rollback | 0 |", "| tagger | start | 10 |  | metrics source: 503 |"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}

// TestRunScriptPutsNoTokenOnACommandLine: the token never appears in the arguments of a command run.sh
// starts (which any user of the runner can read in the process list): curl, the one that talks to
// GitHub, reads its Authorization header from a file, and rollout reads the environment.
func TestRunScriptPutsNoTokenOnACommandLine(t *testing.T) {
	realCurl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (GitHub's runners have it)")
	}
	const token = "ghs_CMDLINEtoken0123456789"
	srv := githubtest.New(t, "acme", "llm-config", func() time.Time { return time.Date(2026, 4, 16, 12, 0, 0, 0, time.UTC) })
	srv.Token = token
	n := srv.AddPull("feature/canary", "main", "Try the new model", "", "alice")
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, []byte(fmt.Sprintf(`{"pull_request":{"number":%d}}`, n)), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := filepath.Join(dir, "argv.log")
	fakePlan(t, dir, 2, 100)
	fakeBin(t, dir, "curl", fmt.Sprintf("printf '%%s\\n' \"$*\" >> %q\nexec %q \"$@\"", argv, realCurl))
	env := map[string]string{"ROLLOUT_BIN": dir + "/rollout", "INPUT_COMMAND": "plan", "GITHUB_EVENT_PATH": event,
		"GITHUB_REPOSITORY": "acme/llm-config", "GITHUB_API_URL": srv.APIURL(), "GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_RUN_ID": "4242", "GH_TOKEN": token}
	if _, _, stdout, err := runScript(t, dir, env); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if len(srv.Comments(n)) != 1 {
		t.Fatalf("the plan was not commented (comments %+v): the check below proves nothing", srv.Comments(n))
	}
	args, err := os.ReadFile(argv)
	if err != nil || len(args) == 0 {
		t.Fatalf("curl was not run through the shim: %v", err)
	}
	if strings.Contains(string(args), token) {
		t.Errorf("a curl command line holds the token:\n%s", args)
	}
}
