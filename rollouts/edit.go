package rollouts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Change is what the controller changes in a spec file. Nil and false fields leave the file as it is.
// Edit applies them in this order: Promote, DropPrevious, Weight and Shadow, ClearStatus, Status.
type Change struct {
	Weight *int
	Shadow *int
	// Status replaces the whole status block.
	Status *Status
	// ClearStatus removes the status block.
	ClearStatus bool
	// Promote makes the canary the new stable: stable moves to previous, canary replaces stable, and the
	// canary block is removed.
	Promote bool
	// DropPrevious removes the previous block.
	DropPrevious bool
}

// ErrEdit is wrapped by every error Edit returns: the file is left as it was.
var ErrEdit = errors.New("edit spec")

// errVerify marks an edit whose result does not hold the intended spec: a bug in Edit, never the
// input's fault. The fuzz target looks for it.
var errVerify = errors.New("the edited file does not hold the intended spec")

// Edit applies ch to the bytes of a spec file and returns the new bytes.
//
// It edits the bytes themselves, not a re-encoding of them: only the lines that must change differ.
// Comments, key order, quoting, indentation, blank lines and flow or block style all stay as they were.
// A value is replaced where it stands; a missing key is added after its siblings (or before the
// closing brace of a flow mapping); a removed block takes its own lines and the comment lines right
// above it with it; a new status block is written in block style at the end of the file.
//
// When src is a valid spec, Edit checks that the result parses to exactly the spec that ch intends,
// and returns an error wrapping ErrEdit otherwise, so a bad edit never reaches a commit.
func Edit(src []byte, ch Change) ([]byte, error) {
	before, problems := parseRaw("", src)
	out := src
	var err error
	steps := []struct {
		on bool
		do func([]byte) ([]byte, error)
	}{
		{ch.Promote, promote},
		{ch.DropPrevious, func(b []byte) ([]byte, error) { return deleteTopKey(b, "previous") }},
		{ch.Weight != nil || ch.Shadow != nil, func(b []byte) ([]byte, error) { return setTraffic(b, ch.Weight, ch.Shadow) }},
		{ch.ClearStatus, func(b []byte) ([]byte, error) { return deleteTopKey(b, "status") }},
		{ch.Status != nil, func(b []byte) ([]byte, error) { return setStatus(b, ch.Status) }},
	}
	for _, st := range steps {
		if !st.on {
			continue
		}
		if out, err = st.do(out); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEdit, err)
		}
	}
	if before != nil && len(problems) == 0 {
		want := *before
		if err := ch.Apply(&want); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEdit, err)
		}
		got, problems := parseRaw("", out)
		if len(problems) > 0 {
			return nil, fmt.Errorf("%w: %w: it does not parse: %s", ErrEdit, errVerify, problems[0].Message)
		}
		if !sameSpec(*got, want) {
			return nil, fmt.Errorf("%w: %w", ErrEdit, errVerify)
		}
	}
	return out, nil
}

// Apply makes ch to a parsed spec, as Edit makes it to the file: the spec that the edited file holds.
func (ch Change) Apply(s *Spec) error {
	if ch.Promote {
		if s.Canary == nil {
			return errors.New("promote: no canary")
		}
		prev := s.Stable
		s.Previous = &prev
		s.Stable = *s.Canary
		s.Canary = nil
	}
	if ch.DropPrevious {
		s.Previous = nil
	}
	if ch.Weight != nil {
		s.Traffic.Weight = *ch.Weight
	}
	if ch.Shadow != nil {
		s.Traffic.Shadow = *ch.Shadow
	}
	if ch.ClearStatus {
		s.Status = nil
	}
	if ch.Status != nil {
		st := *ch.Status
		s.Status = &st
	}
	return nil
}

// sameSpec reports whether two specs hold the same values. Unlike reflect.DeepEqual it takes a NaN to
// equal a NaN (a spec that holds one must still be editable: a rollback must land) and compares times
// as instants.
func sameSpec(a, b Spec) bool {
	return sameValue(reflect.ValueOf(a), reflect.ValueOf(b))
}

func sameValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == timeType {
			return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
		}
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Map, reflect.Interface, reflect.Array:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
	return a.Equal(b)
}

func normalizeTimes(s Spec) Spec {
	if s.Status != nil {
		st := *s.Status
		st.StageStartedAt = st.StageStartedAt.UTC().Round(0)
		st.PromotedAt = st.PromotedAt.UTC().Round(0)
		s.Status = &st
	}
	return s
}

// fileText is one version of the file: its bytes, the offset of each line, and its parsed root mapping.
type fileText struct {
	src   []byte
	lines []int // byte offset of the start of each line; lines[0] = 0, plus len(src) at the end
	root  *yaml.Node
}

func load(src []byte) (*fileText, error) {
	if p, bad := checkEncoding("", src); bad {
		return nil, errors.New(p.Message)
	}
	root, err := parseNode(src)
	if err != nil {
		return nil, err
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, errors.New("the file is not a mapping")
	}
	if len(root.Content) == 0 {
		return nil, errors.New("the file is an empty mapping")
	}
	f := &fileText{src: src, root: root, lines: []int{0}}
	for i, c := range src {
		if c == '\n' {
			f.lines = append(f.lines, i+1)
		}
	}
	if f.lines[len(f.lines)-1] != len(src) {
		f.lines = append(f.lines, len(src))
	}
	return f, nil
}

// numLines is the number of lines of the file.
func (f *fileText) numLines() int { return len(f.lines) - 1 }

// line returns line l (1-based) without its line break.
func (f *fileText) line(l int) string {
	return strings.TrimRight(string(f.src[f.lines[l-1]:f.lines[l]]), "\r\n")
}

// offset converts a yaml.v3 position (1-based line, 1-based column in characters) to a byte offset.
func (f *fileText) offset(line, col int) int {
	start := f.lines[line-1]
	off := start
	for c := 1; c < col && off < len(f.src); c++ {
		_, size := utf8.DecodeRune(f.src[off:])
		off += size
	}
	return off
}

// splice returns the file's bytes with [from, to) replaced by text.
func (f *fileText) splice(from, to int, text string) []byte {
	out := make([]byte, 0, len(f.src)+len(text))
	out = append(out, f.src[:from]...)
	out = append(out, text...)
	return append(out, f.src[to:]...)
}

// indentOf is the number of leading spaces of line l.
func (f *fileText) indentOf(l int) int {
	s := f.line(l)
	return len(s) - len(strings.TrimLeft(s, " "))
}

func (f *fileText) isBlankOrComment(l int) bool {
	s := strings.TrimSpace(f.line(l))
	return s == "" || strings.HasPrefix(s, "#")
}

// entryLastLine returns the last line of the block-mapping entry whose key is k: the lines that follow
// it and are indented deeper, or blank, or comments indented deeper. Trailing blank lines and
// shallower comments belong to what comes next.
func (f *fileText) entryLastLine(k *yaml.Node) int {
	indent := k.Column - 1
	last := k.Line
	for l := k.Line + 1; l <= f.numLines(); l++ {
		s := f.line(l)
		trimmed := strings.TrimSpace(s)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			// A comment line, however little it is indented, does not end the entry: YAML reads a
			// more indented line after it as part of the entry's value (found by FuzzEdit).
			continue
		}
		if f.indentOf(l) <= indent {
			break
		}
		last = l
	}
	return last
}

// lineOf returns the line (1-based) holding byte offset off.
func (f *fileText) lineOf(off int) int {
	if off >= len(f.src) {
		return f.numLines()
	}
	return sort.Search(len(f.lines)-1, func(i int) bool { return f.lines[i+1] > off }) + 1
}

// nodeEndLine returns the last line that node n's own text reaches: the closing quote of a quoted
// scalar, the closing bracket of a flow collection, or the end of its last child.
func (f *fileText) nodeEndLine(n *yaml.Node) int {
	switch n.Kind {
	case yaml.ScalarNode:
		if e := f.scalarEnd(n); e > 0 {
			return f.lineOf(e - 1)
		}
		return n.Line
	case yaml.MappingNode, yaml.SequenceNode:
		last := n.Line
		for _, c := range n.Content {
			last = max(last, f.nodeEndLine(c))
		}
		if n.Style&yaml.FlowStyle != 0 {
			if e := f.flowEnd(n); e > 0 {
				last = max(last, f.lineOf(e-1))
			}
		}
		return last
	}
	return n.Line
}

// flowEnd returns the offset just after the closing bracket of flow collection n, or -1.
func (f *fileText) flowEnd(n *yaml.Node) int {
	from := f.offset(n.Line, n.Column) + 1
	for _, c := range n.Content {
		if e := f.nodeEnd(c); e > from {
			from = e
		} else if o := f.offset(c.Line, c.Column); o > from {
			from = o
		}
	}
	for i := from; i < len(f.src); i++ {
		switch f.src[i] {
		case '}', ']':
			return i + 1
		case '#':
			for i < len(f.src) && f.src[i] != '\n' {
				i++
			}
		}
	}
	return -1
}

// entryEndLine is the last line of the block-mapping entry k: v, counting both the lines indented
// under it and any quoted or flow text of v that runs past them.
func (f *fileText) entryEndLine(k, v *yaml.Node) int {
	return max(f.entryLastLine(k), f.nodeEndLine(v))
}

// headCommentStart returns the first line of the comment lines directly above line l at the same
// indentation (no blank line between), or l when there are none.
func (f *fileText) headCommentStart(l, indent int) int {
	first := l
	for p := l - 1; p >= 1; p-- {
		s := f.line(p)
		if !strings.HasPrefix(strings.TrimSpace(s), "#") || f.indentOf(p) != indent {
			break
		}
		first = p
	}
	return first
}

// detectIndent is the indentation step the file uses for nested block mappings, 2 if none.
func (f *fileText) detectIndent() int {
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		v := f.root.Content[i+1]
		if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
			if step := v.Content[0].Column - f.root.Content[i].Column; step > 0 {
				return step
			}
		}
	}
	return 2
}

// lineBreak is the file's line ending.
func (f *fileText) lineBreak() string {
	if bytes.Contains(f.src, []byte("\r\n")) {
		return "\r\n"
	}
	return "\n"
}

func mapEntry(m *yaml.Node, key string) (k, v *yaml.Node, i int) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1], i
		}
	}
	return nil, nil, -1
}

// scalarEnd returns the byte offset just after a scalar's text (its tag, if any, included), or -1 when
// the scalar is not one Edit replaces in place (block scalars, multi-line plain values, empty values).
func (f *fileText) scalarEnd(n *yaml.Node) int {
	if n.Line < 1 || n.Line > f.numLines() {
		return -1
	}
	start := f.offset(n.Line, n.Column)
	lineEnd := f.lines[n.Line]
	if n.Style&yaml.TaggedStyle != 0 {
		// The node's position is its tag's: the value follows the tag and a space, on the same line.
		i := start
		for i < lineEnd && f.src[i] != ' ' && f.src[i] != '\t' && f.src[i] != '\n' && f.src[i] != '\r' {
			i++
		}
		for i < lineEnd && (f.src[i] == ' ' || f.src[i] == '\t') {
			i++
		}
		if i >= lineEnd || f.src[i] == '\n' || f.src[i] == '\r' {
			return -1
		}
		start = i
	}
	text := f.src[start:lineEnd]
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		text = f.src[start:] // a quoted scalar may run over several lines
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if len(text) == 0 || text[0] != '"' {
			return -1
		}
		for i := 1; i < len(text); i++ {
			switch text[i] {
			case '\\':
				i++
			case '"':
				return start + i + 1
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		if len(text) == 0 || text[0] != '\'' {
			return -1
		}
		for i := 1; i < len(text); i++ {
			if text[i] == '\'' {
				if i+1 < len(text) && text[i+1] == '\'' {
					i++
					continue
				}
				return start + i + 1
			}
		}
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return -1
	default:
		if n.Value == "" {
			// An implicit null has no text of its own to replace; callers rewrite the entry.
			return -1
		}
		if bytes.HasPrefix(text, []byte(n.Value)) {
			return start + len(n.Value)
		}
	}
	return -1
}

// nodeEnd returns the offset just after the text of a scalar or a flow collection inside a flow
// collection, or -1.
func (f *fileText) nodeEnd(n *yaml.Node) int {
	switch n.Kind {
	case yaml.ScalarNode:
		if end := f.scalarEnd(n); end >= 0 || n.Style != 0 || n.Value == "" {
			return end
		}
		return f.flowPlainEnd(n)
	case yaml.MappingNode, yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 {
			return f.flowEnd(n)
		}
	}
	return -1
}

// flowPlainEnd returns the offset just after a plain scalar in a flow collection that runs over
// several lines: it ends before a flow indicator, a ": " or a " #", less the spaces before them.
func (f *fileText) flowPlainEnd(n *yaml.Node) int {
	start := f.offset(n.Line, n.Column)
	end := start
	for i := start; i < len(f.src); i++ {
		c := f.src[i]
		if c == ',' || c == '[' || c == ']' || c == '{' || c == '}' ||
			(c == ':' && (i+1 == len(f.src) || strings.IndexByte(" \t\r\n,[]{}", f.src[i+1]) >= 0)) ||
			(c == '#' && i > start && strings.IndexByte(" \t\r\n", f.src[i-1]) >= 0) {
			break
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			end = i + 1
		}
	}
	if end == start {
		return -1
	}
	return end
}

// flowEntryEnd returns the offset just after entry i (the index of its key) of flow mapping m: the end
// of its value; for an empty value, the end of its tag (as in "key: !") or of the key and its colon.
func (f *fileText) flowEntryEnd(m *yaml.Node, i int) int {
	k, v := m.Content[i], m.Content[i+1]
	if v.Kind != yaml.ScalarNode || v.Value != "" || v.Style&^yaml.TaggedStyle != 0 {
		return f.nodeEnd(v)
	}
	end := f.scalarEnd(k)
	if end < 0 {
		return -1
	}
	j := end
	for j < len(f.src) && (f.src[j] == ' ' || f.src[j] == '\t') {
		j++
	}
	if j < len(f.src) && f.src[j] == ':' {
		end = j + 1
	}
	if v.Line >= 1 && v.Line <= f.numLines() {
		// yaml.v3 puts an empty value at its tag, or at the token after it (a comma or a brace).
		t := f.offset(v.Line, v.Column)
		for t < len(f.src) && strings.IndexByte(" \t\r\n,]}", f.src[t]) < 0 {
			t++
		}
		end = max(end, t)
	}
	return end
}

// flowDeleteSpan returns the bytes to remove to drop entry i (the index of its key) of flow mapping m,
// with one of the commas around it.
func (f *fileText) flowDeleteSpan(m *yaml.Node, i int) (int, int, error) {
	k := m.Content[i]
	keyStart := f.offset(k.Line, k.Column)
	switch {
	case len(m.Content) == 2:
		if end := f.flowEntryEnd(m, i); end > keyStart {
			// The only entry takes a trailing comma with it: {a: 1,} becomes {} (found by FuzzEdit).
			j := end
			for j < len(f.src) && strings.IndexByte(" \t\r\n", f.src[j]) >= 0 {
				j++
			}
			if j < len(f.src) && f.src[j] == ',' {
				end = j + 1
			}
			return keyStart, end, nil
		}
	case i+2 < len(m.Content):
		next := m.Content[i+2]
		if to := f.offset(next.Line, next.Column); to > keyStart {
			return keyStart, to, nil
		}
	default:
		from, to := f.flowEntryEnd(m, i-2), f.flowEntryEnd(m, i)
		if from >= 0 && to > from {
			return from, to, nil
		}
	}
	return 0, 0, fmt.Errorf("cannot remove %s from the flow mapping at line %d", k.Value, m.Line)
}

// flowInsertion finds where new entries of flow mapping m go (after its last entry, or inside the empty
// braces) and renders them: on a line of their own when the entries stand one per line, as in JSON.
func (f *fileText) flowInsertion(m *yaml.Node, entries []string) (int, string, error) {
	if len(m.Content) == 0 {
		open := f.offset(m.Line, m.Column)
		i := bytes.IndexByte(f.src[open:], '{')
		if i < 0 {
			return 0, "", fmt.Errorf("cannot add %s to the flow mapping at line %d", entries[0], m.Line)
		}
		return open + i + 1, strings.Join(entries, ", "), nil
	}
	last := len(m.Content) - 2
	end := f.flowEntryEnd(m, last)
	if end < 0 {
		return 0, "", fmt.Errorf("cannot add %s to the flow mapping at line %d", entries[0], m.Line)
	}
	k := m.Content[last]
	line := f.line(k.Line)
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	if k.Line > m.Line && len(indent) == f.offset(k.Line, k.Column)-f.lines[k.Line-1] {
		sep := "," + f.lineBreak() + indent
		return end, sep + strings.Join(entries, sep), nil
	}
	return end, ", " + strings.Join(entries, ", "), nil
}

// jsonKeys reports whether mapping m writes its keys in double quotes, as JSON does: new keys follow.
func jsonKeys(m *yaml.Node) bool {
	return len(m.Content) > 0 && m.Content[0].Style&yaml.DoubleQuotedStyle != 0
}

// field is one key a mapping should hold after an edit.
type field struct {
	key  string
	text string // the rendered scalar
	// json is the scalar as JSON writes it (strings in double quotes), for a file written as JSON.
	json string
	// omit drops the key (when present with a different value) or leaves it out (when absent).
	omit bool
	// same reports whether an existing value already means what text means; the line then stays.
	same func(old *yaml.Node) bool
}

// entryText renders fd as a new entry of mapping m, in m's key style.
func entryText(m *yaml.Node, fd field) string {
	if jsonKeys(m) {
		return strconv.Quote(fd.key) + ": " + fd.json
	}
	return fd.key + ": " + fd.text
}

// setFields makes mapping m hold fields, touching only the entries that differ. It returns the new
// bytes, and whether it made every change; a flow mapping may need several passes (the caller
// re-loads in between), as it makes at most one structural change (a removal or an addition) a pass.
func (f *fileText) setFields(m *yaml.Node, fields []field) ([]byte, bool, error) {
	type splice struct {
		from, to int
		text     string
	}
	var edits []splice
	flow := m.Style&yaml.FlowStyle != 0
	var inserts []string
	done := true
	structural := false // a flow removal is planned this pass
	for _, fd := range fields {
		k, v, i := mapEntry(m, fd.key)
		switch {
		case k == nil && fd.omit:
		case k == nil:
			inserts = append(inserts, entryText(m, fd))
		case fd.same(v):
		case fd.omit && flow:
			if structural {
				done = false
				continue
			}
			from, to, err := f.flowDeleteSpan(m, i)
			if err != nil {
				return nil, false, err
			}
			edits = append(edits, splice{from, to, ""})
			structural = true
		case fd.omit:
			first := f.offset(k.Line, 1)
			last := f.lines[f.entryEndLine(k, v)]
			edits = append(edits, splice{first, last, ""})
		default:
			end := -1
			if v.Kind == yaml.ScalarNode {
				end = f.scalarEnd(v)
			}
			if end < 0 {
				if flow {
					// Remove the entry this pass; the next pass adds it anew.
					if structural {
						done = false
						continue
					}
					from, to, err := f.flowDeleteSpan(m, i)
					if err != nil {
						return nil, false, err
					}
					edits = append(edits, splice{from, to, ""})
					structural, done = true, false
					continue
				}
				// Replace the whole entry with a one-line one, keeping its key's indentation.
				from := f.offset(k.Line, k.Column)
				to := f.lines[f.entryEndLine(k, v)]
				edits = append(edits, splice{from, to, fd.key + ": " + fd.text + f.lineBreak()})
				continue
			}
			text := fd.text
			if v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && !strings.HasPrefix(text, "\"") && !strings.HasPrefix(text, "'") && isPlainString(text) {
				text = requote(text, v.Style)
			}
			from := f.offset(v.Line, v.Column)
			text, end = f.alignComment(from, end, text)
			edits = append(edits, splice{from, end, text})
		}
	}
	if len(inserts) > 0 {
		if structural {
			done = false
		} else {
			at, text, err := f.insertion(m, inserts)
			if err != nil {
				return nil, false, err
			}
			edits = append(edits, splice{at, at, text})
		}
	}
	// Apply from the back, so earlier offsets stay valid.
	out := f.src
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].from < edits[j].from })
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		if i > 0 && edits[i-1].to > e.from {
			return nil, false, fmt.Errorf("overlapping edits in the mapping at line %d", m.Line)
		}
		next := make([]byte, 0, len(out)+len(e.text))
		next = append(next, out[:e.from]...)
		next = append(next, e.text...)
		out = append(next, out[e.to:]...)
	}
	return out, done, nil
}

// alignComment keeps a trailing comment in its column when a value on the same line changes width:
// it takes the spaces before the comment into the replaced span and pads the new text to match.
func (f *fileText) alignComment(from, end int, text string) (string, int) {
	rest := f.src[end:f.lines[f.lineOf(end)]]
	n := 0
	for n < len(rest) && rest[n] == ' ' {
		n++
	}
	if n == 0 || n == len(rest) || rest[n] != '#' {
		return text, end
	}
	pad := n - (utf8.RuneCountInString(text) - utf8.RuneCount(f.src[from:end]))
	return text + strings.Repeat(" ", max(pad, 1)), end + n
}

// insertion finds where new entries of m go and renders them.
func (f *fileText) insertion(m *yaml.Node, entries []string) (int, string, error) {
	if m.Style&yaml.FlowStyle != 0 {
		return f.flowInsertion(m, entries)
	}
	if len(m.Content) == 0 {
		return 0, "", fmt.Errorf("cannot add to the empty mapping at line %d", m.Line)
	}
	lastKey := m.Content[len(m.Content)-2]
	indent := strings.Repeat(" ", lastKey.Column-1)
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(indent + e + f.lineBreak())
	}
	at := f.lines[f.entryEndLine(lastKey, m.Content[len(m.Content)-1])]
	if at == len(f.src) && len(f.src) > 0 && f.src[len(f.src)-1] != '\n' {
		return at, f.lineBreak() + strings.TrimSuffix(b.String(), f.lineBreak()), nil
	}
	return at, b.String(), nil
}

// deleteTopKey removes a top-level entry: in a block mapping its lines and the comment lines right
// above it, in a flow mapping its text and one comma.
func deleteTopKey(src []byte, key string) ([]byte, error) {
	f, err := load(src)
	if err != nil {
		return nil, err
	}
	k, v, i := mapEntry(f.root, key)
	if k == nil {
		return src, nil
	}
	if f.root.Style&yaml.FlowStyle != 0 {
		from, to, err := f.flowDeleteSpan(f.root, i)
		if err != nil {
			return nil, err
		}
		return f.splice(from, to, ""), nil
	}
	first := f.headCommentStart(k.Line, k.Column-1)
	return f.splice(f.lines[first-1], f.lines[f.entryEndLine(k, v)], ""), nil
}

// documentEnd is where text appended to the root block mapping goes: the end of the file, or the
// start of the line of a document end marker ("..." or a trailing "---") that follows the mapping.
func (f *fileText) documentEnd() int {
	n := len(f.root.Content)
	from := f.entryEndLine(f.root.Content[n-2], f.root.Content[n-1]) + 1
	for l := from; l <= f.numLines(); l++ {
		s := f.line(l)
		for _, marker := range []string{"...", "---"} {
			if rest, ok := strings.CutPrefix(s, marker); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
				return f.lines[l-1]
			}
		}
	}
	return len(f.src)
}

// appendTopBlock adds a new top-level block before the first present entry named in before (a
// comma-separated list), or at the end of the document.
// With flow set, the block is written on one line as a flow mapping, to match a file written that way.
// A file whose root is a flow mapping (JSON) gets a new flow entry after its last one.
func appendTopBlock(src []byte, key string, fields []field, before string, flow bool) ([]byte, error) {
	f, err := load(src)
	if err != nil {
		return nil, err
	}
	if f.root.Style&yaml.FlowStyle != 0 {
		var parts []string
		for _, fd := range fields {
			if !fd.omit {
				parts = append(parts, entryText(f.root, fd))
			}
		}
		name := key
		if jsonKeys(f.root) {
			name = strconv.Quote(key)
		}
		at, text, err := f.flowInsertion(f.root, []string{name + ": {" + strings.Join(parts, ", ") + "}"})
		if err != nil {
			return nil, err
		}
		return f.splice(at, at, text), nil
	}
	step := strings.Repeat(" ", f.detectIndent())
	indent := strings.Repeat(" ", f.root.Content[0].Column-1)
	br := f.lineBreak()
	var b strings.Builder
	if flow {
		var parts []string
		for _, fd := range fields {
			if !fd.omit {
				parts = append(parts, fd.key+": "+fd.text)
			}
		}
		b.WriteString(indent + key + ": {" + strings.Join(parts, ", ") + "}" + br)
	} else {
		b.WriteString(indent + key + ":" + br)
		for _, fd := range fields {
			if !fd.omit {
				b.WriteString(indent + step + fd.key + ": " + fd.text + br)
			}
		}
	}
	for _, name := range strings.Split(before, ",") {
		if k, _, _ := mapEntry(f.root, name); k != nil && name != "" {
			at := f.lines[f.headCommentStart(k.Line, k.Column-1)-1]
			return f.splice(at, at, b.String()), nil
		}
	}
	at := f.documentEnd()
	prefix := ""
	if at > 0 && f.src[at-1] != '\n' {
		prefix = br
	}
	return f.splice(at, at, prefix+b.String()), nil
}

// setBlock makes the top-level mapping key hold fields, adding it (before the entry named before, or
// at the end) when absent.
func setBlock(src []byte, key string, fields []field, before string) ([]byte, error) {
	// A flow mapping takes one structural change a pass; each field needs at most two (remove, add).
	for pass := 0; pass <= 2*len(fields)+1; pass++ {
		f, err := load(src)
		if err != nil {
			return nil, err
		}
		k, v, _ := mapEntry(f.root, key)
		if v == nil {
			return appendTopBlock(src, key, fields, before, false)
		}
		if v.Kind != yaml.MappingNode {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && f.root.Style&yaml.FlowStyle != 0 {
				// {"key", …} or {"key": null, …}: fill the entry where it stands, so no line moves.
				if out, ok := f.fillFlowNull(k, v, fields); ok {
					return out, nil
				}
			}
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				// "key:" with nothing after it: replace the entry with a rendered block.
				out, err := deleteTopKey(src, key)
				if err != nil {
					return nil, err
				}
				return appendTopBlock(out, key, fields, before, false)
			}
			return nil, fmt.Errorf("%s at line %d is not a mapping", key, v.Line)
		}
		if len(v.Content) == 0 && v.Style&yaml.FlowStyle == 0 {
			return nil, fmt.Errorf("%s at line %d is an empty mapping", key, v.Line)
		}
		out, done, err := f.setFields(v, fields)
		if err != nil || done {
			return out, err
		}
		src = out
	}
	return nil, fmt.Errorf("%s: the flow mapping did not settle", key)
}

// fillFlowNull gives the null value of key k in the flow-style root mapping the fields as a flow
// mapping, in place: an explicit null ("null", "~") is replaced, an implicit one ("key" or "key:") gets
// the mapping after the key. ok is false when the text is not one of those shapes.
func (f *fileText) fillFlowNull(k, v *yaml.Node, fields []field) ([]byte, bool) {
	var parts []string
	for _, fd := range fields {
		if !fd.omit {
			parts = append(parts, entryText(f.root, fd))
		}
	}
	value := "{" + strings.Join(parts, ", ") + "}"
	if v.Value != "" {
		from := f.offset(v.Line, v.Column)
		to := f.scalarEnd(v)
		if from < 0 || to <= from {
			return nil, false
		}
		return f.splice(from, to, value), true
	}
	at := f.scalarEnd(k)
	if at < 0 {
		return nil, false
	}
	i := at
	for i < len(f.src) && (f.src[i] == ' ' || f.src[i] == '\t') {
		i++
	}
	if i < len(f.src) && f.src[i] == ':' {
		return f.splice(i+1, i+1, " "+value), true
	}
	return f.splice(at, at, ": "+value), true
}

func setTraffic(src []byte, weight, shadow *int) ([]byte, error) {
	var fields []field
	if weight != nil {
		fields = append(fields, intField("weight", *weight, false))
	}
	if shadow != nil {
		fields = append(fields, intField("shadow", *shadow, false))
	}
	// A new traffic block goes where the contract's layout has it: after the variants.
	return setBlock(src, "traffic", fields, "assignment,schedule,stages,metrics,analysis,promotion,rollback,previous,status")
}

func setStatus(src []byte, st *Status) ([]byte, error) {
	fields := []field{
		stringField("phase", string(st.Phase), false),
		intField("stage", st.Stage, false),
		timeField("stageStartedAt", st.StageStartedAt),
		stringField("canary", st.Canary, true),
		filesField("files", st.Files),
		stringField("message", st.Message, true),
		intField("metricsErrors", st.MetricsErrors, true),
		timeField("metricsFailingSince", st.MetricsFailingSince),
		timeField("sampleRatioMismatchSince", st.SampleRatioMismatchSince),
		timeField("stuckSince", st.StuckSince),
		timeField("promotedAt", st.PromotedAt),
	}
	return setBlock(src, "status", fields, "")
}

func variantFields(v Variant) []field {
	return []field{stringField("model", v.Model, false), stringField("prompt", v.Prompt, true)}
}

func promote(src []byte) ([]byte, error) {
	f, err := load(src)
	if err != nil {
		return nil, err
	}
	var stable, canary Variant
	_, sv, _ := mapEntry(f.root, "stable")
	_, cv, _ := mapEntry(f.root, "canary")
	if cv == nil {
		return nil, errors.New("promote: the spec has no canary")
	}
	if sv == nil || sv.Decode(&stable) != nil || cv.Decode(&canary) != nil {
		return nil, errors.New("promote: stable and canary must be mappings of model and prompt")
	}
	// previous takes the old stable: in place when it exists, else where the canary block stood.
	out := src
	if _, pv, _ := mapEntry(f.root, "previous"); pv != nil {
		if out, err = setBlock(out, "previous", variantFields(stable), ""); err != nil {
			return nil, err
		}
		if out, err = deleteTopKey(out, "canary"); err != nil {
			return nil, err
		}
	} else {
		if out, err = appendTopBlock(out, "previous", variantFields(stable), "canary", sv.Style&yaml.FlowStyle != 0); err != nil {
			return nil, err
		}
		if out, err = deleteTopKey(out, "canary"); err != nil {
			return nil, err
		}
	}
	return setBlock(out, "stable", variantFields(canary), "")
}

func intField(key string, v int, omitZero bool) field {
	return field{key: key, text: strconv.Itoa(v), json: strconv.Itoa(v), omit: omitZero && v == 0, same: func(old *yaml.Node) bool {
		var o int
		return old.Tag == "!!int" && old.Decode(&o) == nil && o == v
	}}
}

func stringField(key, v string, omitEmpty bool) field {
	return field{key: key, text: renderString(v), json: jsonString(v), omit: omitEmpty && v == "", same: func(old *yaml.Node) bool {
		return old.Kind == yaml.ScalarNode && old.Value == v && (old.Tag != "!!null" || v == "")
	}}
}

// filesField writes a path → hash map as one flow mapping, keys in order, every value quoted so that a
// hash of digits reads back as a string.
func filesField(key string, files map[string]string) field {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var text, js []string
	for _, p := range paths {
		text = append(text, renderString(p)+": "+requote(files[p], yaml.DoubleQuotedStyle))
		js = append(js, jsonString(p)+": "+jsonString(files[p]))
	}
	return field{key: key, text: "{" + strings.Join(text, ", ") + "}", json: "{" + strings.Join(js, ", ") + "}", omit: len(files) == 0,
		same: func(old *yaml.Node) bool {
			var o map[string]string
			return old.Kind == yaml.MappingNode && old.Decode(&o) == nil && len(o) == len(files) && reflect.DeepEqual(o, files)
		}}
}

func timeField(key string, v time.Time) field {
	t := v.UTC().Format(time.RFC3339Nano)
	return field{key: key, text: t, json: strconv.Quote(t), omit: v.IsZero(), same: func(old *yaml.Node) bool {
		var o time.Time
		return old.Decode(&o) == nil && o.Equal(v)
	}}
}

// renderString writes s as a YAML scalar: plain when YAML would read it back as the same string,
// double-quoted otherwise.
func renderString(s string) string {
	if isPlainString(s) {
		return s
	}
	return requote(s, yaml.DoubleQuotedStyle)
}

// jsonString writes s as a JSON string, which YAML reads back as s: for files written as JSON.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return requote(s, yaml.DoubleQuotedStyle)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// isPlainString reports whether s, written plain, reads back as the string s.
func isPlainString(s string) bool {
	if s == "" || strings.ContainsAny(s, "\n\r\t\"'#:{}[],&*!|>%@`") || s != strings.TrimSpace(s) || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "?") {
		return false
	}
	var n yaml.Node
	if yaml.Unmarshal([]byte("v: "+s), &n) != nil || len(n.Content) == 0 || len(n.Content[0].Content) < 2 {
		return false
	}
	v := n.Content[0].Content[1]
	return v.Tag == "!!str" && v.Value == s
}

// requote writes s in the given quoted style.
func requote(s string, style yaml.Style) string {
	if style&yaml.SingleQuotedStyle != 0 && !strings.ContainsAny(s, "\n\r") {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	b, err := yaml.Marshal(n)
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(b), "\n")
}
