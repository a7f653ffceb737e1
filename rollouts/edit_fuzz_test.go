package rollouts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// editSeeds are layouts that validate accepts and that once broke Edit: each must take every edit.
var editSeeds = []string{
	// JSON: a flow mapping at the root, keys in double quotes, one entry a line.
	"{\n  \"apiVersion\": \"rollout/v1\",\n  \"kind\": \"Rollout\",\n  \"name\": \"j\",\n  \"stable\": {\"model\": \"a\"},\n  \"canary\": {\"model\": \"b\"},\n  \"traffic\": {\"weight\": 5},\n  \"stages\": [{\"weight\": 5}, {\"weight\": 100}],\n  \"status\": {\"phase\": \"Progressing\", \"stage\": 0, \"message\": \"x\"}\n}\n",
	// The same on one line, without a final line break.
	`{apiVersion: rollout/v1, kind: Rollout, name: j, stable: {model: a}, canary: {model: b}, previous: {model: c}, stages: [{weight: 5}]}`,
	// Document markers: the status goes before the end marker.
	"---\napiVersion: rollout/v1\nkind: Rollout\nname: d\nstable: {model: a}\ncanary: {model: b}\nstages: [{weight: 5}]\n...\n",
	"apiVersion: rollout/v1\nkind: Rollout\nname: d\nstable: {model: a}\ncanary: {model: b}\nstages: [{weight: 5}]\n---\n",
	// A multi-line flow mapping with a comment, tagged values inside flow mappings.
	"apiVersion: rollout/v1\nkind: Rollout\nname: m\nstable: {model: a}\ncanary: {model: b}\ntraffic: {weight: !!int 5,\n  shadow: 3}  # c\nstages: [{weight: 5}]\nstatus: {phase: !!str Paused,\n  stage: 0, message: \"a\n  b\"}\n",
	// Quoted keys, an implicit null value in a flow mapping.
	"apiVersion: rollout/v1\nkind: Rollout\nname: q\n\"stable\": {model: a}\ncanary: {model: b}\ntraffic: {weight: 5, shadow: }\nstages: [{weight: 5}]\n",
}

// FuzzEdit parses a spec, edits it and parses it again.
//
// What counts as a failure, and what is a safe refusal:
//   - A wrong file is always a failure: a panic, an output that does not parse, or one that parses to
//     anything but the intended spec (Edit's self-check reports errVerify). Such a file would be
//     committed to a team's default branch.
//   - A refusal (an error wrapping ErrEdit, the file left as it was) is safe only when the input is not a
//     valid spec (Parse reports problems) or the change makes no sense for it (promoting a spec that has
//     no canary). For a valid spec every other change must land: a rollback that Edit refuses is a
//     rollback that never happens, so any other refusal is a failure too. A layout that Edit cannot
//     handle must be refused by validate instead, with its file:line:col.
//   - A weight (and shadow) change touches at most the traffic lines.
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
	for i, s := range editSeeds {
		for _, flags := range []uint8{0, 1, 2, 3, 4, 6, 8, 16, 31} {
			f.Add([]byte(s), uint8(i*7), uint8(i), flags)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte, weight, shadow, flags uint8) {
		w, sh := int(weight)%101, int(shadow)%101
		spec, problems := parseRaw("fuzz.yaml", src)
		if len(problems) > 0 {
			// Edit may refuse or edit a file that is not a valid spec, but never panics on it.
			_, _ = Edit(src, Change{Weight: &w, Status: &Status{Phase: RolledBack}})
			return
		}
		ch := Change{Weight: &w}
		if flags&1 != 0 {
			ch.Shadow = &sh
		}
		if flags&2 != 0 {
			ch.Status = &Status{Phase: RolledBack, Stage: 0, StageStartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Message: string(src[:min(len(src), 20)])}
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
			t.Fatalf("Edit produced a wrong file: %v\n--- input\n%q\n--- output\n%q", err, src, out)
		}
		if err != nil {
			if ch.Promote && spec.Canary == nil {
				return // a safe refusal: nothing to promote
			}
			t.Fatalf("Edit refused a change to a valid spec: %v\n--- input\n%q", err, src)
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
	for _, s := range editSeeds {
		f.Add([]byte(s))
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
