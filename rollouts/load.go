package rollouts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Problem is one error or warning about one spec file, at a position in it.
type Problem struct {
	File    string
	Line    int
	Col     int
	Message string
	// Warning marks a lint: reported, but the spec is still used.
	Warning bool
}

// Error formats the problem as path:line:col: message.
func (p Problem) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

// Document is one spec file that parsed and validated: its path, its bytes (for minimal-diff edits) and
// the spec it holds.
type Document struct {
	Path   string
	Source []byte
	Spec   *Spec
}

// Set is what Load found in a folder: every valid rollout, and every problem. A file with an error is
// left out of Documents; the other files are unaffected.
type Set struct {
	Documents []*Document
	Problems  []Problem
}

// Errors returns the problems that are not warnings.
func (s *Set) Errors() []Problem {
	var out []Problem
	for _, p := range s.Problems {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Nearest returns the name of a rollout in the set that name is a plausible typo of, or "".
func (s *Set) Nearest(name string) string {
	names := make([]string, 0, len(s.Documents))
	for _, d := range s.Documents {
		names = append(names, d.Spec.Name)
	}
	return closest(name, names)
}

// Lookup returns the document of the named rollout, or nil.
func (s *Set) Lookup(name string) *Document {
	for _, d := range s.Documents {
		if d.Spec.Name == name {
			return d
		}
	}
	return nil
}

// IsSpecFile reports whether a file name is one Load reads.
func IsSpecFile(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// ErrNoFolder is wrapped by Load's error when the rollouts folder does not exist: a repository with no
// spec yet, or a --dir that names another folder.
var ErrNoFolder = errors.New("no rollouts folder")

// Load reads every spec file directly in dir of fsys, in name order. It fails only when dir itself
// cannot be read; a bad file becomes problems in the Set and never hides the others. fsys is the
// repository's tree: the traffic.routes of each spec are checked in it (CheckRoutes), and the files
// each canary refers to are read from it (ReadReferences).
func Load(fsys fs.FS, dir string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoFolder, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read rollouts folder %s: %w", dir, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	set := &Set{}
	for _, e := range entries {
		if e.IsDir() || !IsSpecFile(e.Name()) {
			continue
		}
		set.addFile(fsys, path.Join(dir, e.Name()))
	}
	set.checkUniqueNames()
	CheckRoutes(set, fsys)
	ReadReferences(set, fsys)
	set.resolveNamespaces()
	return set, nil
}

// LoadPaths reads the named spec files and folders of fsys, as `rollout validate` takes them: a folder
// contributes every spec file directly in it. Names must be unique across everything read. A path that
// cannot be read becomes a problem, like a bad file.
func LoadPaths(fsys fs.FS, paths []string) *Set {
	set := &Set{}
	for _, p := range paths {
		p = path.Clean(p)
		info, err := fs.Stat(fsys, p)
		if err != nil {
			set.Problems = append(set.Problems, Problem{File: p, Line: 1, Col: 1, Message: fmt.Sprintf("cannot read: %v", unwrapPath(err))})
			continue
		}
		if !info.IsDir() {
			set.addFile(fsys, p)
			continue
		}
		entries, err := fs.ReadDir(fsys, p)
		if err != nil {
			set.Problems = append(set.Problems, Problem{File: p, Line: 1, Col: 1, Message: fmt.Sprintf("cannot read folder: %v", unwrapPath(err))})
			continue
		}
		for _, e := range entries {
			if !e.IsDir() && IsSpecFile(e.Name()) {
				set.addFile(fsys, path.Join(p, e.Name()))
			}
		}
	}
	set.checkUniqueNames()
	set.resolveNamespaces()
	return set
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// addFile reads and parses one file into the set, refusing oversized files before reading them.
func (s *Set) addFile(fsys fs.FS, p string) {
	if info, err := fs.Stat(fsys, p); err == nil && info.Size() > MaxFileSize {
		s.Problems = append(s.Problems, Problem{File: p, Line: 1, Col: 1,
			Message: fmt.Sprintf("file is %d bytes; a rollout spec may hold at most %d", info.Size(), MaxFileSize)})
		return
	}
	src, err := fs.ReadFile(fsys, p)
	if err != nil {
		s.Problems = append(s.Problems, Problem{File: p, Line: 1, Col: 1, Message: fmt.Sprintf("cannot read: %v", unwrapPath(err))})
		return
	}
	spec, problems := Parse(p, src)
	s.Problems = append(s.Problems, problems...)
	if spec != nil {
		s.Documents = append(s.Documents, &Document{Path: p, Source: src, Spec: spec})
	}
}

// checkUniqueNames reports every rollout whose name another file also uses, and drops all of them:
// two specs that share a name would fight over one branch and one status, and which one is meant is
// for a human to say.
func (s *Set) checkUniqueNames() {
	byName := map[string][]*Document{}
	for _, d := range s.Documents {
		byName[d.Spec.Name] = append(byName[d.Spec.Name], d)
	}
	kept := s.Documents[:0]
	for _, d := range s.Documents {
		same := byName[d.Spec.Name]
		if len(same) == 1 {
			kept = append(kept, d)
			continue
		}
		var others []string
		for _, o := range same {
			if o != d {
				others = append(others, o.Path)
			}
		}
		line, col := nameLine(d.Source)
		s.Problems = append(s.Problems, Problem{File: d.Path, Line: line, Col: col,
			Message: fmt.Sprintf("name: %q is also the name of %s; names are unique across the folder", d.Spec.Name, strings.Join(others, ", "))})
	}
	s.Documents = kept
	sortProblems(s.Problems)
}

// nameLine finds the position of the name value in a parsed file.
func nameLine(src []byte) (int, int) {
	root, err := parseNode(src)
	if err != nil || root == nil || root.Kind != yaml.MappingNode {
		return 1, 1
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "name" {
			return root.Content[i+1].Line, root.Content[i+1].Column
		}
	}
	return 1, 1
}

// sortProblems orders problems by file, then position, keeping the order of problems at one spot.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Parse reads and validates one spec file. It returns the spec (nil when there is any error) and
// every problem found, each at its line and column. Warnings (lints) are not produced here; see Lint.
func Parse(file string, src []byte) (*Spec, []Problem) {
	spec, problems := parseRaw(file, src)
	if spec != nil {
		applyDefaults(spec)
	}
	return spec, problems
}

// parseRaw is Parse without the defaults: the spec exactly as the file states it.
func parseRaw(file string, src []byte) (*Spec, []Problem) {
	d := newSpecDecoder(file)
	if len(src) > MaxFileSize {
		d.errorAt(nil, "file is %d bytes; a rollout spec may hold at most %d", len(src), MaxFileSize)
		return nil, d.problems
	}
	if p, bad := checkEncoding(file, src); bad {
		return nil, []Problem{p}
	}
	root, err := parseNode(src)
	if err != nil {
		line := 1
		msg := strings.TrimPrefix(yamlLine.ReplaceAllString(err.Error(), ""), "yaml: ")
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			if yamlParserProblems[msg] {
				line++
			}
		}
		d.problems = append(d.problems, Problem{File: file, Line: line, Col: 1, Message: "invalid YAML: " + msg})
		return nil, d.problems
	}
	if root == nil {
		d.errorAt(nil, "empty file: want a rollout spec (apiVersion: %s, kind: %s)", APIVersion, Kind)
		return nil, d.problems
	}
	if !d.checkNoAliases(root) || !d.checkPlainKeys(root, src) {
		return nil, d.problems
	}
	if root.Kind != yaml.MappingNode {
		d.errorAt(root, "spec: want a mapping of apiVersion, kind, name, …, got %s", describe(root))
		return nil, d.problems
	}
	var spec Spec
	d.decode(root, reflect.ValueOf(&spec).Elem(), "")
	d.validate(&spec)
	sortProblems(d.problems)
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return &spec, nil
}

// checkEncoding refuses what YAML readers disagree about, before the file is parsed: a file that is not
// UTF-8, and the line breaks other than \n and \r\n (a lone \r, NEL, LS and PS), which yaml.v3 counts
// as line breaks (YAML 1.1) while YAML 1.2 readers, editors and git diff do not. A file holding one
// could be read differently by the application and by the controller, and Edit could not find its
// lines, so no rollback could land.
func checkEncoding(file string, src []byte) (Problem, bool) {
	if bytes.HasPrefix(src, []byte{0xFE, 0xFF}) || bytes.HasPrefix(src, []byte{0xFF, 0xFE}) || bytes.HasPrefix(src, []byte{0, 0}) {
		return Problem{File: file, Line: 1, Col: 1, Message: "the file is UTF-16 or UTF-32; save it as UTF-8"}, true
	}
	line, lineStart := 1, 0
	for i := 0; i < len(src); i++ {
		var what string
		switch {
		case src[i] == '\n':
			line, lineStart = line+1, i+1
			continue
		case src[i] == '\r' && (i+1 == len(src) || src[i+1] != '\n'):
			what = "a carriage return (\\r) without a line feed"
		case src[i] == 0xC2 && i+1 < len(src) && src[i+1] == 0x85:
			what = "U+0085 (next line)"
		case src[i] == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && (src[i+2] == 0xA8 || src[i+2] == 0xA9):
			what = "U+2028 (line separator)"
			if src[i+2] == 0xA9 {
				what = "U+2029 (paragraph separator)"
			}
		default:
			continue
		}
		col := utf8.RuneCount(src[lineStart:i]) + 1
		return Problem{File: file, Line: line, Col: col, Message: fmt.Sprintf(
			"line break %s: YAML readers disagree on where its lines start; end lines with \\n or \\r\\n (inside a double-quoted string, write an escape such as \\u2028)", what)}, true
	}
	return Problem{}, false
}

// checkPlainKeys refuses explicit mapping keys ("? key" then ": value"): a spec has no use for them,
// and Edit, which writes "key: value" entries next to the existing ones, would not know where such an
// entry ends. It reports whether there were none.
func (d *specDecoder) checkPlainKeys(root *yaml.Node, src []byte) bool {
	lines := []int{0}
	for i, c := range src {
		if c == '\n' {
			lines = append(lines, i+1)
		}
	}
	ok := true
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Line < 1 || k.Line > len(lines) {
					continue
				}
				off := lines[k.Line-1]
				for c := 1; c < k.Column && off < len(src); c++ {
					_, size := utf8.DecodeRune(src[off:])
					off += size
				}
				j := off - 1
				for j >= 0 && (src[j] == ' ' || src[j] == '\t' || src[j] == '\r' || src[j] == '\n') {
					j--
				}
				if j >= 0 && src[j] == '?' {
					d.errorAt(k, "explicit mapping key (?): write %s: VALUE on one line instead", describe(k))
					ok = false
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return ok
}

// yamlLine finds the line number in a yaml.v3 syntax error.
var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to its scanner). yaml.v3 reports
// the 0-based line of a parser error's mark as is, one line too early, while it does add one for scanner
// errors; these messages tell the two apart.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// parseNode parses exactly one YAML document into its root node; nil for an empty file.
func parseNode(src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		// A trailing "---" opens an empty document, which is harmless.
		if len(extra.Content) > 0 && extra.Content[0].Tag != "!!null" {
			return nil, fmt.Errorf("line %d: a file holds one rollout; found a second YAML document", extra.Content[0].Line)
		}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

func applyDefaults(s *Spec) {
	if s.Analysis.Confidence == 0 {
		s.Analysis.Confidence = DefaultConfidence
	}
	if s.Analysis.AdvanceConfidence == 0 {
		s.Analysis.AdvanceConfidence = DefaultAdvanceConfidence
	}
	if s.Metrics.Schema == "" {
		s.Metrics.Schema = SchemaRollout
	}
	if s.Analysis.OnInconclusive == "" {
		s.Analysis.OnInconclusive = "hold"
	}
	if s.Analysis.OnMetricsError == "" {
		s.Analysis.OnMetricsError = "hold"
	}
	if s.Promotion.Via == "" {
		s.Promotion.Via = "pull-request"
	}
	if s.Rollback.Via == "" {
		s.Rollback.Via = "commit"
	}
	if s.Rollback.KeepPrevious == 0 {
		s.Rollback.KeepPrevious = Duration(DefaultKeepPrevious)
	}
	if s.Assignment.Salt == "" && s.Canary != nil {
		s.Assignment.Salt = s.Name + "-" + s.Canary.Model
	}
}
