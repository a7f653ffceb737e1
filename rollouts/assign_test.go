package rollouts

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// The vectors of GrowthBook's own SDK test suite for the version-2 hash.
func TestHashGrowthBookVectors(t *testing.T) {
	tests := []struct {
		salt, key string
		want      float64
	}{
		{"seed", "a", 0.0505},
		{"seed", "b", 0.2696},
		{"foo", "ab", 0.2575},
		{"seed", "ü", 0.6166},
	}
	for _, tt := range tests {
		if got := Hash(tt.salt, tt.key); got != tt.want {
			t.Errorf("Hash(%q, %q) = %v, want %v", tt.salt, tt.key, got, tt.want)
		}
	}
}

// A key outside the Basic Multilingual Plane is two UTF-16 code units, as in JavaScript.
func TestHashSurrogatePairs(t *testing.T) {
	// "😀" is U+1F600 = D83D DE00 in UTF-16; hashing the pair by hand must agree.
	h := fnvOffset
	for _, u := range []uint32{'s', 0xD83D, 0xDE00} {
		h = (h ^ u) * fnvPrime
	}
	if got := fnvUTF16(fnvOffset, "s😀"); got != h {
		t.Fatalf("fnvUTF16 = %#x, want %#x", got, h)
	}
}

func specWith(weight int) *Spec {
	return &Spec{
		Name:       "summarizer",
		Stable:     Variant{Model: "m-stable", Prompt: "p1"},
		Canary:     &Variant{Model: "m-canary", Prompt: "p1"},
		Traffic:    Traffic{Weight: weight},
		Assignment: Assignment{Salt: "summarizer-2026-04-15"},
	}
}

func TestChooseWeightBounds(t *testing.T) {
	zero, all := specWith(0).Assigner(), specWith(100).Assigner()
	for i := range 10000 {
		key := fmt.Sprintf("u-%d", i)
		if c := zero.Choose(key); c.Arm != StableArm {
			t.Fatalf("weight 0: %s got %s", key, c.Arm)
		}
		if c := all.Choose(key); c.Arm != CanaryArm || c.Variant.Model != "m-canary" {
			t.Fatalf("weight 100: %s got %+v", key, c)
		}
	}
}

func TestChooseMonotoneInWeight(t *testing.T) {
	assigners := make([]*Assigner, 101)
	for w := range assigners {
		assigners[w] = specWith(w).Assigner()
	}
	for i := range 5000 {
		key := fmt.Sprintf("key-%d", i)
		canary := false
		for w, a := range assigners {
			got := a.Choose(key).Arm == CanaryArm
			if canary && !got {
				t.Fatalf("%s left the canary when weight rose to %d", key, w)
			}
			canary = got
		}
	}
}

func TestChooseShareWithinOnePoint(t *testing.T) {
	const n = 100000
	for _, w := range []int{1, 5, 25, 50, 75, 99} {
		a := specWith(w).Assigner()
		canary := 0
		for i := range n {
			if a.Choose(fmt.Sprintf("user-%d", i)).Arm == CanaryArm {
				canary++
			}
		}
		share := 100 * float64(canary) / n
		if math.Abs(share-float64(w)) > 1 {
			t.Errorf("weight %d: canary share %.2f%%, want within ±1 point", w, share)
		}
	}
}

func TestChooseGlobs(t *testing.T) {
	s := specWith(50)
	s.Assignment.Include = []string{"beta-*"}
	s.Assignment.Exclude = []string{"vip-*", "beta-vip-*"}
	tests := []struct {
		key, reason string
		arm         Arm
	}{
		{"beta-1", "include", CanaryArm},
		{"vip-7", "exclude", StableArm},
		{"beta-vip-1", "exclude", StableArm}, // exclude wins over include
		{"u-1", "hash", ""},
	}
	a := s.Assigner()
	for _, tt := range tests {
		c := a.Choose(tt.key)
		if c.Reason != tt.reason || (tt.arm != "" && c.Arm != tt.arm) {
			t.Errorf("Choose(%q) = %s by %s, want %s by %s", tt.key, c.Arm, c.Reason, tt.arm, tt.reason)
		}
	}
	// Globs beat the hash at any weight above 0, but nobody gets a canary at weight 0.
	s.Traffic.Weight = 0
	if c := s.Choose("beta-1"); c.Arm != StableArm {
		t.Errorf("weight 0: included key got %s", c.Arm)
	}
	s.Traffic.Weight = 100
	if c := s.Choose("vip-1"); c.Arm != StableArm {
		t.Errorf("weight 100: excluded key got %s", c.Arm)
	}
}

func TestChooseNoCanary(t *testing.T) {
	s := specWith(50)
	s.Canary = nil
	if c := s.Choose("u-1"); c.Arm != StableArm || c.Variant.Model != "m-stable" {
		t.Errorf("no canary: got %+v", c)
	}
}

func TestChooseDefaultSaltMatchesParse(t *testing.T) {
	s := specWith(30)
	s.Assignment.Salt = ""
	want := Hash("summarizer-m-canary", "u-42")
	if got := s.Choose("u-42").Hash; got != want {
		t.Errorf("hash with default salt = %v, want %v", got, want)
	}
	// Choose agrees with the exported hash for every key.
	s.Assignment.Salt = "abc"
	a := s.Assigner()
	for i := range 1000 {
		key := fmt.Sprintf("k%d", i)
		c := a.Choose(key)
		if c.Hash != Hash("abc", key) || (c.Arm == CanaryArm) != (c.Hash < 0.30) {
			t.Fatalf("Choose(%q) = %+v, Hash = %v", key, c, Hash("abc", key))
		}
	}
}

func TestShadowRate(t *testing.T) {
	s := specWith(0)
	s.Traffic.Shadow = 20
	a := s.Assigner()
	r := rand.New(rand.NewPCG(1, 2))
	const n = 100000
	hits := 0
	for range n {
		if a.Shadow(r) {
			hits++
		}
	}
	// Binomial(100000, 0.2) has a standard deviation of about 126; allow 5 of them.
	if math.Abs(float64(hits)-0.2*n) > 5*math.Sqrt(n*0.2*0.8) {
		t.Errorf("shadow hits %d of %d, want about 20%%", hits, n)
	}
	s.Traffic.Shadow = 0
	if s.Assigner().Shadow(r) {
		t.Error("shadow 0 mirrored a request")
	}
}

func BenchmarkChooseASCII(b *testing.B) {
	a := specWith(25).Assigner()
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Choose("user-1234567890")
	}
}

func BenchmarkHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Hash("summarizer-2026-04-15", "user-1234567890")
	}
}

// An Assigner is shared by a server's goroutines, and a *rand.Rand may not be: Shadow(nil) draws from
// math/rand/v2's own generator, safely from many goroutines (go test -race). Shares of 0 and 100 keep
// the test deterministic; TestShadowRate checks the rate with a seeded generator.
func TestShadowConcurrentNilRand(t *testing.T) {
	for _, tc := range []struct {
		shadow    int
		canary    bool
		wantShare int64
	}{{100, true, 1}, {0, true, 0}, {100, false, 0}} {
		s := specWith(0)
		s.Traffic.Shadow = tc.shadow
		if !tc.canary {
			s.Canary = nil
		}
		a := s.Assigner()
		if v, ok := a.Canary(); ok != tc.canary || ok && v != *s.Canary {
			t.Errorf("canary %v: Assigner.Canary() = %v, %v", tc.canary, v, ok)
		}
		const goroutines, each = 4, 1000
		var hits atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range each {
					if a.Shadow(nil) {
						hits.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got, want := hits.Load(), tc.wantShare*goroutines*each; got != want {
			t.Errorf("shadow %d%%, canary %v: %d of %d requests mirrored, want %d", tc.shadow, tc.canary, got, goroutines*each, want)
		}
		if got := s.Shadow(nil); got != (tc.wantShare == 1) {
			t.Errorf("shadow %d%%, canary %v: Spec.Shadow(nil) = %v", tc.shadow, tc.canary, got)
		}
	}
}
