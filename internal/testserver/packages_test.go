package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWaitForPackagesReadsTheStatus(t *testing.T) {
	for _, tt := range []struct {
		name, status, want string
	}{
		{"no install running", "", ""},
		{"installed", "0\n", ""},
		{"failed", "100\n", "installing the system packages failed (exit status 100)"},
		{"killed", "", "ended without a status"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lock := ""
			if tt.name != "no install running" {
				lock = filepath.Join(t.TempDir(), "packages.lock")
				if err := os.WriteFile(lock, []byte(tt.status), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := waitForPackages(lock)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("waitForPackages = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestWaitForPackagesWaitsForTheInstall holds the install's exclusive lock, as .ci/test does, and checks
// that the wait blocks on it (the kernel lists the waiter in /proc/locks) and ends with the status
// written before the lock is released.
func TestWaitForPackagesWaitsForTheInstall(t *testing.T) {
	if _, err := os.Stat("/proc/locks"); err != nil {
		t.Skipf("no /proc/locks to see the waiter in: %v", err)
	}
	lock := filepath.Join(t.TempDir(), "packages.lock")
	install, err := os.Create(lock)
	if err != nil {
		t.Fatal(err)
	}
	defer install.Close()
	if err := syscall.Flock(int(install.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(install.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- waitForPackages(lock) }()

	// /proc/locks names a blocked waiter "-> FLOCK ... READ pid maj:min:inode".
	inode := fmt.Sprintf(":%d ", st.Ino)
	for deadline := time.Now().Add(30 * time.Second); ; {
		locks, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Fatal(err)
		}
		if waiting(string(locks), inode) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("waitForPackages returned %v while the install held the lock", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiter on the lock after 30 s:\n%s", locks)
		}
	}
	if _, err := install.WriteString("0\n"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(install.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("after the install: %v", err)
	}
}

// waiting reports whether a line of /proc/locks is a blocked request on the inode.
func waiting(locks, inode string) bool {
	for _, line := range strings.Split(locks, "\n") {
		if strings.Contains(line, "->") && strings.Contains(line, inode) {
			return true
		}
	}
	return false
}
