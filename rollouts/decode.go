package rollouts

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize caps a spec file. A rollout spec is a page of YAML; anything bigger is a mistake or an
// attack, and is refused before it is parsed.
const MaxFileSize = 1 << 20

// specDecoder turns a yaml.v3 node tree into a Spec by walking the Go types by reflection, so that
// every type error and every unknown key is reported at its own line and column, and one mistake
// never hides the next. It remembers the node of every path it decoded ("stages[1].weight"), so the
// semantic checks that follow can point at the offending value too.
type specDecoder struct {
	file     string
	problems []Problem
	values   map[string]*yaml.Node
	keys     map[string]*yaml.Node
	// broken holds the paths whose value had the wrong type, so later checks stay quiet about them.
	broken map[string]bool
	// units holds the `unit` struct tag of every decoded path that has one.
	units map[string]string
}

func newSpecDecoder(file string) *specDecoder {
	return &specDecoder{file: file, values: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}, broken: map[string]bool{}, units: map[string]string{}}
}

// typeErrorAt reports a value of the wrong type at path.
func (d *specDecoder) typeErrorAt(n *yaml.Node, path, format string, args ...any) {
	d.broken[path] = true
	d.errorAt(n, format, args...)
}

// isBroken reports whether path, or a path above it, had a value of the wrong type.
func (d *specDecoder) isBroken(path string) bool {
	for {
		if d.broken[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
}

func (d *specDecoder) errorAt(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Col: col, Message: fmt.Sprintf(format, args...)})
}

// at returns the node decoded at path, falling back to its closest decoded parent, so a problem about
// a missing key points at the mapping that lacks it.
func (d *specDecoder) at(path string) *yaml.Node {
	for {
		if n, ok := d.values[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.values[""]
		}
		path = path[:i]
	}
}

// keyAt returns the key node of path, or the value node when path has no key (a sequence item).
func (d *specDecoder) keyAt(path string) *yaml.Node {
	if n, ok := d.keys[path]; ok {
		return n
	}
	return d.at(path)
}

// The values of the `unit` struct tag of a float64 field.
const (
	// unitRatio: a fraction, written as 0.5 or 50%; a bare number above 1 is refused (see ParseRatio).
	unitRatio = "ratio"
	// unitNumberOrRatio: a plain number, or a percent where the rule's metric is a proportion (max, min).
	unitNumberOrRatio = "number-or-ratio"
)

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	timeType        = reflect.TypeFor[time.Time]()
)

// decode fills v (addressable) from n, recording problems under path.
func (d *specDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.values[path] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicit null leaves the zero value, like an absent key
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.typeErrorAt(n, path, "%s: %v", path, err)
		}
		return
	}
	switch {
	case v.Type() == timeType:
		var t time.Time
		if n.Kind != yaml.ScalarNode || n.Decode(&t) != nil {
			d.typeErrorAt(n, path, "%s: want a time such as 2026-04-16T00:00:00Z, got %s", path, describe(n))
			return
		}
		v.Set(reflect.ValueOf(t))
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.typeErrorAt(n, path, "%s: want a list, got %s", path, describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String:
		if n.Kind != yaml.MappingNode {
			d.typeErrorAt(n, path, "%s: want a mapping, got %s", path, describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, item := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.typeErrorAt(k, path, "%s: want a key, got %s", path, describe(k))
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(item, e, path+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *specDecoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	want := map[reflect.Kind]string{
		reflect.String: "a string", reflect.Int: "a whole number", reflect.Int64: "a whole number",
		reflect.Float64: "a number", reflect.Bool: "true or false",
	}[v.Kind()]
	if want == "" {
		d.errorAt(n, "%s: cannot be decoded (internal: %s)", path, v.Type())
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.typeErrorAt(n, path, "%s: want %s, got %s", path, want, describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		// Numbers and booleans are accepted as strings ("prompt: 3" means the label "3"), as YAML users expect.
		v.SetString(n.Value)
		return
	case reflect.Int, reflect.Int64:
		if n.Tag == "!!int" || n.Tag == "!!float" {
			if _, err := ParseNumber(n.Value); err != nil {
				d.typeErrorAt(n, path, "%s: %v", path, err)
				return
			}
		}
		if n.Tag == "!!int" {
			if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				v.SetInt(i)
				return
			}
		}
		if num, ok := strings.CutSuffix(strings.TrimSpace(n.Value), "%"); ok && n.Tag == "!!str" {
			if _, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64); err == nil {
				d.typeErrorAt(n, path, "%s: write %s without the %%: this field is a whole number of percent", path, strings.TrimSpace(num))
				return
			}
		}
	case reflect.Float64:
		unit := d.units[path]
		if unit != "" && n.Tag == "!!str" && strings.HasSuffix(strings.TrimSpace(n.Value), "%") {
			r, err := ParseRatio(n.Value)
			if err != nil {
				d.typeErrorAt(n, path, "%s: %v", path, err)
				return
			}
			v.SetFloat(float64(r))
			return
		}
		if n.Tag == "!!int" || n.Tag == "!!float" {
			f, err := ParseNumber(n.Value)
			if err == nil && unit == unitRatio && f > 1 {
				err = errAboveOne(n.Value)
			}
			if err != nil {
				d.typeErrorAt(n, path, "%s: %v", path, err)
				return
			}
			v.SetFloat(f)
			return
		}
	case reflect.Bool:
		if n.Tag == "!!bool" {
			var b bool
			if err := n.Decode(&b); err == nil {
				v.SetBool(b)
				return
			}
		}
	}
	d.typeErrorAt(n, path, "%s: want %s, got %s", path, want, describe(n))
}

func (d *specDecoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.typeErrorAt(n, path, "%s: want a mapping, got %s", orRoot(path), describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorAt(k, "%s: want a key, got %s", orRoot(path), describe(k))
			continue
		}
		child := joinPath(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			d.errorAt(k, "%s", unknownKeyMessage(child, k.Value, fieldNames(fields)))
			continue
		}
		if seen[k.Value] {
			d.errorAt(k, "%s: key defined twice", child)
			continue
		}
		seen[k.Value] = true
		d.keys[child] = k
		if unit := v.Type().Field(idx).Tag.Get("unit"); unit != "" {
			d.units[child] = unit
		}
		d.decode(val, v.Field(idx), child)
	}
}

func unknownKeyMessage(path, key string, known []string) string {
	msg := fmt.Sprintf("unknown key `%s`", key)
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		msg = fmt.Sprintf("%s: unknown key `%s`", path[:i], key)
	}
	if s := closest(key, known); s != "" {
		msg += fmt.Sprintf(", did you mean `%s`?", s)
	}
	return msg
}

// yamlFields maps yaml key names to field indexes of a struct type.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = i
	}
	return out
}

func fieldNames(fields map[string]int) []string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// closest returns the known name nearest to s by edit distance (case-insensitive), or "" when none is
// near enough to be a plausible typo.
func closest(s string, known []string) string {
	best, bestDist := "", 1<<30
	for _, k := range known {
		dist := editDistance(strings.ToLower(s), strings.ToLower(k))
		if dist < bestDist {
			best, bestDist = k, dist
		}
	}
	limit := max(2, len(s)/3)
	if bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, over bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "spec"
	}
	return path
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

// errAlias is reported for YAML anchors and aliases: a spec has no use for them, and refusing them
// outright is the simplest defence against alias bombs.
var errAlias = errors.New("YAML anchors and aliases are not allowed in a rollout spec")

// describeTag quotes a tag for a message, cut to a readable length.
func describeTag(tag string) string {
	if len(tag) > 20 {
		tag = tag[:20] + "…"
	}
	return strconv.Quote(tag)
}

// checkNoAliases reports every anchor, alias and custom tag in the tree: a spec needs none of them.
func (d *specDecoder) checkNoAliases(n *yaml.Node) bool {
	ok := true
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			d.errorAt(n, "%v", errAlias)
			ok = false
			return
		}
		if n.Style&yaml.TaggedStyle != 0 && !strings.HasPrefix(n.Tag, "!!") {
			d.errorAt(n, "YAML tag %s is not allowed in a rollout spec", describeTag(n.Tag))
			ok = false
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return ok
}
