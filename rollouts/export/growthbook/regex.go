package growthbook

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// The regular expressions GlobsRegex writes are read by two engines: JavaScript's RegExp without the
// u flag, which sees a string as UTF-16 code units, and Python's re, which sees code points. Go's
// path.Match sees runes. So every piece that matches "one character" matches either a surrogate pair
// (one rune outside the Basic Multilingual Plane, to JavaScript) or one non-surrogate unit (to
// JavaScript, a BMP rune; to Python, any code point, since a Python string holds no surrogates).
const (
	pair     = `[\uD800-\uDBFF][\uDC00-\uDFFF]`
	anyRune  = `(?:` + pair + `|[^\uD800-\uDFFF])`
	oneRune  = `(?:` + pair + `|[^/\uD800-\uDFFF])` // path.Match's ?: any rune but the separator
	manyRune = `[^/]*`                              // path.Match's *: a surrogate pair is two non-/ units
	// theEnd anchors at the very end in both engines: Python's $ also matches before a final newline.
	theEnd = `(?![\s\S])`
	// pythonOnly passes only where Python sees a code point beyond U+FFFF: JavaScript sees no unit
	// above U+FFFF, so what follows it is never tried there (it only has to parse).
	pythonOnly = `(?=[^\u0000-\uFFFF])`
)

// GlobsRegex returns one anchored regular expression that matches a key exactly when path.Match
// matches it against one of globs, in JavaScript (GrowthBook's JS SDK evaluates $regex with
// new RegExp(re).test) and in Python (re.search). A glob path.Match calls malformed matches nothing in
// Go, so it is left out; all of them malformed is an error.
func GlobsRegex(globs []string) (string, error) {
	var alts []string
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			continue
		}
		re, err := globRegex(g)
		if err != nil {
			return "", fmt.Errorf("glob %q: %w", g, err)
		}
		alts = append(alts, re)
	}
	if len(alts) == 0 {
		return "", errors.New("no valid glob")
	}
	return `^(?:` + strings.Join(alts, "|") + `)` + theEnd, nil
}

// globRegex translates one well-formed path.Match pattern.
func globRegex(g string) (string, error) {
	var b strings.Builder
	for len(g) > 0 {
		switch g[0] {
		case '*':
			b.WriteString(manyRune)
			g = g[1:]
		case '?':
			b.WriteString(oneRune)
			g = g[1:]
		case '[':
			re, rest, err := classRegex(g[1:])
			if err != nil {
				return "", err
			}
			b.WriteString(re)
			g = rest
		case '\\':
			r, n := utf8.DecodeRuneInString(g[1:])
			b.WriteString(literal(r))
			g = g[1+n:]
		default:
			r, n := utf8.DecodeRuneInString(g)
			b.WriteString(literal(r))
			g = g[n:]
		}
	}
	return b.String(), nil
}

// runeRange is lo..hi inclusive, as path.Match compares them.
type runeRange struct{ lo, hi rune }

// classRegex translates the character class that starts after '[' in g, and returns the rest of g.
func classRegex(g string) (string, string, error) {
	negated := false
	if len(g) > 0 && g[0] == '^' {
		negated, g = true, g[1:]
	}
	var ranges []runeRange
	for n := 0; ; n++ {
		if len(g) > 0 && g[0] == ']' && n > 0 {
			g = g[1:]
			break
		}
		var lo, hi rune
		lo, g = classChar(g)
		hi = lo
		if len(g) > 0 && g[0] == '-' {
			hi, g = classChar(g[1:])
		}
		ranges = append(ranges, runeRange{lo, hi})
	}
	set, err := classSet(ranges)
	if err != nil {
		return "", "", err
	}
	if negated {
		return `(?!` + set + `)` + anyRune, g, nil
	}
	return set, g, nil
}

// classChar reads one possibly escaped character of a class; the glob is known to be well-formed.
func classChar(g string) (rune, string) {
	if g[0] == '\\' {
		g = g[1:]
	}
	r, n := utf8.DecodeRuneInString(g)
	return r, g[n:]
}

// classSet matches one rune in any of ranges, in both engines.
func classSet(ranges []runeRange) (string, error) {
	var bmp strings.Builder
	var alts []string
	var astral []runeRange
	for _, r := range ranges {
		if r.lo > r.hi {
			continue // path.Match: matches nothing
		}
		// The BMP part, without surrogates (no rune of a valid UTF-8 key is one).
		for _, part := range []runeRange{{r.lo, min(r.hi, 0xD7FF)}, {max(r.lo, 0xE000), min(r.hi, 0xFFFF)}} {
			if part.lo <= part.hi {
				bmp.WriteString(classEscape(part.lo))
				if part.hi > part.lo {
					bmp.WriteString("-" + classEscape(part.hi))
				}
			}
		}
		if r.hi >= 0x10000 {
			astral = append(astral, runeRange{max(r.lo, 0x10000), min(r.hi, utf8.MaxRune)})
		}
	}
	if bmp.Len() > 0 {
		alts = append(alts, "["+bmp.String()+"]")
	}
	if len(astral) > 0 {
		// JavaScript: surrogate pairs. Python: a class of code points, behind a guard JavaScript never passes.
		var py strings.Builder
		for _, r := range astral {
			alts = append(alts, surrogateRanges(r)...)
			py.WriteString(fmt.Sprintf(`\U%08X`, r.lo))
			if r.hi > r.lo {
				py.WriteString(fmt.Sprintf(`-\U%08X`, r.hi))
			}
		}
		alts = append(alts, pythonOnly+"["+py.String()+"]")
	}
	if len(alts) == 0 {
		return `(?!)`, nil // an empty class: matches nothing, in both engines
	}
	return `(?:` + strings.Join(alts, "|") + `)`, nil
}

// surrogateRanges matches the UTF-16 encodings of the runes in r (all beyond U+FFFF).
func surrogateRanges(r runeRange) []string {
	hs := func(c rune) rune { return 0xD800 + (c-0x10000)>>10 }
	ls := func(c rune) rune { return 0xDC00 + (c-0x10000)&0x3FF }
	u := func(c rune) string { return fmt.Sprintf(`\u%04X`, c) }
	span := func(lo, hi rune) string {
		if lo == hi {
			return u(lo)
		}
		return "[" + u(lo) + "-" + u(hi) + "]"
	}
	hlo, hhi := hs(r.lo), hs(r.hi)
	if hlo == hhi {
		return []string{u(hlo) + span(ls(r.lo), ls(r.hi))}
	}
	out := []string{u(hlo) + span(ls(r.lo), 0xDFFF)}
	if hlo+1 <= hhi-1 {
		out = append(out, span(hlo+1, hhi-1)+span(0xDC00, 0xDFFF))
	}
	return append(out, u(hhi)+span(0xDC00, ls(r.hi)))
}

// literal matches the rune r itself, in both engines.
func literal(r rune) string {
	switch {
	case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'):
		return string(r)
	case r < 0x20 || r == 0x7F:
		return fmt.Sprintf(`\x%02X`, r)
	case r < utf8.RuneSelf:
		return `\` + string(r) // an identity escape in both engines
	case r <= 0xFFFF:
		return fmt.Sprintf(`\u%04X`, r)
	default:
		// Written as itself: two units to JavaScript, one code point to Python; grouped so that no
		// quantifier could ever split it.
		return `(?:` + string(r) + `)`
	}
}

// classEscape writes a BMP rune inside a class.
func classEscape(r rune) string {
	if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
		return string(r)
	}
	return fmt.Sprintf(`\u%04X`, r)
}
