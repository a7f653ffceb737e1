package clickhouse

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rollup is the DDL of the hourly rollup of llm_requests (rollup.sql): an AggregatingMergeTree table of
// aggregates and a SummingMergeTree table of latency bins, and the materialized views that fill them on
// every insert. Statements splits it for the HTTP interface; clickhouse-client --multiquery runs it as
// it is.
//
//go:embed rollup.sql
var Rollup string

// Statements splits a file of DDL (Schema, Rollup) into its statements, without comments, for an
// interface that runs one statement per request.
func Statements(ddl string) []string {
	var out []string
	for _, st := range strings.Split(ddl, ";\n") {
		var lines []string
		for _, line := range strings.Split(st, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, line)
			}
		}
		if st := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// rollupTables are the tables and views of rollup.sql; the source reads the rollup only when all are
// there.
var rollupTables = []string{"llm_requests_rollup", "llm_requests_rollup_mv", "llm_requests_rollup_latency", "llm_requests_rollup_latency_mv"}

// rollupSinceSQL counts the rollup's tables and views and finds when the newest was created.
var rollupSinceSQL = "SELECT count(), toInt64(toUnixTimestamp(max(metadata_modification_time))) FROM system.tables\n" +
	"WHERE database = currentDatabase() AND name IN ('" + strings.Join(rollupTables, "', '") + "')\nFORMAT TabSeparated"

// rollupMargin is how long after the views' creation (rounded down to the hour) the rollup starts to be
// read: an hour the views saw only part of is read from llm_requests, with an hour to spare for clocks
// that disagree.
const rollupMargin = 2 * time.Hour

// rollupPlan is how one Stats call reads llm_requests with the rollup: of the span judged [lo, to], the
// hours [hours[0], hours[1]) from the rollup, the rest from llm_requests. The hours are whole hours of
// the span, and the span's last, partial hour too when none of its requests is newer than the span.
type rollupPlan struct {
	startMS int64     // the first canary record, in Unix milliseconds; 0 when there is none
	lo, to  time.Time // the span judged: the first canary record (or the window's start) to its end
	hours   [2]time.Time
}

// rollupHours returns the whole hours of [lo, to] that the rollup holds (it holds every hour from since
// on), as [a, b), and whether there is one. ts is stored in whole seconds, so an hour h lies within
// [lo, to] when h ≥ lo and h + 1h − 1s ≤ to.
func rollupHours(lo, to, since time.Time) (a, b time.Time, ok bool) {
	lo = lo.Truncate(time.Second)
	a = lo.Truncate(time.Hour)
	if a.Before(lo) {
		a = a.Add(time.Hour)
	}
	if a.Before(since) {
		a = since
	}
	b = to.Truncate(time.Second).Add(time.Second).Truncate(time.Hour)
	return a, b, a.Before(b)
}

// planRollup decides whether this Stats call reads the rollup (the rollout schema, no keys that bypass
// the hash, the rollup's tables present, and a whole hour of the window in it) and, if it does, finds
// where both arms start. It returns nil to read llm_requests alone.
func (s *Source) planRollup(ctx context.Context, sch schema, sc scope) (*rollupPlan, error) {
	if sch.name != rolloutSchema.name || sc.notRandomised != "" || sc.filter != "" {
		return nil, nil
	}
	if _, _, ok := rollupHours(sc.from, sc.to, time.Time{}); !ok {
		return nil, nil // no whole hour in the window: no need to ask whether the rollup is there
	}
	since, ok, err := s.rollupSince(ctx)
	if err != nil || !ok {
		return nil, err
	}
	p := &rollupPlan{lo: sc.from, to: sc.to}
	if !p.cover(since) {
		return nil, nil
	}
	var later int64
	err = s.query(ctx, rollupStartSQL(sc, p), func(f []string) error {
		if len(f) != 2 {
			return fmt.Errorf("%d columns, want 2", len(f))
		}
		var err1, err2 error
		p.startMS, err1 = strconv.ParseInt(f[0], 10, 64)
		later, err2 = strconv.ParseInt(f[1], 10, 64)
		return errors.Join(err1, err2)
	})
	if err != nil {
		return nil, err
	}
	if start := time.UnixMilli(p.startMS); p.startMS > 0 && start.After(p.lo) {
		p.lo = start
	}
	if !p.cover(since) {
		return nil, nil // the canary started within the last whole hour: llm_requests alone is as quick
	}
	if later == 0 && !p.to.Before(p.hours[1]) {
		// Nothing in the window's last hour is newer than its end (the usual case: the window ends
		// now), so that hour's rollup row holds exactly its requests up to the end.
		p.hours[1] = p.hours[1].Add(time.Hour)
	}
	return p, nil
}

// cover sets the whole hours of [p.lo, p.to] the rollup holds, and reports whether there is one.
func (p *rollupPlan) cover(since time.Time) bool {
	a, b, ok := rollupHours(p.lo, p.to, since)
	p.hours = [2]time.Time{a, b}
	return ok
}

// rollupSince returns since when the rollup holds every request: rollupMargin after the hour in which
// its newest table or view was created. ok is false when one of them is missing.
func (s *Source) rollupSince(ctx context.Context) (since time.Time, ok bool, err error) {
	err = s.query(ctx, rollupSinceSQL, func(f []string) error {
		v, err := numbers(f)
		if err != nil || len(v) != 2 {
			return fmt.Errorf("catalog answer %q", f)
		}
		ok = int(v[0]) == len(rollupTables)
		since = time.Unix(int64(v[1]), 0).UTC().Truncate(time.Hour).Add(rollupMargin)
		return nil
	})
	return since, ok, err
}

// rawEdges restricts llm_requests to the parts of [lo, to] outside [covered[0], covered[1]), which the
// rollup holds: two ranges of the table's primary key.
func rawEdges(sc scope, lo, to time.Time, covered [2]time.Time) string {
	return fmt.Sprintf("\n  WHERE rollout = %s AND variant != '' AND (ts >= %s AND ts < %s OR ts >= %s AND ts <= %s)",
		quote(sc.rollout), dateTime(lo), dateTime(covered[0]), dateTime(covered[1]), dateTime(to))
}

// rollupRows restricts a rollup table to the rollout's hours p.hours.
func rollupRows(sc scope, p *rollupPlan) string {
	return fmt.Sprintf("\n  WHERE rollout = %s AND variant != '' AND hour >= %s AND hour < %s", quote(sc.rollout), dateTime(p.hours[0]), dateTime(p.hours[1]))
}

// rollupStartSQL finds the first canary record of the window (in the rollup's first_ts where it holds
// the window, in llm_requests for the rest; 0 when there is none), and counts the requests of the
// window's last hour that are newer than its end.
func rollupStartSQL(sc scope, p *rollupPlan) string {
	last := p.to.Truncate(time.Hour)
	return `SELECT toInt64(min(t)), (SELECT count() FROM llm_requests
    WHERE rollout = ` + quote(sc.rollout) + ` AND variant != '' AND ts > ` + dateTime(p.to) + ` AND ts < ` + dateTime(last.Add(time.Hour)) + `)
FROM (
  SELECT toInt64(toUnixTimestamp(ts)) * 1000 AS t FROM llm_requests` + rawEdges(sc, p.lo, p.to, p.hours) + ` AND variant = 'canary'
  UNION ALL
  SELECT toInt64(toUnixTimestamp(minMerge(first_ts))) * 1000 AS t FROM llm_requests_rollup` + rollupRows(sc, p) + ` AND variant = 'canary'
  HAVING countMerge(requests) > 0)
FORMAT TabSeparated`
}

// rollupAggregatesSQL is aggregatesSQL over the rollup's whole hours and llm_requests' edges: each
// branch computes the same columns per cell (randomised keys only: the rollup is read only when no key
// bypasses the hash), as Float64 so that UNION ALL accepts them, and the outer query adds them up
// (ORs the key bitmaps). Its columns are aggregatesSQL's, so one reader serves both.
func rollupAggregatesSQL(sc scope, p *rollupPlan, wanted []aggregate) string {
	cols := rolloutSchema.columns(sc, true)
	var outer, roll, raw []string
	add := func(outerFn, rollExpr, rawExpr string) {
		c := fmt.Sprintf("c%d", len(outer))
		outer = append(outer, outerFn+"("+c+")")
		roll = append(roll, rollExpr+" AS "+c)
		raw = append(raw, rawExpr+" AS "+c)
	}
	add("sum", "toFloat64(countMerge(requests))", "toFloat64(count())")
	add("sum", "sumMerge(shadow)", "toFloat64(sum({shadow}))")
	for w := 0; w < keyWords; w++ {
		add("groupBitOr", fmt.Sprintf("groupBitOrMerge(keys%d)", w), keyWordSQL(w))
	}
	for _, a := range wanted {
		for i, e := range a.exprs {
			add("sum", a.rollup[i], "toFloat64("+e+")")
		}
	}
	return "WITH " + rolloutSchema.lateIDs(sc) + " AS late_ids\nSELECT cell, toInt64(" + strconv.FormatInt(p.startMS, 10) + "), any(late_ids),\n  " +
		strings.Join(outer, ", ") + "\nFROM (\n  SELECT toUInt32(variant) * 1024 + key_bucket AS cell,\n    " + strings.Join(roll, ",\n    ") +
		"\n  FROM llm_requests_rollup" + rollupRows(sc, p) + "\n  GROUP BY cell\n  UNION ALL\n  SELECT " +
		expand(cellSQL, cols) + " AS cell,\n    " + expand(strings.Join(raw, ",\n    "), cols) +
		"\n  FROM llm_requests" + rawEdges(sc, p.lo, p.to, p.hours) + "\n  GROUP BY cell)\nGROUP BY cell\nFORMAT TabSeparated"
}

// rollupBinsSQL is binsSQL over the rollup's latency bins of its whole hours and llm_requests' edges:
// the two answers one after the other (latencyBins adds up a cell and bin that comes twice), which
// spares ClickHouse a GROUP BY over both.
func rollupBinsSQL(sc scope, p *rollupPlan) string {
	cols := rolloutSchema.columns(sc, false)
	return `SELECT (toUInt32(variant) * 1024 + key_bucket) * 256 + latency_bin AS cell_bin, sum(requests) AS n
FROM llm_requests_rollup_latency` + strings.Replace(rollupRows(sc, p), "\n  ", "\n", 1) + `
GROUP BY cell_bin
UNION ALL
SELECT ` + expand(cellBinSQL, cols) + ` AS cell_bin, count() AS n
FROM llm_requests` + strings.Replace(rawEdges(sc, p.lo, p.to, p.hours), "\n  ", "\n", 1) + ` AND isNotNull(latency_ms)
GROUP BY cell_bin
FORMAT TabSeparated`
}
