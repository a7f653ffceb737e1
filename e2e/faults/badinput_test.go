package faults

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected messages of the bad-input corpus (testdata/bad/**/*.golden)")

// repoRoot is the module's root, where action.yml, action/ and the release configuration live.
const repoRoot = "../.."

// corpusRoot is the e2e folder, where the bad-input corpus (testdata/bad) lives and where `rollout
// validate` runs, so that the paths in its messages read as a user would type them.
const corpusRoot = ".."

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// rolloutBin builds cmd/rollout once per test binary: the corpus is checked through the real command,
// built as the release builds it (static, -trimpath), which also lets .ci/test's runs without the race
// detector and deploy's release test share the compiled packages.
func rolloutBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rollout-faults-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rollout")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "../../cmd/rollout")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build rollout: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// runRollout runs the rollout command in the corpus root with no token or webhook in its
// environment, as a pull request from a fork runs it, and returns its exit code and output.
func runRollout(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(rolloutBin(t), args...)
	cmd.Dir = corpusRoot
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("rollout %s: %v", strings.Join(args, " "), err)
	}
	if s := out.String(); strings.Contains(s, "panic:") || strings.Contains(s, "goroutine ") {
		t.Fatalf("rollout %s crashed:\n%s", strings.Join(args, " "), s)
	}
	return code, out.String()
}

// checkGolden compares got with the golden file at path (relative to the corpus root).
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	file := filepath.Join(corpusRoot, path)
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestBadSpecs checks every case of testdata/bad/specs through `rollout validate`: a file, or a folder
// validated as a whole, each with its expected messages and exit code in <case>.golden. Every message
// names the file, line and column; nothing crashes; literal webhook URLs are never echoed.
func TestBadSpecs(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(corpusRoot, "testdata/bad/specs"))
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".golden") {
			continue
		}
		cases++
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			path := "testdata/bad/specs/" + name
			code, out := runRollout(t, "validate", path)
			checkGolden(t, strings.TrimSuffix(path, ".yaml")+".golden", "exit "+strconv.Itoa(code)+"\n"+out)
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, path) && !strings.Contains(line, "rollouts valid") && !strings.Contains(line, "rollout valid") {
					t.Errorf("message does not name its file: %q", line)
				}
			}
			if strings.Contains(out, "LITERALSECRET") || strings.Contains(out, "LITERALPASSWORD") {
				t.Errorf("validate echoed a literal webhook URL:\n%s", out)
			}
		})
	}
	if cases < 10 {
		t.Fatalf("only %d cases in testdata/bad/specs", cases)
	}
}

// generatedSpecs are the cases too big to commit: written by the test, with the messages expected.
var generatedSpecs = []struct {
	name, content, want string
}{
	{"ten-megabytes.yaml", "apiVersion: rollout/v1\nkind: Rollout\nname: huge\ndescription: \"" + strings.Repeat("x", 10<<20) + "\"\n",
		"ten-megabytes.yaml:1:1: file is 10485824 bytes; a rollout spec may hold at most 1048576"},
	{"deep-nesting.yaml", "apiVersion: rollout/v1\nkind: Rollout\nname: deep\nstable: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n",
		"deep-nesting.yaml:4:1: invalid YAML: exceeded max depth of 10000"},
	{"long-line.yaml", "apiVersion: rollout/v1\nkind: Rollout\nname: " + strings.Repeat("a", 900<<10) + "\n",
		"long-line.yaml:3:7: name: is 921600 bytes long; at most 63"},
}

// TestGeneratedBadSpecs: a 10 MB spec, YAML nested 100,000 deep and a 900 KB name are refused with a
// clear message, quickly, and without crashing.
func TestGeneratedBadSpecs(t *testing.T) {
	dir := t.TempDir()
	for _, c := range generatedSpecs {
		t.Run(strings.TrimSuffix(c.name, ".yaml"), func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := runRollout(t, "validate", path)
			if code != 1 || !strings.Contains(out, path[:len(path)-len(c.name)]+c.want) {
				t.Errorf("exit %d, output:\n%.500s\nwant a message holding %q", code, out, c.want)
			}
			if len(out) > 4096 {
				t.Errorf("validate printed %d bytes for one bad file; a message must not echo the input", len(out))
			}
		})
	}
}

// TestBadRecords checks every JSON Lines case of testdata/bad/jsonl through `rollout evaluate`: the
// malformed lines are counted and named by file and line number, the good ones still count, nothing crashes.
func TestBadRecords(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(corpusRoot, "testdata/bad/jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		cases++
		t.Run(strings.TrimSuffix(name, ".jsonl"), func(t *testing.T) {
			path := "testdata/bad/jsonl/" + name
			code, out := runRollout(t, "evaluate", "--spec", "testdata/bad/jsonl/spec.yaml", "--metrics", "file:"+path,
				"--now", "2026-04-16T02:00:00Z")
			checkGolden(t, strings.TrimSuffix(path, ".jsonl")+".golden", "exit "+strconv.Itoa(code)+"\n"+out)
			if !strings.Contains(out, "malformed records skipped in file:"+path+" (lines ") {
				t.Errorf("no malformed lines reported:\n%s", out)
			}
		})
	}
	if cases < 5 {
		t.Fatalf("only %d cases in testdata/bad/jsonl", cases)
	}
}

// TestHugeRecordLines: lines of 2 MB and 64 MB (over the 1 MB line limit) are skipped as malformed,
// named by line number, and the records around them still count; memory stays bounded by the limit.
func TestHugeRecordLines(t *testing.T) {
	ok := `{"ts":"2026-04-16T00:10:00Z","rollout":"summarizer","variant":"stable","error":false}` + "\n"
	path := filepath.Join(t.TempDir(), "huge.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(ok)
	f.WriteString(`{"ts":"2026-04-16T00:10:00Z","rollout":"summarizer","variant":"canary","model":"` + strings.Repeat("m", 2<<20) + "\"}\n")
	f.WriteString(ok)
	chunk := strings.Repeat("z", 1<<20)
	for range 64 {
		f.WriteString(chunk)
	}
	f.WriteString("\n")
	f.WriteString(ok)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	code, out := runRollout(t, "evaluate", "--spec", "testdata/bad/jsonl/spec.yaml", "--metrics", "file:"+path, "--now", "2026-04-16T02:00:00Z")
	if code != 0 || !strings.Contains(out, "2 malformed records skipped in file:"+path+" (lines 2, 4)") || !strings.Contains(out, "0% (n=3)") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
