//go:build unix

package hostfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/rollout-dev/rollout/internal/hostfile"
)

// A named pipe without a writer would block open(2) forever: every entry point refuses it at once
// (the test would hang, not fail, before the fix), and names the path and its kind.
func TestRefusesNamedPipe(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "metrics.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	link := filepath.Join(dir, "link.jsonl")
	if err := os.Symlink("metrics.jsonl", link); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() error{
		"Open":            func() error { return closed(hostfile.Open(fifo)) },
		"ReadFile":        func() error { _, err := hostfile.ReadFile(fifo); return err },
		"Open(symlink)":   func() error { return closed(hostfile.Open(link)) },
		"DirFS.Open":      func() error { return closed(hostfile.DirFS(dir).Open("metrics.jsonl")) },
		"DirFS.ReadFile":  func() error { _, err := fs.ReadFile(hostfile.DirFS(dir), "metrics.jsonl"); return err },
		"DirFS(symlink)":  func() error { _, err := fs.ReadFile(hostfile.DirFS(dir), "link.jsonl"); return err },
		"Open(/dev/null)": func() error { return closed(hostfile.Open(os.DevNull)) },
	} {
		t.Run(name, func(t *testing.T) {
			err := open()
			if !errors.Is(err, hostfile.ErrNotRegular) {
				t.Fatalf("err = %v, want ErrNotRegular", err)
			}
			if !strings.Contains(err.Error(), "a named pipe") && !strings.Contains(err.Error(), "device") {
				t.Errorf("err = %v, want the kind named", err)
			}
		})
	}
}

// closed closes what an open returned, if anything, and returns its error.
func closed[F fs.File](f F, err error) error {
	if err == nil {
		f.Close()
	}
	return err
}

// Regular files and folders read as through os.DirFS.
func TestReadsRegularFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rollouts", "prompts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rollouts", "a.yaml"), []byte("name: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rollouts", "prompts", "p.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(hostfile.DirFS(dir), "rollouts/a.yaml", "rollouts/prompts/p.txt"); err != nil {
		t.Fatal(err)
	}
	b, err := hostfile.ReadFile(filepath.Join(dir, "rollouts", "a.yaml"))
	if err != nil || string(b) != "name: a\n" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if _, err := hostfile.Open(filepath.Join(dir, "rollouts")); !errors.Is(err, hostfile.ErrNotRegular) {
		t.Errorf("Open(folder) = %v, want ErrNotRegular", err)
	}
	if _, err := hostfile.Open(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
}
