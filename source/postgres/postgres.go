// Package postgres reads a rollout's per-arm statistics from a PostgreSQL table of LLM requests,
// llm_requests (its DDL is Schema, from schema.sql), through a pgx connection pool.
//
// One Stats call sends one query that computes, per variant, the counts, sums and sums of squares of
// every built-in proportion and mean metric. When a quantile metric (latency_p50_ms, latency_p95_ms,
// latency_p99_ms) is asked, a second query pulls a bounded histogram of latency_ms (width_bucket over
// 700 log-spaced buckets from 1 ms to 1000 s, about 2% wide), whose Distribution interpolates within a
// bucket. A metric with its own SQL costs one more query.
//
// # The DSN
//
// postgres://USER@HOST:PORT/DB?sslmode=disable&password=env:PGPASS reads the password from the
// environment variable PGPASS when the source is opened; postgres://USER:env:PGPASS@HOST/DB works too.
// A literal password is refused, so that none is ever committed in a spec, and the resolved password
// never appears in an error.
//
// # A metric's own SQL
//
// A rule's `query` is a SELECT returning one row per variant with the columns variant (stable or
// canary), n (the number of observations), sum, and sumsq: the sum of squares for a mean, or NULL for a
// proportion, where sum is then the number of events among n. {{rollout}}, {{from}} and {{to}} are bound
// as parameters (text, timestamptz, timestamptz), never spliced into the text. For example:
//
//	SELECT variant, count(*) AS n, sum(latency_ms) AS sum, sum(latency_ms^2) AS sumsq
//	FROM llm_requests WHERE rollout = {{rollout}} AND "timestamp" BETWEEN {{from}} AND {{to}}
//	  AND model_version LIKE 'claude-%' GROUP BY variant
package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/source/histogram"
)

// Schema is the DDL of the llm_requests table the default queries read.
//
//go:embed schema.sql
var Schema string

// DefaultTimeout bounds one Stats call when the caller's context has no earlier deadline.
const DefaultTimeout = 10 * time.Second

// envPrefix marks a password given as a reference to an environment variable.
const envPrefix = "env:"

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
	var ref string
	if u.User != nil {
		endpoint = u.User.Username() + "@" + endpoint
		if p, ok := u.User.Password(); ok {
			if !strings.HasPrefix(p, envPrefix) {
				return nil, "", fmt.Errorf("%w %s: a literal password; use password=env:VAR", ErrBadDSN, endpoint)
			}
			ref = p
			u.User = url.User(u.User.Username())
		}
	}
	q := u.Query()
	if p := q.Get("password"); p != "" {
		if !strings.HasPrefix(p, envPrefix) {
			return nil, "", fmt.Errorf("%w %s: a literal password; use password=env:VAR", ErrBadDSN, endpoint)
		}
		ref = p
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, "", fmt.Errorf("%w %s: %v", ErrBadDSN, endpoint, err)
	}
	if ref != "" {
		name := strings.TrimPrefix(ref, envPrefix)
		if name == "" || getenv == nil || getenv(name) == "" {
			return nil, "", fmt.Errorf("%w %s: environment variable %q is not set", ErrBadDSN, endpoint, name)
		}
		cfg.ConnConfig.Password = getenv(name)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns = 4
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
		Stable: policy.ArmStats{Metrics: map[string]policy.Sample{}},
		Canary: policy.ArmStats{Metrics: map[string]policy.Sample{}},
	}
	if err := s.aggregates(ctx, q, stats); err != nil {
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
	for _, m := range q.Metrics {
		if m.Query == "" {
			continue
		}
		if err := s.ownQuery(ctx, q, m, stats); err != nil {
			return nil, fmt.Errorf("rollout %s metric %s: %w", q.Rollout, m.Name, err)
		}
	}
	return stats, nil
}

// aggregatesSQL computes, per variant, what every built-in proportion and mean needs.
const aggregatesSQL = `SELECT variant,
  count(*), count(*) FILTER (WHERE shadow),
  count(*) FILTER (WHERE status <> 'ok'),
  count(*) FILTER (WHERE is_refusal),
  count(feedback), count(*) FILTER (WHERE feedback < 0),
  count(latency_ms), coalesce(sum(latency_ms), 0), coalesce(sum(latency_ms * latency_ms), 0),
  count(cost_usd), coalesce(sum(cost_usd), 0), coalesce(sum(cost_usd * cost_usd), 0),
  count(input_tokens), coalesce(sum(input_tokens::float8), 0), coalesce(sum(input_tokens::float8 ^ 2), 0),
  count(output_tokens), coalesce(sum(output_tokens::float8), 0), coalesce(sum(output_tokens::float8 ^ 2), 0),
  count(quality), coalesce(sum(quality), 0), coalesce(sum(quality * quality), 0)
FROM llm_requests
WHERE rollout = $1 AND "timestamp" >= $2 AND "timestamp" <= $3 AND variant IN ('stable', 'canary')
GROUP BY variant`

// moment is the count, sum and sum of squares of one mean metric.
type moment struct {
	n          int64
	sum, sumSq float64
}

func (m moment) sample() (policy.Sample, bool) {
	return policy.Sample{Kind: policy.Mean, N: m.n, Sum: m.sum, SumSquares: m.sumSq}, m.n > 0
}

func (s *Source) aggregates(ctx context.Context, q policy.Query, stats *policy.Stats) error {
	rows, err := s.query(ctx, aggregatesSQL, q.Rollout, q.Window.From, q.Window.To)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			variant                                  string
			requests, shadow, errs, refusals         int64
			feedbackN, negative                      int64
			latency, cost, inTokens, outTokens, qual moment
		)
		if err := rows.Scan(&variant, &requests, &shadow, &errs, &refusals, &feedbackN, &negative,
			&latency.n, &latency.sum, &latency.sumSq, &cost.n, &cost.sum, &cost.sumSq,
			&inTokens.n, &inTokens.sum, &inTokens.sumSq, &outTokens.n, &outTokens.sum, &outTokens.sumSq,
			&qual.n, &qual.sum, &qual.sumSq); err != nil {
			return s.queryError(aggregatesSQL, err)
		}
		arm := stats.Arm(policy.Arm(variant))
		arm.Requests = requests
		if variant == string(policy.Canary) {
			stats.Shadow = shadow
		}
		samples := map[string]policy.Sample{
			"error_rate":             {Kind: policy.Proportion, N: requests, Sum: float64(errs)},
			"refusal_rate":           {Kind: policy.Proportion, N: requests, Sum: float64(refusals)},
			"negative_feedback_rate": {Kind: policy.Proportion, N: feedbackN, Sum: float64(negative)},
		}
		for name, m := range map[string]moment{"latency_mean_ms": latency, "cost_per_request": cost,
			"input_tokens_per_request": inTokens, "output_tokens_per_request": outTokens, "quality_score": qual} {
			samples[name], _ = m.sample()
		}
		for _, m := range q.Metrics {
			if sample, ok := samples[m.Name]; ok && m.Query == "" && sample.N > 0 {
				arm.Metrics[m.Name] = sample
			}
		}
	}
	if err := rows.Err(); err != nil {
		return s.queryError(aggregatesSQL, err)
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

const latencyHistogramSQL = `SELECT variant,
  width_bucket(ln(greatest(latency_ms, $4::float8)), ln($4::float8), ln($5::float8), $6::int) AS bucket, count(*)
FROM llm_requests
WHERE rollout = $1 AND "timestamp" >= $2 AND "timestamp" <= $3 AND variant IN ('stable', 'canary')
  AND latency_ms IS NOT NULL
GROUP BY 1, 2`

func (s *Source) latencyHistogram(ctx context.Context, q policy.Query, stats *policy.Stats) error {
	rows, err := s.query(ctx, latencyHistogramSQL, q.Rollout, q.Window.From, q.Window.To,
		latencyLow, latencyHigh, latencyBuckets)
	if err != nil {
		return err
	}
	defer rows.Close()
	counts := map[string]map[int]int64{}
	for rows.Next() {
		var variant string
		var bucket int
		var n int64
		if err := rows.Scan(&variant, &bucket, &n); err != nil {
			return s.queryError(latencyHistogramSQL, err)
		}
		if counts[variant] == nil {
			counts[variant] = map[int]int64{}
		}
		counts[variant][bucket] += n
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
		sum := 0.0
		if mean, ok := arm.Metrics["latency_mean_ms"]; ok {
			sum = mean.Sum
		}
		for _, m := range q.Metrics {
			if m.Query == "" && quantileMetrics[m.Name] && cum > 0 {
				arm.Metrics[m.Name] = policy.Sample{Kind: policy.Quantile, N: cum, Sum: sum, Dist: h}
			}
		}
	}
	return nil
}

// ownQuery runs a metric's own SQL under the column contract (variant, n, sum, sumsq).
func (s *Source) ownQuery(ctx context.Context, q policy.Query, m policy.MetricQuery, stats *policy.Stats) error {
	sql, args := bindPlaceholders(m.Query, map[string]any{
		"{{rollout}}": q.Rollout, "{{from}}": q.Window.From, "{{to}}": q.Window.To,
	})
	// The outer SELECT holds the template to its columns and their types, whatever it computes them as.
	sql = "SELECT variant::text, n::bigint, sum::float8, sumsq::float8 FROM (" + strings.TrimRight(strings.TrimSpace(sql), ";") + ") AS metric"
	rows, err := s.query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var variant *string
		var n *int64
		var sum, sumSq *float64
		if err := rows.Scan(&variant, &n, &sum, &sumSq); err != nil {
			return s.queryError(sql, err)
		}
		if variant == nil || (*variant != string(policy.Stable) && *variant != string(policy.Canary)) {
			continue
		}
		if n == nil || *n <= 0 || sum == nil {
			continue // no data for this arm
		}
		sample := policy.Sample{Kind: policy.Proportion, N: *n, Sum: *sum}
		if sumSq != nil {
			sample = policy.Sample{Kind: policy.Mean, N: *n, Sum: *sum, SumSquares: *sumSq}
		}
		stats.Arm(policy.Arm(*variant)).Metrics[m.Name] = sample
	}
	if err := rows.Err(); err != nil {
		return s.queryError(sql, err)
	}
	return nil
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

// query sends one query, counting it.
func (s *Source) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	s.queries.Add(1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, s.queryError(sql, err)
	}
	return rows, nil
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
