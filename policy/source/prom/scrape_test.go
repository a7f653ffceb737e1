package prom_test

import (
	"context"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

// TestScrapedExporter runs the whole path a team runs: the application exports the contract's metrics,
// a real Prometheus scrapes them every second, and the source reads them back. The window runs from a
// scrape that saw every counter at zero to the scrape that saw all the traffic, so increase() needs no
// extrapolation and the counts are exact.
func TestScrapedExporter(t *testing.T) {
	exp := synth.NewExporter("scraped")
	target := httptest.NewServer(promhttp.HandlerFor(exp.Registry, promhttp.HandlerOpts{}))
	defer target.Close()
	url := testserver.Prometheus(t, target.Listener.Addr().String())
	client, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	promAPI := promv1.NewAPI(client)

	// The first scrape: every series at zero.
	start := waitFor(t, promAPI, `max(timestamp(llm_requests_total{rollout="scraped"}))`,
		`sum(llm_requests_total{rollout="scraped"})`, 0)

	canary := synth.Stable
	canary.LatencyMedian, canary.ErrorRate = 700, 0.08
	genFrom := time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	genWindow := policy.Window{From: genFrom, To: genFrom.Add(time.Hour)}
	traffic := synth.Generate(synth.Traffic{Rollout: "scraped", From: genWindow.From, To: genWindow.To,
		Stable: 2000, Canary: 500, StableProfile: synth.Stable, CanaryProfile: canary}, 5)
	for _, r := range traffic {
		exp.Observe(r)
	}
	end := waitFor(t, promAPI, `max(timestamp(llm_requests_total{rollout="scraped"}))`,
		`sum(llm_requests_total{rollout="scraped"})`, float64(len(traffic)))

	src, err := prom.New(url)
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Stats(context.Background(), policy.Query{Rollout: "scraped",
		Window: policy.Window{From: start, To: end}, Metrics: allBuiltins()})
	if err != nil {
		t.Fatal(err)
	}
	want := synth.Expected(traffic, "scraped", genWindow)
	for _, d := range synth.Diff(want, got, synth.Tolerance{Variance: 0.1, Quantile: 0.1}) {
		t.Error(d)
	}

	// The judge rolls the regressed canary back, from Prometheus as from the exact statistics.
	spec := synth.Spec("scraped", start)
	exact := policy.Judge(spec, policy.Evidence{Stats: want}, end)
	fromProm := policy.Judge(spec, policy.Evidence{Stats: got}, end)
	if exact.Action != policy.Rollback || fromProm.Action != exact.Action {
		t.Errorf("decision from Prometheus %s, from the exact statistics %s; want both rollback", fromProm.Action, exact.Action)
	}
}

// waitFor polls Prometheus, the one place a test waits on a real server, until check equals want in the
// latest scrape; it returns that scrape's time, read by stamp.
func waitFor(t *testing.T, promAPI promv1.API, stamp, check string, want float64) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		now := time.Now()
		v, _, _, err := promAPI.Query(ctx, check, now)
		if err == nil {
			if vec, ok := v.(model.Vector); ok && len(vec) == 1 && float64(vec[0].Value) == want {
				ts, _, _, err := promAPI.Query(ctx, stamp, now)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				secs := float64(ts.(model.Vector)[0].Value)
				return time.UnixMilli(int64(math.Round(secs * 1000))).UTC()
			}
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never saw %s = %g (last: %v, %v)", check, want, v, err)
		}
		<-tick.C
	}
}
