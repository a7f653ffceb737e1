package clickhouse_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
)

// TestSegmentsOnDebianClickHouse covers analysis.segments in the rollout schema: a column per
// attribute, its values most frequent first, and a segment's statistics with its late records.
func TestSegmentsOnDebianClickHouse(t *testing.T) {
	srv := testserver.ClickHouse(t)
	srv.Exec(t, clickhouse.Schema)
	srv.Exec(t, "ALTER TABLE llm_requests ADD COLUMN language String DEFAULT ''")
	at := func(min int) string { return itoa(stageStart.Add(time.Duration(min) * time.Minute).Unix()) }
	srv.Exec(t, `INSERT INTO llm_requests (ts, rollout, variant, key, request_id, latency_ms, error, language) VALUES
  (`+at(1)+`, 'r', 'canary', 'u1', 'a', 100, 1, 'de'),
  (`+at(2)+`, 'r', 'stable', 'u2', 'b', 200, 0, 'de'),
  (`+at(3)+`, 'r', 'stable', 'u3', 'c', 300, 1, 'en'),
  (`+at(4)+`, 'r', 'canary', 'u4', 'd', 400, 0, 'en'),
  (`+at(5)+`, 'r', 'canary', 'u5', 'e', 500, 0, 'de'),
  (`+at(6)+`, 'r', 'canary', 'u6', 'f', 600, 0, ''),
  (`+at(7)+`, 'r', 'stable', 'u7', 'g', 700, 0, 'it''s')`)
	srv.Exec(t, `INSERT INTO llm_requests (ts, rollout, variant, request_id, feedback) VALUES
  (`+at(20)+`, 'r', '', 'a', -1),
  (`+at(21)+`, 'r', '', 'd', -1)`)
	src, err := clickhouse.New(srv.URL+"?password=env:CHPASS", getenv)
	if err != nil {
		t.Fatal(err)
	}
	metrics := []policy.MetricQuery{{Name: "error_rate"}, {Name: "negative_feedback_rate"}, {Name: "latency_p95_ms"}}
	q := policy.Query{Rollout: "r", Window: policy.Window{From: stageStart, To: now}, Metrics: metrics, Segments: []string{"language"}}
	got, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"de", "en", "it's"}; !slices.Equal(got.SegmentValues["language"], want) {
		t.Errorf("values %q, want %q", got.SegmentValues["language"], want)
	}
	q.Segments, q.Filter = nil, []policy.Attr{{Name: "language", Value: "de"}}
	de, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if de.Canary.Requests != 2 || de.Stable.Requests != 1 {
		t.Errorf("language=de: canary %d, stable %d requests, want 2 and 1", de.Canary.Requests, de.Stable.Requests)
	}
	if e := de.Canary.Metrics["error_rate"]; e.N != 2 || e.Sum != 1 {
		t.Errorf("language=de canary errors %v/%d, want 1/2", e.Sum, e.N)
	}
	if f := de.Canary.Metrics["negative_feedback_rate"]; f.N != 1 || f.Sum != 1 {
		t.Errorf("language=de canary late feedback %v/%d, want 1/1 (d's is another segment's)", f.Sum, f.N)
	}
	if l := de.Canary.Metrics["latency_p95_ms"]; l.N != 2 {
		t.Errorf("language=de canary latencies %d, want 2", l.N)
	}
	q.Filter = []policy.Attr{{Name: "language", Value: "it's"}}
	if quoted, err := src.Stats(context.Background(), q); err != nil || quoted.Stable.Requests != 1 {
		t.Errorf("a value with a quote: %v, %+v", err, quoted)
	}
	q.Filter = []policy.Attr{{Name: "region", Value: "eu"}}
	if _, err := src.Stats(context.Background(), q); !errors.Is(err, clickhouse.ErrBadQuery) {
		t.Errorf("a column the table lacks: err = %v, want ErrBadQuery", err)
	}
	q.Filter = []policy.Attr{{Name: "x` = '' OR 1", Value: "eu"}}
	if _, err := src.Stats(context.Background(), q); !errors.Is(err, clickhouse.ErrBadSegment) {
		t.Errorf("an injected name: err = %v, want ErrBadSegment", err)
	}
}
