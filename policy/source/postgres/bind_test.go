package postgres

import (
	"strings"
	"testing"
	"time"
)

func TestBindPlaceholders(t *testing.T) {
	from := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	values := map[string]any{"{{rollout}}": "summarizer", "{{from}}": from, "{{to}}": from.Add(time.Hour)}
	tests := []struct {
		sql, want string
		args      int
	}{
		{"SELECT 1", "SELECT 1", 0},
		{"WHERE rollout = {{rollout}} AND ts <= {{to}}", "WHERE rollout = $1 AND ts <= $2", 2},
		{"{{to}} {{rollout}} {{to}} {{from}}", "$1 $2 $1 $3", 3},
		{"{{unknown}} {{rollout}}", "{{unknown}} $1", 1},
		{"unclosed {{rollout", "unclosed {{rollout", 0},
	}
	for _, tt := range tests {
		got, args := bindPlaceholders(tt.sql, values)
		if got != tt.want || len(args) != tt.args {
			t.Errorf("bindPlaceholders(%q) = %q with %d args, want %q with %d", tt.sql, got, len(args), tt.want, tt.args)
		}
	}
}

// FuzzBindPlaceholders checks that no known placeholder survives, and that every argument is used.
func FuzzBindPlaceholders(f *testing.F) {
	f.Add("SELECT {{rollout}}, {{from}}, {{to}}")
	f.Add("{{{{rollout}}}}")
	f.Fuzz(func(t *testing.T, sql string) {
		values := map[string]any{"{{rollout}}": "r", "{{from}}": 1, "{{to}}": 2}
		got, args := bindPlaceholders(sql, values)
		if len(args) > 3 {
			t.Fatalf("%d args", len(args))
		}
		for i := range args {
			if !strings.Contains(got, "$"+string(rune('1'+i))) {
				t.Fatalf("argument $%d unused in %q", i+1, got)
			}
		}
	})
}
