package faults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestMetricsSourceDownHoldsAndAlerts: a traffic file that cannot be read holds the rollout on every tick,
// never advances it, fails every tick (the failure shows: exit 1), records in git once when the
// failures start, and posts one alert with that commit, even from stateless processes (a new loop per
// tick, as cron and the Action run). When the file appears, the healthy canary advances, and the end of
// the outage is recorded once.
func TestMetricsSourceDownHoldsAndAlerts(t *testing.T) {
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")}, false)
	// A directory where the file should be: the source fails (a file not created yet would be no data).
	down := filepath.Join(w.traffic, "traffic", "summarizer.jsonl")
	if err := os.MkdirAll(down, 0o755); err != nil {
		t.Fatal(err)
	}
	before := len(w.subjects("main"))
	for i := range 5 {
		w.setNow(t0.Add(time.Duration(2+i) * time.Hour))
		res := result(t, tick(t, w.localLoop()), "summarizer")
		if res.Decision != policy.Hold || res.Err == nil || !strings.Contains(res.Err.Error(), "summarizer.jsonl") || (i > 0) != (res.Commit == "") {
			t.Fatalf("tick %d with the source down: %+v", i+1, res)
		}
		if why := strings.Join(res.Reasons, "; "); !strings.Contains(why, "metrics source failed") || !strings.Contains(why, "failing since "+t0.Add(2*time.Hour).Format(time.RFC3339)) {
			t.Errorf("tick %d: reasons %q do not name the failing source and since when", i+1, why)
		}
	}
	if got := w.subjects("main"); len(got) != before+1 || got[0] != "rollout(summarizer): metrics source failing" {
		t.Errorf("want one commit for the outage, main = %q", got)
	}
	evs := w.hook.received()
	if len(evs) != 1 || evs[0].Decision != "alert" || evs[0].Rollout != "summarizer" ||
		!strings.Contains(strings.Join(evs[0].Reasons, " "), "metrics source failing since") {
		t.Fatalf("alerts = %+v, want one when the failures start", evs)
	}
	// The source comes back with a healthy canary: the rollout advances, and the next tick records
	// that the source answers again.
	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	w.writeTraffic("summarizer", 0.01)
	res := result(t, tick(t, w.localLoop()), "summarizer")
	if res.Decision != policy.Advance || res.Err != nil {
		t.Fatalf("after recovery: %+v", res)
	}
	res = result(t, tick(t, w.localLoop()), "summarizer")
	if got := w.subjects("main"); res.Err != nil || !strings.HasPrefix(got[0], "rollout(summarizer): metrics source recovered") {
		t.Errorf("recovery not recorded: %+v, main = %q", res, got)
	}
	if st := w.spec("summarizer").Status; !st.MetricsFailingSince.IsZero() {
		t.Errorf("status after recovery = %+v", st)
	}
}

// TestHangingMetricsSourceIsBounded: a traffic file that is a named pipe nobody writes used to block
// the reader in open(2), where no context reaches, and leave one stuck thread per tick. It is refused at
// once, each tick: the rollout holds, and the other rollouts of the pass go on; after three such ticks
// the alert goes out.
func TestHangingMetricsSourceIsBounded(t *testing.T) {
	w := newWorld(t, map[string]string{
		"rollouts/hangs.yaml":   progressing("hangs", "hold"),
		"rollouts/healthy.yaml": progressing("healthy", "hold"),
	}, false)
	w.writeTraffic("healthy", 0.01)
	fifo := filepath.Join(w.traffic, "traffic", "hangs.jsonl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	t.Cleanup(func() {
		// Should a reader be blocked after all, a writer that opens and closes the pipe releases it.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	l := w.localLoop()
	l.MetricsTimeout = time.Second
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rep, err := l.Tick(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		hung := result(t, rep, "hangs")
		if why := strings.Join(hung.Reasons, "; "); hung.Decision != policy.Hold || hung.Err == nil || (i > 0) != (hung.Commit == "") ||
			!strings.Contains(why, "hangs.jsonl: not a regular file (a named pipe)") {
			t.Fatalf("tick %d, hanging source: %+v", i+1, hung)
		}
		if ok := result(t, rep, "healthy"); i == 0 && (ok.Decision != policy.Advance || ok.Err != nil) {
			t.Fatalf("the healthy rollout beside a hanging one: %+v", ok)
		}
	}
	if evs := w.hook.received(); len(evs) != 1 || evs[0].Rollout != "hangs" || evs[0].Decision != "alert" {
		t.Fatalf("alerts = %+v, want one for hangs", evs)
	}
}

// TestPrometheusDownOrHangingHolds: the Prometheus source against a server that answers 503, then one
// that never answers. Each tick holds within the source's timeout and fails; git records the start of
// the failures once, and one alert goes out with it.
func TestPrometheusDownOrHangingHolds(t *testing.T) {
	var hang atomic.Bool
	release := make(chan struct{})
	promSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		http.Error(w, `{"status":"error","errorType":"unavailable","error":"starting up"}`, http.StatusServiceUnavailable)
	}))
	defer promSrv.Close()
	defer close(release)
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": strings.Replace(progressing("summarizer", "hold"),
		"file:traffic/summarizer.jsonl", "prometheus:"+promSrv.URL, 1)}, false)
	before := len(w.subjects("main"))
	l := w.localLoop()
	l.Sources = func(spec *rollouts.Spec) (policy.Source, error) {
		return prom.New(strings.TrimPrefix(spec.Metrics.Source, prom.Scheme), prom.WithTimeout(500*time.Millisecond))
	}
	for i := range 3 {
		hang.Store(i > 0)
		res := result(t, tick(t, l), "summarizer")
		if why := strings.Join(res.Reasons, "; "); res.Decision != policy.Hold || (i > 0) != (res.Commit == "") || res.Err == nil ||
			!strings.Contains(why, "metrics source failed") {
			t.Fatalf("tick %d with Prometheus failing: %+v", i+1, res)
		}
	}
	if got := w.subjects("main"); len(got) != before+1 {
		t.Errorf("want one commit for the outage, main = %q", got)
	}
	if evs := w.hook.received(); len(evs) != 1 || evs[0].Decision != "alert" {
		t.Errorf("alerts = %+v, want one", evs)
	}
}
