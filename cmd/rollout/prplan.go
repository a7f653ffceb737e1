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
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/urlpass"
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
	// baseCommit is the commit the base's definitions were read from ("" when none was).
	baseCommit string
	// checkout is the folder of the pull request's checkout ("" when unknown).
	checkout string
}

// notThePullRequest says why a plan against base does not show a pull request when the checkout is
// the base's commit itself, as actions/checkout leaves it on pull_request_target (and schedule,
// workflow_dispatch, push); "" when the checkout is something else.
func (p *prPlan) notThePullRequest(head, event string) string {
	if p.baseCommit == "" || head != p.baseCommit {
		return ""
	}
	why := "the checkout is the base branch's own commit, not the pull request"
	if event == "pull_request_target" {
		why = "on pull_request_target the checkout is the base branch, not the pull request"
	}
	return why + ", so this plan shows nothing the pull request changes: run the plan on pull_request, whose checkout is the pull request merged into its base (docs/github.md)"
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
		p.base, p.baseFiles, p.from, p.baseCommit = specs, files, fmt.Sprintf("%s at %s", base, shortHash(sha)), commit.Hash.String()
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
		if p.linksOutOfCheckout(filepath.FromSlash(file)) {
			return fmt.Errorf("metrics %w: the metrics file %s is in this pull request's checkout, where a symbolic link leads out of it; the plan does not follow a link the pull request may have made to a file of the runner's", errNotContacted, file)
		}
		if _, err := os.Stat(filepath.FromSlash(file)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: the metrics file %s is not in this checkout", errUnreachable, file)
		}
	}
	return nil
}

// gateGuard returns the reason stage's gate stays shut in a pull request's plan without being called:
// a webhook gate whose reference (its URL, or the env: name that holds it) the base branch's definition
// of the rollout does not hold at that stage. A pull request could otherwise make the runner POST to any
// host it names (inside a self-hosted runner's network too) and read the answer back in the plan
// comment. "" lets the plan call the gate; an evals gate reads the checkout and is always read.
func (p *prPlan) gateGuard(spec *rollouts.Spec, stage int) string {
	if stage < 0 || stage >= len(spec.Stages) || spec.Stages[stage].Gate == nil || spec.Stages[stage].Gate.Webhook == "" {
		return ""
	}
	why := ""
	switch old, ok := p.base[spec.Name]; {
	case p.base == nil:
		why = "the base branch's definition could not be read: " + p.from
	case !ok:
		why = "the rollout is new in this pull request"
	case stage >= len(old.Stages) || old.Stages[stage].Gate == nil || old.Stages[stage].Gate.Webhook != spec.Stages[stage].Gate.Webhook:
		why = fmt.Sprintf("this pull request changes the webhook of stage %d's gate", stage)
	default:
		return ""
	}
	return "gate webhook not called: " + why + ", and the plan never calls a webhook a pull request chose; the reconciler calls it once this merges"
}

// linksOutOfCheckout reports whether file names a place inside the pull request's checkout that a
// symbolic link leads out of. Whatever is in the checkout is the pull request's to choose: a link
// there to another rollout's traffic or any file the runner can read would put what it holds in the
// plan comment. A path outside the checkout is the base branch's definition, and is read as it is.
func (p *prPlan) linksOutOfCheckout(file string) bool {
	if p.checkout == "" {
		return false
	}
	root, err := filepath.Abs(p.checkout)
	if err != nil {
		return false
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return false
	}
	if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return false
	}
	outside, err := hostFS{root: root}.linksOutside(abs)
	return outside || (err != nil && !errors.Is(err, fs.ErrNotExist))
}

// isUnreachable reports whether err says the source could not be reached from here at all: a
// connection refused, a timeout, a name that does not resolve, a file that is not there, a password
// this job's environment does not hold (the pull-request workflow gets no secret).
func isUnreachable(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.Is(err, errUnreachable), errors.Is(err, fs.ErrNotExist), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, urlpass.ErrUnset),
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
