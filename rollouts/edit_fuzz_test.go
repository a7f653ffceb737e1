package rollouts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzEdit parses a spec, edits it and parses it again: an edit of a valid spec either fails cleanly
// or yields a valid spec holding exactly the intended change, and a weight change touches only the
// traffic lines.
func FuzzEdit(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "edit", "*.yaml"))
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, uint8(25), uint8(0), uint8(0))
		f.Add(src, uint8(100), uint8(50), uint8(0xff))
	}
	f.Add([]byte("apiVersion: rollout/v1\nkind: Rollout\nname: x\nstable: {model: a}\ncanary: {model: b}\ntraffic: {}\nstages: [{weight: 10}]\n"), uint8(7), uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, src []byte, weight, shadow, flags uint8) {
		if _, problems := parseRaw("fuzz.yaml", src); len(problems) > 0 {
			return
		}
		w, sh := int(weight)%101, int(shadow)%101
		ch := Change{Weight: &w}
		if flags&1 != 0 {
			ch.Shadow = &sh
		}
		if flags&2 != 0 {
			ch.Status = &Status{Phase: Progressing, Stage: 0, StageStartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Message: string(src[:min(len(src), 20)])}
		}
		if flags&4 != 0 {
			ch.Promote = true
		}
		if flags&8 != 0 {
			ch.DropPrevious = true
		}
		if flags&16 != 0 {
			ch.ClearStatus, ch.Status = true, nil
		}
		out, err := Edit(src, ch)
		if errors.Is(err, errVerify) {
			t.Fatalf("Edit produced a wrong file: %v\n--- input\n%s\n--- output\n%s", err, src, out)
		}
		if err != nil {
			return
		}
		if flags&^1 == 0 {
			if n := changedLines(src, out); n > 3 {
				t.Fatalf("a traffic edit changed %d lines:\n--- input\n%s\n--- output\n%s", n, src, out)
			}
		}
	})
}

// FuzzParse feeds arbitrary bytes to Parse: it never panics, and it returns either a spec or at least
// one positioned problem, never both.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "edit", "*.yaml"))
	for _, file := range files {
		src, _ := os.ReadFile(file)
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, problems := Parse("f.yaml", src)
		if (s == nil) == (len(problems) == 0) {
			t.Fatalf("spec %v with %d problems", s != nil, len(problems))
		}
		for _, p := range problems {
			if p.Line < 1 || p.Col < 1 || p.Message == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
	})
}
