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
	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/internal/race"
)

// reportHours is how much of the demo the report test plays: the regressing model bump is rolled
// back at hour 5 and the healthy canary advances at hour 8, so 16 hours show a rollback, a stage
// advanced and a trickle holding, in a third of the time. With -update, which also refreshes the screenshots in docs/, it plays the whole story.
func reportHours() int {
	if *update {
		return demo.DefaultHours
	}
	return 16
}

// demoEnd is the simulated moment the report's demo ends: the report's --now.
func demoEnd() time.Time { return demoStart.Add(time.Duration(reportHours()) * time.Hour) }

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
	out, err := demo.Run(context.Background(), demo.Config{Dir: dir, Scenario: scenario, Start: demoStart, Hours: reportHours(),
		Rand: rand.New(rand.NewPCG(1, 0x5eed))})
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	html := filepath.Join(dir, "report.html")
	args := append([]string{"report", "--repo", "origin.git", "--now", demoEnd().Format(time.RFC3339), "--out", html,
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

// TestReport plays the demo once and reads its report twice: in a browser, as a person would, and
// again from the cache alone.
func TestReport(t *testing.T) {
	race.Skip(t, race.Slow)
	docs, err := filepath.Abs(filepath.Join("..", "..", "docs")) // before demoReport changes the working directory
	if err != nil {
		t.Fatal(err)
	}
	html, names := demoReport(t, "--charts", "charts")
	t.Run("browser", func(t *testing.T) { checkInBrowser(t, html, names, docs) })
	t.Run("cached", func(t *testing.T) { checkCached(t, html, names) })
}

// checkCached: a second report asks the source nothing it asked before. With the request records
// gone, it must still draw every tick, from the cache alone, byte for byte.
func checkCached(t *testing.T, html string, names []string) {
	first, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !strings.Contains(string(first), `id="r-`+name+`"`) {
			t.Errorf("no section for %s", name)
		}
	}
	if strings.Contains(string(first), "did not answer") || strings.Contains(string(first), "no data yet") {
		t.Fatalf("the first report missed ticks:\n%s", first)
	}
	// The replay judged the regressing canary as the reconciler did: its error rate's interval is
	// beyond the limit at the tick that rolled it back.
	if !strings.Contains(string(first), "error_rate against maxIncrease 50%: fail at the last tick") {
		t.Errorf("the summarizer's error rate is not shown failing at its rollback")
	}
	if err := os.Rename("traffic", "traffic.moved"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename("traffic.moved", "traffic")
	second := filepath.Join(t.TempDir(), "again.html")
	args := []string{"report", "--repo", "origin.git", "--now", demoEnd().Format(time.RFC3339), "--out", second, "--cache", "cache"}
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
	// Without the cache, the missing records show: every tick is left out, and the page says why, as
	// the reconciler would (no data yet, the file is not there), not as an outage of the source.
	if code, stdout, stderr := runApp(append(args, "--no-cache")...); code != exitOK {
		t.Fatalf("uncached report: exit %d\n%s\n%s", code, stdout, stderr)
	}
	uncached, _ := os.ReadFile(second)
	if !strings.Contains(string(uncached), "no data yet: traffic/summarizer.jsonl does not exist yet") || strings.Contains(string(uncached), "did not answer") {
		t.Errorf("a report without records nor cache does not say there is no data yet")
	}
	charts, err := filepath.Glob(filepath.Join("charts", "*.svg"))
	if err != nil || len(charts) < 2*len(names) {
		t.Errorf("--charts wrote %q (%v), want a weight chart and rule charts per rollout", charts, err)
	}
}

func TestReportUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "-o", "json"}, `unknown output format "json": want html`},
		{[]string{"report", "--since", "a month"}, "--since"},
		{[]string{"report", "--since", "0s"}, "--since"},
		{[]string{"report", "--every", "10s"}, "--every"},
		{[]string{"report", "--now", "noon"}, "RFC 3339"},
		{[]string{"report", "extra"}, "accepts 0 arg"},
	} {
		code, _, stderr := runApp(tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want a usage error saying %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestReportKeepsABrokenSpecsStory: a rollout whose spec someone broke after a rollback keeps its
// weight history on the page, with its errors, beside a healthy rollout; it does not vanish.
func TestReportKeepsABrokenSpecsStory(t *testing.T) {
	bare := historyRepo(t)
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{
		"rollouts/summarizer.yaml": string(historySpecAt(0)) + "colour: red\n",
		"rollouts/tagger.yaml":     strings.Replace(string(historySpecAt(0)), "name: summarizer", "name: tagger", 1),
	})
	human.Commit("a typo, and a second rollout")
	human.Push()
	t.Chdir(t.TempDir())
	code, stdout, stderr := runApp("report", "--repo", bare, "--now", "2026-04-17T00:00:00Z", "--no-cache")
	if code != exitOK {
		t.Fatalf("report: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"rollouts/summarizer.yaml:16:1: unknown key `colour`",
		`<h2>summarizer <span class="phase spec-error">spec error</span></h2>`,
		"rollout(summarizer): rollback 25% → 0%",
		"the spec on the default branch has errors",
		`<h2>tagger <span class="phase Pending">Pending</span></h2>`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the report does not hold %q", want)
		}
	}
}

// TestReportOutKeepsALink: --out through a symbolic link (a site folder's index.html pointing at
// the newest report) writes the link's target and leaves the link a link.
func TestReportOutKeepsALink(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"rollouts/.keep": ""})
	dir := t.TempDir()
	target, link := filepath.Join(dir, "report-1.html"), filepath.Join(dir, "index.html")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	if code, _, stderr := runApp("report", "--repo", bare, "--no-cache", "--now", "2026-04-17T00:00:00Z", "--out", link); code != exitOK {
		t.Fatalf("report: exit %d\n%s", code, stderr)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("index.html is no longer a link: %v", describe(info, err))
	}
	if page, _ := os.ReadFile(target); !strings.Contains(string(page), "<p>No rollouts.</p>") {
		t.Errorf("the link's target holds %q, want the page", page)
	}
}
