package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// describeChanges says in words what the pull request changes, rollout by rollout: for which users,
// the stage schedule, the rules and their limits, the source and the notification targets. head is the
// checkout's set; rollouts that did not change are left out.
func describeChanges(p *prPlan, head *rollouts.Set) string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, d := range head.Documents {
		spec := d.Spec
		seen[spec.Name] = true
		var old *rollouts.Spec
		if p.base != nil {
			old = p.base[spec.Name]
		}
		changes := specChanges(old, spec)
		if p.base != nil && old != nil && len(changes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**%s** (`%s`)\n\n", reconcile.Cell(spec.Name), reconcile.Cell(d.Path))
		switch {
		case p.base == nil:
			fmt.Fprintf(&b, "- what changes: unknown (%s)\n", reconcile.Cell(p.from))
		case old == nil:
			b.WriteString("- what changes: a new rollout\n")
		default:
			b.WriteString("- what changes:\n")
			for _, c := range changes {
				fmt.Fprintf(&b, "  - %s\n", reconcile.Cell(c))
			}
		}
		fmt.Fprintf(&b, "- who: %s\n", reconcile.Cell(audience(spec)))
		fmt.Fprintf(&b, "- stages: %s\n", reconcile.Cell(schedule(spec)))
		fmt.Fprintf(&b, "- rules: %s\n", reconcile.Cell(rulesInWords(spec)))
		fmt.Fprintf(&b, "- metrics: %s\n", reconcile.Cell(sourceInWords(spec)))
		fmt.Fprintf(&b, "- notifies: %s\n", reconcile.Cell(notifyInWords(spec)))
	}
	var removed []string
	for name := range p.base {
		if !seen[name] {
			removed = append(removed, name)
		}
	}
	sort.Strings(removed)
	for _, name := range removed {
		fmt.Fprintf(&b, "\n**%s**: removed by this pull request; its users all get the stable variant once the apps read the change\n", reconcile.Cell(name))
	}
	if b.Len() == 0 {
		return ""
	}
	return "#### What this pull request changes\n" + b.String()
}

// specChanges lists in words what differs between old and spec (old nil: none).
func specChanges(old, spec *rollouts.Spec) []string {
	if old == nil {
		return nil
	}
	var out []string
	add := func(field, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s: %s → %s", field, dash(a), dash(b)))
		}
	}
	variant := func(v *rollouts.Variant) string {
		if v == nil {
			return ""
		}
		if v.Prompt == "" {
			return v.Model
		}
		return v.Model + " with " + v.Prompt
	}
	add("stable", variant(&old.Stable), variant(&spec.Stable))
	if variant(old.Canary) != variant(spec.Canary) {
		switch {
		case spec.Canary == nil:
			out = append(out, "the canary is removed: every user gets the stable variant")
		case old.Canary == nil:
			out = append(out, "a canary starts: "+variant(spec.Canary)+" (stage 0 once merged)")
		default:
			out = append(out, fmt.Sprintf("canary: %s → %s (the rollout restarts at stage 0)", variant(old.Canary), variant(spec.Canary)))
		}
	}
	add("traffic.weight", fmt.Sprintf("%d%%", old.Traffic.Weight), fmt.Sprintf("%d%%", spec.Traffic.Weight))
	add("users", audience(old), audience(spec))
	add("stages", schedule(old), schedule(spec))
	add("rules", rulesInWords(old), rulesInWords(spec))
	add("metrics", sourceInWords(old), sourceInWords(spec))
	add("notifies", notifyInWords(old), notifyInWords(spec))
	add("promotion", old.Promotion.Via, spec.Promotion.Via)
	add("schedule", old.Schedule, spec.Schedule)
	if old.Status != nil && spec.Status != nil && !reflect.DeepEqual(*old.Status, *spec.Status) {
		out = append(out, "status: edited by hand in this pull request")
	}
	return out
}

// audience says which users get the canary.
func audience(spec *rollouts.Spec) string {
	key := spec.Assignment.Key
	if key == "" {
		key = "the assignment key"
	}
	if spec.Canary == nil {
		return "every user gets the stable variant (" + spec.Stable.Model + ")"
	}
	s := fmt.Sprintf("%d%% of users by %s get the canary now", spec.Traffic.Weight, key)
	if spec.Traffic.Shadow > 0 {
		s += fmt.Sprintf(", %d%% of requests mirrored to it", spec.Traffic.Shadow)
	}
	if len(spec.Assignment.Exclude) > 0 {
		s += "; always stable: " + strings.Join(spec.Assignment.Exclude, ", ")
	}
	if len(spec.Assignment.Include) > 0 {
		s += "; always canary: " + strings.Join(spec.Assignment.Include, ", ")
	}
	return s
}

// schedule is the stages in one line: "5% for 4h (≥200 requests an arm) → 25% … → 100%".
func schedule(spec *rollouts.Spec) string {
	var parts []string
	for _, st := range spec.Stages {
		s := fmt.Sprintf("%d%%", st.Weight)
		if st.Shadow > 0 && st.Weight == 0 {
			s = fmt.Sprintf("shadow %d%%", st.Shadow)
		}
		var cond []string
		if st.MinDuration > 0 {
			cond = append(cond, "≥"+st.MinDuration.String())
		}
		if st.MinRequests > 0 {
			cond = append(cond, fmt.Sprintf("≥%d requests an arm", st.MinRequests))
		}
		if st.MaxDuration > 0 {
			cond = append(cond, "≤"+st.MaxDuration.String())
		}
		if st.Gate != nil {
			cond = append(cond, "a gate")
		}
		if len(cond) > 0 {
			s += " (" + strings.Join(cond, ", ") + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " → ")
}

// rulesInWords lists each rule with its limits.
func rulesInWords(spec *rollouts.Spec) string {
	var parts []string
	for _, r := range spec.Analysis.Rules {
		var lim []string
		if r.Max != nil {
			lim = append(lim, fmt.Sprintf("at most %g", *r.Max))
		}
		if r.Min != nil {
			lim = append(lim, fmt.Sprintf("at least %g", *r.Min))
		}
		if r.MaxIncrease != nil {
			lim = append(lim, "at most +"+r.MaxIncrease.String()+" over stable")
		}
		if r.MaxDecrease != nil {
			lim = append(lim, "at most -"+r.MaxDecrease.String()+" under stable")
		}
		s := r.Metric
		if r.Query != "" {
			s += " (its own query)"
		}
		if len(lim) > 0 {
			s += " " + strings.Join(lim, ", ")
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// sourceInWords names the metrics source without any secret: a URL's user info and parameters are
// left out (only env: references are ever there, but a spec may be wrong).
func sourceInWords(spec *rollouts.Spec) string {
	src := spec.Metrics.Source
	if src == "" {
		return "none"
	}
	if i := strings.Index(src, "://"); i >= 0 {
		rest := src[i+3:]
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			rest = rest[at+1:]
		}
		rest, _, _ = strings.Cut(rest, "?")
		src = src[:i+3] + rest
	}
	if spec.Metrics.Schema != "" {
		src += " (schema " + spec.Metrics.Schema + ")"
	}
	return src
}

// notifyInWords lists the notification targets by their env: names.
func notifyInWords(spec *rollouts.Spec) string {
	var parts []string
	for _, t := range spec.AllTargets() {
		if t.Slack != "" {
			parts = append(parts, "slack "+refName(t.Slack))
		}
		if t.Webhook != "" {
			parts = append(parts, "webhook "+refName(t.Webhook))
		}
	}
	if len(parts) == 0 {
		return "no one"
	}
	return strings.Join(parts, ", ")
}

// refName shows an env: reference as it is, and anything else as a placeholder (it may be a secret).
func refName(ref string) string {
	if strings.HasPrefix(ref, "env:") {
		return ref
	}
	return "<literal>"
}
