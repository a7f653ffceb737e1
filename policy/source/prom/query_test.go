package prom

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestDefaultQueryGolden keeps the PromQL a tick sends for every built-in metric in
// testdata/default_query.promql, one part a line, for reviewers and for users who want to run it by hand.
func TestDefaultQueryGolden(t *testing.T) {
	from := time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	w := newWindow(policy.Window{From: from, To: from.Add(4*time.Hour + 300*time.Millisecond)})
	families := map[family]bool{}
	for _, b := range builtins {
		families[b.family] = true
	}
	got := strings.ReplaceAll(defaultQuery("summarizer", w, families, ""), " or ", "\nor ") + "\n"
	path := filepath.Join("testdata", "default_query.promql")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("default query changed (run with -update if intended):\n%s\nwant:\n%s", got, want)
	}
}

func TestWindow(t *testing.T) {
	from := time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		to       time.Time
		rng, end string
	}{
		{from.Add(time.Hour), "3600s", "1776337200.000"},
		{from.Add(time.Hour + 1), "3601s", "1776337200.000"}, // rounded up: never shorter than the stage
		{from.Add(1500 * time.Millisecond), "2s", "1776333601.500"},
		{from, "1s", "1776333600.000"},
	}
	for _, tt := range tests {
		w := newWindow(policy.Window{From: from, To: tt.to})
		if w.rng != tt.rng || w.atTime != tt.end {
			t.Errorf("window to %v = [%s] @ %s, want [%s] @ %s", tt.to, w.rng, w.atTime, tt.rng, tt.end)
		}
	}
}

func TestFillIn(t *testing.T) {
	w := newWindow(policy.Window{From: time.Unix(0, 0), To: time.Unix(600, 0)})
	got := fillIn(`sum(rate(x{rollout="{{rollout}}",variant="{{variant}}"}[{{window}}]))`, "summarizer", policy.Canary, w)
	if want := `sum(rate(x{rollout="summarizer",variant="canary"}[600s]))`; got != want {
		t.Errorf("fillIn = %s, want %s", got, want)
	}
}
