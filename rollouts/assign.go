package rollouts

import (
	"math/rand/v2"
	"path"
	"unicode/utf8"
)

// Arm names one side of a rollout.
type Arm string

// The two arms.
const (
	StableArm Arm = "stable"
	CanaryArm Arm = "canary"
)

// Choice is the variant one assignment key gets, and why.
type Choice struct {
	Arm     Arm
	Variant Variant
	// Hash is the key's GrowthBook hash in [0, 1); the key gets the canary when Hash < weight/100.
	Hash float64
	// Reason is one of "no canary", "weight 0", "exclude", "include", "namespace" (the key is outside
	// the rollout's slice of its namespace), "hash".
	Reason string
}

// Hash is GrowthBook's version-2 bucketing hash of key with salt as seed, in [0, 1): FNV-1a 32-bit over
// the UTF-16 code units of salt+key gives h1, and the FNV-1a hash of h1's decimal string, modulo
// 10000, divided by 10000, is the result. GrowthBook's SDKs (JavaScript, Python, …) compute the same
// number, so an application in any of those languages can reproduce the split.
func Hash(salt, key string) float64 {
	return hashFrom(fnvUTF16(fnvOffset, salt), key)
}

const (
	fnvOffset uint32 = 0x811c9dc5
	fnvPrime  uint32 = 0x01000193
)

func hashFrom(saltState uint32, key string) float64 {
	h1 := fnvUTF16(saltState, key)
	// The decimal digits of h1, hashed without building a string.
	var digits [10]byte
	i := len(digits)
	for {
		i--
		digits[i] = byte('0' + h1%10)
		h1 /= 10
		if h1 == 0 {
			break
		}
	}
	h2 := fnvOffset
	for _, c := range digits[i:] {
		h2 = (h2 ^ uint32(c)) * fnvPrime
	}
	return float64(h2%10000) / 10000
}

// fnvUTF16 continues an FNV-1a 32 hash over the UTF-16 code units of s, as JavaScript's charCodeAt
// sees them.
func fnvUTF16(h uint32, s string) uint32 {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			h = (h ^ uint32(c)) * fnvPrime
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			h = (h ^ uint32(0xD800+(r>>10))) * fnvPrime
			h = (h ^ uint32(0xDC00+(r&0x3FF))) * fnvPrime
			continue
		}
		h = (h ^ uint32(r)) * fnvPrime
	}
	return h
}

// Assigner routes assignment keys for one spec. It precomputes the salt's part of the hash, so Choose
// costs one pass over the key and allocates nothing. It is safe for concurrent use; build a new one
// when the spec changes.
type Assigner struct {
	stable, canary Variant
	hasCanary      bool
	weight         int
	shadow         int
	saltState      uint32
	include        []string
	exclude        []string
	// slice is the namespace's part of the key space for this rollout (nil: all of it), and threshold
	// the canary's share of the keys inside it: weight/100 over the slice's width, at most 1, so that
	// the canary's share of all keys stays the weight.
	slice     *NamespaceSlice
	threshold float64
}

// Assigner returns the router for s as it stands now: its traffic weight, salt and globs. A spec with
// assignment.namespace keeps to its slice of the keys only once Load, LoadPaths or ResolveNamespaces
// gave it one: parsed alone (Parse), it knows none of its siblings and routes as if it had no
// namespace, so that its canary may share keys with theirs. Load the folder to route it.
func (s *Spec) Assigner() *Assigner {
	a := &Assigner{
		stable:    s.Stable,
		weight:    s.Traffic.Weight,
		shadow:    s.Traffic.Shadow,
		saltState: fnvUTF16(fnvOffset, s.salt()),
		include:   s.Assignment.Include,
		exclude:   s.Assignment.Exclude,
	}
	if s.Canary != nil {
		a.canary, a.hasCanary = *s.Canary, true
	}
	a.threshold = float64(a.weight) / 100
	if ns, ok := s.Namespace(); ok {
		a.slice = &ns
		if w := ns.End - ns.Start; w > 0 {
			a.threshold = min(1, a.threshold/w)
		}
	}
	return a
}

// Canary returns the canary's variant, which a mirrored request (Shadow) calls, and false when the spec
// has none.
func (a *Assigner) Canary() (Variant, bool) { return a.canary, a.hasCanary }

// CanaryThreshold is the point below which a key's Hash gets the canary: weight/100, or, in a
// namespace, weight/100 over the slice's width (at most 1). The GrowthBook export writes the same
// number as the experiment's range.
func (a *Assigner) CanaryThreshold() float64 { return a.threshold }

// salt is the configured salt, or the default Parse would fill in.
func (s *Spec) salt() string {
	if s.Assignment.Salt != "" || s.Canary == nil {
		return s.Assignment.Salt
	}
	return s.Name + "-" + s.Canary.Model
}

// Choose returns the variant key gets. Without a canary, or at weight 0, everyone gets stable: a
// rolled-back canary reaches nobody, not even included keys. Otherwise a key matching an exclude glob
// gets stable, then one matching an include glob gets the canary, a key outside the rollout's slice of
// its namespace gets stable, and every other key gets the canary exactly when Hash(salt, key) <
// CanaryThreshold (weight/100 without a namespace). Globs use path.Match syntax.
func (a *Assigner) Choose(key string) Choice {
	stable := Choice{Arm: StableArm, Variant: a.stable}
	if !a.hasCanary {
		stable.Reason = "no canary"
		return stable
	}
	if a.weight <= 0 {
		stable.Reason = "weight 0"
		return stable
	}
	canary := Choice{Arm: CanaryArm, Variant: a.canary}
	if matchAny(a.exclude, key) {
		stable.Reason = "exclude"
		return stable
	}
	if matchAny(a.include, key) {
		canary.Reason = "include"
		return canary
	}
	if a.slice != nil && !a.slice.Contains(key) {
		stable.Reason = "namespace"
		return stable
	}
	h := hashFrom(a.saltState, key)
	if h < a.threshold {
		canary.Hash, canary.Reason = h, "hash"
		return canary
	}
	stable.Hash, stable.Reason = h, "hash"
	return stable
}

// Shadow draws whether one request is mirrored to the canary, at the traffic's shadow percent. The
// user still sees stable's answer. Without a canary nothing is mirrored.
//
// A *rand.Rand is not safe for concurrent use: pass nil to draw from math/rand/v2's own generator,
// which is (what a server handling requests on many goroutines wants), or one r per goroutine (a
// seeded r makes a test deterministic).
func (a *Assigner) Shadow(r *rand.Rand) bool {
	if !a.hasCanary || a.shadow <= 0 {
		return false
	}
	if r == nil {
		return rand.IntN(100) < a.shadow
	}
	return r.IntN(100) < a.shadow
}

// Choose returns the variant key gets; see Assigner.Choose. Applications that route many requests
// should keep s.Assigner() instead, which precomputes the salt.
func (s *Spec) Choose(key string) Choice { return s.Assigner().Choose(key) }

// Shadow draws whether one request is mirrored to the canary; see Assigner.Shadow (r may be nil).
func (s *Spec) Shadow(r *rand.Rand) bool { return s.Assigner().Shadow(r) }

func matchAny(globs []string, key string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}

// MatchesAny reports whether key matches one of globs (path.Match syntax), the test Choose applies to
// assignment.include and exclude; metrics sources use it to leave keys that are not randomised out
// of the comparison.
func MatchesAny(globs []string, key string) bool { return matchAny(globs, key) }
