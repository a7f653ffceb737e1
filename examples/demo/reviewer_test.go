package demo

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
)

// TestReviewerMerges covers both ways the reviewer merges: a fast-forward when the bot branch sits on
// the default branch's head, and a merge commit of its own once the default branch has moved on.
// Either way the local forge then sees the proposal as merged, and keeps seeing it so.
func TestReviewerMerges(t *testing.T) {
	ctx := context.Background()
	url, _ := threeCommits(t)
	bare := strings.TrimPrefix(url, Scheme+"://")
	bot, err := gitrepo.Open(ctx, gitrepo.Options{URL: url, Branch: DefaultBranch})
	if err != nil {
		t.Fatal(err)
	}
	forge := &gitrepo.LocalForge{Remote: bot, Out: io.Discard}
	rev := &humanReviewer{forge: forge, cloneDir: filepath.Join(filepath.Dir(bare), "repo"), url: url}
	when := time.Date(2026, 4, 17, 0, 0, 0, 0, time.UTC)

	propose := func(rollout, content string, moveMainFirst bool) string {
		t.Helper()
		snap, err := bot.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		branch := "rollout/" + rollout
		state, err := bot.Branch(ctx, branch, snap.Branch)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bot.Push(ctx, reconcile.PushRequest{Branch: branch, Parent: snap.Head, Expect: state.Head, Force: state.Head != "",
			Files: map[string][]byte{"rollouts/" + rollout + ".yaml": []byte(content)}, Message: "rollout(" + rollout + "): 5% → 25%", When: when}); err != nil {
			t.Fatal(err)
		}
		if _, err := forge.Propose(ctx, reconcile.ProposalRequest{Rollout: rollout, Branch: branch, Base: snap.Branch, Title: "rollout(" + rollout + "): 5% → 25%"}); err != nil {
			t.Fatal(err)
		}
		if moveMainFirst {
			if _, err := bot.Push(ctx, reconcile.PushRequest{Branch: snap.Branch, Parent: snap.Head, Expect: snap.Head,
				Files: map[string][]byte{"rollouts/other.yaml": []byte("other: 1\n")}, Message: "rollout(other): start", When: when}); err != nil {
				t.Fatal(err)
			}
		}
		return branch
	}

	for _, tc := range []struct {
		rollout     string
		moveMain    bool
		fastForward bool
	}{
		{"fast", false, true},
		{"squash", true, false},
	} {
		content := "weight: 25 # " + tc.rollout + "\n"
		propose(tc.rollout, content, tc.moveMain)
		merges, err := rev.mergeOpen(ctx, when.Add(20*time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", tc.rollout, err)
		}
		if len(merges) != 1 || merges[0].FastForward != tc.fastForward {
			t.Fatalf("%s: merges %+v, want one with fast-forward %v", tc.rollout, merges, tc.fastForward)
		}
		snap, err := bot.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Head != merges[0].Commit {
			t.Errorf("%s: main at %s, want the merge %s", tc.rollout, snap.Head, merges[0].Commit)
		}
		text, err := CommitText(bare, snap.Head)
		if err != nil {
			t.Fatal(err)
		}
		wantAuthor := "Author: rollout-bot"
		if !tc.fastForward {
			wantAuthor = "Author: " + reviewer.Name
		}
		if !strings.Contains(text, wantAuthor) || !strings.Contains(text, "+"+content) {
			t.Errorf("%s: head commit:\n%s\nwant %q and the branch's change", tc.rollout, text, wantAuthor)
		}
		proposals, err := forge.Proposals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p := proposals[tc.rollout]; p.State != reconcile.ProposalMerged {
			t.Errorf("%s: proposal %s after the merge, want merged", tc.rollout, p.State)
		}
		// A later commit to the same file, such as the reconciler's start of the stage, leaves the
		// proposal merged: nothing is left to merge.
		if _, err := bot.Push(ctx, reconcile.PushRequest{Branch: snap.Branch, Parent: snap.Head, Expect: snap.Head,
			Files: map[string][]byte{"rollouts/" + tc.rollout + ".yaml": []byte(content + "status: {}\n")}, Message: "rollout(" + tc.rollout + "): start", When: when}); err != nil {
			t.Fatal(err)
		}
		if again, err := rev.mergeOpen(ctx, when.Add(time.Hour)); err != nil || len(again) != 0 {
			t.Errorf("%s: merged again: %+v, %v", tc.rollout, again, err)
		}
	}
}
