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
