package policy

import "testing"

func TestMalformedSummary(t *testing.T) {
	for _, tc := range []struct {
		st   Stats
		want string
	}{
		{Stats{Malformed: 3}, "3 malformed records skipped in file:t.jsonl"},
		{Stats{Malformed: 2, MalformedLines: []int64{3, 7}}, "2 malformed records skipped in file:t.jsonl (lines 3, 7)"},
		{Stats{Malformed: 2, MalformedLines: []int64{3, 7}, MalformedReasons: []string{"variant must be stable or canary", "variant must be stable or canary"}},
			"2 malformed records skipped in file:t.jsonl (lines 3, 7): variant must be stable or canary"},
		{Stats{Malformed: 2, MalformedLines: []int64{3, 7}, MalformedReasons: []string{"invalid JSON", "variant must be stable or canary"}},
			"2 malformed records skipped in file:t.jsonl (lines 3, 7): line 3: invalid JSON; line 7: variant must be stable or canary"},
	} {
		if got := MalformedSummary("file:t.jsonl", &tc.st); got != tc.want {
			t.Errorf("MalformedSummary = %q, want %q", got, tc.want)
		}
	}
}
