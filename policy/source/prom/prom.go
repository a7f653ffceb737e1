// Package prom reads a rollout's per-arm statistics from Prometheus, over the metric names that the
// application's recorder exports (CONTRACT.md, "Prometheus names"), through client_golang's HTTP API
// client.
//
// Every built-in metric has a default query, and one Stats call sends all of them as a single PromQL
// query: the increase over the stage window of the request and feedback counters and of the histograms'
// buckets and sums, summed by variant, evaluated at the window's end (`[W] @ end`). From those:
//
//   - proportions (error_rate, refusal_rate, negative_feedback_rate) are counts over counts;
//   - means (latency_mean_ms, cost_per_request, *_tokens_per_request, quality_score) take N and Sum
//     from the histogram's +Inf bucket and _sum. A histogram keeps no sum of squares, so SumSquares is
//     approximated: the variance is computed from the buckets (observations spread evenly within a
//     bucket) and combined with the exact mean. That errs on the wide side, by a few percent with the
//     recorder's buckets, so a verdict from Prometheus is never more confident than the exact data
//     would allow;
//   - quantiles (latency_p50_ms, latency_p95_ms, latency_p99_ms) get a Distribution over the cumulative
//     buckets, interpolated like histogram_quantile.
//
// A rule's own `query` is PromQL in which {{rollout}}, {{variant}} (stable or canary) and {{window}} (a
// duration such as 3600s) are filled in; it is evaluated once per arm at the window's end. To be judged,
// it returns counts: series labelled stat="n" (or "total") and stat="sum" (or "events") make a
// proportion, and with stat="sumsq" a mean (label_replace(…, "stat", "n", "", "") or …). A scalar or
// an instant vector of one unlabelled sample is a policy.Value: shown, never a cause to act. No sample
// means no data.
//
// metrics.schema otel-genai and litellm read the names those instrumentations export instead; see
// schemas.go. Every source here counts requests, not users: Stats.Unit is policy.UnitRequest.
//
// Prometheus has no label for mirrored requests, so Stats.Shadow stays 0, and increase() over scraped
// counters is an estimate: counts are rounded to whole requests.
//
// It belongs to the policy room and adapts Prometheus to policy.Source.
package prom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/histogram"
	"github.com/rollout-dev/rollout/policy/source/urlpass"
)

// Scheme is the prefix of a Prometheus source in a spec: prometheus:http://host:9090.
const Scheme = "prometheus:"

// DefaultTimeout bounds one Stats call when the caller's context has no earlier deadline.
const DefaultTimeout = 10 * time.Second

// Errors of the source, for errors.Is. Unreachable servers and timeouts wrap policy.ErrSourceUnavailable.
var (
	// ErrBadURL marks a source URL that is not http(s)://host[:port][/path].
	ErrBadURL = errors.New("bad Prometheus URL")
	// ErrBadQuery marks a query Prometheus rejected, or whose result has the wrong shape.
	ErrBadQuery = errors.New("bad Prometheus query")
)

// Source is a policy.Source over a Prometheus server. It is safe for concurrent use.
type Source struct {
	api      promv1.API
	endpoint string // the base URL without credentials, for messages
	password string // scrubbed from error texts
	timeout  time.Duration
	queries  atomic.Int64
}

var _ policy.Source = (*Source)(nil)

// Option configures a Source.
type Option func(*options)

type options struct {
	timeout   time.Duration
	transport http.RoundTripper
	getenv    func(string) string
}

// WithTimeout bounds one Stats call (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithGetenv resolves a password given as a reference to an environment variable
// (http://user:env:NAME@host): without it such a URL is refused.
func WithGetenv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }

// WithTransport sets the HTTP transport (default api.DefaultRoundTripper).
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// New returns the source for a Prometheus server at rawURL (http://host:9090), with or without the
// "prometheus:" prefix of a spec. Credentials in the URL (http://user:pass@host) are sent as basic
// auth and never appear in errors; a password may name an environment variable instead
// (http://user:env:NAME@host, or password=env:NAME), read with WithGetenv's function, which keeps it
// out of the spec and so out of git.
func New(rawURL string, opts ...Option) (*Source, error) {
	o := options{timeout: DefaultTimeout, transport: api.DefaultRoundTripper}
	for _, opt := range opts {
		opt(&o)
	}
	base := strings.TrimPrefix(rawURL, Scheme)
	u, err := url.Parse(base)
	if err != nil {
		// url.Parse quotes the whole URL, credentials and all.
		return nil, fmt.Errorf("%w: %s", ErrBadURL, strings.ReplaceAll(err.Error(), base, "<url>"))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %s: want http://host:port", ErrBadURL, u.Redacted())
	}
	if envPassword(u) {
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		password, err := urlpass.Take(u, o.getenv)
		if err != nil {
			return nil, fmt.Errorf("%w %s: password: %w", ErrBadURL, u.Redacted(), err)
		}
		u.User = url.UserPassword(user, password)
	}
	client, err := api.NewClient(api.Config{Address: u.String(), RoundTripper: o.transport})
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadURL, u.Redacted(), err)
	}
	s := &Source{api: promv1.NewAPI(client), endpoint: u.Redacted(), timeout: o.timeout}
	if u.User != nil {
		s.password, _ = u.User.Password()
	}
	return s, nil
}

// envPassword reports whether u's password (in its user info, or a password parameter) names an
// environment variable (env:NAME).
func envPassword(u *url.URL) bool {
	if u.User != nil {
		if p, ok := u.User.Password(); ok && strings.HasPrefix(p, "env:") {
			return true
		}
	}
	return strings.HasPrefix(u.Query().Get("password"), "env:")
}

// Queries returns the number of PromQL queries sent so far.
func (s *Source) Queries() int64 { return s.queries.Load() }

// String names the source without credentials.
func (s *Source) String() string { return Scheme + s.endpoint }

// Stats reads the statistics of q.Rollout over q.Window: one query for every built-in metric asked (all
// of them when q names none), and one per arm for each metric with its own query.
func (s *Source) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) {
	q.Metrics = q.Wanted()
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	w := newWindow(q.Window)
	stats := &policy.Stats{
		Unit:   policy.UnitRequest,
		Stable: policy.ArmStats{Metrics: map[string]policy.Sample{}},
		Canary: policy.ArmStats{Metrics: map[string]policy.Sample{}},
	}
	for _, name := range append(slices.Clone(q.Segments), filterNames(q.Filter)...) {
		if !policy.ValidAttrName(name) {
			return nil, fmt.Errorf("rollout %s: %w: %q", q.Rollout, ErrBadSegment, name)
		}
	}
	if len(q.Segments) > 0 {
		values, err := s.segmentValues(ctx, q, w)
		if err != nil {
			return nil, err
		}
		stats.SegmentValues = values
	}
	// Both narrow w to the canary's first request, for the rules' own queries too.
	if sc, ok := schemas[q.Schema]; ok {
		if err := s.schemaStats(ctx, sc, q, &w, stats); err != nil {
			return nil, err
		}
	} else if err := s.defaultStats(ctx, q, &w, stats); err != nil {
		return nil, err
	}
	for _, m := range q.Metrics {
		if m.Query == "" || len(q.Filter) > 0 {
			// A rule's own query knows nothing of segments: within one, it has no data.
			continue
		}
		for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
			smp, ok, err := s.ownSample(ctx, fillIn(m.Query, q.Rollout, arm, w), w.end, stats.Arm(arm).Requests)
			if err != nil {
				return nil, fmt.Errorf("rollout %s metric %s: %w", q.Rollout, m.Name, err)
			}
			if ok {
				stats.Arm(arm).Metrics[m.Name] = smp
			}
		}
	}
	return stats, nil
}

// defaultStats reads the built-in metrics of the rollout schema: the contract's names. It narrows *w
// to start at the canary's first request, when that came after its start.
func (s *Source) defaultStats(ctx context.Context, q policy.Query, wp *window, stats *policy.Stats) error {
	families := map[family]bool{requests: true}
	for _, m := range q.Metrics {
		if m.Query == "" {
			if b, ok := builtins[m.Name]; ok {
				families[b.family] = true
			}
		}
	}
	matchers := filterMatchers(q.Filter)
	vec, err := s.fromFirstCanary(ctx, wp, stats,
		func(w window) string { return defaultQuery(q.Rollout, w, families, matchers) },
		func(w window) string { return firstCanaryQuery(q.Rollout, w, matchers) }, nil)
	if err != nil {
		return fmt.Errorf("rollout %s: %w", q.Rollout, err)
	}
	read := readVector(vec)
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		as := stats.Arm(arm)
		as.Requests = read.requests(arm)
		for _, m := range q.Metrics {
			if m.Query != "" {
				continue
			}
			b, ok := builtins[m.Name]
			if !ok {
				continue // not a metric this source knows: no data
			}
			if sample, ok := b.sample(read, arm); ok {
				as.Metrics[m.Name] = sample
			}
		}
	}
	return nil
}

// schemaStats reads the built-in metrics of another schema (otel-genai, litellm) in one query; the
// metrics the schema does not hold are left out: no data. It narrows *w as defaultStats does.
func (s *Source) schemaStats(ctx context.Context, sc schema, q policy.Query, wp *window, stats *policy.Stats) error {
	vec, err := s.fromFirstCanary(ctx, wp, stats,
		func(w window) string { return sc.query(q, w) },
		func(w window) string { return sc.firstCanaryQuery(q, w) },
		func(m model.Metric) bool { arm, ok := sc.arm(q, m); return ok && arm == policy.Canary })
	if err != nil {
		return fmt.Errorf("rollout %s (schema %s): %w", q.Rollout, q.Schema, err)
	}
	read := sc.read(q, vec)
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		as := stats.Arm(arm)
		as.Requests = sc.requests(read, arm)
		for _, m := range q.Metrics {
			if m.Query != "" {
				continue
			}
			if get, ok := sc.metrics[m.Name]; ok {
				if sample, ok := get(read, arm); ok {
					as.Metrics[m.Name] = sample
				}
			}
		}
	}
	return nil
}

// window is a stage window as PromQL sees it: a range in whole seconds ending at end.
type window struct {
	from, end time.Time
	rng       string // "3600s"
	atTime    string // "1776333600.000"
}

func newWindow(w policy.Window) window {
	secs := int64(math.Ceil(w.To.Sub(w.From).Seconds()))
	if secs < 1 {
		secs = 1
	}
	return window{
		from:   w.To.Add(-time.Duration(secs) * time.Second),
		end:    w.To,
		rng:    strconv.FormatInt(secs, 10) + "s",
		atTime: strconv.FormatFloat(float64(w.To.UnixMilli())/1000, 'f', 3, 64),
	}
}

// firstCanaryStep is the resolution at which the canary's first request of a window is found.
const firstCanaryStep = time.Minute

// firstCanaryPart tags the sample of firstCanaryQuery in the default query's answer.
const firstCanaryPart = "first_canary"

// fromFirstCanary runs query over *wp with the part first (a firstIncrease) joined to it, and takes
// from the answer where the canary's first request of the window came (takeFirstCanary, canary
// picking its series). When that is after the window's start (a deploy that lagged the stage), both
// arms are compared from there: it narrows *wp and runs query again, over the narrowed window.
// stats.From says where the window starts.
func (s *Source) fromFirstCanary(ctx context.Context, wp *window, stats *policy.Stats, query, first func(window) string,
	canary func(model.Metric) bool) (model.Vector, error) {
	w := *wp
	vec, err := s.vector(ctx, query(w)+" or "+first(w), w.end)
	if err != nil {
		return nil, err
	}
	vec, stats.From = takeFirstCanary(vec, w, canary)
	if !stats.From.After(w.from) {
		return vec, nil
	}
	*wp = newWindow(policy.Window{From: stats.From, To: w.end})
	return s.vector(ctx, query(*wp), wp.end)
}

// firstCanaryQuery is the rollout schema's firstIncrease: the canary's llm_requests_total.
func firstCanaryQuery(rollout string, w window, filter string) string {
	sel := `rollout=` + strconv.Quote(rollout) + `,variant="canary"` + filter
	return firstIncrease(func(rng string) string { return `sum(increase(llm_requests_total{` + sel + `}[` + rng + `]))` }, w)
}

// firstIncrease is a part of a query whose samples, one for each series of increase(rng) (a PromQL
// expression of the increase of request counters over the range rng), hold the first minute of w (a
// Unix time) at whose end the series had grown over the two minutes before: a counter has no first
// record, but its first increase within the window bounds one. The step before saw no increase over
// its own two minutes, so the first request came within the minute before that time.
func firstIncrease(increase func(rng string) string, w window) string {
	step := int64(firstCanaryStep / time.Second)
	return fmt.Sprintf(`label_replace(min_over_time((timestamp(%s > 0))[%s:%ds] @ %s), "%s", "%s", "", "")`,
		increase(strconv.FormatInt(2*step, 10)+"s"), w.rng, step, w.atTime, partLabel, firstCanaryPart)
}

// takeFirstCanary takes firstCanaryQuery's samples out of vec and returns where the canary's first
// request of window w came, at most a minute early and never before w's start; zero when the canary
// has none. canary picks the canary's samples (nil: all of them are).
func takeFirstCanary(vec model.Vector, w window, canary func(model.Metric) bool) (model.Vector, time.Time) {
	var first time.Time
	out := vec[:0]
	for _, smp := range vec {
		if string(smp.Metric[partLabel]) != firstCanaryPart {
			out = append(out, smp)
			continue
		}
		v := float64(smp.Value)
		if math.IsNaN(v) || math.IsInf(v, 0) || canary != nil && !canary(smp.Metric) {
			continue
		}
		if at := time.Unix(int64(v), 0).UTC().Add(-firstCanaryStep); first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if !first.IsZero() && first.Before(w.from) {
		first = w.from
	}
	return out, first
}

// fillIn replaces the placeholders of a rule's own query.
func fillIn(query, rollout string, arm policy.Arm, w window) string {
	return strings.NewReplacer("{{rollout}}", rollout, "{{variant}}", string(arm), "{{window}}", w.rng).Replace(query)
}

// vector runs an instant query that must return a vector.
func (s *Source) vector(ctx context.Context, query string, at time.Time) (model.Vector, error) {
	v, err := s.query(ctx, query, at)
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%w: query %s returned a %s, want a vector", ErrBadQuery, query, v.Type())
	}
	return vec, nil
}

// statLabel names what each series of a rule's own query holds, so that the query can return counts
// the judge can test: n (or total) and sum (or events) for a proportion; n (or count), sum and sumsq
// for a mean.
const statLabel = "stat"

// ownSample runs a rule's own query for one arm; ok is false when it returns no sample or NaN. Series
// labelled stat=n|sum|sumsq (or total, events, count) become a Proportion (without sumsq) or a Mean;
// a scalar or one unlabelled sample is a Value: advisory, whose N (which the judge needs positive)
// carries the arm's request count for the evidence table.
func (s *Source) ownSample(ctx context.Context, query string, at time.Time, armRequests int64) (policy.Sample, bool, error) {
	v, err := s.query(ctx, query, at)
	if err != nil {
		return policy.Sample{}, false, err
	}
	var f model.SampleValue
	switch v := v.(type) {
	case *model.Scalar:
		f = v.Value
	case model.Vector:
		if len(v) > 0 && v[0].Metric[statLabel] != "" {
			return countsSample(query, v)
		}
		switch len(v) {
		case 0:
			return policy.Sample{}, false, nil
		case 1:
			f = v[0].Value
		default:
			return policy.Sample{}, false, fmt.Errorf("%w: query %s returned %d series, want one (aggregate it, e.g. with sum) or series labelled %s=n|sum|sumsq", ErrBadQuery, query, len(v), statLabel)
		}
	default:
		return policy.Sample{}, false, fmt.Errorf("%w: query %s returned a %s, want a scalar or one sample", ErrBadQuery, query, v.Type())
	}
	if math.IsNaN(float64(f)) {
		return policy.Sample{}, false, nil
	}
	return policy.Sample{Kind: policy.Value, N: max(armRequests, 1), Sum: float64(f)}, true, nil
}

// countsSample reads the series of a query that returns testable counts.
func countsSample(query string, vec model.Vector) (policy.Sample, bool, error) {
	stat := map[string]float64{}
	for _, smp := range vec {
		name := string(smp.Metric[statLabel])
		switch name {
		case "total", "count":
			name = "n"
		case "events":
			name = "sum"
		case "n", "sum", "sumsq":
		default:
			return policy.Sample{}, false, fmt.Errorf("%w: query %s returned %s=%q, want n, sum or sumsq (or total, events, count)", ErrBadQuery, query, statLabel, name)
		}
		if _, dup := stat[name]; dup {
			return policy.Sample{}, false, fmt.Errorf("%w: query %s returned %s=%s twice (aggregate it, e.g. with sum)", ErrBadQuery, query, statLabel, name)
		}
		stat[name] = float64(smp.Value)
	}
	n, hasN := stat["n"]
	sum, hasSum := stat["sum"]
	if !hasN || !hasSum {
		return policy.Sample{}, false, fmt.Errorf("%w: query %s must return both %s=n and %s=sum", ErrBadQuery, query, statLabel, statLabel)
	}
	if math.IsNaN(n) || math.Round(n) <= 0 {
		return policy.Sample{}, false, nil // no observations: no data
	}
	count := int64(math.Round(n))
	sumsq, isMean := stat["sumsq"]
	if !isMean {
		events := math.Round(sum)
		if events < 0 || events > float64(count) {
			return policy.Sample{}, false, fmt.Errorf("%w: query %s returned %g events among %d, want 0..n", ErrBadQuery, query, events, count)
		}
		return policy.Sample{Kind: policy.Proportion, N: count, Sum: events}, true, nil
	}
	if math.IsNaN(sum) || math.IsNaN(sumsq) || sumsq < 0 {
		return policy.Sample{}, false, fmt.Errorf("%w: query %s returned sum %g, sumsq %g", ErrBadQuery, query, sum, sumsq)
	}
	return policy.Sample{Kind: policy.Mean, N: count, Sum: sum, SumSquares: sumsq}, true, nil
}

// query sends one instant query. Errors name the query; those of an unreachable or failing server wrap
// policy.ErrSourceUnavailable.
func (s *Source) query(ctx context.Context, query string, at time.Time) (model.Value, error) {
	s.queries.Add(1)
	v, _, _, err := s.api.Query(ctx, query, at)
	if err == nil {
		return v, nil
	}
	if s.password != "" {
		err = scrubbed{err: err, secret: s.password}
	}
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) && apiErr.Type == promv1.ErrBadData {
		return nil, fmt.Errorf("%w: query %s: %w", ErrBadQuery, query, err)
	}
	if apiErr == nil {
		// The server did not answer: its URL is what to check, not the query (which may run to a
		// thousand characters).
		return nil, fmt.Errorf("%w: prometheus %s did not answer: %w", policy.ErrSourceUnavailable, s.endpoint, unwrapURLError(err))
	}
	return nil, fmt.Errorf("%w: prometheus %s: query %s: %w", policy.ErrSourceUnavailable, s.endpoint, shortQuery(query), err)
}

// unwrapURLError drops the request line that net/http puts before a transport failure ("Post
// \"http://…/api/v1/query\": dial tcp …"), keeping the failure itself.
func unwrapURLError(err error) error {
	var u *url.Error
	if errors.As(err, &u) && u.Err != nil {
		return u.Err
	}
	return err
}

// shortQuery is a query fit for an error message: its first 120 characters.
func shortQuery(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 120 {
		return q[:117] + "..."
	}
	return q
}

// scrubbed hides a secret from an error's text and keeps the error for errors.Is and errors.As.
type scrubbed struct {
	err    error
	secret string
}

func (e scrubbed) Error() string { return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx") }
func (e scrubbed) Unwrap() error { return e.err }

// family is one exported metric family the default query reads.
type family string

const (
	requests family = "requests"
	feedback family = "feedback"
	duration family = "duration"
	cost     family = "cost"
	tokens   family = "tokens"
	quality  family = "quality"
)

// partLabel tags each part of the default query with its family, so that the parts, whose label sets
// would otherwise collide, survive the `or` that joins them into one query.
const partLabel = "rollout_part"

// familyExprs are the parts of the default query; %[1]s is the selector's matchers, %[2]s the range,
// %[3]s the evaluation time. Histogram parts return buckets (with le) and the sum (without).
var familyExprs = map[family][]string{
	requests: {`sum by (variant, outcome) (increase(llm_requests_total{%[1]s}[%[2]s] @ %[3]s))`},
	feedback: {`sum by (variant, value) (increase(llm_feedback_total{%[1]s}[%[2]s] @ %[3]s))`},
	duration: histogramExprs("llm_request_duration_seconds", ""),
	cost:     histogramExprs("llm_request_cost_usd", ""),
	tokens:   histogramExprs("llm_request_tokens", ", direction"),
	quality:  histogramExprs("llm_quality_score", ""),
}

func histogramExprs(name, by string) []string {
	return []string{
		`sum by (variant, le` + by + `) (increase(` + name + `_bucket{%[1]s}[%[2]s] @ %[3]s))`,
		`sum by (variant` + by + `) (increase(` + name + `_sum{%[1]s}[%[2]s] @ %[3]s))`,
	}
}

// defaultQuery joins the parts of the families asked for into one query.
func defaultQuery(rollout string, w window, families map[family]bool, filter string) string {
	names := make([]string, 0, len(families))
	for f := range families {
		names = append(names, string(f))
	}
	sort.Strings(names)
	matchers := `rollout=` + strconv.Quote(rollout) + filter
	var parts []string
	for _, f := range names {
		for _, expr := range familyExprs[family(f)] {
			parts = append(parts, fmt.Sprintf(`label_replace(`+expr+`, "%[4]s", "%[5]s", "", "")`, matchers, w.rng, w.atTime, partLabel, f))
		}
	}
	return strings.Join(parts, " or ")
}

// series is what the default query returned, indexed for the built-ins.
type series struct {
	counts  map[countKey]float64 // requests by outcome, feedback by value
	buckets map[histKey][]histogram.Bucket
	sums    map[histKey]float64
}

type countKey struct {
	family     family
	arm, label string
}

type histKey struct {
	family         family
	arm, direction string
}

func readVector(vec model.Vector) series {
	r := series{counts: map[countKey]float64{}, buckets: map[histKey][]histogram.Bucket{}, sums: map[histKey]float64{}}
	for _, smp := range vec {
		f := family(smp.Metric[partLabel])
		arm := string(smp.Metric["variant"])
		v := float64(smp.Value)
		if math.IsNaN(v) {
			continue
		}
		switch f {
		case requests:
			r.counts[countKey{f, arm, string(smp.Metric["outcome"])}] += v
		case feedback:
			r.counts[countKey{f, arm, string(smp.Metric["value"])}] += v
		default:
			k := histKey{f, arm, string(smp.Metric["direction"])}
			le, hasLe := smp.Metric["le"]
			if !hasLe {
				r.sums[k] += v
				continue
			}
			bound, err := strconv.ParseFloat(string(le), 64)
			if err != nil {
				continue
			}
			r.buckets[k] = append(r.buckets[k], histogram.Bucket{UpperBound: bound, Count: v})
		}
	}
	return r
}

func (r series) requests(arm policy.Arm) int64 {
	var n float64
	for k, v := range r.counts {
		if k.family == requests && k.arm == string(arm) {
			n += v
		}
	}
	return int64(math.Round(n))
}

// builtin says how one built-in metric is read from the default query.
type builtin struct {
	family family
	sample func(r series, arm policy.Arm) (policy.Sample, bool)
}

var builtins = map[string]builtin{
	"error_rate":                {requests, proportion(requests, "error")},
	"refusal_rate":              {requests, proportion(requests, "refusal")},
	"negative_feedback_rate":    {feedback, proportion(feedback, "negative")},
	"latency_mean_ms":           {duration, mean(duration, "", 1000)},
	"latency_p50_ms":            {duration, quantile(duration, 1000)},
	"latency_p95_ms":            {duration, quantile(duration, 1000)},
	"latency_p99_ms":            {duration, quantile(duration, 1000)},
	"cost_per_request":          {cost, mean(cost, "", 1)},
	"input_tokens_per_request":  {tokens, mean(tokens, "input", 1)},
	"output_tokens_per_request": {tokens, mean(tokens, "output", 1)},
	"quality_score":             {quality, mean(quality, "", 1)},
}

// proportion counts the events labelled event among all of the family's counts.
func proportion(f family, event string) func(series, policy.Arm) (policy.Sample, bool) {
	return func(r series, arm policy.Arm) (policy.Sample, bool) {
		var n, events float64
		for k, v := range r.counts {
			if k.family == f && k.arm == string(arm) {
				n += v
				if k.label == event {
					events += v
				}
			}
		}
		if math.Round(n) == 0 {
			return policy.Sample{}, false
		}
		return policy.Sample{Kind: policy.Proportion, N: int64(math.Round(n)), Sum: math.Round(events)}, true
	}
}

// hist returns the histogram of a family for one arm, with its count and sum, scaled.
func (r series) hist(f family, arm policy.Arm, direction string, scale float64) (*histogram.Histogram, float64, bool) {
	k := histKey{f, string(arm), direction}
	h, err := histogram.New(r.buckets[k], scale)
	if err != nil || math.Round(h.Count()) == 0 {
		return nil, 0, false
	}
	return h, r.sums[k] * scale, true
}

// mean reads a Mean sample from a histogram: N and Sum exact, SumSquares from the buckets' variance.
func mean(f family, direction string, scale float64) func(series, policy.Arm) (policy.Sample, bool) {
	return func(r series, arm policy.Arm) (policy.Sample, bool) {
		h, sum, ok := r.hist(f, arm, direction, scale)
		if !ok {
			return policy.Sample{}, false
		}
		return meanSample(h, sum), true
	}
}

// meanSample is a Mean sample of a histogram whose values add up to sum: N and Sum exact, SumSquares
// from the buckets' variance.
func meanSample(h *histogram.Histogram, sum float64) policy.Sample {
	n := math.Round(h.Count())
	_, variance := h.Moments()
	m := sum / n
	return policy.Sample{Kind: policy.Mean, N: int64(n), Sum: sum, SumSquares: n * (variance + m*m)}
}

// quantileSample is a Quantile sample of a histogram: the Distribution of its buckets.
func quantileSample(h *histogram.Histogram, sum float64) policy.Sample {
	return policy.Sample{Kind: policy.Quantile, N: int64(math.Round(h.Count())), Sum: sum, Dist: h}
}

// quantile reads a Quantile sample: the Distribution of the buckets.
func quantile(f family, scale float64) func(series, policy.Arm) (policy.Sample, bool) {
	return func(r series, arm policy.Arm) (policy.Sample, bool) {
		h, sum, ok := r.hist(f, arm, "", scale)
		if !ok {
			return policy.Sample{}, false
		}
		return quantileSample(h, sum), true
	}
}

// ErrBadSegment is returned for a segment attribute that cannot be a label name.
var ErrBadSegment = errors.New("segment attribute is not a label name")

// filterMatchers are the label matchers of a segment (`,language="de"`), appended to every selector
// of the query; empty without one.
func filterMatchers(filter []policy.Attr) string {
	var b strings.Builder
	for _, f := range filter {
		b.WriteString("," + f.Name + "=" + strconv.Quote(f.Value))
	}
	return b.String()
}

func filterNames(filter []policy.Attr) []string {
	out := make([]string, len(filter))
	for i, f := range filter {
		out[i] = f.Name
	}
	return out
}

// segmentValues returns the values of each of q.Segments' labels on the series that count the
// rollout's requests over the window, the most frequent first (policy.TopSegmentValues).
func (s *Source) segmentValues(ctx context.Context, q policy.Query, w window) (map[string][]string, error) {
	out := map[string][]string{}
	for _, name := range q.Segments {
		var parts []string
		for _, sel := range requestCounters(q) {
			parts = append(parts, fmt.Sprintf(`sum by (%s) (increase(%s,%s!=""}[%s] @ %s))`, name, strings.TrimSuffix(sel, "}"), name, w.rng, w.atTime))
		}
		vec, err := s.vector(ctx, strings.Join(parts, " or "), w.end)
		if err != nil {
			return nil, fmt.Errorf("rollout %s segment %s: %w", q.Rollout, name, err)
		}
		counts := map[string]int64{}
		for _, smp := range vec {
			counts[string(smp.Metric[model.LabelName(name)])] += int64(math.Round(float64(smp.Value)))
		}
		out[name] = policy.TopSegmentValues(counts)
	}
	return out, nil
}

// requestCounters are the selectors of the counters of q's requests in q's schema, each ending in }.
func requestCounters(q policy.Query) []string {
	f := filterMatchers(q.Filter)
	switch q.Schema {
	case "otel-genai":
		var out []string
		for _, sel := range otelScopes(q) {
			out = append(out, `gen_ai_client_operation_duration_seconds_count{`+sel+`}`)
		}
		return out
	case "litellm":
		return []string{`litellm_deployment_total_requests_total{litellm_model_name=~` + strconv.Quote(modelRegex(q)) + f + `}`}
	}
	return []string{`llm_requests_total{rollout=` + strconv.Quote(q.Rollout) + f + `}`}
}
