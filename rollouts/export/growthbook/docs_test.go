package growthbook_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/export/growthbook"
)

// snippet returns the first fenced block of lang in docs/apps.md.
func snippet(t *testing.T, lang string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "apps.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```"+lang+"\n")
	if !ok {
		t.Fatalf("docs/apps.md has no %s block", lang)
	}
	code, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("docs/apps.md: the %s block is not closed", lang)
	}
	return code
}

// TestDocsTypeScriptSnippet compiles the TypeScript of docs/apps.md with tsc --strict and runs it on
// the real GrowthBook SDK over an exported payload: every user gets what rollout assign gives, and the
// records it writes are read by the file: source.
func TestDocsTypeScriptSnippet(t *testing.T) {
	dir := nodeModules(t)
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "cmd", "rollout", "testdata", "specs", "rollouts", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, problems := rollouts.Parse("good.yaml", []byte(strings.Replace(string(src), "weight: 5\n", "weight: 50\n", 1)))
	if spec == nil {
		t.Fatalf("parse: %v", problems)
	}
	payload, _, err := growthbook.Build([]*rollouts.Spec{spec})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	writeJSON(t, filepath.Join(work, "features.json"), payload)
	if err := os.WriteFile(filepath.Join(dir, "app.ts"), []byte(snippet(t, "ts")), 0o644); err != nil {
		t.Fatal(err)
	}
	tsc := exec.Command(filepath.Join(dir, "node_modules", ".bin", "tsc"), "--strict", "--module", "commonjs", "--target", "es2022",
		"--esModuleInterop", "--skipLibCheck", "--types", "node", "--outDir", "out", "app.ts")
	tsc.Dir = dir
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
	const users = 400
	harness := fmt.Sprintf(`
const app = require("./out/app.js");
(async () => {
  for (let i = 0; i < %d; i++) {
    const user = i %% 50 === 0 ? "vip-" + i : i %% 45 === 0 ? "beta-" + i : "u-" + i;
    try {
      await app.handle(user, "hello", async (model, prompt, input) => {
        if (i %% 97 === 0) throw new Error("upstream 500");
        return { text: model + ":" + input, inputTokens: 100 + i, outputTokens: 20 };
      });
    } catch (e) {}
  }
})();
`, users)
	if err := os.WriteFile(filepath.Join(dir, "harness.js"), []byte(harness), 0o644); err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(work, "summarizer.jsonl")
	cmd := exec.Command("node", "harness.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ROLLOUT_FEATURES="+filepath.Join(work, "features.json"), "ROLLOUT_RECORDS="+records)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}

	f, err := os.Open(records)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := spec.Assigner()
	n, canaries, errs := 0, 0, 0
	var times []time.Time
	var firstCanary time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Rollout, Variant, Key, Model, Prompt string
			TS                                   time.Time
			Error                                bool
			InputTokens                          *int `json:"input_tokens"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		n++
		c := a.Choose(rec.Key)
		if rec.Rollout != "summarizer" || rec.Variant != string(c.Arm) || rec.Model != c.Variant.Model || rec.Prompt != c.Variant.Prompt {
			t.Errorf("record %s, want variant %s model %s", sc.Text(), c.Arm, c.Variant.Model)
		}
		if rec.Error != (rec.InputTokens == nil) {
			t.Errorf("record %s: a failed call has no tokens, a successful one has them", sc.Text())
		}
		times = append(times, rec.TS)
		if rec.Variant == "canary" {
			canaries++
			if firstCanary.IsZero() || rec.TS.Before(firstCanary) {
				firstCanary = rec.TS
			}
		}
		if rec.Error {
			errs++
		}
	}
	if n != users || canaries == 0 || canaries == n || errs == 0 {
		t.Fatalf("%d records (%d canary, %d errors), want %d of both arms with some errors", n, canaries, errs, users)
	}
	stats, err := jsonl.Open(records).Stats(context.Background(), policy.Query{Rollout: "summarizer"})
	if err != nil {
		t.Fatal(err)
	}
	// Both arms are compared from the first canary record on (CONTRACT.md, Decisions): earlier stable
	// records are left out, every other record is counted.
	want := int64(0)
	for _, ts := range times {
		if !ts.Before(firstCanary) {
			want++
		}
	}
	if got := stats.Stable.Requests + stats.Canary.Requests + stats.NotRandomised; stats.Malformed != 0 || got != want {
		t.Errorf("the file: source counted %d of the snippet's %d records (malformed %d), want the %d from the first canary record on",
			got, users, stats.Malformed, want)
	}
}
