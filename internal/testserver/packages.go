package testserver

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PackagesLockEnv names the environment variable through which .ci/test tells the tests that it is
// still installing the system packages: the path of a file whose exclusive lock (flock) the install
// holds until it ends, and into which it then writes its exit status. The tests start compiling while
// the packages download; only a test that needs one of them waits.
const PackagesLockEnv = "ROLLOUT_PACKAGES_LOCK"

var (
	packagesOnce sync.Once
	packagesErr  error
)

// WaitForPackages waits, once per test binary, until .ci/test's install of the system packages
// (Prometheus, PostgreSQL, ClickHouse, chdb, Chromium) has ended, and fails t if it failed. Without
// PackagesLockEnv, as under a plain go test, it returns at once. Every helper here that runs an
// installed program calls it first; so must a test that runs one of those programs itself.
func WaitForPackages(t testing.TB) {
	t.Helper()
	packagesOnce.Do(func() { packagesErr = waitForPackages(os.Getenv(PackagesLockEnv)) })
	if packagesErr != nil {
		t.Fatal(packagesErr)
	}
}

// waitForPackages blocks on a shared lock of the file at lock, which the install holds exclusively, and
// reads the status it left there.
func waitForPackages(lock string) error {
	if lock == "" {
		return nil
	}
	f, err := os.Open(lock)
	if err != nil {
		return fmt.Errorf("wait for the system packages: %w", err)
	}
	defer f.Close()
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		return fmt.Errorf("wait for the system packages: lock %s: %w", lock, err)
	}
	status, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("wait for the system packages: %w", err)
	}
	switch s := strings.TrimSpace(string(status)); s {
	case "0":
		return nil
	case "":
		return fmt.Errorf("the install of the system packages ended without a status after %s (was it killed?)", time.Since(start).Round(time.Second))
	default:
		return fmt.Errorf("installing the system packages failed (exit status %s); the test command prints its log", s)
	}
}
