package githubtest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// EnableGit makes the server a git remote too, as GitHub is: the repository is served over smart
// HTTP by the real `git http-backend` at URL/owner/repo.git, so that clone, fetch and push go through a
// real git server, authenticated as GitHub does (any user name, the token as password; x-access-token
// by convention). Branch heads then come from this repository: pull requests' head.sha, and MergePull
// really merges, and the Git Data API (blobs, trees, commits, refs) reads and writes this same
// repository, so that a commit made through the API is fetched by clone. Call it before any Git Data
// request. It returns the bare repository's directory and the clone URL (GITHUB_SERVER_URL is
// s.URL). It fails the test when git is not installed.
//
// files, when not empty, are committed as the first commit of main.
func (s *Server) EnableGit(files map[string]string) (dir, cloneURL string) {
	s.t.Helper()
	backend, err := exec.LookPath("git")
	if err != nil {
		s.t.Fatalf("githubtest: git is not installed: %v", err)
	}
	root := s.t.TempDir()
	dir = filepath.Join(root, s.Owner, s.Repo+".git")
	s.runGit("", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	s.runGit(dir, "config", "http.receivepack", "true")
	// Partial clone, as GitHub serves it: filters, and single objects asked for by hash.
	s.runGit(dir, "config", "uploadpack.allowFilter", "true")
	s.runGit(dir, "config", "uploadpack.allowAnySHA1InWant", "true")
	if len(files) > 0 {
		work := s.t.TempDir()
		s.runGit("", "clone", "--quiet", dir, work)
		for path, content := range files {
			full := filepath.Join(work, filepath.FromSlash(path))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				s.t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				s.t.Fatal(err)
			}
		}
		s.runGit(work, "add", "-A")
		s.runGit(work, "-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "--quiet", "-m", "initial")
		s.runGit(work, "push", "--quiet", "origin", "HEAD:main")
	}
	s.mu.Lock()
	if s.data != nil {
		s.mu.Unlock()
		s.t.Fatalf("githubtest: EnableGit after the Git Data API was used: call it first")
	}
	s.gitDir = dir
	s.data = s.newGitData(dir)
	s.gitHandler = &cgi.Handler{
		Path: backend,
		Args: []string{"http-backend"},
		// No `git gc --auto` after every push, in a repository that lives seconds.
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=receive.autogc", "GIT_CONFIG_VALUE_0=false"},
	}
	s.mu.Unlock()
	return dir, s.URL + "/" + s.Owner + "/" + s.Repo + ".git"
}

// serveGit answers smart-HTTP git requests; ok is false for any other request.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) (ok bool) {
	s.mu.Lock()
	handler, token, minted := s.gitHandler, s.Token, len(s.minted) > 0
	prefix := "/" + s.Owner + "/" + s.Repo + ".git/"
	s.mu.Unlock()
	if handler == nil || !strings.HasPrefix(r.URL.Path, prefix) {
		return false
	}
	s.mu.Lock()
	s.calls["GIT "+strings.TrimPrefix(r.URL.Path, prefix)]++
	_, password, hasAuth := r.BasicAuth()
	authorized := (token == "" && !minted) || (hasAuth && (password == token || s.minted[password]))
	s.mu.Unlock()
	if !authorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
		http.Error(w, "Invalid username or token. Password authentication is not supported for Git operations.", http.StatusUnauthorized)
		return true
	}
	handler.ServeHTTP(w, r)
	return true
}

func (s *Server) runGit(dir string, args ...string) string {
	s.t.Helper()
	out, err := s.git1(dir, args...)
	if err != nil {
		s.t.Fatalf("githubtest: git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (s *Server) git1(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir(), "GIT_TERMINAL_PROMPT=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// gitHead returns the commit a branch of the served repository points at, "" if none. Called with
// s.mu held.
func (s *Server) gitHead(branch string) string {
	if s.gitDir == "" {
		return ""
	}
	out, err := s.git1(s.gitDir, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	if err != nil {
		return ""
	}
	return out
}

// gitHeads returns the commit every branch of the served repository points at, by branch name: one
// git process for all of them, where a list of many open pull requests would start one per branch.
// Called with s.mu held.
func (s *Server) gitHeads() map[string]string {
	out, err := s.git1(s.gitDir, "for-each-ref", "--format=%(refname:lstrip=2) %(objectname)", "refs/heads/")
	if err != nil {
		return nil
	}
	heads := map[string]string{}
	for line := range strings.Lines(out) {
		if branch, sha, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			heads[branch] = sha
		}
	}
	return heads
}

// gitMerge merges head into base in the served repository as GitHub's merge button does: a
// fast-forward when possible is still a merge commit on GitHub, so a merge commit is made either
// way. It returns the merge commit. Called with s.mu held.
func (s *Server) gitMerge(number int, base, head string) (string, error) {
	baseSHA, headSHA := s.gitHead(base), s.gitHead(head)
	if baseSHA == "" || headSHA == "" {
		return "", fmt.Errorf("branch %s or %s does not exist", base, head)
	}
	tree, err := s.git1(s.gitDir, "merge-tree", "--write-tree", baseSHA, headSHA)
	if err != nil {
		return "", fmt.Errorf("merge conflict: %w", err)
	}
	tree = strings.SplitN(tree, "\n", 2)[0]
	commit, err := s.git1(s.gitDir, "-c", "user.name=GitHub", "-c", "user.email=noreply@github.com",
		"commit-tree", tree, "-p", baseSHA, "-p", headSHA, "-m", fmt.Sprintf("Merge pull request #%d from %s/%s", number, s.Owner, head))
	if err != nil {
		return "", err
	}
	if _, err := s.git1(s.gitDir, "update-ref", "refs/heads/"+base, commit, baseSHA); err != nil {
		return "", err
	}
	return commit, nil
}

// gitCommits lists the commits on head that are not on base, oldest first, as GET pulls/{n}/commits
// does. Called with s.mu held.
func (s *Server) gitCommits(base, head string) []Commit {
	if s.gitDir == "" {
		return nil
	}
	out, err := s.git1(s.gitDir, "log", "--reverse", "--format=%H%x00%an%x00%ae", "refs/heads/"+base+"..refs/heads/"+head)
	if err != nil || out == "" {
		return nil
	}
	var commits []Commit
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\x00")
		if len(f) != 3 {
			continue
		}
		login := s.Logins[f[2]]
		if login == "" && f[2] == BotEmail {
			login = botLogin
		}
		commits = append(commits, Commit{SHA: f[0], AuthorName: f[1], AuthorEmail: f[2], AuthorLogin: login})
	}
	return commits
}
