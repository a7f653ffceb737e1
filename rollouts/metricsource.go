package rollouts

import (
	"fmt"
	"net/url"
	"strings"
)

// SourceKind is the kind of metrics source a metrics.source value names, by how it begins.
type SourceKind string

// The kinds of metrics source a run reads.
const (
	// SourceFile is file:PATH, JSON Lines request records.
	SourceFile SourceKind = "file"
	// SourcePrometheus is prometheus:URL.
	SourcePrometheus SourceKind = "prometheus"
	// SourcePostgres is postgres://… or postgresql://….
	SourcePostgres SourceKind = "postgres"
	// SourceClickHouse is clickhouse://….
	SourceClickHouse SourceKind = "clickhouse"
)

// sourceForms are the beginnings of the metrics.source values a run reads, in the order messages
// list them. The run picks its source by SourceKindOf and validate refuses every other value with
// it, so a spec that validates never meets "unsupported metrics source" at run time.
var sourceForms = []struct {
	prefix, form string
	kind         SourceKind
}{
	{"file:", "file:PATH", SourceFile},
	{"prometheus:", "prometheus:URL", SourcePrometheus},
	{"postgres://", "postgres://…", SourcePostgres},
	{"postgresql://", "postgresql://…", SourcePostgres},
	{"clickhouse://", "clickhouse://…", SourceClickHouse},
}

// SourceKindOf says which kind of source src names; false when no run reads it.
func SourceKindOf(src string) (SourceKind, bool) {
	for _, f := range sourceForms {
		if strings.HasPrefix(src, f.prefix) {
			return f.kind, true
		}
	}
	return "", false
}

// SourceForms lists the forms of metrics.source a run reads, for messages: "file:PATH,
// prometheus:URL, postgres://…, postgresql://… or clickhouse://…".
func SourceForms() string {
	forms := make([]string, len(sourceForms))
	for i, f := range sourceForms {
		forms[i] = f.form
	}
	return strings.Join(forms[:len(forms)-1], ", ") + " or " + forms[len(forms)-1]
}

// Schemas lists the names metrics.schema may take, the default first.
var Schemas = []string{SchemaRollout, SchemaOTelGenAI, SchemaLiteLLM, SchemaLangfuse, SchemaHelicone}

// schemaReaders names, for a schema that only one kind of source reads, that kind. A run refuses the
// other kinds (cmd/rollout's openSource, through SchemaReadBy), and so does validate. A schema absent
// here (rollout) is read by every source.
var schemaReaders = map[string]SourceKind{
	SchemaOTelGenAI: SourcePrometheus,
	SchemaLiteLLM:   SourcePrometheus,
	SchemaLangfuse:  SourceClickHouse,
	SchemaHelicone:  SourceClickHouse,
}

// SchemaReadBy returns an error when a source of kind never reads schema ("otel-genai is read from
// Prometheus; …"): the otel-genai and litellm names are Prometheus metrics, and the langfuse and
// helicone ones ClickHouse tables, which another source would not look for, judging its own names
// instead.
func SchemaReadBy(schema string, kind SourceKind) error {
	reader, ok := schemaReaders[schema]
	if !ok || reader == kind {
		return nil
	}
	return fmt.Errorf("%s is read from %s; want a %s source, not a %s source", schema, kindWords[reader], kindForm(reader), kind)
}

// kindForm is the first form of a source of kind in sourceForms ("clickhouse://…").
func kindForm(kind SourceKind) string {
	for _, f := range sourceForms {
		if f.kind == kind {
			return f.form
		}
	}
	return string(kind)
}

// kindWords names a kind of source in a sentence.
var kindWords = map[SourceKind]string{SourceFile: "a file", SourcePrometheus: "Prometheus", SourcePostgres: "PostgreSQL",
	SourceClickHouse: "ClickHouse"}

// checkMetrics checks metrics.source and metrics.schema against what a run reads. A source is never
// echoed beyond its scheme: its URL may carry a user or a password reference.
func (d *specDecoder) checkMetrics(m *MetricsSource) {
	d.checkEnum("metrics.schema", m.Schema, Schemas...)
	src := m.Source
	if src == "" || d.isBroken("metrics.source") {
		return
	}
	scheme, rest, found := strings.Cut(src, ":")
	if !found || scheme == "" || strings.ContainsAny(scheme, "/ ") {
		d.errorAt(d.at("metrics.source"), "metrics.source: %q has no scheme; want %s", src, SourceForms())
		return
	}
	if strings.Trim(rest, "/") == "" {
		d.errorAt(d.at("metrics.source"), "metrics.source: %q names no file or server; want %s", src, SourceForms())
		return
	}
	kind, ok := SourceKindOf(src)
	if !ok {
		msg := fmt.Sprintf("metrics.source: unsupported metrics source %q; want %s", scheme, SourceForms())
		lower := strings.ToLower(scheme)
		switch form := sourceFormOf(lower); {
		case lower == "http" || lower == "https":
			msg += fmt.Sprintf(" (a Prometheus server is prometheus:%s://…)", lower)
		case lower == "jsonl" || lower == "json":
			msg += " (JSON Lines are read from file:PATH)"
		case form != "":
			msg += fmt.Sprintf(" (write %s)", form)
		default:
			if s := closest(lower, sourceSchemes()); s != "" {
				msg += fmt.Sprintf("; did you mean %s?", sourceFormOf(s))
			}
		}
		d.errorAt(d.at("metrics.source"), "%s", msg)
		return
	}
	if (kind == SourcePostgres || kind == SourceClickHouse) && LiteralPassword(src) {
		d.errorAt(d.at("metrics.source"), "metrics.source: holds a literal password, which %s sources refuse so that none is committed; "+
			"write password=env:NAME (a ROLLOUT_* variable set where rollout runs) instead", kindWords[kind])
	}
	if m.Schema != "" && !d.isBroken("metrics.schema") {
		if err := SchemaReadBy(m.Schema, kind); err != nil {
			d.errorAt(d.at("metrics.schema"), "metrics.schema: %v", err)
		}
	}
}

// LiteralPassword reports whether a metrics source's URL (postgres://, clickhouse://, or the URL after
// prometheus:) holds a password written out, in its user info or a password parameter, rather than a
// reference to an environment variable (env:NAME).
func LiteralPassword(src string) bool {
	u, err := url.Parse(strings.TrimPrefix(src, "prometheus:"))
	if err != nil {
		return false
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" && !strings.HasPrefix(p, "env:") {
			return true
		}
	}
	p := u.Query().Get("password")
	return p != "" && !strings.HasPrefix(p, "env:")
}

// sourceSchemes are the schemes of sourceForms ("file", "prometheus", "postgres", …).
func sourceSchemes() []string {
	out := make([]string, len(sourceForms))
	for i, f := range sourceForms {
		out[i] = f.prefix[:strings.IndexByte(f.prefix, ':')]
	}
	return out
}

// sourceFormOf is the form of a source whose scheme is scheme ("postgres" → "postgres://…"), or "".
func sourceFormOf(scheme string) string {
	for _, f := range sourceForms {
		if strings.HasPrefix(f.prefix, scheme+":") {
			return f.form
		}
	}
	return ""
}
