package main

import (
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
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
	default:
		scheme, _, _ := strings.Cut(src, ":")
		return nil, fmt.Errorf("unsupported metrics source %q (want file:PATH, prometheus:URL or postgres://…)", scheme)
	}
}
