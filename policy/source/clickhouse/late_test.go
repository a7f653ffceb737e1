package clickhouse_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
)

// TestRolloutSchemaOnDebianClickHouse covers what the rollout schema adds to the judged statistics, on
// the Debian package's ClickHouse 18.16: late records, the window's start, keys that are not
// randomised, and a metric's own SQL.
func TestRolloutSchemaOnDebianClickHouse(t *testing.T) {
	srv := testserver.ClickHouse(t)
	srv.Exec(t, clickhouse.Schema)
	at := func(min int) int64 { return stageStart.Add(time.Duration(min) * time.Minute).Unix() }
	srv.Exec(t, `INSERT INTO llm_requests (ts, rollout, variant, shadow, key, request_id, latency_ms, error, feedback, quality) VALUES
  (`+itoa(at(1))+`, 'r', 'stable', 0, 'u1', 'a', 100, 0, NULL, NULL),
  (`+itoa(at(2))+`, 'r', 'stable', 0, 'u2', 'b', 200, 1, 1, 0.5),
  (`+itoa(at(10))+`, 'r', 'canary', 0, 'u3', 'c', 300, 0, NULL, NULL),
  (`+itoa(at(11))+`, 'r', 'canary', 1, 'u3', 'd', 400, 0, NULL, NULL),
  (`+itoa(at(12))+`, 'r', 'stable', 0, 'u4', 'e', 500, 0, NULL, NULL),
  (`+itoa(at(13))+`, 'r', 'stable', 0, 'u5', 'f', 600, 0, 1, NULL),
  (`+itoa(at(5))+`, 'r', 'canary', 0, 'beta-1', 'g', 700, 1, NULL, NULL),
  (`+itoa(at(14))+`, 'r', 'canary', 0, 'beta-2', 'h', 800, 1, NULL, NULL)`)
	// Late records: feedback for c and e (e's twice: the latest wins), a score for f, one for a request
	// before the window's start (a), and one for a request that does not exist.
	srv.Exec(t, `INSERT INTO llm_requests (ts, rollout, variant, request_id, feedback, quality) VALUES
  (`+itoa(at(20))+`, 'r', '', 'c', -1, NULL),
  (`+itoa(at(21))+`, 'r', '', 'e', 1, NULL),
  (`+itoa(at(22))+`, 'r', '', 'e', -1, NULL),
  (`+itoa(at(23))+`, 'r', '', 'f', NULL, 0.9),
  (`+itoa(at(24))+`, 'r', '', 'a', -1, NULL),
  (`+itoa(at(25))+`, 'r', '', 'nope', -1, NULL)`)
	src, err := clickhouse.New(srv.URL+"?password=env:CHPASS", getenv)
	if err != nil {
		t.Fatal(err)
	}
	q := policy.Query{Rollout: "r", Window: policy.Window{From: stageStart, To: now}, NotRandomised: []string{"beta-*"}}
	got, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if want := stageStart.Add(10 * time.Minute); !got.From.Equal(want) {
		t.Errorf("From = %s, want %s (the first randomised canary record)", got.From, want)
	}
	if got.NotRandomised != 1 { // beta-2; beta-1 is before From
		t.Errorf("NotRandomised = %d, want 1", got.NotRandomised)
	}
	if got.LateUnmatched != 2 { // a (before From) and nope
		t.Errorf("LateUnmatched = %d, want 2", got.LateUnmatched)
	}
	if got.Shadow != 1 || got.Canary.Requests != 2 || got.Canary.Keys != 1 || got.Stable.Requests != 2 || got.Stable.Keys != 2 {
		t.Errorf("shadow %d, canary %d requests of %d keys, stable %d of %d; want 1, 2 of 1, 2 of 2",
			got.Shadow, got.Canary.Requests, got.Canary.Keys, got.Stable.Requests, got.Stable.Keys)
	}
	fb := func(a policy.Arm) policy.Sample { return got.Arm(a).Metrics["negative_feedback_rate"] }
	if s := fb(policy.Canary); s.N != 1 || s.Sum != 1 {
		t.Errorf("canary negative feedback %+v, want 1 of 1 (the late record)", s)
	}
	if s := fb(policy.Stable); s.N != 2 || s.Sum != 1 {
		t.Errorf("stable negative feedback %+v, want 1 of 2 (e's latest late record, f's own)", s)
	}
	if s := got.Stable.Metrics["quality_score"]; s.N != 1 || !near(s.Sum, 0.9) {
		t.Errorf("stable quality %+v, want 0.9 from the late score", s)
	}

	own := func(sql string) (*policy.Stats, error) {
		return src.Stats(context.Background(), policy.Query{Rollout: "r", Window: q.Window,
			Metrics: []policy.MetricQuery{{Name: "custom", Query: sql}}})
	}
	tests := []struct {
		name, sql string
		want      map[policy.Arm]policy.Sample
		wantErr   error
	}{
		{
			name: "a mean per key bucket",
			sql: `SELECT toString(variant) AS variant, key_bucket AS bucket, count() AS n, sum(latency_ms) AS sum,
			      sum(latency_ms * latency_ms) AS sumsq FROM llm_requests
			      WHERE rollout = {{rollout}} AND ts BETWEEN {{from}} AND {{to}} AND variant != '' AND NOT match(key, '^beta-')
			      GROUP BY variant, bucket;`,
			want: map[policy.Arm]policy.Sample{
				policy.Stable: {Kind: policy.Mean, N: 2, Sum: 1100, SumSquares: 500*500 + 600*600},
				policy.Canary: {Kind: policy.Mean, N: 2, Sum: 700, SumSquares: 300*300 + 400*400},
			},
		},
		{
			name: "a proportion, a placeholder used twice",
			sql: `SELECT toString(variant) AS variant, count() AS n, sum(error) AS sum, NULL AS sumsq FROM llm_requests
			      WHERE rollout = {{rollout}} AND ts <= {{to}} AND variant != '' AND rollout = {{rollout}} GROUP BY variant`,
			want: map[policy.Arm]policy.Sample{
				policy.Stable: {Kind: policy.Proportion, N: 4, Sum: 1},
				policy.Canary: {Kind: policy.Proportion, N: 4, Sum: 2},
			},
		},
		{
			name: "the documented example (docs/metrics-sources.md)",
			sql: `SELECT toString(variant) AS variant, key_bucket AS bucket, count(latency_ms) AS n,
			        countIf(latency_ms > 5000) AS sum, NULL AS sumsq
			      FROM llm_requests WHERE rollout = {{rollout}} AND ts BETWEEN {{from}} AND {{to}} AND variant != ''
			      GROUP BY variant, bucket`,
			want: map[policy.Arm]policy.Sample{
				policy.Stable: {Kind: policy.Proportion, N: 2, Sum: 0},
				policy.Canary: {Kind: policy.Proportion, N: 4, Sum: 0},
			},
		},
		{
			name: "a bare value is advisory",
			sql:  `SELECT 'canary' AS variant, 0.42 AS value`,
			want: map[policy.Arm]policy.Sample{policy.Canary: {Kind: policy.Value, N: 4, Sum: 0.42}}, // N: the arm's requests
		},
		{name: "missing columns", sql: `SELECT toString(variant) AS variant, count() AS n FROM llm_requests GROUP BY variant`, wantErr: clickhouse.ErrBadQuery},
		{name: "syntax error", sql: `SELEC 1`, wantErr: clickhouse.ErrBadQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := own(tt.sql)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "custom") {
					t.Fatalf("error = %v, want %v naming the metric", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
				g, ok := got.Arm(arm).Metrics["custom"]
				w, wantOK := tt.want[arm]
				if ok != wantOK || g.Kind != w.Kind || g.N != w.N || !near(g.Sum, w.Sum) || !near(g.SumSquares, w.SumSquares) {
					t.Errorf("%s: got %+v (present %v), want %+v (present %v)", arm, g, ok, w, wantOK)
				}
				if ok && tt.name == "a mean per key bucket" {
					checkClusters(t, arm, "custom", g, 1)
				}
			}
		})
	}

	t.Run("a wrong password is unavailable and not shown", func(t *testing.T) {
		bad, err := clickhouse.New(srv.URL+"?password=env:CHPASS", func(string) string { return "wrong-secret" })
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Stats(context.Background(), q)
		if !errors.Is(err, policy.ErrSourceUnavailable) || strings.Contains(err.Error(), "wrong-secret") {
			t.Fatalf("error = %v, want ErrSourceUnavailable without the password", err)
		}
	})
	t.Run("over TLS", func(t *testing.T) {
		// The same server behind a TLS-terminating proxy, as ClickHouse Cloud or chproxy serve it.
		target, err := url.Parse(srv.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		proxy := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
		defer proxy.Close()
		secure, err := clickhouse.New("clickhouse://"+testserver.ClickHouseUser+"@"+strings.TrimPrefix(proxy.URL, "https://")+
			"/default?secure=true&password=env:CHPASS", getenv, clickhouse.WithHTTPClient(proxy.Client()))
		if err != nil {
			t.Fatal(err)
		}
		viaTLS, err := secure.Stats(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if viaTLS.Canary.Requests != got.Canary.Requests || viaTLS.Stable.Requests != got.Stable.Requests {
			t.Errorf("over TLS: %d and %d requests, want %d and %d", viaTLS.Stable.Requests, viaTLS.Canary.Requests,
				got.Stable.Requests, got.Canary.Requests)
		}
		// Without the proxy's certificate the system's roots refuse it: a source error, not an answer.
		untrusted, err := clickhouse.New("clickhouse://"+testserver.ClickHouseUser+"@"+strings.TrimPrefix(proxy.URL, "https://")+
			"/default?secure=true&password=env:CHPASS", getenv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := untrusted.Stats(context.Background(), q); !errors.Is(err, policy.ErrSourceUnavailable) {
			t.Errorf("untrusted certificate: error %v, want ErrSourceUnavailable", err)
		}
	})
	t.Run("a name that tries to leave its quotes stays a name", func(t *testing.T) {
		for _, name := range []string{`r' OR 1=1 --`, `r\' OR 1=1 --`, "r\\", `{{rollout}}`, "r\x00'"} {
			got, err := src.Stats(context.Background(), policy.Query{Rollout: name, Window: q.Window})
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			if got.Stable.Requests+got.Canary.Requests != 0 {
				t.Errorf("%q matched %d requests, want none", name, got.Stable.Requests+got.Canary.Requests)
			}
		}
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
