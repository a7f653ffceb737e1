-- aggregates
WITH (SELECT min((toInt64(toUnixTimestamp64Milli(request_created_at)))) FROM request_response_rmt FINAL
  WHERE properties['rollout'] = 'summarizer' AND properties['variant'] IN ('stable', 'canary')
    AND request_created_at >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND request_created_at <= fromUnixTimestamp64Milli(toInt64(1776348000000)) AND (toUInt8(if(properties['variant'] = 'canary', 2, 1))) = 2 AND (toUInt8(match(toString(user_id), '^(?:vip-[^/]*)$'))) = 0) AS start, toUInt64(0) AS late_ids
SELECT toUInt32((toUInt8(match(toString(user_id), '^(?:vip-[^/]*)$')))) * 4096 + toUInt32((toUInt8(if(properties['variant'] = 'canary', 2, 1)))) * 1024 + (toUInt16(if(user_id != '', cityHash64(toString(user_id)), cityHash64(request_id)) % 1024)) AS cell, any(start), any(late_ids),
  count(), sum((toUInt8(properties['shadow'] = 'true'))),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 0),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 1),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 2),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 3),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 4),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 5),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 6),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 1024) % 64), (if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))) != 0 AND intDiv((if(user_id != '', cityHash64(toString(user_id)), toUInt64(0))), 65536) % 8 = 7),
  sum((toUInt8(status < 200 OR status >= 300))),
  count((CAST(NULL AS Nullable(UInt8)))), ifNull(sum((CAST(NULL AS Nullable(UInt8)))), 0),
  count((if(mapContains(scores, 'helicone-score-feedback'), toNullable(if(scores['helicone-score-feedback'] = 1, 1., -1.)), NULL))), countIf(ifNull((if(mapContains(scores, 'helicone-score-feedback'), toNullable(if(scores['helicone-score-feedback'] = 1, 1., -1.)), NULL)), 0) < 0),
  count((toNullable(toFloat64(latency)))), ifNull(sum((toNullable(toFloat64(latency)))), 0), ifNull(sum((toNullable(toFloat64(latency))) * (toNullable(toFloat64(latency)))), 0),
  count((toNullable(cost / 1e+09))), ifNull(sum((toNullable(cost / 1e+09))), 0), ifNull(sum((toNullable(cost / 1e+09)) * (toNullable(cost / 1e+09))), 0),
  count((toNullable(toFloat64(prompt_tokens)))), ifNull(sum((toNullable(toFloat64(prompt_tokens)))), 0), ifNull(sum((toNullable(toFloat64(prompt_tokens))) * (toNullable(toFloat64(prompt_tokens)))), 0),
  count((toNullable(toFloat64(completion_tokens)))), ifNull(sum((toNullable(toFloat64(completion_tokens)))), 0), ifNull(sum((toNullable(toFloat64(completion_tokens))) * (toNullable(toFloat64(completion_tokens)))), 0),
  count((if(mapContains(scores, 'quality'), toNullable(toFloat64(scores['quality'])), NULL))), ifNull(sum((if(mapContains(scores, 'quality'), toNullable(toFloat64(scores['quality'])), NULL))), 0), ifNull(sum((if(mapContains(scores, 'quality'), toNullable(toFloat64(scores['quality'])), NULL)) * (if(mapContains(scores, 'quality'), toNullable(toFloat64(scores['quality'])), NULL))), 0)
FROM request_response_rmt FINAL
  WHERE properties['rollout'] = 'summarizer' AND properties['variant'] IN ('stable', 'canary')
    AND request_created_at >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND request_created_at <= fromUnixTimestamp64Milli(toInt64(1776348000000))
  AND (toInt64(toUnixTimestamp64Milli(request_created_at))) >= start
GROUP BY cell

FORMAT TabSeparated

-- latency bins
WITH (SELECT min((toInt64(toUnixTimestamp64Milli(request_created_at)))) FROM request_response_rmt FINAL
  WHERE properties['rollout'] = 'summarizer' AND properties['variant'] IN ('stable', 'canary')
    AND request_created_at >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND request_created_at <= fromUnixTimestamp64Milli(toInt64(1776348000000)) AND (toUInt8(if(properties['variant'] = 'canary', 2, 1))) = 2 AND (toUInt8(match(toString(user_id), '^(?:vip-[^/]*)$'))) = 0) AS start
SELECT (toUInt32((toUInt8(match(toString(user_id), '^(?:vip-[^/]*)$')))) * 4096 + toUInt32((toUInt8(if(properties['variant'] = 'canary', 2, 1)))) * 1024 + (toUInt16(if(user_id != '', cityHash64(toString(user_id)), cityHash64(request_id)) % 1024))) * 256 + (toUInt8(if(ifNull((toNullable(toFloat64(latency))), 0) <= 1, 0, least(greatest(toInt32(ceil(log(greatest(assumeNotNull((toNullable(toFloat64(latency)))), 1)) / log(1.1))), 1), 199)))) AS cell_bin, count()
FROM request_response_rmt FINAL
  WHERE properties['rollout'] = 'summarizer' AND properties['variant'] IN ('stable', 'canary')
    AND request_created_at >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND request_created_at <= fromUnixTimestamp64Milli(toInt64(1776348000000))
  AND (toInt64(toUnixTimestamp64Milli(request_created_at))) >= start AND (toUInt8(match(toString(user_id), '^(?:vip-[^/]*)$'))) = 0 AND isNotNull((toNullable(toFloat64(latency))))
GROUP BY cell_bin

FORMAT TabSeparated
