package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// Errors of a pull request's plan, which are notes, not failures: the plan is about the change, and
// production metrics are often out of a hosted runner's reach.
var (
	// errNotContacted marks a metrics source the pull request chose (its host, credentials or a
	// rule's query differ from the base branch's), which the plan does not contact.
	errNotContacted = errors.New("not contacted")
	// errUnreachable marks production metrics this runner cannot reach.
	errUnreachable = errors.New("production metrics are not reachable from this runner")
)

// prPlan is what `plan --base` knows of the base branch: the specs it holds, by rollout name, so that
// a source the pull request changed is never contacted with the runner's environment.
type prPlan struct {
	// base holds the base branch's specs by name; nil when the base branch could not be read, and then
	// every source is the pull request's.
	base map[string]*rollouts.Spec
	// baseFiles are the base's spec files by path, for the change in words.
	baseFiles map[string]*rollouts.Spec
	// from says which commit the base's definitions were read from, or why none was.
	from string
}

// readBase reads the specs under dir of the base branch of the checkout repo: the remote-tracking
// branch origin/BASE, the local branch BASE, else the pull request event's base commit
// (pull_request.base.sha in GITHUB_EVENT_PATH) or the first parent of GitHub's merge commit
// (actions/checkout fetches both with fetch-depth: 2).
func readBase(repo *git.Repository, base, dir string, getenv func(string) string) *prPlan {
	p := &prPlan{}
	var candidates []string
	for _, ref := range []string{"refs/remotes/origin/" + base, "refs/heads/" + base} {
		if r, err := repo.Reference(plumbing.ReferenceName(ref), true); err == nil {
			candidates = append(candidates, r.Hash().String())
		}
	}
	if sha := eventBaseSHA(getenv); sha != "" {
		candidates = append(candidates, sha)
	}
	// GitHub's merge commit of the pull request (GITHUB_SHA, which the pull request's author does not
	// choose) has the base branch as its first parent.
	if head, err := repo.Head(); err == nil && getenv("GITHUB_SHA") == head.Hash().String() {
		if c, err := repo.CommitObject(head.Hash()); err == nil && c.NumParents() == 2 {
			candidates = append(candidates, c.ParentHashes[0].String())
		}
	}
	for _, sha := range candidates {
		commit, err := repo.CommitObject(plumbing.NewHash(sha))
		if err != nil {
			continue
		}
		specs, files, err := specsAt(commit, dir)
		if err != nil {
			continue
		}
		p.base, p.baseFiles, p.from = specs, files, fmt.Sprintf("%s at %s", base, shortHash(sha))
		return p
	}
	p.from = fmt.Sprintf("the base branch %s is not in this checkout (fetch it, e.g. actions/checkout with fetch-depth: 2)", base)
	return p
}

// eventBaseSHA is pull_request.base.sha of the GitHub event being handled, if any.
func eventBaseSHA(getenv func(string) string) string {
	path := getenv("GITHUB_EVENT_PATH")
	if path == "" {
		return ""
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var ev struct {
		PullRequest struct {
			Base struct {
				SHA string `json:"sha"`
			} `json:"base"`
		} `json:"pull_request"`
	}
	if json.Unmarshal(raw, &ev) != nil {
		return ""
	}
	return ev.PullRequest.Base.SHA
}

// specsAt parses the spec files directly under dir at commit. A file that does not parse is left out:
// its rollout counts as new.
func specsAt(commit *object.Commit, dir string) (map[string]*rollouts.Spec, map[string]*rollouts.Spec, error) {
	tree, err := commit.Tree()
	if err != nil {
		return nil, nil, err
	}
	byName, byFile := map[string]*rollouts.Spec{}, map[string]*rollouts.Spec{}
	sub, err := tree.Tree(dir)
	if errors.Is(err, object.ErrDirectoryNotFound) {
		return byName, byFile, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range sub.Entries {
		if !e.Mode.IsFile() || !rollouts.IsSpecFile(e.Name) {
			continue
		}
		f, err := sub.TreeEntryFile(&e)
		if err != nil {
			continue
		}
		text, err := f.Contents()
		if err != nil {
			continue
		}
		file := path.Join(dir, e.Name)
		spec, problems := rollouts.Parse(file, []byte(text))
		if spec == nil || hasErrors(problems) {
			continue
		}
		byName[spec.Name], byFile[file] = spec, spec
	}
	return byName, byFile, nil
}

func hasErrors(ps []rollouts.Problem) bool {
	for _, p := range ps {
		if !p.Warning {
			return true
		}
	}
	return false
}

// metricsIdentity is what a pull request must not change for the plan to contact a source: the
// source (host, user, credentials' references, parameters), the schema and every rule's own query.
func metricsIdentity(spec *rollouts.Spec) string {
	parts := []string{spec.Metrics.Source, spec.Metrics.Schema}
	for _, r := range spec.Analysis.Rules {
		parts = append(parts, r.Metric+"="+r.Query)
	}
	return strings.Join(parts, "\x00")
}

// changedMetrics names what the pull request changed of spec's metrics definition ("" for nothing).
func (p *prPlan) changedMetrics(spec *rollouts.Spec) string {
	if p.base == nil {
		return "the base branch's definition could not be read: " + p.from
	}
	old, ok := p.base[spec.Name]
	if !ok {
		return "the rollout is new in this pull request"
	}
	if metricsIdentity(old) == metricsIdentity(spec) {
		return ""
	}
	var what []string
	if old.Metrics.Source != spec.Metrics.Source {
		what = append(what, "metrics.source")
	}
	if old.Metrics.Schema != spec.Metrics.Schema {
		what = append(what, "metrics.schema")
	}
	queries := map[string]string{}
	for _, r := range old.Analysis.Rules {
		queries[r.Metric] = r.Query
	}
	for _, r := range spec.Analysis.Rules {
		if q, ok := queries[r.Metric]; r.Query != "" && (!ok || q != r.Query) {
			what = append(what, "the query of rule "+r.Metric)
		}
	}
	if len(what) == 0 {
		what = append(what, "the rules' queries")
	}
	return "this pull request changes " + strings.Join(what, ", ")
}

// guard returns an error wrapping errNotContacted when the pull request changed spec's metrics
// definition, or errUnreachable when a file: source is not in this checkout; nil lets the plan read.
func (p *prPlan) guard(spec *rollouts.Spec) error {
	if why := p.changedMetrics(spec); why != "" {
		return fmt.Errorf("metrics %w: %s, and the plan never contacts a source a pull request chose with the runner's environment; the reconciler reads it once this merges", errNotContacted, why)
	}
	if file, ok := strings.CutPrefix(spec.Metrics.Source, "file:"); ok && file != "" {
		if _, err := os.Stat(filepath.FromSlash(file)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: the metrics file %s is not in this checkout", errUnreachable, file)
		}
	}
	return nil
}

// isUnreachable reports whether err says the source could not be reached from here at all: a
// connection refused, a timeout, a name that does not resolve, a file that is not there.
func isUnreachable(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.Is(err, errUnreachable), errors.Is(err, fs.ErrNotExist), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &dns), errors.As(err, &op):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return errors.Is(err, policy.ErrSourceUnavailable) && strings.Contains(err.Error(), "no answer within")
}

// settle turns a pull request plan's metrics that were not contacted or not reachable into notes: the
// result says so plainly and is not a failure, since the plan is about the change. The bookkeeping a
// failing source would cause (an alert, a failing-since mark) is not what merging does, so it goes too.
func settle(rep *reconcile.Report) {
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Err == nil || r.Decision == "" {
			continue
		}
		detail := firstLineOf(r.Err.Error())
		for _, prefix := range []string{"metrics source: ", "metrics not contacted: ", errUnreachable.Error() + ": "} {
			detail = strings.TrimPrefix(detail, prefix)
		}
		var note string
		switch {
		case errors.Is(r.Err, errNotContacted):
			note = "metrics not read: " + detail
		case isUnreachable(r.Err):
			note = "production metrics are not reachable from this runner (" + detail + "); the decision is made without " +
				"them, and the reconciler that reaches them (in the cluster, or on a self-hosted runner) judges with them"
		default:
			continue
		}
		r.Err = nil
		r.Effect = "nothing yet: " + note
		r.Reasons = append(withoutFailureReasons(r.Reasons), note)
		if r.Evidence != nil {
			r.Evidence.Reasons = append(withoutFailureReasons(r.Evidence.Reasons), note)
		}
	}
}

// withoutFailureReasons drops the reasons a failing source adds: in a pull request's plan they are
// replaced by one note.
func withoutFailureReasons(reasons []string) []string {
	var out []string
	for _, r := range reasons {
		if strings.HasPrefix(r, "metrics source failed") || strings.HasPrefix(r, "metrics source failing since") ||
			strings.Contains(r, "consecutive metrics failure") {
			continue
		}
		out = append(out, r)
	}
	return out
}

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
	if old.Status != nil && spec.Status != nil && *old.Status != *spec.Status {
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
	for _, t := range spec.Rollback.Notify {
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
