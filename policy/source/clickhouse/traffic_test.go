package clickhouse_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
)

// request is one generated LLM request, written into each schema's own tables.
type request struct {
	ts        time.Time
	rollout   string
	variant   string
	shadow    bool
	key       string
	id        string
	latency   float64
	err       bool
	refusal   bool
	inTokens  int
	outTokens int
	cost      float64
	quality   float64
	feedback  int // -1, 0, 1; 2 means none
}

// profile is how one arm behaves.
type profile struct {
	errorRate, latencyMedian, cost, quality float64
}

var healthy = profile{errorRate: 0.03, latencyMedian: 400, cost: 0.002, quality: 0.85}

// traffic is users who each send a few requests over [from, to): a deterministic generator, so each
// schema's test reads the same numbers. A user keeps one variant (weight% of users are canary), and
// per-user latency factors make one user's requests correlated, as real traffic is.
func traffic(seed uint64, rollout string, from, to time.Time, users, perUser int, weight float64, stable, canary profile) []request {
	rng := rand.New(rand.NewPCG(seed, 7))
	span := to.Sub(from)
	var out []request
	for u := 0; u < users; u++ {
		key := fmt.Sprintf("user-%d", u)
		variant, p := "stable", stable
		if rng.Float64() < weight {
			variant, p = "canary", canary
		}
		factor := math.Exp(rng.NormFloat64() * 0.3)
		for i := 0; i < perUser; i++ {
			r := request{
				ts:      from.Add(time.Duration(rng.Int64N(int64(span/time.Second)))*time.Second + time.Duration(rng.IntN(1000))*time.Millisecond),
				rollout: rollout, variant: variant, key: key, id: fmt.Sprintf("%s-r%d-%d", rollout, u, i),
				latency:  math.Max(1, math.Round(p.latencyMedian*factor*math.Exp(rng.NormFloat64()*0.5))),
				err:      rng.Float64() < p.errorRate,
				refusal:  rng.Float64() < 0.01,
				inTokens: 800 + rng.IntN(400), outTokens: 200 + rng.IntN(200),
				cost:     math.Round(p.cost*(0.5+rng.Float64())*1e9) / 1e9,
				quality:  math.Round(math.Min(1, math.Max(0, p.quality+rng.NormFloat64()*0.05))*1e4) / 1e4,
				feedback: 2,
			}
			if rng.Float64() < 0.3 {
				r.feedback = []int{-1, 0, 1, 1}[rng.IntN(4)]
			}
			out = append(out, r)
		}
	}
	return out
}

// armTotals is what one arm's statistics must be, computed from the generated requests.
type armTotals struct {
	requests, errors, feedbackN, negative int64
	keys                                  map[string]bool
	latency, cost, quality                []float64
	bins                                  []float64
}

func totals(reqs []request, rollout string, from, to time.Time) map[string]*armTotals {
	out := map[string]*armTotals{"stable": {keys: map[string]bool{}, bins: make([]float64, policy.QuantileBins)},
		"canary": {keys: map[string]bool{}, bins: make([]float64, policy.QuantileBins)}}
	for _, r := range reqs {
		if r.rollout != rollout || r.ts.Before(from) || r.ts.After(to) {
			continue
		}
		a := out[r.variant]
		a.requests++
		if r.err {
			a.errors++
		}
		if r.feedback != 2 {
			a.feedbackN++
			if r.feedback < 0 {
				a.negative++
			}
		}
		a.keys[r.key] = true
		a.latency = append(a.latency, r.latency)
		a.cost = append(a.cost, r.cost)
		a.quality = append(a.quality, r.quality)
		a.bins[policy.QuantileBin(r.latency)]++
	}
	return out
}

// tsv joins fields into one TabSeparated line.
func tsv(fields ...any) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		switch v := f.(type) {
		case bool:
			parts[i] = map[bool]string{false: "0", true: "1"}[v]
		case float64:
			parts[i] = fmt.Sprintf("%.9g", v)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	return strings.Join(parts, "\t") + "\n"
}

// loadRollout creates llm_requests from schema.sql and inserts reqs.
func loadRollout(t testing.TB, srv *testserver.ClickHouseServer, reqs []request) {
	t.Helper()
	srv.Exec(t, clickhouse.Schema)
	var b strings.Builder
	b.WriteString("INSERT INTO llm_requests (ts, rollout, variant, shadow, key, request_id, model, latency_ms, error, refusal, input_tokens, output_tokens, cost_usd, quality, feedback) FORMAT TabSeparated\n")
	for _, r := range reqs {
		fb := `\N`
		if r.feedback != 2 {
			fb = fmt.Sprint(r.feedback)
		}
		b.WriteString(tsv(r.ts.Unix(), r.rollout, r.variant, r.shadow, r.key, r.id, "model-"+r.variant, r.latency, r.err, r.refusal,
			r.inTokens, r.outTokens, r.cost, r.quality, fb))
	}
	srv.Exec(t, b.String())
}

// The tables Langfuse's ClickHouse migrations create (packages/shared/clickhouse/migrations/unclustered
// 0001_traces, 0002_observations, 0003_scores, with 0008's environment column; Langfuse v3), with the
// columns as Langfuse declares them. The skip indexes are left out: they change no result.
const langfuseDDL = `CREATE TABLE traces (
    id String, timestamp DateTime64(3), name String, user_id Nullable(String),
    metadata Map(LowCardinality(String), String), release Nullable(String), version Nullable(String),
    project_id String, environment LowCardinality(String) DEFAULT 'default', public Bool, bookmarked Bool,
    tags Array(String), input Nullable(String) CODEC(ZSTD(3)), output Nullable(String) CODEC(ZSTD(3)),
    session_id Nullable(String), created_at DateTime64(3) DEFAULT now(), updated_at DateTime64(3) DEFAULT now(),
    event_ts DateTime64(3), is_deleted UInt8
) ENGINE = ReplacingMergeTree(event_ts, is_deleted) PARTITION BY toYYYYMM(timestamp)
PRIMARY KEY (project_id, toDate(timestamp)) ORDER BY (project_id, toDate(timestamp), id);
CREATE TABLE observations (
    id String, trace_id String, project_id String, environment LowCardinality(String) DEFAULT 'default',
    type LowCardinality(String), parent_observation_id Nullable(String), start_time DateTime64(3),
    end_time Nullable(DateTime64(3)), name String, metadata Map(LowCardinality(String), String),
    level LowCardinality(String), status_message Nullable(String), version Nullable(String),
    input Nullable(String) CODEC(ZSTD(3)), output Nullable(String) CODEC(ZSTD(3)),
    provided_model_name Nullable(String), internal_model_id Nullable(String), model_parameters Nullable(String),
    provided_usage_details Map(LowCardinality(String), UInt64), usage_details Map(LowCardinality(String), UInt64),
    provided_cost_details Map(LowCardinality(String), Decimal64(12)), cost_details Map(LowCardinality(String), Decimal64(12)),
    total_cost Nullable(Decimal64(12)), completion_start_time Nullable(DateTime64(3)), prompt_id Nullable(String),
    prompt_name Nullable(String), prompt_version Nullable(UInt16), created_at DateTime64(3) DEFAULT now(),
    updated_at DateTime64(3) DEFAULT now(), event_ts DateTime64(3), is_deleted UInt8
) ENGINE = ReplacingMergeTree(event_ts, is_deleted) PARTITION BY toYYYYMM(start_time)
PRIMARY KEY (project_id, type, toDate(start_time)) ORDER BY (project_id, type, toDate(start_time), id);
CREATE TABLE scores (
    id String, timestamp DateTime64(3), project_id String, environment LowCardinality(String) DEFAULT 'default',
    trace_id String, observation_id Nullable(String), name String, value Float64, source String,
    comment Nullable(String) CODEC(ZSTD(1)), author_user_id Nullable(String), config_id Nullable(String),
    data_type String, string_value Nullable(String), queue_id Nullable(String),
    created_at DateTime64(3) DEFAULT now(), updated_at DateTime64(3) DEFAULT now(), event_ts DateTime64(3), is_deleted UInt8
) ENGINE = ReplacingMergeTree(event_ts, is_deleted) PARTITION BY toYYYYMM(timestamp)
PRIMARY KEY (project_id, toDate(timestamp), name) ORDER BY (project_id, toDate(timestamp), name, id)`

func ms(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// loadLangfuse writes reqs as Langfuse does: one trace per request (user_id = the key), one GENERATION
// observation with the rollout and variant in its metadata, quality and feedback as scores. Each
// observation is written twice, a first version without end time or usage and the final one, as
// Langfuse's ingestion does, so that reading without FINAL would count it twice.
func loadLangfuse(t testing.TB, srv *testserver.ClickHouseServer, reqs []request) {
	t.Helper()
	for _, stmt := range strings.Split(langfuseDDL, ";\n") {
		srv.Exec(t, stmt)
	}
	var traces, obs, scores strings.Builder
	traces.WriteString("INSERT INTO traces (id, timestamp, name, user_id, metadata, project_id, public, bookmarked, tags, event_ts, is_deleted) FORMAT TabSeparated\n")
	obs.WriteString("INSERT INTO observations (id, trace_id, project_id, type, start_time, end_time, name, metadata, level, provided_model_name, usage_details, cost_details, total_cost, event_ts, is_deleted) FORMAT TabSeparated\n")
	scores.WriteString("INSERT INTO scores (id, timestamp, project_id, trace_id, observation_id, name, value, source, data_type, event_ts, is_deleted) FORMAT TabSeparated\n")
	for _, r := range reqs {
		end := r.ts.Add(time.Duration(r.latency * float64(time.Millisecond)))
		meta := fmt.Sprintf("{'rollout':'%s','variant':'%s'}", r.rollout, r.variant)
		level := "DEFAULT"
		if r.err {
			level = "ERROR"
		}
		traces.WriteString(tsv("t-"+r.id, ms(r.ts), "chat", r.key, "{}", "p1", 0, 0, "[]", ms(r.ts), 0))
		obs.WriteString(tsv("o-"+r.id, "t-"+r.id, "p1", "GENERATION", ms(r.ts), `\N`, "chat", meta, "DEFAULT", "model-"+r.variant,
			"{}", "{}", `\N`, ms(r.ts), 0))
		obs.WriteString(tsv("o-"+r.id, "t-"+r.id, "p1", "GENERATION", ms(r.ts), ms(end), "chat", meta, level, "model-"+r.variant,
			fmt.Sprintf("{'input':%d,'output':%d,'total':%d}", r.inTokens, r.outTokens, r.inTokens+r.outTokens),
			fmt.Sprintf("{'total':%.9f}", r.cost), fmt.Sprintf("%.9f", r.cost), ms(end), 0))
		scores.WriteString(tsv("sq-"+r.id, ms(end), "p1", "t-"+r.id, "o-"+r.id, "quality", r.quality, "EVAL", "NUMERIC", ms(end), 0))
		if r.feedback != 2 {
			// Trace-level feedback, as a user's thumbs up or down is recorded.
			scores.WriteString(tsv("sf-"+r.id, ms(end), "p1", "t-"+r.id, `\N`, "feedback", r.feedback, "API", "NUMERIC", ms(end), 0))
		}
	}
	srv.Exec(t, traces.String())
	srv.Exec(t, obs.String())
	srv.Exec(t, scores.String())
}

// Helicone's request_response_rmt as its migrations create it (clickhouse/migrations
// 20200101000041_request_response_replacing_merge_tree, plus 20200101000052's cost column, USD × 10^9),
// without the skip indexes and TTLs, which change no result.
const heliconeDDL = `CREATE TABLE request_response_rmt (
    response_id Nullable(UUID), response_created_at Nullable(DateTime64(3)), latency Nullable(Int64), status Int64,
    completion_tokens Nullable(Int64), prompt_tokens Nullable(Int64), model LowCardinality(String) CODEC(ZSTD(1)),
    request_id UUID, request_created_at DateTime64(3), user_id LowCardinality(String) CODEC(ZSTD(1)),
    organization_id UUID, proxy_key_id Nullable(UUID), threat Nullable(Bool), time_to_first_token Nullable(Int64),
    provider LowCardinality(String) CODEC(ZSTD(1)), target_url Nullable(String), country_code Nullable(String),
    properties Map(LowCardinality(String), String) CODEC(ZSTD(1)), scores Map(LowCardinality(String), Int64) CODEC(ZSTD(1)),
    request_body String DEFAULT '', response_body String DEFAULT '', cost UInt64 DEFAULT 0,
    assets Array(String) CODEC(ZSTD(1)), updated_at DateTime64(3, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(updated_at) PARTITION BY toYYYYMM(request_created_at)
PRIMARY KEY (organization_id, provider, model, user_id, request_created_at, request_id)
ORDER BY (organization_id, provider, model, user_id, request_created_at, request_id)`

// loadHelicone writes reqs as Helicone's proxy does, the properties from Helicone-Property-* headers.
// Feedback arrives later as a new version of the row (a higher updated_at), as Helicone writes it.
func loadHelicone(t testing.TB, srv *testserver.ClickHouseServer, reqs []request) {
	t.Helper()
	srv.Exec(t, heliconeDDL)
	var b strings.Builder
	b.WriteString("INSERT INTO request_response_rmt (response_id, response_created_at, latency, status, completion_tokens, prompt_tokens, model, request_id, request_created_at, user_id, organization_id, provider, properties, scores, cost, assets, updated_at) FORMAT TabSeparated\n")
	for i, r := range reqs {
		status := 200
		if r.err {
			status = 500
		}
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		props := fmt.Sprintf("{'rollout':'%s','variant':'%s'}", r.rollout, r.variant)
		row := func(scores string, updated time.Time) string {
			return tsv(id, ms(r.ts), int64(math.Round(r.latency)), status, r.outTokens, r.inTokens, "model-"+r.variant, id, ms(r.ts),
				r.key, "00000000-0000-4000-8000-000000000001", "OPENAI", props, scores, int64(math.Round(r.cost*1e9)), "[]", ms(updated))
		}
		scores := fmt.Sprintf("{'quality':%d}", int(math.Round(r.quality*100)))
		b.WriteString(row(scores, r.ts))
		if r.feedback != 2 {
			fb := 1
			if r.feedback < 0 {
				fb = 0
			}
			b.WriteString(row(fmt.Sprintf("{'quality':%d,'helicone-score-feedback':%d}", int(math.Round(r.quality*100)), fb), r.ts.Add(time.Minute)))
		}
	}
	srv.Exec(t, b.String())
}
