package daemon

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// phases are the values of the rollout_phase gauge's phase label: one series per phase, 1 for the
// rollout's current phase, so that a query can select a phase without knowing its number.
var phases = []rollouts.Phase{rollouts.Pending, rollouts.Progressing, rollouts.Paused, rollouts.RolledBack, rollouts.Completed}

// rolloutGauges is the daemon's view of each rollout, served on /metrics as gauges labelled with the
// rollout's name: what the last reading of its spec said (weight, stage, phase, when the stage began)
// and what the daemon's last pass over it found (its decision and when, an open proposal). A rollout
// whose spec turns invalid keeps its last valid values; one whose spec is gone is dropped.
type rolloutGauges struct {
	now func() time.Time

	mu     sync.Mutex
	states map[string]*rolloutState

	weight, stage, phase, stageSeconds, lastDecision, proposal *prometheus.Desc
}

// rolloutState is what the gauges know of one rollout.
type rolloutState struct {
	spec       bool // a valid spec has been read
	weight     int
	stage      int
	phase      rollouts.Phase
	stageStart time.Time
	decided    time.Time // zero until a pass has evaluated it
	decision   string
	proposal   bool
}

func newRolloutGauges(now func() time.Time) *rolloutGauges {
	l := []string{"rollout"}
	return &rolloutGauges{
		now:    now,
		states: map[string]*rolloutState{},
		weight: prometheus.NewDesc("rollout_weight",
			"The canary's share of traffic (traffic.weight) on the default branch at the last reading of the specs.", l, nil),
		stage: prometheus.NewDesc("rollout_stage",
			"The index of the rollout's current stage (status.stage), from 0.", l, nil),
		phase: prometheus.NewDesc("rollout_phase",
			"1 for the rollout's current phase (status.phase; Pending before the controller started it), 0 for the others.", []string{"rollout", "phase"}, nil),
		stageSeconds: prometheus.NewDesc("rollout_stage_seconds",
			"Seconds since the current stage's weight landed (status.stageStartedAt); absent while none is recorded.", l, nil),
		lastDecision: prometheus.NewDesc("rollout_last_decision_timestamp_seconds",
			"Unix time of the daemon's last evaluation of the rollout, labelled with its decision (error for a failed evaluation).", []string{"rollout", "decision"}, nil),
		proposal: prometheus.NewDesc("rollout_open_proposal",
			"1 while the rollout has an open proposal (a stage pull request) after the daemon's last evaluation, else 0.", l, nil),
	}
}

// specs records a fresh reading of the specs: every valid one, and the names still known (a rollout
// whose file fails to load keeps its last values); the others are forgotten.
func (g *rolloutGauges) specs(set *rollouts.Set, known func(name string) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, doc := range set.Documents {
		s := doc.Spec
		st := g.states[s.Name]
		if st == nil {
			st = &rolloutState{}
			g.states[s.Name] = st
		}
		st.spec, st.weight, st.stage, st.phase, st.stageStart = true, s.Traffic.Weight, 0, rollouts.Pending, time.Time{}
		if s.Status != nil {
			st.stage, st.phase, st.stageStart = s.Status.Stage, s.Status.Phase, s.Status.StageStartedAt
		}
	}
	for name := range g.states {
		if !known(name) {
			delete(g.states, name)
		}
	}
}

// passed records the outcome of a pass, at time at.
func (g *rolloutGauges) passed(rep *reconcile.Report, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range rep.Results {
		st := g.states[r.Rollout]
		if st == nil {
			continue // a spec that failed to load, not yet read by the schedule: nothing to show
		}
		st.decided, st.decision, st.proposal = at, string(r.Decision), r.Proposal != ""
		if r.Err != nil {
			st.decision = "error"
		}
	}
}

// Describe implements prometheus.Collector.
func (g *rolloutGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.weight, g.stage, g.phase, g.stageSeconds, g.lastDecision, g.proposal} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the gauges as of now.
func (g *rolloutGauges) Collect(ch chan<- prometheus.Metric) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, len(g.states))
	for name := range g.states {
		names = append(names, name)
	}
	sort.Strings(names)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, name := range names {
		st := g.states[name]
		if st.spec {
			gauge(g.weight, float64(st.weight), name)
			gauge(g.stage, float64(st.stage), name)
			for _, p := range phases {
				v := 0.0
				if p == st.phase {
					v = 1
				}
				gauge(g.phase, v, name, string(p))
			}
			if !st.stageStart.IsZero() && (st.phase == rollouts.Progressing || st.phase == rollouts.Paused) {
				gauge(g.stageSeconds, max(0, now.Sub(st.stageStart).Seconds()), name)
			}
		}
		if !st.decided.IsZero() {
			gauge(g.lastDecision, float64(st.decided.UnixNano())/1e9, name, st.decision)
			v := 0.0
			if st.proposal {
				v = 1
			}
			gauge(g.proposal, v, name)
		}
	}
}
