package synth

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// Insert copies reqs into the PostgreSQL source's tables (policy/source/postgres/schema.sql): requests into
// llm_requests, late feedback records into llm_feedback. The requests' attrs go to text columns of
// their names, added to llm_requests when missing, as a team adds the columns its analysis.segments
// name. Late records carry their pairwise verdicts (llm_feedback.preferred).
func Insert(ctx context.Context, conn *pgx.Conn, reqs []Request) error {
	attrs := attrNames(reqs)
	for _, name := range attrs {
		if _, err := conn.Exec(ctx, "ALTER TABLE llm_requests ADD COLUMN IF NOT EXISTS "+pgx.Identifier{name}.Sanitize()+" text"); err != nil {
			return fmt.Errorf("add column %s: %w", name, err)
		}
	}
	var rows, late [][]any
	for _, r := range reqs {
		var feedback *int16
		if r.Feedback != nil {
			f := int16(*r.Feedback)
			feedback = &f
		}
		if r.Late {
			late = append(late, []any{r.TS, r.Rollout, r.RequestID, feedback, r.Quality, nullable(r.Preferred)})
			continue
		}
		status := "ok"
		if r.Error {
			status = "error"
		}
		row := []any{r.TS, r.Rollout, string(r.Variant), r.Shadow, nullable(r.Key), nullable(r.RequestID), r.Model,
			nullable(r.Prompt), status, r.LatencyMS, int32(r.InputTokens), int32(r.OutputTokens), r.CostUSD, r.Refusal, r.Quality, feedback}
		for _, name := range attrs {
			row = append(row, nullable(r.Attrs[name]))
		}
		rows = append(rows, row)
	}
	columns := []string{"timestamp", "rollout", "variant", "shadow", "request_key", "request_id", "model_version", "prompt_version",
		"status", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "is_refusal", "quality", "feedback"}
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"llm_requests"}, append(columns, attrs...), pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("copy into llm_requests: %w", err)
	}
	if len(late) > 0 {
		_, err = conn.CopyFrom(ctx, pgx.Identifier{"llm_feedback"},
			[]string{"timestamp", "rollout", "request_id", "feedback", "quality", "preferred"}, pgx.CopyFromRows(late))
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

// attrNames returns the attribute names reqs carry, sorted.
func attrNames(reqs []Request) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reqs {
		for name := range r.Attrs {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}
