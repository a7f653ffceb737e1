package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/rollouts"
)

// The peak-memory benchmark runs the polls in a child process (this test binary again, told so by
// these variables), so that its peak resident set holds the polls and nothing of the benchmark.
const (
	rssURLVar   = "ROLLOUT_RSS_URL"
	rssBareVar  = "ROLLOUT_RSS_BARE"
	rssPollsVar = "ROLLOUT_RSS_POLLS"
)

// bigRepo makes a bare repository holding blobs random files of blobMiB MiB each (models, datasets:
// what a team keeps beside its rollout specs) and five rollout specs naming small prompt files.
func bigRepo(b *testing.B, blobs, blobMiB int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "big.git")
	gittest.Git(b, ".", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	// Random bytes do not compress: store them as they are, which builds the repository in seconds.
	cmd := exec.Command("git", "-c", "core.compression=0", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Env = gittest.Env()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	fmt.Fprintf(w, "commit refs/heads/main\ncommitter Ada <ada@example.com> 1700000000 +0000\ndata 4\nbig\n")
	rng := rand.NewChaCha8([32]byte{7})
	blob := make([]byte, blobMiB<<20)
	for i := range blobs {
		rng.Read(blob) // incompressible, as model weights are
		fmt.Fprintf(w, "M 100644 inline models/blob%02d.bin\ndata %d\n", i, len(blob))
		w.Write(blob)
		w.WriteString("\n")
	}
	for i := range 5 {
		spec := strings.Replace(benchSpec(i, 0), "prompts/v3.md", fmt.Sprintf("prompts/p%d.md", i), 2)
		fmt.Fprintf(w, "M 100644 inline rollouts/r%04d.yaml\ndata %d\n%s\n", i, len(spec), spec)
		prompt := fmt.Sprintf("You are prompt %d.\n", i)
		fmt.Fprintf(w, "M 100644 inline prompts/p%d.md\ndata %d\n%s\n", i, len(prompt), prompt)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("fast-import: %v", err)
	}
	return dir
}

// BenchmarkPollPeakRSS is the daemon's git work on a repository of 30 blobs of 10 MB beside its specs:
// 10 polls, each after a commit that changes a spec, each reading every spec and the prompt files the
// specs name, against the real git smart-HTTP server. It reports the peak resident set of the process
// doing the polls with partial clone (the server allows filters); the target is 64 MiB over 10 polls.
// Run it with -benchtime 1x: each run is one child process.
func BenchmarkPollPeakRSS(b *testing.B) {
	bare := bigRepo(b, 30, 10)
	for _, server := range []struct {
		name   string
		config []string
		polls  int
	}{
		{"partial-clone", nil, 10},
		// A server without filters sends the whole 300 MB tree for every new head, as every poll fetched
		// before partial clone; on a shared machine that does not end within DefaultTimeout. Add
		// {"no-filter", []string{"uploadpack.allowFilter=false"}, 2} here to see it.
	} {
		b.Run(server.name, func(b *testing.B) {
			root := b.TempDir()
			gittest.Git(b, ".", "clone", "--quiet", "--bare", bare, filepath.Join(root, "big.git"))
			srv := gittest.NewServer(b, root, server.config...)
			var peak int
			for range b.N {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), rssURLVar+"="+srv.URL+"/big.git", rssBareVar+"="+filepath.Join(root, "big.git"),
					rssPollsVar+"="+strconv.Itoa(server.polls))
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("polls: %v\n%s", err, out)
				}
				kib, err := strconv.Atoi(strings.TrimSpace(string(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:])))
				if err != nil {
					b.Fatalf("polls printed %q", out)
				}
				peak = max(peak, kib)
			}
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
			if server.name == "partial-clone" && peak > 64<<10 {
				b.Errorf("peak RSS %.1f MiB over %d polls, target 64 MiB", float64(peak)/1024, server.polls)
			}
		})
	}
}

// runPollsForRSS is the child of BenchmarkPollPeakRSS: it polls, then prints its peak resident set in
// KiB. It reports whether it ran.
func runPollsForRSS() bool {
	url := os.Getenv(rssURLVar)
	if url == "" {
		return false
	}
	if err := pollsForRSS(url, os.Getenv(rssBareVar), os.Getenv(rssPollsVar)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Println(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return true
}

func pollsForRSS(url, bare, pollsText string) error {
	ctx := context.Background()
	polls, err := strconv.Atoi(pollsText)
	if err != nil {
		return err
	}
	r, err := Open(ctx, Options{URL: url, Branch: "main", Prefetch: []string{"rollouts"}})
	if err != nil {
		return err
	}
	for i := range polls {
		if i > 0 {
			if err := commitOutside(bare, i); err != nil {
				return err
			}
		}
		snap, err := r.Snapshot(ctx)
		if err != nil {
			return err
		}
		set, err := rollouts.Load(snap.Files, "rollouts")
		if err != nil {
			return err
		}
		if len(set.Documents) != 5 {
			return fmt.Errorf("poll %d: %d specs, problems %v", i, len(set.Documents), set.Problems)
		}
		for _, doc := range set.Documents {
			if _, err := fs.ReadFile(snap.Files, doc.Spec.Stable.Prompt); err != nil {
				return fmt.Errorf("poll %d: %w", i, err)
			}
		}
	}
	return nil
}

// commitOutside commits a change of one spec to main of the bare repository with git's plumbing, as a
// human's push would.
func commitOutside(bare string, i int) error {
	env := append(gittest.Env(), "GIT_INDEX_FILE="+filepath.Join(bare, "poll-index"))
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env, cmd.Stdin = bare, env, strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %v: %w", args, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	spec := strings.Replace(benchSpec(0, i), "prompts/v3.md", "prompts/p0.md", 2)
	if _, err := run("", "read-tree", "main"); err != nil {
		return err
	}
	blob, err := run(spec, "hash-object", "-w", "--stdin")
	if err != nil {
		return err
	}
	if _, err := run("", "update-index", "--add", "--cacheinfo", "100644,"+blob+",rollouts/r0000.yaml"); err != nil {
		return err
	}
	tree, err := run("", "write-tree")
	if err != nil {
		return err
	}
	commit, err := run("", "commit-tree", tree, "-p", "main", "-m", fmt.Sprintf("poll %d", i))
	if err != nil {
		return err
	}
	_, err = run("", "update-ref", "refs/heads/main", commit)
	return err
}
