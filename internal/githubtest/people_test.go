package githubtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/rollout-dev/rollout/internal/githubtest"
)

func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

// The collaborator permission API reports the legacy base role in `permission` (maintain as write,
// triage as read) and the role in `role_name`; an unknown account is 404.
func TestCollaboratorPermission(t *testing.T) {
	srv := githubtest.New(t, "acme", "repo", now)
	for login, role := range map[string]string{"ann": "admin", "mo": "maintain", "wes": "write", "tri": "triage", "rea": "read", "no": "none"} {
		srv.SetPermission(login, role)
	}
	srv.SetPermission("ghost", "missing")
	for login, want := range map[string][2]string{"ann": {"admin", "admin"}, "mo": {"write", "maintain"}, "wes": {"write", "write"},
		"tri": {"read", "triage"}, "rea": {"read", "read"}, "no": {"none", "none"}, "stranger": {"read", "read"}} {
		resp := do(t, "GET", srv.URL+"/repos/acme/repo/collaborators/"+login+"/permission", "", nil)
		var got struct {
			Permission string `json:"permission"`
			RoleName   string `json:"role_name"`
			User       struct {
				Login string `json:"login"`
			} `json:"user"`
		}
		decodeBody(t, resp, &got)
		if resp.StatusCode != http.StatusOK || got.Permission != want[0] || got.RoleName != want[1] || got.User.Login != login {
			t.Errorf("%s: %d %+v, want %v", login, resp.StatusCode, got, want)
		}
	}
	if resp := do(t, "GET", srv.URL+"/repos/acme/repo/collaborators/ghost/permission", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown account: %d", resp.StatusCode)
	}
}

// A reaction is 201 when new, 200 when the same one exists, 422 for content GitHub does not know and
// 404 on a comment that does not exist.
func TestReactionsOnComments(t *testing.T) {
	srv := githubtest.New(t, "acme", "repo", now)
	n := srv.AddPull("feature", "main", "t", "b", "ann")
	id := srv.AddComment(n, "ann", "User", "/rollout plan")
	url := srv.URL + "/repos/acme/repo/issues/comments/" + jsonID(id) + "/reactions"
	for _, tc := range []struct {
		body string
		want int
	}{{`{"content":"+1"}`, http.StatusCreated}, {`{"content":"+1"}`, http.StatusOK}, {`{"content":"thumbsup"}`, http.StatusUnprocessableEntity}} {
		if resp := do(t, "POST", url, tc.body, nil); resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.body, resp.StatusCode, tc.want)
		}
	}
	if resp := do(t, "POST", srv.URL+"/repos/acme/repo/issues/comments/1/reactions", `{"content":"+1"}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no such comment: %d", resp.StatusCode)
	}
	if got := srv.Reactions(); len(got) != 1 || got[0].Content != "+1" || got[0].CommentID != id {
		t.Errorf("reactions = %+v", got)
	}
}

// Reviews list oldest first with their state and commit; team membership is active or 404.
func TestReviewsAndTeams(t *testing.T) {
	srv := githubtest.New(t, "acme", "repo", now)
	n := srv.AddPull("rollout/a", "main", "t", "b", "rollout-bot[bot]")
	srv.AddReview(n, githubtest.Review{Login: "ann", State: "APPROVED"})
	srv.AddReview(n, githubtest.Review{Login: "bo", State: "CHANGES_REQUESTED", CommitID: "abc"})
	resp := do(t, "GET", srv.URL+"/repos/acme/repo/pulls/"+jsonID(int64(n))+"/reviews", "", nil)
	var got []struct {
		User     struct{ Login string } `json:"user"`
		State    string                 `json:"state"`
		CommitID string                 `json:"commit_id"`
	}
	decodeBody(t, resp, &got)
	if len(got) != 2 || got[0].User.Login != "ann" || got[0].State != "APPROVED" || got[0].CommitID == "" || got[1].CommitID != "abc" {
		t.Errorf("reviews = %+v", got)
	}
	srv.AddTeamMember("acme", "ml", "ann")
	if resp := do(t, "GET", srv.URL+"/orgs/acme/teams/ml/memberships/ann", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("member: %d", resp.StatusCode)
	}
	if resp := do(t, "GET", srv.URL+"/orgs/acme/teams/ml/memberships/bo", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("not a member: %d", resp.StatusCode)
	}
}

func jsonID(id int64) string { b, _ := json.Marshal(id); return string(b) }
