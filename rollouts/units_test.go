package rollouts

import (
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
	for _, bad := range []string{"", "d", "xd", "-1d", "-3h", "4 hours", "1h2d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
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
