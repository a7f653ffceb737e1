package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAssign(t *testing.T) {
	base, _ := os.Getwd()
	spec := filepath.Join("testdata", "specs", "rollouts", "good.yaml")
	tests := []struct {
		golden   string
		args     []string
		wantCode int
	}{
		{"assign/text.txt", []string{"assign", "--spec", spec, "u-1", "u-2", "u-3", "u-19", "vip-7", "beta-2", "beta-vip", "ü"}, exitOK},
		{"assign/json.txt", []string{"assign", "--spec", spec, "-o", "json", "u-1", "vip-7", "beta-2"}, exitOK},
		{"assign/invalid-spec.txt", []string{"assign", "--spec", filepath.Join("testdata", "specs", "rollouts", "typos.yaml"), "u-1"}, exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			code, stdout, stderr := runApp(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			checkGolden(t, base, tt.golden, []byte(stdout+"--- stderr\n"+stderr))
		})
	}
}

func TestAssignUsage(t *testing.T) {
	spec := filepath.Join("testdata", "specs", "rollouts", "good.yaml")
	for _, args := range [][]string{
		{"assign", "u-1"},                            // no --spec
		{"assign", "--spec", spec},                   // no key
		{"assign", "--spec", spec, "-o", "xml", "k"}, // bad format
	} {
		if code, _, _ := runApp(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, _ := runApp("assign", "--spec", "no-such-file.yaml", "k"); code != exitFailed {
		t.Errorf("missing spec: exit %d, want 1", code)
	}
}

// A spec that is not there is named once, with what went wrong, by every command that reads one.
func TestMissingSpecNamedOnce(t *testing.T) {
	for _, args := range [][]string{
		{"assign", "--spec", "rollouts/nope.yaml", "k"},
		{"evaluate", "--spec", "rollouts/nope.yaml"},
		{"simulate", "--spec", "rollouts/nope.yaml"},
	} {
		var stdout, stderr bytes.Buffer
		app := &App{Stdin: bytes.NewReader(nil), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" },
			Now: func() time.Time { return time.Date(2026, 4, 16, 12, 0, 0, 0, time.UTC) }}
		code := app.Main(args)
		if code != exitFailed || strings.Count(stderr.String(), "rollouts/nope.yaml") != 1 ||
			!strings.Contains(stderr.String(), "read spec rollouts/nope.yaml: no such file or directory") {
			t.Errorf("%s: exit %d, stderr %q", args[0], code, stderr.String())
		}
	}
}
