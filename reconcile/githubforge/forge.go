// Package githubforge is the GitHub side of rollout: pull requests proposing the next stage, comments,
// auto-merge, through go-github (v60), behind reconcile.Forge.
//
// One tick costs one list call for the whole repository, answered 304 (free of rate limit) when nothing
// changed. Writes go one at a time; rate limits and 5xx answers are waited out with an injected sleep,
// within a budget, and what is still failing comes back wrapping reconcile.ErrTransient.
//
// It belongs to the reconcile room and adapts GitHub (go-github) to reconcile.Forge.
package githubforge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/gregjones/httpcache"

	"github.com/rollout-dev/rollout/reconcile"
)

// DefaultAPIURL is GitHub.com's REST API, used when Options.APIURL is empty.
const DefaultAPIURL = "https://api.github.com/"

// BranchPrefix starts the head branch of every pull request the bot opens: rollout/<name>.
const BranchPrefix = "rollout/"

// Options configure a Forge. Owner, Repo, Now and one of Token or App are required.
type Options struct {
	// Owner and Repo name the repository, as GITHUB_REPOSITORY holds them ("owner/repo").
	Owner, Repo string
	// APIURL is the REST API root, as GITHUB_API_URL holds it; default DefaultAPIURL. A GitHub
	// Enterprise server's is https://HOST/api/v3.
	APIURL string

	// Token is a GITHUB_TOKEN, a personal access token or an installation token.
	Token string
	// AppID and AppPrivateKey (PEM) authenticate as a GitHub App; its installation token is minted
	// and refreshed by ghinstallation. InstallationID 0 looks the installation up from the repository.
	AppID          int64
	AppPrivateKey  []byte
	InstallationID int64

	// BotLogin and BotEmail identify the bot's commits on its branches (the login GitHub maps the
	// commit to, or the author email gitrepo writes). Commits matching neither are a human's. With
	// both empty, human commits are not looked for. BotLogin also names the author of the bot's own
	// comments; without it the forge asks GitHub which account its token is (see Forge.own).
	BotLogin string
	BotEmail string
	// Teams lists reviewers that are team slugs. A reviewer written "org/team" is a team too.
	Teams []string
	// MergeMethod is what auto-merge uses: merge (default), squash or rebase.
	MergeMethod string
	// ListPages bounds the pages (100 pull requests each, most recently updated first) a tick reads;
	// default 3.
	ListPages int

	// Now is the clock; Sleep waits (default: a timer that honours the context). RetryBudget bounds
	// the total wait for one request (default 2 minutes), RetryAttempts its tries (default 6).
	Now           func() time.Time
	Sleep         func(ctx context.Context, d time.Duration) error
	RetryBudget   time.Duration
	RetryAttempts int
	// WriteGap is the least time between two writes, as GitHub asks of integrations that write a lot
	// (default a second; negative for none).
	WriteGap time.Duration

	// Transport is the HTTP transport underneath; default http.DefaultTransport.
	Transport http.RoundTripper
}

// FromEnv reads the options GitHub Actions sets: GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_TOKEN,
// and for an App GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY (the PEM itself) and optionally
// GITHUB_APP_INSTALLATION_ID.
func FromEnv(getenv func(string) string) (Options, error) {
	var o Options
	full := getenv("GITHUB_REPOSITORY")
	owner, repo, ok := strings.Cut(full, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return o, fmt.Errorf("GITHUB_REPOSITORY %q: %w", full, ErrConfig)
	}
	o.Owner, o.Repo = owner, repo
	o.APIURL = getenv("GITHUB_API_URL")
	o.Token = getenv("GITHUB_TOKEN")
	if id := getenv("GITHUB_APP_ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return o, fmt.Errorf("GITHUB_APP_ID %q: %w", id, ErrConfig)
		}
		o.AppID, o.AppPrivateKey = n, []byte(getenv("GITHUB_APP_PRIVATE_KEY"))
	}
	if id := getenv("GITHUB_APP_INSTALLATION_ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return o, fmt.Errorf("GITHUB_APP_INSTALLATION_ID %q: %w", id, ErrConfig)
		}
		o.InstallationID = n
	}
	return o, nil
}

// Errors the forge returns, for errors.Is.
var (
	// ErrConfig is a missing or malformed option.
	ErrConfig = errors.New("invalid GitHub configuration")
	// ErrAutoMerge is a pull request that can neither get auto-merge nor be merged now; the error
	// names GitHub's reason.
	ErrAutoMerge = errors.New("cannot auto-merge")
)

// Forge is reconcile.Forge over one GitHub repository. It is safe for concurrent use.
type Forge struct {
	opts       Options
	client     *github.Client
	graphqlURL string
	token      func(context.Context) (string, error)

	mu sync.Mutex
	// listed holds the pull requests of the last Proposals call by head branch, so that Propose
	// need not look again for the one it updates.
	listed map[string]*github.PullRequest
	// self is the login of the token's account once selfKnown ("" for an installation token).
	self      string
	selfKnown bool
}

var (
	_ reconcile.Forge             = (*Forge)(nil)
	_ reconcile.AutoMerger        = (*Forge)(nil)
	_ reconcile.AutoMergeCanceler = (*Forge)(nil)
)

// New builds a Forge. It makes no request.
func New(o Options) (*Forge, error) {
	if o.Owner == "" || o.Repo == "" {
		return nil, fmt.Errorf("owner and repository: %w", ErrConfig)
	}
	if o.Now == nil {
		return nil, fmt.Errorf("no clock: %w", ErrConfig)
	}
	if o.Token == "" && o.AppID == 0 {
		return nil, fmt.Errorf("no GITHUB_TOKEN and no GitHub App: %w", ErrConfig)
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(o.APIURL, "/") {
		o.APIURL += "/"
	}
	base, err := url.Parse(o.APIURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("GITHUB_API_URL %q: %w", o.APIURL, ErrConfig)
	}
	if o.Sleep == nil {
		o.Sleep = sleepContext
	}
	if o.RetryBudget == 0 {
		o.RetryBudget = 2 * time.Minute
	}
	if o.RetryAttempts == 0 {
		o.RetryAttempts = 6
	}
	if o.WriteGap == 0 {
		o.WriteGap = time.Second
	}
	if o.ListPages == 0 {
		o.ListPages = 3
	}
	if o.MergeMethod == "" {
		o.MergeMethod = "merge"
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}

	f := &Forge{opts: o, listed: map[string]*github.PullRequest{}}
	retry := &retryTransport{base: o.Transport, now: o.Now, sleep: o.Sleep, budget: o.RetryBudget, attempts: o.RetryAttempts,
		writeGap: max(o.WriteGap, 0)}
	var authed http.RoundTripper
	if o.AppID != 0 {
		app, err := newAppAuth(retry, strings.TrimSuffix(o.APIURL, "/"), o)
		if err != nil {
			return nil, err
		}
		authed, f.token = app, app.Token
	} else {
		authed = tokenAuth{base: retry, token: o.Token}
		f.token = func(context.Context) (string, error) { return o.Token, nil }
	}
	cache := httpcache.NewTransport(httpcache.NewMemoryCache())
	cache.Transport = authed
	f.client = github.NewClient(&http.Client{Transport: revalidate{base: cache}})
	f.client.BaseURL = base
	f.client.UploadURL = base
	f.graphqlURL = "graphql"
	if strings.HasSuffix(base.Path, "/api/v3/") {
		f.graphqlURL = "../graphql" // GitHub Enterprise Server: /api/v3 for REST, /api/graphql
	}
	return f, nil
}

// Proposals lists the bot's pull requests, by rollout name: the open one, or else the most recently
// updated closed or merged one. It reads the repository's pull requests most recently updated first,
// at most ListPages pages of 100, whatever the number of rollouts; unchanged pages cost no rate limit.
// Pull requests from forks are never the bot's, whatever their branch.
//
// When the repository has more pull requests than those pages hold, an open pull request of the bot
// that no one touched lately may lie beyond them, and a rollback must still close it. Then it also
// lists the bot's branches (one call, GET git/matching-refs/heads/rollout/) and, for each branch
// without an open pull request in the pages, asks for the open pull request of that branch (GET pulls
// with head=owner:branch). So the cost depends on the bot's branches, never on the repository's pull
// requests, and a repository with fewer pull requests than the pages hold pays nothing more: one list
// call, answered 304 while nothing changed. The per-branch calls carry ETags too, so a tick that finds
// nothing new spends no rate limit on them either.
func (f *Forge) Proposals(ctx context.Context) (map[string]reconcile.Proposal, error) {
	opts := &github.PullRequestListOptions{State: "all", Sort: "updated", Direction: "desc",
		ListOptions: github.ListOptions{PerPage: 100}}
	out := map[string]reconcile.Proposal{}
	listed := map[string]*github.PullRequest{}
	add := func(pr *github.PullRequest) {
		if !f.ours(pr) {
			return
		}
		p := toProposal(pr)
		if prev, seen := out[p.Rollout]; seen && (prev.State == reconcile.ProposalOpen || p.State != reconcile.ProposalOpen) {
			return // newer first: keep the first seen, unless this one is open
		}
		out[p.Rollout] = p
		if p.State == reconcile.ProposalOpen {
			listed[p.Branch] = pr
		}
	}
	truncated := false
	for page := 1; page <= f.opts.ListPages; page++ {
		prs, resp, err := f.client.PullRequests.List(ctx, f.opts.Owner, f.opts.Repo, opts)
		if err != nil {
			return nil, f.wrap("list pull requests", err)
		}
		for _, pr := range prs {
			add(pr)
		}
		if resp.NextPage == 0 {
			break
		}
		truncated = page == f.opts.ListPages
		opts.Page = resp.NextPage
	}
	if truncated {
		beyond, err := f.openBeyond(ctx, listed)
		if err != nil {
			return nil, err
		}
		for _, pr := range beyond {
			add(pr)
		}
	}
	f.mu.Lock()
	f.listed = listed
	f.mu.Unlock()
	return out, nil
}

// openBeyond finds the open pull requests of the bot's branches that are not in open: one call for the
// branches, and one per branch not in open.
func (f *Forge) openBeyond(ctx context.Context, open map[string]*github.PullRequest) ([]*github.PullRequest, error) {
	var out []*github.PullRequest
	refOpts := &github.ReferenceListOptions{Ref: "heads/" + BranchPrefix, ListOptions: github.ListOptions{PerPage: 100}}
	for {
		refs, resp, err := f.client.Git.ListMatchingRefs(ctx, f.opts.Owner, f.opts.Repo, refOpts)
		if err != nil {
			return nil, f.wrap("list the bot's branches", err)
		}
		for _, ref := range refs {
			branch := strings.TrimPrefix(ref.GetRef(), "refs/heads/")
			if branch == ref.GetRef() || len(branch) <= len(BranchPrefix) || open[branch] != nil {
				continue
			}
			prs, _, err := f.client.PullRequests.List(ctx, f.opts.Owner, f.opts.Repo, &github.PullRequestListOptions{
				State: "open", Head: f.opts.Owner + ":" + branch, ListOptions: github.ListOptions{PerPage: 10}})
			if err != nil {
				return nil, f.wrap("find the open pull request of "+branch, err)
			}
			for _, pr := range prs {
				if pr.GetHead().GetRef() == branch {
					out = append(out, pr)
				}
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		refOpts.Page = resp.NextPage
	}
}

func (f *Forge) ours(pr *github.PullRequest) bool {
	ref := pr.GetHead().GetRef()
	if !strings.HasPrefix(ref, BranchPrefix) || len(ref) == len(BranchPrefix) {
		return false
	}
	return strings.EqualFold(pr.GetHead().GetRepo().GetFullName(), f.opts.Owner+"/"+f.opts.Repo)
}

func toProposal(pr *github.PullRequest) reconcile.Proposal {
	state := reconcile.ProposalOpen
	switch {
	case pr.MergedAt != nil:
		state = reconcile.ProposalMerged
	case pr.GetState() == "closed":
		state = reconcile.ProposalClosed
	}
	ref := pr.GetHead().GetRef()
	return reconcile.Proposal{
		Rollout: strings.TrimPrefix(ref, BranchPrefix), Branch: ref, Number: pr.GetNumber(),
		URL: pr.GetHTMLURL(), Title: pr.GetTitle(), Body: pr.GetBody(), State: state, Head: pr.GetHead().GetSHA(),
		AutoMerging: pr.AutoMerge != nil,
	}
}

// Propose opens the pull request for req.Branch, with its labels and reviewers, or updates the open
// one: title, body and base only where they differ, labels only those missing (reviewers a human
// removed are not asked again). It never opens a second one: when GitHub answers that one exists, it
// finds and updates that one. On an existing pull request it also looks for human commits, says so
// once in a comment, and reports them in Proposal.HumanCommits. With req.AutoMerge, it enables
// auto-merge or merges (see AutoMerge).
func (f *Forge) Propose(ctx context.Context, req reconcile.ProposalRequest) (reconcile.Proposal, error) {
	if !strings.HasPrefix(req.Branch, BranchPrefix) || req.Base == "" || req.Title == "" {
		return reconcile.Proposal{}, fmt.Errorf("propose %q onto %q: %w", req.Branch, req.Base, ErrConfig)
	}
	f.mu.Lock()
	pr := f.listed[req.Branch]
	f.mu.Unlock()

	created := false
	if pr == nil {
		newPR := &github.NewPullRequest{Title: &req.Title, Head: &req.Branch, Base: &req.Base, Body: &req.Body}
		got, _, err := f.client.PullRequests.Create(ctx, f.opts.Owner, f.opts.Repo, newPR)
		switch {
		case err == nil:
			pr, created = got, true
		case alreadyExists(err):
			if pr, err = f.openPull(ctx, req.Branch); err != nil {
				return reconcile.Proposal{}, err
			}
		default:
			return reconcile.Proposal{}, f.wrap("open pull request for "+req.Branch, err)
		}
	}

	var err error
	if created {
		err = f.decorate(ctx, pr, req)
	} else {
		pr, err = f.update(ctx, pr, req)
	}
	if err != nil {
		return reconcile.Proposal{}, err
	}
	f.mu.Lock()
	f.listed[req.Branch] = pr
	f.mu.Unlock()

	p := toProposal(pr)
	if req.Rollout != "" {
		p.Rollout = req.Rollout
	}
	if !created {
		humans, err := f.HumanCommits(ctx, pr.GetNumber())
		if err != nil {
			return p, err
		}
		p.HumanCommits = humans
		if len(humans) > 0 {
			if err := f.commentOnce(ctx, pr.GetNumber(), humanMarker, humanComment(humans)); err != nil {
				return p, err
			}
		}
	}
	if req.AutoMerge && p.State == reconcile.ProposalOpen {
		merged, err := f.AutoMerge(ctx, pr.GetNumber())
		if err != nil {
			return p, err
		}
		if merged {
			p.State = reconcile.ProposalMerged
		}
	}
	return p, nil
}

// openPull finds the open pull request from branch, after GitHub said one exists.
func (f *Forge) openPull(ctx context.Context, branch string) (*github.PullRequest, error) {
	prs, _, err := f.client.PullRequests.List(ctx, f.opts.Owner, f.opts.Repo, &github.PullRequestListOptions{
		State: "open", Head: f.opts.Owner + ":" + branch, ListOptions: github.ListOptions{PerPage: 10}})
	if err != nil {
		return nil, f.wrap("find the open pull request for "+branch, err)
	}
	for _, pr := range prs {
		if pr.GetHead().GetRef() == branch {
			return pr, nil
		}
	}
	return nil, fmt.Errorf("GitHub says a pull request exists for %s but lists none: %w", branch, reconcile.ErrTransient)
}

// decorate adds the labels and reviewers of a new pull request.
func (f *Forge) decorate(ctx context.Context, pr *github.PullRequest, req reconcile.ProposalRequest) error {
	n := pr.GetNumber()
	if len(req.Labels) > 0 {
		labels, _, err := f.client.Issues.AddLabelsToIssue(ctx, f.opts.Owner, f.opts.Repo, n, req.Labels)
		if err != nil {
			return f.wrap(fmt.Sprintf("label pull request #%d", n), err)
		}
		pr.Labels = labels
	}
	if len(req.Reviewers) > 0 {
		users, teams := f.splitReviewers(req.Reviewers)
		got, _, err := f.client.PullRequests.RequestReviewers(ctx, f.opts.Owner, f.opts.Repo, n,
			github.ReviewersRequest{Reviewers: users, TeamReviewers: teams})
		if err != nil {
			return f.wrap(fmt.Sprintf("request reviewers on pull request #%d", n), err)
		}
		pr.RequestedReviewers, pr.RequestedTeams = got.RequestedReviewers, got.RequestedTeams
	}
	return nil
}

// splitReviewers puts "org/team" and configured team slugs in team_reviewers, the rest in reviewers.
func (f *Forge) splitReviewers(reviewers []string) (users, teams []string) {
	for _, r := range reviewers {
		if _, slug, ok := strings.Cut(r, "/"); ok {
			teams = append(teams, slug)
			continue
		}
		isTeam := false
		for _, t := range f.opts.Teams {
			isTeam = isTeam || strings.EqualFold(t, r)
		}
		if isTeam {
			teams = append(teams, r)
		} else {
			users = append(users, r)
		}
	}
	return users, teams
}

// update changes only what differs between the open pull request and req.
func (f *Forge) update(ctx context.Context, pr *github.PullRequest, req reconcile.ProposalRequest) (*github.PullRequest, error) {
	n := pr.GetNumber()
	edit := &github.PullRequest{}
	changed := false
	if pr.GetTitle() != req.Title {
		edit.Title, changed = github.String(req.Title), true
	}
	if pr.GetBody() != req.Body {
		edit.Body, changed = github.String(req.Body), true
	}
	if pr.GetBase().GetRef() != req.Base {
		edit.Base, changed = &github.PullRequestBranch{Ref: github.String(req.Base)}, true
	}
	if changed {
		got, _, err := f.client.PullRequests.Edit(ctx, f.opts.Owner, f.opts.Repo, n, edit)
		if err != nil {
			return nil, f.wrap(fmt.Sprintf("update pull request #%d", n), err)
		}
		pr = got
	}
	var missing []string
	for _, want := range req.Labels {
		found := false
		for _, l := range pr.Labels {
			found = found || strings.EqualFold(l.GetName(), want)
		}
		if !found {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		labels, _, err := f.client.Issues.AddLabelsToIssue(ctx, f.opts.Owner, f.opts.Repo, n, missing)
		if err != nil {
			return nil, f.wrap(fmt.Sprintf("label pull request #%d", n), err)
		}
		pr.Labels = labels
	}
	return pr, nil
}

// Close comments on the pull request (once, even when retried) and closes it. Closing one already
// closed only comments.
func (f *Forge) Close(ctx context.Context, p reconcile.Proposal, comment string) error {
	if p.Number == 0 {
		return fmt.Errorf("close proposal for %s: no pull request number: %w", p.Rollout, ErrConfig)
	}
	marker := closeMarker(p.Head)
	if err := f.commentOnce(ctx, p.Number, marker, comment); err != nil {
		return err
	}
	if p.State != reconcile.ProposalOpen && p.State != "" {
		return nil
	}
	_, _, err := f.client.PullRequests.Edit(ctx, f.opts.Owner, f.opts.Repo, p.Number, &github.PullRequest{State: github.String("closed")})
	if err != nil {
		return f.wrap(fmt.Sprintf("close pull request #%d", p.Number), err)
	}
	f.mu.Lock()
	delete(f.listed, p.Branch)
	f.mu.Unlock()
	return nil
}

var _ reconcile.BranchCloser = (*Forge)(nil)

// CloseBranch closes the bot's open pull request whose head is branch (rollout/<name>), with comment,
// without listing the repository's pull requests: one GET pulls?head=owner:branch, then Close. A pass
// whose listing failed (a 5xx, or git/matching-refs answering 404) uses it so that a rolled back
// rollout's stale pull request does not stay open. closed is false when none is open.
func (f *Forge) CloseBranch(ctx context.Context, branch, comment string) (bool, error) {
	if !strings.HasPrefix(branch, BranchPrefix) || len(branch) == len(BranchPrefix) {
		return false, fmt.Errorf("close the pull request of %q: %w", branch, ErrConfig)
	}
	prs, _, err := f.client.PullRequests.List(ctx, f.opts.Owner, f.opts.Repo, &github.PullRequestListOptions{
		State: "open", Head: f.opts.Owner + ":" + branch, ListOptions: github.ListOptions{PerPage: 10}})
	if err != nil {
		return false, f.wrap("find the open pull request of "+branch, err)
	}
	for _, pr := range prs {
		if pr.GetHead().GetRef() != branch || !f.ours(pr) || pr.GetState() != "open" {
			continue
		}
		if err := f.Close(ctx, toProposal(pr), comment); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

func closeMarker(head string) string {
	return "<!-- rollout:close " + head + " -->"
}
