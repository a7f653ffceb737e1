package faults

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestRollbackCommitCarriesTheExport runs the GitHub Action's script (action/run.sh) with the real
// binary against the GitHub test server, as examples/github/reconcile.yml and rollback.yml do with
// the export-growthbook input, and the job's own GITHUB_TOKEN: no workflow chained on the push would
// run, so the rollback commits themselves must carry what applications route by. The automatic
// rollback of a failing canary and a rollback by hand each land as one commit holding the spec and
// features/growthbook.json, whose feature for the rollout no longer sends anyone to the canary. The
// script does not warn of chained workflows, since the export rides along.
func TestRollbackCommitCarriesTheExport(t *testing.T) {
	script := actionScript(t)
	g := newGitHub(t, map[string]string{
		"rollouts/summarizer.yaml": progressing("summarizer", "hold"),
		"rollouts/tagger.yaml":     progressing("tagger", "hold"),
	})
	g.writeTraffic("summarizer", 0.30)
	g.writeTraffic("tagger", 0.01)
	run := func(command string, args ...string) string {
		t.Helper()
		dir := t.TempDir()
		cmd := exec.Command("bash", script)
		cmd.Dir = g.traffic // where the specs' relative file: sources are read from
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"ROLLOUT_BIN=" + rolloutBin(t), "INPUT_COMMAND=" + command, "INPUT_DIR=rollouts", "INPUT_ARGS=" + strings.Join(args, "\n"),
			"ROLLOUT_EXPORT_GROWTHBOOK=features/growthbook.json", "ROLLOUT_TOKEN_IS_GITHUB_TOKEN=true",
			"GITHUB_TOKEN=" + ghToken, "GITHUB_REPOSITORY=" + ghOwner + "/" + ghRepo,
			"GITHUB_API_URL=" + g.gh.APIURL(), "GITHUB_SERVER_URL=" + g.gh.URL, "ROLLBACK_WEBHOOK=" + g.hook.url(),
			"GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary.md"), "GITHUB_OUTPUT=" + filepath.Join(dir, "output")}
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "::warning title=rollout: rollbacks may not reach") {
			t.Errorf("%s warned of chained workflows although the export rides along:\n%s", command, out)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		return string(out)
	}
	// checkExport reads the export in commit and says whether rollout's feature sends anyone to the canary.
	checkFiles := func(commit, rollout string) {
		t.Helper()
		files := strings.Fields(gittest.Git(t, g.bare, "show", "--name-only", "--format=", commit))
		if strings.Join(files, " ") != "features/growthbook.json rollouts/"+rollout+".yaml" {
			t.Errorf("commit %s changed %v, want the spec and the export together", commit, files)
		}
	}
	checkExport := func(commit, rollout string, wantCanary bool) {
		t.Helper()
		var payload struct {
			Features map[string]struct {
				DefaultValue map[string]string `json:"defaultValue"`
				Rules        []json.RawMessage `json:"rules"`
			} `json:"features"`
		}
		raw := gittest.Git(t, g.bare, "show", commit+":features/growthbook.json")
		if err := json.Unmarshal([]byte(raw), &payload); err != nil {
			t.Fatalf("the export in %s: %v\n%s", commit, err, raw)
		}
		f, ok := payload.Features[rollout]
		if !ok || f.DefaultValue["variant"] != "stable" || (len(f.Rules) > 0) != wantCanary {
			t.Errorf("the export in %s has %s = %+v, want canary rules %v:\n%s", commit, rollout, f, wantCanary, raw)
		}
	}

	// The scheduled reconcile rolls summarizer back.
	out := run("reconcile")
	if g.spec("summarizer").Status.Phase != "RolledBack" {
		t.Fatalf("the rollback did not land:\n%s", out)
	}
	head := strings.TrimSpace(gittest.Git(t, g.bare, "log", "-1", "--format=%H", "--grep", "Rollout-Decision: rollback", "main"))
	if head == "" {
		t.Fatalf("no rollback commit on main:\n%s", gittest.Git(t, g.bare, "log", "--format=%s", "main"))
	}
	checkFiles(head, "summarizer")
	checkExport(head, "summarizer", false)
	checkExport(head, "tagger", true)

	// A rollback by hand, as rollback.yml runs it.
	run("rollback", "tagger", "--reason", "tagging regressed in support")
	head = g.head("main")
	if g.spec("tagger").Status.Phase != "RolledBack" {
		t.Fatal("the rollback by hand did not land")
	}
	checkFiles(head, "tagger")
	checkExport(head, "tagger", false)
	checkExport(head, "summarizer", false)
}
