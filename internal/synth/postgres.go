package synth

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Insert copies reqs into the llm_requests table (source/postgres/schema.sql).
func Insert(ctx context.Context, conn *pgx.Conn, reqs []Request) error {
	rows := make([][]any, len(reqs))
	for i, r := range reqs {
		status := "ok"
		if r.Error {
			status = "error"
		}
		var feedback *int16
		if r.Feedback != nil {
			f := int16(*r.Feedback)
			feedback = &f
		}
		rows[i] = []any{r.TS, r.Rollout, string(r.Variant), r.Shadow, r.Key, r.Model, status, r.LatencyMS,
			int32(r.InputTokens), int32(r.OutputTokens), r.CostUSD, r.Refusal, r.Quality, feedback}
	}
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"llm_requests"},
		[]string{"timestamp", "rollout", "variant", "shadow", "request_key", "model_version", "status", "latency_ms",
			"input_tokens", "output_tokens", "cost_usd", "is_refusal", "quality", "feedback"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("copy into llm_requests: %w", err)
	}
	return nil
}
