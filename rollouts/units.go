package rollouts

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"
)

// Duration is a Go duration that also accepts whole days, as in "30d" or "1d12h".
type Duration time.Duration

// ParseDuration reads a Go duration with an optional leading number of days ("2d", "1d6h", "90m").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: want a Go duration such as 4h, or days such as 2d", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return Duration(days), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as 4h, or days such as 2d", s)
	}
	return Duration(days + d), nil
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

// ParseRatio reads "50%" or "0.5" as 0.5.
func ParseRatio(s string) (Ratio, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return 0, fmt.Errorf("invalid percent %q", s)
		}
		return Ratio(f / 100), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid fraction %q: want a percent such as 50%% or a fraction such as 0.5", s)
	}
	return Ratio(f), nil
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

// durationPattern is the JSON Schema pattern of a Duration: optional whole days, then Go duration units.
const durationPattern = `^(0|([0-9]+d)?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*)$`

// JSONSchema describes a Duration for `rollout schema`: a string such as "4h", "90m" or "2d".
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     durationPattern,
		Description: "a Go duration, plus d for days: 30m, 4h, 2d, 1d12h",
		Examples:    []any{"4h", "2d"},
	}
}

// JSONSchema describes a Ratio for `rollout schema`: a percent string or a number.
func (Ratio) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Description: "a percent string such as 50% or a fraction such as 0.5",
		OneOf: []*jsonschema.Schema{
			{Type: "string", Pattern: `^[0-9]+(\.[0-9]+)?%$`},
			{Type: "number", Minimum: json.Number("0")},
		},
	}
}
