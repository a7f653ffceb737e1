package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestActionPRPlanWithMetricsUnreachableStaysGreen (issue 21 item 3): the Action's plan of a pull
// request that changes a running rollout, on a runner without the production metrics (the file: source
// is not in the checkout), says what changes and that the metrics are not reachable, and the step
// passes. From a fork, whose token cannot comment, the step still passes; from the same repository, a
// comment that cannot be posted fails it.
func TestActionPRPlanWithMetricsUnreachableStaysGreen(t *testing.T) {
	script := actionScript(t)
	spec := progressing("summarizer", "hold")
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	pr := gittest.Clone(t, g.bare)
	pr.Write(map[string]string{"rollouts/summarizer.yaml": strings.Replace(spec, "max: 0.05", "max: 0.03", 1)})
	pr.Commit("Tighten the error rule")
	// gh as a fork's read-only token meets it: the comment is refused.
	bin := t.TempDir()
	gh := "#!/bin/sh\necho 'gh: Resource not accessible by integration (HTTP 403)' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "gh"), []byte(gh), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, fork := range []bool{true, false} {
		dir := t.TempDir()
		event := `{"pull_request": {"number": 7, "head": {"repo": {"fork": true, "full_name": "mallory/llm-config"}}, "base": {"repo": {"full_name": "acme/llm-config"}}}}`
		if !fork {
			event = `{"pull_request": {"number": 7, "head": {"repo": {"fork": false, "full_name": "acme/llm-config"}}, "base": {"repo": {"full_name": "acme/llm-config"}}}}`
		}
		if err := os.WriteFile(filepath.Join(dir, "event.json"), []byte(event), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", script)
		cmd.Dir = pr.Dir
		cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1",
			"GIT_TERMINAL_PROMPT=0", "ROLLOUT_BIN=" + rolloutBin(t), "INPUT_COMMAND=plan", "INPUT_DIR=rollouts",
			"INPUT_ARGS=--repo . --base main", "INPUT_COMMENT=true", "GITHUB_EVENT_PATH=" + filepath.Join(dir, "event.json"),
			"GITHUB_TOKEN=" + ghToken, "GITHUB_REPOSITORY=" + ghOwner + "/" + ghRepo,
			"GITHUB_API_URL=" + g.gh.APIURL(), "GITHUB_SERVER_URL=" + g.gh.URL,
			"GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary.md"), "GITHUB_OUTPUT=" + filepath.Join(dir, "output")}
		out, err := cmd.CombinedOutput()
		summary, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
		if fork != (err == nil) {
			t.Errorf("fork %t: exit %v\n%s\n%s", fork, err, out, summary)
		}
		if !fork {
			continue
		}
		t.Logf("summary:\n%s", summary)
		for _, want := range []string{"What this pull request changes", "error_rate at most 0.05 → error_rate at most 0.03",
			"production metrics are not reachable from this runner", "| summarizer | hold | 5% |", "comes from a fork"} {
			if !strings.Contains(string(summary), want) {
				t.Errorf("the summary lacks %q", want)
			}
		}
		if strings.Contains(string(summary), "failed") {
			t.Errorf("the summary reports a failure")
		}
	}
}
