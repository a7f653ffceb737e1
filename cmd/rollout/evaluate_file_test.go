package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvaluateFileSource runs `rollout evaluate` end to end on a real JSON Lines file through the
// file: source: a canary whose errors tripled is rolled back, and a malformed line is reported.
func TestEvaluateFileSource(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	seen := map[string]int{}
	for i := range 20000 {
		variant, errEvery := "stable", 100 // 1% errors
		if i%10 == 0 {
			variant, errEvery = "canary", 33 // 3% errors
		}
		seen[variant]++
		ts := fmt.Sprintf("2026-04-16T%02d:%02d:%02dZ", (i/3600)%24, (i/60)%60, i%60)
		fmt.Fprintf(&b, `{"ts":%q,"rollout":"summarizer","variant":%q,"latency_ms":%d,"error":%v,"quality":%.2f}`+"\n",
			ts, variant, 300+(i*7919)%700, seen[variant]%errEvery == 0, 0.8+float64(i%17)/100)
		if i == 5 {
			b.WriteString("{not json\n")
		}
	}
	traffic := filepath.Join(dir, "traffic.jsonl")
	if err := os.WriteFile(traffic, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	app, out, errOut := testApp()
	code := app.Main([]string{"evaluate", "--spec", "testdata/evaluate/summarizer.yaml", "--metrics", "file:" + traffic,
		"--now", "2026-04-16T06:00:00Z"})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Log(out.String())
	for _, want := range []string{"summarizer: rollback", "error_rate", "fail", "1 malformed records skipped in file:" + traffic + " (lines 7)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
}

// TestEvaluateKeylessWarns: records without keys under an assignment by key are request-level
// evidence; evaluate says so under the unit, here beside a rollback, which it does not stop.
func TestEvaluateKeylessWarns(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 20000 {
		variant, errs := "stable", i%100 == 0
		if i%10 == 0 {
			variant, errs = "canary", i%30 == 0
		}
		fmt.Fprintf(&b, `{"ts":"2026-04-16T%02d:%02d:%02dZ","rollout":"summarizer","variant":%q,"latency_ms":%d,"error":%v}`+"\n",
			(i/3600)%24, (i/60)%60, i%60, variant, 300+(i*7919)%700, errs)
	}
	traffic := filepath.Join(dir, "traffic.jsonl")
	if err := os.WriteFile(traffic, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile("testdata/evaluate/summarizer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keyed := filepath.Join(dir, "summarizer.yaml")
	if err := os.WriteFile(keyed, []byte(strings.Replace(string(spec), "traffic:\n", "assignment: {key: user_id}\ntraffic:\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	app, out, errOut := testApp()
	code := app.Main([]string{"evaluate", "--spec", keyed, "--metrics", "file:" + traffic, "--now", "2026-04-16T06:00:00Z"})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"summarizer: rollback", "unit: request", "warning: the evidence counts requests, not user_id keys"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
}

// TestEvaluateNoDataYetSucceeds: before the first request is recorded (no file yet, or a file without
// the rollout's records), evaluate holds with "no data yet" and exits 0: no data yet is no failure of
// the metrics source. A source that cannot be read still fails the run.
func TestEvaluateNoDataYetSucceeds(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other.jsonl")
	if err := os.WriteFile(other, []byte(`{"ts":"2026-04-16T01:00:00Z","rollout":"someone-else","variant":"stable","error":false}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "a-folder.jsonl")
	if err := os.Mkdir(unreadable, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, metrics string
		want          int
	}{
		{"no file yet", filepath.Join(dir, "missing.jsonl"), exitOK},
		{"no records of the rollout", other, exitOK},
		{"a source that cannot be read", unreadable, exitFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, out, errOut := testApp()
			code := app.Main([]string{"evaluate", "--spec", "testdata/evaluate/summarizer.yaml", "--metrics", "file:" + tt.metrics,
				"--now", "2026-04-16T06:00:00Z"})
			if code != tt.want {
				t.Fatalf("exit %d, want %d: %s%s", code, tt.want, out, errOut)
			}
			if tt.want == exitOK && (!strings.Contains(out.String(), "summarizer: hold") || !strings.Contains(out.String(), "no data yet") || errOut.Len() != 0) {
				t.Errorf("want a hold for no data yet, nothing on stderr:\n%s--- stderr\n%s", out, errOut)
			}
		})
	}
}
