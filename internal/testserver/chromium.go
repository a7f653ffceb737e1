package testserver

import (
	"os/exec"
	"testing"
)

// chromiumBin is Debian's Chromium (the package chromium), which .ci/test installs.
var chromiumBin = "/usr/bin/chromium"

// Chromium returns the path of Debian's Chromium for a test that opens a page in a real browser. Like
// the servers, a missing binary skips the test, or fails it when ROLLOUT_INTEGRATION=1.
func Chromium(t testing.TB) string {
	t.Helper()
	WaitForPackages(t)
	if _, err := exec.LookPath(chromiumBin); err != nil {
		missing(t, "chromium (Debian package chromium)")
	}
	return chromiumBin
}
