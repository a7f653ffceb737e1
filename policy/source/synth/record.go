package synth

import (
	"math"
	"time"

	"github.com/rollout-dev/rollout/rollouts/record"
)

// Record returns r as the application's recorder takes it.
func Record(r Request) record.Request {
	latency := time.Duration(math.Round(r.LatencyMS * float64(time.Millisecond)))
	in, out, cost := int64(r.InputTokens), int64(r.OutputTokens), r.CostUSD
	return record.Request{
		Time: r.TS, Rollout: r.Rollout, Variant: string(r.Variant), Shadow: r.Shadow, Key: r.Key, Model: r.Model, Prompt: r.Prompt, RequestID: r.RequestID,
		Latency: &latency, Error: r.Error, Refusal: r.Refusal, InputTokens: &in, OutputTokens: &out,
		CostUSD: &cost, Quality: r.Quality, Feedback: r.Feedback, Attrs: r.Attrs,
	}
}

// Late returns the late feedback record r as the application's recorder takes it.
func Late(r Request) record.Late {
	return record.Late{Time: r.TS, Rollout: r.Rollout, RequestID: r.RequestID, Quality: r.Quality, Feedback: r.Feedback,
		Preferred: r.Preferred}
}
