package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/postgres"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

// TestARulesQueryCannotWrite (issue 22 item 2): a rule's own SQL comes from a spec, which a pull request
// may change, and `plan` runs it. Every statement that writes, and every trick that would make the
// session writable for the next query, is refused by PostgreSQL itself; the rows are all still there.
func TestARulesQueryCannotWrite(t *testing.T) {
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 40, Canary: 20,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 3)
	dsn := database(t, traffic)
	src, err := postgres.New(dsn, getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	count := func() int {
		t.Helper()
		cfg, err := pgx.ParseConfig(strings.Replace(dsn, "env:PGPASS", testserver.PostgresPassword, 1))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM llm_requests").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	writes := []string{
		`DELETE FROM llm_requests`,
		`WITH gone AS (DELETE FROM llm_requests RETURNING variant) SELECT variant, count(*) AS events, count(*) AS total FROM gone GROUP BY variant`,
		`DROP TABLE llm_requests`,
		`INSERT INTO llm_requests (rollout, variant, "timestamp") VALUES ('x', 'stable', now())`,
		`UPDATE llm_requests SET variant = 'canary'`,
		`TRUNCATE llm_requests`,
		`CREATE TABLE stolen AS SELECT * FROM llm_requests`,
		`SELECT set_config('transaction_read_only', 'off', false) AS value`,
	}
	for _, sql := range writes {
		_, err := src.Stats(context.Background(), policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to},
			Metrics: []policy.MetricQuery{{Name: "custom", Query: sql}}})
		if err == nil {
			t.Errorf("%s: accepted", sql)
		} else if !errors.Is(err, postgres.ErrBadQuery) || !strings.Contains(err.Error(), "(SQLSTATE 25") {
			t.Errorf("%s: %v, want the server's refusal in a read-only transaction (ErrBadQuery)", sql, err)
		} else {
			t.Logf("%s: %v", sql, err)
		}
	}
	// A query that turns the session's default off cannot open the way for the next one: each runs in
	// a transaction begun READ ONLY.
	for _, trick := range []string{`SELECT set_config('default_transaction_read_only', 'off', false) AS value`,
		`SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE`} {
		for i := 0; i < 8; i++ { // every connection of the pool
			_, _ = src.Stats(context.Background(), policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to},
				Metrics: []policy.MetricQuery{{Name: "custom", Query: trick}}})
			_, err := src.Stats(context.Background(), policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to},
				Metrics: []policy.MetricQuery{{Name: "custom", Query: `DELETE FROM llm_requests`}}})
			if err == nil || !strings.Contains(err.Error(), "(SQLSTATE 25") {
				t.Fatalf("DELETE after %s: %v, want refused in a read-only transaction", trick, err)
			}
		}
	}
	if after := count(); after != before || before == 0 {
		t.Errorf("llm_requests held %d rows, now %d", before, after)
	}
	// Reading still works.
	if _, err := src.Stats(context.Background(), policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}}); err != nil {
		t.Fatal(err)
	}
}
