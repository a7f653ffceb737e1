package rollouts

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDurationRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"4h", 4 * time.Hour, "4h"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"2d", 48 * time.Hour, "2d"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"30s", 30 * time.Second, "30s"},
		{"0", 0, "0s"},
		{"1d0h30m", 24*time.Hour + 30*time.Minute, "1d30m"},
		{"1.5d", 36 * time.Hour, "1d12h"},
		{"12h1d", 36 * time.Hour, "1d12h"},
		{"2d0.5h", 48*time.Hour + 30*time.Minute, "2d30m"},
		{"0.5d", 12 * time.Hour, "12h"},
		{".25d", 6 * time.Hour, "6h"},
		{"0.1d", 2*time.Hour + 24*time.Minute, "2h24m"},
		{"1d1d", 48 * time.Hour, "2d"},
		{"30m1d1h", 25*time.Hour + 30*time.Minute, "1d1h30m"},
		{"+4h", 4 * time.Hour, "4h"},
		{"0d", 0, "0s"},
		{"1.5h", 90 * time.Minute, "1h30m"},
		{"1d1.5s", 24*time.Hour + 1500*time.Millisecond, "1d1.5s"},
		{"2µs", 2 * time.Microsecond, "2µs"},
		{"106751d23h47m16.854775807s", time.Duration(1<<63 - 1), "106751d23h47m16.854775807s"},
	}
	for _, tt := range tests {
		d, err := ParseDuration(tt.in)
		if err != nil || time.Duration(d) != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, d, err, tt.want)
			continue
		}
		if d.String() != tt.out {
			t.Errorf("String(%q) = %q, want %q", tt.in, d.String(), tt.out)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("%q does not parse back: %v, %v", d.String(), back, err)
		}
	}
	for _, bad := range []string{"", "d", "xd", "-1d", "-3h", "-0", "4 hours", "1day", "2d-3h", "1d.", "1..5d", "1e3h", "12", "+", "P1D", "106751d23h47m16.854775808s", "999999999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

// A duration's error quotes the whole value the user wrote and says what in it is wrong.
func TestParseDurationErrors(t *testing.T) {
	const want = "; want a Go duration such as 4h or 1h30m, with d for days (2d, 1.5d, 1d12h)"
	for in, reason := range map[string]string{
		"1day":        `unknown unit "day" (write 1d)`,
		"2d-3h":       `unexpected '-'`,
		"-3h":         "a duration is never negative",
		"-1d":         "a duration is never negative",
		"4 hours":     "a space is not allowed in a duration",
		"12":          "12 has no unit",
		"1w":          `unknown unit "w" (a week is 7d)`,
		"2D":          `unknown unit "D" (write 2d)`,
		"1e3h":        `unknown unit "e" (the units are ns, us, ms, s, m, h and d)`,
		"d":           `no number before "d"`,
		"1..5d":       `"1..5" is not a number`,
		"999999999d":  "out of range",
		"106752d":     "out of range",
		"1d2562048h1": "out of range",
	} {
		_, err := ParseDuration(in)
		if got := "invalid duration \"" + in + "\": " + reason + want; err == nil || err.Error() != got {
			t.Errorf("ParseDuration(%q): %v\nwant %s", in, err, got)
		}
	}
	if _, err := ParseDuration(" "); err == nil || err.Error() != "empty duration" {
		t.Errorf("ParseDuration(\" \"): %v", err)
	}
}

// Without d, a duration means what it means to Go, to the nanosecond.
func TestParseDurationAgreesWithGo(t *testing.T) {
	for _, s := range []string{"0", "+0", "4h", "1h30m", "30m1h", ".5h", "5.h", "1.000000001s", "0.3h", "1.5µs", "1.5μs", "2us", "3ns", "2562047h47m16.854775807s", "2562047h47m16.854775808s"} {
		want, werr := time.ParseDuration(s)
		got, err := ParseDuration(s)
		if (err == nil) != (werr == nil) || time.Duration(got) != want {
			t.Errorf("%q: %v, %v; Go says %v, %v", s, time.Duration(got), err, want, werr)
		}
	}
}

// The JSON Schema's pattern accepts what ParseDuration accepts, so an editor and validate agree (apart
// from values too large to be a Go duration, which only ParseDuration refuses).
func TestDurationPatternAgreesWithParseDuration(t *testing.T) {
	re := regexp.MustCompile(durationPattern)
	for _, s := range []string{"0", "+0", "4h", "1.5d", "1d12h", "12h1d", "2d0.5h", ".5d", "1.d", "2µs", "2μs", "1d1d", "+4h",
		"", "-0", "-3h", "d", "1day", "2d-3h", "4 hours", "12", "1..5d", "1e3h", "1D", "h1", "1d ", "0.", "00"} {
		_, err := ParseDuration(s)
		if (err == nil) != re.MatchString(s) && s != "1d " { // validate trims the spaces around a value
			t.Errorf("%q: ParseDuration error %v, pattern matches %v", s, err, re.MatchString(s))
		}
	}
}

// FuzzDuration: ParseDuration never panics; what it reads matches the schema's pattern and prints back
// to itself; what the pattern matches it reads, unless too large.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"4h", "1.5d", "12h1d", "2d0.5h", "1day", "2d-3h", "0", ".5d", "1µs", "106751d23h47m16.854775807s"} {
		f.Add(s)
	}
	re := regexp.MustCompile(durationPattern)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		trimmed := strings.TrimSpace(s)
		if err != nil {
			if re.MatchString(trimmed) && !strings.Contains(err.Error(), "out of range") {
				t.Fatalf("%q matches the pattern, yet: %v", s, err)
			}
			if trimmed != "" && !strings.HasPrefix(err.Error(), "invalid duration "+strconv.Quote(trimmed)+": ") {
				t.Fatalf("%q: the error does not quote the whole value: %v", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("%q is %v, negative", s, time.Duration(d))
		}
		if !re.MatchString(trimmed) {
			t.Fatalf("%q parses to %v, but the pattern refuses it", s, time.Duration(d))
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d || !re.MatchString(d.String()) {
			t.Fatalf("%q is %v, printed %q, read back as %v, %v", s, time.Duration(d), d.String(), time.Duration(back), err)
		}
	})
}

func TestParseRatio(t *testing.T) {
	for in, want := range map[string]Ratio{"50%": 0.5, "0.5": 0.5, "100%": 1, "2.5%": 0.025, " 30 % ": 0.3} {
		if got, err := ParseRatio(in); err != nil || got != want {
			t.Errorf("ParseRatio(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "%", "fifty", "5%%", "50", "1.5", ".nan", "NaN%", ".inf", "Inf%", "0x1p-1", "1_0%", "010%"} {
		if _, err := ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q) succeeded", bad)
		}
	}
}

// Every duration field of a spec takes d in any position and with a fraction, and refuses the rest at
// the value, quoting all of it.
func TestParseDurationsInASpec(t *testing.T) {
	const want = "; want a Go duration such as 4h or 1h30m, with d for days (2d, 1.5d, 1d12h)"
	tests := []struct {
		stage, rollback string // the stage's flow mapping, the rollback's
		problem         string // the one problem, or "" when valid
	}{
		{"{weight: 100, minDuration: 1.5d, maxDuration: 12h1d}", "{keepPrevious: 2d0.5h}", ""},
		{"{weight: 100, minDuration: 0.5h, maxDuration: 1d12h}", "{keepPrevious: 30d}", ""},
		{"{weight: 100, minDuration: 1day}", "{}", `t.yaml:5:37: stages[0].minDuration: invalid duration "1day": unknown unit "day" (write 1d)` + want},
		{"{weight: 100, maxDuration: 2d-3h}", "{}", `t.yaml:5:37: stages[0].maxDuration: invalid duration "2d-3h": unexpected '-'` + want},
		{"{weight: 100, minDuration: -3h}", "{}", `t.yaml:5:37: stages[0].minDuration: invalid duration "-3h": a duration is never negative` + want},
		{"{weight: 100}", "{keepPrevious: 1d-1h}", `t.yaml:6:26: rollback.keepPrevious: invalid duration "1d-1h": unexpected '-'` + want},
		{"{weight: 100, minDuration: 1.5d, maxDuration: 1d}", "{}", "t.yaml:5:56: stages[0].maxDuration: 1d is shorter than minDuration 1d12h"},
	}
	for _, tt := range tests {
		src := strings.Replace(minimal, "{weight: 100}", tt.stage, 1) + "rollback: " + tt.rollback + "\n"
		if got := parseOne(t, src); got != tt.problem {
			t.Errorf("%s %s:\ngot  %s\nwant %s", tt.stage, tt.rollback, got, tt.problem)
		}
	}
	s, problems := Parse("t.yaml", []byte(strings.Replace(minimal, "{weight: 100}", "{weight: 100, minDuration: 1.5d, maxDuration: 12h1d}", 1)))
	if len(problems) > 0 || time.Duration(s.Stages[0].MinDuration) != 36*time.Hour || time.Duration(s.Stages[0].MaxDuration) != 36*time.Hour {
		t.Errorf("durations %v, problems %v", s.Stages, problems)
	}
}
