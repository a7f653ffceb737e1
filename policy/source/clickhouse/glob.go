package clickhouse

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// ErrBadGlob marks an include/exclude pattern that path.Match would reject.
var ErrBadGlob = errors.New("bad key pattern")

// globsToRegexp turns path.Match patterns (assignment.include and exclude) into one RE2 expression,
// anchored at both ends, that ClickHouse's match() accepts and that matches exactly the keys one of the
// patterns matches: * is any run of characters but /, ? one character but /, [...] a class ([^...]
// negated), \ escapes the next character. "" when there are no patterns.
func globsToRegexp(globs []string) (string, error) {
	if len(globs) == 0 {
		return "", nil
	}
	alts := make([]string, 0, len(globs))
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return "", fmt.Errorf("%w %q: %v", ErrBadGlob, g, err)
		}
		alts = append(alts, globToRegexp(g))
	}
	re := "^(?:" + strings.Join(alts, "|") + ")$"
	if _, err := regexp.Compile(re); err != nil { // RE2 syntax, as ClickHouse's
		return "", fmt.Errorf("%w: %v", ErrBadGlob, err)
	}
	return re, nil
}

func globToRegexp(g string) string {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString(`[^/]*`)
		case '?':
			b.WriteString(`[^/]`)
		case '\\':
			if i+1 < len(g) {
				i++
				b.WriteString(regexp.QuoteMeta(g[i : i+1]))
			}
		case '[':
			j := i + 1
			b.WriteByte('[')
			if j < len(g) && g[j] == '^' {
				b.WriteByte('^')
				j++
			}
			for ; j < len(g) && g[j] != ']'; j++ {
				switch g[j] {
				case '\\':
					j++
					b.WriteString(regexp.QuoteMeta(g[j : j+1]))
				case '-':
					b.WriteByte('-')
				default:
					b.WriteString(regexp.QuoteMeta(g[j : j+1]))
				}
			}
			b.WriteByte(']')
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		}
	}
	return b.String()
}
