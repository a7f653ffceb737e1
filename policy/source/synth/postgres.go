package synth

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Insert copies reqs into the PostgreSQL source's tables (policy/source/postgres/schema.sql): requests into
// llm_requests, late feedback records into llm_feedback.
func Insert(ctx context.Context, conn *pgx.Conn, reqs []Request) error {
	var rows, late [][]any
	for _, r := range reqs {
		var feedback *int16
		if r.Feedback != nil {
			f := int16(*r.Feedback)
			feedback = &f
		}
		if r.Late {
			late = append(late, []any{r.TS, r.Rollout, r.RequestID, feedback, r.Quality})
			continue
		}
		status := "ok"
		if r.Error {
			status = "error"
		}
		rows = append(rows, []any{r.TS, r.Rollout, string(r.Variant), r.Shadow, nullable(r.Key), nullable(r.RequestID), r.Model,
			nullable(r.Prompt), status, r.LatencyMS, int32(r.InputTokens), int32(r.OutputTokens), r.CostUSD, r.Refusal, r.Quality, feedback})
	}
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"llm_requests"},
		[]string{"timestamp", "rollout", "variant", "shadow", "request_key", "request_id", "model_version", "prompt_version",
			"status", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "is_refusal", "quality", "feedback"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("copy into llm_requests: %w", err)
	}
	if len(late) > 0 {
		_, err = conn.CopyFrom(ctx, pgx.Identifier{"llm_feedback"},
			[]string{"timestamp", "rollout", "request_id", "feedback", "quality"}, pgx.CopyFromRows(late))
		if err != nil {
			return fmt.Errorf("copy into llm_feedback: %w", err)
		}
	}
	return nil
}

// nullable is s, or NULL when empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
