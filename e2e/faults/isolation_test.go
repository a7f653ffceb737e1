package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

// TestBadInputNeverStopsTheOthers puts the whole bad-spec corpus (and a 10 MB spec) into a repository
// beside good rollouts whose traffic files are each a case of the bad-records corpus, a missing file and
// a healthy file. One real tick: every bad file is reported with its file:line:col and skipped, every
// rollout with bad or missing records holds, and the healthy ones go ahead.
func TestBadInputNeverStopsTheOthers(t *testing.T) {
	files := map[string]string{
		"rollouts/healthy.yaml": progressing("healthy", "hold"),
		"rollouts/pending.yaml": pending("pending"),
		"rollouts/missing.yaml": progressing("missing", "hold"),
		"rollouts/huge.yaml":    "apiVersion: rollout/v1\nkind: Rollout\nname: huge\ndescription: \"" + strings.Repeat("x", 10<<20) + "\"\n",
	}
	badSpecs := map[string]bool{"rollouts/huge.yaml": true}
	err := filepath.WalkDir(filepath.Join(corpusRoot, "testdata/bad/specs"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		content, err := os.ReadFile(path)
		rel := "rollouts/bad-" + filepath.Base(filepath.Dir(path)) + "-" + filepath.Base(path)
		files[rel] = string(content)
		if !strings.Contains(path, "prompt-escape") { // only warnings: a valid spec
			badSpecs[rel] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	records, err := filepath.Glob(filepath.Join(corpusRoot, "testdata/bad/jsonl/*.jsonl"))
	if err != nil || len(records) == 0 {
		t.Fatalf("records corpus: %v", err)
	}
	w0 := newWorld(t, nil, false)
	var badSources []string
	for _, path := range records {
		name := "records-" + strings.TrimSuffix(filepath.Base(path), ".jsonl")
		files["rollouts/"+name+".yaml"] = progressing(name, "hold")
		content, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		w0.writeFile("traffic/"+name+".jsonl", []byte(strings.ReplaceAll(string(content), `"rollout":"summarizer"`, `"rollout":"`+name+`"`)))
		badSources = append(badSources, name)
	}
	w := newWorld(t, files, false)
	w.traffic = w0.traffic
	w.writeTraffic("healthy", 0.01)
	w.setNow(t0.Add(2 * time.Hour))

	rep := tick(t, w.localLoop())
	results := map[string]bool{}
	for _, r := range rep.Results {
		if r.File != "" {
			results[r.File] = true
		}
		if !badSpecs[r.File] {
			continue
		}
		if r.Err == nil || !strings.Contains(r.Err.Error(), r.File+":") || r.Commit != "" {
			t.Errorf("bad spec %s: %+v, want an error naming the file", r.File, r)
		}
	}
	for file := range badSpecs {
		if !results[file] {
			t.Errorf("bad spec %s has no result", file)
		}
	}
	if r := result(t, rep, "healthy"); r.Decision != policy.Advance || r.Err != nil || r.Commit == "" {
		t.Errorf("healthy: %+v", r)
	}
	if r := result(t, rep, "pending"); r.Decision != policy.Start || r.Err != nil || r.Commit == "" {
		t.Errorf("pending: %+v", r)
	}
	// A traffic file the application has not created yet is no data, not a failing source (issue 21):
	// a hold that names the file, no error, nothing written.
	if r := result(t, rep, "missing"); r.Decision != policy.Hold || r.Err != nil || r.Commit != "" ||
		!strings.Contains(strings.Join(r.Reasons, "\n"), "no data yet: ") || !strings.Contains(strings.Join(r.Reasons, "\n"), "missing.jsonl") {
		t.Errorf("missing traffic: %+v", r)
	}
	for _, name := range badSources {
		r := result(t, rep, name)
		if r.Decision != policy.Hold || r.Err != nil || r.Commit != "" {
			t.Errorf("%s: %+v", name, r)
		}
		// Never silently dropped: the pass reports the malformed records, naming the file and lines.
		if why := strings.Join(r.Reasons, "; "); !strings.Contains(why, "malformed records skipped in file:traffic/"+name+".jsonl (lines ") {
			t.Errorf("%s: reasons %q do not report the malformed records", name, why)
		}
	}
	if !rep.Failed() {
		t.Errorf("a report with bad specs does not say it failed")
	}
}
