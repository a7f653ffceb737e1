// Package growthbook turns rollout specs into a GrowthBook SDK payload, so that an application in any
// language with a GrowthBook SDK that implements hash version 2 (JavaScript/TypeScript, Python, Go,
// Ruby, …) routes each assignment key exactly as rollouts.Assigner and `rollout assign` do.
//
// One feature per rollout, named after it, whose value is {"variant", "model", "prompt"}:
//   - no canary, or weight 0: the stable value, no rules (a rolled-back canary reaches nobody);
//   - otherwise a forced stable rule for the exclude globs, then a forced canary rule for the include
//     globs (globs become anchored $regex conditions on the hash attribute, so exclusion wins), then an
//     experiment rule with hashAttribute = assignment.key, seed = salt, hashVersion 2 and explicit
//     ranges: canary [0, W/100), stable [W/100, 1), which is Hash(salt, key) < W/100 exactly; a rollout
//     with assignment.namespace gets GrowthBook's namespace [name, start, end] of its slice and the
//     range of rollouts.Assigner's CanaryThreshold, so the SDKs keep its canary apart from the others'.
//
// Shadow traffic (mirroring) has no GrowthBook equivalent; Build says so in the feature's description
// and in its warnings. GrowthBook's Python SDK hashes code points where its JavaScript SDK (and
// rollouts.Hash) hash UTF-16 units: for a key or salt with a character beyond U+FFFF, Python may
// disagree. The package does no I/O.
//
// It belongs to the rollouts room: it exports the spec for the applications' SDKs, without I/O.
package growthbook

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rollout-dev/rollout/rollouts"
)

// Payload is the document GrowthBook SDKs load: `new GrowthBook({features})` in JavaScript,
// `GrowthBook(features=…)` in Python.
type Payload struct {
	Features map[string]Feature `json:"features"`
}

// Value is what a rollout's feature evaluates to: the arm and what it runs.
type Value struct {
	Variant string `json:"variant"`
	Model   string `json:"model"`
	Prompt  string `json:"prompt"`
}

// Feature is one rollout as a GrowthBook feature definition.
type Feature struct {
	// Description is not read by the SDKs; it tells a reader what the feature stands for and what it
	// cannot express.
	Description  string `json:"description,omitempty"`
	DefaultValue Value  `json:"defaultValue"`
	Rules        []Rule `json:"rules,omitempty"`
}

// Rule is a GrowthBook feature rule: a forced value under a condition, or an experiment.
type Rule struct {
	ID        string         `json:"id,omitempty"`
	Condition map[string]any `json:"condition,omitempty"`
	Force     *Value         `json:"force,omitempty"`

	Key           string       `json:"key,omitempty"`
	Name          string       `json:"name,omitempty"`
	Variations    []Value      `json:"variations,omitempty"`
	Ranges        [][2]float64 `json:"ranges,omitempty"`
	Meta          []Meta       `json:"meta,omitempty"`
	HashAttribute string       `json:"hashAttribute,omitempty"`
	Seed          string       `json:"seed,omitempty"`
	HashVersion   int          `json:"hashVersion,omitempty"`
	// Namespace is GrowthBook's [name, start, end]: the experiment applies only to keys whose
	// namespace hash falls in [start, end) (rollouts.NamespaceSlice).
	Namespace []any `json:"namespace,omitempty"`
	// DisableStickyBucketing keeps an SDK configured with a sticky-bucket service on the hash, so that
	// a weight change moves exactly the keys `rollout assign` moves.
	DisableStickyBucketing bool `json:"disableStickyBucketing,omitempty"`
}

// Meta names one variation of an experiment rule, as the tracking callback reports it.
type Meta struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// DefaultHashAttribute is the attribute GrowthBook hashes when assignment.key is not set.
const DefaultHashAttribute = "id"

// Build returns the payload of every spec, and one warning per thing GrowthBook cannot express (a
// shadow share). Two specs with the same name are an error: Load already refuses them.
func Build(specs []*rollouts.Spec) (Payload, []string, error) {
	p := Payload{Features: make(map[string]Feature, len(specs))}
	var warnings []string
	for _, s := range specs {
		if _, dup := p.Features[s.Name]; dup {
			return Payload{}, nil, fmt.Errorf("growthbook: two rollouts named %q", s.Name)
		}
		f, warn, err := FeatureOf(s)
		if err != nil {
			return Payload{}, nil, err
		}
		p.Features[s.Name] = f
		warnings = append(warnings, warn...)
	}
	sort.Strings(warnings)
	return p, warnings, nil
}

// FeatureOf returns the feature of one spec and its warnings. It fails only for a glob that no
// regular expression both JavaScript and Python read alike can express (a character class spanning
// thousands of characters outside the Basic Multilingual Plane).
func FeatureOf(s *rollouts.Spec) (Feature, []string, error) {
	stable := Value{Variant: string(rollouts.StableArm), Model: s.Stable.Model, Prompt: s.Stable.Prompt}
	f := Feature{DefaultValue: stable}
	attr := s.Assignment.Key
	if attr == "" {
		attr = DefaultHashAttribute
	}
	desc := fmt.Sprintf("rollout %s: stable %s", s.Name, s.Stable.Model)
	var warnings []string
	if s.Canary == nil || s.Traffic.Weight <= 0 {
		f.Description = desc + "; no canary traffic"
		return f, nil, nil
	}
	canary := Value{Variant: string(rollouts.CanaryArm), Model: s.Canary.Model, Prompt: s.Canary.Prompt}
	desc = fmt.Sprintf("rollout %s: %d%% of %s to canary %s, sticky by GrowthBook hash v2", s.Name, s.Traffic.Weight, attr, s.Canary.Model)
	if s.Traffic.Shadow > 0 {
		note := fmt.Sprintf("traffic.shadow %d%% is not expressed: GrowthBook cannot mirror requests, so an application that shadows must draw it itself", s.Traffic.Shadow)
		desc += "; " + note
		warnings = append(warnings, fmt.Sprintf("rollout %s: %s", s.Name, note))
	}
	f.Description = desc
	if strings.ContainsFunc(s.Assignment.Salt, func(r rune) bool { return r > 0xFFFF }) {
		warnings = append(warnings, fmt.Sprintf("rollout %s: assignment.salt holds a character beyond U+FFFF; GrowthBook's Python SDK hashes it differently from rollout assign and the JavaScript SDK", s.Name))
	}
	if len(s.Assignment.Exclude) > 0 {
		re, err := GlobsRegex(s.Assignment.Exclude)
		if err != nil {
			return Feature{}, nil, fmt.Errorf("rollout %s: assignment.exclude: %w", s.Name, err)
		}
		v := stable
		f.Rules = append(f.Rules, Rule{ID: s.Name + "-exclude", Condition: map[string]any{attr: map[string]string{"$regex": re}}, Force: &v})
	}
	if len(s.Assignment.Include) > 0 {
		re, err := GlobsRegex(s.Assignment.Include)
		if err != nil {
			return Feature{}, nil, fmt.Errorf("rollout %s: assignment.include: %w", s.Name, err)
		}
		v := canary
		f.Rules = append(f.Rules, Rule{ID: s.Name + "-include", Condition: map[string]any{attr: map[string]string{"$regex": re}}, Force: &v})
	}
	// GrowthBook skips an experiment for an empty hash attribute; rollouts hashes "" like any key.
	if c := s.Choose(""); c.Reason == "hash" && c.Arm == rollouts.CanaryArm {
		v := canary
		f.Rules = append(f.Rules, Rule{ID: s.Name + "-empty-key", Condition: map[string]any{attr: ""}, Force: &v})
	}
	w := s.Assigner().CanaryThreshold()
	var namespace []any
	if ns, ok := s.Namespace(); ok {
		namespace = []any{ns.Name, ns.Start, ns.End}
		f.Description += fmt.Sprintf("; namespace %s [%g, %g): no key of it is in another canary of the namespace", ns.Name, ns.Start, ns.End)
	}
	f.Rules = append(f.Rules, Rule{
		ID:            s.Name + "-split",
		Key:           s.Name,
		Name:          "rollout " + s.Name,
		Variations:    []Value{canary, stable},
		Ranges:        [][2]float64{{0, w}, {w, 1}},
		Meta:          []Meta{{Key: "canary", Name: "canary"}, {Key: "stable", Name: "stable"}},
		HashAttribute: attr,
		Seed:          s.Assignment.Salt,
		HashVersion:   2,
		Namespace:     namespace,

		DisableStickyBucketing: true,
	})
	return f, warnings, nil
}
