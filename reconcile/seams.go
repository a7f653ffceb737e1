// Package reconcile is the loop that turns the judge's decisions into git history: a start or rollback
// commit on the default branch, an advance or promotion proposed from the branch rollout/<name>.
//
// Every side effect goes through an interface declared here: Repository (git), Forge (pull requests),
// Notifier (rollback alerts) and policy.Source (metrics). cmd/rollout picks the real implementations.
//
// In the house's four rooms (rollouts ← policy ← reconcile ← cmd) this is the reconcile room. It declares
// the seams the loop calls, Repository, Forge and Notifier; its sub-packages implement them (gitrepo,
// githubforge, notify) or run the loop (daemon). It never imports them.
package reconcile

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// Snapshot is the tree of one commit of the default branch.
type Snapshot struct {
	// Branch is the default branch's name, Head its commit hash.
	Branch string
	Head   string
	// Files is the commit's tree, read-only.
	Files fs.FS
}

// PushRequest asks for one commit on top of Parent, holding Files (path to new content; nil content
// deletes), pushed to Branch.
type PushRequest struct {
	Branch  string
	Parent  string
	Files   map[string][]byte
	Message string
	// Expect is the remote head of Branch the push may replace: "" when the branch must not exist yet.
	// When Expect is not an ancestor of the new commit the push is a force-push, which the repository
	// performs only if Force is set.
	Expect string
	Force  bool
	// When is the commit's author and committer time.
	When time.Time
}

// Repository is the git remote that holds the specs.
//
// Snapshot is read-only and idempotent. Push creates exactly one commit and updates the remote branch
// atomically; it returns an error wrapping ErrStale when the remote branch is not at Expect (someone
// pushed in between), and nothing is written in that case.
type Repository interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
	Push(ctx context.Context, req PushRequest) (commit string, err error)
	// Branch returns the remote head of a branch ("" if absent) and whether every commit on it that is
	// not on base was made by the bot.
	Branch(ctx context.Context, name, base string) (BranchState, error)
}

// BranchState is what the loop needs to know of a bot branch before it pushes to it.
type BranchState struct {
	Head string
	// OnlyBot is true when every commit between base and Head was made by the bot identity.
	OnlyBot bool
}

// ErrStale is returned by Push when the remote branch moved; the loop fetches and decides again.
var ErrStale = errors.New("remote branch moved")

// ProposalState is where a proposal is in its life.
type ProposalState string

// The states of a proposal.
const (
	ProposalOpen   ProposalState = "open"
	ProposalClosed ProposalState = "closed" // closed without merging: "not this stage"
	ProposalMerged ProposalState = "merged"
)

// Proposal is a request to merge a bot branch: a GitHub pull request, or a branch printed by the local
// forge.
type Proposal struct {
	Rollout string
	Branch  string
	Number  int
	URL     string
	Title   string
	Body    string
	State   ProposalState
	// Head is the commit the proposal's branch points at.
	Head string
	// HumanCommits lists the commits on the branch that the bot did not make, when the forge knows
	// (the GitHub forge fills it in Propose). The loop must not force-push over them.
	HumanCommits []string
	// AutoMerging is true when the forge will merge the proposal by itself once its checks pass
	// (GitHub auto-merge is on), so that nothing is left for the loop to ask.
	AutoMerging bool
}

// ProposalRequest is what the loop wants a proposal to say.
type ProposalRequest struct {
	Rollout   string
	Branch    string
	Base      string
	Title     string
	Body      string
	Labels    []string
	Reviewers []string
	// AutoMerge asks the forge to merge once checks pass (promotion.via: auto-merge).
	AutoMerge bool
}

// Forge is where proposals live.
//
// Proposals lists the bot's proposals, open ones and the most recent closed one per rollout, in a
// constant number of calls. Propose opens the proposal for req.Branch or updates the open one, changing
// only what differs; it never opens a second one for the same branch. Close closes one with a comment.
// Every method returns errors wrapping ErrTransient for failures worth retrying on a later tick.
type Forge interface {
	Proposals(ctx context.Context) (map[string]Proposal, error)
	Propose(ctx context.Context, req ProposalRequest) (Proposal, error)
	Close(ctx context.Context, p Proposal, comment string) error
}

// AutoMerger is a Forge that can merge a proposal by itself, for promotion.via: auto-merge. The loop
// asks on every pass while an open auto-merge proposal carries what the decision wants and is not yet
// set to merge, since a forge that refuses while checks run accepts later with the same evidence.
//
// AutoMerge turns the forge's auto-merge on for proposal number, or merges it now when it may; merged
// reports a merge done by this call. It is idempotent: a proposal already merged or set to merge is
// left alone. A proposal that cannot be merged yet is an error, wrapping ErrTransient when worth
// retrying.
type AutoMerger interface {
	AutoMerge(ctx context.Context, number int) (merged bool, err error)
}

// AutoMergeCanceler is an AutoMerger that can turn auto-merge off again. The loop turns it off when
// an open proposal may no longer merge by itself: an approval promotion.approvals counted was
// withdrawn, or the decision holds.
//
// CancelAutoMerge turns off the auto-merge of proposal number if the bot turned it on. Auto-merge a
// person turned on stays: kept is their login. A proposal without auto-merge, or merged, is left
// alone.
type AutoMergeCanceler interface {
	CancelAutoMerge(ctx context.Context, number int) (kept string, err error)
}

// BranchCloser is a Forge that can close the open proposal of a known branch without listing the
// proposals, for a pass whose listing failed while a rolled back or finished rollout's stale proposal
// may still be open.
//
// CloseBranch looks up the open proposal whose head is branch, comments on it (once, even when
// retried) and closes it; closed reports whether there was one. It is idempotent: with none open it
// does nothing and returns false. Its errors wrap ErrTransient when worth retrying.
type BranchCloser interface {
	CloseBranch(ctx context.Context, branch, comment string) (closed bool, err error)
}

// ErrTransient marks an error that a later tick may not see: a network failure, a rate limit.
var ErrTransient = errors.New("transient")

// Event is one thing worth telling people: a rollback, or an alert such as repeated metrics failures.
type Event struct {
	Rollout string `json:"rollout"`
	// Event is the lifecycle event (rollouts.EventRollback, EventStart, …); the targets that chose it
	// get the notification.
	Event    string   `json:"event"`
	Decision string   `json:"decision"`
	From     int      `json:"from"`
	To       int      `json:"to"`
	Reasons  []string `json:"reasons"`
	Commit   string   `json:"commit"`
	// Proposal is the URL of the pull request the event is about ("" for none); Evidence the URL of
	// the published report with the rollout's charts ("" for none).
	Proposal string `json:"proposal,omitempty"`
	Evidence string `json:"evidence,omitempty"`
	// Next says how to try again after a rollback (RetryAdvice); "" for other events.
	Next string `json:"next,omitempty"`
}

// Notifier delivers an event to one rollout's notification targets. It is not idempotent: a failed
// delivery is reported and retried on the next tick, and never undoes the commit it reports.
type Notifier interface {
	Notify(ctx context.Context, targets []rollouts.Notify, ev Event) error
}

// TargetError is the failure of one target in a Notifier's error (errors.Join of them), so that the
// loop can record which targets a notification still owes.
type TargetError struct {
	// Target names the target as TargetName does: "slack env:ROLLOUT_SLACK_WEBHOOK_URL".
	Target string
	Err    error
}

func (e *TargetError) Error() string { return e.Target + ": " + e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// TargetName names a notification target by its kind (slack, webhook) and its reference (env:NAME).
func TargetName(kind, ref string) string { return kind + " " + ref }

// ErrTargetNotConfigured marks a notification that was not sent because its target is not configured
// where the reconciler runs (an env: reference to an unset variable). It is a warning, not a failure:
// retrying cannot deliver it, so it is never left pending.
var ErrTargetNotConfigured = errors.New("notification target not configured")

// TargetChecker is a Notifier that can tell, without sending anything, which targets it could not
// deliver to as configured. Check is pure and idempotent; each problem names the target's reference
// (env:NAME), never a URL.
type TargetChecker interface {
	Check(targets []rollouts.Notify) []string
}

// CommitInfo is what the loop reads of a commit to trust its own bookkeeping.
type CommitInfo struct {
	Hash string
	// Bot is true when the bot's identity made the commit.
	Bot      bool
	Trailers map[string]string
}

// FileHistory reads the commits of the default branch that changed a file, newest first, at most n
// (0: all). It is read-only and idempotent; it may fetch the branch's history, so the loop calls it
// only to verify bookkeeping it is about to act on.
type FileHistory interface {
	FileLog(ctx context.Context, path string, n int) ([]CommitInfo, error)
}

// Trailers the bot writes on its own commits, and only the bot: the loop acts on bookkeeping only when
// it finds it in these trailers of a commit the bot made, never in text a person wrote.
const (
	// TrailerBookkeeping marks a commit that records the controller's bookkeeping (a pending
	// notification, a metrics outage, a promotion's landing) rather than a decision: `history` lists no
	// row for it and `status` does not read it as the last decision.
	TrailerBookkeeping = "Rollout-Bookkeeping"
	// TrailerNotification is "pending <rollback commit>" on the commit that recorded a rollback
	// notification as undelivered.
	TrailerNotification = "Rollout-Notification"
	// TrailerNotificationTargets, beside TrailerNotification, lists the targets that did not get the
	// notification, as TargetError names them, separated by ", ": the retry goes to them alone, not
	// again to those that got it. Absent (a mark made before it existed), every target is retried.
	TrailerNotificationTargets = "Rollout-Notification-Targets"
	// TrailerActor names the person on whose behalf a manual operation was committed.
	TrailerActor = "Rollout-Actor"
	// TrailerOverride says that a person skipped a rule the controller would have applied
	// (`/rollout promote` skips the evidence rule), and why.
	TrailerOverride = "Rollout-Override"
)
