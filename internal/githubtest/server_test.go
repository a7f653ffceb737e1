package githubtest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
)

// recorder is a testing.TB that keeps the errors reported to it instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func now() time.Time { return time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC) }

func do(t *testing.T, method, url, body string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestUnexpectedEndpointFailsTheTest(t *testing.T) {
	rec := &recorder{TB: t}
	srv := githubtest.New(rec, "acme", "repo", now)
	resp := do(t, "DELETE", srv.URL+"/repos/acme/repo", "", nil)
	if resp.StatusCode != http.StatusNotFound || len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "DELETE /repos/acme/repo") {
		t.Errorf("status %d, errors %q", resp.StatusCode, rec.errors)
	}
}

func TestListShapesHeadersAndETag(t *testing.T) {
	srv := githubtest.New(t, "acme", "repo", now)
	for i := range 3 {
		srv.AddPull(fmt.Sprintf("rollout/r%d", i), "main", "t", "b", "bot")
	}
	resp := do(t, "GET", srv.URL+"/repos/acme/repo/pulls?state=all&per_page=2", "", nil)
	for _, h := range []string{"ETag", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource", "Link"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if !strings.Contains(resp.Header.Get("Link"), `page=2&per_page=2&state=all>; rel="next"`) {
		t.Errorf("Link = %q", resp.Header.Get("Link"))
	}
	var prs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&prs); err != nil || len(prs) != 2 {
		t.Fatalf("%v, %d pull requests", err, len(prs))
	}
	for _, field := range []string{"number", "state", "title", "body", "head", "base", "labels", "html_url", "node_id", "merged_at", "requested_reviewers", "updated_at"} {
		if _, ok := prs[0][field]; !ok {
			t.Errorf("no %q in a pull request", field)
		}
	}
	remaining := srv.RateRemaining()
	again := do(t, "GET", srv.URL+"/repos/acme/repo/pulls?state=all&per_page=2", "", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if again.StatusCode != http.StatusNotModified || srv.RateRemaining() != remaining {
		t.Errorf("status %d, rate %d → %d", again.StatusCode, remaining, srv.RateRemaining())
	}
}

func TestCreateAnswers201Then422(t *testing.T) {
	srv := githubtest.New(t, "acme", "repo", now)
	body := `{"title":"t","head":"rollout/a","base":"main","body":"b"}`
	if resp := do(t, "POST", srv.URL+"/repos/acme/repo/pulls", body, nil); resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") == "" {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	resp := do(t, "POST", srv.URL+"/repos/acme/repo/pulls", body, nil)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnprocessableEntity || !bytes.Contains(raw, []byte("A pull request already exists for acme:rollout/a.")) {
		t.Errorf("duplicate: %d %s", resp.StatusCode, raw)
	}
	if got := srv.Calls()["POST /repos/{owner}/{repo}/pulls"]; got != 2 {
		t.Errorf("calls = %d", got)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	srv := githubtest.New(t, "acme", "repo", now)
	srv.Token = "secret"
	url := srv.URL + "/repos/acme/repo/pulls"
	if resp := do(t, "GET", url, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	auth := map[string]string{"Authorization": "Bearer secret"}
	srv.Fail(1, githubtest.Fault{Status: 429, RetryAfter: 3})
	if resp := do(t, "GET", url, "", auth); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("429: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	srv.Fail(1, githubtest.Fault{Primary: true, ResetIn: time.Minute})
	resp := do(t, "GET", url, "", auth)
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Reset") != fmt.Sprint(now().Add(time.Minute).Unix()) {
		t.Errorf("primary: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := do(t, "GET", url, "", auth); resp.StatusCode != http.StatusOK {
		t.Errorf("after the faults: %d", resp.StatusCode)
	}
}
