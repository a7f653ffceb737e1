// Package clickhouse reads a rollout's per-arm statistics from ClickHouse, where LLM traces live at
// scale: rollout's own llm_requests table (Schema, from schema.sql), Langfuse's observations, traces and
// scores, or Helicone's request_response_rmt (Query.Schema: rollout, langfuse, helicone).
//
// The aggregation runs in ClickHouse and no request row ever crosses the wire. One Stats call sends one
// query for the proportions and means the query's metrics need, grouped by variant and key bucket
// (counts, sums, sums of squares, a distinct-key bitmap: policy.UnitKey), and, when a latency quantile
// is asked, one more that counts each bucket's latencies per bin of policy.QuantileBin, computed in SQL
// with the same formula, so the judge's quantile bounds stay valid; no server-side quantile() is ever
// judged as exact. Both queries start both arms at the stage's first canary record (a scalar subquery;
// it comes back as Stats.From), and leave out, and count, the keys that Query.NotRandomised matches.
// Late feedback and scores (rollout schema) cost one more query, only in ticks that have some; a
// metric with its own SQL costs one more. The latency bins are read while the aggregates are. The exact
// SQL of each schema is in docs/metrics-sources.md.
//
// # The hourly rollup
//
// Where the database also holds the rollup of llm_requests (Rollup, from rollup.sql: tables that
// materialized views fill on every insert, per rollout, variant, hour and key bucket), the rollout
// schema reads the whole hours of the window from it (and the last, partial hour when nothing in it is
// newer than the window's end, as when the window ends now), and only the minutes at the ends from
// llm_requests: one query finds whether the rollup is there and since when it holds every row
// (system.tables), one finds the first canary record, then the aggregates and the bins each add up the
// rollup's hours and the raw edges in one query. Over a day of 10 million requests this is 7–10 times
// quicker than reading llm_requests alone (BenchmarkTick). A spec with include or exclude globs reads
// llm_requests alone: the rollup cannot tell those keys apart.
//
// # Why plain HTTP
//
// The source speaks ClickHouse's HTTP interface with net/http: the SQL in the body of a POST, the
// result as TabSeparated text, read line by line. That interface has not changed since long before
// ClickHouse 18.16 (2018, the Debian package the tests run) and is what every current server and proxy
// (ClickHouse Cloud, chproxy) speaks. clickhouse-go/v2 is tested only against the ClickHouse releases
// currently supported (18.16 left that list long ago), reaches HTTP only through its database/sql
// mode, which it calls experimental, and would bring a large dependency tree for three fixed queries
// whose answers are a few thousand rows of numbers. Values are spliced into the SQL as literals that
// cannot break out of their quotes (quote, in schemas.go), since 18.16 has no query parameters.
//
// # The URL
//
// clickhouse://USER@HOST:8123/DB?secure=true&password=env:ROLLOUT_CHPASS reads the password from the
// environment variable CHPASS when the source is opened (clickhouse://USER:env:ROLLOUT_CHPASS@HOST/DB works
// too); a literal password is refused, so that none is ever committed in a spec, and the resolved one
// never appears in an error. secure=true speaks HTTPS (the system's roots verify the server); the
// default port is 8123, or 8443 when secure. timeout=30s bounds one Stats call (DefaultTimeout).
//
// # A metric's own SQL
//
// A rule's `query` is a SELECT, with {{rollout}}, {{from}} and {{to}} replaced by literals (a string and
// two DateTime values; {{from}} is where both arms start, the stage's first canary record). It returns,
// per variant (stable or canary), either the columns variant, n, sum and sumsq (the sum of squares for
// a mean, or NULL for a proportion, where sum is then the number of events among n), which the judge
// tests, or the columns variant and value: a bare value, advisory only. An optional bucket column (a
// key bucket in [0, 1024)) makes the sums per key bucket, so the judge counts keys, not requests:
//
//	SELECT variant, key_bucket AS bucket, count() AS n, sum(latency_ms) AS sum,
//	  sum(latency_ms * latency_ms) AS sumsq
//	FROM llm_requests WHERE rollout = {{rollout}} AND ts BETWEEN {{from}} AND {{to}}
//	  AND model LIKE 'claude-%' GROUP BY variant, bucket
//
// It belongs to the policy room and adapts ClickHouse to policy.Source.
package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/urlpass"
)

// Schema is the DDL of the llm_requests table that the rollout schema reads.
//
//go:embed schema.sql
var Schema string

// DefaultTimeout bounds one Stats call when neither the URL nor the caller's context sets one.
const DefaultTimeout = 30 * time.Second

// Errors of the source, for errors.Is. An unreachable server, a refused login or a timeout wraps
// policy.ErrSourceUnavailable.
var (
	// ErrBadURL marks a URL that cannot be used: unparsable, a literal password, an unset variable.
	ErrBadURL = errors.New("bad ClickHouse URL")
	// ErrBadQuery marks SQL the server rejected, or whose result breaks the column contract.
	ErrBadQuery = errors.New("bad ClickHouse query")
	// ErrUnknownSchema marks a Query.Schema this source cannot read.
	ErrUnknownSchema = errors.New("schema not held by ClickHouse")
)

// Source is a policy.Source over ClickHouse's HTTP interface. It is safe for concurrent use.
type Source struct {
	endpoint string // https://host:port, without credentials
	display  string // user@host:port/db, for messages
	user     string
	password string
	database string
	timeout  time.Duration
	client   *http.Client
	queries  atomic.Int64
	// rollupReads counts the Stats calls that read the hourly rollup (rollup.sql).
	rollupReads atomic.Int64
}

var _ policy.Source = (*Source)(nil)

// Option configures a Source.
type Option func(*Source)

// WithTimeout bounds one Stats call (default: the URL's timeout, else DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(s *Source) { s.timeout = d } }

// WithHTTPClient replaces the HTTP client (for a private CA, a proxy).
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

// New returns a source for rawURL, resolving an env: password with getenv. It connects to nothing
// until the first Stats call.
func New(rawURL string, getenv func(string) string, opts ...Option) (*Source, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		return nil, fmt.Errorf("%w: want clickhouse://user@host:8123/db?password=env:VAR", ErrBadURL)
	}
	q := u.Query()
	s := &Source{user: "default", database: strings.Trim(u.Path, "/"), timeout: DefaultTimeout}
	if u.User != nil && u.User.Username() != "" {
		s.user = u.User.Username()
	}
	secure := false
	if v := q.Get("secure"); v != "" {
		if secure, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("%w: secure=%q is not true or false", ErrBadURL, v)
		}
	}
	host := u.Host
	if u.Port() == "" {
		port := "8123"
		if secure {
			port = "8443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	s.display = s.user + "@" + host + "/" + s.database
	if s.password, err = urlpass.Take(u, getenv); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBadURL, s.display, err)
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w %s: timeout=%q is not a positive duration", ErrBadURL, s.display, v)
		}
		s.timeout = d
	}
	scheme := "http"
	if secure {
		scheme = "https"
	}
	s.endpoint = scheme + "://" + host + "/"
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	transport.MaxIdleConnsPerHost = 4
	s.client = &http.Client{Transport: transport}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// Queries returns the number of queries sent so far.
func (s *Source) Queries() int64 { return s.queries.Load() }

// RollupReads returns the number of Stats calls so far that read the hourly rollup (Rollup) for the
// whole hours of their window.
func (s *Source) RollupReads() int64 { return s.rollupReads.Load() }

// String names the source without its password.
func (s *Source) String() string { return "clickhouse://" + s.display }

// Stats reads the statistics of q.Rollout over q.Window (every built-in metric when q names none, and
// the metrics' own SQL), with both arms starting at the stage's first canary record.
func (s *Source) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	q.Metrics = q.Wanted()
	sch, err := schemaFor(q.Schema)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	notRandomised, err := globsToRegexp(q.NotRandomised)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	stats := &policy.Stats{
		Unit:   policy.UnitKey,
		Stable: policy.ArmStats{Metrics: map[string]policy.Sample{}},
		Canary: policy.ArmStats{Metrics: map[string]policy.Sample{}},
	}
	sc := scope{rollout: q.Rollout, from: q.Window.From, to: q.Window.To, notRandomised: notRandomised}
	if sc.filter, err = filterSQL(sch, q.Filter); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	acc := newAccumulator(q)
	quantiles := false
	for _, m := range q.Metrics {
		quantiles = quantiles || (m.Query == "" && quantileMetrics[m.Name])
	}
	// The aggregates query runs even for a query of own SQL only: it finds From, the request counts
	// and the keys that are not randomised.
	wanted := wantedAggregates(q)
	plan, err := s.planRollup(ctx, sch, sc)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	aggSQL, start, binSQL := aggregatesSQL(sch, sc, wanted), startSQL(sch, sc), binsSQL(sch, sc)
	if plan != nil {
		s.rollupReads.Add(1)
		aggSQL, start, binSQL = rollupAggregatesSQL(sc, plan, wanted), "toInt64("+strconv.FormatInt(plan.startMS, 10)+")", rollupBinsSQL(sc, plan)
	}
	// The latency bins are read while the aggregates are: the tick takes the longer of the two.
	type binsAnswer struct {
		bins map[int][]float64
		err  error
	}
	binsDone := make(chan binsAnswer, 1)
	binsCtx, cancelBins := context.WithCancel(ctx)
	defer cancelBins()
	if quantiles {
		go func() {
			bins, err := s.latencyBins(binsCtx, binSQL)
			binsDone <- binsAnswer{bins, err}
		}()
	} else {
		binsDone <- binsAnswer{}
	}
	aggErr := s.aggregates(ctx, aggSQL, wanted, acc, stats)
	if aggErr != nil {
		cancelBins()
	}
	binned := <-binsDone
	if err := errors.Join(aggErr, binned.err); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	acc.addBins(binned.bins)
	if sch.lateFrom != nil && acc.lateIDs > 0 {
		if err := s.lateRecords(ctx, lateSQL(sch, sc, start), acc, stats); err != nil {
			return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
		}
	}
	if err := acc.fill(stats); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	from := q.Window.From
	if stats.From.After(from) {
		from = stats.From
	}
	if len(q.Segments) > 0 {
		if stats.SegmentValues, err = s.segmentValues(ctx, sch, sc, q.Segments); err != nil {
			return nil, fmt.Errorf("rollout %s: %w", q.Rollout, err)
		}
	}
	for _, m := range q.Metrics {
		if m.Query == "" || len(q.Filter) > 0 {
			// A rule's own SQL knows nothing of segments: within one, it has no data.
			continue
		}
		if err := s.ownQuery(ctx, q, m, from, stats); err != nil {
			return nil, fmt.Errorf("rollout %s metric %s: %w", q.Rollout, m.Name, err)
		}
	}
	return stats, nil
}

// query sends sql and calls row for every line of the TabSeparated answer, split into fields.
func (s *Source) query(ctx context.Context, sql string, row func(fields []string) error) error {
	return s.queryLines(ctx, sql, func(line []byte) error { return row(strings.Split(string(line), "\t")) })
}

// queryLines sends sql and calls line for every line of the TabSeparated answer, which is valid only
// until line returns: for answers of many rows, parsed without splitting each into strings.
func (s *Source) queryLines(ctx context.Context, sql string, line func([]byte) error) error {
	s.queries.Add(1)
	// readonly=2: the server refuses any query that writes (a rule's own SQL comes from a spec, which a
	// pull request may change) and any change of readonly itself; 2 rather than 1 so that
	// max_execution_time below may still be set.
	params := url.Values{"readonly": {"2"}}
	if s.database != "" {
		params.Set("database", s.database)
	}
	if dl, ok := ctx.Deadline(); ok {
		// The server stops on its own too, instead of computing an answer no one waits for.
		if secs := int(time.Until(dl).Seconds()); secs >= 1 {
			params.Set("max_execution_time", strconv.Itoa(secs))
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"?"+params.Encode(), strings.NewReader(sql))
	if err != nil {
		return fmt.Errorf("%w: clickhouse %s: %v", policy.ErrSourceUnavailable, s.display, err)
	}
	req.SetBasicAuth(s.user, s.password)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: clickhouse %s: %w", policy.ErrSourceUnavailable, s.display, s.scrub(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(s.scrubText(string(body)))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode >= 500 && !looksLikeSQLError(msg) || strings.Contains(msg, "Code: 516") ||
			strings.Contains(msg, "Code: 192") || strings.Contains(msg, "Code: 193") || strings.Contains(msg, "Code: 159") {
			return fmt.Errorf("%w: clickhouse %s: %s: %s", policy.ErrSourceUnavailable, s.display, resp.Status, msg)
		}
		return fmt.Errorf("%w: %s: query %s", ErrBadQuery, msg, shortSQL(sql))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		text := sc.Bytes()
		// ClickHouse reports an error found while streaming in the body itself, after a 200.
		if bytes.HasPrefix(text, []byte("Code: ")) && bytes.Contains(text, []byte("Exception")) {
			return fmt.Errorf("%w: %s: query %s", ErrBadQuery, s.scrubText(string(text)), shortSQL(sql))
		}
		if err := line(text); err != nil {
			return fmt.Errorf("%w: %v: query %s", ErrBadQuery, err, shortSQL(sql))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: clickhouse %s: reading the answer: %w", policy.ErrSourceUnavailable, s.display, s.scrub(err))
	}
	return nil
}

// looksLikeSQLError tells a rejection of the SQL (syntax, unknown column, type) from a server fault.
func looksLikeSQLError(msg string) bool {
	return strings.Contains(msg, "DB::Exception") && !strings.Contains(msg, "Memory limit") &&
		!strings.Contains(msg, "Timeout exceeded") && !strings.Contains(msg, "TOO_MANY")
}

// scrub keeps the password out of an error (net/http's errors can quote the URL, never the header, but
// a proxy's answer could echo it).
func (s *Source) scrub(err error) error {
	if s.password == "" || !strings.Contains(err.Error(), s.password) {
		return err
	}
	return errors.New(s.scrubText(err.Error()))
}

func (s *Source) scrubText(text string) string {
	if s.password == "" {
		return text
	}
	return strings.ReplaceAll(text, s.password, "****")
}

// shortSQL is a query on one line, for messages.
func shortSQL(sql string) string {
	short := strings.Join(strings.Fields(sql), " ")
	if len(short) > 400 {
		short = short[:400] + "…"
	}
	return short
}

// ErrBadSegment is returned for a segment attribute that cannot name a column.
var ErrBadSegment = errors.New("segment attribute is not a column name")

// segmentValues returns the values of each attribute among the rollout's requests in sc's window, the
// most frequent first (policy.TopSegmentValues).
func (s *Source) segmentValues(ctx context.Context, sch schema, sc scope, names []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, name := range names {
		if !policy.ValidAttrName(name) {
			return nil, fmt.Errorf("%w: %q", ErrBadSegment, name)
		}
		v := "toString(" + sch.attr(name) + ")"
		sql := "SELECT " + v + ", count() " + sch.from(sc, false) + " AND " + v + " != ''\nGROUP BY " + v + "\n" + sch.settings + "\nFORMAT TabSeparated"
		counts := map[string]int64{}
		err := s.query(ctx, sql, func(f []string) error {
			if len(f) != 2 {
				return fmt.Errorf("%d columns, want 2", len(f))
			}
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return err
			}
			counts[unescapeTSV(f[0])] = n
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", name, err)
		}
		out[name] = policy.TopSegmentValues(counts)
	}
	return out, nil
}

// unescapeTSV decodes a TabSeparated field's escapes.
func unescapeTSV(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
