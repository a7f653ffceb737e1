package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/rollouts"
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

// TestAssignInANamespace: three rollouts of one namespace at 30% each. `assign --spec` gives each the
// slice rollouts.Load gives it in the application, so no key is in two canaries, each canary still
// takes about 30% of all keys, and every key gets exactly what the application routes it to.
func TestAssignInANamespace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rollouts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"ns-a", "ns-b", "ns-c"}
	for _, n := range names {
		spec := fmt.Sprintf("apiVersion: rollout/v1\nkind: Rollout\nname: %s\nstable: {model: m-stable}\ncanary: {model: m-%s}\n"+
			"traffic: {weight: 30}\nassignment: {key: user_id, namespace: shared}\nstages:\n  - {weight: 30, minDuration: 1h}\n  - {weight: 100, minDuration: 1h}\n"+
			"metrics: {source: file:traffic.jsonl}\n", n, n)
		if err := os.WriteFile(filepath.Join(dir, n+".yaml"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A sibling outside the namespace, one that does not parse, and one whose route names a file the
	// repository lacks (Load leaves it out of the application's set) take no slice.
	if err := os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("apiVersion: rollout/v1\nkind: Rollout\nname: other\nstable: {model: m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unrouted := "apiVersion: rollout/v1\nkind: Rollout\nname: ns-d\nstable: {model: m-stable}\ncanary: {model: m-ns-d}\n" +
		"traffic:\n  weight: 30\n  routes:\n    - file: deploy/missing.yaml\n      stable: a\n      canary: b\n" +
		"assignment: {key: user_id, namespace: shared}\nstages:\n  - {weight: 30, minDuration: 1h}\n"
	if err := os.WriteFile(filepath.Join(dir, "ns-d.yaml"), []byte(unrouted), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rollouts.Load(os.DirFS(filepath.Dir(dir)), "rollouts")
	if err != nil {
		t.Fatal(err)
	}
	if set.Lookup("ns-d") != nil {
		t.Fatal("Load kept a rollout whose route file is missing")
	}
	keys := make([]string, 2000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k-%d", i)
	}
	inCanary := map[string][]string{}
	for _, n := range names {
		code, stdout, stderr := runApp(append([]string{"assign", "--spec", filepath.Join(dir, n+".yaml"), "-o", "json"}, keys...)...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", n, code, stderr)
		}
		var choices []assignChoice
		if err := json.Unmarshal([]byte(stdout), &choices); err != nil {
			t.Fatal(err)
		}
		app := set.Lookup(n).Spec.Assigner()
		canaries := 0
		for i, c := range choices {
			if want := app.Choose(keys[i]); string(want.Arm) != c.Arm || want.Reason != c.Reason {
				t.Fatalf("%s: key %s: assign says %s (%s), the application routes %s (%s)", n, keys[i], c.Arm, c.Reason, want.Arm, want.Reason)
			}
			if c.Arm == string(rollouts.CanaryArm) {
				inCanary[keys[i]] = append(inCanary[keys[i]], n)
				canaries++
			}
		}
		if share := float64(canaries) / float64(len(keys)); share < 0.26 || share > 0.34 {
			t.Errorf("%s: canary share %.3f, want about 0.30", n, share)
		}
	}
	for k, in := range inCanary {
		if len(in) > 1 {
			t.Errorf("key %s is in the canaries of %v", k, in)
		}
	}
	code, stdout, _ := runApp("assign", "--spec", filepath.Join(dir, "ns-b.yaml"), "k-1", "k-2", "k-3", "k-4", "k-5", "k-6")
	if code != exitOK || !strings.Contains(stdout, "over its slice of namespace shared, keys whose namespace hash is in [0.333, 0.666), one of 3 rollouts") ||
		!strings.Contains(stdout, "namespace shared: outside its slice") {
		t.Errorf("exit %d, text output does not word the slice:\n%s", code, stdout)
	}
	t.Logf("assign in a namespace:\n%s", stdout)
}

// TestSpecRepoRoot: the repository whose files a namespace sibling's routes name is --repo, else the
// git checkout holding the spec's folder (however deep), else the folder above it.
func TestSpecRepoRoot(t *testing.T) {
	checkout := t.TempDir()
	gittest.Git(t, checkout, "init", "--quiet")
	deep := filepath.Join(checkout, "config", "rollouts")
	plain := filepath.Join(t.TempDir(), "rollouts")
	for _, d := range []string{deep, plain} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	top, err := filepath.EvalSymlinks(checkout)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, repo, want string }{
		{deep, "", top},
		{plain, "", filepath.Dir(plain)},
		{plain, checkout, checkout},
		{plain, filepath.Join(checkout, "no-such-folder"), filepath.Dir(plain)},
	} {
		got := specRepoRoot(tc.dir, tc.repo)
		if g, err := filepath.EvalSymlinks(got); err == nil {
			got = g
		}
		if want, err := filepath.EvalSymlinks(tc.want); err != nil || got != want {
			t.Errorf("specRepoRoot(%s, %q) = %s, want %s", tc.dir, tc.repo, got, tc.want)
		}
	}
}
