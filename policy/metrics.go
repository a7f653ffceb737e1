package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rollout-dev/rollout/rollouts"
)

// metricLabel is how the judge writes a metric for a reviewer: its words, its unit and, for a quantile
// metric, its rank.
type metricLabel struct {
	words   string
	percent bool    // a proportion, written as 3.1%
	unit    string  // appended to values: " ms", " tokens"
	dollars bool    // written as $0.0042
	q       float64 // rank of a quantile metric
}

// metricLabels words the built-in metrics of the contract. A source-defined metric is written by its
// name; a source-defined quantile metric takes its rank from a _pNN part of its name (p99_latency_slo
// from a Prometheus query is reported as a Value, which needs none).
var metricLabels = map[string]metricLabel{
	"error_rate":                {words: "error rate", percent: true},
	"refusal_rate":              {words: "refusal rate", percent: true},
	"negative_feedback_rate":    {words: "negative feedback rate", percent: true},
	"latency_mean_ms":           {words: "mean latency", unit: " ms"},
	"latency_p50_ms":            {words: "p50 latency", unit: " ms"},
	"latency_p95_ms":            {words: "p95 latency", unit: " ms"},
	"latency_p99_ms":            {words: "p99 latency", unit: " ms"},
	"cost_per_request":          {words: "cost per request", dollars: true},
	"input_tokens_per_request":  {words: "input tokens per request", unit: " tokens"},
	"output_tokens_per_request": {words: "output tokens per request", unit: " tokens"},
	"quality_score":             {words: "quality score"},

	// The metrics only an LLM rollout needs (issue 25).
	"canary_win_rate":              {words: "canary win rate", percent: true},
	"projected_extra_cost_per_day": {words: "projected extra cost per day", dollars: true},
	"cost_per_day":                 {words: "projected extra cost per day", dollars: true},
}

// labelOf returns the label of a metric name, built in or not. A built-in quantile metric takes its
// rank from rollouts.BuiltinMetrics.
func labelOf(name string) metricLabel {
	if l, ok := metricLabels[name]; ok {
		if m, ok := rollouts.BuiltinMetrics[name]; ok && m.Kind == rollouts.Quantile {
			l.q = m.Q
		}
		return l
	}
	l := metricLabel{words: name}
	if strings.HasSuffix(name, "_ms") {
		l.unit = " ms"
	}
	for _, part := range strings.Split(name, "_") {
		if len(part) >= 3 && part[0] == 'p' {
			// p95 is the 0.95 quantile, p999 the 0.999 one.
			if v, err := strconv.Atoi(part[1:]); err == nil && v > 0 {
				l.q = float64(v) / math.Pow10(len(part)-1)
			}
		}
	}
	return l
}

// value writes one value of the metric.
func (l metricLabel) value(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	case l.percent:
		return trimFloat(v*100, 2) + "%"
	case l.dollars:
		return "$" + strconv.FormatFloat(v, 'g', 3, 64)
	case math.IsNaN(v):
		return "—"
	case math.Abs(v) >= 1000 && math.Abs(v) < 1e15:
		return thousands(int64(math.Round(v))) + l.unit
	default:
		return strconv.FormatFloat(v, 'g', 4, 64) + l.unit
	}
}

// thousands writes n with a comma between each group of three digits: 12,345.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// relative writes a relative change such as +210% or -4.5%.
func relative(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.IsInf(v, 1):
		return "+∞"
	case math.IsInf(v, -1):
		return "-∞"
	}
	s := trimFloat(v*100, 1)
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s + "%"
}

// trimFloat formats v with at most prec decimals, fewer when v is large, without trailing zeros.
func trimFloat(v float64, prec int) string {
	if math.Abs(v) >= 100 {
		prec = 0
	} else if math.Abs(v) >= 10 && prec > 1 {
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// confidenceWords writes a confidence such as 0.95 as "95%".
func confidenceWords(c float64) string { return fmt.Sprintf("%s%%", trimFloat(c*100, 2)) }

// FormatChange writes a relative change the way the judge's sentences do: +210%, -4.5%.
func FormatChange(v float64) string { return relative(v) }

// FormatCount writes a count with thousands separators: 48,210.
func FormatCount(n int64) string { return thousands(n) }

// FormatValue writes one value of a metric the way the judge's sentences do: 3.1% for a rate, $0.0042
// for a cost, 812 ms for a latency.
func FormatValue(metric string, v float64) string { return labelOf(metric).value(v) }
