package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestActionPlanShowsAPromptEditRestart is a pull request that edits only the prompt file of a running
// rollout, planned by the Action's script against the GitHub test server: the plan says the rollout
// starts over at stage 0 because that prompt changed.
func TestActionPlanShowsAPromptEditRestart(t *testing.T) {
	script := actionScript(t)
	const promptPath, prompt = "prompts/summarize/v4.md", "Summarize the text in three sentences.\n"
	spec := strings.Replace(progressing("summarizer", "hold"), "canary:\n  model: claude-sonnet-4-5-20260415\n  prompt: v3\n",
		"canary:\n  model: claude-sonnet-4-5-20260415\n  prompt: "+promptPath+"\n", 1)
	// The status the controller wrote when stage 0 started: the canary's fingerprint with this prompt.
	parsed, problems := rollouts.Parse("rollouts/summarizer.yaml", []byte(spec))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	rollouts.ReadSpecReferences(parsed, fstest.MapFS{promptPath: {Data: []byte(prompt)}})
	st := *parsed.Status
	st.Canary, st.Files = rollouts.CanaryFingerprint(parsed), rollouts.CanaryFiles(parsed)
	running, err := rollouts.Edit([]byte(spec), rollouts.Change{Status: &st})
	if err != nil {
		t.Fatal(err)
	}
	// The application has not written traffic/summarizer.jsonl yet: no data, which is no failure.
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": string(running), promptPath: prompt})

	plan := func(pr *gittest.Checkout) (summary, output string) {
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
		s, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
		o, _ := os.ReadFile(filepath.Join(dir, "output"))
		return string(s), string(o)
	}

	// A pull request that changes something else plans no restart; with no metrics file in the
	// checkout the pull request's plan holds, saying the runner cannot reach production metrics, and
	// succeeds.
	other := gittest.Clone(t, g.bare)
	other.Write(map[string]string{"README.md": "summaries\n"})
	other.Commit("Document the summarizer")
	if summary, output := plan(other); strings.Contains(output, `"decision":"start"`) || strings.Contains(summary, "changed") ||
		!strings.Contains(output, `"decision":"hold"`) || !strings.Contains(summary, "production metrics are not reachable from this runner") || strings.Contains(summary, "failed") {
		t.Fatalf("a pull request that leaves the prompt alone: want a hold without metrics, no restart:\n%s\n%s", summary, output)
	}

	pr := gittest.Clone(t, g.bare)
	pr.Write(map[string]string{promptPath: "Summarize the text in one sentence.\n"})
	pr.Commit("Shorter summaries")
	if files := strings.Fields(pr.Git("show", "--name-only", "--format=", "HEAD")); len(files) != 1 || files[0] != promptPath {
		t.Fatalf("the pull request changes %v, want the prompt file alone", files)
	}
	summary, output := plan(pr)
	for _, want := range []string{"rollout plan for this pull request", "| summarizer | start |",
		"prompt " + promptPath + " changed: starting over at stage 0"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the plan's summary lacks %q:\n%s", want, summary)
		}
	}
	if !strings.Contains(output, `"decision":"start"`) {
		t.Errorf("decisions output = %s", output)
	}
}
