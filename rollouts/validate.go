package rollouts

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// nameRE is what a rollout name may hold: it becomes a branch name (rollout/<name>) and a label value.
var nameRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// MaxNameLength bounds a rollout name, as a DNS label and a Kubernetes name are bounded: it becomes a
// branch name, a label and a metric label value.
const MaxNameLength = 63

// envRefRE is an env:NAME reference to a secret held outside git.
var envRefRE = regexp.MustCompile(`^env:[A-Za-z_][A-Za-z0-9_]*$`)

// cronParser is the standard five-field parser, plus descriptors such as @hourly and @every 15m.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a spec's cron schedule (five fields, or a descriptor such as "@every 15m").
func ParseSchedule(s string) (cron.Schedule, error) {
	sched, err := cronParser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid cron schedule %q: %w", s, err)
	}
	return sched, nil
}

// validate checks what the types alone cannot: required fields, ranges, consistency between fields.
func (d *specDecoder) validate(s *Spec) {
	d.checkHeader(s)
	d.checkVariant("stable", &s.Stable, true)
	if s.Canary != nil {
		d.checkVariant("canary", s.Canary, true)
	}
	if s.Previous != nil {
		d.checkVariant("previous", s.Previous, true)
	}
	d.checkPercent("traffic.weight", s.Traffic.Weight)
	d.checkPercent("traffic.shadow", s.Traffic.Shadow)
	d.checkAssignment(&s.Assignment)
	if s.Schedule != "" {
		if _, err := cronParser.Parse(s.Schedule); err != nil {
			d.errorAt(d.at("schedule"), "schedule: invalid cron expression %q: %v", s.Schedule, err)
		}
	}
	d.checkStages(s.Stages)
	d.checkMetrics(&s.Metrics)
	d.checkAnalysis(&s.Analysis)
	d.checkEnum("promotion.via", s.Promotion.Via, "pull-request", "auto-merge", "commit")
	d.checkPromotion(&s.Promotion)
	d.checkEnum("rollback.via", s.Rollback.Via, "commit", "pull-request")
	for i, n := range s.Rollback.Notify {
		p := fmt.Sprintf("rollback.notify[%d]", i)
		d.checkNotify(p, n)
		if len(n.On) > 0 {
			d.errorAt(d.at(p+".on"), "%s.on: rollback.notify targets get rollbacks and alerts; list a target that chooses its events under the top-level notify", p)
		}
	}
	for i, n := range s.Notify {
		p := fmt.Sprintf("notify[%d]", i)
		d.checkNotify(p, n)
		for j, ev := range n.On {
			if !slices.Contains(Events, ev) {
				d.errorAt(d.at(fmt.Sprintf("%s.on[%d]", p, j)), "%s.on[%d]: unknown event %q; the events are %s", p, j, ev, strings.Join(Events, ", "))
			}
		}
	}
	if s.Status != nil {
		d.checkStatus(s)
	}
}

func (d *specDecoder) checkHeader(s *Spec) {
	required := func(p, v string) bool {
		if v == "" && !d.isBroken(p) {
			d.errorAt(d.at(p), "%s: required", p)
			return false
		}
		return true
	}
	if required("apiVersion", s.APIVersion) && s.APIVersion != APIVersion {
		d.errorAt(d.at("apiVersion"), "apiVersion: want %s, got %q", APIVersion, s.APIVersion)
	}
	if required("kind", s.Kind) && s.Kind != Kind {
		d.errorAt(d.at("kind"), "kind: want %s, got %q", Kind, s.Kind)
	}
	if required("name", s.Name) && len(s.Name) > MaxNameLength {
		// Checked first, and not echoed: the name becomes the branch rollout/<name>, which git and the
		// file systems under it refuse past a few hundred bytes.
		d.errorAt(d.at("name"), "name: is %d bytes long; at most %d", len(s.Name), MaxNameLength)
	} else if s.Name != "" && !nameRE.MatchString(s.Name) {
		d.errorAt(d.at("name"), "name: %q may hold only lower-case letters, digits and '-'", s.Name)
	}
}

func (d *specDecoder) checkVariant(p string, v *Variant, needModel bool) {
	if _, ok := d.values[p]; !ok && p == "stable" {
		d.errorAt(d.at(p), "stable: required (the model and prompt most users get)")
		return
	}
	if needModel && v.Model == "" && !d.isBroken(p+".model") {
		d.errorAt(d.at(p+".model"), "%s.model: required", p)
	}
}

func (d *specDecoder) checkPercent(p string, v int) {
	if v < 0 || v > 100 {
		d.errorAt(d.at(p), "%s: %d is not a percent in 0..100", p, v)
	}
}

func (d *specDecoder) checkEnum(p, v string, allowed ...string) {
	if v == "" {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	msg := fmt.Sprintf("%s: %q is not one of %s", p, v, strings.Join(allowed, ", "))
	if s := closest(v, allowed); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	d.errorAt(d.at(p), "%s", msg)
}

func (d *specDecoder) checkAssignment(a *Assignment) {
	d.checkEnum("assignment.unit", a.Unit, "key", UnitRequest)
	for field, globs := range map[string][]string{"assignment.include": a.Include, "assignment.exclude": a.Exclude} {
		for i, g := range globs {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				d.errorAt(d.at(fmt.Sprintf("%s[%d]", field, i)), "%s[%d]: %q is not a valid glob pattern", field, i, g)
			}
		}
	}
}

func (d *specDecoder) checkStages(stages []Stage) {
	if len(stages) == 0 {
		d.errorAt(d.keyAt("stages"), "stages: want at least one stage")
		return
	}
	prev := 0
	for i, st := range stages {
		p := fmt.Sprintf("stages[%d]", i)
		if n := d.values[p]; n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			d.errorAt(n, "%s: empty stage; want at least a weight or a shadow share", p)
			continue
		}
		d.checkPercent(p+".weight", st.Weight)
		d.checkPercent(p+".shadow", st.Shadow)
		if st.Weight < prev && !d.isBroken(p+".weight") {
			d.errorAt(d.at(p+".weight"), "%s.weight: %d is below the previous stage's %d; weights never decrease", p, st.Weight, prev)
		}
		prev = max(prev, st.Weight)
		if st.MinRequests < 0 {
			d.errorAt(d.at(p+".minRequests"), "%s.minRequests: must not be negative", p)
		}
		if st.MaxDuration != 0 && st.MaxDuration < st.MinDuration {
			d.errorAt(d.at(p+".maxDuration"), "%s.maxDuration: %s is shorter than minDuration %s", p, st.MaxDuration, st.MinDuration)
		}
		if st.Gate != nil {
			d.checkGate(p+".gate", st.Gate)
		}
	}
}

func (d *specDecoder) checkGate(p string, g *Gate) {
	switch {
	case g.Evals == "" && g.Webhook == "":
		d.errorAt(d.at(p), "%s: want exactly one of evals or webhook, got neither", p)
	case g.Evals != "" && g.Webhook != "":
		d.errorAt(d.at(p), "%s: want exactly one of evals or webhook, got both", p)
	}
	if g.MinPassRate < 0 || g.MinPassRate > 1 {
		d.errorAt(d.at(p+".minPassRate"), "%s.minPassRate: %s is not in 0%%..100%% (write 95%% or 0.95)", p, d.text(p+".minPassRate"))
	}
	if g.Webhook != "" {
		if g.MinPassRate != 0 || g.NoRegressions {
			d.errorAt(d.at(p), "%s: minPassRate and noRegressions apply to evals, not to a webhook", p)
		}
		if !envRefRE.MatchString(g.Webhook) {
			if reason := secretURL(g.Webhook); reason != "" {
				// The value itself is never echoed: it may be the secret.
				d.errorAt(d.at(p+".webhook"), "%s: this URL %s; keep it out of git and write env:NAME instead", p, reason)
			} else if u, err := url.Parse(g.Webhook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				d.errorAt(d.at(p+".webhook"), "%s.webhook: want an http(s) URL or env:NAME", p)
			}
		}
	}
}

// secretURL says why a literal URL looks like it carries a secret, or "" when it does not.
func secretURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	switch {
	case u.User != nil:
		return "holds credentials"
	case u.RawQuery != "":
		return "has a query string, which often holds a token"
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range []string{"hooks.slack.com", "discord.com", "discordapp.com", "webhook.office.com", "outlook.office.com"} {
		if host == h || strings.HasSuffix(host, "."+h) {
			return "is a secret webhook URL"
		}
	}
	return ""
}

// checkPromotion checks promotion.approvals and promotion.windows.
func (d *specDecoder) checkPromotion(p *Promotion) {
	if a := p.Approvals; a != nil && !d.isBroken("promotion.approvals") {
		if a.Count < 1 {
			d.errorAt(d.at("promotion.approvals.count"), "promotion.approvals.count: want 1 or more approving reviews, got %d", a.Count)
		}
		for i, who := range a.From {
			org, team, isTeam := strings.Cut(who, "/")
			if who == "" || strings.ContainsAny(who, " \t@") || (isTeam && (org == "" || team == "" || strings.Contains(team, "/"))) {
				d.errorAt(d.at(fmt.Sprintf("promotion.approvals.from[%d]", i)), "promotion.approvals.from[%d]: %q is neither a GitHub login nor org/team", i, who)
			}
		}
		if len(a.From) > 0 && a.Count > len(a.From) && !slices.ContainsFunc(a.From, func(s string) bool { return strings.Contains(s, "/") }) {
			d.errorAt(d.at("promotion.approvals.count"), "promotion.approvals.count: %d approvals from %d people can never be given", a.Count, len(a.From))
		}
	}
	w := p.Windows
	if w == nil || d.isBroken("promotion.windows") {
		return
	}
	if w.TimeZone != "" {
		if _, err := (&Windows{TimeZone: w.TimeZone}).Calendar(); err != nil {
			d.errorAt(d.at("promotion.windows.timezone"), "promotion.windows.timezone: %v", err)
		}
	}
	for _, k := range []struct {
		kind string
		list []string
	}{{"allow", w.Allow}, {"deny", w.Deny}} {
		kind := k.kind
		for i, s := range k.list {
			if err := ParseWindow(s); err != nil {
				d.errorAt(d.at(fmt.Sprintf("promotion.windows.%s[%d]", kind, i)), "promotion.windows.%s[%d]: %v", kind, i, err)
			}
		}
	}
}

func (d *specDecoder) checkNotify(p string, n Notify) {
	switch {
	case n.Slack == "" && n.Webhook == "":
		d.errorAt(d.at(p), "%s: want exactly one of slack or webhook, got neither", p)
		return
	case n.Slack != "" && n.Webhook != "":
		d.errorAt(d.at(p), "%s: want exactly one of slack or webhook, got both", p)
		return
	}
	field, v := "slack", n.Slack
	if v == "" {
		field, v = "webhook", n.Webhook
	}
	if !envRefRE.MatchString(v) {
		what := "must be an env:NAME reference"
		if strings.Contains(v, "://") {
			what = "is a literal URL; webhook URLs are secrets and don't belong in git: write env:NAME and set NAME in the controller's environment"
		}
		d.errorAt(d.at(p+"."+field), "%s.%s: %s", p, field, what)
	}
}

func (d *specDecoder) checkAnalysis(a *Analysis) {
	for _, c := range []struct {
		key string
		v   float64
	}{{"confidence", a.Confidence}, {"advanceConfidence", a.AdvanceConfidence}} {
		_, written := d.values["analysis."+c.key]
		switch {
		case c.v != 0 && (c.v <= 0 || c.v >= 1):
			d.errorAt(d.at("analysis."+c.key), "analysis.%s: %s is not a probability strictly between 0%% and 100%% (write 95%% or 0.95)", c.key, d.text("analysis."+c.key))
		case c.v == 0 && written && !d.isBroken("analysis."+c.key):
			// Written, yet zero: 0 itself, or a number too small for a float64 (1e-400), which would
			// otherwise silently become the default.
			d.errorAt(d.at("analysis."+c.key), "analysis.%s: %s is 0 (or too small to represent), not a probability strictly between 0%% and 100%% (write 95%% or 0.95; leave it out for the default)", c.key, d.text("analysis."+c.key))
		}
	}
	d.checkEnum("analysis.onInconclusive", a.OnInconclusive, "hold", "rollback")
	d.checkEnum("analysis.onMetricsError", a.OnMetricsError, "hold", "rollback")
	for i, r := range a.Rules {
		d.checkRule(fmt.Sprintf("analysis.rules[%d]", i), r)
	}
	seen := map[string]bool{}
	for i, name := range a.Segments {
		p := fmt.Sprintf("analysis.segments[%d]", i)
		switch {
		case !segmentNameRE.MatchString(name):
			d.errorAt(d.at(p), "%s: %q is not an attribute name: want letters, digits and _, starting with a letter or _ (it names a record's attrs key, a SQL column and a Prometheus label)", p, name)
		case seen[name]:
			d.errorAt(d.at(p), "%s: %q is listed twice", p, name)
		case reservedSegmentNames[name]:
			d.errorAt(d.at(p), "%s: %q is a field every record has, not an attribute that splits the traffic", p, name)
		}
		seen[name] = true
	}
}

// segmentNameRE is what an analysis.segments name may be: a JSON key, a SQL column and a Prometheus
// label alike.
var segmentNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// reservedSegmentNames are fields of every record, or labels every default query sets: segmenting by
// them would judge nothing, or clash with the source's own selectors.
var reservedSegmentNames = map[string]bool{"rollout": true, "variant": true, "ts": true, "key": true,
	"request_id": true, "outcome": true, "le": true, "__name__": true, "shadow": true}

func (d *specDecoder) checkRule(p string, r Rule) {
	if r.Metric == "" {
		if !d.isBroken(p + ".metric") {
			d.errorAt(d.at(p), "%s.metric: required", p)
		}
		return
	}
	if r.Max == nil && r.Min == nil && r.MaxIncrease == nil && r.MaxDecrease == nil {
		d.errorAt(d.at(p), "%s: want at least one limit: max, min, maxIncrease or maxDecrease", p)
	}
	if r.Max != nil && r.Min != nil && *r.Min > *r.Max {
		d.errorAt(d.at(p+".min"), "%s.min: %v is above max %v", p, *r.Min, *r.Max)
	}
	if r.MaxIncrease != nil && *r.MaxIncrease < 0 {
		d.errorAt(d.at(p+".maxIncrease"), "%s.maxIncrease: must not be negative", p)
	}
	if r.MaxDecrease != nil && (*r.MaxDecrease < 0 || *r.MaxDecrease > 1) {
		d.errorAt(d.at(p+".maxDecrease"), "%s.maxDecrease: %s is not in 0%%..100%%", p, *r.MaxDecrease)
	}
	m, builtin := BuiltinMetrics[r.Metric]
	if !builtin {
		if r.Query == "" {
			msg := fmt.Sprintf("%s.metric: unknown metric %q; a metric that is not built in needs a query", p, r.Metric)
			if s := closest(r.Metric, builtinMetricNames()); s != "" {
				msg += fmt.Sprintf(". Did you mean %q?", s)
			}
			d.errorAt(d.at(p+".metric"), "%s", msg)
		}
		return
	}
	if m.CanaryOnly && (r.MaxIncrease != nil || r.MaxDecrease != nil) {
		key := "maxIncrease"
		if r.MaxIncrease == nil {
			key = "maxDecrease"
		}
		with := "max"
		if m.Better == HigherIsBetter {
			with = "min"
		}
		d.errorAt(d.keyAt(p+"."+key), "%s.%s: %s has no stable value to compare with; limit it with %s", p, key, r.Metric, with)
	}
	switch m.Better {
	case LowerIsBetter:
		if r.MaxDecrease != nil {
			d.errorAt(d.keyAt(p+".maxDecrease"), "%s.maxDecrease: %s gets worse as it rises; a decrease is never a regression (did you mean maxIncrease?)", p, r.Metric)
		}
		if r.Min != nil {
			d.errorAt(d.keyAt(p+".min"), "%s.min: %s gets worse as it rises; limit it with max", p, r.Metric)
		}
	case HigherIsBetter:
		if r.MaxIncrease != nil {
			d.errorAt(d.keyAt(p+".maxIncrease"), "%s.maxIncrease: %s gets worse as it falls; an increase is never a regression (did you mean maxDecrease?)", p, r.Metric)
		}
		if r.Max != nil {
			d.errorAt(d.keyAt(p+".max"), "%s.max: %s gets worse as it falls; limit it with min", p, r.Metric)
		}
	}
	for _, lim := range []struct {
		key string
		v   *float64
	}{{"max", r.Max}, {"min", r.Min}} {
		if lim.v == nil {
			continue
		}
		written := d.text(p + "." + lim.key)
		switch {
		case m.Kind == Proportion && *lim.v > 1 && !strings.HasSuffix(written, "%"):
			d.errorAt(d.at(p+"."+lim.key), "%s.%s: %s is a proportion: %v", p, lim.key, r.Metric, errAboveOne(written))
		case m.Kind == Proportion && (*lim.v < 0 || *lim.v > 1):
			d.errorAt(d.at(p+"."+lim.key), "%s.%s: %s is a proportion; %s is not in 0%%..100%%", p, lim.key, r.Metric, written)
		case m.Kind != Proportion && strings.HasSuffix(written, "%"):
			d.errorAt(d.at(p+"."+lim.key), "%s.%s: %s is not a proportion; write its limit as a plain number in its own unit, not %s (for a limit relative to stable, use maxIncrease or maxDecrease)", p, lim.key, r.Metric, written)
		case *lim.v < 0:
			d.errorAt(d.at(p+"."+lim.key), "%s.%s: %s is never negative", p, lim.key, r.Metric)
		}
	}
}

// text is the source text of the scalar decoded at path, for messages that quote what the user wrote.
func (d *specDecoder) text(path string) string {
	if n, ok := d.values[path]; ok && n.Kind == yaml.ScalarNode {
		return strings.TrimSpace(n.Value)
	}
	return "?"
}

func (d *specDecoder) checkStatus(s *Spec) {
	st := s.Status
	d.checkEnum("status.phase", string(st.Phase), string(Pending), string(Progressing), string(Paused), string(RolledBack), string(Completed))
	if st.Phase == "" && !d.isBroken("status.phase") {
		d.errorAt(d.at("status.phase"), "status.phase: required")
	}
	if st.Stage < 0 || (len(s.Stages) > 0 && st.Stage >= len(s.Stages)) {
		d.errorAt(d.at("status.stage"), "status.stage: %d is not a stage index (0..%d)", st.Stage, max(len(s.Stages)-1, 0))
	}
}
