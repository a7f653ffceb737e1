package jsonl_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
)

// Records of two users on stable and one on the canary, late feedback included, read back per arm.
func ExampleSource_Read() {
	records := `{"ts":"2026-04-16T10:00:00Z","rollout":"summarizer","variant":"stable","key":"u-1","request_id":"a","error":false}
{"ts":"2026-04-16T10:00:01Z","rollout":"summarizer","variant":"canary","key":"u-2","request_id":"b","error":true}
{"ts":"2026-04-16T10:00:02Z","rollout":"summarizer","variant":"stable","key":"u-1","request_id":"c","error":true}
{"ts":"2026-04-16T10:00:03Z","rollout":"summarizer","variant":"stable","key":"u-3","request_id":"d","error":false}
{"ts":"2026-04-16T10:05:00Z","rollout":"summarizer","request_id":"b","feedback":-1}
{"ts":"2026-04-16T10:06:00Z","rollout":"summarizer","request_id":"zz","feedback":1}
`
	st, err := (&jsonl.Source{}).Read(context.Background(), strings.NewReader(records), policy.Query{
		Rollout: "summarizer",
		Metrics: []policy.MetricQuery{{Name: jsonl.ErrorRate}, {Name: jsonl.NegativeFeedbackRate}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("unit:", st.Unit, "from:", st.From.Format("15:04:05"))
	for _, arm := range []policy.Arm{policy.Stable, policy.Canary} {
		a := st.Arm(arm)
		e, f := a.Metrics[jsonl.ErrorRate], a.Metrics[jsonl.NegativeFeedbackRate]
		fmt.Printf("%s: %d requests from %d keys, %.0f errors, %.0f of %d feedback negative\n", arm, a.Requests, a.Keys, e.Sum, f.Sum, f.N)
	}
	fmt.Println("late feedback without its request:", st.LateUnmatched)
	// Output:
	// unit: key from: 10:00:01
	// stable: 2 requests from 2 keys, 1 errors, 0 of 0 feedback negative
	// canary: 1 requests from 1 keys, 1 errors, 1 of 1 feedback negative
	// late feedback without its request: 1
}
