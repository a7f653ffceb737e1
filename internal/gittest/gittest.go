// Package gittest makes real git repositories for tests: bare remotes with an initial commit, checkouts
// that act as a human (write, commit, push with the git CLI), and a smart-HTTP git server with fault
// injection. Everything lives under t.TempDir() and every server stops when its test ends.
package gittest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Human is the identity that gittest's checkouts commit as.
const (
	HumanName  = "Ada Human"
	HumanEmail = "ada@example.com"
)

// Env is the environment every git command of this package runs with: no user or system config, a
// fixed human identity and fixed dates, so that hashes are reproducible, and no housekeeping (the
// `git maintenance run --auto` that a commit or a fetch starts) in repositories that live seconds.
func Env() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=maintenance.auto", "GIT_CONFIG_VALUE_0=false",
		"GIT_AUTHOR_NAME="+HumanName,
		"GIT_AUTHOR_EMAIL="+HumanEmail,
		"GIT_COMMITTER_NAME="+HumanName,
		"GIT_COMMITTER_EMAIL="+HumanEmail,
		"GIT_AUTHOR_DATE=2026-04-01T00:00:00Z",
		"GIT_COMMITTER_DATE=2026-04-01T00:00:00Z",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// Git runs git with args in dir and returns its trimmed standard output; it fails the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := RunGit(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunGit runs git with args in dir and returns its trimmed standard output, or an error holding its
// standard error.
func RunGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", &gitError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string { return e.err.Error() + ": " + e.stderr }
func (e *gitError) Unwrap() error { return e.err }

// NewBare creates a bare repository whose branch main holds one commit with files (path to content),
// made by the human identity. It returns the repository's directory.
func NewBare(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	Git(t, ".", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	work := filepath.Join(t.TempDir(), "seed")
	Git(t, ".", "init", "--quiet", "--initial-branch=main", work)
	c := &Checkout{t: t, Dir: work}
	c.Write(files)
	c.Commit("Initial commit")
	Git(t, work, "push", "--quiet", dir, "main")
	return dir
}

// Checkout is a working copy that acts as a human user of the repository.
type Checkout struct {
	t   testing.TB
	Dir string
}

// Clone clones url (a path or URL) into a new temporary directory.
func Clone(t testing.TB, url string) *Checkout {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "clone")
	Git(t, ".", "clone", "--quiet", url, dir)
	return &Checkout{t: t, Dir: dir}
}

// Git runs a git command in the checkout.
func (c *Checkout) Git(args ...string) string {
	c.t.Helper()
	return Git(c.t, c.Dir, args...)
}

// Write writes files (path to content) into the working tree, creating folders as needed.
func (c *Checkout) Write(files map[string]string) {
	c.t.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(c.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// Commit stages every change and commits it with message; it returns the new commit's hash.
func (c *Checkout) Commit(message string) string {
	c.t.Helper()
	c.Git("add", "-A")
	c.Git("commit", "--quiet", "--allow-empty", "-m", message)
	return c.Git("rev-parse", "HEAD")
}

// Push pushes the current branch (or the given refspecs) to origin.
func (c *Checkout) Push(refspecs ...string) {
	c.t.Helper()
	c.Git(append([]string{"push", "--quiet", "origin"}, refspecs...)...)
}

// Pull fetches origin and fast-forwards the current branch.
func (c *Checkout) Pull() {
	c.t.Helper()
	c.Git("pull", "--quiet", "--ff-only")
}

// Head returns the hash of a ref (a branch name, HEAD, …) of the bare repository dir.
func Head(t testing.TB, dir, ref string) string {
	t.Helper()
	return Git(t, dir, "rev-parse", ref)
}
