package rollouts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"
)

// Duration is a Go duration that also takes days: "30d", "1d12h", "1.5d".
type Duration time.Duration

// durationUnits are the units of a Duration: Go's, and d for 24 hours.
var durationUnits = map[string]bool{"ns": true, "us": true, "µs": true, "μs": true, "ms": true, "s": true, "m": true, "h": true, "d": true}

// durationUnitWords are units people write that a Duration spells otherwise.
var durationUnitWords = map[string]string{
	"day": "d", "days": "d", "D": "d",
	"hr": "h", "hrs": "h", "hour": "h", "hours": "h", "H": "h",
	"min": "m", "mins": "m", "minute": "m", "minutes": "m",
	"sec": "s", "secs": "s", "second": "s", "seconds": "s", "S": "s",
}

// ParseDuration reads a Go duration in which d (24 hours) is one more unit, in any position and with
// a fraction like the others: "2d", "1.5d", "1d6h", "6h1d", "90m". A duration is never negative. An
// error quotes the whole value and says what in it is wrong.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %v; want a Go duration such as 4h or 1h30m, with d for days (2d, 1.5d, 1d12h)", s, err)
	}
	return Duration(d), nil
}

// parseDuration reads s as time.ParseDuration does, with d as one more unit. Each number with its
// unit is read by time.ParseDuration itself (see unitValue), so a value without d means what it means
// to Go, and the error says which part of s is wrong.
func parseDuration(s string) (time.Duration, error) {
	rest, ok := strings.CutPrefix(s, "+")
	switch {
	case strings.HasPrefix(s, "-"):
		return 0, errors.New("a duration is never negative")
	case strings.ContainsAny(s, " \t"):
		return 0, errors.New("a space is not allowed in a duration")
	case rest == "0":
		return 0, nil
	case ok && rest == "":
		return 0, errors.New("no number")
	}
	var total time.Duration
	for rest != "" {
		num := rest[:len(rest)-len(strings.TrimLeft(rest, "0123456789."))]
		rest = rest[len(num):]
		unit := rest[:len(rest)-len(strings.TrimLeftFunc(rest, unicode.IsLetter))]
		rest = rest[len(unit):]
		switch {
		case num == "" && unit == "":
			r, _ := utf8.DecodeRuneInString(rest)
			return 0, fmt.Errorf("unexpected %q", r)
		case num == "":
			return 0, fmt.Errorf("no number before %q", unit)
		case num == "." || strings.Count(num, ".") > 1:
			return 0, fmt.Errorf("%q is not a number", num)
		case unit == "":
			return 0, fmt.Errorf("%s has no unit", num)
		}
		if _, known := durationUnits[unit]; !known {
			switch u, ok := durationUnitWords[unit]; {
			case ok:
				return 0, fmt.Errorf("unknown unit %q (write %s%s)", unit, num, u)
			case unit == "w" || strings.HasPrefix(unit, "week"):
				return 0, fmt.Errorf("unknown unit %q (a week is 7d)", unit)
			}
			return 0, fmt.Errorf("unknown unit %q (the units are ns, us, ms, s, m, h and d)", unit)
		}
		v, err := unitValue(num, unit)
		if err != nil || v > math.MaxInt64-total {
			return 0, errors.New("out of range")
		}
		total += v
	}
	return total, nil
}

// unitValue is num (digits with at most one '.') of unit, as time.ParseDuration reads it; a day is
// read as 24 of Go's hours, which is exact to the nanosecond for up to 11 decimals.
func unitValue(num, unit string) (time.Duration, error) {
	if unit != "d" {
		return time.ParseDuration(num + unit)
	}
	h, err := time.ParseDuration(num + "h")
	if err != nil || h > math.MaxInt64/24 {
		return 0, errors.New("out of range")
	}
	return 24 * h, nil
}

// String formats d the way a human would write it in a spec: whole days as "Nd", and no zero units
// ("1d12h", "4h", "1h30m"). The result parses back to d.
func (d Duration) String() string {
	td := time.Duration(d)
	day := 24 * time.Hour
	days := ""
	if td >= day {
		days = strconv.FormatInt(int64(td/day), 10) + "d"
		td %= day
		if td == 0 {
			return days
		}
	}
	out := td.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return days + out
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 4h or 2d")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("want a duration string")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Ratio is a fraction written either as a percent string ("50%") or as a number (0.5).
type Ratio float64

// ParseRatio reads "50%" or "0.5" as 0.5. This is the one unit rule of every ratio field (maxIncrease,
// maxDecrease, confidence, advanceConfidence, minPassRate, and max/min on a proportion): a bare number
// is a fraction of 1, so a bare number above 1 is refused with the percent form it probably meant
// ("maxIncrease: 50" would otherwise mean +5000% and switch the rule off). Above 100% takes the percent
// form: 200% for +200%. NaN and infinities are refused.
func ParseRatio(s string) (Ratio, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := ParseNumber(strings.TrimSpace(p))
		if errors.Is(err, errNotNumber) {
			return 0, fmt.Errorf("invalid percent %q", s)
		}
		if err != nil {
			return 0, fmt.Errorf("invalid percent %q: %w", s, err)
		}
		return Ratio(f / 100), nil
	}
	f, err := ParseNumber(s)
	if errors.Is(err, errNotNumber) {
		return 0, fmt.Errorf("invalid fraction %q: want a percent such as 50%% or a fraction such as 0.5", s)
	}
	if err != nil {
		return 0, fmt.Errorf("invalid fraction %q: %w", s, err)
	}
	if f > 1 {
		return 0, fmt.Errorf("%w; an increase above 100%% takes the percent form too, as in %s%%", errAboveOne(s), strconv.FormatFloat(f*100, 'f', -1, 64))
	}
	return Ratio(f), nil
}

// errAboveOne explains the refusal of a bare number above 1 in a ratio field.
func errAboveOne(s string) error {
	return fmt.Errorf("%s is above 1, and a bare number here is a fraction (0.5 means 50%%): write %s%% if you mean %s%%", s, s, s)
}

// errNotNumber is ParseNumber's error for text that no reader takes for a number.
var errNotNumber = errors.New("not a number")

// decimalRE is a number as YAML 1.2's core schema writes it in decimal, which YAML 1.1 reads alike
// (apart from a leading zero, refused separately).
var decimalRE = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// ParseNumber reads a number written in decimal, as every YAML reader reads it alike, and refuses the
// rest with the decimal to write instead: NaN and infinities (they switch checks off: every comparison
// with NaN is false), and YAML 1.1 forms that YAML 1.2 readers read differently or not as numbers at
// all: a leading zero (012 is 10 to YAML 1.1, 12 to YAML 1.2), binary (0b101), digit separators
// (1_000); and octal (0o12) and hexadecimal (0x10), which no spec needs. yaml.v3 reads all of them as
// numbers, while the application, an editor or a schema tool reading the same file may not: refusing
// them keeps every reader on the same value.
func ParseNumber(s string) (float64, error) {
	switch lower := strings.ToLower(strings.TrimLeft(s, "+-")); {
	case lower == ".nan" || lower == "nan":
		return 0, fmt.Errorf("%s is not a number (NaN); it would switch the check off", s)
	case lower == ".inf" || lower == "inf" || lower == "infinity":
		return 0, fmt.Errorf("%s is infinite; write a finite number", s)
	}
	if decimalRE.MatchString(s) {
		digits := strings.TrimLeft(s, "+-")
		if len(digits) > 1 && digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9' && !strings.ContainsAny(digits, ".eE") {
			dec, _ := strconv.ParseInt(s, 10, 64)
			oct, err := strconv.ParseInt(s, 8, 64)
			alt := ""
			if err == nil {
				alt = fmt.Sprintf(" (or %d, if you meant the octal number)", oct)
			}
			return 0, fmt.Errorf("%s has a leading zero: YAML 1.1 readers take it for octal, YAML 1.2 readers for decimal; write %d%s", s, dec, alt)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%s is out of range", s)
		}
		return f, nil
	}
	var what string
	plain := strings.TrimLeft(s, "+-")
	switch {
	case strings.Contains(s, "_"):
		what = "digit separators (_) are YAML 1.1 only"
	case strings.HasPrefix(plain, "0b") || strings.HasPrefix(plain, "0B"):
		what = "binary numbers are YAML 1.1 only"
	case strings.HasPrefix(plain, "0o") || strings.HasPrefix(plain, "0O"):
		what = "write numbers in decimal, not octal"
	case strings.HasPrefix(plain, "0x") || strings.HasPrefix(plain, "0X"):
		what = "write numbers in decimal, not hexadecimal"
	default:
		return 0, fmt.Errorf("%q: %w", s, errNotNumber)
	}
	if i, err := strconv.ParseInt(s, 0, 64); err == nil {
		return 0, fmt.Errorf("%s: %s; write %d", s, what, i)
	}
	return 0, fmt.Errorf("%s: %s; write the number in decimal", s, what)
}

// UnmarshalYAML reads a percent string or a number.
func (r *Ratio) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a percent such as 50%% or a fraction such as 0.5")
	}
	v, err := ParseRatio(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// String formats the ratio as a percent.
func (r Ratio) String() string { return strconv.FormatFloat(float64(r)*100, 'f', -1, 64) + "%" }

// durationPattern is the JSON Schema pattern of a Duration: "0", or numbers each with a unit, d among
// them, in any order, with an optional leading +. It accepts what ParseDuration accepts, apart from
// values too large for a Go duration (past about 106751d).
const durationPattern = `^\+?(0|(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d))+)$`

// JSONSchema describes a Duration for `rollout schema`: a string such as "4h", "90m" or "2d".
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     durationPattern,
		Description: "a Go duration, plus d for days: 30m, 4h, 2d, 1.5d, 1d12h",
		Examples:    []any{"4h", "2d"},
	}
}

// JSONSchema describes a Ratio for `rollout schema`: a percent string or a number.
func (Ratio) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Description: "a percent string such as 50% or a fraction in 0..1 such as 0.5; above 100% only the percent form (200%)",
		OneOf: []*jsonschema.Schema{
			{Type: "string", Pattern: percentPattern},
			{Type: "number", Minimum: json.Number("0"), Maximum: json.Number("1")},
		},
	}
}

// percentPattern is the JSON Schema pattern of a percent string.
const percentPattern = `^[0-9]+(\.[0-9]+)?%$`

// ratioSchema replaces property key of s with the one unit rule of ratio fields: a percent string, or
// a number in [0, 1] (in (0, 1) when exclusive).
func ratioSchema(s *jsonschema.Schema, key string, exclusive bool) {
	p, ok := s.Properties.Get(key)
	if !ok {
		return
	}
	number := &jsonschema.Schema{Type: "number", Minimum: json.Number("0"), Maximum: json.Number("1")}
	if exclusive {
		number = &jsonschema.Schema{Type: "number", ExclusiveMinimum: json.Number("0"), ExclusiveMaximum: json.Number("1")}
	}
	p.Type, p.Minimum, p.Maximum, p.ExclusiveMinimum, p.ExclusiveMaximum = "", "", "", "", ""
	p.OneOf = []*jsonschema.Schema{{Type: "string", Pattern: percentPattern}, number}
}

// JSONSchemaExtend states the unit rule of the analysis' confidences for `rollout schema`.
func (Analysis) JSONSchemaExtend(s *jsonschema.Schema) {
	ratioSchema(s, "confidence", true)
	ratioSchema(s, "advanceConfidence", true)
}

// JSONSchemaExtend states the unit rule of minPassRate for `rollout schema`.
func (Gate) JSONSchemaExtend(s *jsonschema.Schema) { ratioSchema(s, "minPassRate", false) }

// JSONSchemaExtend lets max and min be percent strings (on proportions; Parse checks the metric).
func (Rule) JSONSchemaExtend(s *jsonschema.Schema) {
	for _, key := range []string{"max", "min"} {
		if p, ok := s.Properties.Get(key); ok {
			p.Type = ""
			p.OneOf = []*jsonschema.Schema{{Type: "number"}, {Type: "string", Pattern: percentPattern}}
		}
	}
}
