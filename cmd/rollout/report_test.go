package main

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/examples/demo"
)

// demoEnd is the simulated moment the default demo ends: the report's --now.
var demoEnd = demoStart.Add(demo.DefaultHours * time.Hour)

// demoReport plays the demo (seed 1) into a temp dir, makes it the working directory (the specs'
// file: sources are relative to it, as for `rollout reconcile`), writes the report of its repository
// and returns the report's path and the rollouts' names, sorted.
func demoReport(t *testing.T, extra ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	scenario, err := demo.Default()
	if err != nil {
		t.Fatal(err)
	}
	out, err := demo.Run(context.Background(), demo.Config{Dir: dir, Scenario: scenario, Start: demoStart, Hours: demo.DefaultHours,
		Rand: rand.New(rand.NewPCG(1, 0x5eed))})
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	html := filepath.Join(dir, "report.html")
	args := append([]string{"report", "--repo", "origin.git", "--now", demoEnd.Format(time.RFC3339), "--out", html,
		"--cache", filepath.Join(dir, "cache")}, extra...)
	if code, stdout, stderr := runApp(args...); code != exitOK {
		t.Fatalf("report: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var names []string
	for name := range out.Final {
		names = append(names, name)
	}
	sort.Strings(names)
	return html, names
}

// TestReportCached: a second report asks the source nothing it asked before. With the request records
// gone, it must still draw every tick, from the cache alone, byte for byte.
func TestReportCached(t *testing.T) {
	html, names := demoReport(t, "--charts", "charts")
	first, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !strings.Contains(string(first), `id="r-`+name+`"`) {
			t.Errorf("no section for %s", name)
		}
	}
	if strings.Contains(string(first), "did not answer") {
		t.Fatalf("the first report missed ticks:\n%s", first)
	}
	if err := os.RemoveAll("traffic"); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(t.TempDir(), "again.html")
	args := []string{"report", "--repo", "origin.git", "--now", demoEnd.Format(time.RFC3339), "--out", second, "--cache", "cache"}
	if code, stdout, stderr := runApp(args...); code != exitOK {
		t.Fatalf("second report: exit %d\n%s\n%s", code, stdout, stderr)
	}
	again, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Errorf("the cached report differs from the first one")
	}
	// Without the cache, the missing records show: every tick is left out, and the page says so.
	if code, stdout, stderr := runApp(append(args, "--no-cache")...); code != exitOK {
		t.Fatalf("uncached report: exit %d\n%s\n%s", code, stdout, stderr)
	}
	uncached, _ := os.ReadFile(second)
	if !strings.Contains(string(uncached), "did not answer") {
		t.Errorf("a report without records nor cache does not say the source failed")
	}
	charts, err := filepath.Glob(filepath.Join("charts", "*.svg"))
	if err != nil || len(charts) < 2*len(names) {
		t.Errorf("--charts wrote %q (%v), want a weight chart and rule charts per rollout", charts, err)
	}
}
