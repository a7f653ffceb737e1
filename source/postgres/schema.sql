-- The llm_requests table that rollout's postgres:// source reads: one row per LLM request.
-- The columns of the canary guide (model_version, status, latency_ms, input_tokens, output_tokens,
-- cost_usd, is_refusal, timestamp), plus what tells the arms of a rollout apart (rollout, variant,
-- shadow) and the quality and feedback signals. NULL in an optional column means "not measured": that
-- request is left out of that metric, never counted as zero.
CREATE TABLE IF NOT EXISTS llm_requests (
    id             bigserial        PRIMARY KEY,
    "timestamp"    timestamptz      NOT NULL,
    rollout        text             NOT NULL,                -- the spec's name
    variant        text             NOT NULL CHECK (variant IN ('stable', 'canary')),
    shadow         boolean          NOT NULL DEFAULT false,  -- a mirrored canary call; users saw stable
    request_key    text,                                     -- the assignment key (user_id, …)
    model_version  text             NOT NULL,
    prompt_version text,
    status         text             NOT NULL,                -- 'ok'; anything else is an error
    latency_ms     double precision,
    input_tokens   integer,
    output_tokens  integer,
    cost_usd       double precision,
    is_refusal     boolean          NOT NULL DEFAULT false,
    quality        double precision,                         -- a score in [0, 1]
    feedback       smallint         CHECK (feedback IN (-1, 0, 1))  -- negative, neutral, positive
);

-- Every query of the source filters on one rollout and a time window.
CREATE INDEX IF NOT EXISTS llm_requests_rollout_timestamp ON llm_requests (rollout, "timestamp");
