package gitrepo

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// treeEditor writes new trees and blobs into dst, reading the trees they are based on from src.
// Only the objects it creates land in dst, which is what a push must send.
type treeEditor struct {
	src storer.EncodedObjectStorer
	dst storer.EncodedObjectStorer
}

// apply returns the hash of base (a tree hash, or the zero hash for an empty tree) with changes made:
// each path gets its new content, or is removed when the content is nil. Folders left empty vanish.
func (e *treeEditor) apply(base plumbing.Hash, changes map[string][]byte) (plumbing.Hash, error) {
	for p := range changes {
		if p == "" || !validRepoPath(p) {
			return plumbing.ZeroHash, fmt.Errorf("invalid path %q in commit", p)
		}
	}
	h, _, err := e.applyTree(base, changes)
	return h, err
}

func validRepoPath(p string) bool {
	if strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "." || part == ".." || part == ".git" || part == "" {
			return false
		}
	}
	return true
}

// applyTree edits one tree level. It reports empty when the resulting tree has no entries.
func (e *treeEditor) applyTree(base plumbing.Hash, changes map[string][]byte) (h plumbing.Hash, empty bool, err error) {
	entries := map[string]object.TreeEntry{}
	if !base.IsZero() {
		t, err := object.GetTree(e.src, base)
		if err != nil {
			return plumbing.ZeroHash, false, fmt.Errorf("read tree %s: %w", base, err)
		}
		for _, te := range t.Entries {
			entries[te.Name] = te
		}
	}
	// Group the changes by their first path element.
	files := map[string][]byte{}
	deleted := map[string]bool{}
	sub := map[string]map[string][]byte{}
	for p, content := range changes {
		first, rest, nested := strings.Cut(p, "/")
		if !nested {
			if content == nil {
				deleted[first] = true
			} else {
				files[first] = content
			}
			continue
		}
		if sub[first] == nil {
			sub[first] = map[string][]byte{}
		}
		sub[first][rest] = content
	}
	for name := range deleted {
		if _, ok := files[name]; !ok {
			delete(entries, name)
		}
	}
	for name, content := range files {
		if _, clash := sub[name]; clash {
			return plumbing.ZeroHash, false, fmt.Errorf("path %q is both a file and a folder in one commit", name)
		}
		bh, err := e.writeBlob(content)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		mode := filemode.Regular
		if old, ok := entries[name]; ok && old.Mode == filemode.Executable {
			mode = filemode.Executable
		}
		entries[name] = object.TreeEntry{Name: name, Mode: mode, Hash: bh}
	}
	for name, subChanges := range sub {
		var subBase plumbing.Hash
		if old, ok := entries[name]; ok {
			if old.Mode == filemode.Dir {
				subBase = old.Hash
			} else if !allDeletes(subChanges) {
				return plumbing.ZeroHash, false, fmt.Errorf("path %q is a file, not a folder", name)
			} else {
				continue
			}
		}
		sh, subEmpty, err := e.applyTree(subBase, subChanges)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		if subEmpty {
			delete(entries, name)
			continue
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: sh}
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, true, nil
	}
	tree := &object.Tree{Entries: make([]object.TreeEntry, 0, len(entries))}
	for _, te := range entries {
		tree.Entries = append(tree.Entries, te)
	}
	sort.Slice(tree.Entries, func(i, j int) bool {
		return gitTreeName(tree.Entries[i]) < gitTreeName(tree.Entries[j])
	})
	obj := e.dst.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("encode tree: %w", err)
	}
	h, err = e.dst.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("store tree: %w", err)
	}
	return h, false, nil
}

func allDeletes(changes map[string][]byte) bool {
	for _, c := range changes {
		if c != nil {
			return false
		}
	}
	return true
}

// gitTreeName is the key git sorts tree entries by: folders compare as if their name ended in "/".
func gitTreeName(te object.TreeEntry) string {
	if te.Mode == filemode.Dir {
		return te.Name + "/"
	}
	return te.Name
}

func (e *treeEditor) writeBlob(content []byte) (plumbing.Hash, error) {
	obj := e.dst.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	if _, err := bytes.NewReader(content).WriteTo(w); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	h, err := e.dst.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	return h, nil
}
