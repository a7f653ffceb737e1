// Times DuckDB on the same file and the same statistics as BenchmarkStats1M: per variant and key
// bucket, the counts, sums and sums of squares of every built-in metric, distinct keys, and latency
// quantiles per variant. Usage: node bench.mjs FILE FROM TO RUNS; prints one line per run:
// "duckdb-ms <milliseconds> rows <n>". Run by BenchmarkDuckDB1M with DUCKDB_NODE_PATH set to a
// node_modules folder holding @duckdb/node-api (see bench_test.go).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const entry = createRequire(join(process.env.DUCKDB_NODE_PATH, 'noop.js')).resolve('@duckdb/node-api');
const { DuckDBInstance } = await import(pathToFileURL(entry).href);

const [file, from, to, runs] = process.argv.slice(2);
const instance = await DuckDBInstance.create(':memory:');
const con = await instance.connect();
const sql = `
SELECT variant, hash(coalesce(key, request_id)) % 1024 AS bucket,
  count(*) AS requests, approx_count_distinct(key) AS keys,
  count(error), sum(error::int), count(refusal), sum(refusal::int),
  count(feedback), sum((feedback < 0)::int),
  count(latency_ms), sum(latency_ms), sum(latency_ms * latency_ms),
  count(cost_usd), sum(cost_usd), sum(cost_usd * cost_usd),
  count(input_tokens), sum(input_tokens), sum(input_tokens * input_tokens),
  count(output_tokens), sum(output_tokens), sum(output_tokens * output_tokens),
  count(quality), sum(quality), sum(quality * quality),
  approx_quantile(latency_ms, [0.5, 0.95, 0.99]) AS latency_quantiles
FROM read_ndjson('${file.replaceAll("'", "''")}', columns = {
  ts: 'TIMESTAMPTZ', rollout: 'VARCHAR', variant: 'VARCHAR', shadow: 'BOOLEAN', key: 'VARCHAR',
  request_id: 'VARCHAR', latency_ms: 'DOUBLE', error: 'BOOLEAN', refusal: 'BOOLEAN',
  input_tokens: 'DOUBLE', output_tokens: 'DOUBLE', cost_usd: 'DOUBLE', quality: 'DOUBLE', feedback: 'DOUBLE'})
WHERE rollout = 'summarizer' AND variant IS NOT NULL AND ts >= '${from}'::TIMESTAMPTZ AND ts <= '${to}'::TIMESTAMPTZ
GROUP BY GROUPING SETS ((variant, bucket), (variant))`;
for (let i = 0; i < Number(runs || 1); i++) {
  const start = process.hrtime.bigint();
  const result = await con.runAndReadAll(sql);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(`duckdb-ms ${ms.toFixed(1)} rows ${result.getRows().length}`);
}
