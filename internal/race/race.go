// Package race tells a test whether the race detector is on. The whole suite runs under the detector
// (.ci/test), except the tests that call Skip: those run in .ci/test's second go test, without it.
// They are the tests of code on one goroutine that the detector makes five to twenty times slower
// (the statistical simulations at full size, whole demo stories, long end-to-end scenarios), where it
// finds nothing, the tests whose code under test runs in other processes, and the few that it makes
// meaningless.
package race

import "testing"

// Slow is the reason to give Skip for a test that runs on one goroutine and is several times slower
// under the detector.
const Slow = "on one goroutine, five to twenty times slower under the race detector"

// OutOfProcess is the reason to give Skip for a test whose code under test runs in other processes
// (the rollout binary, which is built without the detector, and the action's scripts): the detector
// would watch only the test's own fakes, and make their copying of large files several times slower.
const OutOfProcess = "drives the rollout binary and the action's scripts, which run without the race detector"

// Skip skips t under the race detector, saying why; .ci/test runs t without it.
func Skip(t testing.TB, why string) {
	t.Helper()
	if Enabled {
		t.Skip(why + ": runs without -race (.ci/test's second go test)")
	}
}
