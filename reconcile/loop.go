package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing/fstest"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/gate"
	"github.com/rollout-dev/rollout/rollouts"
)

// GateCheck evaluates the gate of one stage of spec against tree, the default branch's snapshot. It
// never fails: a gate that cannot be evaluated is shut, with the reason.
type GateCheck func(ctx context.Context, tree fs.FS, spec *rollouts.Spec, stage int) policy.GateResult

// Gatekeeper returns the GateCheck of gate.Keeper: eval files read from the snapshot, webhooks posted
// with client (nil: http.DefaultClient) within timeout (0: the keeper's default).
func Gatekeeper(client *http.Client, timeout time.Duration) GateCheck {
	return func(ctx context.Context, tree fs.FS, spec *rollouts.Spec, stage int) policy.GateResult {
		g := &gate.Keeper{Repo: tree, Client: client, Timeout: timeout}
		return g.Check(ctx, spec, stage)
	}
}

// Defaults of Loop's optional fields.
const (
	DefaultBot        = "rollout-bot"
	DefaultMaxRetries = 3
	// DefaultMetricsTimeout bounds one metrics query, as the contract bounds a gate webhook.
	DefaultMetricsTimeout = 30 * time.Second
)

// Loop is the reconciler: one Tick judges every rollout of the repository and turns the decisions into
// commits, proposals and notifications.
//
// A Loop keeps no state between ticks: everything it needs is in git and on the forge, so a stateless
// cron run and the daemon decide, write and alert the same. (It remembers only which warnings it gave,
// to give each once per episode.)
type Loop struct {
	Repo     Repository
	Forge    Forge    // nil: advances and promotions fail with ErrNoForge
	Notifier Notifier // nil: notifications are skipped
	// Sources opens the metrics source of a spec.
	Sources func(*rollouts.Spec) (policy.Source, error)
	// Loaded, when set, is told the specs of every snapshot the loop reads, before any source or gate
	// of that snapshot opens (the caller keeps every rollout's notification targets from the others).
	Loaded func(*rollouts.Set)
	// Gates checks a stage gate; nil uses gate.Keeper with its defaults.
	Gates GateCheck
	// Judge decides one rollout; nil uses policy.Judge. Tests replace it to drive the loop through
	// decisions without simulating traffic.
	Judge func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision
	// Dir is the folder of the specs in the repository; default "rollouts".
	Dir string
	// Bot is the name the bot signs its proposals and comments with; default "rollout-bot".
	Bot string
	// ReportURL is where the published `rollout report` page lives (a GitHub Pages site, say); when
	// set, each proposal links its rollout's charts there. Empty: no link.
	ReportURL string
	Now       func() time.Time
	// MaxRetries bounds the fresh decisions after a rejected push; a rollback gets three times as many.
	MaxRetries int
	// MetricsTimeout bounds one metrics query; default DefaultMetricsTimeout. A source that does not
	// answer in time counts as a metrics failure.
	MetricsTimeout time.Duration
	// History reads the commits that changed a spec, to verify the bot's own bookkeeping before acting
	// on it (a pending notification). nil: Repo, when it is a FileHistory too; else such bookkeeping
	// is not trusted, and a warning says so.
	History FileHistory
	// Actor names the person on whose behalf Operate commits ("Name <email>"); it goes into the
	// commit's Rollout-Actor trailer. Empty for none.
	Actor string
	// Publish are the files applications route by (a GrowthBook export), rendered again into every
	// commit the loop makes on the default branch, and committed at the end of a pass when a merge or a
	// person's edit left them behind the specs. Empty: nothing is published.
	Publish []Publication
	Log     *slog.Logger

	// querying holds, by rollout, the start of a metrics query that is still running: an abandoned one
	// whose source ignored its deadline. The rollout's source is not asked again until it returns, so
	// a stuck source holds one goroutine, not one more at every pass.
	querying sync.Map

	// warned remembers the warnings given per rollout and status.message (see onceWarnings).
	warnedMu sync.Mutex
	warned   map[string]string
}

// ErrNoForge is returned for a decision that needs a proposal when the loop has no forge.
var ErrNoForge = errors.New("no forge configured to open proposals")

// ErrHumanCommits is returned when a bot branch holds commits that a human pushed and there is no open
// proposal whose evidence could be refreshed instead.
var ErrHumanCommits = errors.New("bot branch holds commits not made by the bot; delete it to let rollout propose again")

// ErrDeferred marks a failure that came after a commit landed and that the next pass repairs by
// itself: a notification recorded as pending in git, a proposal left open that the next pass closes.
// The change the commit made is done.
var ErrDeferred = errors.New("left for the next pass")

// deferred wraps err with ErrDeferred, keeping its message.
type deferred struct{ err error }

func (d deferred) Error() string        { return d.err.Error() }
func (d deferred) Unwrap() error        { return d.err }
func (d deferred) Is(target error) bool { return target == ErrDeferred }

// Report is what one pass did, or would do: one Result per rollout and per spec file that failed to load.
type Report struct {
	// Branch and Head are the default branch and the commit the pass started from.
	Branch  string
	Head    string
	Results []Result
	// Published is the commit that brought Loop.Publish's files up to date at the end of the pass ("" for
	// none); PublishErr is why they could not be (the next pass tries again).
	Published  string
	PublishErr error
}

// Failed reports whether any rollout or spec failed.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Err != nil {
			return true
		}
	}
	return false
}

// Result is what happened to one rollout.
type Result struct {
	Rollout string
	File    string
	// Decision is empty for a spec file that failed to load.
	Decision policy.Action
	From     int
	To       int
	// Commit is the commit written, on the default branch or on the bot branch ("" for none).
	Commit string
	// Proposal is the URL of the rollout's open proposal ("" for none).
	Proposal string
	// Effect says in a few words what was done or, in a plan, would be done.
	Effect  string
	Reasons []string
	// Next says what a person can do next, when the rollout waits on one: after a rollback, how to try
	// again (RetryAdvice); "" otherwise.
	Next string
	// Evidence is the judge's whole decision; nil for a spec that failed to load.
	Evidence *policy.Decision
	// Warnings are what the rollout's owner should fix though nothing failed: a notification target
	// that is not configured, bookkeeping that could not be trusted.
	Warnings []string
	Err      error
}

// RunOptions narrows a pass.
type RunOptions struct {
	// Only limits the pass to these rollouts (all when empty).
	Only []string
	// DryRun decides and plans without writing anything: no push, no proposal, no notification.
	DryRun bool
	// Stop, once closed, asks the pass to end soon (the process got a signal): the rollout under way
	// finishes, the pass begins no other (each is reported with ErrStopping) and publishes nothing.
	Stop <-chan struct{}
}

// ErrStopping is the error of a rollout a pass did not begin because it was asked to stop
// (RunOptions.Stop); the next pass judges it.
var ErrStopping = errors.New("not judged: the process was asked to stop; the next pass judges it")

// stopped reports whether stop is closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// Tick is one pass over every rollout: it writes what the decisions call for.
func (l *Loop) Tick(ctx context.Context) (*Report, error) { return l.Run(ctx, RunOptions{}) }

// Plan makes the same decisions as Tick and writes nothing.
func (l *Loop) Plan(ctx context.Context) (*Report, error) {
	return l.Run(ctx, RunOptions{DryRun: true})
}

// tick is the state one pass shares between its rollouts.
type tick struct {
	snap      *Snapshot
	set       *rollouts.Set
	proposals map[string]Proposal
	propErr   error
	dryRun    bool
}

// Run is one pass. Its error is for the pass as a whole (the repository could not be read); the failure
// of one rollout is in its Result and never stops the others.
func (l *Loop) Run(ctx context.Context, opts RunOptions) (*Report, error) {
	t := &tick{dryRun: opts.DryRun}
	if err := l.refresh(ctx, t); err != nil {
		return nil, err
	}
	if l.Forge != nil {
		ps, err := l.Forge.Proposals(ctx)
		if err != nil {
			t.propErr = fmt.Errorf("list proposals: %w", err)
		}
		t.proposals = ps
	}
	rep := &Report{Branch: t.snap.Branch, Head: t.snap.Head}
	only := map[string]bool{}
	for _, n := range opts.Only {
		only[n] = true
	}
	for _, res := range loadFailures(t.set) {
		if len(only) == 0 || only[res.Rollout] {
			rep.Results = append(rep.Results, res)
		}
	}
	names := make([]string, 0, len(t.set.Documents))
	for _, doc := range t.set.Documents {
		if len(only) == 0 || only[doc.Spec.Name] {
			names = append(names, doc.Spec.Name)
		}
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			rep.Results = append(rep.Results, Result{Rollout: name, Err: err})
			continue
		}
		if stopped(opts.Stop) {
			rep.Results = append(rep.Results, Result{Rollout: name, Err: ErrStopping})
			continue
		}
		res := l.reconcileOne(ctx, t, name)
		l.log().Info("rollout", "rollout", res.Rollout, "decision", string(res.Decision), "from", res.From,
			"to", res.To, "effect", res.Effect, "commit", res.Commit, "error", res.Err)
		rep.Results = append(rep.Results, res)
	}
	if !opts.DryRun && ctx.Err() == nil && !stopped(opts.Stop) {
		rep.Published, rep.PublishErr = l.publishStale(ctx, t)
		if rep.PublishErr != nil {
			l.log().Warn("publish", "error", rep.PublishErr)
		}
	}
	return rep, nil
}

// refresh takes a fresh snapshot of the default branch and loads its specs.
func (l *Loop) refresh(ctx context.Context, t *tick) error {
	snap, err := l.Repo.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	pf, prefetch := snap.Files.(prefetcher)
	if prefetch {
		if err := pf.Prefetch([]string{l.dir()}); err != nil {
			l.log().Warn("prefetch the specs", "error", err)
		}
	}
	set, err := rollouts.Load(snap.Files, l.dir())
	if err != nil {
		return fmt.Errorf("load specs at %s: %w", short(snap.Head), err)
	}
	if prefetch {
		// Best effort: a file that did not come is fetched when read, and its error reported there.
		if err := pf.Prefetch(namedFiles(set)); err != nil {
			l.log().Warn("prefetch the files the specs name", "error", err)
		}
	}
	if l.Loaded != nil {
		l.Loaded(set)
	}
	t.snap, t.set = snap, set
	return nil
}

// prefetcher is a snapshot that fetches files on demand (gitrepo's partial clone) and can fetch many in
// one request: the named files, and the files directly in a named folder. Prefetch is idempotent; its
// error only says the files will come one by one.
type prefetcher interface {
	Prefetch(paths []string) error
}

// namedFiles lists the repository files the specs name: prompts, eval sets and routed gateway configs.
// An opaque prompt label such as "v3" is listed too; a path that is not a file is skipped.
func namedFiles(set *rollouts.Set) []string {
	var out []string
	for _, doc := range set.Documents {
		s := doc.Spec
		for _, v := range []*rollouts.Variant{&s.Stable, s.Canary, s.Previous} {
			if v != nil && v.Prompt != "" {
				out = append(out, v.Prompt)
			}
		}
		for _, st := range s.Stages {
			if st.Gate != nil && st.Gate.Evals != "" {
				out = append(out, st.Gate.Evals)
			}
		}
		for _, r := range s.Traffic.Routes {
			out = append(out, r.LiteLLM, r.File)
		}
	}
	return out
}

// loadFailures turns the problems of files that failed to load into failed results, one per file.
func loadFailures(set *rollouts.Set) []Result {
	var out []Result
	for _, f := range FailedSpecs(set) {
		out = append(out, Result{Rollout: f.Rollout, File: f.File, Effect: "spec skipped", Err: f.Err()})
	}
	return out
}

// FailedSpec is a spec file that failed to load: the rollout it is reported as (the file's name
// without .yaml or .yml: its name: cannot be trusted), the file and its errors, each at file:line:col.
type FailedSpec struct {
	Rollout  string
	File     string
	Problems []rollouts.Problem
}

// Err joins the problems of the file.
func (f FailedSpec) Err() error {
	errs := make([]error, len(f.Problems))
	for i, p := range f.Problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// FailedSpecs groups the errors of set by file: one FailedSpec per file that failed to load, in the
// order of their first problem. plan, reconcile, status and the manual operations name a broken file
// the same way.
func FailedSpecs(set *rollouts.Set) []FailedSpec {
	var out []FailedSpec
	byFile := map[string]int{}
	for _, p := range set.Errors() {
		i, ok := byFile[p.File]
		if !ok {
			name := strings.TrimSuffix(strings.TrimSuffix(path.Base(p.File), ".yaml"), ".yml")
			out = append(out, FailedSpec{Rollout: name, File: p.File})
			i = len(out) - 1
			byFile[p.File] = i
		}
		out[i].Problems = append(out[i].Problems, p)
	}
	return out
}

// FailedSpecOf returns the file that failed to load which FailedSpecs reports as the named rollout.
func FailedSpecOf(set *rollouts.Set, name string) (FailedSpec, bool) {
	for _, f := range FailedSpecs(set) {
		if f.Rollout == name {
			return f, true
		}
	}
	return FailedSpec{}, false
}

// reconcileOne decides and acts for one rollout, isolated: a panic becomes its error, and a rejected push
// leads to a fresh snapshot and a fresh decision, a bounded number of times.
func (l *Loop) reconcileOne(ctx context.Context, t *tick, name string) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			l.log().Error("panic reconciling rollout", "rollout", name, "panic", p, "stack", string(debug.Stack()))
			res = Result{Rollout: name, Err: fmt.Errorf("internal error: %v", p)}
		}
	}()
	limit := l.maxRetries()
	for attempt := 0; ; attempt++ {
		doc := t.set.Lookup(name)
		if doc == nil {
			return Result{Rollout: name, Effect: "spec removed", Err: fmt.Errorf("rollout %s: spec is gone from the default branch", name)}
		}
		res, err := l.attempt(ctx, t, doc)
		// A commit that landed is never decided again: a later rejected push (the record of a failed
		// notification) must not hide the rollback it follows, nor its failure.
		if errors.Is(err, ErrStale) && res.Commit == "" {
			if res.Decision == policy.Rollback && attempt < 3*limit || attempt < limit {
				l.log().Info("push rejected, deciding again", "rollout", name, "attempt", attempt+1)
				if rerr := l.refresh(ctx, t); rerr != nil {
					err = errors.Join(err, rerr)
				} else {
					continue
				}
			}
		}
		res.Err = err
		return res
	}
}

// attempt is one decision for one rollout and the writes it calls for. A metrics source that failed is
// the rollout's error, whatever was written: the pass failed to judge it.
func (l *Loop) attempt(ctx context.Context, t *tick, doc *rollouts.Document) (Result, error) {
	j := l.decide(ctx, t, doc.Spec, l.now())
	res, err := l.act(ctx, t, doc, j)
	if j.sourceErr != nil && !(res.Decision == policy.Rollback && res.Commit != "") {
		// A rollback that landed (onMetricsError: rollback) is the pass doing its job: its reasons name
		// the source's failures, and its row does not say failed.
		err = errors.Join(j.sourceErr, err)
	}
	return res, err
}

// act plans and carries out the change that judgement j calls for.
func (l *Loop) act(ctx context.Context, t *tick, doc *rollouts.Document, j judgement) (Result, error) {
	now := l.now()
	spec, d := doc.Spec, j.d
	res := Result{Rollout: spec.Name, File: doc.Path, Decision: d.Action, From: d.Current.Weight, To: d.Current.Weight,
		Reasons: d.Reasons, Evidence: &d}
	var prop *Proposal
	if p, ok := t.proposals[spec.Name]; ok {
		prop = &p
		if p.State == ProposalOpen {
			res.Proposal = p.URL
		}
	}
	in := planInput{Doc: doc, Decision: d, Proposal: prop, Now: now, MetricsErrors: j.metricsErrors,
		FailingSince: j.failingSince, Alert: j.alert, MismatchSince: j.mismatchSince, MismatchAlert: j.mismatchAlert, Bot: l.bot(), ReportURL: l.ReportURL}
	if rule := spec.Promotion.Approvals; rule != nil && prop != nil && prop.State == ProposalOpen && l.Forge != nil {
		to := -1
		switch {
		case d.Action == policy.Advance && d.Next != nil:
			to = d.Next.Weight
		case d.Action == policy.Promote:
			to = 100
		}
		if to >= 0 {
			st := ApprovalState{Need: rule.Count, Unread: "the forge cannot list reviews"}
			if r, ok := l.Forge.(ApprovalReader); ok {
				st = countApprovals(ctx, r, *prop, rule, l.bot(), ApprovalKey(to, rollouts.CanaryFingerprint(spec)))
			}
			in.Approvals = &st
		}
	}
	if err := l.pendingNotification(ctx, doc, &in); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
	act, err := planChange(in)
	if err != nil {
		return res, err
	}
	res.To = act.to
	res.Effect = act.effect
	if d.Action == policy.Rollback || spec.Status != nil && spec.Status.Phase == rollouts.RolledBack && d.Action == policy.Hold {
		res.Next = RetryAdvice(doc.Path)
	}
	if rebase := t.set.RebaseAdvice(spec.Name); rebase != "" {
		res.Warnings = append(res.Warnings, rebase)
		if res.Next == "" {
			res.Next = rebase
		}
	}
	if act.event == nil || t.dryRun {
		// A notification sent now reports its own unsent targets; do not say it twice.
		res.Warnings = append(res.Warnings, l.targetWarnings(spec)...)
	}
	warnings := act.warnings
	if j.malformed != "" {
		warnings = append(slices.Clip(warnings), j.malformed)
	}
	res.Warnings = append(res.Warnings, l.onceWarnings(spec, warnings)...)
	if act.stopAutoMerge != "" && !t.dryRun && prop != nil {
		// Before anything else: a new head pushed while auto-merge is on would merge by itself.
		if err := l.stopAutoMerge(ctx, *prop, &res); err != nil {
			return res, err
		}
	}
	if (act.kind == actNone || act.kind == actRefresh) && !t.dryRun && prop != nil && prop.State == ProposalOpen &&
		(act.proposal.AutoMerge || prop.AutoMerging && act.stopAutoMerge == "") {
		human, err := l.personPushed(ctx, t, act.proposal.Branch, prop)
		if err != nil {
			return res, err
		}
		if human {
			act.proposal.AutoMerge, act.autoMerge = false, false
			if err := l.keepPersonsPushUnmerged(ctx, *prop, act.stopAutoMerge == "", &res); err != nil {
				return res, err
			}
		}
	}
	if act.kind == actNone {
		if act.autoMerge && !t.dryRun && prop != nil {
			return l.autoMerge(ctx, *prop, res)
		}
		if prop == nil && t.propErr != nil && staleIfOpen(spec) {
			return l.closeUnlisted(ctx, t, spec, res)
		}
		return res, nil
	}
	// A plan needs no forge: on a pull request from a fork there is no token to make one with.
	if act.needsForge && l.Forge == nil && !t.dryRun {
		return res, ErrNoForge
	}
	if act.needsForge && t.propErr != nil {
		return res, t.propErr
	}
	if t.dryRun {
		return res, nil
	}
	act.proposal.Base = t.snap.Branch
	switch act.kind {
	case actCommit:
		return l.commitDefault(ctx, t, doc, act, prop, res)
	case actPropose:
		return l.propose(ctx, t, doc, act, prop, res)
	case actRefresh:
		p, err := l.Forge.Propose(ctx, act.proposal)
		if err != nil {
			return res, fmt.Errorf("refresh proposal: %w", err)
		}
		res.Proposal = p.URL
		return res, nil
	case actClose:
		if err := l.Forge.Close(ctx, *prop, act.closeComment); err != nil {
			return res, fmt.Errorf("close proposal: %w", err)
		}
		res.Proposal = ""
		return res, nil
	case actNotify:
		return l.deliverPending(ctx, t, doc, act, prop, res)
	}
	return res, fmt.Errorf("unknown action %d", act.kind)
}

// staleIfOpen reports whether an open proposal of spec would be stale, to be closed: the rollout is
// rolled back, finished, or has no canary.
func staleIfOpen(spec *rollouts.Spec) bool {
	if spec.Canary == nil {
		return true
	}
	return spec.Status != nil && (spec.Status.Phase == rollouts.RolledBack || spec.Status.Phase == rollouts.Completed)
}

// closeUnlisted is the housekeeping of a pass whose proposal listing failed, for a rollout whose open
// proposal would be stale: it closes that proposal by its known branch, or reports the failure, on
// every such pass until the forge answers, so a stale proposal is never left open silently.
func (l *Loop) closeUnlisted(ctx context.Context, t *tick, spec *rollouts.Spec, res Result) (Result, error) {
	comment := fmt.Sprintf("The rollout is %s; this proposal no longer applies.", phaseOf(spec, derefStatus(spec.Status)))
	closed, err := l.closeByBranch(ctx, t, spec, comment)
	if err != nil {
		return res, err
	}
	if closed {
		res.Effect = "closed the stale proposal of " + BranchFor(spec.Name)
	}
	return res, nil
}

// closeByBranch closes the open proposal of spec's branch without the listing that failed (t.propErr),
// through a BranchCloser forge; closed reports whether one was open. Without one, or in a plan, the
// listing's failure is the error: a proposal may still be open.
func (l *Loop) closeByBranch(ctx context.Context, t *tick, spec *rollouts.Spec, comment string) (bool, error) {
	unknown := fmt.Errorf("the rollout's proposal, if one is open, is not closed yet (every pass tries again until it is): %w", t.propErr)
	closer, ok := l.Forge.(BranchCloser)
	if !ok || t.dryRun {
		return false, unknown
	}
	closed, err := closer.CloseBranch(ctx, BranchFor(spec.Name), comment)
	if err != nil {
		return false, errors.Join(unknown, fmt.Errorf("close the proposal of %s: %w", BranchFor(spec.Name), err))
	}
	return closed, nil
}

func derefStatus(st *rollouts.Status) rollouts.Status {
	if st == nil {
		return rollouts.Status{}
	}
	return *st
}

// autoMerge asks the forge again to merge an open auto-merge proposal that is up to date: one call,
// since the forge may have refused while checks ran and the evidence has not changed since.
func (l *Loop) autoMerge(ctx context.Context, p Proposal, res Result) (Result, error) {
	m, ok := l.Forge.(AutoMerger)
	if !ok {
		return res, nil
	}
	merged, err := m.AutoMerge(ctx, p.Number)
	if err != nil {
		return res, fmt.Errorf("auto-merge proposal: %w", err)
	}
	if merged {
		res.Effect = "proposal merged (auto-merge)"
	}
	return res, nil
}

// personPushed reports whether the branch of open proposal p holds a commit the bot did not make, as
// the repository tells it (by author) or the forge does (GitHub maps emails to accounts).
func (l *Loop) personPushed(ctx context.Context, t *tick, branch string, p *Proposal) (bool, error) {
	state, err := l.Repo.Branch(ctx, branch, t.snap.Branch)
	if err != nil {
		return false, fmt.Errorf("read branch %s: %w", branch, err)
	}
	forgeSaysHuman := p.Head == state.Head && len(p.HumanCommits) > 0
	return state.Head != "" && (!state.OnlyBot || forgeSaysHuman), nil
}

// keepPersonsPushUnmerged is what becomes of an auto-merge proposal whose branch a person pushed to:
// the bot merges only its own commits, whose evidence the proposal shows, so it merges nothing, turns
// off the auto-merge it turned on (when stop; a person's stays, with a warning), and says why.
func (l *Loop) keepPersonsPushUnmerged(ctx context.Context, p Proposal, stop bool, res *Result) error {
	if stop && p.AutoMerging {
		if err := l.stopAutoMerge(ctx, p, res); err != nil {
			return err
		}
	}
	res.Effect += fmt.Sprintf("; not merged: a person pushed to %s, and the bot merges only its own commits "+
		"(review and merge it by hand, or delete the branch to let the bot propose again)", p.Branch)
	return nil
}

// stopAutoMerge turns off the auto-merge the bot turned on for open proposal p. Auto-merge a person
// turned on is theirs to keep, and a warning says the forge will still merge it.
func (l *Loop) stopAutoMerge(ctx context.Context, p Proposal, res *Result) error {
	c, ok := l.Forge.(AutoMergeCanceler)
	if !ok {
		return nil
	}
	kept, err := c.CancelAutoMerge(ctx, p.Number)
	if err != nil {
		return fmt.Errorf("turn off the auto-merge of proposal %d: %w", p.Number, err)
	}
	if kept != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s turned on auto-merge of proposal %d, so it stays on: "+
			"the forge merges it once its checks pass, though the decision does not", kept, p.Number))
	}
	return nil
}

// commitDefault writes act's change as one commit on the default branch, then closes the open proposal
// and delivers the notification the change calls for.
func (l *Loop) commitDefault(ctx context.Context, t *tick, doc *rollouts.Document, act action, prop *Proposal, res Result) (Result, error) {
	files, err := changedFiles(t.snap.Files, doc, act.change)
	if err != nil {
		return res, err
	}
	res.Warnings = append(res.Warnings, l.published(t.snap.Files, t.set, files)...)
	commit, err := l.Repo.Push(ctx, PushRequest{
		Branch: t.snap.Branch, Parent: t.snap.Head, Expect: t.snap.Head,
		Files: files, Message: act.message, When: l.now(),
	})
	if err != nil {
		return res, err // the repository names the branch
	}
	res.Commit = commit
	l.landed(t, doc, commit, files)
	var errs []error
	if act.closeComment != "" && prop != nil && prop.State == ProposalOpen && l.Forge != nil {
		comment := strings.ReplaceAll(act.closeComment, "{commit}", commit)
		if err := l.Forge.Close(ctx, *prop, comment); err != nil {
			// The next pass closes the proposal of a rolled back or completed rollout.
			errs = append(errs, deferred{fmt.Errorf("close proposal: %w", err)})
		} else {
			res.Proposal = ""
		}
	}
	if act.event != nil && act.event.Decision == string(policy.Rollback) && t.propErr != nil {
		// The open proposal of a rolled back rollout could not be listed: close it by its branch, or
		// say so and fail the pass; the next passes try again (closeUnlisted).
		comment := "Rolled back in " + commit + ": " + Inline(strings.Join(act.event.Reasons, "; "))
		if closed, err := l.closeByBranch(ctx, t, doc.Spec, comment); err != nil {
			errs = append(errs, err)
		} else if closed {
			res.Proposal = ""
		}
	}
	if act.kind == actCommit && act.event != nil {
		ev := *act.event
		ev.Commit = commit
		err := l.deliver(ctx, doc.Spec, ev)
		unsent, failed := splitNotifyErrors(err)
		for _, u := range unsent {
			res.Warnings = append(res.Warnings, "notification not sent: "+u.Error())
		}
		if failed != nil {
			owed, _ := FailedTargets(failed)
			failed = fmt.Errorf("notify: %w", failed)
			if merr := l.markNotifyPending(ctx, t, doc.Spec.Name, commit, owed); merr != nil {
				errs = append(errs, failed, merr)
			} else {
				errs = append(errs, deferred{failed})
			}
		}
	}
	if act.alert != nil {
		ev := *act.alert
		ev.Commit = commit
		if err := l.deliver(ctx, doc.Spec, ev); err != nil {
			res.Warnings = append(res.Warnings, "alert not delivered: "+err.Error())
			l.log().Warn("alert not delivered", "rollout", doc.Spec.Name, "error", err)
		}
	}
	for _, n := range act.notices {
		n.Commit = commit
		if prop != nil && n.Proposal == "" {
			n.Proposal = prop.URL
		}
		l.announce(ctx, doc.Spec, n, &res)
	}
	return res, errors.Join(errs...)
}

// joined is the errors errors.Join made err of, or err alone.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// splitNotifyErrors sorts a notifier's failures into the targets that are not configured (a warning:
// retrying cannot help) and the deliveries that failed (retried on the next pass).
func splitNotifyErrors(err error) (unsent []error, failed error) {
	if err == nil {
		return nil, nil
	}
	var rest []error
	for _, e := range joined(err) {
		if errors.Is(e, ErrTargetNotConfigured) {
			unsent = append(unsent, e)
		} else {
			rest = append(rest, e)
		}
	}
	return unsent, errors.Join(rest...)
}

// deliverPending delivers a rollback notification that a bot commit recorded as pending, to the targets
// that did not get it (act.owed), then commits what really happened: delivered, not sent (no target is
// configured), or dropped (rollback.notify lists none of them now). A delivery that fails again stays
// pending, and the pass fails.
func (l *Loop) deliverPending(ctx context.Context, t *tick, doc *rollouts.Document, act action, prop *Proposal, res Result) (Result, error) {
	spec := doc.Spec
	targets := OwedTargets(spec.Targets(rollouts.EventRollback), act.owed)
	var subject string
	var reasons []string
	switch {
	case len(targets) == 0:
		subject = "notification dropped"
		reasons = []string{fmt.Sprintf("rollback.notify lists no target now; the notification of %s was never sent", short(act.event.Commit))}
		if act.owed != nil {
			reasons = []string{fmt.Sprintf("rollback.notify no longer lists %s; the notification of %s was never sent to it",
				strings.Join(act.owed, ", "), short(act.event.Commit))}
		}
	case l.Notifier == nil:
		subject = "notification not sent"
		reasons = []string{"this reconciler has no notifier"}
	default:
		unsent, failed := splitNotifyErrors(l.deliverTo(ctx, targets, *act.event))
		if failed != nil {
			return res, fmt.Errorf("notify: %w", failed)
		}
		for _, u := range unsent {
			reasons = append(reasons, "not sent: "+u.Error())
			res.Warnings = append(res.Warnings, "notification not sent: "+u.Error())
		}
		subject = "notification delivered"
		if len(unsent) > 0 {
			subject = "notification not sent"
			if n := countTargets(targets); len(unsent) < n {
				subject = fmt.Sprintf("notification delivered to %d of %d targets", n-len(unsent), n)
			}
		} else {
			reasons = []string{fmt.Sprintf("the notification of %s was delivered", short(act.event.Commit))}
		}
	}
	act.message = bookkeeping(commitMessage(spec.Name, subject, reasons, policy.Rollback), "notification")
	act.event = nil
	return l.commitDefault(ctx, t, doc, act, prop, res)
}

// OwedTargets keeps, of targets, those named in owed (all of them when owed is nil), so that a retried
// notification does not go again to the targets that got it.
func OwedTargets(targets []rollouts.Notify, owed []string) []rollouts.Notify {
	if owed == nil {
		return targets
	}
	var out []rollouts.Notify
	for _, t := range targets {
		var kept rollouts.Notify
		if t.Slack != "" && slices.Contains(owed, TargetName("slack", t.Slack)) {
			kept.Slack = t.Slack
		}
		if t.Webhook != "" && slices.Contains(owed, TargetName("webhook", t.Webhook)) {
			kept.Webhook = t.Webhook
		}
		if kept.Slack != "" || kept.Webhook != "" {
			kept.On = t.On
			out = append(out, kept)
		}
	}
	return out
}

// FailedTargets names the targets of a Notifier's failures (its *TargetError values) that a retry may
// reach: not those that are not configured (ErrTargetNotConfigured), which no retry cures. ok is false,
// and names nil, when a failure names no target: the retry then goes to every target.
func FailedTargets(err error) (names []string, ok bool) {
	for _, e := range joined(err) {
		var te *TargetError
		if !errors.As(e, &te) {
			return nil, false
		}
		if !errors.Is(e, ErrTargetNotConfigured) && !slices.Contains(names, te.Target) {
			names = append(names, te.Target)
		}
	}
	return names, true
}

// countTargets counts the notification targets (a list entry may name a Slack and a webhook target).
func countTargets(targets []rollouts.Notify) int {
	n := 0
	for _, t := range targets {
		if t.Slack != "" {
			n++
		}
		if t.Webhook != "" {
			n++
		}
	}
	return n
}

// onceWarnings drops the warnings of spec that this Loop already gave for the same status.message:
// a forged pending-notification mark is warned of once per episode (until the message changes), not
// on every pass of the daemon. It is the one memory a Loop keeps between passes, and it only quiets a
// repeated warning: nothing is decided from it.
func (l *Loop) onceWarnings(spec *rollouts.Spec, warnings []string) []string {
	if len(warnings) == 0 || spec.Status == nil {
		return warnings
	}
	l.warnedMu.Lock()
	defer l.warnedMu.Unlock()
	if l.warned == nil {
		l.warned = map[string]string{}
	}
	var out []string
	for _, w := range warnings {
		key := spec.Name + "\x00" + w
		if msg, ok := l.warned[key]; ok && msg == spec.Status.Message {
			continue
		}
		l.warned[key] = spec.Status.Message
		out = append(out, w)
	}
	return out
}

// targetWarnings are the notification targets of spec that the notifier could not deliver to as
// configured (an unset env: reference), so that plan and reconcile say so before a rollback needs them.
func (l *Loop) targetWarnings(spec *rollouts.Spec) []string {
	c, ok := l.Notifier.(TargetChecker)
	if !ok {
		return nil
	}
	var out []string
	for _, p := range c.Check(spec.Rollback.Notify) {
		out = append(out, "rollback.notify: "+p)
	}
	for _, p := range c.Check(spec.Notify) {
		out = append(out, "notify: "+p)
	}
	return out
}

// pendingNotification fills in.NotifyPending when the rollout's status carries a pending-notification
// mark and the newest commit of the bot for this rollout recorded it in its Rollout-Notification
// trailer. The mark in status.message is only a hint that the history is worth reading: text a person
// wrote (a --reason) never makes the loop notify.
func (l *Loop) pendingNotification(ctx context.Context, doc *rollouts.Document, in *planInput) error {
	st := doc.Spec.Status
	if st == nil || st.Phase != rollouts.RolledBack || !notifyPending(st.Message) {
		return nil
	}
	in.NotifyMarkUnverified = true
	history := l.History
	if history == nil {
		history, _ = l.Repo.(FileHistory)
	}
	if history == nil {
		return nil
	}
	commits, err := history.FileLog(ctx, doc.Path, 0)
	if err != nil {
		in.NotifyMarkUnverified = false
		return fmt.Errorf("pending notification not verified (read the history of %s: %v); the next pass tries again", doc.Path, err)
	}
	for i, c := range commits {
		if !c.Bot || c.Trailers["Rollout"] != doc.Spec.Name {
			continue
		}
		if commit, ok := strings.CutPrefix(c.Trailers[TrailerNotification], "pending "); ok && rollbackOf(commits[i+1:], doc.Spec.Name, commit) {
			in.NotifyPending, in.NotifyMarkUnverified = commit, false
			if owed := c.Trailers[TrailerNotificationTargets]; owed != "" {
				in.NotifyOwed = strings.Split(owed, ", ")
			}
		}
		return nil
	}
	return nil
}

// rollbackOf reports whether commit is, among older, a rollback of rollout that the bot made. Git
// does not authenticate a commit's author, so a pending mark is only acted on when it names such a
// commit: whoever can push and writes the bot's address into a commit can at most have a real
// rollback's notification sent again, never put their own text where the commit goes.
func rollbackOf(older []CommitInfo, rollout, commit string) bool {
	for _, c := range older {
		if c.Hash == commit {
			return c.Bot && c.Trailers["Rollout"] == rollout && c.Trailers["Rollout-Decision"] == string(policy.Rollback) &&
				c.Trailers[TrailerBookkeeping] == ""
		}
	}
	return false
}

// markNotifyPending records in git that the notification of the rollback made in commit failed, so that
// the next tick, in this process or in a later cron run, delivers it again, naming that commit, to the
// owed targets (every target when owed is nil). A push that someone else's commit made stale is
// made again on a fresh snapshot, as long as the rollout is still rolled back.
func (l *Loop) markNotifyPending(ctx context.Context, t *tick, rollout, commit string, owed []string) error {
	for attempt := 0; ; attempt++ {
		doc := t.set.Lookup(rollout)
		if doc == nil || doc.Spec.Status == nil {
			return nil
		}
		st := *doc.Spec.Status
		if attempt > 0 && st.Phase != rollouts.RolledBack {
			return fmt.Errorf("record pending notification: the rollout is %s now", st.Phase)
		}
		st.Message = withNotifyPending(st.Message, commit)
		msg := commitMessage(rollout, "notification pending", []string{"the rollback notification failed; the next tick delivers it again"}, policy.Rollback)
		msg = withTrailer(bookkeeping(msg, "notification"), TrailerNotification, "pending "+commit)
		if len(owed) > 0 {
			msg = withTrailer(msg, TrailerNotificationTargets, strings.Join(owed, ", "))
		}
		act := action{kind: actCommit, change: rollouts.Change{Status: &st}, message: msg}
		_, err := l.commitDefault(ctx, t, doc, act, nil, Result{})
		if errors.Is(err, ErrStale) && attempt < 3*l.maxRetries() {
			if rerr := l.refresh(ctx, t); rerr == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("record pending notification: %w", err)
		}
		return nil
	}
}

// landed moves the tick's view of the default branch to a commit it just pushed, so that the next
// rollout's commit goes on top of it instead of failing as stale.
func (l *Loop) landed(t *tick, doc *rollouts.Document, commit string, files map[string][]byte) {
	t.snap = &Snapshot{Branch: t.snap.Branch, Head: commit, Files: overlayFS{base: t.snap.Files, files: files}}
	content := files[doc.Path]
	spec, _ := rollouts.Parse(doc.Path, content)
	if spec == nil {
		return // the next tick reads the file again and reports it
	}
	rollouts.ReadSpecReferences(spec, t.snap.Files)
	for i, d := range t.set.Documents {
		if d.Path == doc.Path {
			t.set.Documents[i] = &rollouts.Document{Path: doc.Path, Source: content, Spec: spec}
		}
	}
}

// overlayFS is a snapshot tree with the files of a commit replaced: the tick's view after its own
// commit (the spec, and the route files changed with it).
type overlayFS struct {
	base  fs.FS
	files map[string][]byte
}

func (o overlayFS) Open(name string) (fs.File, error) {
	if content, ok := o.files[name]; ok {
		return fstest.MapFS{name: &fstest.MapFile{Data: content, Mode: 0o644}}.Open(name)
	}
	return o.base.Open(name)
}

// changedFiles is what one commit of ch writes: the spec file, and every traffic.routes file whose
// split ch changes (rollouts.RouteEdits), so that the gateways carry the same weights as the spec in
// the same commit. A route that cannot be applied fails the whole commit.
func changedFiles(tree fs.FS, doc *rollouts.Document, ch rollouts.Change) (map[string][]byte, error) {
	content, err := rollouts.Edit(doc.Source, ch)
	if err != nil {
		return nil, fmt.Errorf("edit %s: %w", doc.Path, err)
	}
	routes, err := rollouts.RouteEdits(tree, doc.Spec, ch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doc.Path, err)
	}
	files := map[string][]byte{doc.Path: content}
	for p, b := range routes {
		files[p] = b
	}
	return files, nil
}

// propose pushes act's change as one commit on rollout/<name> from the default head, and opens or
// updates the proposal; it never pushes over a human's commits.
func (l *Loop) propose(ctx context.Context, t *tick, doc *rollouts.Document, act action, prop *Proposal, res Result) (Result, error) {
	branch := act.proposal.Branch
	state, err := l.Repo.Branch(ctx, branch, t.snap.Branch)
	if err != nil {
		return res, fmt.Errorf("read branch %s: %w", branch, err)
	}
	// The forge may know of human commits the repository cannot tell apart (GitHub maps emails to
	// accounts); either one is enough to keep off the branch.
	forgeSaysHuman := prop != nil && prop.State == ProposalOpen && prop.Head == state.Head && len(prop.HumanCommits) > 0
	if state.Head != "" && (!state.OnlyBot || forgeSaysHuman) {
		if prop == nil || prop.State != ProposalOpen {
			return res, fmt.Errorf("branch %s: %w", branch, ErrHumanCommits)
		}
		// A human took over the branch: keep its commits and its title, and keep the evidence current;
		// never merge it, nor let the forge merge it by the bot's auto-merge.
		res.Effect = "branch has human commits; evidence refreshed"
		req := act.proposal
		req.Title = prop.Title
		req.AutoMerge = false
		if act.proposal.AutoMerge || prop.AutoMerging {
			if err := l.keepPersonsPushUnmerged(ctx, *prop, act.stopAutoMerge == "", &res); err != nil {
				return res, err
			}
		}
		if prop.Body == req.Body {
			res.Effect = strings.Replace(res.Effect, "evidence refreshed", "evidence unchanged", 1)
			return res, nil
		}
		p, err := l.Forge.Propose(ctx, req)
		if err != nil {
			return res, fmt.Errorf("refresh proposal: %w", err)
		}
		res.Proposal = p.URL
		return res, nil
	}
	files, err := changedFiles(t.snap.Files, doc, act.change)
	if err != nil {
		return res, err
	}
	commit, err := l.Repo.Push(ctx, PushRequest{
		Branch: branch, Parent: t.snap.Head, Expect: state.Head, Force: state.Head != "",
		Files: files, Message: act.message, When: l.now(),
	})
	if err != nil {
		return res, err // the repository names the branch
	}
	res.Commit = commit
	p, err := l.Forge.Propose(ctx, act.proposal)
	if err != nil {
		return res, fmt.Errorf("propose %s: %w", branch, err)
	}
	res.Proposal = p.URL
	if prop == nil || prop.State != ProposalOpen || prop.Title != act.proposal.Title {
		// A new proposal, or the open one now proposing another change.
		l.announce(ctx, doc.Spec, Event{Rollout: doc.Spec.Name, Event: rollouts.EventProposed, Decision: string(res.Decision),
			From: res.From, To: act.to, Reasons: res.Reasons, Commit: commit, Proposal: p.URL}, &res)
	}
	if act.event != nil {
		ev := *act.event
		ev.Commit = commit
		unsent, failed := splitNotifyErrors(l.deliver(ctx, doc.Spec, ev))
		for _, u := range unsent {
			res.Warnings = append(res.Warnings, "notification not sent: "+u.Error())
		}
		if failed != nil {
			return res, fmt.Errorf("notify: %w", failed)
		}
	}
	return res, nil
}

// judgement is what decide found for one rollout: the judge's decision, the metrics bookkeeping to
// record in git, the alert to send once that bookkeeping lands, and the source's failure.
type judgement struct {
	d policy.Decision
	// metricsErrors is the consecutive-failure count to record in status (-1: leave it).
	metricsErrors int
	// failingSince is the start of the source's failures to record (nil: leave it; zero: clear it).
	failingSince *time.Time
	// alert is sent once the commit that records the start of the failures lands.
	alert *Event
	// sourceErr is the metrics source's failure this tick, reported as the rollout's error.
	sourceErr error
	// mismatchSince is the start of a sample-ratio mismatch to record (nil: leave it; zero: clear it).
	mismatchSince *time.Time
	// mismatchAlert is sent, best effort, once the commit that records the start of a mismatch lands.
	mismatchAlert *Event
	// malformed says how many records the source skipped as malformed, and where ("" for none): a
	// reason of the decision, and a warning to the rollout's owner.
	malformed string
}

// decide gathers the evidence of spec's current stage and asks the judge.
//
// A failing metrics source is bookkept in git, so that a stateless cron run and the daemon behave alike.
// With onMetricsError: rollback, every consecutive failure is counted (status.metricsErrors), since the
// count decides the rollback. With hold, git is written twice per outage: once when the failures start
// (status.metricsFailingSince, and the alert goes out with that commit) and once when they end.
// A sample-ratio mismatch is bookkept the same way (status.sampleRatioMismatchSince).
func (l *Loop) decide(ctx context.Context, t *tick, spec *rollouts.Spec, now time.Time) judgement {
	var ev policy.Evidence
	if q, ok := policy.QueryFor(spec, now); ok {
		var src policy.Source
		var err error
		if l.Sources == nil {
			err = errors.New("no metrics sources configured")
		} else {
			src, err = l.Sources(spec)
		}
		if err == nil {
			// The stage's window with its recent windows, late metrics over matured requests, and
			// each segment (policy.ForTick).
			ev.Stats, err = l.stats(ctx, policy.ForTick(src), q)
		}
		if err != nil {
			ev.Stats, ev.Err = nil, fmt.Errorf("metrics source: %w", err)
		}
	}
	if gates := policy.NextGates(spec); len(gates) > 0 {
		ev.Gates = map[int]policy.GateResult{}
		for _, i := range gates {
			ev.Gates[i] = l.gates()(ctx, t.snap.Files, spec, i)
		}
	}
	judge := l.Judge
	if judge == nil {
		judge = policy.Judge
	}
	d := judge(spec, ev, now)
	var malformed string
	if ev.Stats != nil && ev.Stats.Malformed > 0 {
		// The contract: a malformed record is counted and reported, never silently dropped.
		malformed = malformedReason(spec.Metrics.Source, ev.Stats)
		d.Reasons = append(d.Reasons, malformed)
	}
	var st rollouts.Status
	if spec.Status != nil {
		st = *spec.Status
	}
	// A stage that starts in the future is an error of the rollout, bookkept and alerted like a metrics
	// outage: the judge still rolls it back on the data it has, and never advances it.
	outage, what := ev.Err, "metrics source failing"
	noData := errors.Is(outage, policy.ErrNoData)
	if noData {
		outage = nil // no data yet is no failure and no recovery
	}
	if outage == nil {
		if err := policy.FutureStageStart(spec, now); err != nil {
			outage, what = err, "stage start in the future"
		}
	}
	j := judgement{d: d, metricsErrors: -1, malformed: malformed}
	if outage == nil && noData {
		// No data yet: nothing to bookkeep, nothing to report.
		return j
	}
	if outage == nil {
		if st.MetricsErrors > 0 || !st.MetricsFailingSince.IsZero() {
			j.metricsErrors, j.failingSince = 0, &time.Time{}
		}
		// A sample-ratio mismatch is alerted once per episode: the commit that records its start carries
		// the alert, and the commit that clears it ends the episode. (A rollback with a mismatch is
		// notified as the rollback it is, and its commit clears the field.) A failing source says
		// nothing about the arms' shares, so the field is left as it is then.
		mismatch := d.SampleRatioMismatch && d.Action != policy.Rollback
		switch {
		case mismatch && st.SampleRatioMismatchSince.IsZero() && spec.Status != nil:
			j.mismatchSince = &now
			j.mismatchAlert = &Event{Rollout: spec.Name, Decision: "alert", From: d.Current.Weight, To: d.Current.Weight, Reasons: d.Reasons}
		case !mismatch && !st.SampleRatioMismatchSince.IsZero():
			j.mismatchSince = &time.Time{}
		}
		return j
	}
	j.sourceErr = outage
	// A failing source never advances a stage; the judge sees to it, and so does the loop.
	if j.d.Action == policy.Advance || j.d.Action == policy.Promote {
		j.d.Action, j.d.Next = policy.Hold, nil
	}
	if spec.Analysis.OnMetricsError == "rollback" {
		if j.d.Action == policy.Rollback {
			return j
		}
		j.metricsErrors = st.MetricsErrors + 1
		if st.MetricsFailingSince.IsZero() {
			j.failingSince = &now
		}
		return j
	}
	if j.d.Action == policy.Rollback {
		return j // a failing rule rolls back whatever the clock says; the rollback is the news
	}
	// hold: the count would change nothing but the reason; say since when instead.
	since := st.MetricsFailingSince
	if since.IsZero() {
		since = now
		j.failingSince = &now
		if spec.Status != nil {
			j.alert = &Event{Rollout: spec.Name, Decision: "alert", From: d.Current.Weight, To: d.Current.Weight,
				Reasons: []string{fmt.Sprintf("%s since %s: %v", what, since.Format(time.RFC3339), outage),
					"the rollout holds until the source answers again (onMetricsError: hold)"}}
			if ev.Err == nil {
				j.alert.Reasons[1] = "the rollout holds until the status is fixed; a failing rule still rolls it back"
			}
		}
	}
	reasons := j.d.Reasons[:0:0]
	for _, r := range j.d.Reasons {
		if !strings.Contains(r, "consecutive metrics failure") {
			reasons = append(reasons, r)
		}
	}
	j.d.Reasons = append(reasons, fmt.Sprintf("%s since %s (%s)", what, since.Format(time.RFC3339), now.Sub(since).Round(time.Minute)))
	return j
}

// stats asks src for q's statistics within MetricsTimeout. The query runs in its own goroutine so that
// a source which ignores its context (a driver without deadlines, a file system that hangs) is
// abandoned at the deadline instead of stalling the tick; its late answer is dropped. While an abandoned
// query of the rollout is still running, the source is not asked again: the pass fails over to the
// metrics-outage path at once, and a stuck source never holds more than one goroutine per rollout. A
// panic in the source becomes its error, since reconcileOne's recover cannot see another goroutine.
func (l *Loop) stats(ctx context.Context, src policy.Source, q policy.Query) (*policy.Stats, error) {
	timeout := l.MetricsTimeout
	if timeout <= 0 {
		timeout = DefaultMetricsTimeout
	}
	if prev, busy := l.querying.LoadOrStore(q.Rollout, l.now()); busy {
		return nil, fmt.Errorf("the query started at %s has not returned; not asked again until it does: %w",
			prev.(time.Time).UTC().Format(time.RFC3339), policy.ErrSourceUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type answer struct {
		stats *policy.Stats
		err   error
	}
	done := make(chan answer, 1)
	go func() {
		var a answer
		defer func() {
			if p := recover(); p != nil {
				a = answer{err: fmt.Errorf("internal error in metrics source: %v", p)}
			}
			l.querying.Delete(q.Rollout)
			done <- a
		}()
		a.stats, a.err = src.Stats(ctx, q)
	}()
	select {
	case a := <-done:
		return a.stats, a.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("no answer within %s: %w", timeout, policy.ErrSourceUnavailable)
		}
		return nil, ctx.Err()
	}
}

// malformedReason reports the records a source could not read, with the first line numbers it gave.
func malformedReason(source string, st *policy.Stats) string {
	return policy.MalformedSummary(source, st)
}

// deliver sends ev to the notification targets of spec that chose its event (rollbacks and alerts:
// rollback.notify too).
func (l *Loop) deliver(ctx context.Context, spec *rollouts.Spec, ev Event) error {
	if ev.Event == "" {
		ev.Event = ev.Decision // rollback, alert
	}
	return l.deliverTo(ctx, spec.Targets(ev.Event), ev)
}

// deliverTo sends ev to targets.
func (l *Loop) deliverTo(ctx context.Context, targets []rollouts.Notify, ev Event) error {
	if ev.Event == "" {
		ev.Event = ev.Decision // rollback, alert
	}
	if ev.Evidence == "" {
		ev.Evidence = l.ReportURL
	}
	if l.Notifier == nil || len(targets) == 0 {
		return nil
	}
	// Unwrapped: splitNotifyErrors sorts the notifier's joined failures one by one.
	return l.Notifier.Notify(ctx, targets, ev)
}

// announce delivers a lifecycle event (start, proposed, started, promoted, paused, resumed, override),
// best effort: a failure is a warning of the pass and is not retried, since the change it reports has
// landed and git records it.
func (l *Loop) announce(ctx context.Context, spec *rollouts.Spec, ev Event, res *Result) {
	if err := l.deliver(ctx, spec, ev); err != nil {
		unsent, failed := splitNotifyErrors(err)
		for _, u := range unsent {
			res.Warnings = append(res.Warnings, ev.Event+" notification not sent: "+u.Error())
		}
		if failed != nil {
			res.Warnings = append(res.Warnings, ev.Event+" notification not delivered: "+failed.Error())
			l.log().Warn("notification not delivered", "rollout", spec.Name, "event", ev.Event, "error", failed)
		}
	}
}

func (l *Loop) now() time.Time {
	if l.Now == nil {
		panic("reconcile: Loop.Now is not set")
	}
	// Whole seconds: the times the loop writes to specs (stageStartedAt) read as a person writes them.
	return l.Now().UTC().Truncate(time.Second)
}

func (l *Loop) dir() string {
	if l.Dir == "" {
		return rollouts.DefaultDir
	}
	return l.Dir
}

func (l *Loop) bot() string {
	if l.Bot == "" {
		return DefaultBot
	}
	return l.Bot
}

func (l *Loop) maxRetries() int {
	if l.MaxRetries <= 0 {
		return DefaultMaxRetries
	}
	return l.MaxRetries
}

func (l *Loop) gates() GateCheck {
	if l.Gates == nil {
		return Gatekeeper(nil, 0)
	}
	return l.Gates
}

func (l *Loop) log() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

func short(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

// Specs reads the specs of the default branch as they are now: what the daemon schedules from.
func (l *Loop) Specs(ctx context.Context) (*rollouts.Set, error) {
	t := &tick{}
	if err := l.refresh(ctx, t); err != nil {
		return nil, err
	}
	return t.set, nil
}
