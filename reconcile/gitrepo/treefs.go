package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// treeFS is a read-only fs.FS over the tree of one commit. Every file has the commit's time as its
// modification time. Submodules are left out: their content is not in this repository.
//
// Folders are decoded once and indexed by name, so that reading every file of a large folder costs one
// decode of that folder, not one per file. It is safe for concurrent use.
type treeFS struct {
	store storer.EncodedObjectStorer
	root  *object.Tree
	when  time.Time
	// blobs, when set, has the blobs a partial fetch left out of store.
	blobs *blobCache

	mu   sync.Mutex
	dirs map[string]*dirIndex
}

// dirIndex is one decoded folder.
type dirIndex struct {
	tree   *object.Tree
	byName map[string]*object.TreeEntry
}

// dir returns the decoded folder at p ("." for the root).
func (f *treeFS) dir(p string) (*dirIndex, error) {
	f.mu.Lock()
	d, ok := f.dirs[p]
	f.mu.Unlock()
	if ok {
		return d, nil
	}
	tree := f.root
	if p != "." {
		e, err := f.lookup("open", p)
		if err != nil {
			return nil, err
		}
		if e.Mode != filemode.Dir {
			return nil, errors.New("not a directory")
		}
		if tree, err = object.GetTree(f.store, e.Hash); err != nil {
			return nil, err
		}
	}
	d = &dirIndex{tree: tree, byName: make(map[string]*object.TreeEntry, len(tree.Entries))}
	for i := range tree.Entries {
		d.byName[tree.Entries[i].Name] = &tree.Entries[i]
	}
	f.mu.Lock()
	f.dirs[p] = d
	f.mu.Unlock()
	return d, nil
}

var (
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
)

func newTreeFS(st storer.EncodedObjectStorer, root *object.Tree, when time.Time, blobs *blobCache) *treeFS {
	return &treeFS{store: st, root: root, when: when, blobs: blobs, dirs: map[string]*dirIndex{}}
}

// blob reads a blob from the store, or from the blobs a partial fetch left out.
func (f *treeFS) blob(h plumbing.Hash) (*object.Blob, error) {
	b, err := object.GetBlob(f.store, h)
	if !errors.Is(err, plumbing.ErrObjectNotFound) || f.blobs == nil {
		return b, err
	}
	obj, err := f.blobs.get(h)
	if err != nil {
		return nil, err
	}
	return object.DecodeBlob(obj)
}

// lookup finds the entry at name; "." is the root tree.
func (f *treeFS) lookup(op, name string) (*object.TreeEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: f.root.Hash}, nil
	}
	d, err := f.dir(path.Dir(name))
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	e, ok := d.byName[path.Base(name)]
	if !ok || e.Mode == filemode.Submodule {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

func (f *treeFS) info(e *object.TreeEntry) (*entryInfo, error) {
	info := &entryInfo{name: e.Name, mode: e.Mode, when: f.when}
	if e.Mode.IsFile() {
		blob, err := f.blob(e.Hash)
		if err != nil {
			return nil, err
		}
		info.size = blob.Size
	}
	return info, nil
}

// Stat implements fs.StatFS.
func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	info, err := f.info(e)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	info.name = path.Base(name)
	return info, nil
}

// ReadFile implements fs.ReadFileFS.
func (f *treeFS) ReadFile(name string) ([]byte, error) {
	e, err := f.lookup("read", name)
	if err != nil {
		return nil, err
	}
	if !e.Mode.IsFile() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	b, err := f.readBlob(e)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

func (f *treeFS) readBlob(e *object.TreeEntry) ([]byte, error) {
	blob, err := f.blob(e.Hash)
	if err != nil {
		return nil, err
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := make([]byte, 0, blob.Size)
	buf := bytes.NewBuffer(b)
	if _, err := io.Copy(buf, r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadDir implements fs.ReadDirFS: the entries of a folder sorted by name.
func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	entries, err := f.readDir(name, e)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries, nil
}

func (f *treeFS) readDir(name string, e *object.TreeEntry) ([]fs.DirEntry, error) {
	if e.Mode != filemode.Dir {
		return nil, errors.New("not a directory")
	}
	d, err := f.dir(name)
	if err != nil {
		return nil, err
	}
	tree := d.tree
	out := make([]fs.DirEntry, 0, len(tree.Entries))
	for i := range tree.Entries {
		te := &tree.Entries[i]
		if te.Mode == filemode.Submodule {
			continue
		}
		out = append(out, &lazyEntry{fs: f, entry: te})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Open implements fs.FS.
func (f *treeFS) Open(name string) (fs.File, error) {
	e, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	info, err := f.info(e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info.name = path.Base(name)
	if e.Mode == filemode.Dir {
		entries, err := f.readDir(name, e)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &treeDir{info: info, entries: entries}, nil
	}
	b, err := f.readBlob(e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &treeFile{info: info, Reader: bytes.NewReader(b)}, nil
}

// lazyEntry is an fs.DirEntry that reads its blob (for its size) only when Info is called, so that
// listing a folder fetches none of its files.
type lazyEntry struct {
	fs    *treeFS
	entry *object.TreeEntry
}

func (e *lazyEntry) Name() string      { return e.entry.Name }
func (e *lazyEntry) IsDir() bool       { return e.entry.Mode == filemode.Dir }
func (e *lazyEntry) Type() fs.FileMode { return (&entryInfo{mode: e.entry.Mode}).Mode().Type() }
func (e *lazyEntry) Info() (fs.FileInfo, error) {
	info, err := e.fs.info(e.entry)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: e.entry.Name, Err: err}
	}
	return info, nil
}
func (e *lazyEntry) String() string { return fs.FormatDirEntry(e) }

// entryInfo is the fs.FileInfo of a tree entry.
type entryInfo struct {
	name string
	mode filemode.FileMode
	size int64
	when time.Time
}

func (i *entryInfo) Name() string       { return i.name }
func (i *entryInfo) Size() int64        { return i.size }
func (i *entryInfo) ModTime() time.Time { return i.when }
func (i *entryInfo) IsDir() bool        { return i.mode == filemode.Dir }
func (i *entryInfo) Sys() any           { return nil }
func (i *entryInfo) Mode() fs.FileMode {
	switch i.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Executable:
		return 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o444
	default:
		return 0o444
	}
}

// treeFile is an open file of a treeFS.
type treeFile struct {
	info *entryInfo
	*bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Close() error               { return nil }

// treeDir is an open folder of a treeFS.
type treeDir struct {
	info    *entryInfo
	entries []fs.DirEntry
	offset  int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Close() error               { return nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: fmt.Errorf("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.offset:]
	if n <= 0 {
		d.offset = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.offset += n
	return rest[:n], nil
}
