package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rollout-dev/rollout/reconcile"
)

// Merge is one proposal the simulated reviewer merged.
type Merge struct {
	Proposal reconcile.Proposal
	// Commit is the default branch's new head: the bot's own commit after a fast-forward, or the
	// reviewer's merge commit.
	Commit      string
	FastForward bool
}

// humanReviewer merges the bot's open proposals in the team's clone, as a reviewer who read the
// evidence and agrees would with git: `git merge rollout/<name>` (a fast-forward when the bot branch
// sits right on the default branch's head, otherwise a merge commit of the reviewer's), then `git push`.
// A merge keeps the bot's commit in the default branch's history, so the forge sees the proposal as
// merged from then on, whatever later commits change.
type humanReviewer struct {
	forge    reconcile.Forge
	cloneDir string
	url      string // the remote, in-process
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
		m, ok, err := h.merge(ctx, proposals[name], when)
		if err != nil {
			return merged, fmt.Errorf("merge %s: %w", proposals[name].Branch, err)
		}
		if ok {
			merged = append(merged, m)
		}
	}
	return merged, nil
}

// merge merges one proposal; ok is false when the default branch already holds the branch's head, where
// `git merge` says "Already up to date" (a forge that judges merges from a shallow fetch may list such a
// branch as open).
func (h *humanReviewer) merge(ctx context.Context, p reconcile.Proposal, when time.Time) (m Merge, ok bool, err error) {
	clone, err := git.PlainOpen(h.cloneDir)
	if err != nil {
		return Merge{}, false, fmt.Errorf("open clone: %w", err)
	}
	err = clone.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RemoteURL: h.url,
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return Merge{}, false, fmt.Errorf("fetch: %w", err)
	}
	mainRef, err := clone.Reference(plumbing.NewRemoteReferenceName("origin", DefaultBranch), true)
	if err != nil {
		return Merge{}, false, fmt.Errorf("fetch: %w", err)
	}
	base := mainRef.Hash()
	branch, err := clone.CommitObject(plumbing.NewHash(p.Head))
	if err != nil {
		return Merge{}, false, fmt.Errorf("read %s: %w", p.Branch, err)
	}
	baseCommit, err := clone.CommitObject(base)
	if err != nil {
		return Merge{}, false, fmt.Errorf("read %s: %w", DefaultBranch, err)
	}
	if merged, err := branch.IsAncestor(baseCommit); err != nil || merged || branch.Hash == base {
		return Merge{}, false, err
	}
	wt, err := clone.Worktree()
	if err != nil {
		return Merge{}, false, err
	}
	local := plumbing.NewBranchReferenceName(DefaultBranch)
	if err := clone.Storer.SetReference(plumbing.NewHashReference(local, base)); err != nil {
		return Merge{}, false, err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: local, Force: true}); err != nil {
		return Merge{}, false, fmt.Errorf("check out %s: %w", DefaultBranch, err)
	}
	m = Merge{Proposal: p, Commit: branch.Hash.String()}
	if branch.NumParents() == 1 && branch.ParentHashes[0] == base {
		m.FastForward = true
		if err := wt.Reset(&git.ResetOptions{Commit: branch.Hash, Mode: git.HardReset}); err != nil {
			return Merge{}, false, fmt.Errorf("fast-forward: %w", err)
		}
	} else {
		commit, err := h.mergeCommit(wt, p.Branch, branch, base, when)
		if err != nil {
			return Merge{}, false, err
		}
		m.Commit = commit.String()
	}
	err = clone.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RemoteURL: h.url,
		RefSpecs: []config.RefSpec{config.RefSpec(local + ":" + local)}})
	if err != nil {
		return Merge{}, false, fmt.Errorf("push %s: %w", DefaultBranch, err)
	}
	return m, true, nil
}

// mergeCommit commits, on top of base, the files the bot's commit changed, with both as parents: the
// merge git makes when the default branch moved on in other files, which is all the bot's branch and
// the rest of the team ever touch at once.
func (h *humanReviewer) mergeCommit(wt *git.Worktree, name string, branch *object.Commit, base plumbing.Hash, when time.Time) (plumbing.Hash, error) {
	files, err := changedFiles(branch)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(h.cloneDir, filepath.FromSlash(p))
		if files[p] == nil {
			if _, err := wt.Remove(p); err != nil {
				return plumbing.ZeroHash, fmt.Errorf("remove %s: %w", p, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return plumbing.ZeroHash, err
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("write %s: %w", p, err)
		}
		if _, err := wt.Add(p); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("add %s: %w", p, err)
		}
	}
	sig := reviewer
	sig.When = when
	title, _, _ := strings.Cut(branch.Message, "\n")
	msg := fmt.Sprintf("Merge branch '%s'\n\n%s\n", name, title)
	commit, err := wt.Commit(msg, &git.CommitOptions{Author: &sig, Committer: &sig, Parents: []plumbing.Hash{base, branch.Hash}})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit the merge: %w", err)
	}
	return commit, nil
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
