package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// brokenSpecRepo is a remote with two rollouts: summarizer, valid and progressing at 5%, and tagger,
// live at 25% until a human's commit broke its spec in two places (an unknown key, a bad schedule).
func brokenSpecRepo(t *testing.T) string {
	t.Helper()
	tagger := strings.NewReplacer("name: summarizer", "name: tagger", "weight: %d", "weight: 25").Replace(historySpec) +
		"status: {phase: Progressing, stage: 1, stageStartedAt: 2026-04-16T00:00:00Z}\n"
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/summarizer.yaml": string(historySpecAt(5)) + "status: {phase: Progressing, stage: 0, stageStartedAt: 2026-04-16T00:00:00Z}\n",
		"rollouts/tagger.yaml":     tagger,
	})
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"rollouts/tagger.yaml": strings.Replace(tagger, "  shadow: 0\n", "  shadw: 0\n", 1) + "schedule: bogus\n"})
	human.Commit("tagger: tweak")
	human.Push()
	return bare
}

// A spec file that fails to load is one row of status, named as plan names it, holding every error of
// the file and the weight the file still routes users at: not one row per error named after the path,
// at 0%.
func TestStatusShowsABrokenSpecAsOneRolloutAtItsWeight(t *testing.T) {
	bare := brokenSpecRepo(t)
	stdout, stderr, code := historyMain("status", "--repo", bare, "-o", "json")
	if code != exitFailed {
		t.Errorf("exit %d, want %d (a spec failed): %s", code, exitFailed, stderr)
	}
	var rows []rolloutStatus
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want one per rollout:\n%s", len(rows), stdout)
	}
	broken := rows[0]
	if broken.Rollout != "tagger" || broken.File != "rollouts/tagger.yaml" || broken.Weight != 25 || broken.Error == nil {
		t.Fatalf("broken spec's row: %+v, want rollout tagger at 25%% with its errors", broken)
	}
	for _, want := range []string{"rollouts/tagger.yaml:10:3: traffic: unknown key `shadw`", "rollouts/tagger.yaml:17:11: schedule:"} {
		if !strings.Contains(*broken.Error, want) {
			t.Errorf("error %q lacks %q", *broken.Error, want)
		}
	}
	if rows[1].Rollout != "summarizer" || rows[1].Error != nil {
		t.Errorf("the valid rollout's row: %+v", rows[1])
	}
}

// A manual operation or history on a rollout whose spec fails to load names the file's errors at
// file:line:col and fails (exit 1), committing nothing; history still shows the file's log. A typo
// of a name still gets its suggestion, whatever other file is broken.
func TestManualOperationsOnABrokenSpec(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"pause", []string{"pause", "tagger"}, exitFailed,
			[]string{"pause tagger: its spec does not load: fix rollouts/tagger.yaml", "nothing was committed", "rollouts/tagger.yaml:10:3: traffic: unknown key `shadw`"}},
		{"rollback", []string{"rollback", "tagger", "--reason", "errors"}, exitFailed,
			[]string{"rollback tagger: its spec does not load", "rollouts/tagger.yaml:17:11: schedule:"}},
		{"typo", []string{"pause", "sumarizer"}, exitUsage, []string{`no such rollout "sumarizer" on main (did you mean "summarizer"?)`}},
		{"unknown", []string{"resume", "nope"}, exitUsage, []string{`no such rollout "nope" on main; these spec files fail to load, and one of them may hold it: rollouts/tagger.yaml`}},
		{"history", []string{"history", "tagger"}, exitOK,
			[]string{"rollouts/tagger.yaml fails to load on main; its history is shown", "rollouts/tagger.yaml:10:3: traffic: unknown key `shadw`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bare := brokenSpecRepo(t)
			head := gittest.Head(t, bare, "main")
			stdout, stderr, code := historyMain(append(tt.args, "--repo", bare)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if got := gittest.Head(t, bare, "main"); got != head {
				t.Errorf("main moved from %s to %s", head, got)
			}
			if tt.name == "history" && !strings.Contains(stdout, "25%") {
				t.Errorf("history of the broken spec:\n%s", stdout)
			}
		})
	}
}
