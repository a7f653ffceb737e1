package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/rollout-dev/rollout/internal/race"
)

// TestDemo runs `rollout demo --seed 1` as a user would, on a machine without the git binary, and checks
// the storyline, then the whole transcript against a golden file: the story is deterministic.
func TestDemo(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Setenv("PATH", "")
	t.Setenv("TMPDIR", t.TempDir())
	code, stdout, stderr := runApp("demo", "--seed", "1")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	for _, want := range []*regexp.Regexp{
		// The healthy prompt rewrite goes all the way.
		regexp.MustCompile(`(?m)^\+\d+h .* support-reply +advance +10% → 50% .*proposed on rollout/support-reply$`),
		regexp.MustCompile(`(?m)^\+\d+h .* support-reply +merged +10% → 50% +reviewer `),
		regexp.MustCompile(`(?m)^\+\d+h .* support-reply +promote +100% +stage 2 \(the last\) passed`),
		regexp.MustCompile(`(?m)^  support-reply +Completed +weight +0% +stable claude-haiku-4-5-20251001 \+ prompts/support/v6.md$`),
		// The model bump fails from its first stage and is rolled back there by a commit, notified.
		regexp.MustCompile(`(?m)^\+\d+h .* summarizer +rollback +5% → 0% +error rate .*: at least .* worse \(.* sure\), above the \+50% allowed → roll back`),
		regexp.MustCompile(`(?m)^\+\d+h .* summarizer +notified +5% → 0% `),
		regexp.MustCompile(`(?m)^  summarizer +RolledBack +weight +0% `),
		regexp.MustCompile(`(?m)^    rollout\(summarizer\): rollback 5% → 0%$`),
		regexp.MustCompile(`(?m)^-  weight: 5\n\+  weight: 0$`),
		// The trickle holds, and says why.
		regexp.MustCompile(`(?m)^  tagger +Progressing +weight +10% `),
		regexp.MustCompile(`(?m)^ +last decision hold: stable has \d+ of 400 requests: about \d+h more at the current traffic; canary has \d+ of 400 requests: about \d+ days more`),
		// One proposal with its evidence, then the audit trail.
		regexp.MustCompile(`(?s)\nrollout\(support-reply\): 10% → 50%\n\n.{0,200}advance`),
		regexp.MustCompile(`\| metric \| stable \| canary \|`),
		regexp.MustCompile(`(?m)^WHEN +WHO +WEIGHT +SHADOW +DECISION +COMMIT +WHY$`),
		regexp.MustCompile(`(?m)^2026-04-1\dT\S+ +rollout-bot +5% → 0% +0% +rollback +[0-9a-f]{8} +rollout\(summarizer\): rollback 5% → 0%: error_rate: error rate `),
	} {
		if !want.MatchString(stdout) {
			t.Errorf("output does not match %s", want)
		}
	}
	if strings.Contains(stdout, "\033[") || strings.Contains(stdout, "\r") {
		t.Error("colour or progress codes in output that is not a terminal")
	}
	if strings.Contains(stdout, os.Getenv("TMPDIR")) {
		t.Error("the temp dir is printed without --keep")
	}
	if entries, _ := os.ReadDir(os.Getenv("TMPDIR")); len(entries) != 0 {
		t.Errorf("the demo left %d entries in the temp dir without --keep", len(entries))
	}
	// Hashes are left out of the comparison: any change to a commit message anywhere in the story
	// changes every later hash. demo's TestDeterministic compares the commits of two runs instead.
	checkGolden(t, ".", "demo/seed-1.txt", []byte(withoutHashes(stdout)))
}

// gitHash matches a full or abbreviated git object name.
var gitHash = regexp.MustCompile(`\b[0-9a-f]{7,40}\b`)

// withoutHashes replaces the object names of s with <hash>, but not the dates in model ids.
func withoutHashes(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range gitHash.FindAllStringIndex(s, -1) {
		h := s[m[0]:m[1]]
		// A run of digits after a hyphen is the date in a model's name (claude-sonnet-4-5-20260301);
		// anywhere else it is a short hash that happens to hold no letter (about one in forty).
		if m[0] > 0 && s[m[0]-1] == '-' && strings.Trim(h, "0123456789") == "" {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString("<hash>")
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

func TestDemoKeep(t *testing.T) {
	t.Setenv("PATH", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	code, stdout, stderr := runApp("demo", "--keep", "--hours", "2", "--seed", "3")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`(?m)^  clone: +(\S+)$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no clone path in:\n%s", stdout)
	}
	if !strings.HasPrefix(m[1], tmp) {
		t.Errorf("clone %s is not under the temp dir %s", m[1], tmp)
	}
	for _, p := range []string{filepath.Join(m[1], "rollouts", "summarizer.yaml"), filepath.Join(filepath.Dir(m[1]), "origin.git", "HEAD"),
		filepath.Join(filepath.Dir(m[1]), "traffic", "summarizer.jsonl")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("kept directory lacks %s: %v", p, err)
		}
	}
	// The clone's checkout is the end of the story: the reconciler's start commit is in it.
	b, err := os.ReadFile(filepath.Join(m[1], "rollouts", "summarizer.yaml"))
	if err != nil || !strings.Contains(string(b), "phase: Progressing") {
		t.Errorf("clone not updated to the remote's main: %v\n%s", err, b)
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "extra"},
		{"demo", "--hours", "0"},
		{"demo", "--hours", "100000"},
		{"demo", "--seed", "x"},
	} {
		code, _, stderr := runApp(args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}

// TestWithoutHashes: a short hash of digits only is still a hash (TestWhatNextGolden failed on one,
// 92171631, about one run in forty); the date in a model's name is not.
func TestWithoutHashes(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"in 1a2b3c4d by ada", "in <hash> by ada"},
		{"-         92171631  Initial commit", "-         <hash>  Initial commit"},
		{"claude-sonnet-4-5-20260301 → claude-sonnet-4-5-20260415", "claude-sonnet-4-5-20260301 → claude-sonnet-4-5-20260415"},
		{strings.Repeat("7", 40), "<hash>"},
	} {
		if got := withoutHashes(tt.in); got != tt.want {
			t.Errorf("withoutHashes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// closedPipe is standard output whose reader went away (rollout demo | head -3): it takes the first
// bytes, then every write fails with EPIPE. It counts the writes tried after the first failure.
type closedPipe struct {
	room  int
	late  int
	taken bytes.Buffer
}

func (p *closedPipe) Write(b []byte) (int, error) {
	if p.room <= 0 {
		p.late++
		return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
	}
	p.room -= len(b)
	return p.taken.Write(b)
}

// TestDemoStopsWhenNobodyReads: piped into head, the demo stops at the first write that fails, says
// so and still removes its throw-away repository; before, the binary died of SIGPIPE there and left
// the temp dir behind (or, where the signal was caught, played the whole story into the void).
func TestDemoStopsWhenNobodyReads(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := &closedPipe{room: 200}
	var stderr bytes.Buffer
	app := &App{Stdin: bytes.NewReader(nil), Stdout: out, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := app.Main([]string{"demo", "--hours", "6"})
	if code != exitFailed || !strings.Contains(stderr.String(), "broken pipe") {
		t.Errorf("exit %d, stderr %q: want exit %d naming the broken pipe", code, stderr.String(), exitFailed)
	}
	if out.late > 1 {
		t.Errorf("%d writes after the first that failed: the story went on with nobody reading", out.late-1)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("the demo left %d entries in the temp dir", len(entries))
	}
}
