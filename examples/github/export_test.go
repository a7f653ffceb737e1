package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// exportPinnedUse is a third-party action pinned to a full commit, with its tag in a comment.
var exportPinnedUse = regexp.MustCompile(`^[\w.-]+/[\w.-]+@[0-9a-f]{40}$`)

func TestExportWorkflow(t *testing.T) {
	var w workflow
	strictDecode(t, "export-growthbook.yml", &w)
	if _, ok := w.On["push"]; !ok || w.Permissions["contents"] != "write" || w.Concurrency.Group == "" || w.Concurrency.CancelInProgress {
		t.Errorf("on %v, permissions %v, concurrency %+v: want push, contents: write, one export at a time", keys(w.On), w.Permissions, w.Concurrency)
	}
	raw, err := os.ReadFile("export-growthbook.yml")
	if err != nil {
		t.Fatal(err)
	}
	var publish string
	exports, installs := false, ""
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			checkNoInjection(t, "export-growthbook.yml", s)
			if strings.Contains(s.Run, "go install") || strings.HasPrefix(s.Uses, "actions/setup-go@") {
				t.Errorf("step %q builds rollout; want the checksummed release the action installs", s.Name)
			}
			if strings.HasPrefix(s.Uses, "rollout-dev/rollout@") {
				if s.With["command"] != "install" || s.ID == "" {
					t.Errorf("%s with %v: want command: install and an id", s.Uses, s.With)
				}
				installs = s.ID
				continue
			}
			if s.Uses != "" {
				if !exportPinnedUse.MatchString(s.Uses) || !regexp.MustCompile(regexp.QuoteMeta(s.Uses)+` # v\d+(\.\d+)*\n`).Match(raw) {
					t.Errorf("%s: pin third-party actions to a full commit SHA with the tag in a comment", s.Uses)
				}
			}
			if strings.Contains(s.Run, `"$ROLLOUT" export growthbook`) {
				exports = installs != "" && s.Env["ROLLOUT"] == "${{ steps."+installs+".outputs.bin }}"
			}
			if strings.HasPrefix(s.Name, "Publish") {
				publish = s.Run
			}
		}
	}
	if !exports || publish == "" {
		t.Fatalf("want the action installing rollout, a step running its bin output's export growthbook, and a Publish step")
	}

	// The publish script, run in a checkout of a real remote: it creates the features branch, leaves it
	// alone when nothing changed, and adds one commit when the payload changes.
	bare := gittest.NewBare(t, map[string]string{"rollouts/a.yaml": "name: a\n"})
	work := gittest.Clone(t, bare)
	features := filepath.Join(t.TempDir(), "features.json")
	run := func(payload string) {
		t.Helper()
		if err := os.WriteFile(features, []byte(payload), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", publish)
		cmd.Dir = work.Dir
		cmd.Env = append(gittest.Env(), "FEATURES="+features, "GITHUB_SHA=0123abcd", "PATH="+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("publish: %v\n%s", err, out)
		}
	}
	count := func() string { return strings.TrimSpace(gittest.Git(t, bare, "rev-list", "--count", "features")) }
	run(`{"features": {"a": {}}}` + "\n")
	if got := gittest.Git(t, bare, "show", "features:features.json"); !strings.Contains(got, `"a"`) || count() != "1" {
		t.Fatalf("features branch after the first export: %q, %s commits", got, count())
	}
	if files := strings.TrimSpace(gittest.Git(t, bare, "ls-tree", "--name-only", "features")); files != "features.json" {
		t.Errorf("the features branch holds %q, want features.json alone", files)
	}
	run(`{"features": {"a": {}}}` + "\n")
	if count() != "1" {
		t.Errorf("an unchanged payload made a commit")
	}
	run(`{"features": {"b": {}}}` + "\n")
	if got := gittest.Git(t, bare, "show", "features:features.json"); !strings.Contains(got, `"b"`) || count() != "2" {
		t.Errorf("features branch after a change: %q, %s commits", got, count())
	}
}
