package rollouts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Routes: the gateway configs listed in traffic.routes carry the same split as traffic.weight, and are
// edited in the same commit as the spec, by the same minimal-diff primitives as Edit: only the weight
// lines change (a LiteLLM entry without a weight gets one line added), comments, key order and
// quoting stay.
//
// A litellm: route is a LiteLLM proxy config. The model_list entries whose litellm_params.model names
// the stable or the canary model (with or without a provider prefix: "anthropic/claude-x" and
// "claude-x" are the same model; two prefixes must agree) get litellm_params.weight. With one entry
// per arm the weights are 100-W and W; with ns stable and nc canary entries (the same model in several
// regions), each stable entry gets (100-W)·nc and each canary entry W·ns, so that the canary's share of
// the model group is still exactly W%. Both arms must be in one model_name group: LiteLLM splits a
// request among the deployments of the group it names.
//
// A file: route is any YAML file whose values at the stable and canary paths (dotted keys with [i]
// indexes, such as spec.rules[0].backendRefs[1].weight) are integers: they get 100-W and W.

// ErrRoute is wrapped by every error about a route: a file that is missing or not YAML, a path that
// does not resolve to an integer, a model not found. Nothing is written when one occurs.
var ErrRoute = errors.New("traffic route")

// RoutePath returns the repository path of a route's file.
func (r Route) RoutePath() string {
	if r.LiteLLM != "" {
		return r.LiteLLM
	}
	return r.File
}

// RouteEdits returns the new content of every route file of spec that ch changes: the split of the
// weight ch sets, or 100% to the canary for a promotion (the promoted model then takes all traffic),
// over the models of spec as it is before ch. A change that sets neither changes no route. repo is the
// repository's tree at the commit ch applies to; a file whose weights are already right is left out.
// Any route that cannot be applied fails the whole call, so that no commit lands half-applied.
func RouteEdits(repo fs.FS, spec *Spec, ch Change) (map[string][]byte, error) {
	if len(spec.Traffic.Routes) == 0 || (ch.Weight == nil && !ch.Promote) {
		return nil, nil
	}
	weight := spec.Traffic.Weight
	if ch.Weight != nil {
		weight = *ch.Weight
	}
	if ch.Promote {
		weight = 100
	}
	canaryModel := ""
	if spec.Canary != nil {
		canaryModel = spec.Canary.Model
	} else {
		weight = 0 // the canary block was removed: everything to stable
	}
	before := map[string][]byte{}
	after := map[string][]byte{}
	for i, r := range spec.Traffic.Routes {
		p, err := routeFilePath(repo, r.RoutePath())
		if err != nil {
			return nil, fmt.Errorf("traffic.routes[%d]: %w", i, err)
		}
		src, ok := after[p]
		if !ok {
			if src, err = fs.ReadFile(repo, p); err != nil {
				return nil, fmt.Errorf("%w: traffic.routes[%d]: %s: %w", ErrRoute, i, p, unwrapPath(err))
			}
			before[p] = src
		}
		out, err := EditRoute(p, src, r, spec.Stable.Model, canaryModel, weight)
		if err != nil {
			return nil, fmt.Errorf("traffic.routes[%d]: %w", i, err)
		}
		after[p] = out
	}
	for p, out := range after {
		if bytes.Equal(out, before[p]) {
			delete(after, p)
		}
	}
	return after, nil
}

// EditRoute sets the split of one route in src, the content of the file at name (for messages): the
// canary gets canaryWeight percent. An empty canaryModel means the canary has ended: a LiteLLM route's
// stable entries get 100 and the other entries of their model_name group 0.
func EditRoute(name string, src []byte, r Route, stableModel, canaryModel string, canaryWeight int) ([]byte, error) {
	targets, err := routeTargets(name, src, r, stableModel, canaryModel, canaryWeight)
	if err != nil {
		return nil, err
	}
	out := src
	for _, t := range targets {
		// A flow mapping takes at most one structural change a pass; one field needs one pass, two
		// at most.
		for pass := 0; ; pass++ {
			f, err := loadRouteFile(name, out)
			if err != nil {
				return nil, err
			}
			m, err := t.parent(f.root)
			if err != nil {
				return nil, err
			}
			next, done, err := f.setFields(m, []field{intField(t.key, t.value, false)})
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrRoute, name, err)
			}
			out = next
			if done {
				break
			}
			if pass >= 2 {
				return nil, fmt.Errorf("%w: %s: the edit of %s did not settle", ErrRoute, name, t.key)
			}
		}
	}
	if err := verifyRouteEdit(name, src, out, targets); err != nil {
		return nil, err
	}
	return out, nil
}

// routeTarget is one value a route sets: the key of the mapping at parentPath.
type routeTarget struct {
	parentPath []pathStep
	key        string
	value      int
	// canary marks the canary arm's value.
	canary bool
}

// parent finds the target's mapping in a freshly loaded root.
func (t routeTarget) parent(root *yaml.Node) (*yaml.Node, error) {
	n, err := walk(root, t.parentPath)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s is not a mapping", ErrRoute, formatPath(t.parentPath))
	}
	return n, nil
}

// routeTargets resolves what a route sets in src, checking everything first.
func routeTargets(name string, src []byte, r Route, stableModel, canaryModel string, canaryWeight int) ([]routeTarget, error) {
	if canaryWeight < 0 || canaryWeight > 100 {
		return nil, fmt.Errorf("%w: weight %d is not a percentage", ErrRoute, canaryWeight)
	}
	f, err := loadRouteFile(name, src)
	if err != nil {
		return nil, err
	}
	if r.LiteLLM != "" {
		return liteLLMTargets(name, f.root, stableModel, canaryModel, canaryWeight)
	}
	var out []routeTarget
	for _, arm := range []struct {
		field, p string
		value    int
	}{{"stable", r.Stable, 100 - canaryWeight}, {"canary", r.Canary, canaryWeight}} {
		steps, err := parsePath(arm.p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrRoute, arm.field, err)
		}
		last := steps[len(steps)-1]
		if last.index >= 0 {
			return nil, fmt.Errorf("%w: %s: %q must end in a key, such as .weight", ErrRoute, arm.field, arm.p)
		}
		n, err := walk(f.root, steps)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%s", ErrRoute, name, err)
		}
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return nil, fmt.Errorf("%w: %s:%d:%d: %s %s is %s, not an integer", ErrRoute, name, n.Line, n.Column, arm.field, arm.p, describe(n))
		}
		out = append(out, routeTarget{parentPath: steps[:len(steps)-1], key: last.key, value: arm.value, canary: arm.field == "canary"})
	}
	if formatPath(append(out[0].parentPath, pathStep{key: out[0].key, index: -1})) == formatPath(append(out[1].parentPath, pathStep{key: out[1].key, index: -1})) {
		return nil, fmt.Errorf("%w: stable and canary name the same path %s", ErrRoute, r.Stable)
	}
	return out, nil
}

// liteLLMTargets finds the model_list entries of each arm and the weights they get.
func liteLLMTargets(name string, root *yaml.Node, stableModel, canaryModel string, canaryWeight int) ([]routeTarget, error) {
	if canaryModel == "" {
		return liteLLMEnded(name, root, stableModel)
	}
	if sameModel(stableModel, canaryModel) {
		return nil, fmt.Errorf("%w: %s: stable and canary both use %s; a LiteLLM route splits by model, so it cannot carry a prompt-only change", ErrRoute, name, canaryModel)
	}
	_, list, _ := mapEntry(root, "model_list")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w: %s: no model_list sequence; is it a LiteLLM proxy config?", ErrRoute, name)
	}
	var stable, canary []int
	groups := map[string]bool{}
	for i, e := range list.Content {
		if e.Kind != yaml.MappingNode {
			continue
		}
		_, params, _ := mapEntry(e, "litellm_params")
		if params == nil || params.Kind != yaml.MappingNode {
			continue
		}
		_, model, _ := mapEntry(params, "model")
		if model == nil || model.Kind != yaml.ScalarNode {
			continue
		}
		arm := &stable
		switch {
		case sameModel(model.Value, stableModel):
		case sameModel(model.Value, canaryModel):
			arm = &canary
		default:
			continue
		}
		if _, w, _ := mapEntry(params, "weight"); w != nil && (w.Kind != yaml.ScalarNode || (w.Tag != "!!int" && w.Tag != "!!float")) {
			return nil, fmt.Errorf("%w: %s:%d:%d: model_list[%d].litellm_params.weight is %s, not a number", ErrRoute, name, w.Line, w.Column, i, describe(w))
		}
		*arm = append(*arm, i)
		_, group, _ := mapEntry(e, "model_name")
		if group != nil {
			groups[group.Value] = true
		} else {
			groups[""] = true
		}
	}
	switch {
	case len(stable) == 0:
		return nil, fmt.Errorf("%w: %s: no model_list entry has litellm_params.model %s (the stable model)", ErrRoute, name, stableModel)
	case len(canary) == 0:
		return nil, fmt.Errorf("%w: %s: no model_list entry has litellm_params.model %s (the canary model)", ErrRoute, name, canaryModel)
	case len(groups) > 1:
		names := make([]string, 0, len(groups))
		for g := range groups {
			names = append(names, strconv.Quote(g))
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: %s: the stable and canary entries are in different model_name groups (%s); LiteLLM splits a request only among one group's deployments", ErrRoute, name, strings.Join(names, ", "))
	}
	var out []routeTarget
	add := func(entries []int, value int, isCanary bool) {
		for _, i := range entries {
			out = append(out, routeTarget{parentPath: []pathStep{{key: "model_list", index: i}, {key: "litellm_params", index: -1}}, key: "weight", value: value, canary: isCanary})
		}
	}
	add(stable, (100-canaryWeight)*len(canary), false)
	add(canary, canaryWeight*len(stable), true)
	return out, nil
}

// sameModel reports whether two model names are the same model, with or without a provider prefix.
func sameModel(a, b string) bool {
	pa, ma := splitProvider(a)
	pb, mb := splitProvider(b)
	return ma == mb && ma != "" && (pa == "" || pb == "" || strings.EqualFold(pa, pb))
}

func splitProvider(m string) (provider, model string) {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[:i], m[i+1:]
	}
	return "", m
}

// loadRouteFile parses a route file: one YAML document holding a block mapping.
func loadRouteFile(name string, src []byte) (*fileText, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	docs := 0
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrRoute, name, err)
		}
		if len(n.Content) > 0 && n.Content[0].Tag != "!!null" {
			docs++
		}
	}
	if docs != 1 {
		return nil, fmt.Errorf("%w: %s: a route file must hold exactly one YAML document, found %d", ErrRoute, name, docs)
	}
	f, err := load(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRoute, name, err)
	}
	return f, nil
}

// pathStep is one step of a route path: a mapping key, then optionally a sequence index (-1: none).
type pathStep struct {
	key   string
	index int
}

// parsePath reads a dotted path with [i] indexes: spec.rules[0].backendRefs[1].weight. A step with
// several indexes (matrix[0][1]) becomes several steps, the later ones with an empty key.
func parsePath(p string) ([]pathStep, error) {
	if p == "" {
		return nil, errors.New("the path is empty")
	}
	var steps []pathStep
	for _, part := range strings.Split(p, ".") {
		key := part
		rest := ""
		if i := strings.IndexByte(part, '['); i >= 0 {
			key, rest = part[:i], part[i:]
		}
		if key == "" || strings.ContainsAny(key, "[]") {
			return nil, fmt.Errorf("%q: want keys separated by dots, each followed by optional [index]", p)
		}
		steps = append(steps, pathStep{key: key, index: -1})
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if rest[0] != '[' || end < 0 {
				return nil, fmt.Errorf("%q: want keys separated by dots, each followed by optional [index]", p)
			}
			i, err := strconv.Atoi(rest[1:end])
			if err != nil || i < 0 {
				return nil, fmt.Errorf("%q: %q is not an index", p, rest[:end+1])
			}
			if last := &steps[len(steps)-1]; last.index < 0 {
				last.index = i
			} else {
				steps = append(steps, pathStep{index: i})
			}
			rest = rest[end+1:]
		}
	}
	return steps, nil
}

func formatPath(steps []pathStep) string {
	var b strings.Builder
	for i, s := range steps {
		if s.key != "" {
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		}
		if s.index >= 0 {
			fmt.Fprintf(&b, "[%d]", s.index)
		}
	}
	return b.String()
}

// walk follows steps from root; the error names the first step that does not resolve, and where.
func walk(root *yaml.Node, steps []pathStep) (*yaml.Node, error) {
	n := root
	for i, s := range steps {
		if s.key != "" {
			if n.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%d:%d: %s is %s, not a mapping", n.Line, n.Column, routeAt(formatPath(steps[:i])), describe(n))
			}
			_, v, _ := mapEntry(n, s.key)
			if v == nil {
				return nil, fmt.Errorf("%d:%d: %s has no key %q", n.Line, n.Column, routeAt(formatPath(steps[:i])), s.key)
			}
			n = v
		}
		if s.index >= 0 {
			at := formatPath(append(steps[:i:i], pathStep{key: s.key, index: -1}))
			if n.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("%d:%d: %s is %s, not a sequence", n.Line, n.Column, at, describe(n))
			}
			if s.index >= len(n.Content) {
				return nil, fmt.Errorf("%d:%d: %s has %d items, no [%d]", n.Line, n.Column, at, len(n.Content), s.index)
			}
			n = n.Content[s.index]
		}
	}
	return n, nil
}

// verifyRouteEdit checks that out holds src's data with exactly the targets' values changed, so that
// an edit that went wrong never reaches a commit.
func verifyRouteEdit(name string, src, out []byte, targets []routeTarget) error {
	var want, got any
	if err := yaml.Unmarshal(src, &want); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRoute, name, err)
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		return fmt.Errorf("%w: %s: the edited file does not parse: %w", ErrRoute, name, err)
	}
	for _, t := range targets {
		m := lookupData(want, t.parentPath)
		mm, ok := m.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: %s: %s is not a mapping", ErrRoute, name, formatPath(t.parentPath))
		}
		mm[t.key] = t.value
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%w: %s: %w", ErrRoute, name, errVerify)
	}
	return nil
}

func lookupData(v any, steps []pathStep) any {
	for _, s := range steps {
		if s.key != "" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[s.key]
		}
		if s.index >= 0 {
			l, ok := v.([]any)
			if !ok || s.index >= len(l) {
				return nil
			}
			v = l[s.index]
		}
	}
	return v
}

// routeFilePath checks a route's path: relative to the repository's root, inside it, and reached
// through no symbolic link (which could point anywhere).
func routeFilePath(repo fs.FS, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: no file named", ErrRoute)
	}
	clean := path.Clean(p)
	if path.IsAbs(p) || !fs.ValidPath(clean) || clean == "." {
		return "", fmt.Errorf("%w: %q escapes the repository; route paths are relative to its root", ErrRoute, p)
	}
	if repo == nil {
		return clean, nil
	}
	parts := strings.Split(clean, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		info, err := fs.Lstat(repo, prefix)
		if err != nil {
			return "", fmt.Errorf("%w: %s does not exist in the repository", ErrRoute, p)
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%w: %s: %s is a symbolic link; a route must be a file of the repository itself", ErrRoute, p, prefix)
		}
		if i == len(parts)-1 && !info.Mode().IsRegular() {
			return "", fmt.Errorf("%w: %s is not a regular file", ErrRoute, p)
		}
	}
	return clean, nil
}

// CheckRoutes validates the traffic.routes of every document of set against repo, the repository's
// tree: each route names exactly one of litellm and file, a file: route both paths, the file exists
// in the repository (no escape, no symbolic link) and holds what the route needs, at the spec's
// current models and weight. A document with a broken route gets an error at the route's position,
// naming the route file's own line and column where the problem is in it, and leaves set.Documents:
// its rollout is skipped until the file is fixed, like any spec error. A route whose weights differ from
// traffic.weight's split is a warning: the next weight change sets them.
func CheckRoutes(set *Set, repo fs.FS) {
	kept := set.Documents[:0]
	for _, d := range set.Documents {
		problems := routeProblems(d, repo)
		set.Problems = append(set.Problems, problems...)
		if !hasError(problems) {
			kept = append(kept, d)
		}
	}
	set.Documents = kept
	sortProblems(set.Problems)
}

func routeProblems(d *Document, repo fs.FS) []Problem {
	s := d.Spec
	if len(s.Traffic.Routes) == 0 {
		return nil
	}
	l := linter{doc: d}
	l.root, _ = parseNode(d.Source)
	var out, warnings []Problem
	fail := func(p, format string, args ...any) {
		line, col := 1, 1
		if n := l.node(p); n != nil {
			line, col = n.Line, n.Column
		}
		out = append(out, Problem{File: d.Path, Line: line, Col: col, Message: fmt.Sprintf(format, args...)})
	}
	for i, r := range s.Traffic.Routes {
		at := fmt.Sprintf("traffic.routes[%d]", i)
		switch {
		case (r.LiteLLM == "") == (r.File == ""):
			fail(at, "%s: name exactly one of litellm and file", at)
			continue
		case r.LiteLLM != "" && (r.Stable != "" || r.Canary != ""):
			fail(at, "%s: a litellm route finds its entries by model; stable and canary paths belong to a file route", at)
			continue
		case r.File != "" && (r.Stable == "" || r.Canary == ""):
			fail(at, "%s: a file route needs both a stable and a canary path", at)
			continue
		}
		key := at + ".file"
		if r.LiteLLM != "" {
			key = at + ".litellm"
		}
		p, err := routeFilePath(repo, r.RoutePath())
		if err != nil {
			fail(key, "%s: %s", key, strings.TrimPrefix(err.Error(), ErrRoute.Error()+": "))
			continue
		}
		if repo == nil {
			continue
		}
		src, err := fs.ReadFile(repo, p)
		if err != nil {
			fail(key, "%s: %s: %v", key, p, unwrapPath(err))
			continue
		}
		canaryModel, weight := s.Stable.Model, s.Traffic.Weight
		if s.Canary != nil {
			canaryModel = s.Canary.Model
		} else if r.LiteLLM != "" {
			continue // no canary: nothing to split; the stable entry alone is not checked
		}
		if _, err := routeTargets(p, src, r, s.Stable.Model, canaryModel, weight); err != nil {
			msg := strings.TrimPrefix(err.Error(), ErrRoute.Error()+": ")
			if r.File != "" && !strings.HasPrefix(msg, p) {
				msg = p + ": " + msg
			}
			fail(key, "%s: %s", key, msg)
			continue
		}
		if s.Canary != nil {
			if out, err := EditRoute(p, src, r, s.Stable.Model, canaryModel, weight); err == nil && !bytes.Equal(out, src) {
				line, col := 1, 1
				if n := l.node(key); n != nil {
					line, col = n.Line, n.Column
				}
				warnings = append(warnings, Problem{File: d.Path, Line: line, Col: col, Warning: true,
					Message: fmt.Sprintf("%s: %s does not hold traffic.weight's split (%d%% to the canary); the next weight change sets it", key, p, weight)})
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	return warnings
}

// routeAt names a position of a route file for messages.
func routeAt(p string) string {
	if p == "" {
		return "the document"
	}
	return p
}

func hasError(ps []Problem) bool {
	for _, p := range ps {
		if !p.Warning {
			return true
		}
	}
	return false
}

// liteLLMEnded sends a model group wholly to stable once the canary block is gone: the stable entries
// get 100, the other entries of their model_name group (the ended canary) 0.
func liteLLMEnded(name string, root *yaml.Node, stableModel string) ([]routeTarget, error) {
	_, list, _ := mapEntry(root, "model_list")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w: %s: no model_list sequence; is it a LiteLLM proxy config?", ErrRoute, name)
	}
	type entry struct {
		i      int
		group  string
		stable bool
	}
	var entries []entry
	groups := map[string]bool{}
	for i, e := range list.Content {
		if e.Kind != yaml.MappingNode {
			continue
		}
		_, params, _ := mapEntry(e, "litellm_params")
		if params == nil || params.Kind != yaml.MappingNode {
			continue
		}
		_, model, _ := mapEntry(params, "model")
		group := ""
		if _, g, _ := mapEntry(e, "model_name"); g != nil {
			group = g.Value
		}
		en := entry{i: i, group: group, stable: model != nil && sameModel(model.Value, stableModel)}
		if en.stable {
			groups[group] = true
		}
		entries = append(entries, en)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("%w: %s: no model_list entry has litellm_params.model %s (the stable model)", ErrRoute, name, stableModel)
	}
	var out []routeTarget
	for _, en := range entries {
		if !groups[en.group] {
			continue
		}
		value := 0
		if en.stable {
			value = 100
		}
		out = append(out, routeTarget{parentPath: []pathStep{{key: "model_list", index: en.i}, {key: "litellm_params", index: -1}}, key: "weight", value: value})
	}
	return out, nil
}
