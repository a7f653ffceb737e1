package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/rollout-dev/rollout/internal/envref"
	"github.com/rollout-dev/rollout/reconcile/notify"
	"github.com/rollout-dev/rollout/rollouts"
)

// envPolicy is the operator's allow-list of the env: names a spec may reference for a metrics source,
// a gate or a notification target: ROLLOUT_*, plus ROLLOUT_ALLOW_ENV and --allow-env.
func (app *App) envPolicy() envref.Policy { return envref.New(app.Getenv, app.AllowEnv) }

// notifier delivers the rollback notifications of reconcile, run and the manual commands: a target
// resolves only a name the allow-list allows; any other is not sent to, with a warning naming it.
func (app *App) notifier() *notify.Dispatcher {
	p := app.envPolicy()
	d := &notify.Dispatcher{Getenv: p.NotifyGetenv(app.Getenv), Allow: p.CheckNotify, Stopping: app.stopping()}
	if repo := app.Getenv("GITHUB_REPOSITORY"); repo != "" {
		// Slack messages link the commit they report, on GitHub (or the server GITHUB_SERVER_URL names).
		server := strings.TrimSuffix(app.Getenv("GITHUB_SERVER_URL"), "/")
		if server == "" {
			server = "https://github.com"
		}
		d.CommitURL = server + "/" + repo + "/commit/"
	}
	return d
}

// notifierNames are the env: names spec's notification targets reference: a source or a gate never
// reads them.
func notifierNames(spec *rollouts.Spec) []string {
	refs := targetRefs(spec)
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.name
	}
	return out
}

// targetRef is an env: name that a notification target references, with the field that lists the
// target, for messages: rollback.notify or notify.
type targetRef struct{ field, name string }

// targetRefs are the env: names of spec's notification targets: rollback.notify's, then the top-level
// notify's.
func targetRefs(spec *rollouts.Spec) []targetRef {
	var out []targetRef
	for _, f := range []struct {
		field   string
		targets []rollouts.Notify
	}{{"rollback.notify", spec.Rollback.Notify}, {"notify", spec.Notify}} {
		for _, t := range f.targets {
			for _, name := range envNames(t.Slack, t.Webhook) {
				out = append(out, targetRef{f.field, name})
			}
		}
	}
	return out
}

// envNames are the names of the env: references among refs.
func envNames(refs ...string) []string {
	var out []string
	for _, ref := range refs {
		if name, ok := strings.CutPrefix(ref, envref.Prefix); ok && name != "" {
			out = append(out, name)
		}
	}
	return out
}

// notifierIndex collects the env: names that the notification targets of every spec read so far
// reference, in any rollout of the repository: a notification URL lets anyone post to the channel, so
// no rollout's source or gate may read another rollout's target either. Names are only added: a
// process that once saw a name as a notifier's never gives it to a source. It is safe for concurrent
// use.
type notifierIndex struct {
	mu    sync.Mutex
	names map[string]bool
}

// add records the notifier names of every spec of set.
func (x *notifierIndex) add(set *rollouts.Set) {
	for _, d := range set.Documents {
		x.addSpec(d.Spec)
	}
}

// addSpec records the notifier names of spec (nil: none).
func (x *notifierIndex) addSpec(spec *rollouts.Spec) {
	if spec == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, name := range notifierNames(spec) {
		if x.names == nil {
			x.names = map[string]bool{}
		}
		x.names[name] = true
	}
}

// with returns the names recorded, and those of spec's own targets (spec may be nil), sorted.
func (x *notifierIndex) with(spec *rollouts.Spec) []string {
	x.mu.Lock()
	seen := map[string]bool{}
	for name := range x.names {
		seen[name] = true
	}
	x.mu.Unlock()
	if spec != nil {
		for _, name := range notifierNames(spec) {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// specGetenv is the environment a metrics source of spec reads: only the names the policy allows, and
// no notification target's.
func (app *App) specGetenv(spec *rollouts.Spec) func(string) string {
	return app.envPolicy().Getenv(app.Getenv, app.notifiers.with(spec))
}

// gateGetenv is the environment a gate webhook of spec reads (nil spec: only the notifier names
// recorded).
func (app *App) gateGetenv(spec *rollouts.Spec) func(string) string {
	return app.envPolicy().GateGetenv(app.Getenv, app.notifiers.with(spec))
}

// checkSourceRefs refuses a metrics source that references a name the operator did not allow, before
// anything connects: the host the spec names never receives it.
func (app *App) checkSourceRefs(spec *rollouts.Spec, src string) error {
	var errs []error
	for _, name := range envref.Refs(src) {
		if err := app.envPolicy().Check(name, app.notifiers.with(spec)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("metrics.source of rollout %s is not opened: %w", spec.Name, errors.Join(errs...))
	}
	return nil
}

// envWarnings warns, at its file:line:col, of every env: reference of a metrics source, a gate or a
// notification target that the allow-list does not resolve.
func envWarnings(set *rollouts.Set, policy envref.Policy) []rollouts.Problem {
	var out []rollouts.Problem
	warn := func(d *rollouts.Document, field, name string, err error) {
		line, col := positionOf(d.Source, envref.Prefix+name)
		what := "the source is not opened"
		switch {
		case field == "rollback.notify" || field == "notify":
			what = "this target gets no notification"
		case field != "metrics.source":
			what = "the gate stays shut"
		}
		msg := fmt.Sprintf("%s: %v; it resolves to nothing and %s", field, err, what)
		if errors.Is(err, envref.ErrNotAllowed) {
			msg += fmt.Sprintf(" (allow it with %s=%s or --allow-env %s, or rename it %s…)", envref.AllowVar, name, name, envref.AllowedPrefix)
		}
		out = append(out, rollouts.Problem{File: d.Path, Line: line, Col: col, Warning: true, Message: msg})
	}
	var all notifierIndex // a notification target of any spec: no source or gate of any reads it
	all.add(set)
	for _, d := range set.Documents {
		notifiers := all.with(d.Spec)
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
		for _, ref := range targetRefs(d.Spec) {
			if err := policy.CheckNotify(ref.name); err != nil {
				warn(d, ref.field, ref.name, err)
			}
		}
	}
	return out
}
