package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// scrape GETs /metrics and parses it with Prometheus' own text parser, as a Prometheus server would.
func scrape(t *testing.T, d *Daemon) map[string]*dto.MetricFamily {
	t.Helper()
	addr, err := d.Addr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// series lists a gauge family's samples as "rollout=NAME,label=value,… value", sorted.
func series(t *testing.T, families map[string]*dto.MetricFamily, name string) []string {
	t.Helper()
	f, ok := families[name]
	if !ok {
		return nil
	}
	if f.GetType() != dto.MetricType_GAUGE {
		t.Errorf("%s is a %s, want a gauge", name, f.GetType())
	}
	if f.GetHelp() == "" {
		t.Errorf("%s has no help", name)
	}
	var out []string
	for _, m := range f.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			if l.GetName() == "rollout" { // the rollout first, then the others
				labels = append([]string{l.GetName() + "=" + l.GetValue()}, labels...)
			} else {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
		}
		out = append(out, strings.Join(labels, ",")+" "+model.SampleValue(m.GetGauge().GetValue()).String())
	}
	sort.Strings(out)
	return out
}

// TestPerRolloutGauges runs the daemon over three rollouts (one progressing at stage 1 with an open
// proposal, one paused, one not started) and scrapes /metrics after a pass: weight, stage, phase,
// seconds in stage, the last decision and its time, and the open proposal, each labelled with the
// rollout, read back through Prometheus' text parser. The seconds in stage follow the clock; a rollout
// whose spec is gone leaves /metrics.
func TestPerRolloutGauges(t *testing.T) {
	t0 := time.Date(2026, 4, 16, 10, 7, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	stageStart := time.Date(2026, 4, 16, 9, 0, 0, 0, time.UTC)
	spec := func(name string, weight int, st *rollouts.Status) *rollouts.Document {
		return &rollouts.Document{Path: name + ".yaml", Spec: &rollouts.Spec{Name: name, Schedule: "*/15 * * * *",
			Traffic: rollouts.Traffic{Weight: weight}, Status: st}}
	}
	set := &rollouts.Set{Documents: []*rollouts.Document{
		spec("summarizer", 25, &rollouts.Status{Phase: rollouts.Progressing, Stage: 1, StageStartedAt: stageStart}),
		spec("tagger", 5, &rollouts.Status{Phase: rollouts.Paused, Stage: 0, StageStartedAt: stageStart.Add(-time.Hour)}),
		spec("router", 0, nil),
	}}
	rec := &fakeReconciler{clock: clock, set: set, calls: make(chan string, 32), results: map[string]reconcile.Result{
		"summarizer": {Rollout: "summarizer", Decision: policy.Advance, Proposal: "https://github.com/acme/llm-config/pull/7"},
		"router":     {Rollout: "router", Decision: policy.Hold, Err: errors.New("metrics source: 503")},
	}}
	d := &Daemon{Reconciler: rec, Listen: "127.0.0.1:0", Now: clock.Now, After: clock.After, Poll: time.Hour}
	passed := make(chan []string, 8)
	d.AfterPass = func(names []string) { passed <- names }
	start(t, d)

	// Before any pass: the specs' gauges, no decision yet.
	w := recv(t, clock.waiters) // the specs have been read by the time the daemon sleeps
	m := scrape(t, d)
	if got := series(t, m, "rollout_last_decision_timestamp_seconds"); got != nil {
		t.Errorf("decisions before any pass: %v", got)
	}
	if got := series(t, m, "rollout_stage_seconds"); strings.Join(got, " | ") != "rollout=summarizer 4020 | rollout=tagger 7620" {
		t.Errorf("rollout_stage_seconds at 10:07 = %v", got)
	}
	// 10:15: the pass.
	clock.mu.Lock()
	clock.now = w.at
	clock.mu.Unlock()
	w.ch <- w.at
	recv(t, rec.calls)
	recv(t, passed)

	m = scrape(t, d)
	at1015 := model.SampleValue(time.Date(2026, 4, 16, 10, 15, 0, 0, time.UTC).Unix()).String()
	want := map[string][]string{
		"rollout_weight": {"rollout=router 0", "rollout=summarizer 25", "rollout=tagger 5"},
		"rollout_stage":  {"rollout=router 0", "rollout=summarizer 1", "rollout=tagger 0"},
		"rollout_phase": {
			"rollout=router,phase=Completed 0", "rollout=router,phase=Paused 0", "rollout=router,phase=Pending 1", "rollout=router,phase=Progressing 0", "rollout=router,phase=RolledBack 0",
			"rollout=summarizer,phase=Completed 0", "rollout=summarizer,phase=Paused 0", "rollout=summarizer,phase=Pending 0", "rollout=summarizer,phase=Progressing 1", "rollout=summarizer,phase=RolledBack 0",
			"rollout=tagger,phase=Completed 0", "rollout=tagger,phase=Paused 1", "rollout=tagger,phase=Pending 0", "rollout=tagger,phase=Progressing 0", "rollout=tagger,phase=RolledBack 0",
		},
		// 10:15 is 75 minutes into summarizer's stage, 135 into tagger's; router has no stage running.
		"rollout_stage_seconds": {"rollout=summarizer 4500", "rollout=tagger 8100"},
		"rollout_last_decision_timestamp_seconds": {
			"rollout=router,decision=error " + at1015, "rollout=summarizer,decision=advance " + at1015, "rollout=tagger,decision=hold " + at1015,
		},
		"rollout_open_proposal": {"rollout=router 0", "rollout=summarizer 1", "rollout=tagger 0"},
	}
	for name, w := range want {
		got := series(t, m, name)
		sort.Strings(w)
		if strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s =\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}

	// Every series the example alerts (deploy/prometheus/rollout-alerts.yaml) query is one served here.
	rules, err := os.ReadFile("../../deploy/prometheus/rollout-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\brollout_[a-z_]+\b`).FindAllString(string(rules), -1)
	if len(names) == 0 {
		t.Fatal("the example alerts query no rollout_ series")
	}
	for _, n := range names {
		if _, ok := m[n]; !ok {
			t.Errorf("deploy/prometheus/rollout-alerts.yaml queries %s, which /metrics does not serve", n)
		}
	}

	// tagger's spec is deleted: at the next reading it leaves /metrics; the others stay.
	rec.mu.Lock()
	rec.set = &rollouts.Set{Documents: []*rollouts.Document{set.Documents[0], set.Documents[2]}}
	rec.mu.Unlock()
	clock.next(t)
	recv(t, rec.calls)
	recv(t, passed)
	m = scrape(t, d)
	if got := series(t, m, "rollout_weight"); strings.Join(got, " | ") != "rollout=router 0 | rollout=summarizer 25" {
		t.Errorf("after tagger's spec was deleted: rollout_weight = %v", got)
	}
	if got := series(t, m, "rollout_stage_seconds"); strings.Join(got, " | ") != "rollout=summarizer 5400" {
		t.Errorf("rollout_stage_seconds at 10:30 = %v", got)
	}
}
