// Package hostfile opens the host's files the way rollout reads its inputs (metrics files, specs,
// prompt files, gate evals files): without ever blocking in open(2), and only when they are regular
// files or folders.
//
// A named pipe (FIFO) opened for reading blocks in open(2) until a writer appears, where no deadline or
// context reaches it; a character device or a socket may never end. Everything here opens with
// O_NONBLOCK, checks the mode of what it opened with fstat, and refuses anything that is not a regular
// file (or, for a file system, a folder) with an error wrapping ErrNotRegular that names the path and
// its kind.
package hostfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotRegular is wrapped by the error of a path that is a named pipe, a device, a socket or anything
// else than a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens the regular file name for reading. It never blocks: a named pipe without a writer, a
// device or a socket is refused with an *fs.PathError wrapping ErrNotRegular.
func Open(name string) (*os.File, error) {
	return open(name, false)
}

// OpenEntry is Open that also opens a folder, for a file system that walks folders.
func OpenEntry(name string) (*os.File, error) {
	return open(name, true)
}

// ReadFile reads the regular file name, as os.ReadFile does, refusing what Open refuses.
func ReadFile(name string) ([]byte, error) {
	f, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// open opens name read-only and non-blocking, then keeps it only if fstat says it is a regular file (or
// a folder, when dirOK).
func open(name string, dirOK bool) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	mode := info.Mode()
	if mode.IsRegular() || (dirOK && mode.IsDir()) {
		return f, nil
	}
	f.Close()
	return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (%s); rollout reads only regular files", ErrNotRegular, kind(mode))}
}

// kind names a file mode's type for a person.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a folder"
	default:
		return "type " + m.Type().String()
	}
}

// DirFS is os.DirFS(root) whose Open and ReadFile refuse what Open refuses (folders open, for ReadDir
// and WalkDir). Symbolic links are followed as os.DirFS follows them.
func DirFS(root string) fs.FS {
	return dirFS{root: root, dir: os.DirFS(root)}
}

type dirFS struct {
	root string
	dir  fs.FS
}

var (
	_ fs.ReadFileFS = dirFS{}
	_ fs.ReadDirFS  = dirFS{}
	_ fs.StatFS     = dirFS{}
)

// Open implements fs.FS.
func (d dirFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := OpenEntry(filepath.Join(d.root, filepath.FromSlash(name)))
	if err != nil {
		return nil, relabel(err, name)
	}
	return f, nil
}

// ReadFile implements fs.ReadFileFS.
func (d dirFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	b, err := ReadFile(filepath.Join(d.root, filepath.FromSlash(name)))
	if err != nil {
		return nil, relabel(err, name)
	}
	return b, nil
}

// ReadDir implements fs.ReadDirFS.
func (d dirFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(d.dir, name) }

// Stat implements fs.StatFS.
func (d dirFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(d.dir, name) }

// relabel names the path of a *fs.PathError as the caller named it in the file system, as os.DirFS
// does.
func relabel(err error, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}
