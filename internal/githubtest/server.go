// Package githubtest is an in-memory GitHub for tests: an httptest server that speaks the REST and
// GraphQL endpoints rollout uses, with the JSON shapes, status codes and headers GitHub documents
// (ETag and 304, X-RateLimit-*, Retry-After, Link), so the real go-github client talks to it.
//
// It keeps pull requests, comments, labels, reviewers and merges in memory, counts calls by endpoint,
// injects faults (5xx, primary and secondary rate limits) on demand, and fails the test on any request
// it does not implement. With EnableGit it is also the git remote, served over smart HTTP by the real
// `git http-backend` (go-git and the git CLI clone and push through it with the token), so that an
// end-to-end test needs nothing but GITHUB_API_URL and GITHUB_SERVER_URL pointing at it.
package githubtest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is an error response the server gives instead of serving a request.
type Fault struct {
	// Status is the HTTP status: 500, 502, 403, 429, or 404 (as GitHub answers a route the token may
	// not see, such as git/matching-refs without Contents: read).
	Status int
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
	// Secondary makes a 403 a secondary rate limit (GitHub's message and documentation URL).
	Secondary bool
	// Primary makes the response a primary rate limit: X-RateLimit-Remaining 0 and Reset ResetIn from now.
	Primary bool
	ResetIn time.Duration
}

// Commit is one commit of a pull request, as GET pulls/{n}/commits lists it.
type Commit struct {
	SHA         string
	AuthorLogin string // "" when GitHub cannot map the author email to an account
	AuthorName  string
	AuthorEmail string
}

// Server is the fake GitHub. Its exported fields may be changed between requests.
type Server struct {
	*httptest.Server

	Owner, Repo string
	// Token is the token every request must carry ("" accepts any). With an App, the installation
	// token minted by the access_tokens endpoint is accepted too.
	Token string
	// Now is the server's clock, used for timestamps and rate-limit resets.
	Now func() time.Time
	// Logins maps commit author emails to accounts, as GitHub does for verified emails; with git
	// enabled it names the authors GET pulls/{n}/commits reports.
	Logins map[string]string
	// AutoMergeAllowed is the repository setting "Allow auto-merge".
	AutoMergeAllowed bool
	// InstallationID is the id of the App installation on the repository; TokenLifetime how long
	// the installation tokens it mints last (default an hour, as on GitHub).
	InstallationID int64
	TokenLifetime  time.Duration

	t        testing.TB
	mu       sync.Mutex
	pulls    []*pullRequest
	comments []*issueComment
	commits  map[int][]Commit
	nextID   int64
	calls    map[string]int
	faults   []routeFault
	rate     rateState
	minted   map[string]bool
	data     *gitData

	gitDir     string
	gitHandler *cgi.Handler
	issues     int
	branches   map[string]string
	releases   *releaseStore
	roles      map[string]string
	teams      map[string]bool
	reviews    []*review
	reactions  []*reaction
	// autoMergeOff counts the disablePullRequestAutoMerge mutations.
	autoMergeOff int
}

type rateState struct {
	limit, remaining, used int
}

// New starts a fake GitHub for owner/repo and stops it when the test ends.
func New(t testing.TB, owner, repo string, now func() time.Time) *Server {
	s := &Server{
		Owner: owner, Repo: repo, Now: now, t: t,
		commits: map[int][]Commit{}, calls: map[string]int{}, minted: map[string]bool{},
		branches: map[string]string{}, nextID: 1000,
		rate:           rateState{limit: 5000, remaining: 5000},
		InstallationID: 77,
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// APIURL is the base URL to configure a client with, as GITHUB_API_URL would hold it.
func (s *Server) APIURL() string { return s.URL + "/" }

// Fail makes the next n requests answer with f.
func (s *Server) Fail(n int, f Fault) { s.FailRoute("", n, f) }

// FailRoute makes the next n requests to route (a key of Calls) answer with f.
func (s *Server) FailRoute(route string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, routeFault{route: route, fault: f})
	}
}

// Heal drops every fault still pending: the outage is over.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

type routeFault struct {
	route string
	fault Fault
}

// Calls returns how many requests each endpoint served, keyed "METHOD /route", e.g.
// "GET /repos/{owner}/{repo}/pulls". Requests answered with a fault count too.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ResetCalls clears the call counter.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
}

// TotalCalls is the sum of Calls.
func (s *Server) TotalCalls() int {
	n := 0
	for _, v := range s.Calls() {
		n += v
	}
	return n
}

// RateRemaining is the primary rate limit left; 304 answers do not spend it.
func (s *Server) RateRemaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rate.remaining
}

// SetBranch records the head commit of a branch, used as head.sha of pull requests from it.
func (s *Server) SetBranch(name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.branches[name] = sha
	for _, p := range s.pulls {
		if p.Head.Ref == name && p.State == "open" {
			p.Head.SHA = sha
			p.touch(s.Now())
		}
	}
}

// SetCommits sets the commits GET pulls/{n}/commits lists.
func (s *Server) SetCommits(number int, commits []Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits[number] = commits
}

// PullRequest is a snapshot of one pull request's state, for assertions.
type PullRequest struct {
	Number         int
	State          string
	Merged         bool
	Title, Body    string
	Head, Base     string
	Labels         []string
	Reviewers      []string
	TeamReviewers  []string
	AutoMerge      bool
	MergeMethod    string
	CommentBodies  []string
	ReviewRequests int
}

// Pulls returns every pull request, by number.
func (s *Server) Pulls() []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PullRequest
	for _, p := range s.pulls {
		out = append(out, s.snapshot(p))
	}
	return out
}

// Pull returns one pull request; ok is false when there is none with that number.
func (s *Server) Pull(number int) (PullRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(number)
	if p == nil {
		return PullRequest{}, false
	}
	return s.snapshot(p), true
}

// AddComment comments on issue or pull request number as the account login (of type "User" or
// "Bot"), as a reviewer or another tool would, and returns the comment's id.
func (s *Server) AddComment(number int, login, typ, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := *ts(s.Now())
	s.nextID++
	c := &issueComment{ID: s.nextID, NodeID: fmt.Sprintf("IC_FAKE%d", s.nextID),
		URL:  fmt.Sprintf("%s/repos/%s/%s/issues/comments/%d", s.URL, s.Owner, s.Repo, s.nextID),
		Body: body, User: user{Login: login, ID: 5, Type: typ}, CreatedAt: now, UpdatedAt: now,
		IssueURL: fmt.Sprintf("%s/repos/%s/%s/issues/%d", s.URL, s.Owner, s.Repo, number), issue: number}
	s.comments = append(s.comments, c)
	return c.ID
}

// Comment is one issue comment as the server holds it.
type Comment struct {
	ID    int64
	Login string
	Body  string
}

// Comments returns the comments of issue or pull request number, oldest first.
func (s *Server) Comments(number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments {
		if c.issue == number {
			out = append(out, Comment{ID: c.ID, Login: c.User.Login, Body: c.Body})
		}
	}
	return out
}

// AddPull opens a pull request as a human (or another tool) would, and returns its number.
func (s *Server) AddPull(head, base, title, body, login string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.create(head, base, title, body, login).Number
}

// ClosePull closes a pull request without merging, as a reviewer would.
func (s *Server) ClosePull(number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.find(number); p != nil {
		now := s.Now()
		p.State, p.ClosedAt = "closed", ts(now)
		p.touch(now)
	}
}

// MergePull merges a pull request, as a reviewer would.
func (s *Server) MergePull(number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.find(number); p != nil {
		if err := s.merge(p, "merge"); err != nil {
			s.t.Fatalf("githubtest: merge #%d: %v", number, err)
		}
	}
}

// EnableAutoMerge turns on auto-merge of a pull request as login would, in GitHub's web interface.
func (s *Server) EnableAutoMerge(number int, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.find(number); p != nil {
		p.AutoMerge = &autoMerge{EnabledBy: user{Login: login}, MergeMethod: "merge"}
		p.touch(s.Now())
	}
}

// AutoMergeTurnedOff counts the disablePullRequestAutoMerge mutations that turned auto-merge off.
func (s *Server) AutoMergeTurnedOff() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.autoMergeOff
}

// SetMergeable sets what GitHub computed for mergeable and mergeable_state ("clean", "blocked",
// "unstable", "dirty", …).
func (s *Server) SetMergeable(number int, mergeable bool, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.find(number); p != nil {
		p.Mergeable, p.MergeableState = &mergeable, state
	}
}

func (s *Server) snapshot(p *pullRequest) PullRequest {
	out := PullRequest{Number: p.Number, State: p.State, Merged: p.MergedAt != nil, Title: p.Title,
		Body: p.Body, Head: p.Head.Ref, Base: p.Base.Ref, AutoMerge: p.AutoMerge != nil,
		MergeMethod: p.mergeMethod, ReviewRequests: p.reviewRequests}
	for _, l := range p.Labels {
		out.Labels = append(out.Labels, l.Name)
	}
	for _, u := range p.RequestedReviewers {
		out.Reviewers = append(out.Reviewers, u.Login)
	}
	for _, tm := range p.RequestedTeams {
		out.TeamReviewers = append(out.TeamReviewers, tm.Slug)
	}
	for _, c := range s.comments {
		if c.issue == p.Number {
			out.CommentBodies = append(out.CommentBodies, c.Body)
		}
	}
	return out
}

// The JSON shapes below carry the field names of GitHub's REST API documentation.

type user struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
}

type team struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

type label struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Color string `json:"color"`
}

type repository struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Owner    user   `json:"owner"`
}

type branchRef struct {
	Label string     `json:"label"`
	Ref   string     `json:"ref"`
	SHA   string     `json:"sha"`
	User  user       `json:"user"`
	Repo  repository `json:"repo"`
}

type autoMerge struct {
	EnabledBy   user   `json:"enabled_by"`
	MergeMethod string `json:"merge_method"`
}

type pullRequest struct {
	URL                string     `json:"url"`
	ID                 int64      `json:"id"`
	NodeID             string     `json:"node_id"`
	HTMLURL            string     `json:"html_url"`
	Number             int        `json:"number"`
	State              string     `json:"state"`
	Locked             bool       `json:"locked"`
	Title              string     `json:"title"`
	User               user       `json:"user"`
	Body               string     `json:"body"`
	Labels             []label    `json:"labels"`
	CreatedAt          string     `json:"created_at"`
	UpdatedAt          string     `json:"updated_at"`
	ClosedAt           *string    `json:"closed_at"`
	MergedAt           *string    `json:"merged_at"`
	MergeCommitSHA     *string    `json:"merge_commit_sha"`
	RequestedReviewers []user     `json:"requested_reviewers"`
	RequestedTeams     []team     `json:"requested_teams"`
	Head               branchRef  `json:"head"`
	Base               branchRef  `json:"base"`
	Draft              bool       `json:"draft"`
	AutoMerge          *autoMerge `json:"auto_merge"`
	Merged             bool       `json:"merged"`
	Mergeable          *bool      `json:"mergeable"`
	MergeableState     string     `json:"mergeable_state"`

	mergeMethod    string
	reviewRequests int
}

func (p *pullRequest) touch(now time.Time) { p.UpdatedAt = *ts(now) }

type issueComment struct {
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Body      string `json:"body"`
	User      user   `json:"user"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	IssueURL  string `json:"issue_url"`
	// PerformedViaGitHubApp is the App that wrote the comment with an installation token; null else.
	PerformedViaGitHubApp *githubApp `json:"performed_via_github_app"`

	issue int
}

// githubApp is an App as a comment's performed_via_github_app names it.
type githubApp struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// apiError is GitHub's error body.
type apiError struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
	Status           string       `json:"status,omitempty"`
}

type fieldError struct {
	Resource string `json:"resource"`
	Code     string `json:"code"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message,omitempty"`
}

func ts(t time.Time) *string {
	s := t.UTC().Format(time.RFC3339)
	return &s
}

const botLogin = "rollout-bot[bot]"

var routes = []struct {
	method, pattern string
	re              *regexp.Regexp
}{
	{"GET", "/repos/{owner}/{repo}/pulls", nil},
	{"POST", "/repos/{owner}/{repo}/pulls", nil},
	{"GET", "/repos/{owner}/{repo}/pulls/{number}", nil},
	{"PATCH", "/repos/{owner}/{repo}/pulls/{number}", nil},
	{"GET", "/repos/{owner}/{repo}/pulls/{number}/commits", nil},
	{"POST", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers", nil},
	{"PUT", "/repos/{owner}/{repo}/pulls/{number}/merge", nil},
	{"POST", "/repos/{owner}/{repo}/issues/{number}/labels", nil},
	{"GET", "/repos/{owner}/{repo}/issues/{number}/comments", nil},
	{"POST", "/repos/{owner}/{repo}/issues/{number}/comments", nil},
	{"PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", nil},
	{"GET", "/repos/{owner}/{repo}/installation", nil},
	{"GET", "/user", nil},
	{"POST", "/app/installations/{installation_id}/access_tokens", nil},
	{"POST", "/graphql", nil},
	{"GET", "/repos/{owner}/{repo}/compare/{basehead}", nil},
	{"GET", "/repos/{owner}/{repo}/git/commits/{sha}", nil},
	{"GET", "/repos/{owner}/{repo}/git/blobs/{sha}", nil},
	{"POST", "/repos/{owner}/{repo}/git/blobs", nil},
	{"GET", "/repos/{owner}/{repo}/git/trees/{sha}", nil},
	{"POST", "/repos/{owner}/{repo}/git/trees", nil},
	{"POST", "/repos/{owner}/{repo}/git/commits", nil},
	{"GET", "/repos/{owner}/{repo}/git/ref/{ref}", nil},
	{"GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}", nil},
	{"POST", "/repos/{owner}/{repo}/git/refs", nil},
	{"PATCH", "/repos/{owner}/{repo}/git/refs/{ref}", nil},
	{"GET", "/repos/{owner}/{repo}/releases/tags/{tag}", nil},
	{"GET", "/repos/{owner}/{repo}/releases/assets/{asset_id}", nil},
	{"GET", "/repos/{owner}/{repo}/tags", nil},
	{"GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", nil},
	{"GET", "/repos/{owner}/{repo}/pulls/{number}/reviews", nil},
	{"POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", nil},
	{"GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}", nil},
}

func init() {
	for i, r := range routes {
		re := regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllStringFunc(r.pattern, func(p string) string {
			if p == "{ref}" || p == "{basehead}" {
				return `(.+)` // refs hold slashes: heads/rollout/summarizer
			}
			return `([^/]+)`
		})
		routes[i].re = regexp.MustCompile("^" + re + "$")
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.serveGit(w, r) || s.serveObjects(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	var route string
	var params []string
	for _, rt := range routes {
		if m := rt.re.FindStringSubmatch(r.URL.Path); m != nil && rt.method == r.Method {
			route, params = rt.method+" "+rt.pattern, m[1:]
			break
		}
	}
	if route == "" {
		s.t.Errorf("githubtest: unexpected request %s %s", r.Method, r.URL.Path)
		s.writeError(w, http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest"})
		return
	}
	s.calls[route]++

	resource := "core"
	if route == "POST /graphql" {
		resource = "graphql"
	}
	w.Header().Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%d", s.nextID))
	w.Header().Set("X-RateLimit-Resource", resource)

	if !s.authorized(r, route) {
		s.writeRate(w)
		s.writeError(w, http.StatusUnauthorized, apiError{Message: "Bad credentials", DocumentationURL: "https://docs.github.com/rest"})
		return
	}
	for i, f := range s.faults {
		if f.route == "" || f.route == route {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			s.writeFault(w, f.fault)
			return
		}
	}
	if strings.HasPrefix(route, "GET /repos/") && len(params) >= 2 && (params[0] != s.Owner || params[1] != s.Repo) && !(releaseRoute(route) && s.knowsRepo(params[0], params[1])) {
		s.writeRate(w)
		s.writeError(w, http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest"})
		return
	}

	body, _ := io.ReadAll(r.Body)
	h := handler{s: s, w: w, r: r, body: body, params: params}
	switch route {
	case "GET /repos/{owner}/{repo}/pulls":
		h.listPulls()
	case "POST /repos/{owner}/{repo}/pulls":
		h.createPull()
	case "GET /repos/{owner}/{repo}/pulls/{number}":
		h.getPull()
	case "PATCH /repos/{owner}/{repo}/pulls/{number}":
		h.editPull()
	case "GET /repos/{owner}/{repo}/pulls/{number}/commits":
		h.listCommits()
	case "POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers":
		h.requestReviewers()
	case "PUT /repos/{owner}/{repo}/pulls/{number}/merge":
		h.mergePull()
	case "POST /repos/{owner}/{repo}/issues/{number}/labels":
		h.addLabels()
	case "GET /user":
		h.authenticatedUser()
	case "GET /repos/{owner}/{repo}/issues/{number}/comments":
		h.listComments()
	case "POST /repos/{owner}/{repo}/issues/{number}/comments":
		h.createComment()
	case "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}":
		h.editComment()
	case "GET /repos/{owner}/{repo}/installation":
		h.json(http.StatusOK, map[string]any{"id": s.InstallationID, "app_id": 1, "target_type": "Organization",
			"account": user{Login: s.Owner, ID: 1, Type: "Organization"}})
	case "POST /app/installations/{installation_id}/access_tokens":
		h.accessToken()
	case "POST /graphql":
		h.graphql()
	case "GET /repos/{owner}/{repo}/releases/tags/{tag}":
		h.releaseByTag()
	case "GET /repos/{owner}/{repo}/releases/assets/{asset_id}":
		h.releaseAsset()
	case "GET /repos/{owner}/{repo}/tags":
		h.listTags()
	case "GET /repos/{owner}/{repo}/git/matching-refs/{ref}":
		h.matchingRefs()
	case "GET /repos/{owner}/{repo}/collaborators/{username}/permission":
		h.collaboratorPermission()
	case "GET /repos/{owner}/{repo}/pulls/{number}/reviews":
		h.listReviews()
	case "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions":
		h.createReaction()
	case "GET /orgs/{org}/teams/{team_slug}/memberships/{username}":
		h.teamMembership()
	default:
		h.gitData(route)
	}
}

func (s *Server) authorized(r *http.Request, route string) bool {
	auth := r.Header.Get("Authorization")
	if route == "POST /app/installations/{installation_id}/access_tokens" || route == "GET /repos/{owner}/{repo}/installation" {
		// App endpoints take the app's JWT: three base64 parts.
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		return ok && strings.Count(tok, ".") == 2
	}
	if s.Token == "" && len(s.minted) == 0 {
		return true
	}
	for _, scheme := range []string{"Bearer ", "token "} {
		if tok, ok := strings.CutPrefix(auth, scheme); ok {
			return tok == s.Token || s.minted[tok]
		}
	}
	return false
}

func (s *Server) writeRate(w http.ResponseWriter) {
	reset := s.Now().Add(time.Hour).Unix()
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.rate.limit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(s.rate.remaining))
	w.Header().Set("X-RateLimit-Used", strconv.Itoa(s.rate.used))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
}

// spend counts one request against the primary rate limit.
func (s *Server) spend() {
	if s.rate.remaining > 0 {
		s.rate.remaining--
	}
	s.rate.used++
}

func (s *Server) writeFault(w http.ResponseWriter, f Fault) {
	s.spend()
	s.writeRate(w)
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	switch {
	case f.Primary:
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(s.Now().Add(f.ResetIn).Unix(), 10))
		status := f.Status
		if status == 0 {
			status = http.StatusForbidden
		}
		s.writeError(w, status, apiError{Message: "API rate limit exceeded for installation ID 77.",
			DocumentationURL: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
	case f.Secondary:
		s.writeError(w, f.Status, apiError{Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID FAKE.",
			DocumentationURL: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
	case f.Status == http.StatusTooManyRequests:
		s.writeError(w, f.Status, apiError{Message: "Too Many Requests", DocumentationURL: "https://docs.github.com/rest"})
	default:
		s.writeError(w, f.Status, apiError{Message: http.StatusText(f.Status), DocumentationURL: "https://docs.github.com/rest"})
	}
}

func (s *Server) writeError(w http.ResponseWriter, status int, e apiError) {
	if e.Status == "" {
		e.Status = strconv.Itoa(status)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

func (s *Server) find(number int) *pullRequest {
	for _, p := range s.pulls {
		if p.Number == number {
			return p
		}
	}
	return nil
}

func (s *Server) repo() repository {
	return repository{ID: 1, Name: s.Repo, FullName: s.Owner + "/" + s.Repo, Owner: user{Login: s.Owner, ID: 1, Type: "Organization"}}
}

func (s *Server) create(head, base, title, body, login string) *pullRequest {
	now := s.Now()
	s.nextID++
	s.issues++ // issues and pull requests share one sequence of numbers
	n := s.issues
	sha := s.branches[head]
	if git := s.gitHead(head); git != "" {
		sha = git
	}
	if sha == "" {
		sha = fakeSHA(head)
	}
	p := &pullRequest{
		URL: fmt.Sprintf("%s/repos/%s/%s/pulls/%d", s.URL, s.Owner, s.Repo, n),
		ID:  s.nextID, NodeID: fmt.Sprintf("PR_kwFAKE%d", n),
		HTMLURL: fmt.Sprintf("%s/%s/%s/pull/%d", s.URL, s.Owner, s.Repo, n),
		Number:  n, State: "open", Title: title, Body: body, User: user{Login: login, ID: 2, Type: "Bot"},
		Labels: []label{}, CreatedAt: *ts(now), UpdatedAt: *ts(now),
		RequestedReviewers: []user{}, RequestedTeams: []team{},
		Head:           branchRef{Label: s.Owner + ":" + head, Ref: head, SHA: sha, Repo: s.repo(), User: user{Login: s.Owner}},
		Base:           branchRef{Label: s.Owner + ":" + base, Ref: base, SHA: fakeSHA(base), Repo: s.repo(), User: user{Login: s.Owner}},
		MergeableState: "unknown",
	}
	s.pulls = append(s.pulls, p)
	return p
}

func (s *Server) merge(p *pullRequest, method string) error {
	now := s.Now()
	sha := fakeSHA(fmt.Sprintf("merge-%d", p.Number))
	if s.gitDir != "" {
		var err error
		if sha, err = s.gitMerge(p.Number, p.Base.Ref, p.Head.Ref); err != nil {
			return err
		}
	}
	p.State, p.Merged, p.MergedAt, p.ClosedAt, p.MergeCommitSHA = "closed", true, ts(now), ts(now), &sha
	p.mergeMethod = method
	p.touch(now)
	return nil
}

// refreshHeads reads the head of every open pull request's branch from the served git repository;
// a push to it updates the pull request, as on GitHub.
func (s *Server) refreshHeads() {
	if s.gitDir == "" {
		return
	}
	heads := s.gitHeads()
	for _, p := range s.pulls {
		if p.State != "open" {
			continue
		}
		if sha := heads[p.Head.Ref]; sha != "" && sha != p.Head.SHA {
			p.Head.SHA = sha
			p.touch(s.Now())
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func fakeSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:20])
}

type handler struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	body   []byte
	params []string
}

func (h handler) json(status int, v any) {
	h.s.spend()
	h.s.writeRate(h.w)
	h.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	h.w.WriteHeader(status)
	_ = json.NewEncoder(h.w).Encode(v)
}

func (h handler) fail(status int, e apiError) {
	h.s.spend()
	h.s.writeRate(h.w)
	h.s.writeError(h.w, status, e)
}

// cacheable writes a GET answer with an ETag, and 304 when the client already holds it. A 304 does
// not count against the rate limit, as on GitHub.
func (h handler) cacheable(v any, link string) {
	raw, _ := json.Marshal(v)
	sum := sha256.Sum256(raw)
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
	h.w.Header().Set("ETag", etag)
	h.w.Header().Set("Cache-Control", "private, max-age=60, s-maxage=60")
	h.w.Header().Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	if link != "" {
		h.w.Header().Set("Link", link)
	}
	if inm := h.r.Header.Get("If-None-Match"); inm != "" && (inm == etag || strings.TrimPrefix(inm, "W/") == strings.TrimPrefix(etag, "W/")) {
		h.s.writeRate(h.w)
		h.w.WriteHeader(http.StatusNotModified)
		return
	}
	h.s.spend()
	h.s.writeRate(h.w)
	h.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	h.w.WriteHeader(http.StatusOK)
	_, _ = h.w.Write(append(raw, '\n'))
}

func (h handler) number() (*pullRequest, bool) {
	n, err := strconv.Atoi(h.params[2])
	p := h.s.find(n)
	if err != nil || p == nil {
		h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"})
		return nil, false
	}
	return p, true
}

func (h handler) decode(v any) bool {
	if err := json.Unmarshal(h.body, v); err != nil {
		h.fail(http.StatusBadRequest, apiError{Message: "Problems parsing JSON", DocumentationURL: "https://docs.github.com/rest"})
		return false
	}
	return true
}

// matchingRefs serves GET git/matching-refs/{ref} as GitHub documents it: every ref whose name starts
// with refs/{ref} (the whole name, or a prefix of it), sorted by name, as an array that is empty when
// none matches. The branches are those of the served repository (EnableGit), those set with SetBranch,
// and the head branch of every open pull request.
func (h handler) matchingRefs() {
	prefix := "refs/" + h.params[2]
	shas := map[string]string{}
	for name, sha := range h.s.branches {
		shas["refs/heads/"+name] = sha
	}
	for _, p := range h.s.pulls {
		if p.State == "open" {
			if _, ok := shas["refs/heads/"+p.Head.Ref]; !ok {
				shas["refs/heads/"+p.Head.Ref] = p.Head.SHA
			}
		}
	}
	if h.s.gitDir != "" {
		out, err := h.s.git1(h.s.gitDir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/")
		if err != nil {
			h.s.t.Errorf("githubtest: list refs: %v", err)
		}
		for line := range strings.SplitSeq(out, "\n") {
			if name, sha, ok := strings.Cut(line, " "); ok {
				shas[name] = sha
			}
		}
	}
	names := make([]string, 0, len(shas))
	for name := range shas {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([]map[string]any, 0, len(names))
	for _, name := range names {
		out = append(out, h.refJSON(name, shas[name]))
	}
	h.cacheable(out, "")
}

func (h handler) listPulls() {
	h.s.refreshHeads()
	q := h.r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var list []*pullRequest
	for _, p := range h.s.pulls {
		if state != "all" && p.State != state {
			continue
		}
		if head := q.Get("head"); head != "" && p.Head.Label != head {
			continue
		}
		list = append(list, p)
	}
	sortBy, desc := q.Get("sort"), q.Get("direction") != "asc"
	if q.Get("direction") == "" && sortBy == "" {
		desc = true
	}
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i].CreatedAt, list[j].CreatedAt
		if sortBy == "updated" {
			a, b = list[i].UpdatedAt, list[j].UpdatedAt
		}
		if a == b {
			a, b = strconv.Itoa(100000+list[i].Number), strconv.Itoa(100000+list[j].Number)
		}
		if desc {
			return a > b
		}
		return a < b
	})
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	if perPage <= 0 || perPage > 100 {
		perPage = 30
	}
	page, _ := strconv.Atoi(q.Get("page"))
	if page <= 0 {
		page = 1
	}
	last := (len(list) + perPage - 1) / perPage
	from, to := min((page-1)*perPage, len(list)), min(page*perPage, len(list))
	out := list[from:to]
	if out == nil {
		out = []*pullRequest{}
	}
	var link string
	if page < last {
		u := *h.r.URL
		u.Scheme, u.Host = "http", h.r.Host
		next, lastQ := u.Query(), u.Query()
		next.Set("page", strconv.Itoa(page+1))
		lastQ.Set("page", strconv.Itoa(last))
		u.RawQuery = next.Encode()
		nextURL := u.String()
		u.RawQuery = lastQ.Encode()
		link = fmt.Sprintf(`<%s>; rel="next", <%s>; rel="last"`, nextURL, u.String())
	}
	h.cacheable(out, link)
}

func (h handler) createPull() {
	var req struct {
		Title, Head, Base, Body string
		Draft                   bool
	}
	if !h.decode(&req) {
		return
	}
	if req.Title == "" || req.Head == "" || req.Base == "" {
		h.fail(http.StatusUnprocessableEntity, apiError{Message: "Validation Failed",
			Errors:           []fieldError{{Resource: "PullRequest", Code: "missing_field", Field: "head"}},
			DocumentationURL: "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"})
		return
	}
	head := strings.TrimPrefix(req.Head, h.s.Owner+":")
	for _, p := range h.s.pulls {
		if p.State == "open" && p.Head.Ref == head && p.Base.Ref == req.Base {
			h.fail(http.StatusUnprocessableEntity, apiError{Message: "Validation Failed",
				Errors: []fieldError{{Resource: "PullRequest", Code: "custom",
					Message: fmt.Sprintf("A pull request already exists for %s:%s.", h.s.Owner, head)}},
				DocumentationURL: "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"})
			return
		}
	}
	p := h.s.create(head, req.Base, req.Title, req.Body, botLogin)
	p.Draft = req.Draft
	h.w.Header().Set("Location", p.URL)
	h.json(http.StatusCreated, p)
}

func (h handler) getPull() {
	h.s.refreshHeads()
	if p, ok := h.number(); ok {
		h.cacheable(p, "")
	}
}

func (h handler) editPull() {
	p, ok := h.number()
	if !ok {
		return
	}
	var req struct {
		Title, Body, State, Base *string
	}
	if !h.decode(&req) {
		return
	}
	now := h.s.Now()
	if req.Title != nil {
		p.Title = *req.Title
	}
	if req.Body != nil {
		p.Body = *req.Body
	}
	if req.Base != nil {
		p.Base.Ref = *req.Base
	}
	if req.State != nil {
		switch *req.State {
		case "closed":
			if p.State == "open" {
				p.State, p.ClosedAt = "closed", ts(now)
			}
		case "open":
			if p.MergedAt != nil {
				h.fail(http.StatusUnprocessableEntity, apiError{Message: "Validation Failed",
					Errors:           []fieldError{{Resource: "PullRequest", Code: "custom", Field: "state", Message: "state cannot be changed. The pull request cannot be reopened."}},
					DocumentationURL: "https://docs.github.com/rest/pulls/pulls#update-a-pull-request"})
				return
			}
			p.State, p.ClosedAt = "open", nil
		}
	}
	p.touch(now)
	h.json(http.StatusOK, p)
}

func (h handler) listCommits() {
	p, ok := h.number()
	if !ok {
		return
	}
	out := []map[string]any{}
	commits, set := h.s.commits[p.Number]
	if !set {
		commits = h.s.gitCommits(p.Base.Ref, p.Head.Ref)
	}
	for _, c := range commits {
		var author any
		if c.AuthorLogin != "" {
			author = user{Login: c.AuthorLogin, ID: 3, Type: "User"}
		}
		when := *ts(h.s.Now())
		out = append(out, map[string]any{
			"sha": c.SHA, "node_id": "C_" + c.SHA,
			"url":    fmt.Sprintf("%s/repos/%s/%s/commits/%s", h.s.URL, h.s.Owner, h.s.Repo, c.SHA),
			"author": author, "committer": author,
			"commit": map[string]any{
				"author":    map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": when},
				"committer": map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": when},
				"message":   "commit " + c.SHA,
			},
			"parents": []any{},
		})
	}
	h.cacheable(out, "")
}

func (h handler) requestReviewers() {
	p, ok := h.number()
	if !ok {
		return
	}
	var req struct {
		Reviewers     []string `json:"reviewers"`
		TeamReviewers []string `json:"team_reviewers"`
	}
	if !h.decode(&req) {
		return
	}
	p.reviewRequests++
	for _, r := range req.Reviewers {
		if r == p.User.Login {
			h.fail(http.StatusUnprocessableEntity, apiError{Message: "Review cannot be requested from pull request author.",
				DocumentationURL: "https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request"})
			return
		}
		if !containsUser(p.RequestedReviewers, r) {
			p.RequestedReviewers = append(p.RequestedReviewers, user{Login: r, ID: 4, Type: "User"})
		}
	}
	for _, t := range req.TeamReviewers {
		if !containsTeam(p.RequestedTeams, t) {
			p.RequestedTeams = append(p.RequestedTeams, team{ID: 5, Slug: t, Name: t})
		}
	}
	p.touch(h.s.Now())
	h.json(http.StatusCreated, p)
}

func containsUser(us []user, login string) bool {
	for _, u := range us {
		if u.Login == login {
			return true
		}
	}
	return false
}

func containsTeam(ts []team, slug string) bool {
	for _, t := range ts {
		if t.Slug == slug {
			return true
		}
	}
	return false
}

func (h handler) mergePull() {
	h.s.refreshHeads()
	p, ok := h.number()
	if !ok {
		return
	}
	var req struct {
		MergeMethod string `json:"merge_method"`
		SHA         string `json:"sha"`
	}
	if len(h.body) > 0 && !h.decode(&req) {
		return
	}
	if p.State != "open" || p.Mergeable == nil || !*p.Mergeable || (p.MergeableState != "clean" && p.MergeableState != "unstable" && p.MergeableState != "has_hooks") {
		h.fail(http.StatusMethodNotAllowed, apiError{Message: "Pull Request is not mergeable",
			DocumentationURL: "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"})
		return
	}
	if req.SHA != "" && req.SHA != p.Head.SHA {
		h.fail(http.StatusConflict, apiError{Message: "Head branch was modified. Review and try the merge again.",
			DocumentationURL: "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"})
		return
	}
	method := req.MergeMethod
	if method == "" {
		method = "merge"
	}
	if err := h.s.merge(p, method); err != nil {
		h.fail(http.StatusMethodNotAllowed, apiError{Message: "Pull Request is not mergeable: " + err.Error(),
			DocumentationURL: "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"})
		return
	}
	h.json(http.StatusOK, map[string]any{"sha": *p.MergeCommitSHA, "merged": true, "message": "Pull Request successfully merged"})
}

func (h handler) addLabels() {
	p, ok := h.number()
	if !ok {
		return
	}
	// GitHub takes {"labels": [...]} or a bare array of names.
	var req struct {
		Labels []string `json:"labels"`
	}
	if err := json.Unmarshal(h.body, &req.Labels); err != nil && !h.decode(&req) {
		return
	}
	for _, name := range req.Labels {
		found := false
		for _, l := range p.Labels {
			found = found || l.Name == name
		}
		if !found {
			h.s.nextID++
			p.Labels = append(p.Labels, label{ID: h.s.nextID, Name: name, Color: "ededed"})
		}
	}
	p.touch(h.s.Now())
	h.json(http.StatusOK, p.Labels)
}

// authenticatedUser serves GET /user: the account of the token, the one the server writes comments and
// pull requests as. An App's installation token has no user: 403, as GitHub answers it.
func (h handler) authenticatedUser() {
	if tok, _ := strings.CutPrefix(strings.TrimPrefix(h.r.Header.Get("Authorization"), "token "), "Bearer "); h.s.minted[tok] {
		h.fail(http.StatusForbidden, apiError{Message: "Resource not accessible by integration",
			DocumentationURL: "https://docs.github.com/rest/users/users#get-the-authenticated-user"})
		return
	}
	h.json(http.StatusOK, user{Login: botLogin, ID: 2, Type: "Bot"})
}

func (h handler) listComments() {
	p, ok := h.number()
	if !ok {
		return
	}
	out := []*issueComment{}
	for _, c := range h.s.comments {
		if c.issue == p.Number {
			out = append(out, c)
		}
	}
	h.cacheable(out, "")
}

func (h handler) createComment() {
	p, ok := h.number()
	if !ok {
		return
	}
	var req struct {
		Body string `json:"body"`
	}
	if !h.decode(&req) {
		return
	}
	now := *ts(h.s.Now())
	h.s.nextID++
	c := &issueComment{ID: h.s.nextID, NodeID: fmt.Sprintf("IC_FAKE%d", h.s.nextID),
		URL:     fmt.Sprintf("%s/repos/%s/%s/issues/comments/%d", h.s.URL, h.s.Owner, h.s.Repo, h.s.nextID),
		HTMLURL: fmt.Sprintf("%s#issuecomment-%d", p.HTMLURL, h.s.nextID),
		Body:    req.Body, User: user{Login: botLogin, ID: 2, Type: "Bot"}, CreatedAt: now, UpdatedAt: now,
		IssueURL: fmt.Sprintf("%s/repos/%s/%s/issues/%d", h.s.URL, h.s.Owner, h.s.Repo, p.Number), issue: p.Number}
	if tok, _ := strings.CutPrefix(strings.TrimPrefix(h.r.Header.Get("Authorization"), "token "), "Bearer "); h.s.minted[tok] {
		c.PerformedViaGitHubApp = &githubApp{ID: 4242, Slug: strings.TrimSuffix(botLogin, "[bot]"), Name: "rollout"}
	}
	h.s.comments = append(h.s.comments, c)
	h.w.Header().Set("Location", c.URL)
	h.json(http.StatusCreated, c)
}

func (h handler) editComment() {
	id, _ := strconv.ParseInt(h.params[2], 10, 64)
	var c *issueComment
	for _, x := range h.s.comments {
		if x.ID == id {
			c = x
		}
	}
	if c == nil {
		h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/issues/comments#update-an-issue-comment"})
		return
	}
	var req struct {
		Body string `json:"body"`
	}
	if !h.decode(&req) {
		return
	}
	c.Body, c.UpdatedAt = req.Body, *ts(h.s.Now())
	h.json(http.StatusOK, c)
}

// InstallationToken mints an installation token of the App, as POST access_tokens does, for a test
// that acts as the App without its key (an Action's GITHUB_TOKEN is such a token).
func (s *Server) InstallationToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	tok := fmt.Sprintf("ghs_fakeinstallation%d", s.nextID)
	s.minted[tok] = true
	return tok
}

func (h handler) accessToken() {
	id, _ := strconv.ParseInt(h.params[0], 10, 64)
	if id != h.s.InstallationID {
		h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"})
		return
	}
	h.s.nextID++
	tok := fmt.Sprintf("ghs_fakeinstallation%d", h.s.nextID)
	h.s.minted[tok] = true
	h.json(http.StatusCreated, map[string]any{"token": tok, "expires_at": *ts(h.s.Now().Add(cmp.Or(h.s.TokenLifetime, time.Hour))),
		"permissions": map[string]string{"contents": "write", "pull_requests": "write"}, "repository_selection": "selected"})
}

// graphql answers the two mutations rollout sends: enablePullRequestAutoMerge and
// disablePullRequestAutoMerge.
func (h handler) graphql() {
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if !h.decode(&req) {
		return
	}
	mutation := ""
	for _, m := range []string{"enablePullRequestAutoMerge", "disablePullRequestAutoMerge"} {
		if strings.Contains(req.Query, m) {
			mutation = m
		}
	}
	if mutation == "" {
		h.s.t.Errorf("githubtest: unexpected GraphQL query %q", req.Query)
		h.json(http.StatusOK, map[string]any{"errors": []map[string]any{{"message": "unsupported query"}}})
		return
	}
	id, _ := req.Variables["pullRequestId"].(string)
	var p *pullRequest
	for _, x := range h.s.pulls {
		if x.NodeID == id {
			p = x
		}
	}
	gqlErr := func(typ, msg string) {
		h.json(http.StatusOK, map[string]any{"data": map[string]any{mutation: nil},
			"errors": []map[string]any{{"type": typ, "path": []string{mutation}, "message": msg,
				"locations": []map[string]int{{"line": 2, "column": 3}}}}})
	}
	switch {
	case p == nil:
		gqlErr("NOT_FOUND", fmt.Sprintf("Could not resolve to a node with the global id of '%s'", id))
	case mutation == "disablePullRequestAutoMerge":
		h.s.autoMergeOff++
		p.AutoMerge = nil
		p.touch(h.s.Now())
		h.json(http.StatusOK, map[string]any{"data": map[string]any{mutation: map[string]any{
			"pullRequest": map[string]any{"number": p.Number}}}})
	case !h.s.AutoMergeAllowed:
		gqlErr("UNPROCESSABLE", "Auto merge is not allowed for this repository")
	case p.MergeableState == "clean":
		gqlErr("UNPROCESSABLE", "Pull request is in clean status")
	default:
		method, _ := req.Variables["mergeMethod"].(string)
		p.AutoMerge = &autoMerge{EnabledBy: user{Login: botLogin}, MergeMethod: strings.ToLower(method)}
		p.touch(h.s.Now())
		h.json(http.StatusOK, map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": map[string]any{
			"pullRequest": map[string]any{"number": p.Number, "autoMergeRequest": map[string]any{"mergeMethod": method}}}}})
	}
}
