package record_test

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/rollouts/record"
)

// An application instruments once: every request goes to the JSON Lines file that `file:` sources read
// and to the Prometheus metrics that `prometheus:` sources query.
func ExampleMulti() {
	file := record.NewJSONL(os.Stdout) // in production: record.OpenJSONL("traffic/summarizer.jsonl")
	metrics := record.NewMetrics()
	prometheus.NewRegistry().MustRegister(metrics) // in production: served on /metrics
	observe := record.Multi(file, metrics)

	err := observe.Record(record.Request{
		Time:    time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC), // in production: leave zero and set file.Now = time.Now
		Rollout: "summarizer", Variant: record.Canary, Key: "u-1842",
		Model: "claude-sonnet-4-5-20260415", Prompt: "v3",
		Latency:     new(812 * time.Millisecond),
		InputTokens: new(int64(1200)), OutputTokens: new(int64(300)),
		CostUSD: new(0.0042), Quality: new(0.87), Feedback: new(1),
	})
	if err != nil {
		fmt.Println(err)
	}
	if err := file.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"ts":"2026-04-16T10:00:00Z","rollout":"summarizer","variant":"canary","key":"u-1842","model":"claude-sonnet-4-5-20260415","prompt":"v3","latency_ms":812,"error":false,"refusal":false,"input_tokens":1200,"output_tokens":300,"cost_usd":0.0042,"quality":0.87,"feedback":1}
}
