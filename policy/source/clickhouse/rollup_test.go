package clickhouse_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
)

func TestRollupOnDebianClickHouse(t *testing.T) { testRollup(t, testserver.ClickHouse(t)) }

func TestRollupOnChdb(t *testing.T) { testRollup(t, testserver.Chdb(t)) }

// testRollup writes the same requests, in several inserts, into two databases, one with the hourly
// rollup (rollup.sql), and checks that every window gives the same statistics from both: the rollup's
// whole hours plus llm_requests' edges add up to llm_requests alone, key bitmaps, latency bins, late
// feedback and the first canary record included. The traffic starts before the views were created, so
// the hours they did not see are read from llm_requests.
func testRollup(t *testing.T, srv *testserver.ClickHouseServer) {
	plain, rolled := database(t, srv, "db_plain"), database(t, srv, "db_rollup")
	for _, st := range clickhouse.Statements(clickhouse.Schema + ";\n" + clickhouse.Rollup) {
		rolled.Exec(t, st)
	}
	created := serverNow(t, srv).Truncate(time.Hour) // the rollup holds hours from created+2h on
	from, to := created.Add(-2*time.Hour+23*time.Minute), created.Add(8*time.Hour+41*time.Minute)
	bad := healthy
	bad.errorRate, bad.latencyMedian = 0.2, 800
	reqs := append(traffic(11, "healthy", from, to, 1500, 6, 0.25, healthy, healthy),
		traffic(12, "failing", from.Add(3*time.Hour), to, 1500, 6, 0.25, healthy, bad)...)
	for i := range reqs {
		reqs[i].shadow = i%97 == 0 && reqs[i].variant == "canary"
	}
	// Four inserts, so that the rollup holds unmerged rows of the same hour and bucket.
	for i := 0; i < 4; i++ {
		part := reqs[i*len(reqs)/4 : (i+1)*len(reqs)/4]
		loadRollout(t, plain, part)
		loadRollout(t, rolled, part)
	}
	var late strings.Builder
	late.WriteString("INSERT INTO llm_requests (ts, rollout, request_id, feedback, quality) FORMAT TabSeparated\n")
	for i := 0; i < len(reqs); i += 53 {
		r := reqs[i]
		late.WriteString(tsv(r.ts.Add(20*time.Minute).Unix(), r.rollout, r.id, []int{-1, 1}[i%2], 0.25))
	}
	plain.Exec(t, late.String())
	rolled.Exec(t, late.String())

	plainSrc, rolledSrc := open(t, srv, "db_plain"), open(t, srv, "db_rollup")
	for _, c := range []struct {
		name     string
		rollout  string
		from, to time.Time
		rollup   bool // whether a whole hour of the window lies in the rollup
	}{
		{"the whole traffic", "healthy", from, to, true},
		{"a day's window, mid-hour at both ends", "healthy", created.Add(2*time.Hour + 7*time.Minute), to.Add(-19 * time.Minute), true},
		{"the canary starts after the window does", "failing", from, to, true},
		{"on whole hours", "healthy", created.Add(3 * time.Hour), created.Add(6*time.Hour - time.Second), true},
		{"before the rollup holds anything", "healthy", from, created.Add(2*time.Hour + 30*time.Minute), false},
		{"within one hour", "healthy", created.Add(4*time.Hour + 5*time.Minute), created.Add(4*time.Hour + 55*time.Minute), false},
		{"an unknown rollout", "nope", from, to, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := policy.Query{Rollout: c.rollout, Window: policy.Window{From: c.from, To: c.to}}
			reads := rolledSrc.RollupReads()
			want, err := plainSrc.Stats(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rolledSrc.Stats(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if read := rolledSrc.RollupReads() > reads; read != c.rollup {
				t.Errorf("read the rollup: %v, want %v", read, c.rollup)
			}
			if plainSrc.RollupReads() != 0 {
				t.Error("a database without the rollup read it")
			}
			for _, d := range diffStats(want, got) {
				t.Error(d)
			}
		})
	}
	t.Run("the judge decides the same", func(t *testing.T) {
		for name, action := range map[string]policy.Action{"healthy": policy.Advance, "failing": policy.Rollback} {
			sp := spec(name, "rollout")
			sp.Assignment.Exclude = nil
			sp.Status.StageStartedAt = from.Add(3 * time.Hour)
			at := to.Add(-time.Minute)
			q, _ := policy.QueryFor(sp, at)
			stats, err := rolledSrc.Stats(context.Background(), q)
			if d := policy.Judge(sp, policy.Evidence{Stats: stats, Err: err}, at); d.Action != action {
				t.Errorf("%s: decision %s, want %s: %v", name, d.Action, action, d.Reasons)
			}
		}
	})
}

// serverNow is the time on srv's clock, which dates the rollup's tables.
func serverNow(t testing.TB, srv *testserver.ClickHouseServer) time.Time {
	t.Helper()
	secs, err := strconv.ParseInt(strings.TrimSpace(srv.Exec(t, "SELECT toUnixTimestamp(now())")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(secs, 0).UTC()
}

// diffStats lists how got differs from want, sums compared to 1e-9 relative.
func diffStats(want, got *policy.Stats) []string {
	var out []string
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b))) }
	if !want.From.Equal(got.From) || want.Unit != got.Unit || want.NotRandomised != got.NotRandomised ||
		want.Shadow != got.Shadow || want.LateUnmatched != got.LateUnmatched {
		out = append(out, fmt.Sprintf("From %s unit %s not randomised %d shadow %d late unmatched %d, want %s %s %d %d %d",
			got.From, got.Unit, got.NotRandomised, got.Shadow, got.LateUnmatched, want.From, want.Unit, want.NotRandomised, want.Shadow, want.LateUnmatched))
	}
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		w, g := want.Arm(arm), got.Arm(arm)
		if w.Requests != g.Requests || w.Keys != g.Keys || len(w.Metrics) != len(g.Metrics) {
			out = append(out, fmt.Sprintf("%s: %d requests, %d keys, %d metrics; want %d, %d, %d", arm, g.Requests, g.Keys, len(g.Metrics), w.Requests, w.Keys, len(w.Metrics)))
		}
		for name, ws := range w.Metrics {
			gs := g.Metrics[name]
			if ws.N != gs.N || !near(ws.Sum, gs.Sum) || !near(ws.SumSquares, gs.SumSquares) || len(ws.Clusters) != len(gs.Clusters) {
				out = append(out, fmt.Sprintf("%s %s: n %d sum %g sumsq %g clusters %d; want %d %g %g %d", arm, name,
					gs.N, gs.Sum, gs.SumSquares, len(gs.Clusters), ws.N, ws.Sum, ws.SumSquares, len(ws.Clusters)))
				continue
			}
			for i, wc := range ws.Clusters {
				gc := gs.Clusters[i]
				same := wc.Bucket == gc.Bucket && near(wc.N, gc.N) && near(wc.Sum, gc.Sum) && near(wc.SumSquares, gc.SumSquares) && len(wc.Bins) == len(gc.Bins)
				for j := 0; same && j < len(wc.Bins); j++ {
					same = wc.Bins[j] == gc.Bins[j]
				}
				if !same {
					out = append(out, fmt.Sprintf("%s %s cluster %d: %+v, want %+v", arm, name, i, gc, wc))
					break
				}
			}
		}
	}
	return out
}
