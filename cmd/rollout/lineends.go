package main

import (
	"bytes"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// committedLineEnds is tree, the files on disk under root, except that a file whose working copy
// differs from the commit checked out only by CRLF line ends reads as committed. Git writes CRLF into
// the working tree on Windows (core.autocrlf, the Git for Windows default, or eol=crlf in
// .gitattributes) and commits LF. The reconciler fingerprints a canary's prompt from the committed
// bytes; read with their CRs, every running rollout's prompt looks changed, and validate and a pull
// request's plan announce a restart at stage 0 that never comes. Outside a checkout, or when HEAD
// cannot be read (a repository without commits), tree is returned as it is.
func committedLineEnds(root string, tree fs.FS) fs.FS {
	repo, err := git.PlainOpenWithOptions(root, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return tree
	}
	wt, err := repo.Worktree()
	if err != nil {
		return tree
	}
	ref, err := repo.Head()
	if err != nil {
		return tree
	}
	commit, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return tree
	}
	head, err := commit.Tree()
	if err != nil {
		return tree
	}
	top, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return tree
	}
	abs, err := filepath.Abs(root)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return tree
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return tree
	}
	return lineEndsFS{FS: tree, head: head, prefix: filepath.ToSlash(rel)}
}

// lineEndsFS is committedLineEnds' file system.
type lineEndsFS struct {
	fs.FS
	head *object.Tree
	// prefix is the file system's root in the repository, slash-separated ("." at its top).
	prefix string
}

// ReadFile implements fs.ReadFileFS.
func (f lineEndsFS) ReadFile(name string) ([]byte, error) {
	b, err := fs.ReadFile(f.FS, name)
	if err != nil || !bytes.Contains(b, []byte("\r\n")) {
		return b, err
	}
	committed, err := f.head.File(path.Join(f.prefix, name))
	if err != nil {
		return b, nil // not in the commit: a new file is read as it is
	}
	content, err := committed.Contents()
	if lf := bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")); err == nil && content == string(lf) {
		return lf, nil
	}
	return b, nil
}
