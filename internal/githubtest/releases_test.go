package githubtest_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"

	gogithub "github.com/google/go-github/v60/github"

	"github.com/rollout-dev/rollout/internal/githubtest"
)

// The releases the fake serves read back through go-github, the real client: a release by tag, its
// assets' download through the API's redirect, the tags list; and GitHub's 404s where there is none.
func TestReleasesThroughGoGitHub(t *testing.T) {
	srv := githubtest.New(t, "acme", "models", now)
	srv.Token = "ghs_token"
	srv.AddRelease("rollout-dev", "rollout", githubtest.Release{Tag: "v1.4.0", Commit: "5b1f6d1c9e0a4b7d8c3e2f1a0b9c8d7e6f5a4b3c",
		Assets: map[string][]byte{"checksums.txt": []byte("abc  rollout_1.4.0_linux_amd64.tar.gz\n"), "rollout_1.4.0_linux_amd64.tar.gz": []byte("archive")}})
	srv.AddTag("rollout-dev", "rollout", "v1", "5b1f6d1c9e0a4b7d8c3e2f1a0b9c8d7e6f5a4b3c")

	client := newClient(t, srv, "ghs_token")
	ctx := context.Background()
	rel, _, err := client.Repositories.GetReleaseByTag(ctx, "rollout-dev", "rollout", "v1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if rel.GetTagName() != "v1.4.0" || len(rel.Assets) != 2 {
		t.Fatalf("release = %s with %d assets", rel.GetTagName(), len(rel.Assets))
	}
	for _, a := range rel.Assets {
		// With a client to follow the redirect, go-github returns the body of the download URL.
		body, redirect, err := client.Repositories.DownloadReleaseAsset(ctx, "rollout-dev", "rollout", a.GetID(), http.DefaultClient)
		if err != nil || redirect != "" {
			t.Fatalf("download %s: %v (redirect %q)", a.GetName(), err, redirect)
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if int64(len(got)) != int64(a.GetSize()) {
			t.Errorf("%s: %d bytes, the asset says %d", a.GetName(), len(got), a.GetSize())
		}
		// Without one, it gets the redirect: a URL that works once, without the token.
		_, redirect, err = client.Repositories.DownloadReleaseAsset(ctx, "rollout-dev", "rollout", a.GetID(), nil)
		if err != nil || redirect == "" {
			t.Fatalf("download %s without following: %v, %q", a.GetName(), err, redirect)
		}
		for i, want := range []int{http.StatusOK, http.StatusForbidden} {
			resp, err := http.Get(redirect)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET of the download URL, try %d: %d, want %d", i+1, resp.StatusCode, want)
			}
		}
	}
	tags, _, err := client.Repositories.ListTags(ctx, "rollout-dev", "rollout", &gogithub.ListOptions{PerPage: 100})
	if err != nil || len(tags) != 2 || tags[0].GetName() != "v1" || tags[0].GetCommit().GetSHA() != tags[1].GetCommit().GetSHA() {
		t.Errorf("tags = %v, %v", tags, err)
	}

	_, resp, err := client.Repositories.GetReleaseByTag(ctx, "rollout-dev", "rollout", "main")
	if err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a tag without a release: %v", err)
	}
	_, resp, err = client.Repositories.GetReleaseByTag(ctx, "other", "repo", "v1.4.0")
	if err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a repository the server does not know: %v", err)
	}
	// A wrong token is refused on the API, as everywhere.
	bad := newClient(t, srv, "wrong")
	if _, resp, err := bad.Repositories.GetReleaseByTag(ctx, "rollout-dev", "rollout", "v1.4.0"); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %v", err)
	}
}

// newClient is go-github pointed at the fake as GITHUB_API_URL would point it.
func newClient(t *testing.T, srv *githubtest.Server, token string) *gogithub.Client {
	t.Helper()
	c := gogithub.NewClient(nil).WithAuthToken(token)
	u, err := url.Parse(srv.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}
