package rollouts

import (
	"strings"
	"testing"
	"time"
)

func TestMaturity(t *testing.T) {
	src := minimal + `analysis:
  rules:
    - {metric: negative_feedback_rate, maxIncrease: 20%}
    - {metric: quality_score, maxDecrease: 5%, maturity: 1d}
    - {metric: negative_feedback_rate, maxIncrease: 20%, maturity: 0s}
    - {metric: error_rate, maxIncrease: 50%}
    - {metric: thumbs_down_share, query: "SELECT 1", max: 0.1, maturity: 2h}
`
	s, problems := Parse("t.yaml", []byte(src))
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	want := []time.Duration{DefaultMaturity, 24 * time.Hour, 0, 0, 2 * time.Hour}
	for i, r := range s.Analysis.Rules {
		if got := MaturityOf(r); got != want[i] {
			t.Errorf("rule %d (%s): maturity %s, want %s", i, r.Metric, got, want[i])
		}
	}
	_, problems = Parse("t.yaml", []byte(strings.Replace(src, "maturity: 1d", "maturity: -1h", 1)))
	if len(problems) == 0 || !strings.Contains(problems[0].Error(), "9:") {
		t.Errorf("a negative maturity: problems %v, want one at line 9", problems)
	}
}

func TestAssignmentUnit(t *testing.T) {
	for _, c := range []struct{ unit, want string }{{"key", ""}, {"request", ""}, {"requests", `7:34: assignment.unit: "requests" is not one of key, request; did you mean "request"?`}} {
		s, problems := Parse("t.yaml", []byte(minimal+"canary: {model: c-20260202}\nassignment: {key: user_id, unit: "+c.unit+"}\n"))
		switch {
		case c.want == "" && len(problems) > 0:
			t.Errorf("unit %s: %v", c.unit, problems)
		case c.want == "" && s.Assignment.Unit != c.unit:
			t.Errorf("unit %s read as %q", c.unit, s.Assignment.Unit)
		case c.want != "" && (len(problems) == 0 || !strings.Contains(problems[0].Error(), c.want)):
			t.Errorf("unit %s: %v, want %q", c.unit, problems, c.want)
		}
	}
}
