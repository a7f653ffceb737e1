package main

import (
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/source/jsonl"
	"github.com/rollout-dev/rollout/source/postgres"
	"github.com/rollout-dev/rollout/source/prom"
)

// openSource returns the metrics source of spec; override (the --metrics flag) replaces the spec's own
// for one run.
func (app *App) openSource(spec *rollouts.Spec, override string) (policy.Source, error) {
	src := spec.Metrics.Source
	if override != "" {
		src = override
	}
	switch {
	case src == "":
		return nil, fmt.Errorf("rollout %s has no metrics.source", spec.Name)
	case strings.HasPrefix(src, "file:"):
		// A relative path is read from the directory the process runs in, as the contract says.
		path := strings.TrimPrefix(src, "file:")
		if path == "" {
			return nil, fmt.Errorf("metrics source %q names no file (want file:PATH)", src)
		}
		return jsonl.Open(path), nil
	case strings.HasPrefix(src, prom.Scheme):
		return prom.New(src)
	case strings.HasPrefix(src, "postgres://"), strings.HasPrefix(src, "postgresql://"):
		// The pool connects on first use; a one-shot command exits with it.
		return postgres.New(src, app.Getenv)
	default:
		scheme, _, _ := strings.Cut(src, ":")
		return nil, fmt.Errorf("unsupported metrics source %q (want file:PATH, prometheus:URL or postgres://…)", scheme)
	}
}
