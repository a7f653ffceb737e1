package clickhouse

import (
	"errors"
	"math"
	"path"
	"regexp"
	"testing"
)

// TestGlobsMatchAsPathMatch wants the expression ClickHouse runs to match exactly the keys that
// path.Match (what assignment.include and exclude mean) matches.
func TestGlobsMatchAsPathMatch(t *testing.T) {
	globs := []string{"vip-*", "beta-?", "user-[0-9]", "team-[^a-c]x", `lit\*eral`, "a.b+c(d)|e", "*", "exact", "ü?"}
	keys := []string{"", "vip-", "vip-1", "vip-1/2", "beta-1", "beta-12", "beta-/", "user-5", "user-x", "team-dx", "team-ax",
		"lit*eral", "litXeral", "a.b+c(d)|e", "aXb+c(d)|e", "exact", "exactly", "a/b", "az", "-z", "dz", "üx", "üxx", "x"}
	for _, g := range globs {
		re, err := globsToRegexp([]string{g})
		if err != nil {
			t.Fatalf("%q: %v", g, err)
		}
		compiled := regexp.MustCompile(re)
		for _, k := range keys {
			want, _ := path.Match(g, k)
			if got := compiled.MatchString(k); got != want {
				t.Errorf("glob %q (regexp %q) on key %q: %v, path.Match says %v", g, re, k, got, want)
			}
		}
	}
	if re, err := globsToRegexp(nil); re != "" || err != nil {
		t.Errorf("no globs: %q, %v; want none", re, err)
	}
	if _, err := globsToRegexp([]string{"bad["}); !errors.Is(err, ErrBadGlob) {
		t.Errorf("bad[: error %v, want ErrBadGlob", err)
	}
}

func TestQuoteKeepsOneLiteral(t *testing.T) {
	tests := map[string]string{
		"plain":        `'plain'`,
		`it's`:         `'it\'s'`,
		`back\slash`:   `'back\\slash'`,
		`\'`:           `'\\\''`,
		"nul\x00tab\t": `'nul\0tab\t'`,
		"new\nline\r":  `'new\nline\r'`,
		"{{rollout}}":  `'{{rollout}}'`,
	}
	for in, want := range tests {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestLinearCount wants the distinct-key estimate exact for small counts (rounding absorbs the rare
// collision) and within its standard error for large ones.
func TestLinearCount(t *testing.T) {
	if got := linearCount(0); got != 0 {
		t.Errorf("no bits: %d keys, want 0", got)
	}
	for _, set := range []int{1, 2, 10, 600} {
		if got := linearCount(set); got != int64(set) {
			t.Errorf("%d bits set: %d keys, want %d", set, got, set)
		}
	}
	// 200,000 distinct keys set m·(1 − e^(−n/m)) bits in expectation.
	set := int(keyBits * (1 - math.Exp(-200000.0/keyBits)))
	if got := linearCount(set); math.Abs(float64(got)-200000) > 200 {
		t.Errorf("%d bits set: %d keys, want 200,000 ± 0.1%%", set, got)
	}
	if got := linearCount(keyBits); got <= 0 {
		t.Errorf("saturated: %d keys, want a positive upper end", got)
	}
}
