-- The llm_requests table that rollout's clickhouse:// source reads with metrics.schema: rollout (the
-- default): one row per LLM request, the request record's fields as columns. It runs on ClickHouse 18.16
-- and later (no Map, LowCardinality or DateTime64 needed). NULL in an optional column means "not
-- measured": that request is left out of that metric, never counted as zero.
--
-- A late feedback or score record ({"ts", "rollout", "request_id", "feedback"|"quality"}) is a row whose
-- variant is '' (the default): the source attaches it to the request with the same request_id.
--
-- key_bucket and latency_bin are computed once, on insert, so that a tick over millions of rows reads two
-- small integers instead of hashing every key and taking the logarithm of every latency again.
CREATE TABLE IF NOT EXISTS llm_requests (
    ts            DateTime,                                       -- when the request was made (UTC)
    rollout       String,                                         -- the spec's name
    variant       Enum8('' = 0, 'stable' = 1, 'canary' = 2),      -- '' marks a late feedback/score record
    shadow        UInt8 DEFAULT 0,                                -- a mirrored canary call; users saw stable
    key           String DEFAULT '',                              -- the assignment key (user_id, …)
    request_id    String DEFAULT '',
    model         String DEFAULT '',
    prompt        String DEFAULT '',
    latency_ms    Nullable(Float64),
    error         UInt8 DEFAULT 0,
    refusal       UInt8 DEFAULT 0,
    input_tokens  Nullable(UInt32),
    output_tokens Nullable(UInt32),
    cost_usd      Nullable(Float64),
    quality       Nullable(Float64),                              -- a score in [0, 1]
    feedback      Nullable(Int8),                                 -- -1 negative, 0 neutral, 1 positive
    -- policy.KeyBucket's role: every request of one key in one of 1024 buckets.
    key_bucket    UInt16 MATERIALIZED cityHash64(key) % 1024,
    key_hash      UInt64 MATERIALIZED cityHash64(key),
    -- policy.QuantileBin: 0 for ≤ 1 ms, else ceil(log(v)/log(1.1)) within [1, 199].
    latency_bin   UInt8 MATERIALIZED if(ifNull(latency_ms, 0) <= 1, 0,
                      least(greatest(toInt32(ceil(log(greatest(assumeNotNull(latency_ms), 1)) / log(1.1))), 1), 199))
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (rollout, variant, ts);
