package rollouts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

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

// Load reads every spec file directly in dir of fsys, in name order.
func Load(fsys fs.FS, dir string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read rollouts folder %s: %w", dir, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	set := &Set{}
	for _, e := range entries {
		if e.IsDir() || !IsSpecFile(e.Name()) {
			continue
		}
		p := path.Join(dir, e.Name())
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			set.Problems = append(set.Problems, Problem{File: p, Line: 1, Col: 1, Message: err.Error()})
			continue
		}
		spec, problems := Parse(p, src)
		set.Problems = append(set.Problems, problems...)
		if spec != nil {
			set.Documents = append(set.Documents, &Document{Path: p, Source: src, Spec: spec})
		}
	}
	return set, nil
}

// Parse reads and validates one spec file. It returns the spec (nil when there is any error) and
// every problem found.
func Parse(file string, src []byte) (*Spec, []Problem) {
	var spec Spec
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var ps []Problem
			for _, m := range te.Errors {
				ps = append(ps, Problem{File: file, Line: 1, Col: 1, Message: m})
			}
			return nil, ps
		}
		return nil, []Problem{{File: file, Line: 1, Col: 1, Message: err.Error()}}
	}
	applyDefaults(&spec)
	return &spec, nil
}

func applyDefaults(s *Spec) {
	if s.Analysis.Confidence == 0 {
		s.Analysis.Confidence = DefaultConfidence
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
