package gitrepo

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile"
)

var when = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)

var seedFiles = map[string]string{
	"README.md":                "hello\n",
	"rollouts/summarizer.yaml": "name: summarizer\ntraffic:\n  weight: 5\n",
	"rollouts/chat.yaml":       "name: chat\ntraffic:\n  weight: 0\n",
	"prompts/v3/summarize.md":  "Summarize.\n",
}

func openRemote(t *testing.T, url string) *Remote {
	t.Helper()
	r, err := Open(context.Background(), Options{URL: url})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r
}

func TestSnapshotReadsTheDefaultBranchAtDepthOne(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"rollouts/chat.yaml": "name: chat\ntraffic:\n  weight: 10\n"})
	human.Commit("bump chat")
	human.Push()

	for _, url := range []string{bare, "file://" + bare} {
		r := openRemote(t, url)
		if r.DefaultBranch() != "main" {
			t.Fatalf("default branch = %q", r.DefaultBranch())
		}
		snap, err := r.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := gittest.Head(t, bare, "main"); snap.Head != want || snap.Branch != "main" {
			t.Fatalf("snapshot head %s %s, want main %s", snap.Branch, snap.Head, want)
		}
		b, err := fs.ReadFile(snap.Files, "rollouts/chat.yaml")
		if err != nil || !strings.Contains(string(b), "weight: 10") {
			t.Fatalf("read chat.yaml: %q %v", b, err)
		}
		if err := fstest.TestFS(snap.Files, "README.md", "rollouts/summarizer.yaml", "rollouts/chat.yaml", "prompts/v3/summarize.md"); err != nil {
			t.Fatal(err)
		}
		// Depth 1: the parent commit was not fetched.
		r.mu.Lock()
		st := r.current.store
		r.mu.Unlock()
		shallow, _ := st.Shallow()
		if len(shallow) != 1 {
			t.Fatalf("shallow commits = %v, want the head only", shallow)
		}
	}
}

func TestPushAddsOneCommitByTheBot(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	r := openRemote(t, bare)
	snap, err := r.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	commit, err := r.Push(context.Background(), reconcile.PushRequest{
		Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when,
		Message: "rollout(summarizer): rollback 5% → 0%\n\nRollout: summarizer\nRollout-Decision: rollback\n",
		Files: map[string][]byte{
			"rollouts/summarizer.yaml": []byte("name: summarizer\ntraffic:\n  weight: 0\n"),
			"prompts/v3/summarize.md":  nil,
			"rollouts/new/deep.yaml":   []byte("x: 1\n"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := gittest.Head(t, bare, "main"); got != commit {
		t.Fatalf("remote main = %s, want %s", got, commit)
	}
	if got := gittest.Git(t, bare, "log", "-1", "--format=%an <%ae> %aI|%cn|%P", "main"); got != "rollout-bot <rollout-bot@users.noreply.github.com> 2026-04-16T10:00:00+00:00|rollout-bot|"+snap.Head {
		t.Fatalf("commit = %s", got)
	}
	if got := gittest.Git(t, bare, "show", "main:rollouts/summarizer.yaml"); !strings.Contains(got, "weight: 0") {
		t.Fatalf("summarizer.yaml = %q", got)
	}
	if got := gittest.Git(t, bare, "diff", "--name-status", snap.Head, "main"); got != "D\tprompts/v3/summarize.md\nA\trollouts/new/deep.yaml\nM\trollouts/summarizer.yaml" {
		t.Fatalf("diff = %q", got)
	}
	gittest.Git(t, bare, "fsck", "--strict")
}

func TestPushAfterAHumanCommitIsStaleAndKeepsTheHumanCommit(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	r := openRemote(t, bare)
	snap, err := r.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"README.md": "edited\n"})
	humanCommit := human.Commit("docs")
	human.Push()

	_, err = r.Push(context.Background(), reconcile.PushRequest{
		Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "bot",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("x")},
	})
	if !errors.Is(err, reconcile.ErrStale) {
		t.Fatalf("err = %v, want ErrStale", err)
	}
	if got := gittest.Head(t, bare, "main"); got != humanCommit {
		t.Fatalf("remote main = %s, want the human's %s", got, humanCommit)
	}
}

func TestForcePushRules(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	r := openRemote(t, bare)
	ctx := context.Background()
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, When: when, Message: "first",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 5\n")}})
	if err != nil {
		t.Fatal(err)
	}
	state, err := r.Branch(ctx, "rollout/chat", snap.Head)
	if err != nil || state.Head != first || !state.OnlyBot {
		t.Fatalf("Branch = %+v, %v; want head %s only bot", state, err, first)
	}
	// The branch must not exist yet when Expect is empty.
	if _, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, When: when, Message: "again",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 6\n")}}); !errors.Is(err, reconcile.ErrStale) {
		t.Fatalf("push over an existing branch: %v, want ErrStale", err)
	}
	// Replacing the bot's own commit needs Force.
	replace := reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, Expect: first, When: when.Add(time.Hour), Message: "second",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 25\n")}}
	if _, err := r.Push(ctx, replace); !errors.Is(err, ErrNotFastForward) {
		t.Fatalf("push without force: %v, want ErrNotFastForward", err)
	}
	replace.Force = true
	second, err := r.Push(ctx, replace)
	if err != nil {
		t.Fatal(err)
	}
	// A human commit on the bot branch: no force-push any more.
	human := gittest.Clone(t, bare)
	human.Git("checkout", "--quiet", "rollout/chat")
	human.Write(map[string]string{"rollouts/chat.yaml": "w: 30\n"})
	humanCommit := human.Commit("I know better")
	human.Push("rollout/chat")
	state, err = r.Branch(ctx, "rollout/chat", snap.Head)
	if err != nil || state.Head != humanCommit || state.OnlyBot {
		t.Fatalf("Branch = %+v, %v; want head %s not only bot", state, err, humanCommit)
	}
	replace.Expect = humanCommit
	if _, err := r.Push(ctx, replace); !errors.Is(err, ErrForeignCommits) {
		t.Fatalf("force-push over a human commit: %v, want ErrForeignCommits", err)
	}
	if got := gittest.Head(t, bare, "rollout/chat"); got != humanCommit {
		t.Fatalf("rollout/chat = %s, want the human's %s (second was %s)", got, humanCommit, second)
	}
	// The default branch is never force-pushed.
	other, err := r.Push(ctx, reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "ok",
		Files: map[string][]byte{"README.md": []byte("x\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: other, Force: true, When: when, Message: "rewrite",
		Files: map[string][]byte{"README.md": []byte("y\n")}}); !errors.Is(err, ErrForceDefault) {
		t.Fatalf("force-push of main: %v, want ErrForceDefault", err)
	}
}

// Two pushers that read main at the same head race to move it: the remote's ref lock lets exactly one
// through, and the other learns that main moved.
func TestTwoConcurrentPushersExactlyOneWins(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	srv := gittest.NewServer(t, strings.TrimSuffix(bare, "/remote.git"))
	url := srv.URL + "/remote.git"
	for round := range 5 {
		// Both read main before either pushes. A pusher that read it after the other's push had
		// landed would build on the new head and rightly win too: no race, and two winners.
		pushers := make([]*Remote, 2)
		heads := make([]string, 2)
		for i := range pushers {
			pushers[i] = openRemote(t, url)
			snap, err := pushers[i].Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			heads[i] = snap.Head
		}
		if heads[0] != heads[1] {
			t.Fatalf("round %d: the pushers read main at %s and %s, want one head", round, heads[0], heads[1])
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, r := range pushers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = r.Push(context.Background(), reconcile.PushRequest{
					Branch: "main", Parent: heads[i], Expect: heads[i], When: when, Message: "pusher",
					Files: map[string][]byte{"rollouts/chat.yaml": []byte{byte('a' + i), byte('0' + round)}},
				})
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, reconcile.ErrStale):
			default:
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d pushes won (%v), want exactly 1", round, wins, errs)
		}
	}
	if got := gittest.Git(t, bare, "rev-list", "--count", "main"); got != "6" {
		t.Fatalf("main has %s commits, want 6", got)
	}
}

// The reasons are the ones git's receive-pack puts in its report (builtin/receive-pack.c, 2.39 and
// since batched reference updates), with the details refs/files-backend.c gives for a ref lock.
func TestClassifyRejection(t *testing.T) {
	const main = plumbing.ReferenceName("refs/heads/main")
	type outcome string
	const (
		accepted outcome = "accepted"
		stale    outcome = "stale"
		rejected outcome = "rejected"
	)
	for _, tt := range []struct {
		name   string
		unpack string
		ref    plumbing.ReferenceName
		reason string
		want   outcome
	}{
		{"update landed", "ok", main, "ok", accepted},
		// git 2.39: the ref was not at the old value sent, or another push held its lock.
		{"lost the ref lock", "ok", main, "failed to update ref", stale},
		// git with batched reference updates.
		{"old value moved", "ok", main, "incorrect old value provided", stale},
		{"branch created meanwhile", "ok", "refs/heads/rollout/chat", "reference already exists", stale},
		{"branch deleted meanwhile", "ok", "refs/heads/rollout/chat", "reference does not exist", stale},
		{"batch failed on a held lock", "ok", main, "failed to update refs", stale},
		// The details of a ref lock, should a server report them.
		{"is at but expected", "ok", main, "cannot lock ref 'refs/heads/main': is at 3052040 but expected 3b18d42", stale},
		{"missing but expected", "ok", main, "cannot lock ref 'refs/heads/main': reference is missing but expected 3b18d42", stale},
		{"lock file exists", "ok", main, "Unable to create '/srv/remote.git/refs/heads/main.lock': File exists.", stale},
		{"non-fast-forward", "ok", main, "non-fast-forward", stale},
		// For a forced push, a refusal: TestClassifyRejectionOfAForcedPush.
		{"fetch first", "ok", main, "fetch first", stale},
		// Refusals that another attempt would meet again.
		{"checked-out branch", "ok", main, "branch is currently checked out", rejected},
		{"pre-receive hook", "ok", main, "pre-receive hook declined", rejected},
		{"update hook", "ok", main, "hook declined", rejected},
		{"hidden ref", "ok", "refs/pull/1/head", "deny updating a hidden ref", rejected},
		{"deletion prohibited", "ok", "refs/heads/rollout/chat", "deletion prohibited", rejected},
		{"funny refname", "ok", "refs/heads/x..y", "funny refname", rejected},
		{"missing objects", "ok", main, "missing necessary objects", rejected},
		{"bad pack", "ok", main, "bad pack", rejected},
		{"shallow", "ok", main, "shallow update not allowed", rejected},
		{"unpack failed", "unpack-objects abnormal exit", main, "unpacker error", rejected},
		{"pack cut short", "unexpected EOF", main, "unpacker error", rejected},
		// A ref whose name holds "lock" or "stale" says nothing of why it was refused.
		{"lock in the ref name", "ok", "refs/heads/rollout/clock", "hook declined", rejected},
		{"lock word in the ref name", "ok", "refs/heads/rollout/lock-screen", "pre-receive hook declined", rejected},
		{"stale in the ref name", "ok", "refs/heads/rollout/stale-cache", "deletion prohibited", rejected},
		// Whole words only: a server's own wording that holds "lock" inside another word.
		{"blocked is not a lock", "ok", main, "push blocked by policy", rejected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			report := &packp.ReportStatus{UnpackStatus: tt.unpack,
				CommandStatuses: []*packp.CommandStatus{{ReferenceName: tt.ref, Status: tt.reason}}}
			err := classifyRejection(report, false)
			var got outcome
			switch {
			case err == nil:
				got = accepted
			case errors.Is(err, reconcile.ErrStale) && !errors.Is(err, ErrRejected):
				got = stale
			case errors.Is(err, ErrRejected) && !errors.Is(err, reconcile.ErrStale):
				got = rejected
			default:
				t.Fatalf("classifyRejection = %v, neither accepted, stale nor rejected", err)
			}
			if got != tt.want {
				t.Fatalf("classifyRejection(%s %q, unpack %q) = %v (%s), want %s", tt.ref, tt.reason, tt.unpack, err, got, tt.want)
			}
			quoted := tt.reason
			if tt.unpack != "ok" {
				quoted = tt.unpack
			}
			if err != nil && !strings.Contains(err.Error(), quoted) {
				t.Errorf("error %q does not quote the remote's reason %q", err, quoted)
			}
		})
	}
}

func TestSnapshotFilesAreSafeForConcurrentReads(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	snap, err := openRemote(t, bare).Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name, want := range seedFiles {
				got, err := fs.ReadFile(snap.Files, name)
				if err != nil || string(got) != want {
					t.Errorf("ReadFile(%s) = %q, %v", name, got, err)
				}
			}
			if _, err := fs.ReadDir(snap.Files, "rollouts"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, bad := range []string{"/README.md", "../x", "rollouts/", "missing", "README.md/x"} {
		if _, err := snap.Files.Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestPushFromAnUnknownParentIsStale(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	r := openRemote(t, bare)
	_, err := r.Push(context.Background(), reconcile.PushRequest{Branch: "main", Parent: strings.Repeat("ab", 20), Expect: strings.Repeat("ab", 20), When: when, Message: "x"})
	if !errors.Is(err, reconcile.ErrStale) {
		t.Fatalf("push from an unknown parent: %v, want ErrStale", err)
	}
	_, err = r.Push(context.Background(), reconcile.PushRequest{Branch: "main", Parent: "nope", When: when, Message: "x"})
	if err == nil || errors.Is(err, reconcile.ErrStale) {
		t.Fatalf("push from a malformed parent: %v, want a plain error", err)
	}
}

func TestTwoForcePushersOnTheBotBranchExactlyOneWins(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	ctx := context.Background()
	r := openRemote(t, bare)
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, When: when, Message: "first",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 5\n")}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		pusher := openRemote(t, bare)
		s, err := pusher.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = pusher.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: s.Head, Expect: first, Force: true,
				When: when.Add(time.Duration(i+1) * time.Minute), Message: "replace",
				Files: map[string][]byte{"rollouts/chat.yaml": []byte{byte('a' + i)}}})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("errors = %v, want exactly one winner", errs)
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, reconcile.ErrStale) {
			t.Fatalf("loser's error = %v, want ErrStale", err)
		}
	}
}

func TestBranchOnAnOldBaseIsStillOnlyBot(t *testing.T) {
	bare, url, srv := serve(t)
	ctx := context.Background()
	r := openRemote(t, url)
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	botHead, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, When: when, Message: "bot",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 5\n")}})
	if err != nil {
		t.Fatal(err)
	}
	// The default branch moves on under the bot branch: a long history the check must not need.
	human := gittest.Clone(t, bare)
	for i := range 30 {
		human.Write(map[string]string{"README.md": strings.Repeat("x", i+1)})
		human.Commit("docs")
	}
	human.Push()
	newHead := gittest.Head(t, bare, "main")
	before := srv.Requests()
	state, err := r.Branch(ctx, "rollout/chat", newHead)
	if err != nil || state.Head != botHead || !state.OnlyBot {
		t.Fatalf("Branch = %+v, %v; want head %s, only bot", state, err, botHead)
	}
	if n := srv.Requests() - before; n > 5 {
		t.Fatalf("Branch made %d requests", n)
	}
	// The remote sent only what the default branch does not reach: main's head and the bot commit,
	// not the 30 commits in between.
	st := memory.NewStorage()
	if ok, err := r.onlyBot(ctx, st, "rollout/chat", plumbing.NewHash(botHead), plumbing.NewHash(newHead)); err != nil || !ok {
		t.Fatalf("onlyBot = %v, %v", ok, err)
	}
	iter, _ := st.IterEncodedObjects(plumbing.CommitObject)
	commits := 0
	_ = iter.ForEach(func(plumbing.EncodedObject) error { commits++; return nil })
	if commits != 2 {
		t.Fatalf("fetched %d commits, want 2", commits)
	}
	// The bot can replace its commit with one on the new head.
	snap, err = r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, Expect: botHead, Force: true, When: when, Message: "bot again",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 25\n")}}); err != nil {
		t.Fatal(err)
	}
	// A human merging main into the bot branch makes it not only the bot's.
	human.Git("fetch", "--quiet")
	human.Git("checkout", "--quiet", "-b", "work", "origin/rollout/chat")
	human.Write(map[string]string{"other.md": "y"})
	human.Commit("side")
	human.Git("merge", "--quiet", "--no-ff", "-m", "merge main", "origin/main")
	human.Push("work:rollout/chat")
	state, err = r.Branch(ctx, "rollout/chat", "main")
	if err != nil || state.OnlyBot {
		t.Fatalf("Branch after a human merge = %+v, %v; want not only bot", state, err)
	}
}

// A receive-pack answer without its report (a proxy or server that cut the body off) says nothing of
// whether the update landed: Push asks the remote instead of taking silence for success.
func TestPushWithoutAReportAsksTheRemote(t *testing.T) {
	for _, tt := range []struct {
		name    string
		forward bool // the update reaches the real server; only its answer is lost
	}{
		{"update lost", false},
		{"answer lost", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bare := gittest.NewBare(t, seedFiles)
			srv := gittest.NewServer(t, strings.TrimSuffix(bare, "/remote.git"))
			backend, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			forward := httputil.NewSingleHostReverseProxy(backend)
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
					forward.ServeHTTP(w, r)
					return
				}
				if tt.forward {
					forward.ServeHTTP(httptest.NewRecorder(), r)
				} else {
					_, _ = io.Copy(io.Discard, r.Body)
				}
				w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
				w.WriteHeader(http.StatusOK)
			}))
			t.Cleanup(proxy.Close)

			r := openRemote(t, proxy.URL+"/remote.git")
			snap, err := r.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			commit, err := r.Push(context.Background(), reconcile.PushRequest{
				Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "bump",
				Files: map[string][]byte{"rollouts/chat.yaml": []byte("name: chat\ntraffic:\n  weight: 5\n")},
			})
			head := gittest.Head(t, bare, "main")
			switch {
			case tt.forward && (err != nil || commit != head):
				t.Errorf("Push = %q, %v; want the commit that landed, %s", commit, err, head)
			case !tt.forward && (!errors.Is(err, reconcile.ErrStale) || head != snap.Head):
				t.Errorf("Push = %q, %v with main at %s; want ErrStale and main still at %s", commit, err, head, snap.Head)
			}
		})
	}
}

// TestClassifyRejectionOfAForcedPush: a forced push refused as non-fast-forward meets a remote that
// never takes a rewrite, a refusal; its other reasons sort as any push's.
func TestClassifyRejectionOfAForcedPush(t *testing.T) {
	report := func(reason string) *packp.ReportStatus {
		return &packp.ReportStatus{UnpackStatus: "ok",
			CommandStatuses: []*packp.CommandStatus{{ReferenceName: "refs/heads/rollout/chat", Status: reason}}}
	}
	if err := classifyRejection(report("non-fast-forward"), true); !errors.Is(err, ErrRejected) || errors.Is(err, reconcile.ErrStale) {
		t.Errorf("forced, non-fast-forward: %v, want ErrRejected", err)
	}
	if err := classifyRejection(report("failed to update ref"), true); !errors.Is(err, reconcile.ErrStale) {
		t.Errorf("forced, failed to update ref: %v, want ErrStale", err)
	}
	if err := classifyRejection(report("hook declined"), true); !errors.Is(err, ErrRejected) {
		t.Errorf("forced, hook declined: %v, want ErrRejected", err)
	}
}

// TestForcePushRefusedByTheRemote: a remote that never takes a rewrite (receive.denyNonFastForwards,
// as a protected branch) refuses the bot's force-push of its branch with "non-fast-forward". That is a
// refusal, ErrRejected, which says why; not a lost race, which every tick would retry for good.
func TestForcePushRefusedByTheRemote(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	gittest.Git(t, bare, "config", "receive.denyNonFastForwards", "true")
	r := openRemote(t, bare)
	ctx := context.Background()
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, When: when, Message: "first",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 5\n")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: snap.Head, Expect: first, Force: true, When: when.Add(time.Hour),
		Message: "second", Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 25\n")}})
	if !errors.Is(err, ErrRejected) || errors.Is(err, reconcile.ErrStale) || !strings.Contains(err.Error(), "denyNonFastForwards") {
		t.Fatalf("force-push refused by the remote: %v, want ErrRejected naming receive.denyNonFastForwards", err)
	}
	if got := gittest.Head(t, bare, "rollout/chat"); got != first {
		t.Errorf("rollout/chat = %s, want the bot's first commit %s", got, first)
	}
	// A fast-forward still lands.
	if _, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/chat", Parent: first, Expect: first, When: when.Add(time.Hour),
		Message: "on top", Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 25\n")}}); err != nil {
		t.Errorf("fast-forward: %v", err)
	}
}
