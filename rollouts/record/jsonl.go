package record

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// JSONL writes request records as JSON Lines, one object a line, in the exact shape the `file:` source
// reads. Writes are buffered: call Flush to push them out (for instance on a ticker) and Close at exit.
// It is safe for concurrent use.
type JSONL struct {
	// Now stamps requests that carry no Time. Nil means every request must carry its own Time: the
	// application passes time.Now here, tests a fixed clock.
	Now func() time.Time

	mu     sync.Mutex
	w      *bufio.Writer
	closer io.Closer // the file OpenJSONL opened, closed by Close
	line   []byte
	err    error // the first write error; later calls return it
	closed bool
}

var _ Observer = (*JSONL)(nil)

// ErrClosed is returned by a recorder used after Close.
var ErrClosed = errors.New("recorder closed")

// NewJSONL returns a recorder writing to w. Close flushes but does not close w.
func NewJSONL(w io.Writer) *JSONL {
	return &JSONL{w: bufio.NewWriterSize(w, 64<<10)}
}

// OpenJSONL returns a recorder appending to the file at path, created (mode 0644) if missing. Close
// flushes and closes the file.
func OpenJSONL(path string) (*JSONL, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open request log: %w", err)
	}
	j := NewJSONL(f)
	j.closer = f
	return j, nil
}

var _ LateObserver = (*JSONL)(nil)

// hasClock reports whether j stamps a request without a Time (Multi asks).
func (j *JSONL) hasClock() bool { return j.Now != nil }

// Record appends r as one line. An invalid request returns ErrInvalid and writes nothing; a write error
// is returned now and by every later call.
func (j *JSONL) Record(r Request) error {
	if err := r.Validate(j.Now != nil); err != nil {
		return err
	}
	return j.appendLine(func(line []byte) []byte {
		if r.Time.IsZero() {
			r.Time = j.Now()
		}
		return AppendJSON(line, &r)
	})
}

// RecordLate appends late feedback l as one line {"ts", "rollout", "request_id", "feedback", "quality"}.
// An invalid record returns ErrInvalid and writes nothing.
func (j *JSONL) RecordLate(l Late) error {
	if err := l.Validate(j.Now != nil); err != nil {
		return err
	}
	return j.appendLine(func(line []byte) []byte {
		if l.Time.IsZero() {
			l.Time = j.Now()
		}
		return AppendLateJSON(line, &l)
	})
}

// appendLine renders one line with render, under the lock, and writes it whole.
func (j *JSONL) appendLine(render func(line []byte) []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if j.err != nil {
		return j.err
	}
	j.line = render(j.line[:0])
	return j.writeLine()
}

// writeLine writes j.line; j.mu is held.
func (j *JSONL) writeLine() error {
	// Whole lines per write: a reader tailing the file, or another process appending to it, never sees
	// half a record.
	if j.w.Buffered() > 0 && j.w.Available() < len(j.line) {
		if err := j.w.Flush(); err != nil {
			j.err = fmt.Errorf("write request record: %w", err)
			return j.err
		}
	}
	if _, err := j.w.Write(j.line); err != nil {
		j.err = fmt.Errorf("write request record: %w", err)
		return j.err
	}
	return nil
}

// Flush writes the buffered records out.
func (j *JSONL) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flush()
}

func (j *JSONL) flush() error {
	if j.closed {
		return ErrClosed
	}
	if j.err != nil {
		return j.err
	}
	if err := j.w.Flush(); err != nil {
		j.err = fmt.Errorf("flush request records: %w", err)
		return j.err
	}
	return nil
}

// Close flushes the records and closes the file OpenJSONL opened. Later calls return ErrClosed.
func (j *JSONL) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.flush()
	if errors.Is(err, ErrClosed) {
		return err
	}
	j.closed = true
	if j.closer != nil {
		if cerr := j.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close request log: %w", cerr)
		}
	}
	return err
}

// AppendJSON appends r as one JSON Lines record, newline included, in the contract's field order; unset
// optional fields are left out, and the time is written in UTC with nanoseconds as needed.
func AppendJSON(b []byte, r *Request) []byte {
	b = append(b, `{"ts":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","rollout":`...)
	b = appendString(b, r.Rollout)
	b = append(b, `,"variant":`...)
	b = appendString(b, r.Variant)
	if r.Shadow {
		b = append(b, `,"shadow":true`...)
	}
	for _, f := range [...]struct{ name, value string }{{"request_id", r.RequestID}, {"key", r.Key}, {"model", r.Model}, {"prompt", r.Prompt}} {
		if f.value != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = appendString(b, f.value)
		}
	}
	if r.Latency != nil {
		b = append(b, `,"latency_ms":`...)
		b = strconv.AppendFloat(b, float64(*r.Latency)/float64(time.Millisecond), 'f', -1, 64)
	}
	b = append(b, `,"error":`...)
	b = strconv.AppendBool(b, r.Error)
	b = append(b, `,"refusal":`...)
	b = strconv.AppendBool(b, r.Refusal)
	if r.InputTokens != nil {
		b = append(b, `,"input_tokens":`...)
		b = strconv.AppendInt(b, *r.InputTokens, 10)
	}
	if r.OutputTokens != nil {
		b = append(b, `,"output_tokens":`...)
		b = strconv.AppendInt(b, *r.OutputTokens, 10)
	}
	if r.CostUSD != nil {
		b = append(b, `,"cost_usd":`...)
		b = strconv.AppendFloat(b, *r.CostUSD, 'g', -1, 64)
	}
	if r.Quality != nil {
		b = append(b, `,"quality":`...)
		b = strconv.AppendFloat(b, *r.Quality, 'g', -1, 64)
	}
	if r.Feedback != nil {
		b = append(b, `,"feedback":`...)
		b = strconv.AppendInt(b, int64(*r.Feedback), 10)
	}
	if len(r.Attrs) > 0 {
		names := make([]string, 0, len(r.Attrs))
		for k := range r.Attrs {
			names = append(names, k)
		}
		sort.Strings(names) // the same request, the same line
		b = append(b, `,"attrs":{`...)
		for i, k := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, r.Attrs[k])
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

// AppendLateJSON appends late feedback l as one JSON Lines record, newline included: ts, rollout,
// request_id, then feedback and quality where set. The variant is not written: the source takes the
// request's.
func AppendLateJSON(b []byte, l *Late) []byte {
	b = append(b, `{"ts":"`...)
	b = l.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","rollout":`...)
	b = appendString(b, l.Rollout)
	b = append(b, `,"request_id":`...)
	b = appendString(b, l.RequestID)
	if l.Quality != nil {
		b = append(b, `,"quality":`...)
		b = strconv.AppendFloat(b, *l.Quality, 'g', -1, 64)
	}
	if l.Feedback != nil {
		b = append(b, `,"feedback":`...)
		b = strconv.AppendInt(b, int64(*l.Feedback), 10)
	}
	if l.Preferred != "" {
		b = append(b, `,"preferred":`...)
		b = appendString(b, l.Preferred)
	}
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
