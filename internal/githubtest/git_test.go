package githubtest_test

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/githubtest"
)

// TestGitDataSharesTheServedRepository drives the Git Data API by hand and checks each answer against
// git itself, run on the bare repository the server serves and on a clone of it over smart HTTP.
func TestGitDataSharesTheServedRepository(t *testing.T) {
	srv := githubtest.New(t, "acme", "repo", now)
	bare, cloneURL := srv.EnableGit(map[string]string{"a.txt": "A\n", "dir/b.txt": "B\n"})
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		resp := do(t, method, srv.URL+"/repos/acme/repo/git/"+path, body, nil)
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d (%v)", method, path, resp.StatusCode, want, m)
		}
		return m
	}
	main := git(bare, "rev-parse", "main")
	if srv.Ref("main") != main {
		t.Fatalf("Ref(main) = %s, git says %s", srv.Ref("main"), main)
	}

	// Reads: a commit pushed over git, unsigned; unknown and malformed shas are 404.
	c := call("GET", "commits/"+main, "", http.StatusOK)
	if c["tree"].(map[string]any)["sha"] != git(bare, "rev-parse", "main^{tree}") ||
		c["verification"].(map[string]any)["reason"] != "unsigned" || c["message"] != "initial\n" {
		t.Errorf("commit %v", c)
	}
	call("GET", "commits/"+strings.Repeat("1", 40), "", http.StatusNotFound)
	call("GET", "commits/nope", "", http.StatusNotFound)
	call("GET", "blobs/"+strings.Repeat("2", 40), "", http.StatusNotFound)

	// Writes make real objects: a blob's sha is git's.
	blob := call("POST", "blobs", `{"content":"QwpD","encoding":"base64"}`, http.StatusCreated) // "C\nC"
	if want := fmt.Sprintf("%x", sha1.Sum([]byte("blob 3\x00C\nC"))); blob["sha"] != want || git(bare, "cat-file", "-p", want) != "C\nC" {
		t.Errorf("blob %v, want %s", blob, want)
	}
	tree := call("POST", "trees", fmt.Sprintf(`{"base_tree":%q,"tree":[
		{"path":"dir/c.txt","mode":"100644","type":"blob","sha":%q},
		{"path":"a.txt","mode":"100644","type":"blob","sha":null}]}`, c["tree"].(map[string]any)["sha"], blob["sha"]), http.StatusCreated)
	if got := git(bare, "ls-tree", "-r", "--name-only", tree["sha"].(string)); got != "dir/b.txt\ndir/c.txt" {
		t.Errorf("git ls-tree of the new tree: %q", got)
	}
	call("POST", "trees", `{"tree":[{"path":"x","mode":"100644","type":"blob","sha":"`+strings.Repeat("3", 40)+`"}]}`, http.StatusUnprocessableEntity)

	// A commit GitHub authors is signed by GitHub and reported verified.
	next := call("POST", "commits", fmt.Sprintf(`{"message":"m\n","tree":%q,"parents":[%q]}`, tree["sha"], main), http.StatusCreated)
	v := next["verification"].(map[string]any)
	if v["verified"] != true || v["reason"] != "valid" || !strings.Contains(git(bare, "cat-file", "commit", next["sha"].(string)), "gpgsig ") {
		t.Errorf("API commit verification %v", v)
	}
	if again := call("GET", "commits/"+next["sha"].(string), "", http.StatusOK); again["verification"].(map[string]any)["verified"] != true {
		t.Errorf("read back: %v", again["verification"])
	}
	// One given an author is not signed.
	authored := call("POST", "commits", fmt.Sprintf(`{"message":"m","tree":%q,"author":{"name":"A","email":"a@example.com"}}`, tree["sha"]), http.StatusCreated)
	if authored["verification"].(map[string]any)["verified"] != false {
		t.Errorf("authored commit %v", authored["verification"])
	}

	// Refs: not a fast-forward is 422 without force; a fast-forward moves git's ref.
	call("PATCH", "refs/heads/main", fmt.Sprintf(`{"sha":%q}`, authored["sha"]), http.StatusUnprocessableEntity)
	call("PATCH", "refs/heads/main", fmt.Sprintf(`{"sha":%q}`, next["sha"]), http.StatusOK)
	if got := git(bare, "rev-parse", "main"); got != next["sha"] {
		t.Errorf("git sees main at %s, want %s", got, next["sha"])
	}
	call("POST", "refs", fmt.Sprintf(`{"ref":"refs/heads/main","sha":%q}`, main), http.StatusUnprocessableEntity)
	call("POST", "refs", fmt.Sprintf(`{"ref":"refs/heads/side","sha":%q}`, authored["sha"]), http.StatusCreated)
	call("PATCH", "refs/heads/side", fmt.Sprintf(`{"sha":%q,"force":true}`, main), http.StatusOK)
	call("GET", "ref/heads/gone", "", http.StatusNotFound)

	// A clone over smart HTTP gets what the API wrote.
	work := t.TempDir()
	git(work, "clone", "--quiet", cloneURL, ".")
	if content, err := os.ReadFile(filepath.Join(work, "dir", "c.txt")); err != nil || string(content) != "C\nC" {
		t.Errorf("cloned dir/c.txt = %q, %v", content, err)
	}
	if _, err := os.Stat(filepath.Join(work, "a.txt")); !os.IsNotExist(err) {
		t.Errorf("a.txt survived its deletion: %v", err)
	}
	if got := git(work, "rev-parse", "origin/side"); got != main {
		t.Errorf("clone sees side at %s, want %s", got, main)
	}
}
