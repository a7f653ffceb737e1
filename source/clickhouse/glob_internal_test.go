package clickhouse

import (
	"errors"
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
