package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAssign(t *testing.T) {
	base, _ := os.Getwd()
	spec := filepath.Join("..", "..", "testdata", "specs", "rollouts", "good.yaml")
	tests := []struct {
		golden   string
		args     []string
		wantCode int
	}{
		{"assign/text.txt", []string{"assign", "--spec", spec, "u-1", "u-2", "u-3", "u-19", "vip-7", "beta-2", "beta-vip", "ü"}, exitOK},
		{"assign/json.txt", []string{"assign", "--spec", spec, "-o", "json", "u-1", "vip-7", "beta-2"}, exitOK},
		{"assign/invalid-spec.txt", []string{"assign", "--spec", filepath.Join("..", "..", "testdata", "specs", "rollouts", "typos.yaml"), "u-1"}, exitFailed},
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
	spec := filepath.Join("..", "..", "testdata", "specs", "rollouts", "good.yaml")
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
