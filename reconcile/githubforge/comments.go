package githubforge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// issueComment is an issue comment with what go-github leaves out of it: the App that wrote it.
type issueComment struct {
	github.IssueComment
	PerformedViaGitHubApp *struct {
		Slug string `json:"slug"`
	} `json:"performed_via_github_app"`
}

// findComment returns the bot's comment holding marker, or nil. A comment someone else wrote holding
// the marker (quoting it, or posted ahead of the bot so that it keeps quiet: anyone may comment on a
// public repository's pull request) is not the bot's; see own.
func (f *Forge) findComment(ctx context.Context, number int, marker string) (*github.IssueComment, error) {
	next := fmt.Sprintf("repos/%s/%s/issues/%d/comments?per_page=100", f.opts.Owner, f.opts.Repo, number)
	for page := 0; page < commentPages && next != ""; page++ {
		req, err := f.client.NewRequest(http.MethodGet, next, nil)
		if err != nil {
			return nil, fmt.Errorf("list comments of #%d: %w", number, err)
		}
		var comments []*issueComment
		resp, err := f.client.Do(ctx, req, &comments)
		if err != nil {
			return nil, f.wrap(fmt.Sprintf("list comments of #%d", number), err)
		}
		for _, c := range comments {
			if !strings.Contains(c.GetBody(), marker) {
				continue
			}
			mine, err := f.own(ctx, c)
			if err != nil {
				return nil, err
			}
			if mine {
				return &c.IssueComment, nil
			}
		}
		next = ""
		if resp.NextPage != 0 {
			next = fmt.Sprintf("repos/%s/%s/issues/%d/comments?per_page=100&page=%d", f.opts.Owner, f.opts.Repo, number, resp.NextPage)
		}
	}
	return nil, nil
}

// own reports whether the token this forge writes with wrote c: the account Options.BotLogin names;
// without it, the token's account (GET /user, asked once, and only when a comment holds a marker); and
// for an App's installation token (an Action's GITHUB_TOKEN among them), which has no account of its
// own, a Bot account's comment made by a GitHub App acting as itself ("<slug>[bot]"), which no person
// can write.
func (f *Forge) own(ctx context.Context, c *issueComment) (bool, error) {
	login := c.GetUser().GetLogin()
	if f.opts.BotLogin != "" {
		return strings.EqualFold(login, f.opts.BotLogin), nil
	}
	self, err := f.selfLogin(ctx)
	if err != nil {
		return false, err
	}
	if self != "" {
		return strings.EqualFold(login, self), nil
	}
	app := c.PerformedViaGitHubApp
	return app != nil && app.Slug != "" && strings.EqualFold(c.GetUser().GetType(), "Bot") &&
		strings.EqualFold(login, app.Slug+"[bot]"), nil
}

// selfLogin is the login of the token's account, "" for an App's installation token (GitHub answers
// GET /user with 403 for one). It is asked once per Forge.
func (f *Forge) selfLogin(ctx context.Context) (string, error) {
	f.mu.Lock()
	known, login := f.selfKnown, f.self
	f.mu.Unlock()
	if known {
		return login, nil
	}
	u, _, err := f.client.Users.Get(ctx, "")
	if err != nil {
		var resp *github.ErrorResponse
		if !errors.As(err, &resp) || resp.Response == nil || resp.Response.StatusCode != http.StatusForbidden {
			return "", f.wrap("read the token's account", err)
		}
	} else {
		login = u.GetLogin()
	}
	f.mu.Lock()
	f.self, f.selfKnown = login, true
	f.mu.Unlock()
	return login, nil
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
