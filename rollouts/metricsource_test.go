package rollouts

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// parseOne parses src and returns its one problem as "file:line:col: message", or "" when it has none.
func parseOne(t *testing.T, src string) string {
	t.Helper()
	_, problems := Parse("t.yaml", []byte(src))
	switch len(problems) {
	case 0:
		return ""
	case 1:
		return problems[0].Error()
	}
	t.Fatalf("want at most one problem, got %v", problems)
	return ""
}

const forms = "file:PATH, prometheus:URL, postgres://…, postgresql://… or clickhouse://…"

// metrics.source takes exactly the forms a run reads, and metrics.schema one of its names, read by a
// source that reads it; every refusal is at the offending value.
func TestParseMetricsSourceAndSchema(t *testing.T) {
	tests := []struct {
		metrics string // the flow mapping after "metrics: "
		want    string // the one problem, or "" when valid
	}{
		{"{source: file:traffic/x.jsonl}", ""},
		{"{source: 'prometheus:http://127.0.0.1:9090', schema: otel-genai}", ""},
		{"{source: 'prometheus:http://127.0.0.1:9090', schema: litellm}", ""},
		{"{source: 'prometheus:http://127.0.0.1:9090', schema: rollout}", ""},
		{"{source: 'postgres://reader@db/telemetry'}", ""},
		{"{source: 'postgresql://reader@db/telemetry', schema: rollout}", ""},
		{"{source: 'clickhouse://reader@ch:8123/default', schema: langfuse}", ""},
		{"{source: 'clickhouse://reader@ch:8123/default', schema: helicone}", ""},
		{"{schema: otel-genai}", ""}, // no source of its own: --metrics gives one for the run
		{"{source: 'postgres://reader:env:ROLLOUT_PG@db/telemetry'}", ""},
		{"{source: 'clickhouse://reader@ch:8123/default?password=env:ROLLOUT_CH'}", ""},
		{"{source: 'prometheus:https://reader:hunter2@p:9090'}", ""}, // a lint warning, as the source accepts it

		// A literal password the SQL sources would refuse is reported before it is committed, and never echoed.
		{"{source: 'postgres://reader:hunter2@db/telemetry'}",
			"t.yaml:6:19: metrics.source: holds a literal password, which PostgreSQL sources refuse so that none is committed; write password=env:NAME (a ROLLOUT_* variable set where rollout runs) instead"},
		{"{source: 'clickhouse://reader@ch:8123/default?secure=true&password=hunter2'}",
			"t.yaml:6:19: metrics.source: holds a literal password, which ClickHouse sources refuse so that none is committed; write password=env:NAME (a ROLLOUT_* variable set where rollout runs) instead"},

		{"{source: 'prometheus:http://127.0.0.1:1', schema: bogus}",
			`t.yaml:6:60: metrics.schema: "bogus" is not one of rollout, otel-genai, litellm, langfuse, helicone`},
		{"{source: 'prometheus:http://127.0.0.1:1', schema: prom}",
			`t.yaml:6:60: metrics.schema: "prom" is not one of rollout, otel-genai, litellm, langfuse, helicone`},
		{"{source: 'prometheus:http://127.0.0.1:1', schema: otel_genai}",
			`t.yaml:6:60: metrics.schema: "otel_genai" is not one of rollout, otel-genai, litellm, langfuse, helicone; did you mean "otel-genai"?`},
		{"{schema: LiteLLM}",
			`t.yaml:6:19: metrics.schema: "LiteLLM" is not one of rollout, otel-genai, litellm, langfuse, helicone; did you mean "litellm"?`},
		{"{source: file:traffic/x.jsonl, schema: otel-genai}",
			"t.yaml:6:49: metrics.schema: otel-genai is read from Prometheus; want a prometheus:URL source, not a file source"},
		{"{source: 'postgres://reader@db/telemetry', schema: litellm}",
			"t.yaml:6:61: metrics.schema: litellm is read from Prometheus; want a prometheus:URL source, not a postgres source"},
		{"{source: 'clickhouse://reader@ch/default', schema: otel-genai}",
			"t.yaml:6:61: metrics.schema: otel-genai is read from Prometheus; want a prometheus:URL source, not a clickhouse source"},
		{"{source: 'postgres://reader@db/telemetry', schema: langfuse}",
			"t.yaml:6:61: metrics.schema: langfuse is read from ClickHouse; want a clickhouse://… source, not a postgres source"},
		{"{source: 'prometheus:http://127.0.0.1:9090', schema: helicone}",
			"t.yaml:6:63: metrics.schema: helicone is read from ClickHouse; want a clickhouse://… source, not a prometheus source"},
		{"{source: file:traffic/x.jsonl, schema: langfuse}",
			"t.yaml:6:49: metrics.schema: langfuse is read from ClickHouse; want a clickhouse://… source, not a file source"},

		{"{source: 'mysql://h/db'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "mysql"; want ` + forms},
		{"{source: 'redis://h'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "redis"; want ` + forms},
		{"{source: 'http://example.com/metrics'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "http"; want ` + forms + " (a Prometheus server is prometheus:http://…)"},
		{"{source: 'mysql://reader:hunter2@h/db'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "mysql"; want ` + forms}, // the password is never echoed
		{"{source: 'clickhose://ch/default'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "clickhose"; want ` + forms + "; did you mean clickhouse://…?"},
		{"{source: 'clickhouse+http://ch/default'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "clickhouse+http"; want ` + forms + "; did you mean clickhouse://…?"},
		{"{source: 'postgres:db/telemetry'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "postgres"; want ` + forms + " (write postgres://…)"},
		{"{source: 'Prometheus:http://p:9090'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "Prometheus"; want ` + forms + " (write prometheus:URL)"},
		{"{source: 'jsonl:traffic/x.jsonl'}",
			`t.yaml:6:19: metrics.source: unsupported metrics source "jsonl"; want ` + forms + " (JSON Lines are read from file:PATH)"},
		{"{source: traffic.jsonl}",
			`t.yaml:6:19: metrics.source: "traffic.jsonl" has no scheme; want ` + forms},
		{"{source: 'file:'}",
			`t.yaml:6:19: metrics.source: "file:" names no file or server; want ` + forms},
		{"{source: 'mysql://h/db', schema: otel-genai}", // the source alone: its schema cannot be judged
			`t.yaml:6:19: metrics.source: unsupported metrics source "mysql"; want ` + forms},
	}
	for _, tt := range tests {
		t.Run(tt.metrics, func(t *testing.T) {
			if got := parseOne(t, minimal+"metrics: "+tt.metrics+"\n"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// The run picks its source with SourceKindOf: the forms validate names are the ones it reads.
func TestSourceKindOf(t *testing.T) {
	for src, want := range map[string]SourceKind{
		"file:x.jsonl": SourceFile, "prometheus:http://p:9090": SourcePrometheus, "postgres://h/db": SourcePostgres,
		"postgresql://h/db": SourcePostgres, "clickhouse://h/db": SourceClickHouse,
	} {
		if got, ok := SourceKindOf(src); !ok || got != want {
			t.Errorf("SourceKindOf(%q) = %q, %v; want %q", src, got, ok, want)
		}
	}
	for _, src := range []string{"mysql://h/db", "http://p:9090", "postgres:h", "clickhouse+http://h", "FILE:x", "jsonl:x", ""} {
		if got, ok := SourceKindOf(src); ok {
			t.Errorf("SourceKindOf(%q) = %q; want none", src, got)
		}
	}
	if got := SourceForms(); got != forms {
		t.Errorf("SourceForms() = %q", got)
	}
}

// Schemas, the names Parse takes, are the enum `rollout schema` gives editors.
func TestSchemasMatchTheJSONSchemaEnum(t *testing.T) {
	f, _ := reflect.TypeFor[MetricsSource]().FieldByName("Schema")
	var enum []string
	for _, part := range strings.Split(f.Tag.Get("jsonschema"), ",") {
		if v, ok := strings.CutPrefix(part, "enum="); ok {
			enum = append(enum, v)
		}
	}
	if !slices.Equal(enum, Schemas) {
		t.Errorf("jsonschema enum %q, Schemas %q", enum, Schemas)
	}
}
