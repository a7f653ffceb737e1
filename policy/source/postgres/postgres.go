// Package postgres reads a rollout's per-arm statistics from PostgreSQL tables of LLM requests,
// llm_requests and llm_feedback (their DDL is Schema, from schema.sql), through a pgx connection pool.
//
// One Stats call sends one query that computes, per variant and hash bucket of the assignment key
// (hashtext(key) & 1023, policy.KeyBuckets buckets), the counts, sums and sums of squares of every
// built-in proportion and mean metric, the distinct keys, the first canary record, the requests not
// randomised and the late records without a request. When a quantile metric (latency_p50_ms,
// latency_p95_ms, latency_p99_ms) is asked, a second query counts latency_ms per variant in 700
// log-spaced buckets from 1 ms to 1000 s (about 2% wide, for the quantiles) and per variant and key
// bucket in policy.QuantileBin's bins (for the judge's per-key comparison). A metric with its own SQL
// costs one more query (two with {{variant}}).
//
// # What is counted
//
// The unit is the assignment key (request_key): every request of one user lands in one bucket, so the
// judge treats buckets as independent units however correlated a user's requests are (Stats.Unit is
// policy.UnitKey). A request without a key is its own unit: its request_id, else its row id, stands in
// for the key. Both arms are counted from the first canary record in the window (Stats.From) to its end;
// stable requests before it are left out, and while the canary has none the stable arm covers the whole
// window. Keys matched by the spec's include and exclude globs (policy.Query.NotRandomised, path.Match
// syntax, translated to PostgreSQL regular expressions) are left out of both arms and counted in
// Stats.NotRandomised.
//
// # Late feedback
//
// A row of llm_feedback (timestamp, rollout, request_id, feedback and/or quality) attaches to the
// llm_requests row of the same rollout and request_id: its arm, its key and its window. The latest
// value of each column, up to the window's end, wins over the request's own. A late row whose
// request_id matches no request of the rollout is counted in Stats.LateUnmatched, never guessed.
//
// # The DSN
//
// postgres://USER@HOST:PORT/DB?sslmode=disable&password=env:ROLLOUT_PGPASS reads the password from the
// environment variable PGPASS when the source is opened; postgres://USER:env:ROLLOUT_PGPASS@HOST/DB works too.
// A literal password is refused, so that none is ever committed in a spec, and the resolved password
// never appears in an error.
//
// # A metric's own SQL
//
// A rule's `query` is a SELECT whose result the source reads by its column names. {{rollout}},
// {{from}} and {{to}} are bound as parameters (text, timestamptz, timestamptz), never spliced into the
// text. The accepted shapes, one row per variant (a column variant = stable or canary):
//
//   - events and total: a proportion (errors among requests) the judge tests;
//   - n (or count), sum and sumsq: a mean the judge tests (sumsq NULL: a proportion, sum the events);
//   - value: a bare number per arm, advisory: shown, never a cause to act.
//
// An optional bucket column (an integer in [0, 1024), a hash of the assignment key) makes the sums per
// key bucket, so the judge counts users rather than requests. A query that uses {{variant}} is run once
// per arm with it bound, and returns one row without a variant column: the same columns, or one bare
// column (advisory). For example:
//
//	SELECT variant, count(*) FILTER (WHERE status <> 'ok') AS events, count(*) AS total
//	FROM llm_requests WHERE rollout = {{rollout}} AND "timestamp" BETWEEN {{from}} AND {{to}}
//	  AND model_version LIKE 'claude-%' GROUP BY variant
//
//	SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) FROM llm_requests
//	WHERE rollout = {{rollout}} AND variant = {{variant}} AND "timestamp" BETWEEN {{from}} AND {{to}}
//
// It belongs to the policy room and adapts PostgreSQL to policy.Source.
package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/histogram"
	"github.com/rollout-dev/rollout/policy/source/urlpass"
)

// Schema is the DDL of the llm_requests table the default queries read.
//
//go:embed schema.sql
var Schema string

// DefaultTimeout bounds one Stats call when the caller's context has no earlier deadline.
const DefaultTimeout = 10 * time.Second

// Errors of the source, for errors.Is. An unreachable server or a timeout wraps
// policy.ErrSourceUnavailable.
var (
	// ErrBadDSN marks a DSN that cannot be used: unparsable, a literal password, an unset variable.
	ErrBadDSN = errors.New("bad PostgreSQL DSN")
	// ErrBadQuery marks SQL the server rejected, or whose result breaks the column contract.
	ErrBadQuery = errors.New("bad PostgreSQL query")
)

// Source is a policy.Source over PostgreSQL. It is safe for concurrent use; Close releases its pool.
type Source struct {
	pool     *pgxpool.Pool
	endpoint string // user@host:port/db, for messages
	timeout  time.Duration
	queries  atomic.Int64
}

var _ policy.Source = (*Source)(nil)

// Option configures a Source.
type Option func(*Source)

// WithTimeout bounds one Stats call (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(s *Source) { s.timeout = d } }

// New opens a pool (connections are made on first use) for dsn, resolving an env: password with getenv.
func New(dsn string, getenv func(string) string, opts ...Option) (*Source, error) {
	cfg, endpoint, err := parseDSN(dsn, getenv)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadDSN, endpoint, err)
	}
	s := &Source{pool: pool, endpoint: endpoint, timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// parseDSN takes the env: password out of dsn, resolves it, and returns the pool configuration.
func parseDSN(dsn string, getenv func(string) string) (*pgxpool.Config, string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, "", fmt.Errorf("%w: want postgres://user@host:port/db?password=env:VAR", ErrBadDSN)
	}
	endpoint := u.Host + u.Path
	if u.User != nil {
		endpoint = u.User.Username() + "@" + endpoint
	}
	password, err := urlpass.Take(u, getenv)
	if err != nil {
		return nil, "", fmt.Errorf("%w %s: %w", ErrBadDSN, endpoint, err)
	}
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, "", fmt.Errorf("%w %s: %v", ErrBadDSN, endpoint, err)
	}
	// Always the spec's own (resolved) password, even none: pgx would otherwise fill in PGPASSWORD or a
	// .pgpass entry (or a passfile= the URL names) and send it to whatever host the spec chose.
	cfg.ConnConfig.Password = password
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns = 4
	// Every session is read-only at the server; each query runs in a BEGIN READ ONLY transaction too.
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	return cfg, endpoint, nil
}

// Close releases the pool's connections.
func (s *Source) Close() { s.pool.Close() }

// Queries returns the number of SQL queries sent so far.
func (s *Source) Queries() int64 { return s.queries.Load() }

// String names the source without its password.
func (s *Source) String() string { return "postgres://" + s.endpoint }

// Stats reads the statistics of q.Rollout over q.Window from llm_requests (every built-in metric when q
// names none) and the metrics' own SQL.
func (s *Source) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	q.Metrics = q.Wanted()
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	stats := &policy.Stats{
		Unit:      policy.UnitKey,
		KeysExact: true, // count(DISTINCT unit) per key bucket, summed: a unit lies in one bucket
		Stable:    policy.ArmStats{Metrics: map[string]policy.Sample{}},
		Canary:    policy.ArmStats{Metrics: map[string]policy.Sample{}},
	}
	var err error
	if err = s.aggregates(ctx, q, stats); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	for _, m := range q.Metrics {
		if m.Query == "" && quantileMetrics[m.Name] {
			if err := s.latencyHistogram(ctx, q, stats); err != nil {
				return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
			}
			break
		}
	}
	// The quantiles took their sums from latency_mean_ms whether or not it was asked: keep only the
	// built-ins asked for.
	builtin := map[string]bool{}
	for _, m := range q.Metrics {
		if m.Query == "" {
			builtin[m.Name] = true
		}
	}
	for _, arm := range []*policy.ArmStats{&stats.Stable, &stats.Canary} {
		for name := range arm.Metrics {
			if !builtin[name] {
				delete(arm.Metrics, name)
			}
		}
	}
	if len(q.Segments) > 0 {
		if stats.SegmentValues, err = s.segmentValues(ctx, q); err != nil {
			return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
		}
	}
	for _, m := range q.Metrics {
		if m.Query == "" || len(q.Filter) > 0 {
			// A rule's own SQL knows nothing of segments: within one, it has no data.
			continue
		}
		if err := s.ownQuery(ctx, q, m, stats); err != nil {
			return nil, fmt.Errorf("rollout %s metric %s: %w", q.Rollout, m.Name, err)
		}
	}
	return stats, nil
}

// scopeSQL is the common head of the source's queries: the rollout's requests in the window ($1
// rollout, $2 from, $3 to), whether each one's key is not randomised ($4, a regular expression of the
// include and exclude globs; empty for none), the first canary record among the others, the latest late
// feedback and score of each request, and the requests both arms count: from the first canary record
// on (the whole window while the canary has none), not-randomised keys left out, late values in place
// of the request's own. Each request's unit is its key, else its request_id, else its row: a request
// without a key is its own unit.
const scopeSQL = `WITH scope AS (
  SELECT r.*, (r.request_key IS NOT NULL AND $4::text <> '' AND r.request_key ~ $4::text) AS not_randomised
  FROM llm_requests r
  WHERE r.rollout = $1 AND r."timestamp" >= $2 AND r."timestamp" <= $3 AND r.variant IN ('stable', 'canary')` + segmentMarker + `
), first AS (
  SELECT min("timestamp") AS at FROM scope WHERE variant = 'canary' AND NOT not_randomised
), late AS (
  SELECT f.request_id,
    (array_agg(f.feedback ORDER BY f."timestamp" DESC, f.id DESC) FILTER (WHERE f.feedback IS NOT NULL))[1] AS feedback,
    (array_agg(f.quality ORDER BY f."timestamp" DESC, f.id DESC) FILTER (WHERE f.quality IS NOT NULL))[1] AS quality,
    (array_agg(f.preferred ORDER BY f."timestamp" DESC, f.id DESC) FILTER (WHERE f.preferred IS NOT NULL))[1] AS preferred
  FROM llm_feedback f
  WHERE f.rollout = $1 AND f."timestamp" >= $2 AND f."timestamp" <= $3
  GROUP BY f.request_id
), counted AS (
  SELECT s.variant, s.shadow, s.status, s.is_refusal, s.latency_ms, s.cost_usd, s.input_tokens, s.output_tokens,
    coalesce(l.feedback, s.feedback) AS feedback, coalesce(l.quality, s.quality) AS quality, l.preferred,
    coalesce(s.request_key, s.request_id, 'row:' || s.id::text) AS unit,
    hashtext(coalesce(s.request_key, s.request_id, 'row:' || s.id::text)) & 1023 AS bucket
  FROM scope s LEFT JOIN late l ON l.request_id = s.request_id
  WHERE NOT s.not_randomised AND s."timestamp" >= coalesce((SELECT at FROM first), $2)
)
`

// aggregatesSQL computes, per variant and key bucket, what every built-in proportion and mean needs,
// with the distinct units (summed over buckets: a unit lives in one bucket) and, on every row, the first
// canary record, the requests not randomised and the late records whose request is unknown. The
// grand-total row (variant NULL) is there even when no request counts.
const aggregatesSQL = scopeSQL + `SELECT variant, bucket,
  count(*), count(DISTINCT unit), count(*) FILTER (WHERE shadow),
  count(*) FILTER (WHERE status <> 'ok'),
  count(*) FILTER (WHERE is_refusal),
  count(feedback), count(*) FILTER (WHERE feedback < 0),
  count(latency_ms), coalesce(sum(latency_ms), 0), coalesce(sum(latency_ms * latency_ms), 0),
  count(cost_usd), coalesce(sum(cost_usd), 0), coalesce(sum(cost_usd * cost_usd), 0),
  count(input_tokens), coalesce(sum(input_tokens::float8), 0), coalesce(sum(input_tokens::float8 ^ 2), 0),
  count(output_tokens), coalesce(sum(output_tokens::float8), 0), coalesce(sum(output_tokens::float8 ^ 2), 0),
  count(quality), coalesce(sum(quality), 0), coalesce(sum(quality * quality), 0),
  count(preferred), coalesce(sum(CASE preferred WHEN 'canary' THEN 1 WHEN 'tie' THEN 0.5 ELSE 0 END), 0)::float8,
  coalesce(sum(CASE preferred WHEN 'canary' THEN 1 WHEN 'tie' THEN 0.25 ELSE 0 END), 0)::float8,
  (SELECT at FROM first),
  (SELECT count(*) FROM scope WHERE not_randomised),
  (SELECT count(*) FROM late WHERE NOT EXISTS (
     SELECT 1 FROM llm_requests r WHERE r.rollout = $1 AND r.request_id = late.request_id))
FROM counted
GROUP BY GROUPING SETS ((variant, bucket), ())`

// moment is the count, sum and sum of squares of one mean metric.
type moment struct {
	n          int64
	sum, sumSq float64
}

// builtinMoments are the moments of the aggregates row, in its column order, with the metric each
// feeds.
var builtinMoments = []struct {
	name string
	kind policy.SampleKind
}{
	{"error_rate", policy.Proportion}, {"refusal_rate", policy.Proportion}, {"negative_feedback_rate", policy.Proportion},
	{"latency_mean_ms", policy.Mean}, {"cost_per_request", policy.Mean}, {"input_tokens_per_request", policy.Mean},
	{"output_tokens_per_request", policy.Mean}, {"quality_score", policy.Mean},
}

func (s *Source) aggregates(ctx context.Context, q policy.Query, stats *policy.Stats) error {
	sql, args, err := withFilter(aggregatesSQL, q.Filter, q.Rollout, q.Window.From, q.Window.To, globsRegexp(q.NotRandomised))
	if err != nil {
		return err
	}
	rows, err := s.query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	samples := map[policy.Arm]map[string]*policy.Sample{}
	wins := map[int]moment{}
	for rows.Next() {
		var (
			variant                                  *string
			bucket                                   *int32
			requests, units, shadow, errs, refusals  int64
			feedbackN, negative                      int64
			latency, cost, inTokens, outTokens, qual moment
			win                                      moment
			first                                    *time.Time
			notRandomised, lateUnmatched             int64
		)
		if err := rows.Scan(&variant, &bucket, &requests, &units, &shadow, &errs, &refusals, &feedbackN, &negative,
			&latency.n, &latency.sum, &latency.sumSq, &cost.n, &cost.sum, &cost.sumSq,
			&inTokens.n, &inTokens.sum, &inTokens.sumSq, &outTokens.n, &outTokens.sum, &outTokens.sumSq,
			&qual.n, &qual.sum, &qual.sumSq, &win.n, &win.sum, &win.sumSq, &first, &notRandomised, &lateUnmatched); err != nil {
			return s.queryError(aggregatesSQL, err)
		}
		if variant == nil || bucket == nil {
			// The grand total: what the whole query knows.
			if first != nil {
				stats.From = first.UTC()
			}
			stats.NotRandomised, stats.LateUnmatched = notRandomised, lateUnmatched
			continue
		}
		if win.n > 0 {
			// A pairwise verdict counts in the canary's win share whichever arm served the request it
			// names (on shadow traffic, the stable answer the user saw).
			w := wins[int(*bucket)]
			w.n, w.sum, w.sumSq = w.n+win.n, w.sum+win.sum, w.sumSq+win.sumSq
			wins[int(*bucket)] = w
		}
		arm := policy.Arm(*variant)
		as := stats.Arm(arm)
		as.Requests += requests
		as.Keys += units
		if arm == policy.Canary {
			stats.Shadow += shadow
		}
		if samples[arm] == nil {
			samples[arm] = map[string]*policy.Sample{}
		}
		for i, m := range []moment{
			{requests, float64(errs), float64(errs)}, {requests, float64(refusals), float64(refusals)},
			{feedbackN, float64(negative), float64(negative)}, latency, cost, inTokens, outTokens, qual,
		} {
			b := builtinMoments[i]
			if m.n == 0 {
				continue
			}
			sm := samples[arm][b.name]
			if sm == nil {
				sm = &policy.Sample{Kind: b.kind}
				samples[arm][b.name] = sm
			}
			sm.N += m.n
			sm.Sum += m.sum
			sm.SumSquares += m.sumSq
			sm.Clusters = append(sm.Clusters, policy.Cluster{Bucket: int(*bucket), N: float64(m.n), Sum: m.sum, SumSquares: m.sumSq})
		}
	}
	if err := rows.Err(); err != nil {
		return s.queryError(aggregatesSQL, err)
	}
	for arm, byName := range samples {
		for name, sm := range byName {
			sort.Slice(sm.Clusters, func(i, j int) bool { return sm.Clusters[i].Bucket < sm.Clusters[j].Bucket })
			stats.Arm(arm).Metrics[name] = *sm
		}
	}
	if len(wins) > 0 {
		win := policy.Sample{Kind: policy.Proportion}
		for b, m := range wins {
			win.N += m.n
			win.Sum += m.sum
			win.SumSquares += m.sumSq
			win.Clusters = append(win.Clusters, policy.Cluster{Bucket: b, N: float64(m.n), Sum: m.sum, SumSquares: m.sumSq})
		}
		sort.Slice(win.Clusters, func(i, j int) bool { return win.Clusters[i].Bucket < win.Clusters[j].Bucket })
		stats.Canary.Metrics[canaryWinRate] = win
	}
	return nil
}

// quantileMetrics are the built-ins read from the latency histogram.
var quantileMetrics = map[string]bool{"latency_p50_ms": true, "latency_p95_ms": true, "latency_p99_ms": true}

// The latency histogram: latencyBuckets log-spaced buckets from latencyLow to latencyHigh ms, plus one
// below (bucket 1 takes everything under latencyLow) and one above (+Inf).
const (
	latencyLow     = 1.0
	latencyHigh    = 1e6
	latencyBuckets = 700
)

// latencyHistogramSQL counts the latencies of the counted requests twice over, in one query: per
// variant in the fine histogram (width_bucket, about 2% wide) that gives the quantiles, and per variant
// and key bucket in policy.QuantileBin's bins (10% wide) that the judge compares per key.
var latencyHistogramSQL = scopeSQL + `SELECT variant, bucket,
  CASE WHEN latency_ms <= 1 THEN 0 ELSE least(` + strconv.Itoa(policy.QuantileBins-1) + `, greatest(1, ceil(ln(latency_ms) / ln(1.1))::int)) END AS bin,
  width_bucket(ln(greatest(latency_ms, $5::float8)), ln($5::float8), ln($6::float8), $7::int) AS fine,
  count(*)
FROM counted
WHERE latency_ms IS NOT NULL
GROUP BY GROUPING SETS ((variant, bucket, bin), (variant, fine))`

func (s *Source) latencyHistogram(ctx context.Context, q policy.Query, stats *policy.Stats) error {
	sql, args, err := withFilter(latencyHistogramSQL, q.Filter, q.Rollout, q.Window.From, q.Window.To, globsRegexp(q.NotRandomised),
		latencyLow, latencyHigh, latencyBuckets)
	if err != nil {
		return err
	}
	rows, err := s.query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	counts := map[string]map[int]int64{}
	bins := map[string]map[int][]float64{}
	for rows.Next() {
		var variant string
		var bucket, bin, fine *int32
		var n int64
		if err := rows.Scan(&variant, &bucket, &bin, &fine, &n); err != nil {
			return s.queryError(latencyHistogramSQL, err)
		}
		switch {
		case fine != nil:
			if counts[variant] == nil {
				counts[variant] = map[int]int64{}
			}
			counts[variant][int(*fine)] += n
		case bucket != nil && bin != nil:
			if bins[variant] == nil {
				bins[variant] = map[int][]float64{}
			}
			if bins[variant][int(*bucket)] == nil {
				bins[variant][int(*bucket)] = make([]float64, policy.QuantileBins)
			}
			bins[variant][int(*bucket)][*bin] += float64(n)
		}
	}
	if err := rows.Err(); err != nil {
		return s.queryError(latencyHistogramSQL, err)
	}
	ratio := math.Pow(latencyHigh/latencyLow, 1.0/latencyBuckets)
	for variant, byBucket := range counts {
		buckets := make([]histogram.Bucket, 0, latencyBuckets+1)
		var cum int64
		for i := 1; i <= latencyBuckets; i++ { // width_bucket's bucket i is [low·r^(i-1), low·r^i)
			cum += byBucket[i]
			buckets = append(buckets, histogram.Bucket{UpperBound: latencyLow * math.Pow(ratio, float64(i)), Count: float64(cum)})
		}
		cum += byBucket[latencyBuckets+1]
		buckets = append(buckets, histogram.Bucket{UpperBound: math.Inf(1), Count: float64(cum)})
		h, err := histogram.New(buckets, 1)
		if err != nil {
			return fmt.Errorf("latency histogram: %w", err)
		}
		arm := stats.Arm(policy.Arm(variant))
		mean := arm.Metrics["latency_mean_ms"]
		// The quantiles' clusters: the mean's sums per key bucket, with that bucket's bins.
		clusters := make([]policy.Cluster, 0, len(mean.Clusters))
		for _, c := range mean.Clusters {
			c.Bins = bins[variant][c.Bucket]
			clusters = append(clusters, c)
		}
		for _, m := range q.Metrics {
			if m.Query == "" && quantileMetrics[m.Name] && cum > 0 {
				arm.Metrics[m.Name] = policy.Sample{Kind: policy.Quantile, N: cum, Sum: mean.Sum, SumSquares: mean.SumSquares,
					Dist: h, Clusters: clusters}
			}
		}
	}
	return nil
}

// globsRegexp returns one PostgreSQL regular expression matching exactly the keys that path.Match
// matches with one of globs, or "" for none. A glob path.Match rejects matches nothing, as in
// rollouts' assignment.
func globsRegexp(globs []string) string {
	var parts []string
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			continue
		}
		parts = append(parts, "^(?:"+globRegexp(g)+")$")
	}
	return strings.Join(parts, "|")
}

// globRegexp translates one valid path.Match pattern: * is any run of characters but '/', ? one
// character but '/', [...] a class ([^...] negated), \ escapes the next character.
func globRegexp(g string) string {
	var b strings.Builder
	for i := 0; i < len(g); {
		c, size := utf8.DecodeRuneInString(g[i:])
		i += size
		switch c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i < len(g) {
				c, size = utf8.DecodeRuneInString(g[i:])
				i += size
			}
			b.WriteString(regexpLiteral(c))
		case '[':
			b.WriteByte('[')
			if i < len(g) && g[i] == '^' {
				b.WriteByte('^')
				i++
			}
			for i < len(g) && g[i] != ']' {
				c, size = utf8.DecodeRuneInString(g[i:])
				i += size
				switch {
				case c == '\\' && i < len(g):
					c, size = utf8.DecodeRuneInString(g[i:])
					i += size
					b.WriteString(classLiteral(c))
				case c == '-':
					b.WriteByte('-')
				default:
					b.WriteString(classLiteral(c))
				}
			}
			i++ // the closing ]
			b.WriteByte(']')
		default:
			b.WriteString(regexpLiteral(c))
		}
	}
	return b.String()
}

// regexpLiteral writes c so that an ARE reads it literally.
func regexpLiteral(c rune) string {
	if strings.ContainsRune(`\.+*?()|[]{}^$`, c) {
		return `\` + string(c)
	}
	return string(c)
}

// classLiteral writes c so that an ARE bracket expression reads it literally.
func classLiteral(c rune) string {
	if strings.ContainsRune(`\]^-[`, c) {
		return `\` + string(c)
	}
	return string(c)
}

// ownQuery runs a metric's own SQL and reads its result by the names of its columns (see the package
// doc): events and total, or n (or count), sum and sumsq, per variant, are testable counts; value is
// advisory; a bucket column gives the sums per key bucket. A template that names {{variant}} runs once
// per arm and returns one row with no variant column.
func (s *Source) ownQuery(ctx context.Context, q policy.Query, m policy.MetricQuery, stats *policy.Stats) error {
	values := map[string]any{"{{rollout}}": q.Rollout, "{{from}}": q.Window.From, "{{to}}": q.Window.To}
	if !strings.Contains(m.Query, "{{variant}}") {
		return s.ownRows(ctx, m, values, "", stats)
	}
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		values["{{variant}}"] = string(arm)
		if err := s.ownRows(ctx, m, values, arm, stats); err != nil {
			return fmt.Errorf("%s: %w", arm, err)
		}
	}
	return nil
}

// ownRows runs one instance of a metric's SQL; arm is the arm it was bound to, or "" when the result
// names the variant of each row.
func (s *Source) ownRows(ctx context.Context, m policy.MetricQuery, values map[string]any, arm policy.Arm, stats *policy.Stats) error {
	sql, args := bindPlaceholders(m.Query, values)
	sql = strings.TrimRight(strings.TrimSpace(sql), ";")
	rows, err := s.query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	col := map[string]int{}
	for i, f := range rows.FieldDescriptions() {
		col[strings.ToLower(f.Name)] = i
	}
	shape, err := resultShape(col, arm == "")
	if err != nil {
		// The server's own refusal (a statement that writes, in a read-only transaction) comes first.
		rows.Close()
		if rerr := rows.Err(); rerr != nil {
			return s.queryError(sql, rerr)
		}
		return fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	samples := map[policy.Arm]*policy.Sample{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return s.queryError(sql, err)
		}
		rowArm := arm
		if arm == "" {
			v, _ := vals[col["variant"]].(string)
			if v != string(policy.Stable) && v != string(policy.Canary) {
				continue // another variant, or NULL
			}
			rowArm = policy.Arm(v)
		}
		c, ok, err := shape.read(vals)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadQuery, err)
		}
		if !ok {
			continue // no data in this row
		}
		sm := samples[rowArm]
		if sm == nil {
			sm = &policy.Sample{Kind: shape.kind}
			samples[rowArm] = sm
		}
		if shape.kind == policy.Value {
			sm.Sum, sm.N = c.Sum, 1
			continue
		}
		if shape.kind == policy.Proportion && shape.events < 0 && vals[shape.sumsq] != nil {
			sm.Kind = policy.Mean // a sumsq column with values: a mean
		}
		sm.N += int64(c.N)
		sm.Sum += c.Sum
		sm.SumSquares += c.SumSquares
		if shape.bucket >= 0 {
			sm.Clusters = append(sm.Clusters, c)
		}
	}
	if err := rows.Err(); err != nil {
		return s.queryError(sql, err)
	}
	for a, sm := range samples {
		if sm.Kind != policy.Value && sm.N <= 0 {
			continue
		}
		sort.Slice(sm.Clusters, func(i, j int) bool { return sm.Clusters[i].Bucket < sm.Clusters[j].Bucket })
		stats.Arm(a).Metrics[m.Name] = *sm
	}
	return nil
}

// ownShape is how to read a metric's own result: the column of each figure (-1: absent).
type ownShape struct {
	kind                         policy.SampleKind
	events, total, n, sum, sumsq int
	value, bucket                int
}

// resultShape finds the shape of a result by its columns; needVariant says the rows must name their
// variant.
func resultShape(col map[string]int, needVariant bool) (ownShape, error) {
	at := func(names ...string) int {
		for _, n := range names {
			if i, ok := col[n]; ok {
				return i
			}
		}
		return -1
	}
	sh := ownShape{events: at("events"), total: at("total"), n: at("n", "count"), sum: at("sum"), sumsq: at("sumsq"),
		value: at("value"), bucket: at("bucket")}
	if needVariant && at("variant") < 0 {
		return sh, errors.New("the result has no variant column (or use {{variant}} in the query, run once per arm)")
	}
	switch {
	case sh.events >= 0 && sh.total >= 0:
		sh.kind = policy.Proportion
	case sh.n >= 0 && sh.sum >= 0 && sh.sumsq >= 0:
		sh.kind = policy.Proportion // until a row's sumsq says Mean; NULL sumsq: sum counts events
	case sh.value >= 0:
		sh.kind, sh.bucket = policy.Value, -1
	case !needVariant && len(col) == 1:
		sh.kind, sh.value, sh.bucket = policy.Value, 0, -1 // one bare value
	default:
		return sh, errors.New("the result's columns are none of: events, total | n (or count), sum, sumsq | value (see the postgres source's doc)")
	}
	return sh, nil
}

// read returns one row's figures as a cluster (Sum = events for a proportion), and false for a row
// without data (NULL or zero count).
func (sh ownShape) read(vals []any) (policy.Cluster, bool, error) {
	var c policy.Cluster
	num := func(i int) (float64, bool, error) {
		if i < 0 {
			return 0, false, nil
		}
		return toFloat(vals[i])
	}
	if sh.bucket >= 0 {
		b, ok, err := num(sh.bucket)
		if err != nil || !ok || b < 0 || b >= policy.KeyBuckets || b != math.Trunc(b) {
			return c, false, fmt.Errorf("bucket %v is not an integer in [0, %d)", vals[sh.bucket], policy.KeyBuckets)
		}
		c.Bucket = int(b)
	}
	switch sh.kind {
	case policy.Value:
		v, ok, err := num(sh.value)
		c.Sum = v
		return c, ok && !math.IsNaN(v), err
	}
	nCol, sumCol := sh.n, sh.sum
	if sh.events >= 0 && sh.total >= 0 {
		nCol, sumCol = sh.total, sh.events
	}
	n, okN, err := num(nCol)
	if err != nil {
		return c, false, err
	}
	sum, okSum, err := num(sumCol)
	if err != nil {
		return c, false, err
	}
	if !okN || !okSum || n <= 0 {
		return c, false, nil
	}
	c.N, c.Sum, c.SumSquares = n, sum, sum // a proportion's events are 0/1: squares sum to the events
	if sh.sumsq >= 0 {
		ss, ok, err := num(sh.sumsq)
		if err != nil {
			return c, false, err
		}
		if ok {
			c.SumSquares = ss
		}
	}
	if sh.events >= 0 && (sum < 0 || sum > n) {
		return c, false, fmt.Errorf("events %v outside [0, total %v]", sum, n)
	}
	return c, true, nil
}

// toFloat reads a numeric result value: false for NULL, an error for anything not a number.
func toFloat(v any) (float64, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case float64:
		return x, true, nil
	case float32:
		return float64(x), true, nil
	case int64:
		return float64(x), true, nil
	case int32:
		return float64(x), true, nil
	case int16:
		return float64(x), true, nil
	case int8:
		return float64(x), true, nil
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return 0, false, err
		}
		return f.Float64, true, nil
	}
	return 0, false, fmt.Errorf("a %T where a number belongs", v)
}

// bindPlaceholders replaces each placeholder of sql by a positional parameter, numbered in the order
// of first use, and returns the arguments to pass. Placeholders that are not used are not passed, so
// that PostgreSQL never has to guess the type of a parameter no one reads.
func bindPlaceholders(sql string, values map[string]any) (string, []any) {
	var args []any
	index := map[string]int{}
	var b strings.Builder
	for {
		start := strings.Index(sql, "{{")
		if start < 0 {
			b.WriteString(sql)
			break
		}
		end := strings.Index(sql[start:], "}}")
		if end < 0 {
			b.WriteString(sql)
			break
		}
		name := sql[start : start+end+2]
		v, known := values[name]
		b.WriteString(sql[:start])
		if !known {
			b.WriteString(name) // left for PostgreSQL to reject, naming it
		} else {
			if index[name] == 0 {
				args = append(args, v)
				index[name] = len(args)
			}
			b.WriteString("$" + strconv.Itoa(index[name]))
		}
		sql = sql[start+end+2:]
	}
	return b.String(), args
}

// query sends one query, counting it, in a transaction of its own that is read-only at the server
// (BEGIN READ ONLY): a rule's own SQL comes from a spec, which a pull request may change, and must
// never write. The session's default is read-only too, but a query could turn that default off with
// set_config for the next one on the same connection; a read-only transaction cannot be made
// read-write once it has run a query. The transaction ends when the rows are closed.
func (s *Source) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	s.queries.Add(1)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, s.queryError(sql, err)
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		rollback(ctx, tx)
		return nil, s.queryError(sql, err)
	}
	return &readOnlyRows{Rows: rows, tx: tx, ctx: ctx}, nil
}

// readOnlyRows are the rows of a query in its own read-only transaction, which Close rolls back (it
// wrote nothing to keep).
type readOnlyRows struct {
	pgx.Rows
	tx  pgx.Tx
	ctx context.Context
}

func (r *readOnlyRows) Close() {
	r.Rows.Close()
	rollback(r.ctx, r.tx)
}

// rollback ends tx, even after ctx ended, within a bound: a broken connection is closed instead.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// queryError names the query and sorts the error: the server's rejection of the SQL is ErrBadQuery,
// anything else (connection, authentication, timeout) is ErrSourceUnavailable.
func (s *Source) queryError(sql string, err error) error {
	short := strings.Join(strings.Fields(sql), " ")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !strings.HasPrefix(pgErr.Code, "08") && !strings.HasPrefix(pgErr.Code, "28") &&
		!strings.HasPrefix(pgErr.Code, "57") && !strings.HasPrefix(pgErr.Code, "53") {
		return fmt.Errorf("%w: query %s: %w", ErrBadQuery, short, err)
	}
	return fmt.Errorf("%w: postgres %s: query %s: %w", policy.ErrSourceUnavailable, s.endpoint, short, err)
}

// segmentMarker marks where withFilter puts a segment's conditions in scopeSQL.
const segmentMarker = "/*segment*/"

// ErrBadSegment is returned for a segment attribute that cannot name a column.
var ErrBadSegment = errors.New("segment attribute is not a column name")

// columnName checks that a segment attribute can name a column (as analysis.segments requires) and
// returns it quoted.
func columnName(name string) (string, error) {
	if !policy.ValidAttrName(name) {
		return "", fmt.Errorf("%w: %q", ErrBadSegment, name)
	}
	return pgx.Identifier{name}.Sanitize(), nil
}

// withFilter returns sql with a condition per filter attribute (the column of that name, as text,
// equal to the value: a NULL matches nothing) at segmentMarker, and args with the values appended.
func withFilter(sql string, filter []policy.Attr, args ...any) (string, []any, error) {
	var cond strings.Builder
	for _, f := range filter {
		col, err := columnName(f.Name)
		if err != nil {
			return "", nil, err
		}
		args = append(args, f.Value)
		fmt.Fprintf(&cond, " AND r.%s::text = $%d::text", col, len(args))
	}
	return strings.Replace(sql, segmentMarker, cond.String(), 1), args, nil
}

// segmentValuesSQL counts the requests of the rollout in the window per value of one column (%s).
const segmentValuesSQL = `SELECT r.%s::text, count(*) FROM llm_requests r
WHERE r.rollout = $1 AND r."timestamp" >= $2 AND r."timestamp" <= $3 AND r.variant IN ('stable', 'canary')` + segmentMarker + `
  AND r.%s IS NOT NULL
GROUP BY 1`

// segmentValues returns the values of each of q.Segments' columns among the rollout's requests in the
// window, the most frequent first (policy.TopSegmentValues).
func (s *Source) segmentValues(ctx context.Context, q policy.Query) (map[string][]string, error) {
	out := map[string][]string{}
	for _, name := range q.Segments {
		col, err := columnName(name)
		if err != nil {
			return nil, err
		}
		sql, args, err := withFilter(fmt.Sprintf(segmentValuesSQL, col, col), q.Filter, q.Rollout, q.Window.From, q.Window.To)
		if err != nil {
			return nil, err
		}
		rows, err := s.query(ctx, sql, args...)
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", name, err)
		}
		counts := map[string]int64{}
		for rows.Next() {
			var (
				v string
				n int64
			)
			if err := rows.Scan(&v, &n); err != nil {
				rows.Close()
				return nil, s.queryError(sql, err)
			}
			counts[v] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.queryError(sql, err)
		}
		out[name] = policy.TopSegmentValues(counts)
	}
	return out, nil
}

// canaryWinRate is the canary's share of pairwise verdicts (llm_feedback.preferred), a tie counting half.
const canaryWinRate = "canary_win_rate"
