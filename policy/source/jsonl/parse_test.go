package jsonl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rollout-dev/rollout/policy"
)

func TestParse(t *testing.T) {
	const head = `"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary"`
	tests := []struct {
		name string
		line string
		err  error // nil: valid
		has  uint16
	}{
		{"required only", `{` + head + `}`, nil, 0},
		{"all fields", `{` + head + `,"latency_ms":1,"error":true,"refusal":false,"input_tokens":2,"output_tokens":3,"cost_usd":0.1,"quality":0,"feedback":-1}`, nil,
			hasLatency | hasError | hasRefusal | hasInputTokens | hasOutputTokens | hasCost | hasQuality | hasFeedback},
		{"nulls are absent", `{` + head + `,"latency_ms":null,"error":null,"quality":null}`, nil, 0},
		{"last duplicate wins", `{` + head + `,"quality":1,"quality":null,"error":null,"error":false}`, nil, hasError},
		{"escaped key and value", `{"t\u0073":"2026-04-16T10:00:00Z","rollout":"r","variant":"c\u0061nary"}`, nil, 0},
		{"unknown nested values", `{` + head + `,"meta":{"a":[1,-2.5e3,"x\"y",true,false,null,{}],"b":[]}}`, nil, 0},
		{"whitespace", " \t{ " + `"ts" : "2026-04-16T10:00:00Z" , "rollout":"r","variant":"stable" } ` + "\r\n", nil, 0},
		{"shadow canary", `{` + head + `,"shadow":true}`, nil, 0},
		{"not an object", `[1]`, errSyntax, 0},
		{"garbage", `hello`, errSyntax, 0},
		{"empty object", `{}`, errMissing, 0},
		{"cut short", `{` + head + `,"error":tr`, errSyntax, 0},
		{"trailing garbage", `{` + head + `}x`, errSyntax, 0},
		{"two objects", `{` + head + `}{}`, errSyntax, 0},
		{"trailing comma", `{` + head + `,}`, errSyntax, 0},
		{"missing ts", `{"rollout":"r","variant":"canary"}`, errMissing, 0},
		{"null rollout", `{"ts":"2026-04-16T10:00:00Z","rollout":null,"variant":"canary"}`, errMissing, 0},
		{"empty rollout", `{"ts":"2026-04-16T10:00:00Z","rollout":"","variant":"canary"}`, errMissing, 0},
		{"unknown variant", `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"Canary"}`, errVariant, 0},
		{"numeric variant", `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":1}`, errType, 0},
		{"date only", `{"ts":"2026-04-16","rollout":"r","variant":"canary"}`, errTime, 0},
		{"unix ts", `{"ts":1776333600,"rollout":"r","variant":"canary"}`, errType, 0},
		{"NaN", `{` + head + `,"latency_ms":NaN}`, errSyntax, 0},
		{"Infinity", `{` + head + `,"quality":-Infinity}`, errSyntax, 0},
		{"overflow", `{` + head + `,"cost_usd":1e309}`, errRange, 0},
		{"negative latency", `{` + head + `,"latency_ms":-1}`, errNegative, 0},
		{"string number", `{` + head + `,"latency_ms":"1"}`, errType, 0},
		{"leading zero", `{` + head + `,"latency_ms":01}`, errSyntax, 0},
		{"bare dot", `{` + head + `,"latency_ms":1.}`, errSyntax, 0},
		{"string bool", `{` + head + `,"error":"true"}`, errType, 0},
		{"number bool", `{` + head + `,"refusal":0}`, errType, 0},
		{"stable shadow", `{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"stable","shadow":true}`, errShadow, 0},
		{"control character", "{\"ts\":\"2026-04-16T10:00:00Z\",\"rollout\":\"r\x01\",\"variant\":\"canary\"}", errSyntax, 0},
		{"bad escape", `{` + head + `,"key":"\x"}`, errSyntax, 0},
		{"unclosed nested", `{` + head + `,"meta":{"a":[1,2}}`, errSyntax, 0},
		{"numeric key", `{` + head + `,"key":1842,"request_id":"r-1"}`, nil, 0},
		{"object key", `{` + head + `,"key":{"id":1}}`, errType, 0},
		{"late feedback", `{"ts":"2026-04-16T10:00:00Z","rollout":"r","request_id":"r-1","feedback":-1}`, nil, hasFeedback},
		{"late score", `{"ts":"2026-04-16T10:00:00Z","rollout":"r","request_id":7,"quality":0.5}`, nil, hasQuality},
		{"late record without a value", `{"ts":"2026-04-16T10:00:00Z","rollout":"r","request_id":"r-1"}`, errLate, 0},
		{"late record with an empty id", `{"ts":"2026-04-16T10:00:00Z","rollout":"r","request_id":"","feedback":1}`, errMissing, 0},
	}
	var p parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req request
			err := p.parse([]byte(tt.line), &req)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("parse(%s) = %v, want %v", tt.line, err, tt.err)
			}
			if err == nil && req.has != tt.has {
				t.Errorf("has = %08b, want %08b", req.has, tt.has)
			}
			if _, rerr := referenceParse([]byte(tt.line)); (rerr == nil) != (err == nil) {
				t.Errorf("reference decoder disagrees: %v", rerr)
			}
		})
	}
}

// referenceParse is the record reader written the slow, obvious way with encoding/json, against which
// the hand-written parser is checked.
func referenceParse(line []byte) (request, error) {
	var req request
	var obj map[string]any
	if !json.Valid(line) {
		return req, errSyntax
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return req, errSyntax
	}
	str := func(k string) ([]byte, error) {
		switch v := obj[k].(type) {
		case nil:
			return nil, nil
		case string:
			return []byte(v), nil
		}
		return nil, errType
	}
	boolean := func(k string, dst *bool, bit uint16) error {
		switch v := obj[k].(type) {
		case nil:
		case bool:
			*dst = v
			req.has |= bit
		default:
			return errType
		}
		return nil
	}
	number := func(k string, dst *float64, bit uint16, nonNegative bool) error {
		switch v := obj[k].(type) {
		case nil:
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil || math.IsInf(f, 0) {
				return errRange
			}
			if nonNegative && f < 0 {
				return errNegative
			}
			*dst = f
			req.has |= bit
		default:
			return errType
		}
		return nil
	}
	var ts []byte
	var err error
	if ts, err = str("ts"); err != nil {
		return req, err
	}
	if req.rollout, err = str("rollout"); err != nil {
		return req, err
	}
	if req.variant, err = str("variant"); err != nil {
		return req, err
	}
	if err := boolean("shadow", &req.shadow, 0); err != nil {
		return req, err
	}
	id := func(k string) ([]byte, error) {
		switch v := obj[k].(type) {
		case nil:
			return nil, nil
		case string:
			return []byte(v), nil
		case json.Number:
			return []byte(v), nil
		}
		return nil, errType
	}
	if req.key, err = id("key"); err != nil {
		return req, err
	}
	if req.requestID, err = id("request_id"); err != nil {
		return req, err
	}
	for _, e := range []error{
		boolean("error", &req.isError, hasError),
		boolean("refusal", &req.refusal, hasRefusal),
		number("latency_ms", &req.latencyMs, hasLatency, true),
		number("input_tokens", &req.inputTokens, hasInputTokens, true),
		number("output_tokens", &req.outputTokens, hasOutputTokens, true),
		number("cost_usd", &req.costUSD, hasCost, true),
		number("quality", &req.quality, hasQuality, false),
		number("feedback", &req.feedback, hasFeedback, false),
	} {
		if e != nil {
			return req, e
		}
	}
	switch v := obj["attrs"].(type) {
	case nil:
	case map[string]any:
		for _, x := range v {
			if _, ok := x.(string); !ok && x != nil {
				return req, errAttrs
			}
		}
	default:
		return req, errAttrs
	}
	switch v := obj["preferred"].(type) {
	case nil:
	case string:
		switch v {
		case "canary":
			req.preferred = preferCanary
		case "stable":
			req.preferred = preferStable
		case "tie":
			req.preferred = preferTie
		default:
			return req, errPrefer
		}
		req.has |= hasPreferred
	default:
		return req, errPrefer
	}
	if ts == nil || len(req.rollout) == 0 {
		return req, errMissing
	}
	if req.variant == nil && len(req.requestID) > 0 {
		if req.has&(hasFeedback|hasQuality|hasPreferred) == 0 {
			return req, errLate
		}
		req.late = true
	} else if req.variant == nil {
		return req, errMissing
	}
	switch string(req.variant) {
	case "":
		if !req.late {
			return req, errVariant
		}
	case variantStable:
		if req.shadow {
			return req, errShadow
		}
	case variantCanary:
	default:
		return req, errVariant
	}
	if req.ts, err = time.Parse(time.RFC3339Nano, string(ts)); err != nil {
		return req, errTime
	}
	return req, nil
}

func FuzzParse(f *testing.F) {
	seedLines(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		var p parser
		var got request
		err := p.parse(line, &got)
		want, rerr := referenceParse(line)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("parse(%q) = %v, reference = %v", line, err, rerr)
		}
		if err != nil {
			return
		}
		if !got.ts.Equal(want.ts) || got.has != want.has || got.shadow != want.shadow ||
			got.isError != want.isError || got.refusal != want.refusal ||
			got.latencyMs != want.latencyMs || got.inputTokens != want.inputTokens ||
			got.outputTokens != want.outputTokens || got.costUSD != want.costUSD ||
			got.quality != want.quality || got.feedback != want.feedback || got.late != want.late || got.preferred != want.preferred ||
			!bytes.Equal(got.variant, want.variant) {
			t.Fatalf("parse(%q) = %+v, reference %+v", line, got, want)
		}
		// encoding/json replaces invalid UTF-8; the fast path compares raw bytes, which is stricter.
		if utf8.Valid(got.rollout) && !bytes.Equal(got.rollout, want.rollout) {
			t.Fatalf("parse(%q) rollout = %q, reference %q", line, got.rollout, want.rollout)
		}
	})
}

// FuzzReader feeds arbitrary files to the reader: it never panics, never errors on content, and its
// counts stay consistent.
func FuzzReader(f *testing.F) {
	seedLines(f)
	for _, name := range []string{"basic.jsonl", "malformed.jsonl"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		src := &Source{MaxLineBytes: 256, MaxMalformedLines: 3}
		st, err := src.Read(context.Background(), bytes.NewReader(content), policy.Query{Rollout: "r", Segments: []string{"language"}})
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		lines := int64(bytes.Count(content, []byte("\n")) + 1)
		if st.Malformed < 0 || st.Malformed > lines || int64(len(st.MalformedLines)) > min(st.Malformed, 3) {
			t.Fatalf("Malformed = %d %v for %d lines", st.Malformed, st.MalformedLines, lines)
		}
		if st.Stable.Requests+st.Canary.Requests+st.Malformed > lines || st.Shadow > st.Canary.Requests {
			t.Fatalf("stable %d + canary %d + malformed %d > %d lines, shadow %d", st.Stable.Requests, st.Canary.Requests, st.Malformed, lines, st.Shadow)
		}
		for _, arm := range []policy.ArmStats{st.Stable, st.Canary} {
			for name, s := range arm.Metrics {
				if s.N > arm.Requests || math.IsNaN(s.Sum) || math.IsInf(s.Sum, 0) {
					t.Fatalf("%s = %+v with %d requests", name, s, arm.Requests)
				}
				if s.Kind == policy.Proportion && (s.Sum < 0 || s.Sum > float64(s.N)) {
					t.Fatalf("%s = %+v: proportion out of range", name, s)
				}
			}
		}
	})
}

func seedLines(f *testing.F) {
	for _, s := range []string{
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","latency_ms":1,"error":true,"quality":0.5,"feedback":-1}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"stable","meta":{"a":[1,{"b":null}]},"key":"\u00e9"}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","shadow":true,"cost_usd":1e-3}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","latency_ms":NaN}`,
		`{"ts":"bad","rollout":"r","variant":"canary"}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","request_id":"x","feedback":-1,"quality":0.2}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"stable","key":42,"request_id":"x"}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","attrs":{"language":"de","t\u0065nant":null,"language":"\u0066r"}}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","request_id":"x","preferred":"tie"}`,
		`{"ts":"2026-04-16T10:00:00Z","rollout":"r","variant":"canary","attrs":{"language":1}}`,
		"not json\n{}\n[]",
	} {
		f.Add([]byte(s))
	}
}
