//go:build unix

package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestReportOutToAPipe: --out naming something that is not a regular file (a named pipe here, as
// /dev/stdout or /dev/null are) is written in place. Renaming the page over it replaced the device
// with a regular file: run as root, --out /dev/null broke /dev/null for the whole machine.
func TestReportOutToAPipe(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{"rollouts/.keep": ""})
	fifo := filepath.Join(t.TempDir(), "page")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	// The reader opens first, without waiting for a writer; the small page fits in the pipe's buffer.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if code, _, stderr := runApp("report", "--repo", bare, "--no-cache", "--now", "2026-04-17T00:00:00Z", "--out", fifo); code != exitOK {
		t.Fatalf("report: exit %d\n%s", code, stderr)
	}
	if info, err := os.Lstat(fifo); err != nil || info.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v", describe(info, err))
	}
	page, _ := io.ReadAll(r)
	if !strings.Contains(string(page), "<p>No rollouts.</p>") {
		t.Errorf("the pipe carried %q, want the page", page)
	}
}

// describe says what a file is, or why it could not be looked at.
func describe(info os.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return info.Mode().String()
}
