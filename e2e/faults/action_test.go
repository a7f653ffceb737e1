package faults

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestActionSummaryHoldsNoSecrets runs the GitHub Action's script (action/run.sh) with the real rollout
// binary against the GitHub test server, as a workflow would: GITHUB_TOKEN, GITHUB_REPOSITORY,
// GITHUB_API_URL and GITHUB_SERVER_URL set, the webhook URL in the environment. One run rolls back
// while the webhook answers 500; one runs with a token GitHub refuses. The job summary, the step output
// and the script's own output name neither the token nor the webhook URL, and do report the failures.
func TestActionSummaryHoldsNoSecrets(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("the action's script needs jq")
	}
	script, err := filepath.Abs(filepath.Join(repoRoot, "action/run.sh"))
	if err != nil {
		t.Fatal(err)
	}
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
			"ROLLBACK_WEBHOOK=" + g.hook.url(),
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
	for what, text := range map[string]string{"summary": summary, "output": output, "printed": printed} {
		if found := leaks(text, secrets...); len(found) > 0 {
			t.Errorf("with a refused token, the action's %s holds %q:\n%s", what, found, text)
		}
	}
}
