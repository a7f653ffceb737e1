package jsonl_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/source/jsonl"
)

// Synthetic traffic with a canary that errs three times as often, read back by the source.
func ExampleSource_Stats() {
	start := time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	canary := jsonl.DefaultProfile("model-new")
	canary.ErrorRate = 0.03
	f, err := os.CreateTemp("", "summarizer-*.jsonl")
	if err != nil {
		fmt.Println(err)
		return
	}
	path := f.Name()
	defer os.Remove(path)
	err = jsonl.Synthesize(f, jsonl.SynthConfig{
		Rollout: "summarizer", Start: start, Interval: time.Second, Requests: 20_000, CanaryShare: 0.5,
		Stable: jsonl.DefaultProfile("model-old"), Canary: canary,
	}, rand.New(rand.NewSource(1)))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Println(err)
		return
	}

	st, err := jsonl.Open(path).Stats(context.Background(), policy.Query{
		Rollout: "summarizer",
		Window:  policy.Window{From: start, To: start.Add(24 * time.Hour)},
		Metrics: []policy.MetricQuery{{Name: jsonl.ErrorRate}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		s := st.Arm(arm).Metrics[jsonl.ErrorRate]
		fmt.Printf("%s: %.0f errors in %d requests (%.1f%%)\n", arm, s.Sum, s.N, 100*s.Sum/float64(s.N))
	}
	fmt.Println("malformed:", st.Malformed)
	// Output:
	// stable: 119 errors in 9942 requests (1.2%)
	// canary: 282 errors in 10058 requests (2.8%)
	// malformed: 0
}
