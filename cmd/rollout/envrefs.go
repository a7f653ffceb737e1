package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/internal/envref"
	"github.com/rollout-dev/rollout/rollouts"
)

// envPolicy is the operator's allow-list of the env: names a spec may reference for a metrics source
// or a gate: ROLLOUT_*, plus ROLLOUT_ALLOW_ENV and --allow-env.
func (app *App) envPolicy() envref.Policy { return envref.New(app.Getenv, app.AllowEnv) }

// notifierNames are the env: names spec's notification targets reference: a source or a gate never
// reads them.
func notifierNames(spec *rollouts.Spec) []string {
	var out []string
	for _, t := range spec.Rollback.Notify {
		for _, ref := range []string{t.Slack, t.Webhook} {
			if name, ok := strings.CutPrefix(ref, envref.Prefix); ok && name != "" {
				out = append(out, name)
			}
		}
	}
	return out
}

// specGetenv is the environment a metrics source of spec reads: only the names the policy allows.
func (app *App) specGetenv(spec *rollouts.Spec) func(string) string {
	return app.envPolicy().Getenv(app.Getenv, notifierNames(spec))
}

// gateGetenv is the environment a gate webhook of spec reads (nil spec: no notifier names known).
func (app *App) gateGetenv(spec *rollouts.Spec) func(string) string {
	var notifiers []string
	if spec != nil {
		notifiers = notifierNames(spec)
	}
	return app.envPolicy().GateGetenv(app.Getenv, notifiers)
}

// checkSourceRefs refuses a metrics source that references a name the operator did not allow, before
// anything connects: the host the spec names never receives it.
func (app *App) checkSourceRefs(spec *rollouts.Spec, src string) error {
	var errs []error
	for _, name := range envref.Refs(src) {
		if err := app.envPolicy().Check(name, notifierNames(spec)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("metrics.source of rollout %s is not opened: %w", spec.Name, errors.Join(errs...))
	}
	return nil
}

// envWarnings warns, at its file:line:col, of every env: reference of a metrics source or a gate that
// the allow-list does not resolve, and of every notification target that names a variable that never
// resolves (GitHub's, the runner's, a private key).
func envWarnings(set *rollouts.Set, policy envref.Policy) []rollouts.Problem {
	var out []rollouts.Problem
	warn := func(d *rollouts.Document, field, name string, err error) {
		line, col := positionOf(d.Source, envref.Prefix+name)
		what := "the source is not opened"
		if field != "metrics.source" {
			what = "the gate stays shut"
		}
		msg := fmt.Sprintf("%s: %v; it resolves to nothing and %s", field, err, what)
		if errors.Is(err, envref.ErrNotAllowed) {
			msg += fmt.Sprintf(" (allow it with %s=%s or --allow-env %s, or rename it %s…)", envref.AllowVar, name, name, envref.AllowedPrefix)
		}
		out = append(out, rollouts.Problem{File: d.Path, Line: line, Col: col, Warning: true, Message: msg})
	}
	for _, d := range set.Documents {
		notifiers := notifierNames(d.Spec)
		for _, name := range envref.Refs(d.Spec.Metrics.Source) {
			if err := policy.Check(name, notifiers); err != nil {
				warn(d, "metrics.source", name, err)
			}
		}
		for i, st := range d.Spec.Stages {
			if st.Gate == nil {
				continue
			}
			for _, name := range envref.Refs(st.Gate.Webhook) {
				if err := policy.CheckGate(name, notifiers); err != nil {
					warn(d, fmt.Sprintf("stages[%d].gate.webhook", i), name, err)
				}
			}
		}
		for _, name := range notifiers {
			if err := envref.CheckNotify(name); err != nil {
				line, col := positionOf(d.Source, envref.Prefix+name)
				out = append(out, rollouts.Problem{File: d.Path, Line: line, Col: col, Warning: true,
					Message: fmt.Sprintf("rollback.notify: %v; this target gets no notification", err)})
			}
		}
	}
	return out
}
