package clickhouse_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
)

// TestARulesQueryCannotWrite (issue 22 item 2): a rule's own SQL comes from a spec, which a pull request
// may change, and `plan` runs it. ClickHouse itself refuses every statement that writes, and any attempt
// to lift the read-only setting; the table keeps its rows.
func TestARulesQueryCannotWrite(t *testing.T) {
	base := testserver.ClickHouse(t)
	srv := database(t, base, "guarded")
	loadRollout(t, srv, nil)
	srv.Exec(t, "CREATE TABLE IF NOT EXISTS victim (variant String, n UInt64) ENGINE = MergeTree ORDER BY variant")
	srv.Exec(t, "INSERT INTO victim VALUES ('stable', 1), ('canary', 2)")
	src := open(t, base, "guarded")
	// (DELETE FROM and SET are not statements the HTTP interface runs with a FORMAT appended; ALTER …
	// DELETE is ClickHouse's delete.)
	for _, sql := range []string{
		`ALTER TABLE victim DELETE WHERE 1`,
		`DROP TABLE victim`,
		`TRUNCATE TABLE victim`,
		`INSERT INTO victim VALUES ('canary', 3)`,
		`CREATE TABLE stolen ENGINE = Memory AS SELECT * FROM victim`,
		`SELECT variant, sum(n) AS events, sum(n) AS total FROM victim GROUP BY variant SETTINGS readonly = 0`,
	} {
		_, err := src.Stats(context.Background(), policy.Query{Rollout: "summarizer", Window: policy.Window{From: stageStart, To: now},
			Metrics: []policy.MetricQuery{{Name: "custom", Query: sql}}})
		switch {
		case err == nil:
			t.Errorf("%s: accepted", sql)
		case !errors.Is(err, clickhouse.ErrBadQuery) && !errors.Is(err, policy.ErrSourceUnavailable):
			t.Errorf("%s: %v", sql, err)
		case !strings.Contains(err.Error(), "readonly") && !strings.Contains(err.Error(), "READONLY"):
			t.Errorf("%s: %v, want the server's read-only refusal", sql, err)
		default:
			t.Logf("%s: %v", sql, err)
		}
	}
	if got := strings.TrimSpace(srv.Exec(t, "SELECT count() FROM victim")); got != "2" {
		t.Errorf("victim holds %s rows, want 2", got)
	}
}
