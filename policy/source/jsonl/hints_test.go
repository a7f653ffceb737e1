package jsonl

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rollout-dev/rollout/policy"
)

// A file whose records name other rollouts only says which; a malformed record says why it is.
func TestStatsNamesOtherRolloutsAndWhyRecordsAreMalformed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic.jsonl")
	lines := `{"ts":"2026-04-16T10:00:00Z","rollout":"summariser","variant":"canary","latency_ms":800}
{"ts":"2026-04-16T10:00:01Z","rollout":"tagger","variant":"stable","latency_ms":300}
{"ts":"2026-04-16T10:00:02Z","rollout":"summariser","variant":"stable","latency_ms":700}
{"ts":"2026-04-16T10:00:03Z","rollout":"summarizer","variant":"Canary","latency_ms":700}
{"ts":"2026-04-16T10:00:04Z","rollout":"summarizer"
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path).Stats(context.Background(), policy.Query{Rollout: "summarizer"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.OtherRollouts, []string{"summariser", "tagger"}) {
		t.Errorf("other rollouts %q, want summariser and tagger", st.OtherRollouts)
	}
	if st.Malformed != 2 || !slices.Equal(st.MalformedLines, []int64{4, 5}) ||
		!slices.Equal(st.MalformedReasons, []string{"variant must be stable or canary", "invalid JSON"}) {
		t.Errorf("malformed %d lines %v reasons %q", st.Malformed, st.MalformedLines, st.MalformedReasons)
	}
	// Records of the rollout itself: no hint.
	st, err = Open(path).Stats(context.Background(), policy.Query{Rollout: "tagger"})
	if err != nil || len(st.OtherRollouts) != 0 {
		t.Errorf("tagger: %v, other rollouts %q", err, st.OtherRollouts)
	}
}
