package gitrepo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/rollout-dev/rollout/reconcile"
)

// BranchPrefix is where the bot's proposal branches live: rollout/<name>.
const BranchPrefix = "rollout/"

// LocalForge is the forge of a plain git remote, which has no pull requests: a proposal is the bot's
// branch rollout/<name> itself, its title and body are the branch head's commit message, and it is
// merged once the default branch's history holds the branch's head, or its tree holds what the branch
// changed. Propose prints the proposal for a human to merge by hand; Close deletes the branch.
type LocalForge struct {
	Remote *Remote
	// Out receives the printed proposals and closing comments.
	Out io.Writer
}

var _ reconcile.Forge = (*LocalForge)(nil)

// Proposals lists the rollout/* branches of the remote with their state: one list that also asks the
// remote which branch heads the default branch reaches, and one fetch of the heads two commits deep
// for their messages and changes, whatever the number of branches or the length of the history.
//
// A proposal is merged when the default branch's history holds its head (a fast-forward or a merge
// commit, however many commits ago), or when the default branch's tree holds every file its head
// changed, as the head has it (a squash merge, until the file changes again).
func (f *LocalForge) Proposals(ctx context.Context) (map[string]reconcile.Proposal, error) {
	r := f.Remote
	isBot := func(name plumbing.ReferenceName) bool {
		return name.IsBranch() && strings.HasPrefix(name.Short(), BranchPrefix)
	}
	refs, reached, err := r.listReached(ctx, isBot)
	if err != nil {
		return nil, err
	}
	var branches []string
	for _, ref := range refs {
		if isBot(ref.Name()) {
			branches = append(branches, ref.Name().Short())
		}
	}
	out := map[string]reconcile.Proposal{}
	if len(branches) == 0 {
		return out, nil
	}
	sort.Strings(branches)
	st := memory.NewStorage()
	if err := r.fetch(ctx, st, 2, append([]string{r.branch}, branches...)...); err != nil {
		return nil, err
	}
	defaultHead, err := remoteHead(st, r.branch)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	defaultCommit, err := object.GetCommit(st, defaultHead)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	defaultTree, err := defaultCommit.Tree()
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	for _, b := range branches {
		head, err := remoteHead(st, b)
		if err != nil {
			return nil, fmt.Errorf("list proposals: %w", err)
		}
		c, err := object.GetCommit(st, head)
		if err != nil {
			return nil, fmt.Errorf("list proposals: read %s: %w", b, err)
		}
		title, body, _ := strings.Cut(strings.TrimRight(c.Message, "\n"), "\n")
		state := reconcile.ProposalOpen
		if reached[head] || head == defaultHead || isAncestor(st, head, defaultHead) || changesApplied(st, c, defaultTree) {
			state = reconcile.ProposalMerged
		}
		name := strings.TrimPrefix(b, BranchPrefix)
		out[name] = reconcile.Proposal{
			Rollout: name, Branch: b, URL: f.url(b), Title: strings.TrimSpace(title),
			Body: strings.TrimSpace(body), State: state, Head: head.String(),
		}
	}
	return out, nil
}

// changesApplied reports whether every file that c changed against its first parent has c's content
// on the default branch's tree: the proposal was merged, by any means.
func changesApplied(st *memory.Storage, c *object.Commit, defaultTree *object.Tree) bool {
	if len(c.ParentHashes) == 0 {
		return false
	}
	parent, err := object.GetCommit(st, c.ParentHashes[0])
	if err != nil {
		return false
	}
	from, err := parent.Tree()
	if err != nil {
		return false
	}
	to, err := c.Tree()
	if err != nil {
		return false
	}
	changes, err := object.DiffTree(from, to)
	if err != nil || len(changes) == 0 {
		return false
	}
	for _, ch := range changes {
		path := ch.To.Name
		want := ch.To.TreeEntry.Hash
		if path == "" { // deleted by c
			path = ch.From.Name
		}
		e, err := defaultTree.FindEntry(path)
		switch {
		case want.IsZero() && err == nil:
			return false
		case want.IsZero():
			continue
		case err != nil || e.Hash != want:
			return false
		}
	}
	return true
}

// url is the proposal's address: the remote as it may be printed (no credentials) and the branch.
func (f *LocalForge) url(branch string) string { return f.Remote.shown + "#" + branch }

// Propose prints the proposal of a branch the loop has pushed. It reads the branch's head: one list.
// Printing again for an unchanged proposal is harmless; there is nothing to duplicate.
func (f *LocalForge) Propose(ctx context.Context, req reconcile.ProposalRequest) (reconcile.Proposal, error) {
	refs, err := f.Remote.list(ctx)
	if err != nil {
		return reconcile.Proposal{}, err
	}
	var head plumbing.Hash
	for _, ref := range refs {
		if ref.Name() == plumbing.NewBranchReferenceName(req.Branch) {
			head = ref.Hash()
		}
	}
	if head.IsZero() {
		return reconcile.Proposal{}, fmt.Errorf("propose %s: branch %s is not on the remote; push it first", req.Rollout, req.Branch)
	}
	p := reconcile.Proposal{
		Rollout: req.Rollout, Branch: req.Branch, URL: f.url(req.Branch), Title: req.Title, Body: req.Body,
		State: reconcile.ProposalOpen, Head: head.String(),
	}
	if f.Out != nil {
		fmt.Fprintf(f.Out, "Proposal %s: merge %s into %s (%s)\n", req.Title, req.Branch, f.Remote.branch, short(head.String()))
		if req.Body != "" {
			fmt.Fprintf(f.Out, "%s\n", indent(req.Body))
		}
	}
	return p, nil
}

// Close deletes the proposal's branch when every commit on it is the bot's, and prints the comment.
// A branch holding someone else's commits is left in place and said so.
func (f *LocalForge) Close(ctx context.Context, p reconcile.Proposal, comment string) error {
	r := f.Remote
	state, err := r.Branch(ctx, p.Branch, r.branch)
	if err != nil {
		return fmt.Errorf("close %s: %w", p.Branch, err)
	}
	if state.Head == "" {
		return nil // already gone
	}
	if !state.OnlyBot {
		if f.Out != nil {
			fmt.Fprintf(f.Out, "Left %s in place: %v.\n%s\n", p.Branch, ErrForeignCommits, indent(comment))
		}
		return nil
	}
	head := plumbing.NewHash(state.Head)
	if err := r.sendUpdate(ctx, memory.NewStorage(), plumbing.NewBranchReferenceName(p.Branch), head, plumbing.ZeroHash, false); err != nil {
		return fmt.Errorf("close %s: %w", p.Branch, err)
	}
	if f.Out != nil {
		fmt.Fprintf(f.Out, "Closed %s (deleted %s).\n%s\n", p.Title, p.Branch, indent(comment))
	}
	return nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
