package deploy_test

import (
	"os"
	"os/exec"
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

// .ci/install-goreleaser --if-changed, as .ci/test runs it on a machine without GoReleaser: nothing is
// built while .goreleaser.yaml and the version are the ones testdata/goreleaser-checked.sha256 records;
// GoReleaser is built (`go install`, here a stand-in go on PATH that records its arguments) when they
// differ; a built one is found without building again.
func TestGoreleaserBuiltOnlyWhenItsConfigChanged(t *testing.T) {
	fake := t.TempDir()
	calls := filepath.Join(fake, "calls")
	script := `#!/usr/bin/env bash
echo "$*" >> "` + calls + `"
case "$1" in
env) echo "` + filepath.Join(fake, "cache", "go-build") + `" ;;
install) mkdir -p "$GOBIN" && printf '#!/bin/sh\n' > "$GOBIN/goreleaser" && chmod +x "$GOBIN/goreleaser" ;;
esac
`
	if err := os.WriteFile(filepath.Join(fake, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(version string) (stdout, stderr string) {
		t.Helper()
		cmd := exec.Command("bash", filepath.Join(repoRoot, ".ci/install-goreleaser"), "--if-changed")
		cmd.Env = []string{"PATH=" + fake + ":" + os.Getenv("PATH"), "HOME=" + fake, "ROLLOUT_TOOLS=" + filepath.Join(fake, "tools")}
		if version != "" {
			cmd.Env = append(cmd.Env, "GORELEASER_VERSION="+version)
		}
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("install-goreleaser: %v\n%s", err, errOut.String())
		}
		return strings.TrimSpace(out.String()), errOut.String()
	}
	installs := func() int {
		raw, _ := os.ReadFile(calls)
		return strings.Count(string(raw), "install github.com/goreleaser/goreleaser/v2@")
	}

	out, msg := run("")
	if out != "" || installs() != 0 || !strings.Contains(msg, "unchanged since goreleaser") {
		t.Errorf("with the recorded configuration: printed %q, %d builds, said %q; want nothing built", out, installs(), msg)
	}
	out, msg = run("v2.16.0") // another version: the check it recorded no longer holds
	want := filepath.Join(fake, "tools", "goreleaser-v2.16.0", "goreleaser")
	if out != want || installs() != 1 || !strings.Contains(msg, "about 13 minutes") {
		t.Errorf("with another configuration: printed %q, %d builds, said %q; want %s built once", out, installs(), msg, want)
	}
	if out, _ = run("v2.16.0"); out != want || installs() != 1 {
		t.Errorf("a built goreleaser was built again (%d builds), or not found (%q)", installs(), out)
	}
}
