package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// Every mistake in the command line itself exits 2, whichever part of it is wrong.
func TestCommandLineMistakesExitUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"misspelt command", []string{"reconcil"}, "Did you mean this?"},
		{"unknown root flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"unknown command flag", []string{"status", "--bogus"}, "unknown flag: --bogus"},
		{"extra argument", []string{"schema", "extra"}, "accepts 0 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runApp(tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.msg) {
				t.Errorf("rollout %s: exit %d, stderr %q; want exit %d with %q", strings.Join(tt.args, " "), code, stderr, exitUsage, tt.msg)
			}
		})
	}
}

// A JSON run prints one JSON value even when it fails before it has results (docs/cli.md): the
// error, and the hint standard error got, as {"error", "hint"}; a text run leaves standard output empty.
func TestJSONRunThatFailsPrintsItsError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nowhere")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no such spec", []string{"evaluate", "--spec", filepath.Join(missing, "x.yaml"), "-o", "json"}, exitFailed, "read spec"},
		{"no repository", []string{"status", "--repo", missing, "-o", "json"}, exitFailed, "open repository"},
		{"history without a repository", []string{"history", "nope", "--repo", missing, "-o", "json"}, exitFailed, "repository path"},
		{"unknown flag", []string{"status", "-o", "json", "--bogus"}, exitUsage, "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(args []string) (int, string, string) {
				app, stdout, stderr := testApp()
				code := app.Main(args)
				return code, stdout.String(), stderr.String()
			}
			code, stdout, stderr := run(tt.args)
			var got struct{ Error, Hint string }
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("rollout %s: stdout %q is not one JSON value: %v", strings.Join(tt.args, " "), stdout, err)
			}
			if code != tt.code || !strings.Contains(got.Error, tt.msg) || !strings.Contains(stderr, got.Error) {
				t.Errorf("exit %d, error %q, stderr %q; want exit %d, %q in both", code, got.Error, stderr, tt.code, tt.msg)
			}
			if tt.code == exitUsage && !strings.Contains(got.Hint, "--help") {
				t.Errorf("hint %q, want the --help to run", got.Hint)
			}
			textArgs := slices.Clone(tt.args)
			textArgs[slices.Index(textArgs, "json")] = "text"
			if _, stdout, _ := run(textArgs); stdout != "" {
				t.Errorf("the text run printed %q on standard output", stdout)
			}
		})
	}
}

// A repository with no specs yet (the Action installed before the first rollout, or a --dir that names
// another folder) is not a riddle: every command that reads the branch says the folder is missing and
// how to write the first spec, once, without repeating the path.
func TestNoRolloutsFolderSaysWhatToDo(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"README.md": "hello\n"})
	for _, args := range [][]string{{"status"}, {"reconcile"}, {"plan"}, {"report"}, {"export", "growthbook"}} {
		app, _, stderr := testApp()
		code := app.Main(append(args, "--repo", bare))
		msg := stderr.String()
		if code != exitFailed || !strings.Contains(msg, "no rollouts folder: rollouts") || !strings.Contains(msg, "hint: the branch holds no specs there yet: write one with `rollout init") ||
			strings.Contains(msg, "readdir") {
			t.Errorf("rollout %s: exit %d, stderr:\n%s\nwant exit 1, the folder missing and the hint", strings.Join(args, " "), code, msg)
		}
	}
}
