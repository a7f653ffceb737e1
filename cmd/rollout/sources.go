package main

import (
	"fmt"
	"strings"
	"sync"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/policy/source/postgres"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/rollouts"
)

// openSource returns the metrics source of spec; override (the --metrics flag) replaces the spec's own
// for one run.
func (app *App) openSource(spec *rollouts.Spec, override string) (policy.Source, error) {
	src := spec.Metrics.Source
	if override != "" {
		src = override
	}
	if src == "" {
		return nil, fmt.Errorf("rollout %s has no metrics.source", spec.Name)
	}
	// The one place a run picks its source by scheme. validate checks a spec's metrics.source with the
	// same rollouts.SourceKindOf, so a spec that validates never meets this error.
	kind, ok := rollouts.SourceKindOf(src)
	if !ok {
		scheme, _, _ := strings.Cut(src, ":")
		return nil, fmt.Errorf("unsupported metrics source %q (want %s)", scheme, rollouts.SourceForms())
	}
	// Only the Prometheus source reads the otel-genai and litellm names; another would read its own
	// and judge them.
	if err := rollouts.SchemaReadBy(spec.Metrics.Schema, kind); err != nil {
		return nil, fmt.Errorf("rollout %s: metrics.schema %w", spec.Name, err)
	}
	if err := app.checkSourceRefs(spec, src); err != nil {
		return nil, err
	}
	getenv := app.specGetenv(spec)
	switch kind {
	case rollouts.SourceFile:
		// A relative path is read from the directory the process runs in, as the contract says.
		path := strings.TrimPrefix(src, "file:")
		if path == "" {
			return nil, fmt.Errorf("metrics source %q names no file (want file:PATH)", src)
		}
		return jsonl.Open(path), nil
	case rollouts.SourcePrometheus:
		return app.sources.get(src, func() (policy.Source, error) { return prom.New(src, prom.WithGetenv(getenv)) })
	case rollouts.SourcePostgres:
		return app.sources.get(src, func() (policy.Source, error) { return postgres.New(src, getenv) })
	case rollouts.SourceClickHouse:
		return app.sources.get(src, func() (policy.Source, error) { return clickhouse.New(src, getenv) })
	}
	return nil, fmt.Errorf("internal error: metrics source kind %q has no reader", kind)
}

// sourceCache keeps one source per metrics.source string for the life of the process, so that the
// daemon reuses a PostgreSQL connection pool (and an HTTP client) from tick to tick instead of opening
// one per rollout per tick. A source that failed to open is not kept: the next tick tries again.
type sourceCache struct {
	mu   sync.Mutex
	open map[string]policy.Source
}

func (c *sourceCache) get(key string, open func() (policy.Source, error)) (policy.Source, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if src, ok := c.open[key]; ok {
		return src, nil
	}
	src, err := open()
	if err != nil {
		return nil, err
	}
	if c.open == nil {
		c.open = map[string]policy.Source{}
	}
	c.open[key] = src
	return src, nil
}
