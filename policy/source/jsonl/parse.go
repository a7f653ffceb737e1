package jsonl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Field bits of a parsed record: which optional fields the line carries.
const (
	hasLatency = 1 << iota
	hasError
	hasRefusal
	hasInputTokens
	hasOutputTokens
	hasCost
	hasQuality
	hasFeedback
	hasPreferred
)

// maxDepth bounds the nesting of unknown values, as encoding/json does.
const maxDepth = 10000

// Variant values a record may carry.
const (
	variantStable = "stable"
	variantCanary = "canary"
)

// Reasons a line is malformed. They are kept apart from syntax errors so that tests can tell them apart.
var (
	errSyntax   = errors.New("invalid JSON")
	errType     = errors.New("field of the wrong type")
	errMissing  = errors.New("missing required field")
	errVariant  = errors.New("variant must be stable or canary")
	errTime     = errors.New("ts is not an RFC 3339 time")
	errRange    = errors.New("number out of range")
	errNegative = errors.New("negative value where only non-negative makes sense")
	errShadow   = errors.New("shadow record on the stable variant")
	errLate     = errors.New("late record without feedback, quality or preferred")
	errAttrs    = errors.New("attrs must be an object of string values")
	errPrefer   = errors.New(`preferred must be "canary", "stable" or "tie"`)
	errTooLong  = errors.New("line longer than the source's MaxLineBytes")
)

// request is one record, parsed without allocating: string fields point into the line buffer.
type request struct {
	ts      time.Time
	rollout []byte
	variant []byte
	shadow  bool
	has     uint16
	// key is the assignment key and requestID the request's id; nil when absent.
	key       []byte
	requestID []byte
	// late marks a late feedback record: request_id and no variant; only feedback, quality and
	// preferred count.
	late bool
	// attrs is the raw text of the record's attrs object (nil when absent); see attrValue.
	attrs []byte
	// preferred is a pairwise verdict's winner: preferCanary, preferStable or preferTie.
	preferred float64

	latencyMs    float64
	isError      bool
	refusal      bool
	inputTokens  float64
	outputTokens float64
	costUSD      float64
	quality      float64
	feedback     float64

	// Not parse's: lineNo is the record's line, set by the reader; id is hashID of requestID (0
	// without one), set once for all the passes by scan; unit, the hash64 of the request's unit, and
	// bucket, its key bucket, are set by identify when a pass first counts the request.
	lineNo     int64
	id         uint64
	unit       uint64
	bucket     uint16
	identified bool
}

// parser reads one JSON object per line. It is a hand-written fast path for the flat records of the
// contract: it validates the whole line as JSON (unknown keys may hold any value) and decodes only the
// known fields, without allocating in the common case of strings with no escapes.
type parser struct {
	b     []byte
	i     int
	stack []byte // open brackets while skipping an unknown value
	ts    []byte
	// scratch holds decoded strings that had escapes, one slot per field, so that req's slices stay
	// valid for the whole line.
	scratch [9][]byte
}

// Scratch slots of the strings a parser decodes.
const (
	slotVariant = iota
	slotTS
	slotRollout
	slotKey
	slotAssignmentKey
	slotRequestID
	slotAttrKey
	slotAttrValue
	slotAttrMatch
)

// The canary's share of a pairwise verdict: a win, a loss, or a tie counted as half a win.
const (
	preferCanary = 1
	preferStable = 0
	preferTie    = 0.5
)

// parse decodes line into req. It returns a wrapped reason when the line is not a valid record.
func (p *parser) parse(line []byte, req *request) error {
	*req = request{}
	p.b, p.i, p.ts = line, 0, nil
	p.ws()
	if !p.eat('{') {
		return errSyntax
	}
	p.ws()
	if p.eat('}') {
		return p.finish(req)
	}
	for {
		p.ws()
		key, err := p.str(slotKey)
		if err != nil {
			return err
		}
		p.ws()
		if !p.eat(':') {
			return errSyntax
		}
		p.ws()
		if err := p.field(key, req); err != nil {
			return err
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return errSyntax
	}
	return p.finish(req)
}

// finish checks that nothing follows the object and that the required fields are there and valid.
func (p *parser) finish(req *request) error {
	p.ws()
	if p.i != len(p.b) {
		return errSyntax
	}
	if p.ts == nil || len(req.rollout) == 0 {
		return errMissing
	}
	if req.variant == nil && len(req.requestID) > 0 {
		// A late feedback record: {"ts", "rollout", "request_id", "feedback"|"quality"}.
		if req.has&(hasFeedback|hasQuality|hasPreferred) == 0 {
			return errLate
		}
		req.late = true
	} else if req.variant == nil {
		return errMissing
	}
	switch string(req.variant) {
	case "":
		if !req.late {
			return errVariant
		}
	case variantStable:
		if req.shadow {
			return errShadow
		}
	case variantCanary:
	default:
		return errVariant
	}
	ts, err := time.Parse(time.RFC3339Nano, string(p.ts))
	if err != nil {
		return fmt.Errorf("%w: %q", errTime, p.ts)
	}
	req.ts = ts
	return nil
}

// field decodes the value of key into req, or skips it when the key is not one the source reads.
func (p *parser) field(key []byte, req *request) error {
	var err error
	switch string(key) {
	case "ts":
		p.ts, err = p.optStr(slotTS)
	case "rollout":
		req.rollout, err = p.optStr(slotRollout)
	case "variant":
		req.variant, err = p.optStr(slotVariant)
	case "shadow":
		req.shadow, _, err = p.optBool()
	case "key":
		req.key, err = p.idField(slotAssignmentKey)
	case "request_id":
		req.requestID, err = p.idField(slotRequestID)
	case "error":
		err = p.boolField(&req.isError, &req.has, hasError)
	case "refusal":
		err = p.boolField(&req.refusal, &req.has, hasRefusal)
	case "latency_ms":
		err = p.numField(&req.latencyMs, &req.has, hasLatency, true)
	case "input_tokens":
		err = p.numField(&req.inputTokens, &req.has, hasInputTokens, true)
	case "output_tokens":
		err = p.numField(&req.outputTokens, &req.has, hasOutputTokens, true)
	case "cost_usd":
		err = p.numField(&req.costUSD, &req.has, hasCost, true)
	case "quality":
		err = p.numField(&req.quality, &req.has, hasQuality, false)
	case "feedback":
		err = p.numField(&req.feedback, &req.has, hasFeedback, false)
	case "attrs":
		req.attrs, err = p.attrs()
	case "preferred":
		err = p.preferred(req)
	default:
		err = p.skip()
	}
	return err
}

func (p *parser) boolField(dst *bool, has *uint16, bit uint16) error {
	v, set, err := p.optBool()
	if err != nil {
		return err
	}
	*dst = v
	if set {
		*has |= bit
	} else {
		*has &^= bit
	}
	return nil
}

func (p *parser) numField(dst *float64, has *uint16, bit uint16, nonNegative bool) error {
	if p.literal("null") {
		*has &^= bit
		return nil
	}
	v, err := p.num()
	if err != nil {
		return err
	}
	if nonNegative && v < 0 {
		return errNegative
	}
	*dst = v
	*has |= bit
	return nil
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) literal(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// optStr reads a string or null (nil, no error). slot picks the scratch buffer for escaped strings.
func (p *parser) optStr(slot int) ([]byte, error) {
	if p.literal("null") {
		return nil, nil
	}
	if p.i < len(p.b) && p.b[p.i] != '"' {
		if err := p.skip(); err != nil {
			return nil, err
		}
		return nil, errType
	}
	s, err := p.str(slot)
	if s == nil && err == nil {
		s = []byte{}
	}
	return s, err
}

// idField reads an identifier (key, request_id): a string, a number taken as its text (numeric user
// ids), or null (nil).
func (p *parser) idField(slot int) ([]byte, error) {
	if p.i < len(p.b) && (p.b[p.i] == '-' || '0' <= p.b[p.i] && p.b[p.i] <= '9') {
		start := p.i
		if !p.scanNumber() {
			return nil, errSyntax
		}
		return p.b[start:p.i], nil
	}
	return p.optStr(slot)
}

func (p *parser) optBool() (v, set bool, err error) {
	switch {
	case p.literal("true"):
		return true, true, nil
	case p.literal("false"):
		return false, true, nil
	case p.literal("null"):
		return false, false, nil
	}
	if err := p.skip(); err != nil {
		return false, false, err
	}
	return false, false, errType
}

// str reads a JSON string at p.i and returns its decoded bytes: a slice of the line when it has no
// escapes, else a decoded copy in scratch[slot].
func (p *parser) str(slot int) ([]byte, error) {
	quoted, escaped, err := p.quoted()
	if err != nil {
		return nil, err
	}
	if escaped {
		return p.unescape(quoted, slot)
	}
	return quoted[1 : len(quoted)-1], nil
}

// unescape decodes a quoted JSON string with escapes; rare, so it leans on encoding/json.
func (p *parser) unescape(quoted []byte, slot int) ([]byte, error) {
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return nil, errSyntax
	}
	p.scratch[slot] = append(p.scratch[slot][:0], s...)
	return p.scratch[slot], nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// num reads a JSON number. A value of another type is a type error; a value too large for a float64
// is out of range, as encoding/json has it.
func (p *parser) num() (float64, error) {
	start := p.i
	if !p.scanNumber() {
		p.i = start
		if p.i < len(p.b) && (p.b[p.i] == '"' || p.b[p.i] == '{' || p.b[p.i] == '[' || p.b[p.i] == 't' || p.b[p.i] == 'f') {
			if err := p.skip(); err != nil {
				return 0, err
			}
			return 0, errType
		}
		return 0, errSyntax
	}
	v, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, errRange
	}
	return v, nil
}

// scanNumber moves past -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and reports whether it found one.
func (p *parser) scanNumber() bool {
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.i < len(p.b) && '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.eat('.') {
		if p.digits() == 0 {
			return false
		}
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

func (p *parser) digits() int {
	n := 0
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// skip moves past one JSON value of any type, validating it, without recursion.
func (p *parser) skip() error {
	p.stack = p.stack[:0]
	for {
		p.ws()
		if p.i >= len(p.b) {
			return errSyntax
		}
		// One value.
		switch c := p.b[p.i]; {
		case c == '{' || c == '[':
			if len(p.stack) >= maxDepth {
				return errSyntax
			}
			p.i++
			p.stack = append(p.stack, c)
			p.ws()
			if c == '{' && p.eat('}') || c == '[' && p.eat(']') {
				p.stack = p.stack[:len(p.stack)-1]
				break
			}
			if c == '{' {
				if err := p.objectKey(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, _, err := p.quoted(); err != nil {
				return err
			}
		case c == 't':
			if !p.literal("true") {
				return errSyntax
			}
		case c == 'f':
			if !p.literal("false") {
				return errSyntax
			}
		case c == 'n':
			if !p.literal("null") {
				return errSyntax
			}
		default:
			if !p.scanNumber() {
				return errSyntax
			}
		}
		// After a value: close containers or move to the next element.
		for {
			if len(p.stack) == 0 {
				return nil
			}
			p.ws()
			top := p.stack[len(p.stack)-1]
			if p.eat(',') {
				if top == '{' {
					p.ws()
					if err := p.objectKey(); err != nil {
						return err
					}
				}
				break
			}
			if top == '{' && p.eat('}') || top == '[' && p.eat(']') {
				p.stack = p.stack[:len(p.stack)-1]
				continue
			}
			return errSyntax
		}
	}
}

// objectKey moves past `"key" :` inside a skipped object.
func (p *parser) objectKey() error {
	if _, _, err := p.quoted(); err != nil {
		return err
	}
	p.ws()
	if !p.eat(':') {
		return errSyntax
	}
	return nil
}

// quoted moves past a string at p.i, validating it, and returns it with its quotes and whether it has
// escapes.
func (p *parser) quoted() (quoted []byte, escaped bool, err error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false, errSyntax
	}
	start := p.i
	p.i++
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start:p.i], escaped, nil
		case c == '\\':
			escaped = true
			if p.i+1 >= len(p.b) {
				return nil, false, errSyntax
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return nil, false, errSyntax
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !isHex(h) {
						return nil, false, errSyntax
					}
				}
				p.i += 6
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		default:
			p.i++
		}
	}
	return nil, false, errSyntax
}

// attrs reads a record's attrs object, whose values are strings (or null: absent), and returns its raw
// text for attrValue; nil for null.
func (p *parser) attrs() ([]byte, error) {
	if p.literal("null") {
		return nil, nil
	}
	start := p.i
	if !p.eat('{') {
		if err := p.skip(); err != nil {
			return nil, err
		}
		return nil, errAttrs
	}
	p.ws()
	if p.eat('}') {
		return p.b[start:p.i], nil
	}
	for {
		p.ws()
		if _, err := p.str(slotAttrKey); err != nil {
			return nil, err
		}
		p.ws()
		if !p.eat(':') {
			return nil, errSyntax
		}
		p.ws()
		switch {
		case p.literal("null"):
		case p.i < len(p.b) && p.b[p.i] == '"':
			if _, err := p.str(slotAttrValue); err != nil {
				return nil, err
			}
		default:
			if err := p.skip(); err != nil {
				return nil, err
			}
			return nil, errAttrs
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return p.b[start:p.i], nil
		}
		return nil, errSyntax
	}
}

// preferred reads a pairwise verdict: "canary", "stable" or "tie" (null: none).
func (p *parser) preferred(req *request) error {
	v, err := p.optStr(slotAttrValue)
	if err != nil || v == nil {
		if errors.Is(err, errType) {
			return errPrefer
		}
		return err
	}
	switch string(v) {
	case "canary":
		req.preferred = preferCanary
	case "stable":
		req.preferred = preferStable
	case "tie":
		req.preferred = preferTie
	default:
		return fmt.Errorf("%w, not %q", errPrefer, v)
	}
	req.has |= hasPreferred
	return nil
}

// attrValue returns the value of attribute name in raw, the text of an attrs object that attrs
// checked (the last one when the name repeats), and false when raw does not hold it or holds null.
func (p *parser) attrValue(raw []byte, name string) ([]byte, bool) {
	p.b, p.i = raw, 0
	if !p.eat('{') {
		return nil, false
	}
	var (
		value []byte
		found bool
	)
	for {
		p.ws()
		if p.eat('}') {
			return value, found
		}
		key, err := p.str(slotAttrKey)
		if err != nil {
			return nil, false
		}
		p.ws()
		p.eat(':')
		p.ws()
		match := string(key) == name
		switch {
		case p.literal("null"):
			if match {
				value, found = nil, false
			}
		default:
			// The matching value's own slot: the other values' escapes do not overwrite it.
			slot := slotAttrValue
			if match {
				slot = slotAttrMatch
			}
			v, err := p.str(slot)
			if err != nil {
				return nil, false
			}
			if match {
				value, found = v, true
			}
		}
		p.ws()
		p.eat(',')
	}
}
