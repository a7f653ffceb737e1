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
	req, err := f.client.NewRequest(http.MethodPost, f.graphqlURL, graphqlRequest{Query: enableAutoMerge,
		Variables: map[string]any{"pullRequestId": nodeID, "mergeMethod": strings.ToUpper(f.opts.MergeMethod)}})
	if err != nil {
		return "", fmt.Errorf("enable auto-merge: %w", err)
	}
	var resp graphqlResponse
	if _, err := f.client.Do(ctx, req, &resp); err != nil {
		return "", f.wrap("enable auto-merge", err)
	}
	if len(resp.Errors) == 0 {
		return "", nil
	}
	var msgs []string
	for _, e := range resp.Errors {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "; "), nil
}
