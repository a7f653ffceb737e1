package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence/chart"
	"github.com/rollout-dev/rollout/rollouts"
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

// unexpectedSource fails the benchmark when asked anything: every tick must come from the cache.
type unexpectedSource struct{ b *testing.B }

func (s unexpectedSource) Stats(context.Context, policy.Query) (*policy.Stats, error) {
	s.b.Fatal("the source was asked a tick the cache holds")
	return nil, nil
}

// BenchmarkReplayCached is a second report of 10 rollouts, each one stage of 30 days of hourly ticks:
// every tick from a warm cache, the series built and the page written.
func BenchmarkReplayCached(b *testing.B) {
	start := t0.Add(time.Hour)
	now := start.Add(30 * 24 * time.Hour)
	cache := memoryCache{}
	var inputs []Input
	for r := range 10 {
		in := story()
		in.Name = fmt.Sprintf("rollout-%02d", r)
		in.Versions = in.Versions[:2]
		in.Versions[1].Commit = fmt.Sprintf("c2-%02d", r)
		in.Changes = in.Changes[:1]
		in.Spec, _ = rollouts.Parse(in.Path, in.Versions[1].Content)
		entries := map[int64]tick{}
		for i := 1; i <= 30*24; i++ {
			f := func(v float64) *float64 { return &v }
			w := 2 / math.Sqrt(float64(i))
			entries[start.Add(time.Duration(i)*time.Hour).Unix()] = tick{Action: "hold", Rules: []tickLimit{
				{Rule: "error_rate", Limit: "max 0.02", Value: 0.02, Verdict: "inconclusive", Estimate: f(0.01), Low: f(0.01 - w/100), High: f(0.01 + w/100)},
				{Rule: "error_rate", Limit: "maxIncrease 50%", Value: 0.5, Relative: true, Verdict: "inconclusive", Estimate: f(0.1), Low: f(0.1 - w), High: f(0.1 + w)},
				{Rule: "quality_score", Limit: "maxDecrease 5%", Value: -0.05, Relative: true, Verdict: "pass", Estimate: f(0.01), Low: f(0.01 - w/10), High: f(0.01 + w/10)},
			}}
		}
		raw, err := json.Marshal(entries)
		if err != nil {
			b.Fatal(err)
		}
		cache.Put(cacheKey(in.Versions[1].Commit, "warm"), raw)
		inputs = append(inputs, in)
	}
	rp := &Replayer{Cache: cache, Every: time.Hour, Open: func(*rollouts.Spec) (policy.Source, string, error) {
		return unexpectedSource{b}, "warm", nil
	}}
	var size int
	for b.Loop() {
		p := Page{Since: start, Now: now, Every: time.Hour}
		for _, in := range inputs {
			p.Rollouts = append(p.Rollouts, rp.Replay(context.Background(), in, start, now))
		}
		var buf bytes.Buffer
		if err := WriteHTML(&buf, p); err != nil {
			b.Fatal(err)
		}
		if n := len(p.Rollouts[0].Stages); n != 1 || len(p.Rollouts[0].Stages[0].Rules[0].Points) != 30*24 {
			b.Fatalf("%d stages, want one of %d ticks", n, 30*24)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bytes/report")
}
