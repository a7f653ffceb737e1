package rollouts

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func intp(i int) *int { return &i }

var t0 = time.Date(2026, 4, 17, 8, 30, 0, 0, time.UTC)

// editCases run over real example files; each golden file holds the whole edited file, so a review of
// the golden diff shows exactly which lines an edit touches.
var editCases = []struct {
	name, file string
	change     Change
}{
	{"weight", "summarizer.yaml", Change{Weight: intp(25)}},
	{"weight-same", "summarizer.yaml", Change{Weight: intp(5), Shadow: intp(0)}},
	{"status-advance", "summarizer.yaml", Change{Weight: intp(25), Status: &Status{Phase: Progressing, Stage: 2, StageStartedAt: t0, Canary: "3f2a9c1e"}}},
	{"rollback", "summarizer.yaml", Change{Weight: intp(0), Shadow: intp(0), Status: &Status{Phase: RolledBack, Stage: 1, StageStartedAt: time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC), Canary: "3f2a9c1e", Message: "error_rate: canary 4.1% > max 2%\nlatency_p95_ms: +41% > +30%"}}},
	{"promote", "summarizer.yaml", Change{Promote: true, Weight: intp(0), Status: &Status{Phase: Completed, Stage: 4, PromotedAt: t0}}},
	{"drop-previous", "summarizer.yaml", Change{DropPrevious: true, ClearStatus: true}},
	{"flow-shadow", "flow.yaml", Change{Weight: intp(50), Shadow: intp(10)}},
	{"flow-start", "flow.yaml", Change{Weight: intp(5), Status: &Status{Phase: Progressing, StageStartedAt: t0, Canary: "0a1b2c3d"}}},
	{"flow-promote", "flow.yaml", Change{Promote: true, Weight: intp(0)}},
	{"pending-start", "pending.yaml", Change{Weight: intp(0), Shadow: intp(100), Status: &Status{Phase: Progressing, StageStartedAt: t0, Canary: "12345678"}}},
	{"pending-promote", "pending.yaml", Change{Promote: true}},
	{"nonewline-status", "nonewline.yaml", Change{Weight: intp(100), Status: &Status{Phase: Progressing, Stage: 0, StageStartedAt: t0, Message: "it's: #1"}}},
	{"nonewline-clear", "nonewline.yaml", Change{ClearStatus: true, Promote: true}},
	{"crlf-advance", "crlf.yaml", Change{Weight: intp(100), Status: &Status{Phase: Progressing, Stage: 1, StageStartedAt: t0, Message: "first try"}}},
	{"crlf-rollback", "crlf.yaml", Change{Weight: intp(0), Status: &Status{Phase: RolledBack, Stage: 0}}},
	{"literal-resume", "literal.yaml", Change{Status: &Status{Phase: Progressing, Stage: 0, StageStartedAt: t0, Canary: "00001111"}}},
	{"literal-promote", "literal.yaml", Change{Promote: true, Weight: intp(0), ClearStatus: true}},
	{"literal-shadow", "literal.yaml", Change{Shadow: intp(20)}},
	// Layouts validate accepts that Edit once refused or broke (issue 16): every rollback must land.
	{"json-rollback", "json.yaml", Change{Weight: intp(0), Shadow: intp(0), Status: &Status{Phase: RolledBack, Stage: 1, StageStartedAt: time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC), Message: "error_rate: canary 4.1% > max 2%"}}},
	{"json-promote", "json.yaml", Change{Promote: true, Weight: intp(0), Status: &Status{Phase: Completed, Stage: 2, PromotedAt: t0}}},
	{"flowroot-start", "flowroot.yaml", Change{Weight: intp(10), Status: &Status{Phase: Progressing, StageStartedAt: t0, Canary: "0a1b2c3d"}}},
	{"flowroot-drop-previous", "flowroot.yaml", Change{DropPrevious: true}},
	{"flowroot-promote", "flowroot.yaml", Change{Promote: true, DropPrevious: true}},
	{"markers-start", "markers.yaml", Change{Weight: intp(10), Status: &Status{Phase: Progressing, StageStartedAt: t0}}},
	{"trailing-marker-rollback", "trailing-marker.yaml", Change{Weight: intp(0), Status: &Status{Phase: RolledBack, Message: "latency_p95_ms: +41% > +30%"}}},
	{"flowmulti-rollback", "flowmulti.yaml", Change{Weight: intp(0), Shadow: intp(0), Status: &Status{Phase: RolledBack, StageStartedAt: time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC), Message: "rolled back"}}},
	{"flowmulti-pause", "flowmulti.yaml", Change{Status: &Status{Phase: Paused}}},
	{"flowmulti-promote", "flowmulti.yaml", Change{Promote: true, Weight: intp(0), ClearStatus: true}},
}

func TestEditGolden(t *testing.T) {
	for _, tc := range editCases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "edit", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			before, problems := parseRaw(tc.file, src)
			if len(problems) > 0 {
				t.Fatalf("input does not parse: %v", problems)
			}
			got, err := Edit(src, tc.change)
			if err != nil {
				t.Fatalf("Edit: %v", err)
			}
			// The edited file parses to exactly the intended spec.
			want := *before
			if err := tc.change.Apply(&want); err != nil {
				t.Fatal(err)
			}
			after, problems := parseRaw(tc.file, got)
			if len(problems) > 0 {
				t.Fatalf("edited file does not parse: %v\n%s", problems, got)
			}
			if a, w := normalizeTimes(*after), normalizeTimes(want); !reflect.DeepEqual(a, w) {
				t.Errorf("edited spec differs from the intended one:\n got %+v\nwant %+v", a, w)
			}
			golden := filepath.Join("testdata", "edit", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantBytes, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, wantBytes) {
				t.Errorf("edit differs from %s:\n%s", golden, got)
			}
		})
	}
}

// An edit that changes nothing returns the file byte for byte.
func TestEditNoChangeIsIdentity(t *testing.T) {
	for _, file := range []string{"summarizer.yaml", "flow.yaml", "pending.yaml", "nonewline.yaml", "crlf.yaml", "literal.yaml", "json.yaml", "flowroot.yaml", "markers.yaml", "trailing-marker.yaml", "flowmulti.yaml"} {
		src, err := os.ReadFile(filepath.Join("testdata", "edit", file))
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := Parse(file, src)
		ch := Change{Weight: &spec.Traffic.Weight, Shadow: &spec.Traffic.Shadow, Status: spec.Status}
		got, err := Edit(src, ch)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if spec.Status == nil && !bytes.Equal(got, src) {
			// Without a status the weight lines may be added, but nothing else changes.
			continue
		}
		if !bytes.Equal(got, src) && spec.Status != nil && hasTrafficKeys(src) {
			t.Errorf("%s: a no-op edit changed the file:\n%s", file, got)
		}
	}
}

func hasTrafficKeys(src []byte) bool {
	return bytes.Contains(src, []byte("weight:")) && bytes.Contains(src, []byte("shadow:"))
}

// changedLines counts the lines that differ between a and b, aligned from both ends.
func changedLines(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	i := 0
	for i < len(la) && i < len(lb) && la[i] == lb[i] {
		i++
	}
	j := 0
	for j < len(la)-i && j < len(lb)-i && la[len(la)-1-j] == lb[len(lb)-1-j] {
		j++
	}
	return max(len(la), len(lb)) - i - j
}

func TestEditWeightTouchesOneLine(t *testing.T) {
	for _, file := range []string{"summarizer.yaml", "flow.yaml", "nonewline.yaml", "json.yaml", "trailing-marker.yaml", "flowmulti.yaml"} {
		src, _ := os.ReadFile(filepath.Join("testdata", "edit", file))
		got, err := Edit(src, Change{Weight: intp(42)})
		if err != nil {
			t.Fatal(err)
		}
		if n := changedLines(src, got); n != 1 {
			t.Errorf("%s: weight edit changed %d lines, want 1", file, n)
		}
	}
}

func TestEditErrors(t *testing.T) {
	tests := []struct {
		name, src string
		change    Change
	}{
		{"promote without canary", "apiVersion: rollout/v1\nkind: Rollout\nname: a\nstable: {model: m}\nstages: [{weight: 1}]\n", Change{Promote: true}},
		{"not yaml", "a: [", Change{Weight: intp(1)}},
		{"not a mapping", "- a\n", Change{Weight: intp(1)}},
		{"traffic scalar", "traffic: 5\n", Change{Weight: intp(1)}},
		// Line breaks yaml.v3 counts and Edit's line index would not: refused, never a panic (issue 15).
		{"lone carriage return", "apiVersion: rollout/v1\nkind: Rollout\nname: x\nstable:\n  model: 0000000000\rstages: [{weight: 5}]\ntraffic:\n  weight: 0\n", Change{Weight: intp(5), Status: &Status{Phase: RolledBack}}},
		{"line separator", "traffic:\u2028  weight: 5\n", Change{Weight: intp(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Edit([]byte(tt.src), tt.change); err == nil {
				t.Fatal("Edit succeeded, want an error")
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile(filepath.Join("testdata", "edit", "summarizer.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, problems := Parse("s.yaml", src); len(problems) > 0 {
			b.Fatal(problems)
		}
	}
}

func BenchmarkEditAdvance(b *testing.B) {
	src, err := os.ReadFile(filepath.Join("testdata", "edit", "summarizer.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	ch := Change{Weight: intp(25), Status: &Status{Phase: Progressing, Stage: 2, StageStartedAt: t0, Canary: "3f2a9c1e"}}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Edit(src, ch); err != nil {
			b.Fatal(err)
		}
	}
}

// Edit's self-check compares specs NaN-aware: reflect.DeepEqual finds a spec holding a NaN unequal to
// itself, which made every edit of such a spec fail, rollbacks included (issue 16). Parse now refuses
// NaN, but the check must not depend on it.
func TestSameSpecNaN(t *testing.T) {
	nan := math.NaN()
	a := Spec{Name: "n", Analysis: Analysis{Confidence: nan, Rules: []Rule{{Metric: "error_rate", Max: &nan}}},
		Status: &Status{StageStartedAt: t0}}
	b := a
	b.Status = &Status{StageStartedAt: t0.In(time.FixedZone("x", 3600))}
	if reflect.DeepEqual(a, b) {
		t.Fatal("the case no longer shows what DeepEqual gets wrong")
	}
	if !sameSpec(a, b) {
		t.Error("sameSpec: a spec holding NaN is not the same as itself")
	}
	one := 1.0
	c := a
	c.Analysis.Rules = []Rule{{Metric: "error_rate", Max: &one}}
	if sameSpec(a, c) {
		t.Error("sameSpec: NaN equals 1")
	}
	d := a
	d.Status = &Status{StageStartedAt: t0.Add(time.Second)}
	if sameSpec(a, d) {
		t.Error("sameSpec: different times are the same")
	}
}

// Every layout validate accepts takes every change the loop makes: tags on mappings and values, keys
// in quotes, comments and tabs in odd places, a BOM, CRLF, trailing commas and comments in flow
// mappings, JSON, null blocks, block and multi-line plain scalars, an indented root, document markers.
// (Explicit "? key" entries are refused by Parse instead.)
func TestEditTakesEveryLayoutValidateAccepts(t *testing.T) {
	head := "apiVersion: rollout/v1\nkind: Rollout\nname: x\nstable: {model: a}\ncanary: {model: b}\nstages: [{weight: 5}, {weight: 100}]\n"
	cases := []string{
		head + "traffic: !!map {weight: 5}\n",
		head + "traffic: !!map\n  weight: 5\n",
		head + "traffic:\n  weight:\n    5\n",
		head + "\"traffic\": {\"weight\": 5}\n",
		head + "traffic: # c\n  weight: 5\n",
		head + "traffic:\n  weight:\t5\n",
		"\ufeff" + head + "traffic: {weight: 5}\n",
		strings.ReplaceAll(head, "\n", "\r\n") + "traffic: {weight: 5}\r\n",
		"{apiVersion: rollout/v1, kind: Rollout, name: x, stable: {model: a}, canary: {model: b}, stages: [{weight: 5}, {weight: 100}], traffic: {weight: 5,}, }",
		"{apiVersion: rollout/v1, kind: Rollout, name: x, stable: {model: a}, canary: {model: b}, stages: [{weight: 5}, {weight: 100}], traffic: {weight: 5, # c\n}, # d\n}",
		"{\r\n\"apiVersion\": \"rollout/v1\", \"kind\": \"Rollout\", \"name\": \"x\",\r\n \"stable\": {\"model\": \"a\"}, \"canary\": {\"model\": \"b\"}, \"stages\": [{\"weight\": 5}, {\"weight\": 100}]\r\n}\r\n",
		head + "traffic: {weight: 5}\nstatus: ~\n",
		head + "traffic:\nstatus:\n",
		head + "traffic: {weight: 5}\nstatus:\n  phase: Progressing\n  stage: 0\n  message: |\n    multi\n    line\n",
		head + "traffic: {weight: 5}\nstatus:\n  phase: Progressing\n  stage: 0\n  message: plain\n    folded\n",
		head + "traffic: {weight: 5}\nstatus: {phase: Progressing, stage: 0, message: plain\n    folded}\n",
		head + "traffic: {weight: 5}\nstatus: {phase: Progressing, stage: 0, message: }\n",
		head + "traffic: {weight: 5}\nstatus: {phase: Progressing, stage: 0, message}\n",
		"  " + strings.ReplaceAll(head, "\n", "\n  ") + "traffic: {weight: 5}\n",
		head + "traffic: {weight: 5}\n...\n",
		head + "traffic: {weight: 5}\n--- # c\n",
		"--- !!map\n" + head + "traffic: {weight: 5}\n",
		"--- " + "{apiVersion: rollout/v1, kind: Rollout, name: x, stable: {model: a}, canary: {model: b}, stages: [{weight: 5}, {weight: 100}]}\n...\n",
		"!!map {apiVersion: rollout/v1, kind: Rollout, name: x, stable: {model: a}, canary: {model: b}, stages: [{weight: 5}, {weight: 100}]}",
		head + "traffic: {weight: 5}\nstatus: !!map {phase: Progressing, stage: 0}\n",
		head + "traffic: {weight: 5}\nstatus: {phase: Progressing, stage: !!int 0, message: !!str x}\n",
		head + "traffic: {weight: 5}\nstatus: {phase: Progressing, stage: 0, message: 'it''s'}\n",
		head + "traffic: {weight: 5}\nstatus: {\"phase\": Progressing, 'stage': 0}\n",
		head + "traffic: {weight: 5}\nstatus: {phase: Progressing, stage: 0,\n  # comment\n  message: x\n  }\n",
		"apiVersion: rollout/v1\nkind: Rollout\nname: x\nstable:\n  model: a\ncanary: !!map\n  model: b\nstages: [{weight: 5}, {weight: 100}]\n",
		"apiVersion: rollout/v1\nkind: Rollout\nname: x\nstable: !!map\n  model: a\ncanary:\n  model: b\nprevious: !!map {model: c}\nstages: [{weight: 5}, {weight: 100}]\n",
		head + "traffic: {weight: 5}\nstatus: {phase: Progressing, stage: 0, stageStartedAt: !!timestamp 2026-01-01T00:00:00Z}\n",
		head + "traffic: {weight: 5}\nstatus:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: !!timestamp '2026-01-01T00:00:00Z'\n",
	}
	for i, src := range cases {
		if _, p := parseRaw("f", []byte(src)); len(p) > 0 {
			t.Errorf("%d: not a valid spec: %v", i, p)
			continue
		}
		for _, ch := range []Change{
			{Weight: intp(0), Shadow: intp(0), Status: &Status{Phase: RolledBack, Stage: 0, StageStartedAt: t0, Message: "a: b\nc"}},
			{Promote: true, Weight: intp(0), DropPrevious: true, ClearStatus: true},
			{Promote: true, Status: &Status{Phase: Completed, Stage: 1}},
			{Weight: intp(100), Status: &Status{Phase: Progressing, Stage: 1}},
		} {
			// Edit checks that its result parses to the intended spec: no error means a right file.
			if _, err := Edit([]byte(src), ch); err != nil {
				t.Errorf("%d: %v\n%s", i, err, src)
			}
		}
	}
}
