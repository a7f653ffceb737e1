package githubforge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
)

const enableAutoMerge = `mutation($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId, mergeMethod: $mergeMethod}) {
    pullRequest { number autoMergeRequest { mergeMethod } }
  }
}`

const disableAutoMerge = `mutation($pullRequestId: ID!) {
  disablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId}) {
    pullRequest { number }
  }
}`

type graphqlRequest struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables"`
}

type graphqlResponse struct {
	Errors []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"errors"`
}

// AutoMerge asks GitHub to merge pull request number once its checks pass (GraphQL
// enablePullRequestAutoMerge). When GitHub answers that the pull request can be merged right now, or
// that the repository does not allow auto-merge, it merges the pull request itself if GitHub reports
// it mergeable, with no pending checks or reviews. Otherwise the error wraps ErrAutoMerge and says why.
// merged reports a merge done here. It is idempotent: a pull request with auto-merge on is left alone.
func (f *Forge) AutoMerge(ctx context.Context, number int) (merged bool, err error) {
	pr, _, err := f.client.PullRequests.Get(ctx, f.opts.Owner, f.opts.Repo, number)
	if err != nil {
		return false, f.wrap(fmt.Sprintf("read pull request #%d", number), err)
	}
	if pr.MergedAt != nil {
		return false, nil
	}
	if pr.AutoMerge != nil {
		return false, nil
	}
	reason, err := f.enableAutoMerge(ctx, pr.GetNodeID())
	if err != nil {
		return false, err
	}
	if reason == "" {
		return false, nil
	}
	clean := strings.Contains(reason, "clean status")
	if !clean && !(pr.GetMergeable() && pr.GetMergeableState() == "clean") {
		return false, fmt.Errorf("pull request #%d: GitHub refused auto-merge (%s) and the pull request is not mergeable now (mergeable_state %q): %w",
			number, reason, pr.GetMergeableState(), ErrAutoMerge)
	}
	_, _, err = f.client.PullRequests.Merge(ctx, f.opts.Owner, f.opts.Repo, number, "",
		&github.PullRequestOptions{MergeMethod: f.opts.MergeMethod, SHA: pr.GetHead().GetSHA()})
	if err != nil {
		var resp *github.ErrorResponse
		if errors.As(err, &resp) && (resp.Response.StatusCode == http.StatusMethodNotAllowed || resp.Response.StatusCode == http.StatusConflict) {
			return false, fmt.Errorf("merge pull request #%d: %s: %w", number, resp.Message, ErrAutoMerge)
		}
		return false, f.wrap(fmt.Sprintf("merge pull request #%d", number), err)
	}
	return true, nil
}

// enableAutoMerge sends the GraphQL mutation; a refusal comes back as reason, not as an error.
func (f *Forge) enableAutoMerge(ctx context.Context, nodeID string) (reason string, err error) {
	return f.mutate(ctx, "enable auto-merge", enableAutoMerge,
		map[string]any{"pullRequestId": nodeID, "mergeMethod": strings.ToUpper(f.opts.MergeMethod)})
}

// CancelAutoMerge turns off the auto-merge of pull request number (GraphQL
// disablePullRequestAutoMerge) when the bot turned it on: when whoever enabled it is who opened the
// pull request, the bot. Auto-merge a person turned on on the bot's pull request is theirs: kept is
// their login. A pull request merged, or without auto-merge, is left alone. GitHub's refusal is an
// error wrapping ErrAutoMerge.
func (f *Forge) CancelAutoMerge(ctx context.Context, number int) (kept string, err error) {
	pr, _, err := f.client.PullRequests.Get(ctx, f.opts.Owner, f.opts.Repo, number)
	if err != nil {
		return "", f.wrap(fmt.Sprintf("read pull request #%d", number), err)
	}
	if pr.MergedAt != nil || pr.AutoMerge == nil {
		return "", nil
	}
	if by := pr.AutoMerge.GetEnabledBy().GetLogin(); !strings.EqualFold(by, pr.GetUser().GetLogin()) {
		return by, nil
	}
	reason, err := f.mutate(ctx, "disable auto-merge", disableAutoMerge, map[string]any{"pullRequestId": pr.GetNodeID()})
	if err != nil {
		return "", err
	}
	if reason != "" {
		return "", fmt.Errorf("pull request #%d: GitHub refused to turn off auto-merge (%s): %w", number, reason, ErrAutoMerge)
	}
	f.mu.Lock()
	if listed := f.listed[pr.GetHead().GetRef()]; listed != nil && listed.GetNumber() == number {
		listed.AutoMerge = nil
	}
	f.mu.Unlock()
	return "", nil
}

// mutate sends a GraphQL mutation (what names it in errors); GitHub's refusal, with status 200 and
// the errors in the body, comes back as reason, not as an error.
func (f *Forge) mutate(ctx context.Context, what, query string, vars map[string]any) (reason string, err error) {
	req, err := f.client.NewRequest(http.MethodPost, f.graphqlURL, graphqlRequest{Query: query, Variables: vars})
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	var resp graphqlResponse
	if _, err := f.client.Do(ctx, req, &resp); err != nil {
		return "", f.wrap(what, err)
	}
	var msgs []string
	for _, e := range resp.Errors {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "; "), nil
}
