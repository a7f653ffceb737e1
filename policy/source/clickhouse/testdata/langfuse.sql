-- aggregates
WITH (SELECT min((toInt64(toUnixTimestamp64Milli(o.start_time)))) FROM observations AS o FINAL
  LEFT JOIN (SELECT id, ifNull(user_id, '') AS user FROM traces FINAL WHERE is_deleted = 0 AND id IN (
      SELECT trace_id FROM observations WHERE type = 'GENERATION' AND metadata['rollout'] = 'summarizer'
        AND start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000)))) AS t
    ON t.id = o.trace_id
  WHERE o.type = 'GENERATION' AND o.is_deleted = 0 AND o.metadata['rollout'] = 'summarizer'
    AND o.metadata['variant'] IN ('stable', 'canary') AND o.start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND o.start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000)) AND (toUInt8(if(o.metadata['variant'] = 'canary', 2, 1))) = 2 AND (toUInt8(match(t.user, '^(?:vip-[^/]*)$'))) = 0) AS start, toUInt64(0) AS late_ids
SELECT toUInt32((toUInt8(match(t.user, '^(?:vip-[^/]*)$')))) * 4096 + toUInt32((toUInt8(if(o.metadata['variant'] = 'canary', 2, 1)))) * 1024 + (toUInt16(if(t.user != '', cityHash64(t.user), cityHash64(o.id)) % 1024)) AS cell, any(start), any(late_ids),
  count(), sum((toUInt8(o.metadata['shadow'] = 'true'))),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 0),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 1),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 2),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 3),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 4),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 5),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 6),
  groupBitOrIf(bitShiftLeft(toUInt64(1), intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 1024) % 64), (if(t.user != '', cityHash64(t.user), toUInt64(0))) != 0 AND intDiv((if(t.user != '', cityHash64(t.user), toUInt64(0))), 65536) % 8 = 7),
  sum((toUInt8(o.level = 'ERROR'))),
  count((CAST(NULL AS Nullable(UInt8)))), ifNull(sum((CAST(NULL AS Nullable(UInt8)))), 0),
  count((toNullable(toFloat64(coalesce(so.feedback, st.feedback))))), countIf(ifNull((toNullable(toFloat64(coalesce(so.feedback, st.feedback)))), 0) < 0),
  count((if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time))))))), ifNull(sum((if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time))))))), 0), ifNull(sum((if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)))))) * (if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time))))))), 0),
  count((toNullable(toFloat64(coalesce(o.total_cost, if(mapContains(o.cost_details, 'total'), o.cost_details['total'], NULL)))))), ifNull(sum((toNullable(toFloat64(coalesce(o.total_cost, if(mapContains(o.cost_details, 'total'), o.cost_details['total'], NULL)))))), 0), ifNull(sum((toNullable(toFloat64(coalesce(o.total_cost, if(mapContains(o.cost_details, 'total'), o.cost_details['total'], NULL))))) * (toNullable(toFloat64(coalesce(o.total_cost, if(mapContains(o.cost_details, 'total'), o.cost_details['total'], NULL)))))), 0),
  count((if(mapContains(o.usage_details, 'input'), toNullable(toFloat64(o.usage_details['input'])), NULL))), ifNull(sum((if(mapContains(o.usage_details, 'input'), toNullable(toFloat64(o.usage_details['input'])), NULL))), 0), ifNull(sum((if(mapContains(o.usage_details, 'input'), toNullable(toFloat64(o.usage_details['input'])), NULL)) * (if(mapContains(o.usage_details, 'input'), toNullable(toFloat64(o.usage_details['input'])), NULL))), 0),
  count((if(mapContains(o.usage_details, 'output'), toNullable(toFloat64(o.usage_details['output'])), NULL))), ifNull(sum((if(mapContains(o.usage_details, 'output'), toNullable(toFloat64(o.usage_details['output'])), NULL))), 0), ifNull(sum((if(mapContains(o.usage_details, 'output'), toNullable(toFloat64(o.usage_details['output'])), NULL)) * (if(mapContains(o.usage_details, 'output'), toNullable(toFloat64(o.usage_details['output'])), NULL))), 0),
  count((toNullable(toFloat64(coalesce(so.quality, st.quality))))), ifNull(sum((toNullable(toFloat64(coalesce(so.quality, st.quality))))), 0), ifNull(sum((toNullable(toFloat64(coalesce(so.quality, st.quality)))) * (toNullable(toFloat64(coalesce(so.quality, st.quality))))), 0)
FROM observations AS o FINAL
  LEFT JOIN (SELECT id, ifNull(user_id, '') AS user FROM traces FINAL WHERE is_deleted = 0 AND id IN (
      SELECT trace_id FROM observations WHERE type = 'GENERATION' AND metadata['rollout'] = 'summarizer'
        AND start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000)))) AS t
    ON t.id = o.trace_id
  LEFT JOIN (SELECT assumeNotNull(observation_id) AS observation_id, if(countIf(name = 'quality') > 0, avgIf(value, name = 'quality'), NULL) AS quality,
      if(countIf(name = 'feedback') > 0, argMaxIf(value, timestamp, name = 'feedback'), NULL) AS feedback
    FROM scores FINAL WHERE is_deleted = 0 AND isNotNull(observation_id) AND name IN ('quality', 'feedback') AND timestamp >= fromUnixTimestamp64Milli(toInt64(1776333600000))
    GROUP BY observation_id) AS so ON so.observation_id = o.id
  LEFT JOIN (SELECT trace_id, if(countIf(name = 'quality') > 0, avgIf(value, name = 'quality'), NULL) AS quality,
      if(countIf(name = 'feedback') > 0, argMaxIf(value, timestamp, name = 'feedback'), NULL) AS feedback
    FROM scores FINAL WHERE is_deleted = 0 AND isNull(observation_id) AND name IN ('quality', 'feedback') AND timestamp >= fromUnixTimestamp64Milli(toInt64(1776333600000))
    GROUP BY trace_id) AS st ON st.trace_id = o.trace_id
  WHERE o.type = 'GENERATION' AND o.is_deleted = 0 AND o.metadata['rollout'] = 'summarizer'
    AND o.metadata['variant'] IN ('stable', 'canary') AND o.start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND o.start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000))
  AND (toInt64(toUnixTimestamp64Milli(o.start_time))) >= start
GROUP BY cell
SETTINGS join_use_nulls = 1
FORMAT TabSeparated

-- latency bins
WITH (SELECT min((toInt64(toUnixTimestamp64Milli(o.start_time)))) FROM observations AS o FINAL
  LEFT JOIN (SELECT id, ifNull(user_id, '') AS user FROM traces FINAL WHERE is_deleted = 0 AND id IN (
      SELECT trace_id FROM observations WHERE type = 'GENERATION' AND metadata['rollout'] = 'summarizer'
        AND start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000)))) AS t
    ON t.id = o.trace_id
  WHERE o.type = 'GENERATION' AND o.is_deleted = 0 AND o.metadata['rollout'] = 'summarizer'
    AND o.metadata['variant'] IN ('stable', 'canary') AND o.start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND o.start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000)) AND (toUInt8(if(o.metadata['variant'] = 'canary', 2, 1))) = 2 AND (toUInt8(match(t.user, '^(?:vip-[^/]*)$'))) = 0) AS start
SELECT (toUInt32((toUInt8(match(t.user, '^(?:vip-[^/]*)$')))) * 4096 + toUInt32((toUInt8(if(o.metadata['variant'] = 'canary', 2, 1)))) * 1024 + (toUInt16(if(t.user != '', cityHash64(t.user), cityHash64(o.id)) % 1024))) * 256 + (toUInt8(if(ifNull((if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)))))), 0) <= 1, 0, least(greatest(toInt32(ceil(log(greatest(assumeNotNull((if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time))))))), 1)) / log(1.1))), 1), 199)))) AS cell_bin, count()
FROM observations AS o FINAL
  LEFT JOIN (SELECT id, ifNull(user_id, '') AS user FROM traces FINAL WHERE is_deleted = 0 AND id IN (
      SELECT trace_id FROM observations WHERE type = 'GENERATION' AND metadata['rollout'] = 'summarizer'
        AND start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000)))) AS t
    ON t.id = o.trace_id
  WHERE o.type = 'GENERATION' AND o.is_deleted = 0 AND o.metadata['rollout'] = 'summarizer'
    AND o.metadata['variant'] IN ('stable', 'canary') AND o.start_time >= fromUnixTimestamp64Milli(toInt64(1776333600000)) AND o.start_time <= fromUnixTimestamp64Milli(toInt64(1776348000000))
  AND (toInt64(toUnixTimestamp64Milli(o.start_time))) >= start AND (toUInt8(match(t.user, '^(?:vip-[^/]*)$'))) = 0 AND isNotNull((if(isNull(o.end_time), NULL, toNullable(toFloat64(dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)))))))
GROUP BY cell_bin
SETTINGS join_use_nulls = 1
FORMAT TabSeparated
