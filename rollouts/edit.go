package rollouts

import (
	"bytes"
	"errors"
	"fmt"
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
		if !reflect.DeepEqual(normalizeTimes(*got), normalizeTimes(want)) {
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
	root, err := parseNode(src)
	if err != nil {
		return nil, err
	}
	if root == nil || root.Kind != yaml.MappingNode || root.Style&yaml.FlowStyle != 0 {
		return nil, errors.New("the file is not a block mapping")
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
		if trimmed == "" {
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
		if e := f.scalarEnd(c); e > from {
			from = e
		} else if c.Kind != yaml.ScalarNode {
			if e := f.flowEnd(c); e > from {
				from = e
			}
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

// scalarEnd returns the byte offset just after a single-line scalar, or -1 when the scalar is not one
// Edit replaces in place (block scalars, multi-line values).
func (f *fileText) scalarEnd(n *yaml.Node) int {
	if n.Style&yaml.TaggedStyle != 0 {
		return -1 // the node's position is its tag's; leave tagged values alone
	}
	start := f.offset(n.Line, n.Column)
	text := f.src[start:f.lines[n.Line]]
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		text = f.src[start:] // a quoted scalar may run over several lines
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		for i := 1; i < len(text); i++ {
			switch text[i] {
			case '\\':
				i++
			case '"':
				return start + i + 1
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
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
		if n.Tag == "!!null" && n.Value == "" {
			// An implicit null has no text of its own to replace; callers rewrite the entry.
			return -1
		}
		if bytes.HasPrefix(text, []byte(n.Value)) {
			return start + len(n.Value)
		}
	}
	return -1
}

// field is one key a mapping should hold after an edit.
type field struct {
	key  string
	text string // the rendered scalar
	// omit drops the key (when present with a different value) or leaves it out (when absent).
	omit bool
	// same reports whether an existing value already means what text means; the line then stays.
	same func(old *yaml.Node) bool
}

// setFields makes mapping m hold fields, touching only the entries that differ. It returns the new
// bytes; the caller re-loads before the next edit.
func (f *fileText) setFields(m *yaml.Node, fields []field) ([]byte, error) {
	type splice struct {
		from, to int
		text     string
	}
	var edits []splice
	flow := m.Style&yaml.FlowStyle != 0
	var inserts []string
	for _, fd := range fields {
		k, v, _ := mapEntry(m, fd.key)
		switch {
		case k == nil && fd.omit:
		case k == nil:
			inserts = append(inserts, fd.key+": "+fd.text)
		case v.Kind == yaml.ScalarNode && fd.same(v):
		case fd.omit && flow:
			return f.rerenderFlow(m, fields)
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
					return f.rerenderFlow(m, fields)
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
		at, text, err := f.insertion(m, inserts)
		if err != nil {
			return nil, err
		}
		edits = append(edits, splice{at, at, text})
	}
	// Apply from the back, so earlier offsets stay valid.
	out := f.src
	sort.Slice(edits, func(i, j int) bool { return edits[i].from < edits[j].from })
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		next := make([]byte, 0, len(out)+len(e.text))
		next = append(next, out[:e.from]...)
		next = append(next, e.text...)
		out = append(next, out[e.to:]...)
	}
	return out, nil
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
		if len(m.Content) == 0 {
			return f.offset(m.Line, m.Column) + 1, strings.Join(entries, ", "), nil
		}
		last := m.Content[len(m.Content)-1]
		end := -1
		if last.Kind == yaml.ScalarNode {
			end = f.scalarEnd(last)
		}
		if end < 0 {
			return 0, "", fmt.Errorf("cannot add %s to the flow mapping at line %d", entries[0], m.Line)
		}
		return end, ", " + strings.Join(entries, ", "), nil
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

// rerenderFlow rewrites a single-line flow mapping as a whole, keeping its other entries' text. It is
// the fallback for removing a key from a flow mapping.
func (f *fileText) rerenderFlow(m *yaml.Node, fields []field) ([]byte, error) {
	start := f.offset(m.Line, m.Column)
	if !singleLineFlow(f, m) {
		return nil, fmt.Errorf("cannot rewrite the multi-line flow mapping at line %d", m.Line)
	}
	// The closing brace follows the last entry's text, which may itself hold a quoted "}".
	from := start
	for _, c := range m.Content {
		if e := f.scalarEnd(c); e > from {
			from = e
		} else if o := f.offset(c.Line, c.Column); o > from {
			from = o
		}
	}
	end := bytes.IndexByte(f.src[from:f.lines[m.Line]], '}')
	if end >= 0 {
		end += from - start
	}
	if end < 0 {
		return nil, fmt.Errorf("cannot rewrite the multi-line flow mapping at line %d", m.Line)
	}
	var parts []string
	done := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		fd, ok := findField(fields, k.Value)
		switch {
		case !ok:
			parts = append(parts, k.Value+": "+f.valueText(v))
		case fd.omit && !fd.same(v):
		case fd.same(v):
			parts = append(parts, k.Value+": "+f.valueText(v))
		default:
			parts = append(parts, k.Value+": "+fd.text)
		}
		done[k.Value] = true
	}
	for _, fd := range fields {
		if !done[fd.key] && !fd.omit {
			parts = append(parts, fd.key+": "+fd.text)
		}
	}
	return f.splice(start, start+end+1, "{"+strings.Join(parts, ", ")+"}"), nil
}

func singleLineFlow(f *fileText, m *yaml.Node) bool {
	for _, c := range m.Content {
		if c.Kind != yaml.ScalarNode || c.Line != m.Line || (f.scalarEnd(c) < 0 && !implicitNull(c)) {
			return false
		}
	}
	return true
}

func implicitNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == ""
}

// valueText is the source text of a single-line scalar, "" for an implicit null.
func (f *fileText) valueText(v *yaml.Node) string {
	end := f.scalarEnd(v)
	if end < 0 {
		return ""
	}
	return string(f.src[f.offset(v.Line, v.Column):end])
}

func findField(fields []field, key string) (field, bool) {
	for _, fd := range fields {
		if fd.key == key {
			return fd, true
		}
	}
	return field{}, false
}

// deleteTopKey removes a top-level entry, its lines and the comment lines right above it.
func deleteTopKey(src []byte, key string) ([]byte, error) {
	f, err := load(src)
	if err != nil {
		return nil, err
	}
	k, v, _ := mapEntry(f.root, key)
	if k == nil {
		return src, nil
	}
	first := f.headCommentStart(k.Line, k.Column-1)
	return f.splice(f.lines[first-1], f.lines[f.entryEndLine(k, v)], ""), nil
}

// appendTopBlock adds a new top-level block before the first present entry named in before (a
// comma-separated list), or at the end of the file.
// With flow set, the block is written on one line as a flow mapping, to match a file written that way.
func appendTopBlock(src []byte, key string, fields []field, before string, flow bool) ([]byte, error) {
	f, err := load(src)
	if err != nil {
		return nil, err
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
	at := len(src)
	prefix := ""
	if at > 0 && src[at-1] != '\n' {
		prefix = br
	}
	return f.splice(at, at, prefix+b.String()), nil
}

// setBlock makes the top-level mapping key hold fields, adding it (before the entry named before, or
// at the end) when absent.
func setBlock(src []byte, key string, fields []field, before string) ([]byte, error) {
	f, err := load(src)
	if err != nil {
		return nil, err
	}
	_, v, _ := mapEntry(f.root, key)
	if v == nil {
		return appendTopBlock(src, key, fields, before, false)
	}
	if v.Kind != yaml.MappingNode {
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
	return f.setFields(v, fields)
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
		stringField("message", st.Message, true),
		intField("metricsErrors", st.MetricsErrors, true),
		timeField("metricsFailingSince", st.MetricsFailingSince),
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
	return field{key: key, text: strconv.Itoa(v), omit: omitZero && v == 0, same: func(old *yaml.Node) bool {
		var o int
		return old.Tag == "!!int" && old.Decode(&o) == nil && o == v
	}}
}

func stringField(key, v string, omitEmpty bool) field {
	return field{key: key, text: renderString(v), omit: omitEmpty && v == "", same: func(old *yaml.Node) bool {
		return old.Kind == yaml.ScalarNode && old.Value == v && (old.Tag != "!!null" || v == "")
	}}
}

func timeField(key string, v time.Time) field {
	return field{key: key, text: v.UTC().Format(time.RFC3339Nano), omit: v.IsZero(), same: func(old *yaml.Node) bool {
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
