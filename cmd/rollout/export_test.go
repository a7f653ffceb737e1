package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/rollouts"
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

// TestKeepGrowthBook: while a spec has errors, the payload the loop publishes keeps the broken
// rollout's feature from the previous payload (its applications would find no feature otherwise), and
// takes every other feature from the specs; with nothing to keep, or a previous file that is not a
// payload, it is exactly what `rollout export growthbook` prints.
func TestKeepGrowthBook(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "specs", "rollouts", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parse := func(name string, weight int) *rollouts.Spec {
		t.Helper()
		y := strings.Replace(string(src), "name: summarizer", "name: "+name, 1)
		y = regexp.MustCompile(`(?m)^  weight: \d+`).ReplaceAllString(y, fmt.Sprintf("  weight: %d", weight))
		s, problems := rollouts.Parse(name+".yaml", []byte(y))
		if s == nil {
			t.Fatal(problems)
		}
		return s
	}
	previous, err := renderGrowthBook([]*rollouts.Spec{parse("summarizer", 25), parse("tagger", 25)})
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := renderGrowthBook([]*rollouts.Spec{parse("summarizer", 0)}) // tagger's file broke
	if err != nil {
		t.Fatal(err)
	}
	kept, err := keepGrowthBook(previous, rendered)
	if err != nil {
		t.Fatal(err)
	}
	var got, was growthbook.Payload
	if err := json.Unmarshal(kept, &got); err != nil {
		t.Fatalf("%v\n%s", err, kept)
	}
	if err := json.Unmarshal(previous, &was); err != nil {
		t.Fatal(err)
	}
	if len(got.Features) != 2 || len(got.Features["summarizer"].Rules) != 0 || !reflect.DeepEqual(got.Features["tagger"], was.Features["tagger"]) {
		t.Errorf("kept payload:\n%s\nwant summarizer at 0 (no rules) and tagger as previously published", kept)
	}
	if want, _ := renderGrowthBook([]*rollouts.Spec{parse("summarizer", 0), parse("tagger", 25)}); !bytes.Equal(kept, want) {
		t.Errorf("kept payload:\n%s\nwant it laid out as export prints it:\n%s", kept, want)
	}
	for name, prev := range map[string][]byte{"nothing to keep": rendered, "not a payload": []byte("# edited by hand\n"), "empty": nil} {
		if out, err := keepGrowthBook(prev, rendered); err != nil || !bytes.Equal(out, rendered) {
			t.Errorf("%s: %v\n%s\nwant the rendered payload as it is", name, err, out)
		}
	}
}
