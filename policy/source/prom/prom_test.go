package prom_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

var (
	from = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	to   = from.Add(time.Hour)
)

func allBuiltins() []policy.MetricQuery {
	var ms []policy.MetricQuery
	for _, n := range synth.BuiltinMetrics {
		ms = append(ms, policy.MetricQuery{Name: n})
	}
	return ms
}

// backfilled starts Prometheus holding what it would have scraped, every minute, from the exporter fed
// with traffic.
func backfilled(t *testing.T, traffic []synth.Request) string {
	t.Helper()
	exp := synth.NewExporter("summarizer")
	om, err := synth.OpenMetrics(exp.Registry, exp.Observe, traffic, from, to, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return testserver.PrometheusBackfilled(t, om)
}

func TestStatsMatchTheTraffic(t *testing.T) {
	canary := synth.Stable
	canary.Model, canary.LatencyMedian, canary.ErrorRate = "model-canary", 520, 0.05
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 3000, Canary: 600,
		StableProfile: synth.Stable, CanaryProfile: canary}, 1)
	url := backfilled(t, traffic)
	src, err := prom.New("prometheus:" + url)
	if err != nil {
		t.Fatal(err)
	}
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins()}
	got, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if n := src.Queries(); n != 1 {
		t.Errorf("one Stats call sent %d queries, want 1", n)
	}
	want := synth.Expected(traffic, q.Rollout, q.Window)
	for _, d := range synth.Diff(want, got, synth.Tolerance{Variance: 0.1, Quantile: 0.1}) {
		t.Error(d)
	}

	// A query that names no metric gets every built-in.
	all, err := src.Stats(context.Background(), policy.Query{Rollout: q.Rollout, Window: q.Window})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range synth.Diff(want, all, synth.Tolerance{Variance: 0.1, Quantile: 0.1}) {
		t.Errorf("no metrics named: %s", d)
	}

	// Another rollout, and a window before any traffic, have no data: absent, not zero.
	for _, q := range []policy.Query{
		{Rollout: "other", Window: q.Window, Metrics: q.Metrics},
		{Rollout: "summarizer", Window: policy.Window{From: from.Add(-2 * time.Hour), To: from.Add(-time.Hour)}, Metrics: q.Metrics},
	} {
		got, err := src.Stats(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Stable.Requests != 0 || len(got.Stable.Metrics) != 0 || len(got.Canary.Metrics) != 0 {
			t.Errorf("%s %v: got %+v, want no data", q.Rollout, q.Window.From, got)
		}
	}
}

func TestRuleQuery(t *testing.T) {
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: to, Stable: 500, Canary: 500,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 2)
	src, err := prom.New(backfilled(t, traffic))
	if err != nil {
		t.Fatal(err)
	}
	window := policy.Window{From: from, To: to}
	tests := []struct {
		name, query string
		want        map[policy.Arm]float64 // absent arm: no data
		wantErr     error
	}{
		{
			name:  "requests per arm",
			query: `sum(increase(llm_requests_total{rollout="{{rollout}}",variant="{{variant}}"}[{{window}}]))`,
			want:  map[policy.Arm]float64{policy.Stable: 500, policy.Canary: 500},
		},
		{name: "scalar", query: `scalar(vector(42))`, want: map[policy.Arm]float64{policy.Stable: 42, policy.Canary: 42}},
		{name: "no series is no data", query: `llm_requests_total{rollout="nope"}`, want: map[policy.Arm]float64{}},
		{name: "many series", query: `llm_requests_total{rollout="{{rollout}}"}`, wantErr: prom.ErrBadQuery},
		{name: "syntax error", query: `sum(`, wantErr: prom.ErrBadQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.Stats(context.Background(), policy.Query{Rollout: "summarizer", Window: window,
				Metrics: []policy.MetricQuery{{Name: "custom", Query: tt.query}}})
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
				s, ok := got.Arm(arm).Metrics["custom"]
				w, wantOK := tt.want[arm]
				if ok != wantOK || (ok && (s.Kind != policy.Value || s.Sum != w)) {
					t.Errorf("%s: got %+v (present %v), want %g (present %v)", arm, s, ok, w, wantOK)
				}
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	src, err := prom.New("http://admin:hunter2@127.0.0.1:1", prom.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: from, To: to},
		Metrics: allBuiltins()})
	if !errors.Is(err, policy.ErrSourceUnavailable) {
		t.Fatalf("error = %v, want ErrSourceUnavailable", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	// Unreachable: the URL is what to check; the query is left out (issue 15).
	if !strings.Contains(err.Error(), "127.0.0.1:1 did not answer") || strings.Contains(err.Error(), "llm_requests_total") {
		t.Errorf("error does not name the server alone: %v", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, raw := range []string{"", "localhost:9090", "ftp://host", "prometheus:", "http://u:p@[::1", "prometheus:http://u:p@[::1"} {
		_, err := prom.New(raw)
		if !errors.Is(err, prom.ErrBadURL) {
			t.Errorf("New(%q) error = %v, want ErrBadURL", raw, err)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("New(%q) error leaks credentials: %v", raw, err)
		}
	}
}

func TestTimeoutIsBounded(t *testing.T) {
	stop := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(stop)
	src, err := prom.New(hung.URL, prom.WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: from, To: to}})
	if !errors.Is(err, policy.ErrSourceUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want ErrSourceUnavailable after the deadline", err)
	}
}

// TestWindowStartsAtTheFirstCanaryRequest: the canary's deploy lagged the stage by 20 minutes. Both
// arms are compared from its first request (found within a minute), the stable's 20 minutes before it
// left out, and Stats.From says where that was, for minDuration. With the canary there from the start,
// the window is the stage's, in one query.
func TestWindowStartsAtTheFirstCanaryRequest(t *testing.T) {
	lag := from.Add(20 * time.Minute)
	canary := synth.Stable
	canary.Model = "model-canary"
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: lag, Stable: 1000, StableProfile: synth.Stable}, 1)
	traffic = append(traffic, synth.Generate(synth.Traffic{Rollout: "summarizer", From: lag, To: to, Stable: 2000, Canary: 400,
		StableProfile: synth.Stable, CanaryProfile: canary}, 2)...)
	src, err := prom.New("prometheus:" + backfilled(t, traffic))
	if err != nil {
		t.Fatal(err)
	}
	q := policy.Query{Rollout: "summarizer", Window: policy.Window{From: from, To: to}, Metrics: []policy.MetricQuery{{Name: "error_rate"}}}
	got, err := src.Stats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got.From.Before(lag.Add(-time.Minute)) || got.From.After(lag) {
		t.Errorf("From = %v, want within the minute before the canary's first request at %v", got.From, lag)
	}
	want := synth.Expected(traffic, q.Rollout, policy.Window{From: got.From, To: to})
	if d := got.Stable.Requests - want.Stable.Requests; d < -40 || d > 40 {
		t.Errorf("stable requests %d, want about %d (from the canary's first request; %d over the whole stage)",
			got.Stable.Requests, want.Stable.Requests, synth.Expected(traffic, q.Rollout, q.Window).Stable.Requests)
	}
	t.Logf("From %v (first canary request at %v); stable %d requests (want %d), canary %d", got.From, lag, got.Stable.Requests, want.Stable.Requests, got.Canary.Requests)
	if got.Canary.Requests != 400 {
		t.Errorf("canary requests %d, want 400", got.Canary.Requests)
	}
	if n := src.Queries(); n != 2 {
		t.Errorf("%d queries, want 2: the first finds the lag, the second reads from there", n)
	}
	// A rule's own query gets the same window.
	q.Metrics = []policy.MetricQuery{{Name: "custom", Query: `sum(increase(llm_requests_total{rollout="{{rollout}}",variant="{{variant}}"}[{{window}}]))`}}
	if got, err = src.Stats(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if s := got.Stable.Metrics["custom"]; s.Sum < float64(want.Stable.Requests)-40 || s.Sum > float64(want.Stable.Requests)+40 {
		t.Errorf("a rule's own query counted %g stable requests, want about %d (from the canary's first request)", s.Sum, want.Stable.Requests)
	}
}

// A password may name an environment variable (user:env:NAME@host, or password=env:NAME), so that it
// never sits in the spec: the server gets the variable's value as basic auth, and no error shows it.
func TestPasswordFromTheEnvironment(t *testing.T) {
	var gotUser, gotPass, gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		_ = r.ParseForm()
		gotQuery = r.Form.Encode()
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	getenv := func(name string) string {
		if name == "ROLLOUT_PROM_PASSWORD" {
			return "s3cret-from-env"
		}
		return ""
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, raw := range []string{"prometheus:http://reader:env:ROLLOUT_PROM_PASSWORD@" + host, "http://reader@" + host + "?password=env:ROLLOUT_PROM_PASSWORD"} {
		gotUser, gotPass = "", ""
		src, err := prom.New(raw, prom.WithGetenv(getenv), prom.WithTimeout(2*time.Second))
		if err != nil {
			t.Fatalf("New(%q): %v", raw, err)
		}
		_, err = src.Stats(context.Background(), policy.Query{Rollout: "r", Window: policy.Window{From: from, To: to}, Metrics: allBuiltins()})
		if err == nil {
			t.Fatalf("Stats(%q) succeeded against a server that answers 503", raw)
		}
		if gotUser != "reader" || gotPass != "s3cret-from-env" {
			t.Errorf("%q: basic auth %q:%q, want reader and the variable's value", raw, gotUser, gotPass)
		}
		if strings.Contains(gotQuery, "password") {
			t.Errorf("%q: the password parameter reached the server: %q", raw, gotQuery)
		}
		if strings.Contains(err.Error(), "s3cret-from-env") || strings.Contains(src.String(), "s3cret") {
			t.Errorf("%q: the password leaks: %v / %s", raw, err, src)
		}
	}
	_, err := prom.New("http://reader:env:ROLLOUT_UNSET@"+host, prom.WithGetenv(getenv))
	if !errors.Is(err, prom.ErrBadURL) || !strings.Contains(err.Error(), "ROLLOUT_UNSET") {
		t.Errorf("an unset variable: error %v, want ErrBadURL naming it", err)
	}
	if _, err := prom.New("http://reader:env:ROLLOUT_PROM_PASSWORD@" + host); !errors.Is(err, prom.ErrBadURL) {
		t.Errorf("without WithGetenv: error %v, want ErrBadURL", err)
	}
}
