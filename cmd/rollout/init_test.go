package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"

	"github.com/rollout-dev/rollout/rollouts"
)

// TestInitWritesASpecThatValidates: the scaffold of a model bump is the golden file, and `rollout
// validate --strict` on the repository it was written into passes (the prompt exists, the model ids
// are pinned): a newcomer's first spec needs no fixing.
func TestInitWritesASpecThatValidates(t *testing.T) {
	repo := t.TempDir()
	writeFile(t, filepath.Join(repo, "prompts", "summarize", "v3.md"), "Summarize the text.\n")
	code, stdout, stderr := runApp("init", "summarizer", "--repo", repo,
		"--stable-model", "claude-sonnet-4-5-20260301", "--canary-model", "claude-sonnet-4-5-20260415",
		"--prompt", "prompts/summarize/v3.md")
	if code != exitOK || stderr != "" {
		t.Fatalf("init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	path := filepath.Join(repo, "rollouts", "summarizer.yaml")
	if want := "wrote " + path + "\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout = %q, want it to start with %q", stdout, want)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, ".", "init/summarizer.yaml", got)

	code, stdout, stderr = runApp("validate", "--repo", repo, "--strict")
	if code != exitOK || !strings.Contains(stderr, "1 rollout valid, 0 errors, 0 warnings") {
		t.Fatalf("validate --strict of the scaffold: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestInitQuotesWhatYAMLWouldMisread: a prompt rewrite on a model id with a colon, a source URL with
// '#' and a numeric prompt label still validate, each value read back as typed.
func TestInitQuotesWhatYAMLWouldMisread(t *testing.T) {
	repo := t.TempDir()
	code, stdout, stderr := runApp("init", "support-reply", "--repo", repo,
		"--stable-model", "bedrock:anthropic.claude-3-5-sonnet-20241022-v2:0",
		"--prompt", "2024", "--canary-prompt", "2025 #2",
		"--source", "postgres://rollout@db.internal/llm?password=env:ROLLOUT_PGPASSWORD")
	if code != exitOK {
		t.Fatalf("init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runApp("validate", "--repo", repo, "-o", "json")
	if code != exitOK {
		t.Fatalf("validate: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runApp("init", "tagger", "--repo", repo, "--stable-model", "gpt-4o", "--canary-model", "gpt-4o-mini", "-o", "json")
	var out struct {
		Rollout  string   `json:"rollout"`
		File     string   `json:"file"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); code != exitOK || err != nil || out.Rollout != "tagger" ||
		out.File != filepath.Join(repo, "rollouts", "tagger.yaml") || len(out.Warnings) != 2 || !strings.Contains(out.Warnings[0], "is not pinned") {
		t.Fatalf("validate: exit %d\n%s\n%s", code, stdout, stderr)
	}
	path := filepath.Join(repo, "rollouts", "support-reply.yaml")
	src, _ := os.ReadFile(path)
	spec, problems := rollouts.Parse(path, src)
	if spec == nil || len(problems) > 0 {
		t.Fatalf("parse: %v", problems)
	}
	got := []string{spec.Stable.Model, spec.Canary.Model, spec.Stable.Prompt, spec.Canary.Prompt, spec.Metrics.Source}
	want := []string{"bedrock:anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock:anthropic.claude-3-5-sonnet-20241022-v2:0", "2024", "2025 #2",
		"postgres://rollout@db.internal/llm?password=env:ROLLOUT_PGPASSWORD"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("read back %q, want %q\n%s", got, want, src)
	}
}

// TestInitRefuses: init never overwrites a spec, and refuses, writing nothing, what would not be a
// valid rollout.
func TestInitRefuses(t *testing.T) {
	repo := t.TempDir()
	existing := filepath.Join(repo, "rollouts", "summarizer.yaml")
	writeFile(t, existing, "# a human's spec\n")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"an existing spec", []string{"init", "summarizer", "--stable-model", "m-2026-01-01", "--canary-model", "m-2026-02-01"}, exitFailed, "already exists; init never overwrites a spec"},
		{"no stable model", []string{"init", "tagger", "--canary-model", "m-2026-02-01"}, exitUsage, "--stable-model MODEL is required"},
		{"a canary that changes nothing", []string{"init", "tagger", "--stable-model", "m-2026-01-01", "--prompt", "v1"}, exitUsage, "the canary changes nothing"},
		{"a bad name", []string{"init", "Tagger_2", "--stable-model", "m-2026-01-01", "--canary-model", "m-2026-02-01"}, exitFailed, `name: "Tagger_2" may hold only lower-case letters, digits and '-'`},
		{"no name", []string{"init", "--stable-model", "m-2026-01-01"}, exitUsage, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runApp(append(tt.args, "--repo", repo)...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q (stdout %q)", code, stderr, tt.code, tt.msg, stdout)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "# a human's spec\n" {
		t.Errorf("the existing spec was changed: %q", b)
	}
	entries, _ := os.ReadDir(filepath.Join(repo, "rollouts"))
	if len(entries) != 1 {
		t.Errorf("rollouts/ holds %d files, want only the existing one", len(entries))
	}
}

// TestValidateInASubfolderFindsTheSpecs: run in a subfolder of the checkout, validate reads the
// repository's rollouts/ as plan does, and names each file from where it runs.
func TestValidateInASubfolderFindsTheSpecs(t *testing.T) {
	repo := t.TempDir()
	if _, err := git.PlainInit(repo, false); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runApp("init", "tagger", "--repo", repo, "--stable-model", "m-2026-01-01", "--canary-model", "m-2026-02-01"); code != exitOK {
		t.Fatalf("init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	writeFile(t, filepath.Join(repo, "rollouts", "broken.yaml"), "name: [\n")
	sub := filepath.Join(repo, "prompts", "tagger")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	code, stdout, stderr := runApp("validate")
	if code != exitFailed || !strings.HasPrefix(stdout, filepath.Join("..", "..", "rollouts", "broken.yaml")+":2:1: invalid YAML") ||
		!strings.Contains(stderr, "1 rollout valid, 1 error") {
		t.Fatalf("validate in %s: exit %d\nstdout: %s\nstderr: %s", sub, code, stdout, stderr)
	}
}

// TestInitInASubfolderWritesTheRepositorysSpecs: run in a subfolder of the checkout, init writes the
// spec into the repository's rollouts/ folder, where reconcile reads it and validate finds it, not into
// a rollouts/ folder under the subfolder; what it prints names the file from where it runs.
func TestInitInASubfolderWritesTheRepositorysSpecs(t *testing.T) {
	repo := t.TempDir()
	if _, err := git.PlainInit(repo, false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "prompts", "tag", "v1.md"), "Tag the text.\n")
	sub := filepath.Join(repo, "prompts", "tag")
	t.Chdir(sub)
	code, stdout, stderr := runApp("init", "tagger", "--stable-model", "m-2026-01-01", "--canary-model", "m-2026-02-01", "--prompt", "prompts/tag/v1.md")
	if code != exitOK || stderr != "" {
		t.Fatalf("init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	rel := filepath.Join("..", "..", "rollouts", "tagger.yaml")
	if _, err := os.Stat(filepath.Join(repo, "rollouts", "tagger.yaml")); err != nil {
		t.Fatalf("the spec is not in the repository's rollouts/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(sub, "rollouts")); err == nil {
		t.Errorf("init made a rollouts/ folder under %s", sub)
	}
	if !strings.Contains(stdout, "wrote "+rel+"\n") || !strings.Contains(stdout, "next: rollout validate "+rel+",") {
		t.Errorf("stdout does not name %s:\n%s", rel, stdout)
	}
	if code, stdout, stderr := runApp("validate", "--strict"); code != exitOK || !strings.Contains(stderr, "1 rollout valid, 0 errors, 0 warnings") {
		t.Fatalf("validate --strict in %s: exit %d\n%s\n%s", sub, code, stdout, stderr)
	}
}
