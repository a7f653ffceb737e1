package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rollout-dev/rollout/gitrepo"
	"github.com/rollout-dev/rollout/reconcile"
)

// Merge is one proposal the simulated reviewer merged.
type Merge struct {
	Proposal reconcile.Proposal
	// Commit is the default branch's new head: the bot's own commit after a fast-forward, or the
	// reviewer's commit that applied the branch's files.
	Commit      string
	FastForward bool
}

// humanReviewer merges the bot's open proposals as a reviewer who reads the evidence and agrees would:
// a fast-forward of the default branch when the bot branch sits right on top of it, otherwise a commit
// of its own that applies the files the bot changed (the "squash and merge" button).
type humanReviewer struct {
	remote  *gitrepo.Remote // the reviewer's identity
	forge   reconcile.Forge
	bareDir string
}

// mergeOpen merges every open proposal, in rollout order, at when.
func (h *humanReviewer) mergeOpen(ctx context.Context, when time.Time) ([]Merge, error) {
	proposals, err := h.forge.Proposals(ctx)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	names := make([]string, 0, len(proposals))
	for name, p := range proposals {
		if p.State == reconcile.ProposalOpen {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var merged []Merge
	for _, name := range names {
		m, err := h.merge(ctx, proposals[name], when)
		if err != nil {
			return merged, fmt.Errorf("merge %s: %w", proposals[name].Branch, err)
		}
		merged = append(merged, m)
	}
	return merged, nil
}

func (h *humanReviewer) merge(ctx context.Context, p reconcile.Proposal, when time.Time) (Merge, error) {
	repo, err := git.PlainOpen(h.bareDir)
	if err != nil {
		return Merge{}, err
	}
	branchHead, err := repo.CommitObject(plumbing.NewHash(p.Head))
	if err != nil {
		return Merge{}, fmt.Errorf("read %s: %w", p.Branch, err)
	}
	mainRef := plumbing.NewBranchReferenceName(DefaultBranch)
	old, err := repo.Reference(mainRef, false)
	if err != nil {
		return Merge{}, fmt.Errorf("read %s: %w", DefaultBranch, err)
	}
	if branchHead.NumParents() == 1 && branchHead.ParentHashes[0] == old.Hash() {
		// The server-side ref update a forge's merge button makes; it fails if main moved meanwhile.
		if err := repo.Storer.CheckAndSetReference(plumbing.NewHashReference(mainRef, branchHead.Hash), old); err != nil {
			return Merge{}, fmt.Errorf("fast-forward %s: %w", DefaultBranch, err)
		}
		return Merge{Proposal: p, Commit: branchHead.Hash.String(), FastForward: true}, nil
	}
	files, err := changedFiles(branchHead)
	if err != nil {
		return Merge{}, err
	}
	snap, err := h.remote.Snapshot(ctx)
	if err != nil {
		return Merge{}, err
	}
	commit, err := h.remote.Push(ctx, reconcile.PushRequest{
		Branch: snap.Branch, Parent: snap.Head, Expect: snap.Head, Files: files, When: when,
		Message: fmt.Sprintf("%s (merged %s)\n\nMerged after reading the evidence.\n", p.Title, p.Branch),
	})
	if err != nil {
		return Merge{}, err
	}
	return Merge{Proposal: p, Commit: commit}, nil
}

// changedFiles returns the content of every file c changed against its first parent (nil: deleted).
func changedFiles(c *object.Commit) (map[string][]byte, error) {
	parent, err := c.Parent(0)
	if err != nil {
		return nil, fmt.Errorf("read parent of %s: %w", c.Hash, err)
	}
	from, err := parent.Tree()
	if err != nil {
		return nil, err
	}
	to, err := c.Tree()
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTree(from, to)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.Hash, err)
	}
	files := map[string][]byte{}
	for _, ch := range changes {
		if ch.To.Name == "" {
			files[ch.From.Name] = nil
			continue
		}
		f, err := to.File(ch.To.Name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ch.To.Name, err)
		}
		rd, err := f.Reader()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rd)
		rd.Close()
		if err != nil {
			return nil, err
		}
		files[ch.To.Name] = b
	}
	return files, nil
}
