package faults

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestActionSummaryHoldsNoSecrets runs the GitHub Action's script (action/run.sh) with the real rollout
// binary against the GitHub test server, as a workflow would: GITHUB_TOKEN, GITHUB_REPOSITORY,
// GITHUB_API_URL and GITHUB_SERVER_URL set, the webhook URL in the environment. One run rolls back
// while the webhook answers 500; one runs with a token GitHub refuses. The job summary, the step output
// and the script's own output name neither the token nor the webhook URL, and do report the failures.
func TestActionSummaryHoldsNoSecrets(t *testing.T) {
	script := actionScript(t)
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.30)
	g.hook.fail(http.StatusInternalServerError)
	run := func(token string) (summary, output, printed string) {
		t.Helper()
		dir := t.TempDir()
		cmd := exec.Command("bash", script)
		cmd.Dir = g.traffic // where the specs' relative file: sources are read from
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"ROLLOUT_BIN=" + rolloutBin(t), "INPUT_COMMAND=reconcile", "INPUT_DIR=rollouts",
			"GITHUB_TOKEN=" + token, "GITHUB_REPOSITORY=" + ghOwner + "/" + ghRepo,
			"GITHUB_API_URL=" + g.gh.APIURL(), "GITHUB_SERVER_URL=" + g.gh.URL,
			"ROLLOUT_ROLLBACK_WEBHOOK=" + g.hook.url(),
			"GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary.md"), "GITHUB_OUTPUT=" + filepath.Join(dir, "output")}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err == nil {
			t.Errorf("the action succeeded although the run failed:\n%s", out.String())
		}
		s, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
		o, _ := os.ReadFile(filepath.Join(dir, "output"))
		return string(s), string(o), out.String()
	}
	secrets := []string{ghToken, "WRONG" + ghToken, g.hook.secret, g.hook.url()}

	summary, output, printed := run(ghToken)
	if !strings.Contains(summary, "summarizer") || !strings.Contains(summary, "rollback") || !strings.Contains(summary, "notify") {
		t.Errorf("the summary does not report the rollback and its failed notification:\n%s", summary)
	}
	if g.spec("summarizer").Status.Phase != "RolledBack" {
		t.Errorf("the rollback did not land")
	}
	for what, text := range map[string]string{"summary": summary, "output": output, "printed": printed} {
		if found := leaks(text, secrets...); len(found) > 0 {
			t.Errorf("the action's %s holds %q:\n%s", what, found, text)
		}
	}

	summary, output, printed = run("WRONG" + ghToken)
	if summary == "" && printed == "" {
		t.Errorf("a refused token left no trace")
	}
	// The run failed as a whole (it printed {"error", "hint"}): no decision, and the summary says why.
	if !strings.Contains(output, "\n[]\n") || !strings.Contains(summary, "failed (exit 1)") || !strings.Contains(summary, "authentication required") {
		t.Errorf("with a refused token, want no decisions and the failure in the summary; output:\n%s\nsummary:\n%s", output, summary)
	}
	for what, text := range map[string]string{"summary": summary, "output": output, "printed": printed} {
		if found := leaks(text, secrets...); len(found) > 0 {
			t.Errorf("with a refused token, the action's %s holds %q:\n%s", what, found, text)
		}
	}
}

// TestActionPlansThePullRequestsHead runs the Action's script for `plan` as the example pull-request
// workflow does (--repo . --base main, in the checkout of a pull request that adds a canary), with the
// real binary against the GitHub test server. The default branch has no canary yet, so a plan of the
// default branch would say "no canary"; the pull request's plan says the rollout starts once it merges,
// and its heading says it is the pull request's plan against main.
func TestActionPlansThePullRequestsHead(t *testing.T) {
	script := actionScript(t)
	spec := pending("summarizer")
	withoutCanary := spec[:strings.Index(spec, "canary:")] + spec[strings.Index(spec, "traffic:"):]
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": withoutCanary})
	pr := gittest.Clone(t, g.bare)
	pr.Write(map[string]string{"rollouts/summarizer.yaml": spec})
	pr.Commit("Add the summarizer canary")
	dir := t.TempDir()
	cmd := exec.Command("bash", script)
	cmd.Dir = pr.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"ROLLOUT_BIN=" + rolloutBin(t), "INPUT_COMMAND=plan", "INPUT_DIR=rollouts", "INPUT_ARGS=--repo . --base main", "INPUT_COMMENT=false",
		"GITHUB_TOKEN=" + ghToken, "GITHUB_REPOSITORY=" + ghOwner + "/" + ghRepo,
		"GITHUB_API_URL=" + g.gh.APIURL(), "GITHUB_SERVER_URL=" + g.gh.URL,
		"GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary.md"), "GITHUB_OUTPUT=" + filepath.Join(dir, "output")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	summary, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	output, _ := os.ReadFile(filepath.Join(dir, "output"))
	for _, want := range []string{"rollout plan for this pull request", "against main", "| summarizer | start | 0% → 5% |"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("the plan's summary lacks %q:\n%s", want, summary)
		}
	}
	if !strings.Contains(string(output), `"decision":"start"`) {
		t.Errorf("decisions output = %s", output)
	}
	if refs := gittest.Git(t, g.bare, "for-each-ref", "--format=%(refname)"); strings.Contains(refs, "rollout/") {
		t.Errorf("plan wrote a branch: %s", refs)
	}
}

// actionScript is the absolute path of the Action's script (action/run.sh), for tests that run it as
// a workflow step would; they are skipped where jq, which the script needs, is missing.
func actionScript(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("the action's script needs jq")
	}
	script, err := filepath.Abs(filepath.Join(repoRoot, "action/run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Opened here, so that go test's cache knows the result depends on it: bash's reading does not count.
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}
	return script
}
