package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
	start := strings.Index(doc, "\n## The spec")
	if start < 0 {
		t.Fatal("no '## The spec' section")
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
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
