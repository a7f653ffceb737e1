package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readme is the repository's README, read once per test.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shellBlocks returns the lines of the README's ```sh blocks, comments and blank lines dropped.
func shellBlocks(doc string) [][]string {
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```").FindAllStringSubmatch(doc, -1) {
		var lines []string
		for _, line := range strings.Split(m[1], "\n") {
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i]
			}
			if line = strings.TrimSpace(line); line != "" {
				lines = append(lines, line)
			}
		}
		blocks = append(blocks, lines)
	}
	return blocks
}

// splitWords splits a command line as a shell would for plain words and double or single quotes.
func splitWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestReadmeTopCommands keeps the two commands of the README's first block exactly as a newcomer
// types them; TestDemo runs the first, and .ci/test is the second.
func TestReadmeTopCommands(t *testing.T) {
	blocks := shellBlocks(readme(t))
	want := []string{"go run ./cmd/rollout demo", "bash .ci/test"}
	if len(blocks) == 0 || strings.Join(blocks[0], "\n") != strings.Join(want, "\n") {
		t.Fatalf("first sh block %q, want %q", blocks[0], want)
	}
	if _, err := os.Stat(filepath.Join("..", "..", ".ci", "test")); err != nil {
		t.Error(err)
	}
}

// TestReadmeCommandsExist checks every `rollout …` line of the README's sh blocks against the command
// tree: the subcommand exists and is not a placeholder, every flag exists, and the positional
// arguments fit.
func TestReadmeCommandsExist(t *testing.T) {
	checked := 0
	for _, block := range shellBlocks(readme(t)) {
		for _, line := range block {
			words := splitWords(line)
			switch {
			case len(words) > 0 && words[0] == "rollout":
				words = words[1:]
			case len(words) > 3 && strings.Join(words[:3], " ") == "go run ./cmd/rollout":
				words = words[3:]
			default:
				continue
			}
			checked++
			app := &App{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
			root := app.rootCmd()
			cmd, rest, err := root.Find(words)
			if err != nil || cmd == root {
				t.Errorf("%q: no such command (%v)", line, err)
				continue
			}
			if cmd.Hidden {
				t.Errorf("%q: %s is a placeholder", line, cmd.Name())
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%q: %v", line, err)
				continue
			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("%q: %v", line, err)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d rollout commands found in the README", checked)
	}
}

// TestReadmeSpecReference checks that the spec reference names every field of the JSON Schema, so the
// two cannot drift apart.
func TestReadmeSpecReference(t *testing.T) {
	doc := readme(t)
	section := readmeSection(t, doc, "The spec")
	code, stdout, stderr := runApp("schema")
	if code != exitOK {
		t.Fatalf("rollout schema: exit %d: %s", code, stderr)
	}
	var schema any
	if err := json.Unmarshal([]byte(stdout), &schema); err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for name := range props {
					fields[name] = true
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(schema)
	if len(fields) < 30 {
		t.Fatalf("only %d fields found in the schema", len(fields))
	}
	for name := range fields {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("the spec reference does not name the schema field `%s`", name)
		}
	}
}

// TestReadmeLinks checks that every relative link of the README points at a file of the repository.
func TestReadmeLinks(t *testing.T) {
	for _, m := range regexp.MustCompile(`\]\(([^)#]+)(#[^)]*)?\)`).FindAllStringSubmatch(readme(t), -1) {
		target := m[1]
		if strings.Contains(target, "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join("..", "..", filepath.FromSlash(target))); err != nil {
			t.Errorf("link to %s: %v", target, err)
		}
	}
}

// TestReadmeQuickstart runs the README's quickstart with a local git remote, line by line, as a
// newcomer would: git through the git binary, every `rollout` line through Main. The remote's path is
// moved into a temp dir, the daemon (`rollout run`) is left to the daemon's own tests, and Slack is a
// loopback server, as a real team's reconciler would have a webhook URL in its environment.
func TestReadmeQuickstart(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("the quickstart needs the git binary")
	}
	doc := readme(t)
	section := readmeSection(t, doc, "Quickstart with a local git remote")

	var slack []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		slack = append(slack, string(b))
	}))
	defer hook.Close()
	env := map[string]string{"ROLLOUT_SLACK_WEBHOOK_URL": hook.URL, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com"}

	tmp := t.TempDir()
	remote := filepath.Join(tmp, "llm-config.git")
	checkout := filepath.Join(tmp, "rollout") // stands for a clone of this repository
	if err := os.CopyFS(filepath.Join(checkout, "examples", "model-bump"), os.DirFS(filepath.Join("..", "..", "examples", "model-bump"))); err != nil {
		t.Fatal(err)
	}
	dir := checkout
	gitEnv := append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	ran := 0
	var printed strings.Builder
	for _, block := range shellBlocks(section) {
		for _, line := range block {
			line = strings.ReplaceAll(line, "/tmp/llm-config.git", remote)
			words := splitWords(line)
			switch {
			case strings.HasPrefix(line, "go install"):
				continue // the test runs the command in-process
			case words[0] == "cd":
				dir = filepath.Join(dir, words[1])
				continue
			case words[0] == "rollout" && len(words) > 1 && words[1] == "run":
				continue // the daemon; its tests start and stop it
			case words[0] == "rollout":
				t.Chdir(dir)
				var stdout, stderr bytes.Buffer
				app := &App{Stdin: bytes.NewReader(nil), Stdout: &stdout, Stderr: &stderr, Now: time.Now,
					Getenv: func(k string) string { return env[k] }}
				t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null") // the actor comes from the checkout's git identity
				if code := app.Main(words[1:]); code != exitOK {
					t.Errorf("%s: exit %d\n%s%s", line, code, stdout.String(), stderr.String())
				}
				printed.WriteString(stdout.String())
			default:
				cmd := exec.Command("bash", "-c", line)
				cmd.Dir, cmd.Env = dir, gitEnv
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", line, err, out)
				}
			}
			ran++
		}
	}
	if ran < 12 {
		t.Errorf("only %d quickstart lines ran", ran)
	}
	// The example's .gitignore keeps the request records out of the repository.
	if files, err := exec.Command("git", "--git-dir", remote, "ls-tree", "-r", "--name-only", "HEAD").Output(); err != nil || strings.Contains(string(files), "traffic/") || !strings.Contains(string(files), "rollouts/summarizer.yaml") {
		t.Errorf("files committed by the quickstart (%v):\n%s", err, files)
	}
	code, stdout, stderr := runApp("status", "--repo", remote, "-o", "json")
	if code != exitOK || !strings.Contains(stdout, "RolledBack") {
		t.Errorf("status after the quickstart: exit %d\n%s%s\nwant the rollout rolled back by hand", code, stdout, stderr)
	}
	if len(slack) != 1 || !strings.Contains(slack[0], "rollback") {
		t.Errorf("slack got %q, want one rollback message", slack)
	}
	// The rollback's plain verdict the README quotes is the one the notification carries, with how to
	// try again.
	for _, m := range regexp.MustCompile("`(error rate …[^`]*)`").FindAllStringSubmatch(strings.ReplaceAll(section, "\n", " "), -1) {
		if len(slack) == 1 && (!elidedIn(m[1], []string{slack[0]}) || !strings.Contains(slack[0], "to try again")) {
			t.Errorf("the README's %q is not what the rollback notification says: %s", m[1], slack[0])
		}
	}
	// Issue 15: the quickstart shows real decisions on simulated data: a start, an advance proposal
	// and a rollback, and history names who paused and resumed.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`summarizer +start +0% → 5% +commit the start of stage 0`),
		regexp.MustCompile(`summarizer +advance +5% → 25% +push rollout/summarizer and propose it`),
		regexp.MustCompile(`summarizer +rollback +25% → 0% +commit the rollback on the default branch`),
		regexp.MustCompile(`Ada \(via rollout-bot\) .* pause .*: holiday freeze`),
	} {
		if !want.MatchString(printed.String()) {
			t.Errorf("the quickstart never printed %s:\n%s", want, printed.String())
		}
	}
	// The rollback's stage judges its own traffic only: stage 0's simulated hours, routed at 5%, left in
	// the backdated window showed as a sample-ratio mismatch.
	if strings.Contains(printed.String(), "sample ratio mismatch") {
		t.Errorf("the quickstart's evidence mixes stages:\n%s", printed.String())
	}
}

// TestReadmeGoSnippet compiles the README's Go snippet inside a program of this module, through a
// build overlay, so that the application side it shows cannot drift from the rollouts API.
func TestReadmeGoSnippet(t *testing.T) {
	blocks := regexp.MustCompile("(?ms)^```go\n(.*?)^```").FindAllStringSubmatch(readme(t), -1)
	if len(blocks) != 1 {
		t.Fatalf("%d go blocks in the README, want 1", len(blocks))
	}
	program := `package main

import (
	"context"
	"os"
	"sync/atomic"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/record"
)

func callModel(ctx context.Context, model, prompt, input string) (string, error) { return "", nil }

func main() {
	var ctx context.Context
	var userID, input string
` + blocks[0][1] + `
	_ = reply
}
`
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "main.go")
	overlay := filepath.Join(tmp, "overlay.json")
	replace, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "internal", "readmesnippet", "main.go"): src}})
	if err := os.WriteFile(src, []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(overlay, replace, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", overlay, "-o", os.DevNull, "./internal/readmesnippet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the README's Go snippet does not compile: %v\n%s\n%s", err, out, program)
	}
}

// TestReadmeDemoExcerpt keeps the README's demo excerpt true to what `rollout demo` prints: every row
// of its timeline, and the tagger's quoted hold reason, appear in the seed-1 golden, each piece between
// the "…" elisions in order on one line.
func TestReadmeDemoExcerpt(t *testing.T) {
	doc := readme(t)
	section := readmeSection(t, doc, "What the demo shows")
	golden, err := os.ReadFile(filepath.Join("testdata", "demo", "seed-1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var excerpts []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "+") {
			excerpts = append(excerpts, line)
		}
	}
	for _, m := range regexp.MustCompile("`((?:stable|canary) has [^`]*)`").FindAllStringSubmatch(section, -1) {
		excerpts = append(excerpts, m[1])
	}
	if len(excerpts) < 4 {
		t.Fatalf("only %d excerpts found in the demo section", len(excerpts))
	}
	for _, excerpt := range excerpts {
		if !elidedIn(excerpt, strings.Split(string(golden), "\n")) {
			t.Errorf("the README's demo excerpt %q is not what rollout demo prints (testdata/demo/seed-1.txt)", excerpt)
		}
	}
}

// elidedIn reports whether one of lines holds every piece of excerpt between its "…", in order.
func elidedIn(excerpt string, lines []string) bool {
	for _, line := range lines {
		rest, ok := line, true
		for _, piece := range strings.Split(excerpt, "…") {
			i := strings.Index(rest, strings.TrimSpace(piece))
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(strings.TrimSpace(piece)):]
		}
		if ok {
			return true
		}
	}
	return false
}

// readmeSection returns the README's section under "## heading", up to the next "## " heading.
func readmeSection(t *testing.T, doc, heading string) string {
	t.Helper()
	start := strings.Index(doc, "\n## "+heading+"\n")
	if start < 0 {
		t.Fatalf("no '## %s' section in the README", heading)
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	return section
}
