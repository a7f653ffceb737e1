package reconcile

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestEvidenceBodyFitsGitHub: however much evidence there is, the body with its markers stays within
// GitHub's limit and keeps the decision, the rollout's marker and the target marker.
func TestEvidenceBodyFitsGitHub(t *testing.T) {
	spec := &rollouts.Spec{Name: "s", Canary: &rollouts.Variant{Model: "m"}}
	counts := []int{0, 1, 40}
	for n := 230; n < 255; n++ {
		counts = append(counts, n) // around the count whose evidence just fits: the tail must still fit
	}
	for _, n := range counts {
		d := policy.Decision{Rollout: "s", Action: policy.Advance, Current: policy.Step{Weight: 5}, Next: &policy.Step{Stage: 1, Weight: 25}}
		for i := range n {
			d.Metrics = append(d.Metrics, policy.RuleResult{Name: "metric_" + strings.Repeat("x", i%7), Verdict: policy.Pass,
				Reason: strings.Repeat("r", 1800+i)})
		}
		body := EvidenceBody(spec, d, "0123456789ab", DefaultBot, "")
		if got := utf8.RuneCountInString(body); got > evidence.MaxBody {
			t.Errorf("%d metrics: body of %d characters, over %d", n, got, evidence.MaxBody)
		}
		for _, want := range []string{"**Decision: advance**", Marker("s"), "<!-- rollout-target:0123456789ab -->"} {
			if !strings.Contains(body, want) {
				t.Errorf("%d metrics: body lacks %q", n, want)
			}
		}
		if targetOf(body) != "0123456789ab" {
			t.Errorf("%d metrics: target %q", n, targetOf(body))
		}
	}
}

// TestProposalLinksTheReportCharts: with the published report's address, a proposal links its
// rollout's section of the page; an address that is not http(s) gets no link.
func TestProposalLinksTheReportCharts(t *testing.T) {
	spec := &rollouts.Spec{Name: "summarizer", Canary: &rollouts.Variant{Model: "m"}}
	d := policy.Decision{Rollout: "summarizer", Action: policy.Advance, Current: policy.Step{Weight: 5}, Next: &policy.Step{Stage: 1, Weight: 25}}
	tests := []struct {
		url, want string
	}{
		{"https://acme.github.io/llm-config/", "[charts of summarizer](https://acme.github.io/llm-config/#r-summarizer)"},
		{"https://reports.acme.dev/rollout/index.html#old", "[charts of summarizer](https://reports.acme.dev/rollout/index.html#r-summarizer)"},
		{"", ""},
		{"javascript:alert(1)", ""},
		{"file:///etc/passwd", ""},
		{"acme.github.io/llm-config", ""},
	}
	for _, tt := range tests {
		body := EvidenceBody(spec, d, "", DefaultBot, tt.url)
		if tt.want == "" {
			if strings.Contains(body, "charts of") {
				t.Errorf("report URL %q: the body links charts:\n%s", tt.url, body)
			}
			continue
		}
		if !strings.Contains(body, tt.want) {
			t.Errorf("report URL %q: body lacks %s:\n%s", tt.url, tt.want, body)
		}
	}
}
