package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

var (
	t0      = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	variant = &rollouts.Variant{Model: "claude-sonnet-4-5-20260415", Prompt: "v3"}
)

func f64(v float64) *float64 { return &v }

// baseSpec is a rollout at stage 1 (5%) of shadow → 5% → 25% → 100%, started at t0, judged on the
// error rate (maxIncrease 50%) and the quality score (maxDecrease 5%).
func baseSpec() *rollouts.Spec {
	return &rollouts.Spec{
		Name:    "summarizer",
		Stable:  rollouts.Variant{Model: "claude-sonnet-4-5-20260301", Prompt: "v3"},
		Canary:  variant,
		Traffic: rollouts.Traffic{Weight: 5},
		Stages: []rollouts.Stage{
			{Shadow: 100, MinDuration: rollouts.Duration(24 * time.Hour), MinRequests: 1000},
			{Weight: 5, MinDuration: rollouts.Duration(4 * time.Hour), MinRequests: 200},
			{Weight: 25, MinDuration: rollouts.Duration(8 * time.Hour), MinRequests: 200, MaxDuration: rollouts.Duration(72 * time.Hour)},
			{Weight: 50, MinDuration: rollouts.Duration(8 * time.Hour), MinRequests: 200},
			{Weight: 100, MinDuration: rollouts.Duration(24 * time.Hour)},
		},
		Analysis: rollouts.Analysis{
			Confidence: 0.95,
			Rules: []rollouts.Rule{
				{Metric: "error_rate", MaxIncrease: ratio(0.5)},
				{Metric: "quality_score", MaxDecrease: ratio(0.05)},
			},
			OnInconclusive: "hold",
			OnMetricsError: "hold",
		},
		Status: &rollouts.Status{Phase: rollouts.Progressing, Stage: 1, StageStartedAt: t0, Canary: rollouts.Fingerprint(variant)},
	}
}

// armOf builds one arm: n requests with the given error count and quality scores of the given mean
// and standard deviation.
func armOf(n int64, errs float64, quality, sd float64) ArmStats {
	fn := float64(n)
	return ArmStats{Requests: n, Metrics: map[string]Sample{
		"error_rate":    {Kind: Proportion, N: n, Sum: errs},
		"quality_score": {Kind: Mean, N: n, Sum: quality * fn, SumSquares: fn * (sd*sd*(fn-1)/fn + quality*quality)},
	}}
}

// healthy is plenty of evidence that the canary is as good as stable.
func healthy() *Stats {
	return &Stats{Stable: armOf(190000, 1900, 0.87, 0.1), Canary: armOf(10000, 100, 0.87, 0.1)}
}

func TestJudge(t *testing.T) {
	later := t0.Add(5 * time.Hour)
	openGate := map[int]GateResult{2: {Stage: 2, Open: true, Reason: "webhook answered 200 OK"}}
	tests := []struct {
		name       string
		edit       func(s *rollouts.Spec)
		ev         Evidence
		now        time.Time
		want       Action
		wantNext   *Step
		wantReason string
	}{
		{name: "no canary holds", edit: func(s *rollouts.Spec) { s.Canary = nil }, want: Hold, wantReason: "no canary"},
		{name: "pending starts at stage 0", edit: func(s *rollouts.Spec) { s.Status = nil },
			want: Start, wantNext: &Step{Stage: 0, Shadow: 100}},
		{name: "pending with a gate not checked holds", edit: func(s *rollouts.Spec) {
			s.Status = nil
			s.Stages[0].Gate = &rollouts.Gate{Evals: "evals/s.json", MinPassRate: 0.9}
		}, want: Hold, wantReason: "gate of stage 0 not checked yet"},
		{name: "pending with a shut gate holds with its reason", edit: func(s *rollouts.Spec) {
			s.Status = nil
			s.Stages[0].Gate = &rollouts.Gate{Evals: "evals/s.json", MinPassRate: 0.9}
		}, ev: Evidence{Gates: map[int]GateResult{0: {Stage: 0, Reason: "canary passes 80 of 100 cases"}}},
			want: Hold, wantReason: "gate of stage 0 is shut: canary passes 80 of 100 cases"},
		{name: "pending with an open gate starts", edit: func(s *rollouts.Spec) {
			s.Status = nil
			s.Stages[0].Gate = &rollouts.Gate{Evals: "evals/s.json", MinPassRate: 0.9}
		}, ev: Evidence{Gates: map[int]GateResult{0: {Stage: 0, Open: true}}},
			want: Start, wantNext: &Step{Stage: 0, Shadow: 100}},
		{name: "changed canary starts over", edit: func(s *rollouts.Spec) { s.Status.Canary = "00000000"; s.Status.Phase = rollouts.RolledBack },
			want: Start, wantNext: &Step{Stage: 0, Shadow: 100}, wantReason: "canary changed"},
		{name: "status without canary fingerprint belongs to the canary", edit: func(s *rollouts.Spec) { s.Status.Canary = "" },
			ev: Evidence{Stats: healthy()}, want: Advance, wantNext: &Step{Stage: 2, Weight: 25}},
		{name: "merged advance starts its window", edit: func(s *rollouts.Spec) { s.Status.Stage = 2; s.Status.StageStartedAt = time.Time{} },
			want: Start, wantNext: &Step{Stage: 2, Weight: 25}},
		{name: "paused holds", edit: func(s *rollouts.Spec) { s.Status.Phase = rollouts.Paused; s.Status.Message = "by alice" },
			ev: Evidence{Stats: healthy()}, want: Hold, wantReason: "paused: by alice\nthe stage's evidence would advance; resume to go on"},
		{name: "paused still rolls back a failing canary", edit: func(s *rollouts.Spec) { s.Status.Phase = rollouts.Paused; s.Status.Message = "by alice" },
			ev:   Evidence{Stats: &Stats{Stable: armOf(100000, 1000, 0.87, 0.1), Canary: armOf(5000, 750, 0.87, 0.1)}},
			want: Rollback, wantNext: &Step{Stage: 1}, wantReason: "rolled back while paused: a pause stops advancing, not rollbacks"},
		{name: "paused rolls back after repeated metrics failures with onMetricsError rollback", edit: func(s *rollouts.Spec) {
			s.Status.Phase = rollouts.Paused
			s.Analysis.OnMetricsError = "rollback"
			s.Status.MetricsErrors = MaxMetricsErrors - 1
		}, ev: Evidence{Err: errors.New("timeout")}, want: Rollback, wantNext: &Step{Stage: 1}, wantReason: "3 consecutive metrics failures (onMetricsError: rollback)"},
		{name: "paused before its window holds", edit: func(s *rollouts.Spec) { s.Status.Phase = rollouts.Paused; s.Status.StageStartedAt = time.Time{} },
			want: Hold, wantReason: "paused"},
		{name: "rolled back holds", edit: func(s *rollouts.Spec) { s.Status.Phase = rollouts.RolledBack }, want: Hold, wantReason: "rolled back"},
		{name: "completed holds", edit: func(s *rollouts.Spec) { s.Status.Phase = rollouts.Completed }, want: Hold, wantReason: "completed"},
		{name: "stage out of range holds", edit: func(s *rollouts.Spec) { s.Status.Stage = 9 }, want: Hold, wantReason: "status.stage 9"},
		{name: "source error holds", ev: Evidence{Err: errors.New("connection refused")},
			want: Hold, wantReason: "metrics source failed: connection refused\n1 consecutive metrics failure"},
		{name: "source error below the threshold holds even with onMetricsError rollback", edit: func(s *rollouts.Spec) {
			s.Analysis.OnMetricsError = "rollback"
			s.Status.MetricsErrors = MaxMetricsErrors - 2
		}, ev: Evidence{Err: errors.New("timeout")}, want: Hold, wantReason: "2 consecutive metrics failures"},
		{name: "source error at the threshold rolls back with onMetricsError rollback", edit: func(s *rollouts.Spec) {
			s.Analysis.OnMetricsError = "rollback"
			s.Status.MetricsErrors = MaxMetricsErrors - 1
		}, ev: Evidence{Err: errors.New("timeout")}, want: Rollback, wantNext: &Step{Stage: 1}, wantReason: "3 consecutive metrics failures (onMetricsError: rollback)"},
		{name: "source error with onMetricsError hold never rolls back", edit: func(s *rollouts.Spec) { s.Status.MetricsErrors = 10 },
			ev: Evidence{Err: errors.New("timeout")}, want: Hold},
		{name: "missing stats holds", want: Hold, wantReason: "no statistics"},
		{name: "no data yet holds, and is no metrics failure", edit: func(s *rollouts.Spec) {
			s.Analysis.OnMetricsError = "rollback"
			s.Status.MetricsErrors = MaxMetricsErrors - 1
		}, ev: Evidence{Err: fmt.Errorf("metrics source: %w: traffic/s.jsonl does not exist yet", ErrNoData)}, want: Hold,
			wantReason: "no data yet: traffic/s.jsonl does not exist yet"},
		{name: "no requests of the rollout holds with no data yet", ev: Evidence{Stats: &Stats{}}, want: Hold,
			wantReason: "no data yet: the source has no requests of summarizer in this stage's window"},
		{name: "records of other rollouts only: the hint names them", ev: Evidence{Stats: &Stats{OtherRollouts: []string{"summariser", "tagger"}}}, want: Hold,
			wantReason: `no data yet: the source has no requests of summarizer in this stage's window; it holds records of summariser, tagger only: is the rollout field of the application's records "summarizer"?`},
		{name: "failing rule rolls back", ev: Evidence{Stats: &Stats{Stable: armOf(100000, 1000, 0.87, 0.1), Canary: armOf(5000, 155, 0.87, 0.1)}},
			want: Rollback, wantNext: &Step{Stage: 1}, wantReason: "error rate 3.1% vs 1%: at least +120% worse (98.8% sure), above the +50% allowed → roll back"},
		{name: "healthy stage advances", ev: Evidence{Stats: healthy()}, want: Advance, wantNext: &Step{Stage: 2, Weight: 25},
			wantReason: "stage 1 passed"},
		{name: "minDuration not reached holds", ev: Evidence{Stats: healthy()}, now: t0.Add(time.Hour),
			want: Hold, wantReason: "minDuration 4h not reached (1h so far)"},
		{name: "minRequests not reached holds", ev: Evidence{Stats: &Stats{Stable: armOf(2850, 28, 0.87, 0.1), Canary: armOf(150, 1, 0.87, 0.1)}},
			want: Hold, wantReason: "canary has 150 of 200 requests: about 2h more at the current traffic"},
		{name: "point estimate over the limit holds", ev: Evidence{Stats: &Stats{Stable: armOf(5000, 50, 0.87, 0.1), Canary: armOf(250, 4, 0.87, 0.1)}},
			want: Hold, wantReason: "error rate 1.6% vs 1%: +60% so far, above the +50% allowed but not yet sure"},
		{name: "a rule not shown within its limit at advanceConfidence holds", ev: Evidence{Stats: &Stats{Stable: armOf(5000, 50, 0.87, 0.1), Canary: armOf(250, 2, 0.87, 0.1)}},
			want: Hold, wantReason: "error rate 0.8% vs 1%: -20% so far, not yet sure it stays within the +50% allowed"},
		{name: "requirePass holds while a rule is inconclusive", edit: func(s *rollouts.Spec) { s.Analysis.RequirePass = true },
			ev:   Evidence{Stats: &Stats{Stable: armOf(5000, 50, 0.87, 0.1), Canary: armOf(250, 2, 0.87, 0.1)}},
			want: Hold, wantReason: "error rate 0.8% vs 1%: -20% so far, not yet sure it stays within the +50% allowed"},
		{name: "requirePass advances when every rule passes", edit: func(s *rollouts.Spec) { s.Analysis.RequirePass = true },
			ev: Evidence{Stats: healthy()}, want: Advance},
		{name: "a metric without data holds", ev: Evidence{Stats: &Stats{Stable: armOf(190000, 1900, 0.87, 0.1),
			Canary: ArmStats{Requests: 10000, Metrics: map[string]Sample{"error_rate": {Kind: Proportion, N: 10000, Sum: 100}}}}},
			want: Hold, wantReason: "quality score: no data for the canary"},
		{name: "last stage promotes", edit: func(s *rollouts.Spec) { s.Status.Stage = 4; s.Traffic.Weight = 100 },
			ev: Evidence{Stats: healthy()}, now: t0.Add(25 * time.Hour), want: Promote, wantNext: &Step{Stage: 5, Weight: 100}},
		{name: "past maxDuration onInconclusive hold holds", edit: func(s *rollouts.Spec) { s.Status.Stage = 2; s.Analysis.RequirePass = true },
			ev: Evidence{Stats: &Stats{Stable: armOf(5000, 50, 0.87, 0.1), Canary: armOf(250, 2, 0.87, 0.1)}}, now: t0.Add(73 * time.Hour),
			want: Hold, wantReason: "maxDuration 3d passed without a decision (onInconclusive: hold)"},
		{name: "past maxDuration onInconclusive rollback rolls back", edit: func(s *rollouts.Spec) {
			s.Status.Stage = 2
			s.Analysis.RequirePass = true
			s.Analysis.OnInconclusive = "rollback"
		}, ev: Evidence{Stats: &Stats{Stable: armOf(5000, 50, 0.87, 0.1), Canary: armOf(250, 2, 0.87, 0.1)}}, now: t0.Add(73 * time.Hour),
			want: Rollback, wantNext: &Step{Stage: 2}, wantReason: "onInconclusive: rollback"},
		{name: "next stage's gate shut holds", edit: func(s *rollouts.Spec) { s.Stages[2].Gate = &rollouts.Gate{Webhook: "env:GATE"} },
			ev:   Evidence{Stats: healthy(), Gates: map[int]GateResult{2: {Stage: 2, Reason: "webhook answered 403 Forbidden"}}},
			want: Hold, wantReason: "gate of stage 2 is shut: webhook answered 403 Forbidden"},
		{name: "next stage's gate open advances", edit: func(s *rollouts.Spec) { s.Stages[2].Gate = &rollouts.Gate{Webhook: "env:GATE"} },
			ev: Evidence{Stats: healthy(), Gates: openGate}, want: Advance, wantNext: &Step{Stage: 2, Weight: 25}},
		{name: "accelerate skips a stage when the canary is clearly better", edit: func(s *rollouts.Spec) { s.Analysis.Accelerate = true },
			ev:   Evidence{Stats: &Stats{Stable: armOf(190000, 1900, 0.80, 0.1), Canary: armOf(10000, 50, 0.90, 0.1)}},
			want: Advance, wantNext: &Step{Stage: 3, Weight: 50}, wantReason: "stage 2 is skipped"},
		{name: "accelerate never skips past a gate", edit: func(s *rollouts.Spec) {
			s.Analysis.Accelerate = true
			s.Stages[2].Gate = &rollouts.Gate{Webhook: "env:GATE"}
		}, ev: Evidence{Stats: &Stats{Stable: armOf(190000, 1900, 0.80, 0.1), Canary: armOf(10000, 50, 0.90, 0.1)}, Gates: openGate},
			want: Advance, wantNext: &Step{Stage: 2, Weight: 25}},
		{name: "accelerate needs every rule clearly better", edit: func(s *rollouts.Spec) { s.Analysis.Accelerate = true },
			ev: Evidence{Stats: healthy()}, want: Advance, wantNext: &Step{Stage: 2, Weight: 25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := baseSpec()
			if tt.edit != nil {
				tt.edit(spec)
			}
			now := tt.now
			if now.IsZero() {
				now = later
			}
			d := Judge(spec, tt.ev, now)
			if d.Action != tt.want {
				t.Fatalf("decision %s, want %s; reasons %q", d.Action, tt.want, d.Reasons)
			}
			if tt.wantNext != nil && (d.Next == nil || *d.Next != *tt.wantNext) {
				t.Errorf("next %+v, want %+v", d.Next, tt.wantNext)
			}
			if d.Action == Hold && d.Next != nil {
				t.Errorf("hold with next %+v", d.Next)
			}
			if tt.wantReason != "" && !strings.Contains(strings.Join(d.Reasons, "\n"), tt.wantReason) {
				t.Errorf("reasons %q do not say %q", d.Reasons, tt.wantReason)
			}
			if d.Rollout != "summarizer" {
				t.Errorf("rollout %q", d.Rollout)
			}
		})
	}
}

func TestQueryFor(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	spec := baseSpec()
	spec.Analysis.Rules = append(spec.Analysis.Rules, rollouts.Rule{Metric: "p99_latency_slo", Query: "histogram_quantile(0.99, x)", Max: f64(8000)})
	q, ok := QueryFor(spec, now)
	if !ok {
		t.Fatal("a progressing stage needs its metrics")
	}
	if q.Rollout != "summarizer" || !q.Window.From.Equal(t0) || !q.Window.To.Equal(now) {
		t.Errorf("query %+v, want window [%s, %s]", q, t0, now)
	}
	if len(q.Metrics) != 3 || q.Metrics[2] != (MetricQuery{Name: "p99_latency_slo", Query: "histogram_quantile(0.99, x)"}) ||
		q.Metrics[1] != (MetricQuery{Name: "quality_score", Maturity: rollouts.DefaultMaturity, DefaultMaturity: true}) {
		t.Errorf("metrics %+v", q.Metrics)
	}
	// A pause stops advancing only: the rollback rules still need the stage's metrics.
	paused := baseSpec()
	paused.Status.Phase = rollouts.Paused
	if _, ok := QueryFor(paused, now); !ok {
		t.Error("a paused stage needs its metrics: its rollback rules still apply")
	}
	for name, edit := range map[string]func(*rollouts.Spec){
		"no canary":         func(s *rollouts.Spec) { s.Canary = nil },
		"pending":           func(s *rollouts.Spec) { s.Status = nil },
		"rolled back":       func(s *rollouts.Spec) { s.Status.Phase = rollouts.RolledBack },
		"window not begun":  func(s *rollouts.Spec) { s.Status.StageStartedAt = time.Time{} },
		"an earlier canary": func(s *rollouts.Spec) { s.Status.Canary = "deadbeef" },
	} {
		s := baseSpec()
		edit(s)
		if _, ok := QueryFor(s, now); ok {
			t.Errorf("%s: QueryFor wants metrics", name)
		}
	}
}

func TestJudgeIsPure(t *testing.T) {
	spec, ev := baseSpec(), Evidence{Stats: healthy()}
	a, b := Judge(spec, ev, t0.Add(5*time.Hour)), Judge(spec, ev, t0.Add(5*time.Hour))
	if a.Action != b.Action || strings.Join(a.Reasons, "|") != strings.Join(b.Reasons, "|") || len(a.Metrics) != len(b.Metrics) {
		t.Errorf("two calls disagree: %+v vs %+v", a, b)
	}
}

// TestTimeToRequests: a hold for want of requests says roughly how long the rest takes at the rate the
// arm has had so far.
func TestTimeToRequests(t *testing.T) {
	tests := []struct {
		n, need int64
		elapsed time.Duration
		want    string
	}{
		{170, 500, 90 * time.Minute, "about 3h more at the current traffic"},
		{450, 500, time.Hour, "about 7m more at the current traffic"},
		{499, 500, time.Hour, "about a minute more at the current traffic"},
		{10, 5000, 2 * time.Hour, "about 42 days more at the current traffic"},
		{0, 500, time.Hour, "no traffic yet to tell how long that takes"},
	}
	for _, tt := range tests {
		if got := timeToRequests(tt.n, tt.need, tt.elapsed); got != tt.want {
			t.Errorf("timeToRequests(%d, %d, %s) = %q, want %q", tt.n, tt.need, tt.elapsed, got, tt.want)
		}
	}
}
