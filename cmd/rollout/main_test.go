package main

import (
	"strings"
	"testing"
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
