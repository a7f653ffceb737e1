package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// projectWorkflow is the part of a workflow in .github/workflows the tests check.
type projectWorkflow struct {
	On   map[string]yaml.Node `yaml:"on"`
	Jobs map[string]struct {
		Steps []struct {
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func readWorkflow(t *testing.T, name string) projectWorkflow {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".github/workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var w projectWorkflow
	if err := yaml.Unmarshal(raw, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

// CI runs the test command the README gives.
func TestCIRunsTheReadmeTestCommand(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^(bash \\.ci/test)\\s+#").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README names no test command (bash .ci/test)")
	}
	w := readWorkflow(t, "ci.yml")
	if _, ok := w.On["pull_request"]; !ok {
		t.Error("ci.yml does not run on pull requests")
	}
	found := false
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			found = found || strings.Contains(s.Run, string(m[1]))
		}
	}
	if !found {
		t.Errorf("no step of ci.yml runs %q", m[1])
	}
}

// The release workflow runs GoReleaser on a version tag, with the version the suite checks the
// configuration with.
func TestReleaseWorkflow(t *testing.T) {
	w := readWorkflow(t, "release.yml")
	var push struct {
		Tags []string `yaml:"tags"`
	}
	node := w.On["push"]
	if err := node.Decode(&push); err != nil || len(push.Tags) != 1 || !strings.HasPrefix(push.Tags[0], "v*") {
		t.Errorf("release.yml runs on push tags %v (%v), want v*", push.Tags, err)
	}
	install, err := os.ReadFile(filepath.Join(repoRoot, ".ci/install-goreleaser"))
	if err != nil {
		t.Fatal(err)
	}
	checked := regexp.MustCompile(`GORELEASER_VERSION:-(v[0-9.]+)`).FindSubmatch(install)
	if checked == nil {
		t.Fatal(".ci/install-goreleaser names no default version")
	}
	found := false
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "goreleaser/goreleaser-action@") {
				found = true
				if s.With["version"] != string(checked[1]) || !strings.HasPrefix(s.With["args"], "release --clean") {
					t.Errorf("goreleaser-action runs version %q with %q; the suite checks with %s", s.With["version"], s.With["args"], checked[1])
				}
			}
		}
	}
	if !found {
		t.Error("release.yml does not run goreleaser/goreleaser-action")
	}
}
