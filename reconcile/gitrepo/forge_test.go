package gitrepo

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/reconcile"
)

func TestLocalForgeLifecycle(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	r := openRemote(t, bare)
	var out bytes.Buffer
	forge := &LocalForge{Remote: r, Out: &out}
	ctx := context.Background()

	props, err := forge.Proposals(ctx)
	if err != nil || len(props) != 0 {
		t.Fatalf("Proposals on a fresh remote = %v, %v", props, err)
	}
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, When: when,
		Message: "rollout(chat): 0% → 5%\n\n| rule | verdict |\n\nRollout: chat\nRollout-Decision: advance\n",
		Files:   map[string][]byte{"rollouts/chat.yaml": []byte("name: chat\ntraffic:\n  weight: 5\n")}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := forge.Propose(ctx, reconcile.ProposalRequest{Rollout: "chat", Branch: "rollout/chat", Base: "main", Title: "rollout(chat): 0% → 5%", Body: "| rule | verdict |"})
	if err != nil || p.Head != head || p.State != reconcile.ProposalOpen {
		t.Fatalf("Propose = %+v, %v", p, err)
	}
	printed := out.String()
	props, err = forge.Proposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := props["chat"]
	if got.State != reconcile.ProposalOpen || got.Head != head || got.Title != "rollout(chat): 0% → 5%" || !strings.Contains(got.Body, "Rollout-Decision: advance") {
		t.Fatalf("open proposal = %+v", got)
	}

	// A human merges it with a merge commit; the proposal reads as merged.
	human := gittest.Clone(t, bare)
	human.Git("merge", "--quiet", "--no-ff", "-m", "Merge rollout/chat", "origin/rollout/chat")
	human.Push()
	props, err = forge.Proposals(ctx)
	if err != nil || props["chat"].State != reconcile.ProposalMerged {
		t.Fatalf("after merge: %+v, %v", props["chat"], err)
	}

	// Close deletes the bot's branch.
	out.Reset()
	if err := forge.Close(ctx, props["chat"], "Rolled back: error_rate."); err != nil {
		t.Fatal(err)
	}
	if _, err := gittest.RunGit(bare, "rev-parse", "--verify", "refs/heads/rollout/chat"); err == nil {
		t.Fatal("rollout/chat still exists after Close")
	}
	printed += out.String()
	checkGolden(t, "local-forge.golden", strings.ReplaceAll(printed, bare, "REMOTE"))
}

func TestLocalForgeMergedBySquashAndKeepsHumanBranches(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	r := openRemote(t, bare)
	forge := &LocalForge{Remote: r}
	ctx := context.Background()
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	content := "name: summarizer\ntraffic:\n  weight: 25\n"
	if _, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/summarizer", Parent: snap.Head, When: when, Message: "rollout(summarizer): 5% → 25%",
		Files: map[string][]byte{"rollouts/summarizer.yaml": []byte(content)}}); err != nil {
		t.Fatal(err)
	}
	// Squash-merged by hand: same content, different commit.
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"rollouts/summarizer.yaml": content})
	human.Commit("squash")
	human.Push()
	props, err := forge.Proposals(ctx)
	if err != nil || props["summarizer"].State != reconcile.ProposalMerged {
		t.Fatalf("after squash: %+v, %v", props["summarizer"], err)
	}
	// A human commit on the branch: Close leaves it.
	human.Git("checkout", "--quiet", "rollout/summarizer")
	human.Write(map[string]string{"notes.md": "mine\n"})
	humanHead := human.Commit("human note")
	human.Push("rollout/summarizer")
	props, err = forge.Proposals(ctx)
	if err != nil || props["summarizer"].State != reconcile.ProposalOpen {
		t.Fatalf("with a human commit: %+v, %v", props["summarizer"], err)
	}
	if err := forge.Close(ctx, props["summarizer"], "bye"); err != nil {
		t.Fatal(err)
	}
	if got := gittest.Head(t, bare, "rollout/summarizer"); got != humanHead {
		t.Fatalf("rollout/summarizer = %s, want the human's %s", got, humanHead)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/name, or rewrites the file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestProposalsCostTheSameRoundTripsForAnyNumberOfBranches counts the HTTP requests the local forge
// makes: one list with one history query and one fetch, whether there is one rollout branch or twenty.
func TestProposalsCostTheSameRoundTripsForAnyNumberOfBranches(t *testing.T) {
	_, url, srv := serve(t)
	ctx := context.Background()
	r := openRemote(t, url)
	forge := &LocalForge{Remote: r}
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var perCall []int
	for i := range 20 {
		name := "r" + string(rune('a'+i))
		if _, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/" + name, Parent: snap.Head, When: when, Message: "rollout(" + name + "): 0% → 5%",
			Files: map[string][]byte{"rollouts/" + name + ".yaml": []byte("w: 5\n")}}); err != nil {
			t.Fatal(err)
		}
		before := srv.Requests()
		props, err := forge.Proposals(ctx)
		if err != nil || len(props) != i+1 {
			t.Fatalf("Proposals = %d, %v; want %d", len(props), err, i+1)
		}
		perCall = append(perCall, srv.Requests()-before)
	}
	t.Logf("requests per Proposals call: %d", perCall[0])
	for _, n := range perCall {
		if n != perCall[0] {
			t.Fatalf("requests per Proposals call = %v, want a constant", perCall)
		}
	}
}

// TestLocalForgeMergedStaysMergedWhenTheDefaultBranchMovesOn merges a proposal, then moves the default
// branch many commits on, the last one changing the spec file again (a rollback): the proposal reads
// as merged whatever the depth, and a proposal never merged still reads as open.
func TestLocalForgeMergedStaysMergedWhenTheDefaultBranchMovesOn(t *testing.T) {
	tests := []struct {
		name  string
		merge []string
	}{
		{"fast-forward", []string{"merge", "--quiet", "--ff-only", "origin/rollout/chat"}},
		{"merge commit", []string{"merge", "--quiet", "--no-ff", "-m", "Merge rollout/chat", "origin/rollout/chat"}},
	}
	for _, tt := range tests {
		for _, overHTTP := range []bool{false, true} {
			name := tt.name + "/path"
			if overHTTP {
				name = tt.name + "/http"
			}
			t.Run(name, func(t *testing.T) {
				testMergedStaysMerged(t, tt.merge, overHTTP)
			})
		}
	}
}

func testMergedStaysMerged(t *testing.T, merge []string, overHTTP bool) {
	var bare, url string
	if overHTTP {
		bare, url, _ = serve(t)
	} else {
		bare = gittest.NewBare(t, seedFiles)
		url = bare
	}
	r := openRemote(t, url)
	forge := &LocalForge{Remote: r}
	ctx := context.Background()
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, When: when, Message: "rollout(chat): 0% → 5%\n\nevidence\n",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("name: chat\ntraffic:\n  weight: 5\n")}})
	if err != nil {
		t.Fatal(err)
	}
	summarizer, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/summarizer", Parent: snap.Head, When: when, Message: "rollout(summarizer): 5% → 25%",
		Files: map[string][]byte{"rollouts/summarizer.yaml": []byte("name: summarizer\ntraffic:\n  weight: 25\n")}})
	if err != nil {
		t.Fatal(err)
	}
	human := gittest.Clone(t, bare)
	human.Git(merge...)
	for i := range 5 {
		human.Write(map[string]string{"README.md": fmt.Sprintf("edit %d\n", i)})
		human.Commit(fmt.Sprintf("docs %d", i))
	}
	human.Write(map[string]string{"rollouts/chat.yaml": "name: chat\ntraffic:\n  weight: 0\n"})
	human.Commit("rollout(chat): rollback 5% → 0%")
	human.Write(map[string]string{"README.md": "after the rollback\n"})
	human.Commit("docs")
	human.Push("main")

	props, err := forge.Proposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := props["chat"]; got.State != reconcile.ProposalMerged || got.Head != chat || got.Title != "rollout(chat): 0% → 5%" {
		t.Errorf("merged proposal = %+v, want merged at %s", got, chat)
	}
	if got := props["summarizer"]; got.State != reconcile.ProposalOpen || got.Head != summarizer {
		t.Errorf("unmerged proposal = %+v, want open at %s", got, summarizer)
	}
}

// A proposal's address is printed (the text output, -o json, the Action's decisions): it names the
// remote as it may be shown, never with the password a scheme-less or an https remote carries.
func TestLocalForgeURLHoldsNoPassword(t *testing.T) {
	for _, raw := range []string{"x-access-token:s3cret-tok@git.example.com:org/models.git", "https://bot:s3cret-tok@git.example.com/org/models.git"} {
		f := &LocalForge{Remote: &Remote{url: raw, shown: redact.Remote(raw)}}
		if got := f.url("rollout/summarizer"); strings.Contains(got, "s3cret") || !strings.HasSuffix(got, "#rollout/summarizer") {
			t.Errorf("%s: proposal URL %q", raw, got)
		}
	}
}
