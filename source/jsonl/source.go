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
	r, err := s.decompress(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", s.Path, policy.ErrSourceUnavailable, err)
	}
	st, err := s.read(ctx, r, q)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %s: %w", s.Path, err)
		}
		return nil, fmt.Errorf("read %s: %w: %w", s.Path, policy.ErrSourceUnavailable, err)
	}
	return st, nil
}

// decompress returns the file's content, gunzipped when its name or its first bytes say gzip.
func (s *Source) decompress(f *os.File) (io.Reader, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 0 {
		return br, nil // an empty file holds no records, compressed or not
	}
	if strings.HasSuffix(s.Path, ".gz") || bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	}
	return br, nil
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
	br := bufio.NewReaderSize(r, maxLine+1)
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
	st.Stable = arms[0].stats(q.Metrics)
	st.Canary = arms[1].stats(q.Metrics)
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
