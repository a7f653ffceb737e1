package growthbook_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testserver"
)

// The npm packages the tests run: the real GrowthBook TypeScript SDK, and the TypeScript compiler for
// the docs' snippet (with Node's types). Pinned, so that a new SDK release cannot change a test's result unnoticed.
var npmPackages = []string{"@growthbook/growthbook@1.8.0", "typescript@5.9.3", "@types/node@20.19.43"}

var (
	npmOnce    sync.Once
	npmDir     string
	npmErr     error
	npmElapsed time.Duration
)

// TestMain removes the one npm folder the tests of this package share.
func TestMain(m *testing.M) {
	code := m.Run()
	if npmDir != "" {
		os.RemoveAll(npmDir)
	}
	os.Exit(code)
}

// errNoNpm marks an npm that is not installed or cannot reach its registry.
var errNoNpm = errors.New("npm unavailable")

// nodeModules installs npmPackages once into a temp folder of its own (npm's own cache under ~/.npm
// makes a second run fast) and returns it. Without node or npm, or without the registry, the test is
// skipped, unless ROLLOUT_INTEGRATION=1, where it fails.
func nodeModules(t *testing.T) string {
	t.Helper()
	testserver.WaitForPackages(t) // node and npm come with .ci/test's system packages
	npmOnce.Do(func() {
		for _, bin := range []string{"node", "npm"} {
			if _, err := exec.LookPath(bin); err != nil {
				npmErr = fmt.Errorf("%w: %s is not installed", errNoNpm, bin)
				return
			}
		}
		npmDir, npmErr = os.MkdirTemp("", "rollout-growthbook-npm-")
		if npmErr != nil {
			return
		}
		if npmErr = os.WriteFile(filepath.Join(npmDir, "package.json"), []byte(`{"private": true}`+"\n"), 0o644); npmErr != nil {
			return
		}
		start := time.Now()
		cmd := exec.Command("npm", append([]string{"install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error"}, npmPackages...)...)
		cmd.Dir = npmDir
		out, err := cmd.CombinedOutput()
		npmElapsed = time.Since(start)
		if err != nil {
			npmErr = fmt.Errorf("%w: npm install %s: %v\n%s", errNoNpm, strings.Join(npmPackages, " "), err, out)
		}
	})
	if errors.Is(npmErr, errNoNpm) {
		if os.Getenv("ROLLOUT_INTEGRATION") == "1" {
			t.Fatalf("%v (ROLLOUT_INTEGRATION=1: node and the npm registry are required)", npmErr)
		}
		t.Skipf("skipping: the real GrowthBook SDK cannot be installed: %v", npmErr)
	}
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	t.Logf("npm install %s: %v", strings.Join(npmPackages, " "), npmElapsed.Round(time.Millisecond))
	return npmDir
}

// node runs script (a file in dir) with node and returns its standard output.
func node(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("node", args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
