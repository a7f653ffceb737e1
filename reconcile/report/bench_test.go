package report

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy/evidence/chart"
)

// bigPage is the report of 10 rollouts over 30 days of hourly ticks: each rollout has three stages of
// ten days, five limits each, a point every hour, and a weight change a day and a half.
func bigPage() Page {
	now := t0.Add(30 * 24 * time.Hour)
	p := Page{Repository: "https://github.com/acme/llm-config", Branch: "main", Since: t0, Now: now, Every: time.Hour}
	limits := []struct {
		rule, limit string
		value       float64
		relative    bool
	}{{"error_rate", "max 0.02", 0.02, false}, {"error_rate", "maxIncrease 50%", 0.5, true},
		{"latency_p95_ms", "maxIncrease 30%", 0.3, true}, {"quality_score", "maxDecrease 5%", -0.05, true},
		{"cost_per_request", "maxIncrease 50%", 0.5, true}}
	for r := range 10 {
		ro := Rollout{Name: fmt.Sprintf("rollout-%02d", r), Description: "a canary of a model bump", Phase: "Progressing", Weight: 50,
			Stable: "model-a + prompts/v1.md", Canary: "model-b + prompts/v2.md", From: t0, To: now}
		for c := range 20 {
			w := (c * 5) % 101
			ro.Changes = append(ro.Changes, Change{Commit: fmt.Sprintf("%040x", r*100+c), When: t0.Add(time.Duration(c) * 36 * time.Hour),
				Author: "rollout-bot", Decision: "advance", Subject: fmt.Sprintf("rollout(rollout-%02d): advance", r), Weight: &w})
		}
		for s := range 3 {
			from := t0.Add(time.Duration(s) * 240 * time.Hour)
			st := Stage{Index: 2 - s, Weight: 5, From: from, To: from.Add(240 * time.Hour), Ticks: 240}
			for _, l := range limits {
				series := Series{Rule: l.rule, Limit: l.limit, LimitValue: l.value, Relative: l.relative,
					Markers: []chart.Marker{{At: from, Label: "start"}, {At: st.To, Label: "advance"}}}
				for i := 1; i <= 240; i++ {
					w := 2 / math.Sqrt(float64(i))
					est := l.value/2 + 0.01*math.Sin(float64(i)/10)
					series.Points = append(series.Points, chart.Point{At: from.Add(time.Duration(i) * time.Hour), Estimate: est,
						Low: est - w, High: est + w, Verdict: "inconclusive"})
				}
				st.Rules = append(st.Rules, series)
			}
			ro.Stages = append(ro.Stages, st)
		}
		p.Rollouts = append(p.Rollouts, ro)
	}
	return p
}

// TestReportSize: the report of 10 rollouts over 30 days of hourly ticks stays under 1 MB.
func TestReportSize(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, bigPage()); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 1<<20 {
		t.Errorf("the report is %d bytes, want at most 1 MB", b.Len())
	}
	t.Logf("report of 10 rollouts x 30 days of hourly ticks: %d bytes", b.Len())
}

// BenchmarkReport writes the report of 10 rollouts over 30 days of hourly ticks, and its chart files.
func BenchmarkReport(b *testing.B) {
	p := bigPage()
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := WriteHTML(&buf, p); err != nil {
			b.Fatal(err)
		}
		for _, f := range Charts(p) {
			_, _ = io.WriteString(io.Discard, f.SVG)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bytes/report")
}
