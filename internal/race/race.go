// Package race tells a test whether the race detector is on. The whole suite runs under the detector
// (.ci/test), except the tests that call Skip: those run in .ci/test's second go test, without it.
// They are the tests of code on one goroutine that the detector makes five to twenty times slower
// (the statistical simulations at full size, whole demo stories, long end-to-end scenarios), where it
// finds nothing, and the few that it makes meaningless.
package race

import "testing"

// Slow is the reason to give Skip for a test that runs on one goroutine and is several times slower
// under the detector.
const Slow = "on one goroutine, five to twenty times slower under the race detector"

// Skip skips t under the race detector, saying why; .ci/test runs t without it.
func Skip(t testing.TB, why string) {
	t.Helper()
	if Enabled {
		t.Skip(why + ": runs without -race (.ci/test's second go test)")
	}
}
