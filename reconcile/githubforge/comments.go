package githubforge

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// commentPages bounds the pages of comments read to find the bot's own.
const commentPages = 5

// humanMarker marks the comment saying that a human pushed to the bot branch.
const humanMarker = "<!-- rollout:human-commits -->"

// UpsertComment keeps one comment, found by its hidden marker (an HTML comment such as
// "<!-- rollout:plan -->"), on issue or pull request number: it creates it, edits it when the body
// changed, or leaves it alone. It returns the comment's URL. It is idempotent.
func (f *Forge) UpsertComment(ctx context.Context, number int, marker, body string) (string, error) {
	if !strings.HasPrefix(marker, "<!--") || !strings.HasSuffix(marker, "-->") {
		return "", fmt.Errorf("comment marker %q is not an HTML comment: %w", marker, ErrConfig)
	}
	body = withMarker(marker, body)
	existing, err := f.findComment(ctx, number, marker)
	if err != nil {
		return "", err
	}
	if existing != nil {
		if existing.GetBody() == body {
			return existing.GetHTMLURL(), nil
		}
		got, _, err := f.client.Issues.EditComment(ctx, f.opts.Owner, f.opts.Repo, existing.GetID(), &github.IssueComment{Body: &body})
		if err != nil {
			return "", f.wrap(fmt.Sprintf("edit comment on #%d", number), err)
		}
		return got.GetHTMLURL(), nil
	}
	got, _, err := f.client.Issues.CreateComment(ctx, f.opts.Owner, f.opts.Repo, number, &github.IssueComment{Body: &body})
	if err != nil {
		return "", f.wrap(fmt.Sprintf("comment on #%d", number), err)
	}
	return got.GetHTMLURL(), nil
}

// commentOnce posts a comment unless one with the marker is already there.
func (f *Forge) commentOnce(ctx context.Context, number int, marker, body string) error {
	existing, err := f.findComment(ctx, number, marker)
	if err != nil || existing != nil {
		return err
	}
	body = withMarker(marker, body)
	if _, _, err := f.client.Issues.CreateComment(ctx, f.opts.Owner, f.opts.Repo, number, &github.IssueComment{Body: &body}); err != nil {
		return f.wrap(fmt.Sprintf("comment on #%d", number), err)
	}
	return nil
}

func withMarker(marker, body string) string {
	if strings.Contains(body, marker) {
		return body
	}
	return marker + "\n" + body
}

// findComment returns the bot's comment holding marker, or nil.
func (f *Forge) findComment(ctx context.Context, number int, marker string) (*github.IssueComment, error) {
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for page := 0; page < commentPages; page++ {
		comments, resp, err := f.client.Issues.ListComments(ctx, f.opts.Owner, f.opts.Repo, number, opts)
		if err != nil {
			return nil, f.wrap(fmt.Sprintf("list comments of #%d", number), err)
		}
		for _, c := range comments {
			if !strings.Contains(c.GetBody(), marker) {
				continue
			}
			if f.opts.BotLogin != "" && !strings.EqualFold(c.GetUser().GetLogin(), f.opts.BotLogin) {
				continue // someone quoted the marker
			}
			return c, nil
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return nil, nil
}

// HumanCommits lists the commits of pull request number that the bot did not make: neither mapped to
// BotLogin nor authored with BotEmail. It returns nil when neither is configured.
func (f *Forge) HumanCommits(ctx context.Context, number int) ([]string, error) {
	if f.opts.BotLogin == "" && f.opts.BotEmail == "" {
		return nil, nil
	}
	commits, _, err := f.client.PullRequests.ListCommits(ctx, f.opts.Owner, f.opts.Repo, number, &github.ListOptions{PerPage: 100})
	if err != nil {
		return nil, f.wrap(fmt.Sprintf("list commits of #%d", number), err)
	}
	var humans []string
	for _, c := range commits {
		login := c.GetAuthor().GetLogin()
		email := c.GetCommit().GetAuthor().GetEmail()
		bot := (f.opts.BotLogin != "" && strings.EqualFold(login, f.opts.BotLogin)) ||
			(f.opts.BotEmail != "" && strings.EqualFold(email, f.opts.BotEmail))
		if !bot {
			humans = append(humans, c.GetSHA())
		}
	}
	return humans, nil
}

func humanComment(shas []string) string {
	var b strings.Builder
	b.WriteString("Someone other than the rollout bot pushed to this branch, so the bot will no longer ")
	b.WriteString("force-push it. It keeps updating the evidence in the description. Commits:\n\n")
	for _, sha := range shas {
		fmt.Fprintf(&b, "- %s\n", sha)
	}
	b.WriteString("\nTo hand the branch back to the bot, close this pull request; the next stage change opens a new one.\n")
	return b.String()
}
