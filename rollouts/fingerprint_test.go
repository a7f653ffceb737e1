package rollouts

import (
	"testing"
	"testing/fstest"
)

func TestCanaryChanged(t *testing.T) {
	const src = "apiVersion: rollout/v1\nkind: Rollout\nname: s\nstable: {model: m-20260101}\ncanary: {model: m-20260401, prompt: prompts/v4.md}\nstages: [{weight: 5}]\n"
	load := func(prompt string) *Spec {
		t.Helper()
		s, problems := Parse("r/s.yaml", []byte(src))
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		if prompt != "" {
			ReadSpecReferences(s, fstest.MapFS{"prompts/v4.md": {Data: []byte(prompt)}})
		}
		return s
	}
	started := load("one")
	fp, files := CanaryFingerprint(started), CanaryFiles(started)
	if fp == Fingerprint(started.Canary) || len(files) != 1 {
		t.Fatalf("the fingerprint %s does not cover the prompt file (files %v)", fp, files)
	}
	for _, tc := range []struct {
		name   string
		spec   *Spec
		status Status
		want   string
	}{
		{"same prompt", load("one"), Status{Canary: fp, Files: files}, ""},
		{"prompt edited", load("two"), Status{Canary: fp, Files: files}, "prompt prompts/v4.md changed"},
		{"block changed", func() *Spec { s := load("one"); s.Canary.Model = "m-20260501"; return s }(), Status{Canary: fp, Files: files}, "the canary changed"},
		{"no tree: the block alone", load(""), Status{Canary: fp, Files: files}, ""},
		{"status of an earlier version: adopted", load("two"), Status{Canary: Fingerprint(started.Canary)}, ""},
		{"hand-written status", load("two"), Status{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.status
			st.Phase = Progressing
			tc.spec.Status = &st
			why, changed := CanaryChanged(tc.spec)
			if changed != (tc.want != "") || why != tc.want {
				t.Errorf("CanaryChanged = %q, %v; want %q", why, changed, tc.want)
			}
		})
	}
}

// TestStatusFilesRoundTrip writes status.files with Edit and reads it back, hashes of digits included.
func TestStatusFilesRoundTrip(t *testing.T) {
	const src = "apiVersion: rollout/v1\nkind: Rollout\nname: s\nstable: {model: m-20260101}\nstages: [{weight: 5}]\n"
	files := map[string]string{"prompts/v4.md": "12345678", "gateway/a b.yaml": "1e234567"}
	out, err := Edit([]byte(src), Change{Status: &Status{Phase: Progressing, Canary: "abcdef01", Files: files}})
	if err != nil {
		t.Fatal(err)
	}
	s, problems := Parse("s.yaml", out)
	if len(problems) > 0 {
		t.Fatalf("%v\n%s", problems, out)
	}
	if got := s.Status.Files; len(got) != 2 || got["prompts/v4.md"] != "12345678" || got["gateway/a b.yaml"] != "1e234567" {
		t.Errorf("files read back as %v from\n%s", got, out)
	}
	again, err := Edit(out, Change{Status: s.Status})
	if err != nil || string(again) != string(out) {
		t.Errorf("rewriting the same status changed the file (%v):\n%s", err, again)
	}
}
