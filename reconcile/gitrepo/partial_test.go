package gitrepo

import (
	"bytes"
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/internal/race"
)

// bigFile stands for a model or a data set kept beside the specs.
var bigFile = strings.Repeat("weights ", 1<<20) // 8 MiB

func partialSeed() map[string]string {
	files := map[string]string{"models/big.bin": bigFile}
	for k, v := range seedFiles {
		files[k] = v
	}
	return files
}

// blobsHeld lists the contents of the blobs a remote keeps in memory for its current snapshot.
func blobsHeld(r *Remote) map[plumbing.Hash]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[plumbing.Hash]int64{}
	for h, obj := range r.current.store.ObjectStorage.Blobs {
		out[h] = obj.Size()
	}
	if c := r.current.blobs; c != nil {
		c.mu.Lock()
		for h, obj := range c.blobs {
			out[h] = obj.Size()
		}
		c.mu.Unlock()
	}
	return out
}

func heldBytes(r *Remote) int64 {
	var n int64
	for _, size := range blobsHeld(r) {
		n += size
	}
	return n
}

// TestPartialSnapshotFetchesOnlyWhatIsRead serves a repository holding an 8 MiB file beside its specs
// over smart HTTP with partial clone allowed: a snapshot holds the specs folder's files and nothing else;
// a prompt is fetched when read, the big file only if read; a snapshot of an unchanged head costs one
// request; a new head fetches only what changed among the files read before.
func TestPartialSnapshotFetchesOnlyWhatIsRead(t *testing.T) {
	bare := gittest.NewBare(t, partialSeed())
	srv := gittest.NewServer(t, filepath.Dir(bare))
	r, err := Open(context.Background(), Options{URL: srv.URL + "/" + filepath.Base(bare), Branch: "main", Prefetch: []string{"rollouts"}})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	specs := int64(len(seedFiles["rollouts/summarizer.yaml"]) + len(seedFiles["rollouts/chat.yaml"]))
	if held := heldBytes(r); held != specs {
		t.Fatalf("the snapshot holds %d bytes of files, want the %d of the specs folder", held, specs)
	}
	before := srv.Requests()
	if _, err := fs.ReadFile(snap.Files, "rollouts/chat.yaml"); err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(snap.Files, ".")
	if err != nil || len(entries) == 0 {
		t.Fatalf("read root: %v", err)
	}
	if n := srv.Requests() - before; n != 0 {
		t.Errorf("reading a spec and listing the root cost %d requests, want none", n)
	}
	prompt, err := fs.ReadFile(snap.Files, "prompts/v3/summarize.md")
	if err != nil || string(prompt) != seedFiles["prompts/v3/summarize.md"] {
		t.Fatalf("prompt: %q %v", prompt, err)
	}
	if n := srv.Requests() - before; n != 2 { // the advertisement and one pack
		t.Errorf("reading a prompt cost %d requests, want 2", n)
	}
	if held := heldBytes(r); held >= int64(len(bigFile)) {
		t.Fatalf("the big file was fetched: %d bytes held", held)
	}
	if err := fstestFS(snap.Files); err != nil {
		t.Fatal(err)
	}

	// The same head again: only the advertisement.
	before = srv.Requests()
	if _, err := r.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests() - before; n != 1 {
		t.Errorf("a snapshot of an unchanged head cost %d requests, want 1", n)
	}

	// A human changes one spec: the new snapshot fetches the trees and that spec; the prompt read
	// under the previous head is not fetched again.
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"rollouts/chat.yaml": strings.Replace(seedFiles["rollouts/chat.yaml"], "weight: 0", "weight: 11", 1)})
	human.Commit("chat to 11%")
	human.Push()
	snap2, err := r.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before = srv.Requests()
	if b, err := fs.ReadFile(snap2.Files, "rollouts/chat.yaml"); err != nil || !strings.Contains(string(b), "weight: 11") {
		t.Fatalf("chat.yaml: %q %v", b, err)
	}
	if _, err := fs.ReadFile(snap2.Files, "prompts/v3/summarize.md"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests() - before; n != 0 {
		t.Errorf("reading files read under the previous head cost %d requests, want none", n)
	}

	// The big file, when asked for, is there.
	big, err := fs.ReadFile(snap2.Files, "models/big.bin")
	if err != nil || !bytes.Equal(big, []byte(bigFile)) {
		t.Fatalf("big file: %d bytes, %v", len(big), err)
	}
}

// fstestFS checks the snapshot's fs.FS against the standard contract, file contents included.
func fstestFS(fsys fs.FS) error {
	return fstestCheck(fsys, "README.md", "rollouts/summarizer.yaml", "prompts/v3/summarize.md")
}

// TestSnapshotWithoutPartialClone reads the same repository from a server that refuses filters, and
// from one that takes filters but will not send a blob by its hash: every file reads right.
func TestSnapshotWithoutPartialClone(t *testing.T) {
	race.Skip(t, race.Slow)
	for name, config := range map[string][]string{
		"no-filter":     {"uploadpack.allowFilter=false"},
		"no-blob-wants": {"uploadpack.allowAnySHA1InWant=false"},
	} {
		t.Run(name, func(t *testing.T) {
			bare := gittest.NewBare(t, partialSeed())
			srv := gittest.NewServer(t, filepath.Dir(bare), config...)
			r, err := Open(context.Background(), Options{URL: srv.URL + "/" + filepath.Base(bare), Branch: "main", Prefetch: []string{"rollouts"}})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				snap, err := r.Snapshot(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for path, want := range partialSeed() {
					got, err := fs.ReadFile(snap.Files, path)
					if err != nil || string(got) != want {
						t.Fatalf("%s: %d bytes, %v", path, len(got), err)
					}
				}
				if err := fstestFS(snap.Files); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func fstestCheck(fsys fs.FS, expected ...string) error { return fstest.TestFS(fsys, expected...) }

// TestPrefetchFetchesManyFilesInOneRequest: the loop asks for every file its specs name at once; they
// come in one exchange, and reading them then costs nothing. A folder stands for its files.
func TestPrefetchFetchesManyFilesInOneRequest(t *testing.T) {
	files := partialSeed()
	files["prompts/v4.md"] = "prompt four\n"
	files["evals/summarizer.json"] = `{"cases": []}`
	bare := gittest.NewBare(t, files)
	srv := gittest.NewServer(t, filepath.Dir(bare))
	r, err := Open(context.Background(), Options{URL: srv.URL + "/" + filepath.Base(bare), Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pf, ok := snap.Files.(interface{ Prefetch([]string) error })
	if !ok {
		t.Fatal("a partial snapshot cannot prefetch")
	}
	before := srv.Requests()
	if err := pf.Prefetch([]string{"rollouts", "prompts/v4.md", "evals/summarizer.json", "v3", "../x", ""}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests() - before; n != 2 {
		t.Errorf("prefetch cost %d requests, want the advertisement and one pack", n)
	}
	before = srv.Requests()
	for _, p := range []string{"rollouts/chat.yaml", "rollouts/summarizer.yaml", "prompts/v4.md", "evals/summarizer.json"} {
		if b, err := fs.ReadFile(snap.Files, p); err != nil || string(b) != files[p] {
			t.Fatalf("%s: %q %v", p, b, err)
		}
	}
	if n := srv.Requests() - before; n != 0 {
		t.Errorf("reading prefetched files cost %d requests", n)
	}
	if held := heldBytes(r); held >= int64(len(bigFile)) {
		t.Errorf("the big file was fetched: %d bytes held", held)
	}
}
