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
	// flagOwnQuality: the pass's quality of the request is its own (lateIndex.own), not the shared one.
	flagOwnQuality
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

// lateSlot is a remembered request as every pass of a lateIndex sees it: its id and key bucket.
type lateSlot struct {
	id     uint64 // hash of the request_id, with the top bit set; 0 marks an empty slot
	seq    uint32 // when it was put, for evicting the oldest
	bucket uint16
}

// lateMark is what one pass knows of a remembered request: where its statistics went and which of its
// values (flags) a late record replaces rather than adds.
type lateMark struct {
	state, flags uint8
}

// lateIndex remembers the most recent requests that carry a request_id, so that a late feedback record
// finds its request's arm, key bucket and window without holding every record.
//
// It is a 16-way set-associative table of at most max slots (16 bytes each, plus 8 for the quality
// and 2 per pass: 6.5 MiB for one pass at the default), growing from a few thousand as requests come
// (at a quarter full, where a set of 16 overflows with probability about 10^-6), so a small file
// costs little and loses nothing. Once at max, a new request takes the slot of the oldest request of
// its set, so recent requests stay: a request is pushed out after about max later requests on
// average, and feedback arriving within a tenth of that (26,000 requests at the default) finds its
// request all but surely. A late record whose request was pushed out, or never seen, is counted as
// unmatched and reported, never guessed; ids are compared by a 64-bit hash, whose collisions (about
// n²/2^65) are negligible.
//
// One table serves every pass whose window ends at the same time (a stage's window and its recent
// windows): which requests it holds depends only on the requests up to that end, the same for all of
// them, so each request is put once, not once per pass. What differs between the passes is kept per
// pass and slot: the mark (2 bytes), and a quality only where a late record's quality reached some of
// the passes and not others (see setQuality).
type lateIndex struct {
	slots []lateSlot
	// quality is each slot's latest quality, for the passes whose mark lacks flagOwnQuality.
	quality []float64
	// marks holds the passes' marks, slot by slot (markAt); own[v] is pass v's own qualities, by slot.
	marks  []lateMark
	own    []map[int32]float64
	passes int
	max    int
	live   int    // entries held
	seq    uint32 // insertion counter, for evicting the oldest of a set
}

const lateWays = 16

// newLateIndex returns a table of at most maxSlots slots (a power of two) for passes passes.
func newLateIndex(maxSlots, passes int) *lateIndex {
	return &lateIndex{max: maxSlots, passes: passes, own: make([]map[int32]float64, passes)}
}

// markAt returns the passes' marks of slot i, pass v's at v.
func (x *lateIndex) markAt(i int) []lateMark {
	return x.marks[i*x.passes : (i+1)*x.passes]
}

func (x *lateIndex) set(id uint64) int {
	return int(id&uint64(len(x.slots)-1)) &^ (lateWays - 1)
}

// put remembers the request id, replacing the entry of the same id, else an empty slot, else the
// oldest of its set, and returns its slot: every pass's mark there is cleared, for the passes to
// write.
func (x *lateIndex) put(id uint64, bucket uint16, quality float64) int {
	if x.slots == nil {
		x.resize(min(4096, x.max))
	}
	if 4*x.live >= len(x.slots) && len(x.slots) < x.max {
		x.resize(min(2*len(x.slots), x.max))
	}
	x.seq++
	i := x.insert(lateSlot{id: id, seq: x.seq, bucket: bucket})
	x.quality[i] = quality
	marks := x.markAt(i)
	for v, m := range marks {
		if m.flags&flagOwnQuality != 0 {
			delete(x.own[v], int32(i))
		}
	}
	clear(marks)
	return i
}

// resize moves every entry, with the passes' marks and qualities, into a table of n slots.
func (x *lateIndex) resize(n int) {
	old, oldQuality, oldMarks, oldOwn := x.slots, x.quality, x.marks, x.own
	x.slots, x.quality, x.live = make([]lateSlot, n), make([]float64, n), 0
	x.marks, x.own = make([]lateMark, n*x.passes), make([]map[int32]float64, x.passes)
	for i, o := range old {
		if o.id == 0 {
			continue
		}
		j := x.insert(o)
		x.quality[j] = oldQuality[i]
		copy(x.markAt(j), oldMarks[i*x.passes:(i+1)*x.passes])
		for v, m := range x.markAt(j) {
			if m.flags&flagOwnQuality != 0 {
				if x.own[v] == nil {
					x.own[v] = map[int32]float64{}
				}
				x.own[v][int32(j)] = oldOwn[v][int32(i)]
			}
		}
	}
}

// insert writes e into its set and returns its slot.
func (x *lateIndex) insert(e lateSlot) int {
	base := x.set(e.id)
	set := x.slots[base : base+lateWays]
	victim := 0
	for i := range set {
		switch {
		case set[i].id == e.id:
			set[i] = e
			return base + i
		case set[i].id == 0:
			set[i] = e
			x.live++
			return base + i
		case set[i].seq-x.seq < set[victim].seq-x.seq: // the oldest, counting across wrap-around
			victim = i
		}
	}
	set[victim] = e
	return base + victim
}

// get returns the slot of id, or -1.
func (x *lateIndex) get(id uint64) int {
	if x.slots == nil {
		return -1
	}
	base := x.set(id)
	for i, s := range x.slots[base : base+lateWays] {
		if s.id == id {
			return base + i
		}
	}
	return -1
}

// mark returns pass v's mark of slot i.
func (x *lateIndex) mark(v, i int) *lateMark {
	return &x.marks[i*x.passes+v]
}

// qualityOf returns pass v's quality of the request in slot i.
func (x *lateIndex) qualityOf(v, i int) float64 {
	if x.mark(v, i).flags&flagOwnQuality != 0 {
		return x.own[v][int32(i)]
	}
	return x.quality[i]
}

// setQuality makes q pass v's quality of the request in slot i: shared, when every other pass that
// reads the slot's shared quality takes q too (the caller sets it once they all have), else the pass's
// own.
func (x *lateIndex) setQuality(v, i int, q float64, shared bool) {
	m := x.mark(v, i)
	switch {
	case shared && m.flags&flagOwnQuality != 0:
		delete(x.own[v], int32(i))
		m.flags &^= flagOwnQuality
	case !shared:
		if x.own[v] == nil {
			x.own[v] = map[int32]float64{}
		}
		x.own[v][int32(i)] = q
		m.flags |= flagOwnQuality
	}
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
