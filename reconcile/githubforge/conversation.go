package githubforge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/rollout-dev/rollout/reconcile"
)

// Permission returns the repository permission of login as GitHub's collaborator permission API
// reports it in `permission`: "admin", "write" (maintain included), "read" (triage included) or
// "none". An account GitHub does not know has "none".
func (f *Forge) Permission(ctx context.Context, login string) (string, error) {
	lvl, _, err := f.client.Repositories.GetPermissionLevel(ctx, f.opts.Owner, f.opts.Repo, login)
	if err != nil {
		var resp *github.ErrorResponse
		if errors.As(err, &resp) && resp.Response.StatusCode == http.StatusNotFound {
			return "none", nil
		}
		return "", f.wrap("read the permission of "+login, err)
	}
	return lvl.GetPermission(), nil
}

// RolloutOf returns the rollout whose bot pull request number is: the name after rollout/ of its head
// branch, when that branch is in this repository (a fork's branch of the same name is not the bot's).
// It returns "" for any other pull request, and for an issue.
func (f *Forge) RolloutOf(ctx context.Context, number int) (string, error) {
	pr, _, err := f.client.PullRequests.Get(ctx, f.opts.Owner, f.opts.Repo, number)
	if err != nil {
		var resp *github.ErrorResponse
		if errors.As(err, &resp) && resp.Response.StatusCode == http.StatusNotFound {
			return "", nil // an issue, not a pull request
		}
		return "", f.wrap(fmt.Sprintf("read pull request #%d", number), err)
	}
	if !f.ours(pr) {
		return "", nil
	}
	return strings.TrimPrefix(pr.GetHead().GetRef(), BranchPrefix), nil
}

// Reply comments body on issue or pull request number and returns the comment's URL.
func (f *Forge) Reply(ctx context.Context, number int, body string) (string, error) {
	got, _, err := f.client.Issues.CreateComment(ctx, f.opts.Owner, f.opts.Repo, number, &github.IssueComment{Body: &body})
	if err != nil {
		return "", f.wrap(fmt.Sprintf("reply on #%d", number), err)
	}
	return got.GetHTMLURL(), nil
}

// React puts a reaction (GitHub's content names: "+1", "-1", "confused", "eyes", "rocket", …) on an
// issue comment. Reacting twice the same way is one reaction, as on GitHub.
func (f *Forge) React(ctx context.Context, commentID int64, content string) error {
	if _, _, err := f.client.Reactions.CreateIssueCommentReaction(ctx, f.opts.Owner, f.opts.Repo, commentID, content); err != nil {
		return f.wrap(fmt.Sprintf("react to comment %d", commentID), err)
	}
	return nil
}

var _ reconcile.ApprovalReader = (*Forge)(nil)

// Reviews lists the reviews of pull request number, oldest first, at most ListPages pages of 100.
func (f *Forge) Reviews(ctx context.Context, number int) ([]reconcile.Review, error) {
	var out []reconcile.Review
	opts := &github.ListOptions{PerPage: 100}
	for page := 0; page < f.opts.ListPages; page++ {
		rs, resp, err := f.client.PullRequests.ListReviews(ctx, f.opts.Owner, f.opts.Repo, number, opts)
		if err != nil {
			return nil, f.wrap(fmt.Sprintf("list the reviews of #%d", number), err)
		}
		for _, r := range rs {
			out = append(out, reconcile.Review{Login: r.GetUser().GetLogin(), State: r.GetState(), CommitID: r.GetCommitID()})
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

// ApprovalKey reads the Rollout-Approval-Key trailer of commit sha (in its trailer block, see
// reconcile.ParseTrailers), when the bot made it (its author is the bot's email); "" otherwise, and
// for a commit GitHub no longer has.
func (f *Forge) ApprovalKey(ctx context.Context, sha string) (string, error) {
	if sha == "" {
		return "", nil
	}
	c, _, err := f.client.Git.GetCommit(ctx, f.opts.Owner, f.opts.Repo, sha)
	if err != nil {
		var resp *github.ErrorResponse
		if errors.As(err, &resp) && (resp.Response.StatusCode == http.StatusNotFound || resp.Response.StatusCode == http.StatusUnprocessableEntity) {
			return "", nil
		}
		return "", f.wrap("read commit "+sha, err)
	}
	if f.opts.BotEmail != "" && !strings.EqualFold(c.GetAuthor().GetEmail(), f.opts.BotEmail) {
		return "", nil
	}
	// The trailer block alone: a line of the body that quotes a key (of another stage, another canary)
	// is text, never this commit's key.
	return reconcile.ParseTrailers(c.GetMessage())[reconcile.TrailerApprovalKey], nil
}

// TeamMember reports whether login is an active member of org/team; GitHub answers 404 for someone
// not on the team.
func (f *Forge) TeamMember(ctx context.Context, org, team, login string) (bool, error) {
	m, _, err := f.client.Teams.GetTeamMembershipBySlug(ctx, org, team, login)
	if err != nil {
		var resp *github.ErrorResponse
		if errors.As(err, &resp) && resp.Response.StatusCode == http.StatusNotFound {
			return false, nil
		}
		return false, f.wrap(fmt.Sprintf("read the membership of %s in %s/%s", login, org, team), err)
	}
	return m.GetState() == "active", nil
}
