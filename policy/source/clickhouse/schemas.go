package clickhouse

import (
	"fmt"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// scope is what every schema's rows are restricted to.
type scope struct {
	rollout       string
	from, to      time.Time
	notRandomised string // a regular expression of the keys that bypass the hash; "" for none
	// filter is the segment's condition on the requests (" AND …"), empty for none: see filterSQL.
	filter string
}

// schema maps one table layout onto the normalised columns the aggregate queries read, over one row per
// LLM request of the rollout in the window:
//
//	ts_ms      Int64             when the request started, in Unix milliseconds
//	arm        UInt8             1 stable, 2 canary
//	shadow     UInt8             a mirrored canary call
//	nr         UInt8             its key matched Query.NotRandomised
//	bucket     UInt16            the key bucket, in [0, 1024); a keyless request's own bucket
//	bin        UInt8             policy.QuantileBin of the latency
//	key_hash   UInt64            a hash of the assignment key; 0 when the request has none
//	err        UInt8             the request failed
//	refusal    Nullable(UInt8)   the model refused; NULL where the schema cannot tell
//	feedback   Nullable(Float64) -1, 0, 1
//	latency, cost, in_tok, out_tok, quality  Nullable(Float64)
//
// A schema with late records (rollout) also has, in its full columns, new_feedback and new_quality: the
// values once the latest late record of the request is applied.
//
// The queries put these expressions into their aggregates directly (see expand).
type schema struct {
	name string
	// columns returns each normalised column's expression over the FROM clause.
	columns func(sc scope, full bool) map[string]string
	// from returns the FROM and WHERE clauses; full adds the joins that only the aggregates need.
	from func(sc scope, full bool) string
	// lateIDs returns a scalar expression: the number of late records' request ids in the window
	// (toUInt64(0) where the schema has none).
	lateIDs func(sc scope) string
	// lateFrom, for a schema with late records, returns the FROM and WHERE clauses of the requests
	// that late records name, joined to the latest record of each (late_feedback, late_quality).
	lateFrom func(sc scope) string
	// settings is appended to each query.
	settings string
	// attr returns the expression of a request attribute (a segment): a column, or a key of the
	// metadata or properties map the application sets.
	attr func(name string) string
}

// filterSQL is the condition that keeps a segment's requests: each attribute, as a string, equal to
// its value. A name that cannot be a column is ErrBadSegment.
func filterSQL(sch schema, filter []policy.Attr) (string, error) {
	var b strings.Builder
	for _, f := range filter {
		if !policy.ValidAttrName(f.Name) {
			return "", fmt.Errorf("%w: %q", ErrBadSegment, f.Name)
		}
		b.WriteString(" AND toString(" + sch.attr(f.Name) + ") = " + quote(f.Value))
	}
	return b.String(), nil
}

func schemaFor(name string) (schema, error) {
	switch name {
	case "", rollouts.SchemaRollout:
		return rolloutSchema, nil
	case rollouts.SchemaLangfuse:
		return langfuseSchema, nil
	case rollouts.SchemaHelicone:
		return heliconeSchema, nil
	}
	return schema{}, fmt.Errorf("%w: %q (want rollout, langfuse or helicone)", ErrUnknownSchema, name)
}

// binSQL is policy.QuantileBin in SQL: 0 for v ≤ 1 (and NULL), else ceil(log(v)/log(1.1)) within
// [1, QuantileBins-1].
func binSQL(v string) string {
	return fmt.Sprintf("toUInt8(if(ifNull(%[1]s, 0) <= 1, 0, least(greatest(toInt32(ceil(log(greatest(assumeNotNull(%[1]s), 1)) / log(1.1))), 1), 199)))", v)
}

// withBin adds the bin of the latency column, for schemas that do not store it.
func withBin(cols map[string]string) map[string]string {
	cols["bin"] = binSQL("(" + cols["latency"] + ")")
	return cols
}

// notRandomisedSQL is 1 for a key the globs match.
func notRandomisedSQL(sc scope, key string) string {
	if sc.notRandomised == "" {
		return "toUInt8(0)"
	}
	return fmt.Sprintf("toUInt8(match(%s, %s))", key, quote(sc.notRandomised))
}

// rolloutSchema reads llm_requests (schema.sql); it runs on ClickHouse 18.16. Late records (variant ”)
// are attached by request_id: the latest one's feedback and quality replace the request's own.
var rolloutSchema = schema{
	name: rollouts.SchemaRollout,
	columns: func(sc scope, full bool) map[string]string {
		cols := map[string]string{
			"ts_ms": "toInt64(toUnixTimestamp(ts)) * 1000", "arm": "toUInt8(variant)", "shadow": "shadow",
			"nr": notRandomisedSQL(sc, "key"), "bucket": "key_bucket", "bin": "latency_bin", "key_hash": "key_hash",
			"err": "error", "refusal": "toNullable(refusal)", "feedback": "toNullable(toFloat64(feedback))",
			"latency": "latency_ms", "cost": "cost_usd", "in_tok": "toNullable(toFloat64(input_tokens))",
			"out_tok": "toNullable(toFloat64(output_tokens))", "quality": "quality",
		}
		if full {
			cols["new_feedback"] = "if(isNotNull(late_feedback), toNullable(toFloat64(late_feedback)), toNullable(toFloat64(feedback)))"
			cols["new_quality"] = "if(isNotNull(late_quality), late_quality, quality)"
		}
		return cols
	},
	from: func(sc scope, full bool) string {
		return "FROM llm_requests" + rolloutWindow(sc)
	},
	attr: func(name string) string { return "`" + name + "`" },
	lateFrom: func(sc scope) string {
		return `FROM llm_requests
  ANY INNER JOIN (
    SELECT request_id, argMaxIf(feedback, ts, isNotNull(feedback)) AS late_feedback,
      argMaxIf(quality, ts, isNotNull(quality)) AS late_quality
    FROM llm_requests
    WHERE rollout = ` + quote(sc.rollout) + ` AND variant = '' AND request_id != '' AND ts >= ` + dateTime(sc.from) + ` AND ts <= ` + dateTime(sc.to) + `
    GROUP BY request_id) AS late USING request_id` + rolloutWindow(sc)
	},
	lateIDs: func(sc scope) string {
		return fmt.Sprintf("(SELECT uniqExact(request_id) FROM llm_requests WHERE rollout = %s AND variant = '' AND request_id != '' AND ts >= %s AND ts <= %s)",
			quote(sc.rollout), dateTime(sc.from), dateTime(sc.to))
	},
}

// langfuseSchema reads Langfuse's observations (generations), with the key from traces.user_id and
// quality and feedback from scores named quality and feedback (an observation's own score, else its
// trace's). Langfuse updates rows by inserting new versions into ReplacingMergeTree tables, so every
// table is read with FINAL and without deleted rows.
var langfuseSchema = schema{
	name: rollouts.SchemaLangfuse,
	columns: func(sc scope, full bool) map[string]string {
		return withBin(map[string]string{
			"ts_ms": "toInt64(toUnixTimestamp64Milli(o.start_time))", "arm": "toUInt8(if(o.metadata['variant'] = 'canary', 2, 1))",
			"shadow": "toUInt8(o.metadata['shadow'] = 'true')", "nr": notRandomisedSQL(sc, "t.user"),
			"bucket":   "toUInt16(if(t.user != '', cityHash64(t.user), cityHash64(o.id)) % 1024)",
			"key_hash": "if(t.user != '', cityHash64(t.user), toUInt64(0))",
			"err":      "toUInt8(o.level = 'ERROR')", "refusal": "CAST(NULL AS Nullable(UInt8))",
			"feedback": "toNullable(toFloat64(coalesce(so.feedback, st.feedback)))",
			"latency":  "if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)))))",
			"cost":     "toNullable(toFloat64(coalesce(o.total_cost, if(mapContains(o.cost_details, 'total'), o.cost_details['total'], NULL))))",
			"in_tok":   "if(mapContains(o.usage_details, 'input'), toNullable(toFloat64(o.usage_details['input'])), NULL)",
			"out_tok":  "if(mapContains(o.usage_details, 'output'), toNullable(toFloat64(o.usage_details['output'])), NULL)",
			"quality":  "toNullable(toFloat64(coalesce(so.quality, st.quality)))",
		})
	},
	from: func(sc scope, full bool) string {
		from, to := dateTime64(sc.from), dateTime64(sc.to)
		scores := "" // only the aggregates read quality and feedback
		if full {
			scores = `
  LEFT JOIN (SELECT assumeNotNull(observation_id) AS observation_id, ` + scoreColumns + `
    FROM scores FINAL WHERE is_deleted = 0 AND isNotNull(observation_id) AND name IN ('quality', 'feedback') AND timestamp >= ` + from + `
    GROUP BY observation_id) AS so ON so.observation_id = o.id
  LEFT JOIN (SELECT trace_id, ` + scoreColumns + `
    FROM scores FINAL WHERE is_deleted = 0 AND isNull(observation_id) AND name IN ('quality', 'feedback') AND timestamp >= ` + from + `
    GROUP BY trace_id) AS st ON st.trace_id = o.trace_id`
		}
		return `FROM observations AS o FINAL
  LEFT JOIN (SELECT id, ifNull(user_id, '') AS user FROM traces FINAL WHERE is_deleted = 0 AND id IN (
      SELECT trace_id FROM observations WHERE type = 'GENERATION' AND metadata['rollout'] = ` + quote(sc.rollout) + `
        AND start_time >= ` + from + ` AND start_time <= ` + to + `)) AS t
    ON t.id = o.trace_id` + scores + `
  WHERE o.type = 'GENERATION' AND o.is_deleted = 0 AND o.metadata['rollout'] = ` + quote(sc.rollout) + `
    AND o.metadata['variant'] IN ('stable', 'canary') AND o.start_time >= ` + from + ` AND o.start_time <= ` + to + sc.filter
	},
	attr:     func(name string) string { return "o.metadata[" + quote(name) + "]" },
	lateIDs:  func(scope) string { return "toUInt64(0)" },
	settings: "SETTINGS join_use_nulls = 1",
}

// scoreColumns reads a group of Langfuse scores: the mean of those named quality and the latest named
// feedback, each NULL when the group has none (so that an observation's own score wins over its trace's).
const scoreColumns = `if(countIf(name = 'quality') > 0, avgIf(value, name = 'quality'), NULL) AS quality,
      if(countIf(name = 'feedback') > 0, argMaxIf(value, timestamp, name = 'feedback'), NULL) AS feedback`

// heliconeCostScale is how Helicone stores cost in request_response_rmt: USD × 10^9 as UInt64
// (COST_PRECISION_MULTIPLIER in Helicone's cost package).
const heliconeCostScale = 1e9

// heliconeSchema reads Helicone's request_response_rmt: the rollout and variant from the request's
// properties (Helicone-Property-Rollout and Helicone-Property-Variant headers), the key from user_id
// (Helicone-User-Id), errors from an HTTP status outside 2xx, feedback from the helicone-score-feedback
// score (1 positive, 0 negative) and quality from a score named quality.
var heliconeSchema = schema{
	name: rollouts.SchemaHelicone,
	columns: func(sc scope, full bool) map[string]string {
		return withBin(map[string]string{
			"ts_ms": "toInt64(toUnixTimestamp64Milli(request_created_at))", "arm": "toUInt8(if(properties['variant'] = 'canary', 2, 1))",
			"shadow": "toUInt8(properties['shadow'] = 'true')", "nr": notRandomisedSQL(sc, "toString(user_id)"),
			"bucket":   "toUInt16(if(user_id != '', cityHash64(toString(user_id)), cityHash64(request_id)) % 1024)",
			"key_hash": "if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))",
			"err":      "toUInt8(status < 200 OR status >= 300)", "refusal": "CAST(NULL AS Nullable(UInt8))",
			"feedback": "if(mapContains(scores, 'helicone-score-feedback'), toNullable(if(scores['helicone-score-feedback'] = 1, 1., -1.)), NULL)",
			"latency":  "toNullable(toFloat64(latency))", "cost": "toNullable(cost / " + fmt.Sprintf("%g", heliconeCostScale) + ")",
			"in_tok": "toNullable(toFloat64(prompt_tokens))", "out_tok": "toNullable(toFloat64(completion_tokens))",
			"quality": "if(mapContains(scores, 'quality'), toNullable(toFloat64(scores['quality'])), NULL)",
		})
	},
	from: func(sc scope, full bool) string {
		return `FROM request_response_rmt FINAL
  WHERE properties['rollout'] = ` + quote(sc.rollout) + ` AND properties['variant'] IN ('stable', 'canary')
    AND request_created_at >= ` + dateTime64(sc.from) + ` AND request_created_at <= ` + dateTime64(sc.to) + sc.filter
	},
	attr:    func(name string) string { return "properties[" + quote(name) + "]" },
	lateIDs: func(scope) string { return "toUInt64(0)" },
}

// rolloutWindow is the WHERE clause of llm_requests's requests of the rollout in the window.
func rolloutWindow(sc scope) string {
	return fmt.Sprintf("\n  WHERE rollout = %s AND ts >= %s AND ts <= %s AND variant != ''", quote(sc.rollout), dateTime(sc.from), dateTime(sc.to)) + sc.filter
}

// dateTime is t as a ClickHouse DateTime literal (whole seconds; the rollout schema's ts).
func dateTime(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }

// dateTime64 is t as a DateTime64(3) literal.
func dateTime64(t time.Time) string {
	return fmt.Sprintf("fromUnixTimestamp64Milli(toInt64(%d))", t.UnixMilli())
}

// quote is s as a ClickHouse string literal. Inside single quotes ClickHouse reads backslash escapes,
// so escaping the backslash and the quote (and spelling out the bytes a terminal would eat) is enough
// for any input to stay one literal.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
