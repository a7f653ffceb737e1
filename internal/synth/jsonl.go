package synth

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// jsonRecord is the contract's request record (CONTRACT.md, "Request records").
type jsonRecord struct {
	TS           string   `json:"ts"`
	Rollout      string   `json:"rollout"`
	Variant      string   `json:"variant"`
	Shadow       bool     `json:"shadow,omitempty"`
	Key          string   `json:"key"`
	Model        string   `json:"model"`
	LatencyMS    float64  `json:"latency_ms"`
	Error        bool     `json:"error"`
	Refusal      bool     `json:"refusal"`
	InputTokens  int      `json:"input_tokens"`
	OutputTokens int      `json:"output_tokens"`
	CostUSD      float64  `json:"cost_usd"`
	Quality      *float64 `json:"quality,omitempty"`
	Feedback     *int     `json:"feedback,omitempty"`
}

// WriteJSONL writes reqs as the contract's JSON Lines records, one request a line.
func WriteJSONL(w io.Writer, reqs []Request) error {
	enc := json.NewEncoder(w)
	for _, r := range reqs {
		rec := jsonRecord{TS: r.TS.UTC().Format(time.RFC3339Nano), Rollout: r.Rollout, Variant: string(r.Variant), Shadow: r.Shadow,
			Key: r.Key, Model: r.Model, LatencyMS: r.LatencyMS, Error: r.Error, Refusal: r.Refusal,
			InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, CostUSD: r.CostUSD, Quality: r.Quality, Feedback: r.Feedback}
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("write record: %w", err)
		}
	}
	return nil
}
