package githubtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The people around a pull request: the collaborators' permissions (GET
// collaborators/{username}/permission), the reviews of a pull request (GET pulls/{n}/reviews), the
// reactions on comments (POST issues/comments/{id}/reactions) and team memberships (GET
// orgs/{org}/teams/{team_slug}/memberships/{username}), shaped as GitHub's REST documentation shows them.

// SetPermission sets the repository permission of login as GitHub's collaborator permission API
// reports it: "admin", "maintain", "write", "triage", "read" or "none"; "missing" makes it answer 404,
// as GitHub does for an account it does not know. Logins never set are accounts without access to the
// repository: "read", as on a public repository.
func (s *Server) SetPermission(login, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles == nil {
		s.roles = map[string]string{}
	}
	s.roles[strings.ToLower(login)] = role
}

// AddTeamMember makes login an active member of org/team.
func (s *Server) AddTeamMember(org, team, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.teams == nil {
		s.teams = map[string]bool{}
	}
	s.teams[strings.ToLower(org+"/"+team+"/"+login)] = true
}

// Review is one review of a pull request as a test submits it.
type Review struct {
	Login string
	// State is APPROVED, CHANGES_REQUESTED, COMMENTED or DISMISSED.
	State string
	// CommitID is the head the review was given on; "" means the pull request's head now.
	CommitID string
}

// AddReview submits a review of pull request number and returns its id.
func (s *Server) AddReview(number int, r Review) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(number)
	if p == nil {
		s.t.Fatalf("githubtest: no pull request #%d to review", number)
		return 0
	}
	s.refreshHeads()
	if r.CommitID == "" {
		r.CommitID = p.Head.SHA
	}
	s.nextID++
	rv := &review{ID: s.nextID, NodeID: fmt.Sprintf("PRR_kwFAKE%d", s.nextID),
		User: user{Login: r.Login, ID: 9, Type: "User"}, Body: "", State: r.State,
		HTMLURL:        fmt.Sprintf("%s#pullrequestreview-%d", p.HTMLURL, s.nextID),
		PullRequestURL: p.URL, AuthorAssociation: "COLLABORATOR", SubmittedAt: *ts(s.Now()), CommitID: r.CommitID,
		pull: number}
	s.reviews = append(s.reviews, rv)
	p.touch(s.Now())
	return rv.ID
}

// Reaction is one reaction on an issue comment.
type Reaction struct {
	CommentID int64
	Login     string
	Content   string
}

// Reactions returns the reactions on issue comments, oldest first.
func (s *Server) Reactions() []Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Reaction
	for _, r := range s.reactions {
		out = append(out, Reaction{CommentID: r.comment, Login: r.User.Login, Content: r.Content})
	}
	return out
}

type review struct {
	ID                int64  `json:"id"`
	NodeID            string `json:"node_id"`
	User              user   `json:"user"`
	Body              string `json:"body"`
	State             string `json:"state"`
	HTMLURL           string `json:"html_url"`
	PullRequestURL    string `json:"pull_request_url"`
	AuthorAssociation string `json:"author_association"`
	SubmittedAt       string `json:"submitted_at"`
	CommitID          string `json:"commit_id"`

	pull int
}

type reaction struct {
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	User      user   `json:"user"`
	Content   string `json:"content"`
	CreatedAt string `json:"created_at"`

	comment int64
}

// reactionContents are the reactions GitHub accepts.
var reactionContents = map[string]bool{"+1": true, "-1": true, "laugh": true, "confused": true, "heart": true,
	"hooray": true, "rocket": true, "eyes": true}

// collaboratorPermission serves GET collaborators/{username}/permission: the legacy base role in
// `permission` (maintain reads as write, triage as read, as GitHub documents) and the role itself in
// `role_name`.
func (h handler) collaboratorPermission() {
	login := h.params[2]
	role, ok := h.s.roles[strings.ToLower(login)]
	if !ok {
		role = "read"
	}
	if role == "missing" {
		h.fail(http.StatusNotFound, apiError{Message: "Not Found",
			DocumentationURL: "https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user"})
		return
	}
	legacy := role
	switch role {
	case "maintain":
		legacy = "write"
	case "triage":
		legacy = "read"
	}
	h.json(http.StatusOK, map[string]any{"permission": legacy, "role_name": role,
		"user": map[string]any{"login": login, "id": 9, "type": "User", "permissions": map[string]bool{
			"admin": role == "admin", "maintain": role == "admin" || role == "maintain",
			"push": legacy == "admin" || legacy == "write", "triage": legacy != "none", "pull": legacy != "none"}}})
}

// listReviews serves GET pulls/{n}/reviews, oldest first, as GitHub lists them.
func (h handler) listReviews() {
	p, ok := h.number()
	if !ok {
		return
	}
	out := []*review{}
	for _, r := range h.s.reviews {
		if r.pull == p.Number {
			out = append(out, r)
		}
	}
	h.cacheable(out, "")
}

// createReaction serves POST issues/comments/{id}/reactions: 201 with the new reaction, 200 with the
// existing one when this account already reacted so, 422 for content GitHub does not know.
func (h handler) createReaction() {
	id, _ := strconv.ParseInt(h.params[2], 10, 64)
	found := false
	for _, c := range h.s.comments {
		found = found || c.ID == id
	}
	if !found {
		h.fail(http.StatusNotFound, apiError{Message: "Not Found",
			DocumentationURL: "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment"})
		return
	}
	var req struct {
		Content string `json:"content"`
	}
	if !h.decode(&req) {
		return
	}
	if !reactionContents[req.Content] {
		h.fail(http.StatusUnprocessableEntity, apiError{Message: "Validation Failed",
			Errors:           []fieldError{{Resource: "Reaction", Code: "invalid", Field: "content"}},
			DocumentationURL: "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment"})
		return
	}
	for _, r := range h.s.reactions {
		if r.comment == id && r.Content == req.Content && r.User.Login == botLogin {
			h.json(http.StatusOK, r)
			return
		}
	}
	h.s.nextID++
	r := &reaction{ID: h.s.nextID, NodeID: fmt.Sprintf("REA_FAKE%d", h.s.nextID), User: user{Login: botLogin, ID: 2, Type: "Bot"},
		Content: req.Content, CreatedAt: *ts(h.s.Now()), comment: id}
	h.s.reactions = append(h.s.reactions, r)
	h.json(http.StatusCreated, r)
}

// teamMembership serves GET orgs/{org}/teams/{team_slug}/memberships/{username}: an active member's
// membership, else 404, as GitHub answers for someone not on the team.
func (h handler) teamMembership() {
	org, slug, login := h.params[0], h.params[1], h.params[2]
	if !h.s.teams[strings.ToLower(org+"/"+slug+"/"+login)] {
		h.fail(http.StatusNotFound, apiError{Message: "Not Found",
			DocumentationURL: "https://docs.github.com/rest/teams/members#get-team-membership-for-a-user"})
		return
	}
	h.json(http.StatusOK, map[string]any{"url": fmt.Sprintf("%s/organizations/1/team/5/memberships/%s", h.s.URL, login),
		"role": "member", "state": "active"})
}
