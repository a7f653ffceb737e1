package demo

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
)

// threeCommits makes a bare repository whose main has three commits, and returns its in-process URL.
func threeCommits(t *testing.T) (url string, heads []plumbing.Hash) {
	t.Helper()
	t.Setenv("PATH", "") // no git binary: everything goes through go-git
	dir := t.TempDir()
	bare := filepath.Join(dir, "origin.git")
	url, err := RemoteURL(bare)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	if err := createRepository(bare, filepath.Join(dir, "repo"), url, map[string][]byte{"rollouts/a.yaml": []byte("a: 1\n")}, when); err != nil {
		t.Fatal(err)
	}
	remote, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: url, Branch: DefaultBranch})
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 3; i++ {
		snap, err := remote.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(heads) == 0 {
			heads = append(heads, plumbing.NewHash(snap.Head))
		}
		h, err := remote.Push(context.Background(), reconcile.PushRequest{Branch: DefaultBranch, Parent: snap.Head, Expect: snap.Head,
			Files: map[string][]byte{"rollouts/a.yaml": []byte(strings.Repeat("a: 1\n", i))}, Message: "change", When: when.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, plumbing.NewHash(h))
	}
	return url, heads
}

func TestShallowFetch(t *testing.T) {
	url, heads := threeCommits(t)
	for _, depth := range []int{1, 2, 0} {
		st := memory.NewStorage()
		r := git.NewRemote(st, &config.RemoteConfig{Name: "origin", URLs: []string{url}})
		err := r.Fetch(&git.FetchOptions{Depth: depth, RefSpecs: []config.RefSpec{"+refs/heads/main:refs/remotes/origin/main"}})
		if err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		commits := 0
		iter, _ := st.IterEncodedObjects(plumbing.CommitObject)
		_ = iter.ForEach(func(plumbing.EncodedObject) error { commits++; return nil })
		shallow, _ := st.Shallow()
		want, wantShallow := 3, []plumbing.Hash(nil)
		if depth > 0 {
			want, wantShallow = depth, []plumbing.Hash{heads[len(heads)-depth]}
		}
		if commits != want || len(shallow) != len(wantShallow) || (len(shallow) == 1 && shallow[0] != wantShallow[0]) {
			t.Errorf("depth %d: %d commits, shallow %v; want %d, %v", depth, commits, shallow, want, wantShallow)
		}
		if _, err := object.GetCommit(st, heads[2]); err != nil {
			t.Errorf("depth %d: head not fetched: %v", depth, err)
		}
	}
}

// TestIncrementalFetchSendsOnlyNewCommits is what gitrepo relies on to tell the bot's commits on a
// branch: after a depth-1 fetch of main, a fetch of a branch gets only what main does not reach.
func TestIncrementalFetchSendsOnlyNewCommits(t *testing.T) {
	url, heads := threeCommits(t)
	st := memory.NewStorage()
	r := git.NewRemote(st, &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	if err := r.Fetch(&git.FetchOptions{Depth: 1, RefSpecs: []config.RefSpec{"+refs/heads/main:refs/remotes/origin/main"}}); err != nil {
		t.Fatal(err)
	}
	// Nothing new: already up to date.
	err := r.Fetch(&git.FetchOptions{RefSpecs: []config.RefSpec{"+refs/heads/main:refs/remotes/origin/main"}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Fatal(err)
	}
	if _, err := object.GetCommit(st, heads[0]); err == nil {
		t.Error("the first commit arrived although main's head was already there")
	}
}

func TestStalePushIsRefused(t *testing.T) {
	url, heads := threeCommits(t)
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := cl.NewReceivePackSession(ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	// Expect the first commit while main is at the third: someone pushed in between.
	req.Commands = []*packp.Command{{Name: plumbing.NewBranchReferenceName(DefaultBranch), Old: heads[0], New: heads[1]}}
	_, err = sess.ReceivePack(context.Background(), req)
	if !errors.Is(err, errStaleRef) {
		t.Fatalf("stale push: %v, want %v", err, errStaleRef)
	}
	remote, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: url, Branch: DefaultBranch})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := remote.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Head != heads[2].String() {
		t.Errorf("main moved to %s after a refused push; want %s", snap.Head, heads[2])
	}
}
