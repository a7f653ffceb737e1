package evidence_test

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence"
	"github.com/rollout-dev/rollout/rollouts"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func ptr[T any](v T) *T { return &v }

var day = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

func spec() *rollouts.Spec {
	return &rollouts.Spec{
		Name:        "summarizer",
		Description: "Sonnet 4.5 April bump",
		Stable:      rollouts.Variant{Model: "claude-sonnet-4-5-20260301", Prompt: "prompts/summarize/v3.md"},
		Canary:      &rollouts.Variant{Model: "claude-sonnet-4-5-20260415", Prompt: "prompts/summarize/v3.md"},
		Traffic:     rollouts.Traffic{Weight: 5},
		Status:      &rollouts.Status{Phase: rollouts.Progressing, Stage: 1, StageStartedAt: day.Add(24 * time.Hour)},
	}
}

func metrics() []policy.RuleResult {
	return []policy.RuleResult{
		{Name: "error_rate", Rule: rollouts.Rule{Metric: "error_rate", Max: ptr(0.02), MaxIncrease: ptr(rollouts.Ratio(0.5))},
			Stable: policy.ArmValue{N: 48210, Value: 0.0112}, Canary: policy.ArmValue{N: 2533, Value: 0.0118},
			Verdict: policy.Pass, Interval: &policy.Interval{Low: 0.009, High: 0.0151}, Reason: "error rate 1.18% (95% CS 0.90%..1.51%) is within 2%"},
		{Name: "latency_p95_ms", Rule: rollouts.Rule{Metric: "latency_p95_ms", MaxIncrease: ptr(rollouts.Ratio(0.3))},
			Stable: policy.ArmValue{N: 48210, Value: 812}, Canary: policy.ArmValue{N: 2533, Value: 845},
			Verdict: policy.Inconclusive, Interval: &policy.Interval{Low: -0.02, High: 0.41}, Reason: "p95 latency 845 ms vs 812 ms"},
		{Name: "quality_score", Rule: rollouts.Rule{Metric: "quality_score", MaxDecrease: ptr(rollouts.Ratio(0.05))},
			Stable: policy.ArmValue{N: 1200, Value: 0.87}, Canary: policy.ArmValue{N: 80, Value: 0.88},
			Verdict: policy.Pass, Interval: &policy.Interval{Low: -0.01, High: math.Inf(1)}},
		{Name: "refusal_rate", Rule: rollouts.Rule{Metric: "refusal_rate", MaxIncrease: ptr(rollouts.Ratio(1))},
			Verdict: policy.Inconclusive},
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		in   evidence.Input
	}{
		{"advance", evidence.Input{Spec: spec(), Now: day.Add(30 * time.Hour), Timeline: []evidence.Step{
			{At: day, Stage: 0, Weight: 0, Commit: "3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a"},
			{At: day.Add(24 * time.Hour), Stage: 1, Weight: 5, Commit: "7b9d1f3a5c7e9b1d3f5a3f2a9c1e5b7d9f1a3c5e"}},
			Decision: policy.Decision{Rollout: "summarizer", Action: policy.Advance, Current: policy.Step{Stage: 1, Weight: 5},
				Next: &policy.Step{Stage: 2, Weight: 25}, Reasons: []string{"every rule within its limit", "minDuration 4h passed"},
				Metrics: metrics()}}},
		{"rollback", evidence.Input{Spec: spec(), Now: day.Add(26 * time.Hour),
			Decision: policy.Decision{Rollout: "summarizer", Action: policy.Rollback, Current: policy.Step{Stage: 1, Weight: 5},
				Next: &policy.Step{Stage: 1, Weight: 0}, Reasons: []string{"error_rate failed: 4.1% is above the allowed 2%"},
				Metrics: []policy.RuleResult{{Name: "error_rate", Rule: rollouts.Rule{Metric: "error_rate", Max: ptr(0.02)},
					Stable: policy.ArmValue{N: 9000, Value: 0.011}, Canary: policy.ArmValue{N: 500, Value: 0.041},
					Verdict: policy.Fail, Interval: &policy.Interval{Low: 0.025, High: 0.06}}}}}},
		{"injection", evidence.Input{Spec: func() *rollouts.Spec {
			s := spec()
			s.Description = "<script>alert(1)</script> [click](https://evil.example) @ml-platform **bold**\n# heading"
			s.Canary.Model = "model`|<img src=x onerror=alert(1)>"
			return s
		}(), Decision: policy.Decision{Rollout: "summarizer", Action: policy.Hold, Current: policy.Step{Stage: 1, Weight: 5},
			Reasons: []string{"</details><details open>| --> <!-- ![x](https://evil.example/x.png)"},
			Metrics: []policy.RuleResult{{Name: "p99\"|`<b>x</b>", Rule: rollouts.Rule{Metric: "x", Max: ptr(8000.0)},
				Stable: policy.ArmValue{N: 10, Value: 7000}, Canary: policy.ArmValue{N: 10, Value: 7500},
				Verdict: policy.Inconclusive, Interval: &policy.Interval{Low: 6000, High: 9000}, Reason: "```mermaid\nx\n```"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evidence.Render(tt.in)
			golden := filepath.Join("testdata", tt.name+".md")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("body differs from %s (run go test -update and review the diff):\n%s", golden, got)
			}
			if !strings.HasPrefix(got, evidence.Marker("summarizer")+"\n") {
				t.Errorf("no marker first")
			}
		})
	}
}

func TestRenderEscapesInjection(t *testing.T) {
	s := spec()
	s.Description = "<script>alert(1)</script> @ml-platform"
	d := policy.Decision{Rollout: "summarizer", Action: policy.Hold, Reasons: []string{"</details>\n# x"},
		Metrics: []policy.RuleResult{{Name: "a|b\n```", Verdict: policy.Pass}}}
	got := evidence.Render(evidence.Input{Spec: s, Decision: d})
	for _, bad := range []string{"<script>", "</details>\n", "@ml-platform", "a|b", "\n# x", "```\n|"} {
		if strings.Contains(got, bad) {
			t.Errorf("body holds %q:\n%s", bad, got)
		}
	}
	// Every table row keeps its seven cells.
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "| a") {
			if n := strings.Count(line, "|") - strings.Count(line, `\|`); n != 8 {
				t.Errorf("row %q has %d unescaped pipes, want 8", line, n)
			}
		}
	}
}

func TestRenderStaysUnderTheLimitAndKeepsTheVerdict(t *testing.T) {
	huge := strings.Repeat("very long reason ", 200)
	var ms []policy.RuleResult
	for range 2000 {
		ms = append(ms, policy.RuleResult{Name: "metric_with_a_long_name", Verdict: policy.Fail, Reason: huge,
			Rule: rollouts.Rule{Max: ptr(1.0)}, Interval: &policy.Interval{Low: 1, High: 2},
			Stable: policy.ArmValue{N: 1, Value: 1}, Canary: policy.ArmValue{N: 1, Value: 2}})
	}
	var reasons []string
	for range 100 {
		reasons = append(reasons, huge)
	}
	d := policy.Decision{Rollout: "summarizer", Action: policy.Rollback, Current: policy.Step{Stage: 2, Weight: 25},
		Next: &policy.Step{Stage: 2}, Reasons: reasons, Metrics: ms}
	got := evidence.Render(evidence.Input{Spec: spec(), Decision: d})
	if n := utf8.RuneCountInString(got); n > evidence.MaxBody {
		t.Fatalf("body is %d characters", n)
	}
	for _, must := range []string{evidence.Marker("summarizer"), "**Decision: rollback**", "Detail cut"} {
		if !strings.Contains(got, must) {
			t.Errorf("body lost %q", must)
		}
	}
}

func TestTitle(t *testing.T) {
	tests := []struct {
		d    policy.Decision
		want string
	}{
		{policy.Decision{Rollout: "s", Action: policy.Advance, Current: policy.Step{Weight: 5}, Next: &policy.Step{Weight: 25}}, "rollout(s): 5% → 25%"},
		{policy.Decision{Rollout: "s", Action: policy.Rollback, Current: policy.Step{Weight: 50}, Next: &policy.Step{Weight: 50}}, "rollout(s): 50% → 0%"},
		{policy.Decision{Rollout: "s", Action: policy.Hold, Current: policy.Step{Weight: 5}}, "rollout(s): 5% → 5%"},
	}
	for _, tt := range tests {
		if got := evidence.Title(tt.d); got != tt.want {
			t.Errorf("Title = %q, want %q", got, tt.want)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	in := evidence.Input{Spec: spec(), Now: day, Decision: policy.Decision{Rollout: "summarizer", Action: policy.Advance,
		Current: policy.Step{Stage: 1, Weight: 5}, Next: &policy.Step{Stage: 2, Weight: 25}, Metrics: metrics()}}
	b.ReportAllocs()
	for b.Loop() {
		evidence.Render(in)
	}
}

// signedInterval is a relative interval's cell: both ends a signed change.
var signedInterval = regexp.MustCompile(`\| [+-][\d.]+% … [+-][\d.]+% \|`)

// TestRenderJudgedEvidence renders what the judge really decides on a small canary whose rule has both
// max and maxIncrease, next to an advisory value: each limit gets its own row with an interval on its
// own scale and, in the details, the confidence of each end, no relative interval reaches below -100%, and the chart
// never divides one scale by the other.
func TestRenderJudgedEvidence(t *testing.T) {
	s := spec()
	s.Stages = []rollouts.Stage{{Shadow: 100}, {Weight: 5}, {Weight: 25}}
	s.Analysis = rollouts.Analysis{Confidence: 0.95, Rules: []rollouts.Rule{
		{Metric: "error_rate", Max: ptr(0.02), MaxIncrease: ptr(rollouts.Ratio(0.5))},
		{Metric: "p99_latency_slo", Query: "histogram_quantile(0.99, x)", Max: ptr(8000.0)},
	}}
	arm := func(n int64, errs, slo float64) policy.ArmStats {
		return policy.ArmStats{Requests: n, Metrics: map[string]policy.Sample{
			"error_rate":      {Kind: policy.Proportion, N: n, Sum: errs},
			"p99_latency_slo": {Kind: policy.Value, N: 1, Sum: slo},
		}}
	}
	stats := &policy.Stats{Unit: policy.UnitRequest, From: day.Add(25 * time.Hour), NotRandomised: 12,
		Stable: arm(1710, 20, 7000), Canary: arm(87, 11, 9100)}
	d := policy.Judge(s, policy.Evidence{Stats: stats}, day.Add(30*time.Hour))
	got := evidence.Render(evidence.Input{Spec: s, Decision: d, Now: day.Add(30 * time.Hour)})
	golden := filepath.Join("testdata", "judged.md")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("body differs from %s (run go test -update and review the diff):\n%s", golden, got)
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "| error\\_rate") {
			rel := strings.Contains(line, "maxIncrease +50%")
			if rel != signedInterval.MatchString(line) {
				t.Errorf("a row mixes scales: %s", line)
			}
		}
	}
	if regexp.MustCompile(`-[1-9]\d\d(\.\d+)?% …|−∞ …`).MatchString(got) {
		t.Errorf("an interval reaches below -100%%:\n%s", got)
	}
	for _, want := range []string{"ℹ️ advisory", "Unit: request", "12 requests of keys matched", "lower end at 99.2%, upper at 80%"} {
		if !strings.Contains(got, want) {
			t.Errorf("body does not say %q", want)
		}
	}
}

// TestOneTableEverywhere: the terminal table, the pull request body and the plan comment print the
// same rows, cell for cell: the same columns, units and separators.
func TestOneTableEverywhere(t *testing.T) {
	d := policy.Decision{Rollout: "summarizer", Action: policy.Hold, Current: policy.Step{Stage: 1, Weight: 5}, Metrics: metrics()}
	rows := evidence.Rows(d)
	if len(rows) != len(d.Metrics) {
		t.Fatalf("%d rows for %d one-limit rules", len(rows), len(d.Metrics))
	}
	text := evidence.TextTable(rows)
	body := evidence.Render(evidence.Input{Spec: spec(), Decision: d})
	plan := evidence.Markdown(d)
	if !strings.HasPrefix(text, "METRIC  ") || !strings.Contains(text, "CHANGE") || !strings.Contains(text, "LIMIT") {
		t.Errorf("terminal heading lacks the columns:\n%s", text)
	}
	for _, r := range rows {
		for _, c := range []string{r.Stable, r.Canary, r.Change, r.Interval, r.Limit} {
			if !strings.Contains(text, c) {
				t.Errorf("terminal table lacks %q:\n%s", c, text)
			}
			for name, md := range map[string]string{"body": body, "plan": plan} {
				if !strings.Contains(md, c) {
					t.Errorf("%s lacks %q:\n%s", name, c, md)
				}
			}
		}
	}
	for _, want := range []string{"1.18% (n=2,533)", "845 ms (n=2,533)", "maxIncrease +50%, max 2%", "-2% … +41%"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal table lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(body, evidence.MarkdownTable(rows)) || !strings.Contains(plan, evidence.MarkdownTable(rows)) {
		t.Errorf("the body and the plan do not print the same table:\n%s\n---\n%s", body, plan)
	}
}

// TestMarkdownReasonsAreInert: a reason in the plan comment cannot open a block, a tag, a link or a
// mention.
func TestMarkdownReasonsAreInert(t *testing.T) {
	d := policy.Decision{Rollout: "s", Action: policy.Hold, Reasons: []string{"1. <script>@team [x](https://evil.example) *b* | `c`"}}
	got := evidence.Markdown(d)
	want := "- &#8203;1. &lt;script&gt;@\u200bteam \\[x\\](https://evil.example) \\*b\\* \\| \\`c\\`\n"
	if !strings.Contains(got, want) {
		t.Errorf("Markdown =\n%s\nwant the line %q", got, want)
	}
}
