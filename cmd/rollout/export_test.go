package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/rollouts/export/growthbook"
)

func TestExportGrowthBook(t *testing.T) {
	base, _ := os.Getwd()
	good, err := os.ReadFile(filepath.Join("testdata", "specs", "rollouts", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	shadowing := strings.Replace(strings.Replace(string(good), "name: summarizer", "name: shadowing", 1), "shadow: 0", "shadow: 20", 1)
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/summarizer.yaml": string(good),
		"rollouts/shadowing.yaml":  shadowing,
		"rollouts/broken.yaml":     "apiVersion: rollout/v1\nkind: Rollout\nname: broken\nstable: {model: a}\nstages: [{weight: 5}]\ntraffic: {wieght: 5}\n",
	})
	code, stdout, stderr := runApp("--repo", bare, "export", "growthbook")
	if code != exitFailed {
		t.Errorf("exit %d, want 1 for the broken spec; stderr:\n%s", code, stderr)
	}
	var payload growthbook.Payload
	if err := json.Unmarshal([]byte(stdout), &payload); err != nil {
		t.Fatalf("stdout is not a payload: %v\n%s", err, stdout)
	}
	if len(payload.Features) != 2 {
		t.Errorf("want the two valid rollouts, got %d features", len(payload.Features))
	}
	checkGolden(t, base, "export/growthbook.txt", []byte(stdout+"--- stderr\n"+strings.ReplaceAll(stderr, bare, "BARE")))

	for _, args := range [][]string{{"export"}, {"export", "launchdarkly"}, {"export", "growthbook", "extra"}} {
		if code, _, _ := runApp(append([]string{"--repo", bare}, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
