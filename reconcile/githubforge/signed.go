package githubforge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"

	"github.com/rollout-dev/rollout/reconcile"
)

// ErrForceRequired is a push that would drop commits from a branch, asked without Force.
var ErrForceRequired = errors.New("push would rewrite the branch and force was not asked")

// SignedRepository is a reconcile.Repository whose commits GitHub creates, and so signs and marks
// Verified (`--signed-commits`): Push goes through the Git Data API (blobs, trees, commits, refs);
// Snapshot and Branch are the embedded repository's, usually the go-git one.
//
// GitHub sets the commit's author, committer and time to the token's identity and its own clock:
// PushRequest.When is not used, since a commit with a chosen author is not signed.
type SignedRepository struct {
	reconcile.Repository
	forge *Forge
}

var _ reconcile.Repository = (*SignedRepository)(nil)

// Signed wraps repo so that its pushes are commits GitHub signs.
func (f *Forge) Signed(repo reconcile.Repository) *SignedRepository {
	return &SignedRepository{Repository: repo, forge: f}
}

// Push creates one commit on top of req.Parent holding req.Files and moves req.Branch to it. It
// returns an error wrapping reconcile.ErrStale when the branch is not at req.Expect (or exists when
// Expect is ""), and ErrForceRequired when the update is not a fast-forward and req.Force is unset;
// no ref changes in either case. The objects it created are then unreachable, which is harmless.
//
// GitHub has no compare-and-swap on refs: a forced update checks Expect and then moves the ref, so a
// push landing in between is overwritten. Fast-forward updates are safe, since GitHub refuses them
// when the branch moved.
func (r *SignedRepository) Push(ctx context.Context, req reconcile.PushRequest) (string, error) {
	f := r.forge
	o, rp := f.opts.Owner, f.opts.Repo
	parent, _, err := f.client.Git.GetCommit(ctx, o, rp, req.Parent)
	if err != nil {
		return "", f.wrap("read parent commit "+req.Parent, err)
	}
	entries, err := r.entries(ctx, req.Files)
	if err != nil {
		return "", err
	}
	tree, _, err := f.client.Git.CreateTree(ctx, o, rp, parent.GetTree().GetSHA(), entries)
	if err != nil {
		return "", f.wrap("create tree", err)
	}
	commit, _, err := f.client.Git.CreateCommit(ctx, o, rp, &github.Commit{
		Message: &req.Message, Tree: &github.Tree{SHA: tree.SHA}, Parents: []*github.Commit{{SHA: &req.Parent}},
	}, nil)
	if err != nil {
		return "", f.wrap("create commit", err)
	}
	sha := commit.GetSHA()
	ref := "refs/heads/" + req.Branch

	if req.Expect == "" {
		_, _, err := f.client.Git.CreateRef(ctx, o, rp, &github.Reference{Ref: &ref, Object: &github.GitObject{SHA: &sha}})
		if unprocessable(err, "already exists") {
			return "", fmt.Errorf("create branch %s: %w", req.Branch, reconcile.ErrStale)
		}
		if err != nil {
			return "", f.wrap("create branch "+req.Branch, err)
		}
		return sha, nil
	}

	cur, _, err := f.client.Git.GetRef(ctx, o, rp, "heads/"+req.Branch)
	var resp *github.ErrorResponse
	if errors.As(err, &resp) && resp.Response.StatusCode == http.StatusNotFound {
		return "", fmt.Errorf("branch %s is gone, expected at %s: %w", req.Branch, req.Expect, reconcile.ErrStale)
	}
	if err != nil {
		return "", f.wrap("read branch "+req.Branch, err)
	}
	if got := cur.GetObject().GetSHA(); got != req.Expect {
		return "", fmt.Errorf("branch %s is at %s, expected %s: %w", req.Branch, got, req.Expect, reconcile.ErrStale)
	}
	_, _, err = f.client.Git.UpdateRef(ctx, o, rp, &github.Reference{Ref: &ref, Object: &github.GitObject{SHA: &sha}}, req.Force)
	switch {
	case unprocessable(err, "not a fast forward") && req.Expect == req.Parent:
		return "", fmt.Errorf("update branch %s: %w", req.Branch, reconcile.ErrStale)
	case unprocessable(err, "not a fast forward"):
		return "", fmt.Errorf("update branch %s from %s: %w", req.Branch, req.Expect, ErrForceRequired)
	case err != nil:
		return "", f.wrap("update branch "+req.Branch, err)
	}
	return sha, nil
}

// Branch is the embedded repository's answer, except that the commits the bot made through the API
// count as the bot's. GitHub authors them as the token's account and commits them as itself
// (GitHub <noreply@github.com>), so a check of git identities alone takes them for a human's. When
// that check says a human committed, Branch asks GitHub for the commits on name that base lacks: each
// must be authored by the bot (Options.BotLogin, or Options.BotEmail, which with --signed-commits is
// the token account's noreply address) and either be verified and committed by GitHub, or committed
// with BotEmail as git would. A branch with more commits than one page lists is left to the human.
func (r *SignedRepository) Branch(ctx context.Context, name, base string) (reconcile.BranchState, error) {
	st, err := r.Repository.Branch(ctx, name, base)
	f := r.forge
	if err != nil || st.Head == "" || st.OnlyBot || (f.opts.BotLogin == "" && f.opts.BotEmail == "") {
		return st, err
	}
	cmp, _, err := f.client.Repositories.CompareCommits(ctx, f.opts.Owner, f.opts.Repo, base, st.Head, &github.ListOptions{PerPage: 100})
	if err != nil {
		return reconcile.BranchState{}, f.wrap("compare "+base+" with "+name, err)
	}
	if cmp.GetTotalCommits() != len(cmp.Commits) {
		return st, nil
	}
	for _, c := range cmp.Commits {
		if !r.botCommit(c) {
			return st, nil
		}
	}
	st.OnlyBot = true
	return st, nil
}

// botCommit reports whether c is the bot's: authored by it, and committed by it or, signed, by GitHub.
func (r *SignedRepository) botCommit(c *github.RepositoryCommit) bool {
	o := r.forge.opts
	is := func(login, email string) bool {
		return (o.BotLogin != "" && strings.EqualFold(login, o.BotLogin)) || (o.BotEmail != "" && strings.EqualFold(email, o.BotEmail))
	}
	gc := c.GetCommit()
	if !is(c.GetAuthor().GetLogin(), gc.GetAuthor().GetEmail()) {
		return false
	}
	byGitHub := gc.GetVerification().GetVerified() && strings.EqualFold(gc.GetCommitter().GetEmail(), "noreply@github.com")
	return byGitHub || is(c.GetCommitter().GetLogin(), gc.GetCommitter().GetEmail())
}

// entries turns the changed files into tree entries: text inline, anything else (binary, empty) as a
// blob, nil content as a deletion. Paths are sorted so that the requests are the same every time.
func (r *SignedRepository) entries(ctx context.Context, files map[string][]byte) ([]*github.TreeEntry, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []*github.TreeEntry
	for _, p := range paths {
		e := &github.TreeEntry{Path: github.String(p), Mode: github.String("100644"), Type: github.String("blob")}
		content := files[p]
		switch {
		case content == nil:
			// SHA and Content both nil: go-github sends "sha": null, which deletes the path.
		case len(content) > 0 && utf8.Valid(content):
			e.Content = github.String(string(content))
		default:
			blob, _, err := r.forge.client.Git.CreateBlob(ctx, r.forge.opts.Owner, r.forge.opts.Repo, &github.Blob{
				Content: github.String(base64.StdEncoding.EncodeToString(content)), Encoding: github.String("base64")})
			if err != nil {
				return nil, r.forge.wrap("create blob for "+p, err)
			}
			e.SHA = blob.SHA
		}
		out = append(out, e)
	}
	return out, nil
}

// unprocessable reports a 422 answer whose message holds text.
func unprocessable(err error, text string) bool {
	var resp *github.ErrorResponse
	return errors.As(err, &resp) && resp.Response.StatusCode == http.StatusUnprocessableEntity &&
		strings.Contains(strings.ToLower(resp.Message), text)
}
