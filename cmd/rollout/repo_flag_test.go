package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// gatedSpec is a rollout at stage 0 whose stage 1 has an evals gate, judged on the file: source of the
// directory rollout runs in; %s is its name.
const gatedSpec = `apiVersion: rollout/v1
kind: Rollout
name: %s
stable:
  model: m-2026-01-01
  prompt: prompts/p.md
canary:
  model: m-2026-02-01
  prompt: prompts/p.md
traffic:
  weight: 5
stages:
  - {weight: 5}
  - {weight: 50, gate: {evals: evals/g.json, minPassRate: 0.9}}
  - {weight: 100}
metrics:
  source: file:traffic/g.jsonl
analysis:
  rules:
    - {metric: error_rate, max: 0.5}
status:
  phase: Progressing
  stage: 0
  stageStartedAt: 2026-04-16T00:00:00Z
`

const (
	evalsPass = `{"cases": [{"id": "a", "stable": true, "canary": true}]}`
	evalsFail = `{"cases": [{"id": "a", "stable": true, "canary": false}]}`
	// brokenSpec has a key typo on its line 4, column 1.
	brokenSpec = "apiVersion: rollout/v1\nkind: Rollout\nname: broken\nstabel: {model: m-2026-01-01}\nstages: [{weight: 5}]\n"
)

func gated(name string) string { return fmt.Sprintf(gatedSpec, name) }

// withBranch pushes a branch of bare whose commit adds files (path to content) on top of main.
func withBranch(t *testing.T, bare, branch string, files map[string]string) {
	t.Helper()
	c := gittest.Clone(t, bare)
	c.Git("checkout", "--quiet", "-b", branch)
	c.Write(files)
	c.Commit("on " + branch)
	c.Push(branch)
}

// inTempDir makes the test run in a new folder holding files: the current directory that --repo must
// not be confused with.
func inTempDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return dir
}

// --repo naming a remote (a file:// URL, or a bare repository's path) is validated as its branch holds
// it, never the current directory's specs; --branch picks another branch, --dir another folder.
func TestValidateRepoReadsTheRemoteBranch(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/gated.yaml": gated("gated"),
		"specs/other.yaml":    gated("other"),
		"prompts/p.md":        "Summarize.\n",
		"evals/g.json":        evalsPass,
	})
	withBranch(t, bare, "broken", map[string]string{"rollouts/broken.yaml": brokenSpec})
	cwd := map[string]string{}
	for i := range 10 {
		cwd[fmt.Sprintf("rollouts/bad%d.yaml", i)] = "name: [\n"
	}
	inTempDir(t, cwd)
	url := "file://" + filepath.ToSlash(bare)

	// Without --repo: the current directory, as before.
	code, stdout, stderr := runApp("validate")
	if code != exitFailed || !strings.Contains(stderr, "10 errors") || !strings.Contains(stdout, "rollouts/bad0.yaml:2:1:") {
		t.Fatalf("without --repo: exit %d, want 1 and the current directory's 10 errors\n%s%s", code, stdout, stderr)
	}
	for name, repo := range map[string]string{"file URL": url, "bare path": bare} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runApp("validate", "--repo", repo)
			if code != exitOK || !strings.Contains(stderr, "1 rollout valid, 0 errors, 0 warnings") || strings.Contains(stdout, "bad") {
				t.Errorf("--repo %s: exit %d, want 0 and the remote's one valid rollout\n%s%s", repo, code, stdout, stderr)
			}
			code, stdout, stderr = runApp("validate", "--repo", repo, "--dir", "specs", "-o", "json")
			if code != exitOK || !strings.Contains(stdout, `"file": "specs/other.yaml"`) {
				t.Errorf("--dir specs: exit %d, want 0 and specs/other.yaml\n%s%s", code, stdout, stderr)
			}
			code, stdout, stderr = runApp("validate", "--repo", repo, "./specs/other.yaml", "rollouts")
			if code != exitOK || !strings.Contains(stderr, "2 rollouts valid, 0 errors") {
				t.Errorf("named paths: exit %d, want 0 and 2 rollouts\n%s%s", code, stdout, stderr)
			}
			// Another branch, and its errors with file, line and column.
			code, stdout, stderr = runApp("validate", "--repo", repo, "--branch", "broken")
			if code != exitFailed || !strings.Contains(stdout, "rollouts/broken.yaml:4:1: ") || strings.Contains(stdout, "bad0") {
				t.Errorf("--branch broken: exit %d, want 1 and rollouts/broken.yaml:4:1\n%s%s", code, stdout, stderr)
			}
			// A folder the branch does not hold says where it was looked for.
			code, _, stderr = runApp("validate", "--repo", repo, "--dir", "nope")
			if code != exitFailed || !strings.Contains(stderr, "hint: there is no nope on branch main of "+bare) {
				t.Errorf("--dir nope: exit %d, want 1 and a hint naming the branch\n%s", code, stderr)
			}
			code, _, stderr = runApp("validate", "--repo", repo, "--branch", "nope")
			if code != exitFailed || !strings.Contains(stderr, "branch nope") {
				t.Errorf("--branch nope: exit %d, want 1 naming the branch\n%s", code, stderr)
			}
			for _, path := range []string{"/etc/passwd", "../x.yaml"} {
				if code, _, stderr := runApp("validate", "--repo", repo, path); code != exitUsage || !strings.Contains(stderr, "is not a path in the repository") {
					t.Errorf("validate --repo %s %s: exit %d, want 2\n%s", repo, path, code, stderr)
				}
			}
		})
	}
}

// A checkout is read as it is on disk, uncommitted files included, with --repo naming it or run in
// it: people validate before they commit. --branch reads that branch of its remote instead.
func TestValidateCheckoutReadsUncommittedFiles(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"rollouts/gated.yaml": gated("gated"), "prompts/p.md": "Summarize.\n"})
	c := gittest.Clone(t, bare)
	c.Write(map[string]string{"rollouts/broken.yaml": brokenSpec})
	inTempDir(t, nil)
	code, stdout, stderr := runApp("validate", "--repo", c.Dir)
	if code != exitFailed || !strings.Contains(stdout, filepath.Join(c.Dir, "rollouts", "broken.yaml")+":4:1: ") {
		t.Errorf("--repo CHECKOUT: exit %d, want 1 and the uncommitted file's error\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runApp("validate", "--repo", c.Dir, "--branch", "main")
	if code != exitOK || !strings.Contains(stderr, "1 rollout valid, 0 errors") {
		t.Errorf("--repo CHECKOUT --branch main: exit %d, want 0 (the committed branch of its remote)\n%s%s", code, stdout, stderr)
	}
	t.Chdir(c.Dir)
	code, stdout, stderr = runApp("validate")
	if code != exitFailed || !strings.Contains(stdout, "rollouts/broken.yaml:4:1: ") {
		t.Errorf("in the checkout: exit %d, want 1 and the uncommitted file's error\n%s%s", code, stdout, stderr)
	}
}

// A token in a --repo URL authenticates, and never appears in what validate prints.
func TestValidateRepoOverHTTPKeepsTheTokenSecret(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"rollouts/gated.yaml": gated("gated"), "prompts/p.md": "Summarize.\n"})
	srv := gittest.NewServer(t, filepath.Dir(bare))
	srv.RequireAuth("x-access-token", "ghs_right")
	inTempDir(t, map[string]string{"rollouts/bad.yaml": "name: [\n"})
	withToken := func(token string) string {
		return strings.Replace(srv.URL, "http://", "http://x-access-token:"+token+"@", 1) + "/" + filepath.Base(bare)
	}
	code, stdout, stderr := runApp("validate", "--repo", withToken("ghs_right"))
	if code != exitOK || !strings.Contains(stderr, "1 rollout valid, 0 errors") {
		t.Errorf("with the token: exit %d, want 0\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runApp("validate", "--repo", withToken("ghs_wrong"), "--dir", "nope")
	if code != exitFailed || strings.Contains(stdout+stderr, "ghs_wrong") || !strings.Contains(stderr, "authentication") {
		t.Errorf("with a wrong token: exit %d, want 1 without the token\n%s%s", code, stdout, stderr)
	}
}

// evaluate --repo reads the spec and its gate's evals file from the remote's branch; the relative
// file: metrics source stays the directory rollout runs in, as the contract says.
func TestEvaluateRepoReadsSpecAndGates(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/g.yaml": gated("gated"),
		"prompts/p.md":    "Summarize.\n",
		"evals/g.json":    evalsPass,
	})
	withBranch(t, bare, "failing", map[string]string{"evals/g.json": evalsFail})
	// The current directory holds the traffic, and a spec whose gate names an evals file that is not
	// there: only the remote's spec and evals file open the gate.
	var traffic strings.Builder
	for i := range 2000 {
		variant := "stable"
		if i%20 == 0 {
			variant = "canary"
		}
		fmt.Fprintf(&traffic, `{"ts":"2026-04-16T%02d:%02d:%02dZ","rollout":"gated","variant":"%s","key":"k%d","error":false}`+"\n",
			i/3600, i/60%60, i%60, variant, i)
	}
	inTempDir(t, map[string]string{"traffic/g.jsonl": traffic.String(),
		"rollouts/g.yaml": strings.Replace(gated("gated"), "evals/g.json", "evals/local.json", 1)})
	url := "file://" + filepath.ToSlash(bare)
	evaluate := func(args ...string) (int, string, string) {
		t.Helper()
		app, out, errOut := testApp()
		code := app.Main(append([]string{"evaluate", "--spec", "rollouts/g.yaml", "--now", "2026-04-17T00:00:00Z"}, args...))
		return code, out.String(), errOut.String()
	}

	// Without --repo: the spec and the gate of the current directory, as before.
	code, stdout, stderr := evaluate()
	if code != exitOK || !strings.Contains(stdout, "gated: hold") || !strings.Contains(stdout, "gate of stage 1 is shut: evals evals/local.json: file not found") {
		t.Fatalf("without --repo: exit %d, want a hold on the missing evals file\n%s%s", code, stdout, stderr)
	}
	for name, repo := range map[string]string{"file URL": url, "bare path": bare} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := evaluate("--repo", repo, "-o", "json")
			var got evaluation
			if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != exitOK {
				t.Fatalf("--repo %s: exit %d, %v\n%s%s", repo, code, err, stdout, stderr)
			}
			if got.Rollout != "gated" || got.Decision != "advance" || got.Next == nil || got.Next.Stage != 1 {
				t.Errorf("--repo %s: %+v, want gated to advance to stage 1 through the branch's open gate", repo, got)
			}
			code, stdout, stderr = evaluate("--repo", repo, "--branch", "failing")
			if code != exitOK || !strings.Contains(stdout, "gated: hold") || !strings.Contains(stdout, "gate of stage 1 is shut") || strings.Contains(stdout, "file not found") {
				t.Errorf("--branch failing: exit %d, want a hold on the branch's failing evals\n%s%s", code, stdout, stderr)
			}
			code, _, stderr = evaluate("--repo", repo, "--spec", "./rollouts/nope.yaml")
			if code != exitFailed || !strings.Contains(stderr, "read spec rollouts/nope.yaml on branch main of "+bare+": file does not exist") {
				t.Errorf("a spec the branch does not hold: exit %d\n%s", code, stderr)
			}
			code, _, stderr = evaluate("--repo", repo, "--spec", "/etc/passwd")
			if code != exitUsage || !strings.Contains(stderr, "--spec /etc/passwd is not a path in the repository") {
				t.Errorf("--spec outside the repository: exit %d, want 2\n%s", code, stderr)
			}
		})
	}
	// The spec's problems keep their file, line and column.
	withBranch(t, bare, "broken", map[string]string{"rollouts/g.yaml": brokenSpec})
	code, _, stderr = evaluate("--repo", bare, "--branch", "broken")
	if code != exitFailed || !strings.Contains(stderr, "rollouts/g.yaml:4:1: ") {
		t.Errorf("a broken spec on the branch: exit %d, want 1 and rollouts/g.yaml:4:1\n%s", code, stderr)
	}
}

// TestDirAsAShellTypesIt: --dir names a folder of the repository as git does, so "./specs" and
// "specs/" (a shell's completion) read specs on every command that reads a branch, as validate
// already did; a folder outside the repository is a usage error that says what --dir wants.
func TestDirAsAShellTypesIt(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"specs/g.yaml": gated("g")})
	for _, dir := range []string{"./specs", "specs/", "./specs/"} {
		for _, args := range [][]string{{"status"}, {"history", "g"}, {"export", "growthbook"}, {"plan"}} {
			t.Run(dir+" "+args[0], func(t *testing.T) {
				stdout, stderr, code := historyMain(append(args, "--repo", bare, "--dir", dir)...)
				if code != exitOK || !strings.Contains(stdout, "5%") && !strings.Contains(stdout, `"g"`) {
					t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
				}
			})
		}
	}
	for _, dir := range []string{"/srv/specs", "../specs"} {
		_, stderr, code := historyMain("status", "--repo", bare, "--dir", dir)
		if code != exitUsage || !strings.Contains(stderr, "want a folder of the repository named from its top folder") {
			t.Errorf("--dir %s: exit %d, stderr %s", dir, code, stderr)
		}
	}
	// The spec a --dir with a trailing slash selects is committed to like any other.
	if stdout, stderr, code := historyMain("pause", "g", "--repo", bare, "--dir", "specs/"); code != exitOK {
		t.Errorf("pause: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
