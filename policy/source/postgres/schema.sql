-- The tables that rollout's postgres:// source reads.
--
-- llm_requests: one row per LLM request. The columns of the canary guide (model_version, status,
-- latency_ms, input_tokens, output_tokens, cost_usd, is_refusal, timestamp), plus what tells the arms of
-- a rollout apart (rollout, variant, shadow), the assignment key and the request's id, and the quality
-- and feedback signals. NULL in an optional column means "not measured": that request is left out of
-- that metric, never counted as zero.
CREATE TABLE IF NOT EXISTS llm_requests (
    id             bigserial        PRIMARY KEY,
    "timestamp"    timestamptz      NOT NULL,
    rollout        text             NOT NULL,                -- the spec's name
    variant        text             NOT NULL CHECK (variant IN ('stable', 'canary')),
    shadow         boolean          NOT NULL DEFAULT false,  -- a mirrored canary call; users saw stable
    request_key    text,                                     -- the assignment key (user_id, …): the unit of analysis
    request_id     text,                                     -- the request's id, for late feedback (llm_feedback)
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
-- A table made before request_id existed gains it.
ALTER TABLE llm_requests ADD COLUMN IF NOT EXISTS request_id text;

-- Every query of the source filters on one rollout and a time window; late feedback finds its request
-- by request_id.
CREATE INDEX IF NOT EXISTS llm_requests_rollout_timestamp ON llm_requests (rollout, "timestamp");
CREATE INDEX IF NOT EXISTS llm_requests_rollout_request_id ON llm_requests (rollout, request_id);

-- llm_feedback: feedback or a score that arrived after its request (a thumbs-down minutes later, an
-- LLM-as-judge score). It attaches to the llm_requests row of the same rollout and request_id: that
-- request's arm, key and window; the latest value of each column wins over the request's own. A row
-- whose request_id matches no request is counted and reported (Stats.LateUnmatched), never guessed.
CREATE TABLE IF NOT EXISTS llm_feedback (
    id          bigserial   PRIMARY KEY,
    "timestamp" timestamptz NOT NULL,
    rollout     text        NOT NULL,
    request_id  text        NOT NULL,
    feedback    smallint    CHECK (feedback IN (-1, 0, 1)),
    quality     double precision,
    -- a pairwise verdict: which arm's answer a judge preferred for the request's input
    preferred   text        CHECK (preferred IN ('canary', 'stable', 'tie')),
    CHECK (feedback IS NOT NULL OR quality IS NOT NULL OR preferred IS NOT NULL)
);
-- A table made before pairwise verdicts existed gains them.
ALTER TABLE llm_feedback ADD COLUMN IF NOT EXISTS preferred text CHECK (preferred IN ('canary', 'stable', 'tie'));
ALTER TABLE llm_feedback DROP CONSTRAINT IF EXISTS llm_feedback_check;
ALTER TABLE llm_feedback ADD CONSTRAINT llm_feedback_check CHECK (feedback IS NOT NULL OR quality IS NOT NULL OR preferred IS NOT NULL);
CREATE INDEX IF NOT EXISTS llm_feedback_rollout_timestamp ON llm_feedback (rollout, "timestamp");
