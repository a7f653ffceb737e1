// Package jsonl is the embedded metrics source, `file:PATH` in a spec: JSON Lines request records, one
// request a line, plain or gzip-compressed.
//
// A Source streams the file on every Stats call and keeps only sufficient statistics per arm (counts,
// sums, sums of squares and a latency sketch), never the records, so memory stays flat however large the
// file grows. A line it cannot read is counted and reported with its line number, never fatal and never
// read as zeros; a missing optional field leaves that metric without data.
package jsonl

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/rollout-dev/rollout/policy"
)

// Defaults of a Source's limits.
const (
	// DefaultMaxLineBytes bounds a line; a longer one is skipped as malformed without being held whole.
	DefaultMaxLineBytes = 1 << 20
	// DefaultMaxMalformedLines is how many malformed line numbers a Stats call reports.
	DefaultMaxMalformedLines = 10
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
// Stats is idempotent and writes nothing. A missing or unreadable file, or a read error midway (such as
// a truncated gzip stream), is an error wrapping policy.ErrSourceUnavailable and naming the path.
func (s *Source) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	if q.Rollout == "" {
		return nil, ErrNoRollout
	}
	f, err := os.Open(s.Path)
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
	st, err := s.read(ctx, r, q)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %s: %w", s.Path, err)
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
// errors are r's, unwrapped, and ctx's.
func (s *Source) Read(ctx context.Context, r io.Reader, q policy.Query) (*policy.Stats, error) {
	if q.Rollout == "" {
		return nil, ErrNoRollout
	}
	return s.read(ctx, r, q)
}

func (s *Source) read(ctx context.Context, r io.Reader, q policy.Query) (*policy.Stats, error) {
	maxLine := s.MaxLineBytes
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	maxReported := s.MaxMalformedLines
	if maxReported <= 0 {
		maxReported = DefaultMaxMalformedLines
	}
	// The buffer holds one whole line: a line that does not fit is too long.
	br := getReader(r, maxLine+1)
	defer putReader(br, maxLine+1)
	var (
		p        parser
		req      request
		arms     [2]arm
		st       policy.Stats
		lineNo   int64
		rollout  = []byte(q.Rollout)
		from, to = q.Window.From, q.Window.To
	)
	malformed := func() {
		st.Malformed++
		if len(st.MalformedLines) < maxReported {
			st.MalformedLines = append(st.MalformedLines, lineNo)
		}
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 || err == nil {
			lineNo++
			if lineNo&4095 == 0 {
				if cerr := ctx.Err(); cerr != nil {
					return nil, cerr
				}
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			malformed()
			if err := discardLine(br); err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			continue
		}
		if len(line) > 0 && !blank(line) {
			if perr := p.parse(line, &req); perr != nil {
				malformed()
			} else if bytes.Equal(req.rollout, rollout) &&
				(from.IsZero() || !req.ts.Before(from)) && (to.IsZero() || !req.ts.After(to)) {
				a := &arms[0]
				if req.variant[0] == 'c' {
					a = &arms[1]
					if req.shadow {
						st.Shadow++
					}
				}
				a.add(&req)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.Stable = arms[0].stats(q.Wanted())
	st.Canary = arms[1].stats(q.Wanted())
	return &st, nil
}

// discardLine drops the rest of an overlong line without holding it.
func discardLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

func blank(line []byte) bool {
	return len(bytes.TrimSpace(line)) == 0
}
