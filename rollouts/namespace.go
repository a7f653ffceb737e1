package rollouts

import (
	"fmt"
	"sort"
	"strings"
)

// NamespaceSlice is the part of the key space one rollout of a namespace takes: the keys whose
// NamespaceHash falls in [Start, End). GrowthBook writes the same thing as an experiment's namespace
// [Name, Start, End].
type NamespaceSlice struct {
	Name       string
	Start, End float64
	// Of is how many rollouts share the namespace.
	Of int
}

// Contains reports whether key is in the slice.
func (ns NamespaceSlice) Contains(key string) bool {
	n := NamespaceHash(ns.Name, key)
	return n >= ns.Start && n < ns.End
}

// NamespaceHash is GrowthBook's namespace hash of key, in [0, 1) by thousandths: its hash version 1
// with seed "__" + namespace, that is FNV-1a 32-bit over the UTF-16 code units of key + "__" +
// namespace, modulo 1000, divided by 1000. It is independent of every rollout's salt, so that the
// rollouts of a namespace all place a key at the same point.
func NamespaceHash(namespace, key string) float64 {
	h := fnvUTF16(fnvUTF16(fnvOffset, key), "__"+namespace)
	return float64(h%1000) / 1000
}

// Namespace returns the slice of the key space the spec's namespace gives it, and false when the spec
// has no namespace or it was not resolved (Load and LoadPaths resolve it; see ResolveNamespaces).
func (s *Spec) Namespace() (NamespaceSlice, bool) {
	if s.slice == nil {
		return NamespaceSlice{}, false
	}
	return *s.slice, true
}

// ResolveNamespaces gives each spec with assignment.namespace its slice: the rollouts that share a
// namespace, in the order of their names, split [0, 1) into equal slices at whole thousandths (the
// hash's resolution). A key gets a rollout's canary only inside that rollout's slice, so no key is in
// two canaries of one namespace; the rollout's weight stays its share of all keys (see Assigner), up
// to the slice's width. Adding or removing a rollout of a namespace moves the slices of the others.
func ResolveNamespaces(specs []*Spec) {
	byName := map[string][]*Spec{}
	for _, s := range specs {
		s.slice = nil
		if ns := s.Assignment.Namespace; ns != "" {
			byName[ns] = append(byName[ns], s)
		}
	}
	for ns, group := range byName {
		sort.Slice(group, func(i, j int) bool { return group[i].Name < group[j].Name })
		k := len(group)
		for i, s := range group {
			s.slice = &NamespaceSlice{Name: ns, Start: float64(i*1000/k) / 1000, End: float64((i+1)*1000/k) / 1000, Of: k}
		}
	}
}

// resolveNamespaces gives the set's rollouts their namespace slices.
func (s *Set) resolveNamespaces() {
	specs := make([]*Spec, 0, len(s.Documents))
	for _, d := range s.Documents {
		specs = append(specs, d.Spec)
	}
	ResolveNamespaces(specs)
}

// namespaceLints warns of what namespaces leave unsaid: two rollouts that send users canaries of one
// stable without a common namespace overlap in users; two rollouts of a namespace whose stables differ
// compare against different baselines (one was promoted, and the other has not been rebased on the new
// stable); a stage whose weight exceeds the rollout's slice cannot reach it.
func namespaceLints(set *Set) []Problem {
	var out []Problem
	warn := func(d *Document, p, format string, args ...any) {
		l := linter{doc: d}
		l.root, _ = parseNode(d.Source)
		l.warn(p, format, args...)
		out = append(out, l.problems...)
	}
	byStable := map[Variant][]*Document{}
	byNamespace := map[string][]*Document{}
	for _, d := range set.Documents {
		if d.Spec.Canary == nil {
			continue
		}
		byStable[d.Spec.Stable] = append(byStable[d.Spec.Stable], d)
		if ns := d.Spec.Assignment.Namespace; ns != "" {
			byNamespace[ns] = append(byNamespace[ns], d)
		}
	}
	for _, group := range byStable {
		for _, d := range group {
			var others []string
			for _, o := range group {
				if o != d && (o.Spec.Assignment.Namespace == "" || o.Spec.Assignment.Namespace != d.Spec.Assignment.Namespace) {
					others = append(others, o.Spec.Name)
				}
			}
			if len(others) > 0 {
				warn(d, "stable", "stable: rollout %s shares its stable (%s) with %s, without a common assignment.namespace: some users get both canaries, and promoting one changes the other's stable; give them one namespace (assignment.namespace: %s) so their canaries take disjoint users",
					d.Spec.Name, variantWords(d.Spec.Stable), strings.Join(others, ", "), suggestNamespace(d.Spec))
			}
		}
	}
	for ns, group := range byNamespace {
		for _, d := range group {
			if adv := set.RebaseAdvice(d.Spec.Name); adv != "" {
				warn(d, "stable", "stable: %s", adv)
				continue
			}
			for _, o := range group {
				if o != d && o.Spec.Stable != d.Spec.Stable {
					warn(d, "stable", "stable: rollout %s's stable (%s) is not the stable of %s (%s), which shares namespace %s: when one of them is promoted, rebase the other: set its stable to what users now get, with its canary's change on top",
						d.Spec.Name, variantWords(d.Spec.Stable), o.Spec.Name, variantWords(o.Spec.Stable), ns)
					break
				}
			}
		}
	}
	for _, d := range set.Documents {
		ns, ok := d.Spec.Namespace()
		if !ok {
			continue
		}
		share := int((ns.End - ns.Start) * 100)
		for i, st := range d.Spec.Stages {
			if st.Weight > share {
				warn(d, fmt.Sprintf("stages[%d]", i), "stages[%d]: weight %d%% is more than this rollout's slice of namespace %s (%d%% of the keys, one of %d rollouts): the canary reaches only %d%%, and the judge sees a sample ratio mismatch",
					i, st.Weight, ns.Name, share, ns.Of, share)
				break
			}
		}
	}
	return out
}

func variantWords(v Variant) string {
	if v.Prompt == "" {
		return v.Model
	}
	return v.Model + " + " + v.Prompt
}

// suggestNamespace is a namespace name to propose: the part of the rollout's name before its first
// hyphen ("summarizer" for summarizer-prompt), or the name itself.
func suggestNamespace(s *Spec) string {
	name, _, _ := strings.Cut(s.Name, "-")
	return name
}

// RebaseAdvice says what the rollout named name must do when another rollout of its namespace was
// promoted: users now get that rollout's stable, so this one's stable, and what its canary is compared
// with, is stale until it is rebased. It returns "" when there is nothing to rebase.
func (s *Set) RebaseAdvice(name string) string {
	doc := s.Lookup(name)
	if doc == nil || doc.Spec.Canary == nil || doc.Spec.Assignment.Namespace == "" {
		return ""
	}
	me := doc.Spec
	for _, d := range s.Documents {
		o := d.Spec
		if o == me || o.Assignment.Namespace != me.Assignment.Namespace || o.Status == nil ||
			o.Status.Phase != Completed || o.Stable == me.Stable {
			continue
		}
		return fmt.Sprintf("rollout %s of namespace %s was promoted: users now get %s, not this rollout's stable %s; rebase it: set stable to %s in %s, with the canary's change on top of it, so the canary is compared with what users get",
			o.Name, me.Assignment.Namespace, variantWords(o.Stable), variantWords(me.Stable), variantWords(o.Stable), doc.Path)
	}
	return ""
}
