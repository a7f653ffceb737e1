package gittest

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewBareAndHumanCheckout(t *testing.T) {
	bare := NewBare(t, map[string]string{"a.txt": "A\n", "dir/b.txt": "B\n"})
	if got := Git(t, bare, "ls-tree", "-r", "--name-only", "main"); got != "a.txt\ndir/b.txt" {
		t.Fatalf("tree = %q", got)
	}
	c := Clone(t, bare)
	c.Write(map[string]string{"a.txt": "changed\n"})
	h := c.Commit("change a")
	c.Push()
	if got := Head(t, bare, "main"); got != h {
		t.Fatalf("main = %s, want %s", got, h)
	}
	if got := Git(t, bare, "log", "-1", "--format=%an <%ae>", "main"); got != HumanName+" <"+HumanEmail+">" {
		t.Fatalf("author = %q", got)
	}
}

func TestServerSpeaksSmartHTTPWithAuthAndFaults(t *testing.T) {
	bare := NewBare(t, map[string]string{"a.txt": "A\n"})
	srv := NewServer(t, filepath.Dir(bare))
	url := srv.URL + "/" + filepath.Base(bare)

	// Clone and push through the server with the git CLI.
	c := Clone(t, url)
	c.Write(map[string]string{"b.txt": "B\n"})
	h := c.Commit("add b")
	c.Push()
	if got := Head(t, bare, "main"); got != h {
		t.Fatalf("main = %s after a push over HTTP, want %s", got, h)
	}

	srv.FailNext(1, http.StatusServiceUnavailable)
	if _, err := RunGit(c.Dir, "fetch", "--quiet", "origin"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("fetch during a 503: %v", err)
	}
	if _, err := RunGit(c.Dir, "fetch", "--quiet", "origin"); err != nil {
		t.Fatalf("fetch after the fault: %v", err)
	}

	srv.RequireAuth("x-access-token", "tok")
	if _, err := RunGit(c.Dir, "fetch", "--quiet", "origin"); err == nil {
		t.Fatal("fetch without credentials succeeded")
	}
	authed := strings.Replace(url, "http://", "http://x-access-token:tok@", 1)
	if _, err := RunGit(c.Dir, "fetch", "--quiet", authed); err != nil {
		t.Fatalf("fetch with credentials: %v", err)
	}
	if srv.Requests() < 6 {
		t.Fatalf("server counted %d requests", srv.Requests())
	}
}
