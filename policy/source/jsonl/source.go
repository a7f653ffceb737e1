// Package jsonl is the embedded metrics source, `file:PATH` in a spec: JSON Lines request records, one
// request a line, plain or gzip-compressed.
//
// A Source streams the file on every Stats call and keeps only sufficient statistics per arm, never
// the records, so memory stays flat however large the file grows. StatsWindows answers several
// windows (a stage's window and its recent windows, a report's ticks) from one read of the file. A line it cannot read is counted and
// reported with its line number, never fatal and never read as zeros; a missing optional field leaves
// that metric without data.
//
// # Units: users, not requests
//
// Each arm's sums are kept per hash bucket of the record's assignment key (policy.KeyBucket, 1024
// buckets): every request of one user lands in one bucket, so the judge treats buckets as independent
// units however correlated one user's requests are (Stats.Unit is policy.UnitKey, each sample's
// Clusters holds the sums per bucket, with policy.QuantileBin counts for the latency quantiles). A
// record without a key is its own unit, bucketed by its request_id, else by its line number: nothing
// changes weight silently. Memory is fixed: 1024 buckets × 8 moments per arm, plus 200 latency bins per
// bucket that has latencies, whatever the number of records or keys. ArmStats.Keys, the distinct units
// per arm that the judge's sample-ratio check reads, is exact up to MaxExactKeys per arm and a
// HyperLogLog estimate beyond (github.com/axiomhq/hyperloglog, about 0.4% error in 64 KiB): the exact
// set would grow with the users.
//
// # The window
//
// Both arms are counted from the first canary record in the query's window (Stats.From) to its end.
// One pass finds that record and counts at once; only a file out of time order around it needs a
// second pass (see read). Keys matched by the query's NotRandomised globs (path.Match, as the
// application's assignment) are left out of both arms and counted in Stats.NotRandomised.
//
// # Late feedback
//
// A record {"ts", "rollout", "request_id", "feedback" and/or "quality"} without a variant attaches to
// the earlier request with that request_id: its arm, its key bucket, its window; the latest value wins.
// The source remembers the most recent requests that carry a request_id in a bounded table
// (MaxLateRequests, 262,144 by default: 6.5 MiB, and half a MiB more for each further window ending at
// the same time); a late record whose request it does not find is counted in Stats.LateUnmatched and
// reported, never guessed. Late records after the window's end are not there yet; those before its
// start belong to earlier requests. Stats.LateRecords counts the late records attached. A query's RequestsTo (policy.WithMaturity) leaves out the requests after it, and their late
// records with them, while the late records of the requests kept count up to the window's end.
//
// # Segments and pairwise verdicts
//
// A record's "attrs" object (string values) holds the attributes analysis.segments splits by: with
// Query.Segments the pass counts each attribute's values (Stats.SegmentValues), with Query.Filter it
// keeps only the requests whose attrs hold the filter's values, their late records following them.
// A late record's "preferred" ("canary", "stable" or "tie") is a pairwise verdict on its request: it
// counts in the canary arm's canary_win_rate (a tie as half a win) at the request's key bucket,
// whichever arm served the request, the latest verdict of a request winning.
//
// # Bounds
//
// Only regular files are read: a named pipe, a device or a socket is refused at once, without blocking
// in open(2). Every read honours the context, a time bound (Timeout) and a size bound (MaxBytes, counted
// after decompression), so a file that grows without end or a gzip bomb fails the call instead of
// holding it.
//
// It belongs to the policy room and adapts a JSON Lines file to policy.Source.
package jsonl

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/hostfile"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// Defaults of a Source's limits.
const (
	// DefaultMaxLineBytes bounds a line; a longer one is skipped as malformed without being held whole.
	DefaultMaxLineBytes = 1 << 20
	// DefaultMaxMalformedLines is how many malformed line numbers a Stats call reports.
	DefaultMaxMalformedLines = 10
	// DefaultMaxBytes bounds the content one pass reads: 16 GiB, some 60 million records.
	DefaultMaxBytes = 16 << 30
	// DefaultTimeout bounds one Stats call: a 16 GiB file takes about a minute.
	DefaultTimeout = 5 * time.Minute
)

// Source reads request records from one JSON Lines file. It implements policy.Source.
// The zero limits mean the defaults.
type Source struct {
	// Path is the file to read; a name ending in .gz, or content starting with the gzip magic bytes,
	// is decompressed.
	Path string
	// MaxLineBytes bounds a line (DefaultMaxLineBytes when zero).
	MaxLineBytes int
	// MaxMalformedLines is how many malformed line numbers Stats reports (DefaultMaxMalformedLines
	// when zero).
	MaxMalformedLines int
	// MaxBytes bounds the content read in one pass, after decompression (DefaultMaxBytes when zero):
	// a file that never ends, or a gzip bomb, fails instead of holding the call.
	MaxBytes int64
	// Timeout bounds one Stats call when the caller's context has no earlier deadline
	// (DefaultTimeout when zero; negative: none).
	Timeout time.Duration
	// MaxLateRequests bounds how many recent requests a call remembers for late feedback records
	// (DefaultMaxLateRequests when zero); see the package doc.
	MaxLateRequests int
}

var _ policy.Source = (*Source)(nil)

// Open returns a source reading path. It does not touch the file: a missing file is reported by Stats,
// on every call, so a file that appears later is read.
func Open(path string) *Source {
	return &Source{Path: path}
}

// ErrNoRollout is returned for a query without a rollout name.
var ErrNoRollout = errors.New("query names no rollout")

// Stats streams the file once and returns the statistics of q.Rollout's records whose ts lies in
// q.Window (inclusive; a zero bound is open). Shadow records count toward the canary and Stats.Shadow.
// Blank lines are skipped. Only the metrics q names are returned, all built-in metrics when q names none; a name the source does
// not know is absent.
//
// Stats is idempotent and writes nothing. A file that does not exist yet is an error wrapping
// policy.ErrNoData. An unreadable file, or a read error midway (such as a truncated gzip stream), is an
// error wrapping policy.ErrSourceUnavailable and naming the path.
func (s *Source) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	all, err := s.StatsWindows(ctx, q, []policy.Window{q.Window})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

var _ policy.WindowsSource = (*Source)(nil)

// StatsWindows returns what Stats returns for q over each of windows (q.Window is ignored), in order,
// from one read of the file: each record is parsed once and counted in every window it falls in. The
// stage's window and its recent windows, or the ticks a report replays, cost one pass, not one each.
// Memory grows with the number of windows (one set of per-arm sums each), not with the file; the
// windows that end at the same time share one table of recent requests for late feedback.
func (s *Source) StatsWindows(ctx context.Context, q policy.Query, windows []policy.Window) ([]*policy.Stats, error) {
	if q.Rollout == "" {
		return nil, ErrNoRollout
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	caller := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// Only a regular file is read: a named pipe would block open(2) beyond any deadline (and leave a
	// thread behind at every pass), a device may never end.
	f, err := hostfile.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		// The application has not written its first record yet: no data, not a failure.
		return nil, fmt.Errorf("%w: %s does not exist yet (the application creates it with its first request record)", policy.ErrNoData, s.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: %w", s.Path, policy.ErrSourceUnavailable, err)
	}
	defer f.Close()
	fr := getReader(f, fileBufferBytes)
	defer putReader(fr, fileBufferBytes)
	r, release, err := s.decompress(fr)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", s.Path, policy.ErrSourceUnavailable, err)
	}
	defer release()
	reopen := func() (io.Reader, func(), error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, nil, err
		}
		fr.Reset(f)
		return s.decompress(fr)
	}
	st, err := s.read(ctx, r, q, windows, reopen)
	if err != nil {
		if cerr := caller.Err(); cerr != nil {
			return nil, fmt.Errorf("read %s: %w", s.Path, cerr) // the caller gave up: not the source's fault
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("read %s: %w: no answer within %v: %w", s.Path, policy.ErrSourceUnavailable, timeout, cerr)
		}
		return nil, fmt.Errorf("read %s: %w: %w", s.Path, policy.ErrSourceUnavailable, err)
	}
	return st, nil
}

// fileBufferBytes is the read size on the file itself.
const fileBufferBytes = 64 << 10

// decompress returns the content of br, gunzipped when the file's name or its first bytes say gzip,
// and the function that gives the decompressor back once the content is read.
func (s *Source) decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(2)
	if len(magic) == 0 {
		return br, func() {}, nil // an empty file holds no records, compressed or not
	}
	if strings.HasSuffix(s.Path, ".gz") || bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := getGzipReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { gzipReaders.Put(zr) }, nil
	}
	return br, func() {}, nil
}

// The buffers of finished Stats calls, for the next ones: a call borrows a line reader of its
// source's MaxLineBytes (a MiB by default), a file reader and a gzip decompressor, and gives them
// back when it returns. Concurrent calls each borrow their own; a buffer is never shared while in use.
var (
	// lineReaders holds a *sync.Pool of *bufio.Reader per buffer size.
	lineReaders sync.Map
	gzipReaders sync.Pool // of *gzip.Reader
)

// getReader returns a reader of r buffering exactly size bytes. Unlike bufio.NewReaderSize, it never
// returns r itself when r is a *bufio.Reader already: the buffer's size is the line limit.
func getReader(r io.Reader, size int) *bufio.Reader {
	if p, ok := lineReaders.Load(size); ok {
		if br, ok := p.(*sync.Pool).Get().(*bufio.Reader); ok {
			br.Reset(r)
			return br
		}
	}
	br := bufio.NewReaderSize(nil, size)
	br.Reset(r)
	return br
}

// putReader gives br, of size bytes, back for a later getReader, holding no reference to its source.
func putReader(br *bufio.Reader, size int) {
	br.Reset(nil)
	p, ok := lineReaders.Load(size)
	if !ok {
		p, _ = lineReaders.LoadOrStore(size, new(sync.Pool))
	}
	p.(*sync.Pool).Put(br)
}

// getGzipReader returns a gzip reader of r, reusing a decompressor when one is free. A reader whose
// header is bad goes back to the pool: Reset readies it for the next stream.
func getGzipReader(r io.Reader) (*gzip.Reader, error) {
	zr, ok := gzipReaders.Get().(*gzip.Reader)
	if !ok {
		return gzip.NewReader(r)
	}
	if err := zr.Reset(r); err != nil {
		gzipReaders.Put(zr)
		return nil, err
	}
	return zr, nil
}

// Read computes q's statistics from JSON Lines in r, with s's limits. It is Stats without the file:
// errors are r's, unwrapped, and ctx's. When the records around the first canary record are out of
// time order, the statistics need a second pass: r must then be an io.Seeker (as *os.File and
// *bytes.Reader are), else Read returns ErrNeedsSeek.
func (s *Source) Read(ctx context.Context, r io.Reader, q policy.Query) (*policy.Stats, error) {
	all, err := s.ReadWindows(ctx, r, q, []policy.Window{q.Window})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// ReadWindows is StatsWindows over r: what Read returns for q (whose own Window is ignored) over each
// of windows, in order, from one read of r, and a second one, which needs r to seek, only when records
// out of time order call for it.
func (s *Source) ReadWindows(ctx context.Context, r io.Reader, q policy.Query, windows []policy.Window) ([]*policy.Stats, error) {
	if q.Rollout == "" {
		return nil, ErrNoRollout
	}
	rewind := func() (io.Reader, func(), error) {
		seeker, ok := r.(io.Seeker)
		if !ok {
			return nil, nil, ErrNeedsSeek
		}
		if _, err := seeker.Seek(0, io.SeekStart); err != nil {
			return nil, nil, err
		}
		return r, func() {}, nil
	}
	return s.read(ctx, r, q, windows, rewind)
}

// ErrNeedsSeek is returned by Read for records out of time order around the first canary record
// in a reader that cannot be read twice.
var ErrNeedsSeek = errors.New("records out of time order need a second pass, and the reader cannot seek")

// ErrTooLarge is returned (wrapped) for content beyond Source.MaxBytes.
var ErrTooLarge = errors.New("metrics file larger than the source's limit")

// read makes one pass over r for all of windows and, for each window whose records before its first
// canary record turn out to be out of time order, a second one (together) over the content reopen
// returns.
//
// Both arms are compared from the stage's first canary record on. One pass finds it and counts at
// once: a canary record is always in (none is earlier than the first); a stable record is counted
// once a canary record at or before it has been seen. Stable records read before any canary record
// are held in a separate accumulator (so a file without canary records still reports stable), and
// dropped when the first canary record comes after all of them, which is always so in a file written
// in time order. Only a stable record skipped for a canary record that was not yet the earliest, or
// held and then found at or after the first canary, makes a second pass with the start known. A
// recorder appends in time order, so the second pass is rare and the benchmark never needs it.
func (s *Source) read(ctx context.Context, r io.Reader, q policy.Query, windows []policy.Window, reopen func() (io.Reader, func(), error)) ([]*policy.Stats, error) {
	passes := make([]*pass, len(windows))
	for i, w := range windows {
		wq := q
		wq.Window = w
		passes[i] = s.newPass(wq, time.Time{}, false)
		defer passes[i].release()
	}
	if err := s.scan(ctx, r, passes); err != nil {
		return nil, err
	}
	// The windows whose first pass left out stable records it should have counted are read again,
	// together, each with its start known.
	var again []*pass
	var at []int
	for i, p := range passes {
		if p.needsSecondPass() {
			wq := q
			wq.Window = windows[i]
			p2 := s.newPass(wq, p.firstCanary, true)
			defer p2.release()
			again, at = append(again, p2), append(at, i)
		}
	}
	if len(again) > 0 {
		r2, release, err := reopen()
		if err != nil {
			return nil, fmt.Errorf("second pass: %w", err)
		}
		defer release()
		if err := s.scan(ctx, r2, again); err != nil {
			return nil, err
		}
		for j, i := range at {
			passes[i] = again[j]
		}
	}
	out := make([]*policy.Stats, len(passes))
	for i, p := range passes {
		out[i] = p.result()
	}
	return out, nil
}

// scan reads every line of r into passes, in two stages that overlap on two cores: a reader goroutine
// splits and parses lines into batches of records of the rollout, and the calling goroutine adds each
// record to every pass, in file order. Malformed lines are the reader's to count.
func (s *Source) scan(ctx context.Context, r io.Reader, passes []*pass) error {
	p := passes[0] // the passes differ only in their windows
	maxLine := s.MaxLineBytes
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	maxBytes := s.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	bounded := &boundedReader{r: r, left: maxBytes, ctx: ctx}
	// The buffer holds one whole line: a line that does not fit is too long.
	br := getReader(bounded, maxLine+1)
	defer putReader(br, maxLine+1)
	full := make(chan *batch, batchesInFlight-1)
	free := make(chan *batch, batchesInFlight)
	for range batchesInFlight {
		free <- getBatch()
	}
	lines := lineReader{br: br, rollout: p.rollout, maxReported: p.maxReported,
		keepAttrs: len(p.filter) > 0 || len(p.segments) > 0}
	var readErr error
	go func() {
		defer close(full)
		readErr = lines.read(ctx, free, full)
	}()
	groups := s.groupPasses(passes)
	for b := range full {
		for i := range b.records {
			req := &b.records[i]
			if req.requestID != nil {
				req.id = hashID(req.requestID) // once for every group's table
			}
			for _, g := range groups {
				g.add(req)
			}
		}
		free <- b
	}
	for range batchesInFlight {
		putBatch(<-free)
	}
	for _, p := range passes {
		p.st.Malformed += lines.malformed
		for i, n := range lines.malformedLines {
			if len(p.st.MalformedLines) < p.maxReported {
				p.st.MalformedLines = append(p.st.MalformedLines, n)
				p.st.MalformedReasons = append(p.st.MalformedReasons, lines.malformedReasons[i])
			}
		}
		if !lines.seen {
			p.st.OtherRollouts = lines.others
		}
	}
	if readErr != nil {
		return readErr
	}
	return ctx.Err()
}

// batchesInFlight is how many batches the two stages of scan pass around, batchRecords how many
// records one holds.
const (
	batchesInFlight = 3
	batchRecords    = 512
)

// batch is parsed records of the rollout on their way from the reader to the pass. Their strings
// point into arena, which lives as long as the batch is not given back.
type batch struct {
	records []request
	arena   []byte
}

var batches = sync.Pool{New: func() any { return &batch{records: make([]request, 0, batchRecords)} }}

func getBatch() *batch { return batches.Get().(*batch) }

func putBatch(b *batch) { batches.Put(b.reset()) }

// reset empties b for the next records.
func (b *batch) reset() *batch {
	b.records, b.arena = b.records[:0], b.arena[:0]
	return b
}

// lineReader is scan's reading stage: it owns the line reader and the malformed lines' count.
type lineReader struct {
	br               *bufio.Reader
	rollout          []byte
	maxReported      int
	lineNo           int64
	malformed        int64
	malformedLines   []int64
	malformedReasons []string
	// seen says whether a record of the rollout was read; others names a few other rollouts read.
	seen   bool
	others []string
	// keepAttrs: the pass reads the records' attrs (segments); else they are dropped with the line.
	keepAttrs bool
}

// maxOtherRollouts is how many other rollouts' names a Stats call reports.
const maxOtherRollouts = 5

func (l *lineReader) malformedLine(why error) {
	l.malformed++
	if len(l.malformedLines) < l.maxReported {
		l.malformedLines = append(l.malformedLines, l.lineNo)
		l.malformedReasons = append(l.malformedReasons, why.Error())
	}
}

// other notes a rollout name other than the one read, while there are few.
func (l *lineReader) other(name []byte) {
	if l.seen || len(l.others) >= maxOtherRollouts || len(name) == 0 {
		return
	}
	for _, o := range l.others {
		if o == string(name) {
			return
		}
	}
	l.others = append(l.others, string(name))
}

// read parses every line into batches taken from free and sent on full, in order, and returns the
// read error (nil at the end of the content). It always sends the batch it holds before returning.
func (l *lineReader) read(ctx context.Context, free <-chan *batch, full chan<- *batch) error {
	var (
		parser parser
		req    request
	)
	b := (<-free).reset()
	defer func() { full <- b }()
	for {
		line, err := l.br.ReadSlice('\n')
		if len(line) > 0 || err == nil {
			l.lineNo++
			if l.lineNo&4095 == 0 {
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			l.malformedLine(errTooLong)
			if err := discardLine(ctx, l.br); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			continue
		}
		if len(line) > 0 && !blank(line) {
			if perr := parser.parse(line, &req); perr != nil {
				l.malformedLine(perr)
			} else if !bytes.Equal(req.rollout, l.rollout) {
				l.other(req.rollout)
			} else {
				l.seen = true
				// The line buffer and the parser's scratch are reused: the strings the pass reads move
				// into the batch's arena.
				req.rollout = nil
				req.variant = b.keep(req.variant)
				req.key = b.keep(req.key)
				req.requestID = b.keep(req.requestID)
				if l.keepAttrs {
					req.attrs = b.keep(req.attrs)
				} else {
					req.attrs = nil
				}
				req.lineNo = l.lineNo
				b.records = append(b.records, req)
				if len(b.records) == batchRecords {
					full <- b
					b = (<-free).reset()
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// keep copies s into the batch's arena (nil stays nil). A grown arena leaves the earlier strings in
// the old one, which stays alive as long as they do.
func (b *batch) keep(s []byte) []byte {
	if s == nil {
		return nil
	}
	start := len(b.arena)
	b.arena = append(b.arena, s...)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// boundedReader fails reads past a byte limit and once its context is done, so that a file that never
// ends (/dev/zero, a pipe nobody closes) cannot hold a Stats call.
type boundedReader struct {
	r    io.Reader
	left int64
	ctx  context.Context
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if b.left <= 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// discardLine drops the rest of an overlong line without holding it, checking ctx as it goes.
func discardLine(ctx context.Context, br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// pass is the state of one pass over the records.
type pass struct {
	rollout  []byte
	from, to time.Time
	// requestsTo: requests after it are left out, their late records too (policy.Query.RequestsTo).
	requestsTo time.Time
	metrics    []policy.MetricQuery
	globs      []string
	// globPrefixes holds each glob's literal prefix, up to its first special character.
	globPrefixes [][]byte
	// fixed: the window start is known (a second pass), stable records before it are out.
	fixed bool
	start time.Time

	stable, canary *arm
	// pending holds the stable records read before any canary record; pendingLatest is the latest ts
	// among them. It is dropped at the first canary record.
	pending       *arm
	pendingLatest time.Time
	// firstCanary is the earliest canary record's ts so far; skippedLatest the latest ts of a stable
	// record left out for being before it (skipped tells whether there was one).
	firstCanary   time.Time
	skippedLatest time.Time
	skipped       bool

	// late is the table of recent requests the pass shares with the passes whose window ends at the
	// same time (passGroup), where its marks are those of pass view.
	late *lateIndex
	view int
	// filter keeps the requests whose attrs hold these values (Query.Filter); segments names the
	// attributes whose values are counted in values (Query.Segments). attrs reads them.
	filter      []policy.Attr
	segments    []string
	values      []map[string]int64
	attrs       parser
	maxReported int
	st          policy.Stats
}

func (s *Source) newPass(q policy.Query, start time.Time, fixed bool) *pass {
	maxReported := s.MaxMalformedLines
	if maxReported <= 0 {
		maxReported = DefaultMaxMalformedLines
	}
	p := &pass{rollout: []byte(q.Rollout), from: q.Window.From, to: q.Window.To, requestsTo: q.RequestsTo, metrics: q.Wanted(),
		globs: q.NotRandomised, fixed: fixed, start: start, stable: getArm(), canary: getArm(),
		maxReported: maxReported}
	for _, g := range q.NotRandomised {
		p.globPrefixes = append(p.globPrefixes, []byte(g[:literalPrefix(g)]))
	}
	p.filter, p.segments = q.Filter, q.Segments
	for range q.Segments {
		p.values = append(p.values, map[string]int64{})
	}
	if !fixed {
		p.pending = getArm()
	}
	return p
}

func (p *pass) release() {
	for _, a := range []*arm{p.stable, p.canary, p.pending} {
		if a != nil {
			putArm(a)
		}
	}
	p.stable, p.canary, p.pending = nil, nil, nil
}

// maxLateRequests is the size of a table of recent requests: MaxLateRequests rounded up to a power of
// two, as the table's slots are.
func (s *Source) maxLateRequests() int {
	maxLate := s.MaxLateRequests
	if maxLate <= 0 {
		maxLate = DefaultMaxLateRequests
	}
	size := 1
	for size < maxLate {
		size <<= 1
	}
	return size
}

// passGroup is the passes of one scan whose windows end at the same time (a stage's window and its
// recent windows end now). They remember the same requests for late records, those up to that end, so
// they share one table of them.
type passGroup struct {
	to     time.Time
	passes []*pass
	late   *lateIndex
	marks  []lateMark // scratch: each pass's mark of the request being put
}

// groupPasses sorts passes into groups by their window's end, in order of first appearance.
func (s *Source) groupPasses(passes []*pass) []*passGroup {
	var groups []*passGroup
	for _, p := range passes {
		var g *passGroup
		for _, o := range groups {
			if o.to.Equal(p.to) {
				g = o
				break
			}
		}
		if g == nil {
			g = &passGroup{to: p.to}
			groups = append(groups, g)
		}
		p.view = len(g.passes)
		g.passes = append(g.passes, p)
		g.marks = append(g.marks, lateMark{})
	}
	for _, g := range groups {
		g.late = newLateIndex(s.maxLateRequests(), len(g.passes))
		for _, p := range g.passes {
			p.late = g.late
		}
	}
	return groups
}

// add counts one valid record of the rollout in every pass of the group.
func (g *passGroup) add(req *request) {
	if !g.to.IsZero() && req.ts.After(g.to) {
		return // not yet happened at the windows' end; a request's late records are ignored too
	}
	if req.late {
		g.addLate(req)
		return
	}
	if req.requestID == nil {
		for _, p := range g.passes {
			p.add(req)
		}
		return
	}
	for v, p := range g.passes {
		g.marks[v] = p.add(req)
	}
	// req.bucket is set when a pass counted the request: the others never read it.
	i := g.late.put(req.id, req.bucket, req.quality)
	copy(g.late.markAt(i), g.marks)
}

// addLate attaches a late record, at or before the windows' end, to its request in every pass whose
// window it is in.
func (g *passGroup) addLate(req *request) {
	i := g.late.get(req.id)
	// The passes the record reaches take its quality, as the shared one unless a pass it does not reach
	// counts the request and reads the shared quality. That takes a record stamped before its request
	// (an out-of-order file), with a window starting between the two.
	shared := true
	if i >= 0 && req.has&hasQuality != 0 {
		for v, p := range g.passes {
			m := *g.late.mark(v, i)
			if p.before(req.ts) && p.armOf(m) != nil && m.flags&(flagQuality|flagOwnQuality) == flagQuality {
				shared = false
				break
			}
		}
	}
	attached := false
	for _, p := range g.passes {
		switch {
		case p.before(req.ts):
			// Its request is before the window too, in a file in time order.
		case i < 0:
			p.st.LateUnmatched++
		default:
			attached = p.addLate(req, i, shared) || attached
		}
	}
	if shared && attached && req.has&hasQuality != 0 {
		g.late.quality[i] = req.quality
	}
}

// before reports whether ts is before the pass's window.
func (p *pass) before(ts time.Time) bool {
	return !p.from.IsZero() && ts.Before(p.from)
}

// add counts one valid request of the rollout at or before the window's end, and returns what a late
// record of it will need to know in this pass.
func (p *pass) add(req *request) lateMark {
	var mark lateMark
	if p.before(req.ts) || !p.requestsTo.IsZero() && req.ts.After(p.requestsTo) {
		return mark
	}
	if len(p.filter) > 0 && !p.matches(req.attrs) {
		return mark // another segment's request: its late records are silently left out too
	}
	if req.key != nil && p.notRandomised(req.key) {
		p.st.NotRandomised++
		return mark
	}
	p.countValues(req.attrs)
	req.identify()
	bucket := int(req.bucket)
	var a *arm
	switch {
	case req.variant[0] == 'c':
		if p.firstCanary.IsZero() || req.ts.Before(p.firstCanary) {
			if p.pending != nil {
				// The first canary record: the held stable records are before it, or the file is out
				// of order and a second pass sorts them out.
				if p.pending.requests > 0 {
					p.skip(p.pendingLatest)
				}
				putArm(p.pending)
				p.pending = nil
			}
			p.firstCanary = req.ts
		}
		if req.shadow {
			p.st.Shadow++
		}
		a = p.canary
		mark.flags |= flagCanary
	case p.fixed:
		if req.ts.Before(p.start) {
			return mark
		}
		a = p.stable
	case p.pending != nil:
		a = p.pending
		if req.ts.After(p.pendingLatest) {
			p.pendingLatest = req.ts
		}
		mark.state = statePending
	case req.ts.Before(p.firstCanary):
		p.skip(req.ts)
		return mark
	default:
		a = p.stable
	}
	if mark.state == stateOut {
		mark.state = stateCounted
	}
	if req.has&hasFeedback != 0 {
		mark.flags |= flagFeedback
		if req.feedback < 0 {
			mark.flags |= flagNegative
		}
	}
	if req.has&hasQuality != 0 {
		mark.flags |= flagQuality // the value is the table's (lateIndex.put)
	}
	if req.has&hasPreferred != 0 {
		// A verdict on the request itself: the canary's win share, wherever the request was served.
		mark.flags |= preferFlags(req.preferred)
		p.canary.addWin(bucket, req.preferred)
	}
	a.add(req, bucket)
	return mark
}

// matches reports whether attrs (a record's raw attrs) holds every value of the pass's filter.
func (p *pass) matches(attrs []byte) bool {
	if attrs == nil {
		return false
	}
	for _, f := range p.filter {
		v, ok := p.attrs.attrValue(attrs, f.Name)
		if !ok || string(v) != f.Value {
			return false
		}
	}
	return true
}

// countValues counts the values of the segment attributes a request carries.
func (p *pass) countValues(attrs []byte) {
	if attrs == nil {
		return
	}
	for i, name := range p.segments {
		if v, ok := p.attrs.attrValue(attrs, name); ok && len(v) > 0 {
			p.values[i][string(v)]++
		}
	}
}

// notRandomised reports whether key matches one of the query's NotRandomised globs. A key that starts
// with none of the globs' literal prefixes cannot match, and is told apart without converting it.
func (p *pass) notRandomised(key []byte) bool {
	for i, g := range p.globs {
		if bytes.HasPrefix(key, p.globPrefixes[i]) && rollouts.MatchesAny([]string{g}, string(key)) {
			return true
		}
	}
	return false
}

// skip notes a stable record left out for being before the first canary record known so far.
func (p *pass) skip(ts time.Time) {
	if !p.skipped || ts.After(p.skippedLatest) {
		p.skipped, p.skippedLatest = true, ts
	}
}

// armOf returns the arm that counts the request of mark m, or nil: not counted, or held among the
// stable records that the first canary record has since dropped.
func (p *pass) armOf(m lateMark) *arm {
	switch {
	case m.state == stateCounted && m.flags&flagCanary != 0:
		return p.canary
	case m.state == stateCounted:
		return p.stable
	case m.state == statePending && p.pending != nil:
		return p.pending
	}
	return nil
}

// addLate attaches a late feedback or score in the window to its request, in slot i of the late
// table, and reports whether it did: the latest value of each field wins. shared tells setQuality
// where a new quality goes.
func (p *pass) addLate(req *request, i int, shared bool) bool {
	e := p.late.mark(p.view, i)
	a := p.armOf(*e)
	if a == nil {
		return false // its request is not counted: the late value is not either
	}
	p.st.LateRecords++
	bucket := p.late.slots[i].bucket
	m := &a.buckets[bucket]
	if req.has&hasFeedback != 0 {
		v := b2f(req.feedback < 0)
		if e.flags&flagFeedback != 0 {
			m[mNegFeedback].replace(b2f(e.flags&flagNegative != 0), v)
		} else {
			m[mNegFeedback].add(v)
		}
		e.flags |= flagFeedback
		e.flags &^= flagNegative
		if v == 1 {
			e.flags |= flagNegative
		}
	}
	if req.has&hasQuality != 0 {
		if e.flags&flagQuality != 0 {
			m[mQuality].replace(p.late.qualityOf(p.view, i), req.quality)
		} else {
			m[mQuality].add(req.quality)
		}
		e.flags |= flagQuality
		p.late.setQuality(p.view, i, req.quality, shared)
	}
	if req.has&hasPreferred != 0 {
		// A pairwise verdict counts in the canary's win share whichever arm served the request it
		// names: on shadow traffic that is the stable answer the user saw.
		win := &p.canary.buckets[bucket][mWin]
		if e.flags&flagPreferred != 0 {
			win.replace(preferValue(e.flags), req.preferred)
		} else {
			p.canary.addWin(int(bucket), req.preferred)
		}
		e.flags &^= flagPreferred | flagPreferCanary | flagPreferTie
		e.flags |= preferFlags(req.preferred)
	}
	return true
}

// needsSecondPass reports whether a stable record was left out that the first canary record, as it
// finally stands, would have let in.
func (p *pass) needsSecondPass() bool {
	return !p.fixed && p.skipped && !p.firstCanary.IsZero() && !p.skippedLatest.Before(p.firstCanary)
}

// result returns the statistics of the pass.
func (p *pass) result() *policy.Stats {
	st := p.st
	stable := p.stable
	if p.pending != nil {
		stable = p.pending // no canary record: stable over the whole window
	}
	st.From = p.firstCanary
	st.RequestsTo = p.requestsTo
	st.Stable = stable.stats(p.metrics)
	st.Canary = p.canary.stats(p.metrics)
	// Exact below MaxExactKeys per arm (a set of 64-bit hashes), a HyperLogLog estimate beyond.
	st.KeysExact = stable.units.sketch == nil && p.canary.units.sketch == nil
	st.Unit = policy.UnitRequest
	if stable.keyed || p.canary.keyed {
		st.Unit = policy.UnitKey
	}
	if len(p.segments) > 0 {
		st.SegmentValues = map[string][]string{}
		for i, name := range p.segments {
			st.SegmentValues[name] = policy.TopSegmentValues(p.values[i])
		}
	}
	return &st
}

// identify sets req.unit and req.bucket, once for all the passes that count req. The unit is the key,
// else the request_id, else the line: a keyless request is its own unit.
func (req *request) identify() {
	if req.identified {
		return
	}
	req.identified = true
	unit := req.key
	if unit == nil {
		unit = req.requestID
	}
	var line [32]byte
	if unit == nil {
		unit = strconv.AppendInt(append(line[:0], "\x00line:"...), req.lineNo, 10)
	}
	req.unit, req.bucket = hash64(unit), uint16(keyBucket(unit))
}

// literalPrefix is the length of g's prefix without a path.Match special character.
func literalPrefix(g string) int {
	if i := strings.IndexAny(g, `*?[\`); i >= 0 {
		return i
	}
	return len(g)
}

// keyBucket is policy.KeyBucket of a key held as bytes.
func keyBucket(key []byte) int {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int(h % policy.KeyBuckets)
}

func blank(line []byte) bool {
	return len(bytes.TrimSpace(line)) == 0
}
