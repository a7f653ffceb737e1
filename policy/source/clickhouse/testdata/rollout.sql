-- aggregates
WITH (SELECT min((toInt64(toUnixTimestamp(ts)) * 1000)) FROM llm_requests
  WHERE rollout = 'summarizer' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000) AND variant != '' AND (toUInt8(variant)) = 2 AND (toUInt8(match(key, '^(?:vip-[^/]*)$'))) = 0) AS start, (SELECT uniqExact(request_id) FROM llm_requests WHERE rollout = 'summarizer' AND variant = '' AND request_id != '' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000)) AS late_ids
SELECT toUInt32((toUInt8(match(key, '^(?:vip-[^/]*)$')))) * 4096 + toUInt32((toUInt8(variant))) * 1024 + (key_bucket) AS cell, any(start), any(late_ids),
  count(), sum((shadow)),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 0),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 1),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 2),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 3),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 4),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 5),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 6),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 7),
  sum((error)),
  count((toNullable(refusal))), ifNull(sum((toNullable(refusal))), 0),
  count((toNullable(toFloat64(feedback)))), countIf(ifNull((toNullable(toFloat64(feedback))), 0) < 0),
  count((latency_ms)), ifNull(sum((latency_ms)), 0), ifNull(sum((latency_ms) * (latency_ms)), 0),
  count((cost_usd)), ifNull(sum((cost_usd)), 0), ifNull(sum((cost_usd) * (cost_usd)), 0),
  count((toNullable(toFloat64(input_tokens)))), ifNull(sum((toNullable(toFloat64(input_tokens)))), 0), ifNull(sum((toNullable(toFloat64(input_tokens))) * (toNullable(toFloat64(input_tokens)))), 0),
  count((toNullable(toFloat64(output_tokens)))), ifNull(sum((toNullable(toFloat64(output_tokens)))), 0), ifNull(sum((toNullable(toFloat64(output_tokens))) * (toNullable(toFloat64(output_tokens)))), 0),
  count((quality)), ifNull(sum((quality)), 0), ifNull(sum((quality) * (quality)), 0)
FROM llm_requests
  WHERE rollout = 'summarizer' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000) AND variant != ''
  AND (toInt64(toUnixTimestamp(ts)) * 1000) >= start
GROUP BY cell

FORMAT TabSeparated

-- latency bins
WITH (SELECT min((toInt64(toUnixTimestamp(ts)) * 1000)) FROM llm_requests
  WHERE rollout = 'summarizer' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000) AND variant != '' AND (toUInt8(variant)) = 2 AND (toUInt8(match(key, '^(?:vip-[^/]*)$'))) = 0) AS start
SELECT (toUInt32((toUInt8(match(key, '^(?:vip-[^/]*)$')))) * 4096 + toUInt32((toUInt8(variant))) * 1024 + (key_bucket)) * 256 + (latency_bin) AS cell_bin, count()
FROM llm_requests
  WHERE rollout = 'summarizer' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000) AND variant != ''
  AND (toInt64(toUnixTimestamp(ts)) * 1000) >= start AND (toUInt8(match(key, '^(?:vip-[^/]*)$'))) = 0 AND isNotNull((latency_ms))
GROUP BY cell_bin

FORMAT TabSeparated

-- late records (only when the aggregates found some)
WITH (SELECT min((toInt64(toUnixTimestamp(ts)) * 1000)) FROM llm_requests
  WHERE rollout = 'summarizer' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000) AND variant != '' AND (toUInt8(variant)) = 2 AND (toUInt8(match(key, '^(?:vip-[^/]*)$'))) = 0) AS start
SELECT toUInt32((toUInt8(match(key, '^(?:vip-[^/]*)$')))) * 4096 + toUInt32((toUInt8(variant))) * 1024 + (key_bucket) AS cell, count(),
  count((if(isNotNull(late_feedback), toNullable(toFloat64(late_feedback)), toNullable(toFloat64(feedback))))) - count((toNullable(toFloat64(feedback)))), countIf(ifNull((if(isNotNull(late_feedback), toNullable(toFloat64(late_feedback)), toNullable(toFloat64(feedback)))), 0) < 0) - countIf(ifNull((toNullable(toFloat64(feedback))), 0) < 0),
  count((if(isNotNull(late_quality), late_quality, quality))) - count((quality)), ifNull(sum((if(isNotNull(late_quality), late_quality, quality))), 0) - ifNull(sum((quality)), 0),
  ifNull(sum((if(isNotNull(late_quality), late_quality, quality)) * (if(isNotNull(late_quality), late_quality, quality))), 0) - ifNull(sum((quality) * (quality)), 0)
FROM llm_requests
  ANY INNER JOIN (
    SELECT request_id, argMaxIf(feedback, ts, isNotNull(feedback)) AS late_feedback,
      argMaxIf(quality, ts, isNotNull(quality)) AS late_quality
    FROM llm_requests
    WHERE rollout = 'summarizer' AND variant = '' AND request_id != '' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000)
    GROUP BY request_id) AS late USING request_id
  WHERE rollout = 'summarizer' AND ts >= toDateTime(1776333600) AND ts <= toDateTime(1776348000) AND variant != ''
  AND (toInt64(toUnixTimestamp(ts)) * 1000) >= start
GROUP BY cell

FORMAT TabSeparated

-- with the rollup: is it there, and since when
SELECT count(), toInt64(toUnixTimestamp(max(metadata_modification_time))) FROM system.tables
WHERE database = currentDatabase() AND name IN ('llm_requests_rollup', 'llm_requests_rollup_mv', 'llm_requests_rollup_latency', 'llm_requests_rollup_latency_mv')
FORMAT TabSeparated

-- with the rollup: the first canary record
SELECT toInt64(min(t)), (SELECT count() FROM llm_requests
    WHERE rollout = 'summarizer' AND variant != '' AND ts > toDateTime(1776348000) AND ts < toDateTime(1776351600))
FROM (
  SELECT toInt64(toUnixTimestamp(ts)) * 1000 AS t FROM llm_requests
  WHERE rollout = 'summarizer' AND variant != '' AND (ts >= toDateTime(1776334020) AND ts < toDateTime(1776337200) OR ts >= toDateTime(1776348000) AND ts <= toDateTime(1776348000)) AND variant = 'canary'
  UNION ALL
  SELECT toInt64(toUnixTimestamp(minMerge(first_ts))) * 1000 AS t FROM llm_requests_rollup
  WHERE rollout = 'summarizer' AND variant != '' AND hour >= toDateTime(1776337200) AND hour < toDateTime(1776348000) AND variant = 'canary'
  HAVING countMerge(requests) > 0)
FORMAT TabSeparated

-- with the rollup: aggregates
WITH (SELECT uniqExact(request_id) FROM llm_requests WHERE rollout = 'summarizer' AND variant = '' AND request_id != '' AND ts >= toDateTime(1776334020) AND ts <= toDateTime(1776348000)) AS late_ids
SELECT cell, toInt64(1776334170000), any(late_ids),
  sum(c0), sum(c1), groupBitOr(c2), groupBitOr(c3), groupBitOr(c4), groupBitOr(c5), groupBitOr(c6), groupBitOr(c7), groupBitOr(c8), groupBitOr(c9), sum(c10), sum(c11), sum(c12), sum(c13), sum(c14), sum(c15), sum(c16), sum(c17), sum(c18), sum(c19), sum(c20), sum(c21), sum(c22), sum(c23), sum(c24), sum(c25), sum(c26), sum(c27), sum(c28), sum(c29)
FROM (
  SELECT toUInt32(variant) * 1024 + key_bucket AS cell,
    toFloat64(countMerge(requests)) AS c0,
    sumMerge(shadow) AS c1,
    groupBitOrMerge(keys0) AS c2,
    groupBitOrMerge(keys1) AS c3,
    groupBitOrMerge(keys2) AS c4,
    groupBitOrMerge(keys3) AS c5,
    groupBitOrMerge(keys4) AS c6,
    groupBitOrMerge(keys5) AS c7,
    groupBitOrMerge(keys6) AS c8,
    groupBitOrMerge(keys7) AS c9,
    sumMerge(errors) AS c10,
    toFloat64(countMerge(requests)) AS c11,
    sumMerge(refusals) AS c12,
    sumMerge(feedback_n) AS c13,
    sumMerge(feedback_neg) AS c14,
    sumMerge(latency_n) AS c15,
    sumMerge(latency_sum) AS c16,
    sumMerge(latency_sumsq) AS c17,
    sumMerge(cost_n) AS c18,
    sumMerge(cost_sum) AS c19,
    sumMerge(cost_sumsq) AS c20,
    sumMerge(in_tok_n) AS c21,
    sumMerge(in_tok_sum) AS c22,
    sumMerge(in_tok_sumsq) AS c23,
    sumMerge(out_tok_n) AS c24,
    sumMerge(out_tok_sum) AS c25,
    sumMerge(out_tok_sumsq) AS c26,
    sumMerge(quality_n) AS c27,
    sumMerge(quality_sum) AS c28,
    sumMerge(quality_sumsq) AS c29
  FROM llm_requests_rollup
  WHERE rollout = 'summarizer' AND variant != '' AND hour >= toDateTime(1776337200) AND hour < toDateTime(1776348000)
  GROUP BY cell
  UNION ALL
  SELECT toUInt32((toUInt8(0))) * 4096 + toUInt32((toUInt8(variant))) * 1024 + (key_bucket) AS cell,
    toFloat64(count()) AS c0,
    toFloat64(sum((shadow))) AS c1,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 0) AS c2,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 1) AS c3,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 2) AS c4,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 3) AS c5,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 4) AS c6,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 5) AS c7,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 6) AS c8,
    groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((key_hash), 1024) % 64), (key_hash) != 0 AND intDiv((key_hash), 65536) % 8 = 7) AS c9,
    toFloat64(sum((error))) AS c10,
    toFloat64(count((toNullable(refusal)))) AS c11,
    toFloat64(ifNull(sum((toNullable(refusal))), 0)) AS c12,
    toFloat64(count((toNullable(toFloat64(feedback))))) AS c13,
    toFloat64(countIf(ifNull((toNullable(toFloat64(feedback))), 0) < 0)) AS c14,
    toFloat64(count((latency_ms))) AS c15,
    toFloat64(ifNull(sum((latency_ms)), 0)) AS c16,
    toFloat64(ifNull(sum((latency_ms) * (latency_ms)), 0)) AS c17,
    toFloat64(count((cost_usd))) AS c18,
    toFloat64(ifNull(sum((cost_usd)), 0)) AS c19,
    toFloat64(ifNull(sum((cost_usd) * (cost_usd)), 0)) AS c20,
    toFloat64(count((toNullable(toFloat64(input_tokens))))) AS c21,
    toFloat64(ifNull(sum((toNullable(toFloat64(input_tokens)))), 0)) AS c22,
    toFloat64(ifNull(sum((toNullable(toFloat64(input_tokens))) * (toNullable(toFloat64(input_tokens)))), 0)) AS c23,
    toFloat64(count((toNullable(toFloat64(output_tokens))))) AS c24,
    toFloat64(ifNull(sum((toNullable(toFloat64(output_tokens)))), 0)) AS c25,
    toFloat64(ifNull(sum((toNullable(toFloat64(output_tokens))) * (toNullable(toFloat64(output_tokens)))), 0)) AS c26,
    toFloat64(count((quality))) AS c27,
    toFloat64(ifNull(sum((quality)), 0)) AS c28,
    toFloat64(ifNull(sum((quality) * (quality)), 0)) AS c29
  FROM llm_requests
  WHERE rollout = 'summarizer' AND variant != '' AND (ts >= toDateTime(1776334170) AND ts < toDateTime(1776337200) OR ts >= toDateTime(1776348000) AND ts <= toDateTime(1776348000))
  GROUP BY cell)
GROUP BY cell
FORMAT TabSeparated

-- with the rollup: latency bins
SELECT (toUInt32(variant) * 1024 + key_bucket) * 256 + latency_bin AS cell_bin, sum(requests) AS n
FROM llm_requests_rollup_latency
WHERE rollout = 'summarizer' AND variant != '' AND hour >= toDateTime(1776337200) AND hour < toDateTime(1776348000)
GROUP BY cell_bin
UNION ALL
SELECT (toUInt32((toUInt8(0))) * 4096 + toUInt32((toUInt8(variant))) * 1024 + (key_bucket)) * 256 + (latency_bin) AS cell_bin, count() AS n
FROM llm_requests
WHERE rollout = 'summarizer' AND variant != '' AND (ts >= toDateTime(1776334170) AND ts < toDateTime(1776337200) OR ts >= toDateTime(1776348000) AND ts <= toDateTime(1776348000)) AND isNotNull(latency_ms)
GROUP BY cell_bin
FORMAT TabSeparated
