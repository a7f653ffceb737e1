-- The hourly rollup of llm_requests (schema.sql) that rollout's clickhouse:// source reads when it is
-- there, so that a tick over a day of a large application's traffic reads a few hundred thousand
-- pre-aggregated rows instead of every request. ClickHouse keeps it: each INSERT into llm_requests also
-- aggregates its rows, per rollout, variant, hour and key bucket, into llm_requests_rollup (counts,
-- sums, sums of squares, the first request's time and the distinct-key bitmap, as AggregatingMergeTree
-- states), and per hour, key bucket and latency bin into llm_requests_rollup_latency. It runs on
-- ClickHouse 18.16 and later:
--
--   clickhouse-client --multiquery < rollup.sql        (after schema.sql)
--
-- A tick reads the whole hours of its window from the rollup (and its last, partial hour when nothing in
-- it is newer than the window's end) and only the minutes left at the ends from llm_requests. It reads an hour from the rollup only when the hour began at least two hours after
-- the rollup's tables and views were created (system.tables' metadata_modification_time), so rows
-- inserted before the views existed are never missed; it reads llm_requests alone for a spec whose
-- assignment has include or exclude globs (the rollup cannot tell those keys apart). Deleting rows of
-- llm_requests (ALTER … DELETE) does not delete them from the rollup: drop the rollup's tables and views
-- and run this file again after such a change. Inserts cost about twice as much with the views in place.

CREATE TABLE IF NOT EXISTS llm_requests_rollup (
    rollout       String,
    variant       Enum8('' = 0, 'stable' = 1, 'canary' = 2),
    hour          DateTime,
    key_bucket    UInt16,
    first_ts      AggregateFunction(min, DateTime),
    requests      AggregateFunction(count),
    shadow        AggregateFunction(sum, Float64),
    keys0 AggregateFunction(groupBitOr, UInt64), keys1 AggregateFunction(groupBitOr, UInt64),
    keys2 AggregateFunction(groupBitOr, UInt64), keys3 AggregateFunction(groupBitOr, UInt64),
    keys4 AggregateFunction(groupBitOr, UInt64), keys5 AggregateFunction(groupBitOr, UInt64),
    keys6 AggregateFunction(groupBitOr, UInt64), keys7 AggregateFunction(groupBitOr, UInt64),
    errors        AggregateFunction(sum, Float64),
    refusals      AggregateFunction(sum, Float64),
    feedback_n    AggregateFunction(sum, Float64),
    feedback_neg  AggregateFunction(sum, Float64),
    latency_n     AggregateFunction(sum, Float64),
    latency_sum   AggregateFunction(sum, Float64),
    latency_sumsq AggregateFunction(sum, Float64),
    cost_n        AggregateFunction(sum, Float64),
    cost_sum      AggregateFunction(sum, Float64),
    cost_sumsq    AggregateFunction(sum, Float64),
    in_tok_n      AggregateFunction(sum, Float64),
    in_tok_sum    AggregateFunction(sum, Float64),
    in_tok_sumsq  AggregateFunction(sum, Float64),
    out_tok_n     AggregateFunction(sum, Float64),
    out_tok_sum   AggregateFunction(sum, Float64),
    out_tok_sumsq AggregateFunction(sum, Float64),
    quality_n     AggregateFunction(sum, Float64),
    quality_sum   AggregateFunction(sum, Float64),
    quality_sumsq AggregateFunction(sum, Float64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (rollout, variant, hour, key_bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_requests_rollup_mv TO llm_requests_rollup AS
SELECT rollout, variant, toStartOfHour(ts) AS hour, key_bucket,
    minState(ts) AS first_ts, countState() AS requests, sumState(toFloat64(shadow)) AS shadow,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 0) AS keys0,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 1) AS keys1,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 2) AS keys2,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 3) AS keys3,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 4) AS keys4,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 5) AS keys5,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 6) AS keys6,
    groupBitOrStateIf(bitShiftLeft(toUInt64(1), intDiv(key_hash, 1024) % 64), key_hash != 0 AND intDiv(key_hash, 65536) % 8 = 7) AS keys7,
    sumState(toFloat64(error)) AS errors, sumState(toFloat64(refusal)) AS refusals,
    sumState(toFloat64(isNotNull(feedback))) AS feedback_n, sumState(toFloat64(ifNull(feedback, 0) < 0)) AS feedback_neg,
    sumState(toFloat64(isNotNull(latency_ms))) AS latency_n, sumState(ifNull(latency_ms, 0)) AS latency_sum,
    sumState(ifNull(latency_ms * latency_ms, 0)) AS latency_sumsq,
    sumState(toFloat64(isNotNull(cost_usd))) AS cost_n, sumState(ifNull(cost_usd, 0)) AS cost_sum,
    sumState(ifNull(cost_usd * cost_usd, 0)) AS cost_sumsq,
    sumState(toFloat64(isNotNull(input_tokens))) AS in_tok_n, sumState(toFloat64(ifNull(input_tokens, 0))) AS in_tok_sum,
    sumState(toFloat64(ifNull(input_tokens, 0)) * ifNull(input_tokens, 0)) AS in_tok_sumsq,
    sumState(toFloat64(isNotNull(output_tokens))) AS out_tok_n, sumState(toFloat64(ifNull(output_tokens, 0))) AS out_tok_sum,
    sumState(toFloat64(ifNull(output_tokens, 0)) * ifNull(output_tokens, 0)) AS out_tok_sumsq,
    sumState(toFloat64(isNotNull(quality))) AS quality_n, sumState(ifNull(quality, 0)) AS quality_sum,
    sumState(ifNull(quality * quality, 0)) AS quality_sumsq
FROM llm_requests
WHERE variant != ''
GROUP BY rollout, variant, hour, key_bucket;

CREATE TABLE IF NOT EXISTS llm_requests_rollup_latency (
    rollout     String,
    variant     Enum8('' = 0, 'stable' = 1, 'canary' = 2),
    hour        DateTime,
    key_bucket  UInt16,
    latency_bin UInt8,
    requests    UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (rollout, variant, hour, key_bucket, latency_bin);

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_requests_rollup_latency_mv TO llm_requests_rollup_latency AS
SELECT rollout, variant, toStartOfHour(ts) AS hour, key_bucket, latency_bin, count() AS requests
FROM llm_requests
WHERE variant != '' AND isNotNull(latency_ms)
GROUP BY rollout, variant, hour, key_bucket, latency_bin;
