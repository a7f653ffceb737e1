package jsonl

// DefaultMaxLateRequests bounds how many recent requests a Stats call remembers for late feedback.
const DefaultMaxLateRequests = 1 << 18

// Where a remembered request's statistics went.
const (
	stateOut     = iota // not counted: outside the window, not randomised, or before the first canary
	stateCounted        // in its arm
	statePending        // in the stable records held until the first canary record shows up
)

// Flags of a remembered request.
const (
	flagCanary = 1 << iota
	flagFeedback
	flagNegative
	flagQuality
	// flagPreferred: the request has a pairwise verdict; flagPreferCanary and flagPreferTie say which
	// (neither: stable).
	flagPreferred
	flagPreferCanary
	flagPreferTie
)

// preferFlags returns the flags that remember a pairwise verdict worth v to the canary.
func preferFlags(v float64) uint8 {
	switch v {
	case preferCanary:
		return flagPreferred | flagPreferCanary
	case preferTie:
		return flagPreferred | flagPreferTie
	}
	return flagPreferred
}

// preferValue returns the canary's share of the pairwise verdict remembered in flags.
func preferValue(flags uint8) float64 {
	switch {
	case flags&flagPreferCanary != 0:
		return preferCanary
	case flags&flagPreferTie != 0:
		return preferTie
	}
	return preferStable
}

// lateEntry is what a late record needs of its request: where its statistics went and the values a
// late one replaces.
type lateEntry struct {
	id      uint64 // hash of the request_id, with the top bit set; 0 marks an empty slot
	quality float64
	seq     uint32 // when it was put, for evicting the oldest
	bucket  uint16
	state   uint8
	flags   uint8
}

// lateIndex remembers the most recent requests that carry a request_id, so that a late feedback record
// finds its request's arm, key bucket and window without holding every record.
//
// It is a 16-way set-associative table of at most max slots (24 bytes each: 6 MiB at the default),
// growing from a few thousand as requests come (at a quarter full, where a set of 16 overflows with
// probability about 10^-6), so a small file costs little and loses nothing. Once at max, a new request
// takes the slot of the oldest request of its set, so recent requests stay: a request is pushed out
// after about max later requests on average, and feedback arriving within a tenth of that (26,000
// requests at the default) finds its request all but surely. A late record whose request was pushed out, or never seen, is counted as
// unmatched and reported, never guessed; ids are compared by a 64-bit hash, whose collisions (about
// n²/2^65) are negligible.
type lateIndex struct {
	slots []lateEntry
	max   int
	live  int    // entries held
	seq   uint32 // insertion counter, for evicting the oldest of a set
}

const lateWays = 16

func (x *lateIndex) set(id uint64) []lateEntry {
	i := int(id&uint64(len(x.slots)-1)) &^ (lateWays - 1)
	return x.slots[i : i+lateWays]
}

// put remembers e, replacing the entry of the same id, else an empty slot, else the oldest of its set.
func (x *lateIndex) put(e lateEntry) {
	if x.slots == nil {
		x.slots = make([]lateEntry, min(4096, x.max))
	}
	if 4*x.live >= len(x.slots) && len(x.slots) < x.max {
		old := x.slots
		x.slots = make([]lateEntry, min(2*len(old), x.max))
		x.live = 0
		for _, o := range old {
			if o.id != 0 {
				x.insert(o)
			}
		}
	}
	x.seq++
	e.seq = x.seq
	x.insert(e)
}

func (x *lateIndex) insert(e lateEntry) {
	set := x.set(e.id)
	victim := 0
	for i := range set {
		switch {
		case set[i].id == e.id:
			set[i] = e
			return
		case set[i].id == 0:
			set[i] = e
			x.live++
			return
		case set[i].seq-x.seq < set[victim].seq-x.seq: // the oldest, counting across wrap-around
			victim = i
		}
	}
	set[victim] = e
}

// get returns the entry of id, or nil.
func (x *lateIndex) get(id uint64) *lateEntry {
	if x.slots == nil {
		return nil
	}
	set := x.set(id)
	for i := range set {
		if set[i].id == id {
			return &set[i]
		}
	}
	return nil
}

// hashID is hash64 of a request_id with the top bit set, so that no id hashes to "empty".
func hashID(b []byte) uint64 { return hash64(b) | 1<<63 }

// hash64 is 64-bit FNV-1a of b, its bits mixed (a splitmix64 finalizer) so that every bit depends on
// every byte, as the index table and HyperLogLog need.
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
