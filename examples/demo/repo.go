package demo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// DefaultBranch is the default branch of the demo repository.
const DefaultBranch = "main"

// Identities of the people in the story. The bot's is gitrepo's default.
var (
	author   = object.Signature{Name: "Ada Okafor", Email: "ada@example.com"}
	reviewer = object.Signature{Name: "Sam Reviewer", Email: "sam@example.com"}
)

// createRepository makes the bare repository (the team's remote) and a clone holding files, committed
// by a team member at when and pushed. Everything goes through go-git: no git binary is needed.
func createRepository(bareDir, cloneDir, url string, files map[string][]byte, when time.Time) error {
	main := plumbing.NewBranchReferenceName(DefaultBranch)
	if _, err := git.PlainInitWithOptions(bareDir, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: main}}); err != nil {
		return fmt.Errorf("create bare repository: %w", err)
	}
	clone, err := git.PlainInitWithOptions(cloneDir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: main}})
	if err != nil {
		return fmt.Errorf("create clone: %w", err)
	}
	wt, err := clone.Worktree()
	if err != nil {
		return fmt.Errorf("create clone: %w", err)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(cloneDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if _, err := wt.Add(p); err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
	}
	sig := author
	sig.When = when
	_, err = wt.Commit("Add three canaries: a prompt rewrite, a model bump and a cost cut\n\nEach rollout starts on the reconciler's next tick.\n",
		&git.CommitOptions{Author: &sig, Committer: &sig})
	if err != nil {
		return fmt.Errorf("commit the rollouts: %w", err)
	}
	// origin is the plain path, for the git binary of whoever explores the clone; this process pushes
	// through the in-process URL.
	if _, err := clone.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{bareDir}}); err != nil {
		return fmt.Errorf("add origin: %w", err)
	}
	err = clone.Push(&git.PushOptions{RemoteName: "origin", RemoteURL: url,
		RefSpecs: []config.RefSpec{config.RefSpec(main + ":" + main)}})
	if err != nil {
		return fmt.Errorf("push the rollouts: %w", err)
	}
	return nil
}

// updateClone fetches every branch into the clone and fast-forwards its checkout to the remote's
// default branch, so that the kept directory shows the end of the story.
func updateClone(cloneDir, url string) error {
	clone, err := git.PlainOpen(cloneDir)
	if err != nil {
		return fmt.Errorf("open clone: %w", err)
	}
	err = clone.Fetch(&git.FetchOptions{RemoteName: "origin", RemoteURL: url,
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetch into clone: %w", err)
	}
	ref, err := clone.Reference(plumbing.NewRemoteReferenceName("origin", DefaultBranch), true)
	if err != nil {
		return fmt.Errorf("fetch into clone: %w", err)
	}
	wt, err := clone.Worktree()
	if err != nil {
		return fmt.Errorf("open clone: %w", err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: ref.Hash(), Mode: git.HardReset}); err != nil {
		return fmt.Errorf("update clone: %w", err)
	}
	return nil
}

// CommitText is what `git show` prints for a commit of the bare repository at bareDir: its header,
// its message and its diff against its first parent.
func CommitText(bareDir, hash string) (string, error) {
	repo, err := git.PlainOpen(bareDir)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", bareDir, err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", hash, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "commit %s\nAuthor: %s <%s>\nDate:   %s\n\n", c.Hash, c.Author.Name, c.Author.Email,
		c.Author.When.UTC().Format(time.RFC1123Z))
	for _, line := range strings.Split(strings.TrimRight(c.Message, "\n"), "\n") {
		b.WriteString(strings.TrimRight("    "+line, " ") + "\n")
	}
	if c.NumParents() == 0 {
		return b.String(), nil
	}
	parent, err := c.Parent(0)
	if err != nil {
		return "", fmt.Errorf("read parent of %s: %w", hash, err)
	}
	patch, err := parent.Patch(c)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", hash, err)
	}
	b.WriteString("\n")
	b.WriteString(patch.String())
	return b.String(), nil
}

// readFiles returns every regular file of fsys, by slash path.
func readFiles(fsys fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		out[p] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read repository files: %w", err)
	}
	return out, nil
}
