package githubforge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
)

func TestSignedPush(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	base := fx.srv.SeedCommit("main", "", map[string]string{
		"rollouts/summarizer.yaml": "name: summarizer\ntraffic: {weight: 5}\n",
		"rollouts/old.yaml":        "name: old\n",
		"README.md":                "hello\n",
	})
	repo := fx.forge.Signed(nil) // Snapshot and Branch are not used here

	// A rollback on the default branch: one file changed, one deleted, one binary added.
	sha, err := repo.Push(ctx, reconcile.PushRequest{Branch: "main", Parent: base, Expect: base,
		Message: "rollout(summarizer): rollback 5% → 0%\n\nRollout: summarizer\nRollout-Decision: rollback\n",
		Files: map[string][]byte{"rollouts/summarizer.yaml": []byte("name: summarizer\ntraffic: {weight: 0}\n"),
			"rollouts/old.yaml": nil, "assets/logo.bin": {0xff, 0x00, 0xfe}, "empty.txt": {}}})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := fx.srv.Commit(sha)
	if !ok || !c.Verified || len(c.Parents) != 1 || c.Parents[0] != base || fx.srv.Ref("main") != sha {
		t.Fatalf("commit %+v (verified %v), ref %s", c, c.Verified, fx.srv.Ref("main"))
	}
	want := map[string]string{"rollouts/summarizer.yaml": "name: summarizer\ntraffic: {weight: 0}\n", "README.md": "hello\n",
		"assets/logo.bin": "\xff\x00\xfe", "empty.txt": ""}
	if len(c.Files) != len(want) {
		t.Errorf("files = %q", c.Files)
	}
	for p, w := range want {
		if c.Files[p] != w {
			t.Errorf("%s = %q, want %q", p, c.Files[p], w)
		}
	}

	// Someone pushed in between: the stale push writes nothing.
	if _, err := repo.Push(ctx, reconcile.PushRequest{Branch: "main", Parent: base, Expect: base, Message: "late",
		Files: map[string][]byte{"x": []byte("x")}}); !errors.Is(err, reconcile.ErrStale) {
		t.Fatalf("stale push: err = %v", err)
	}
	if fx.srv.Ref("main") != sha {
		t.Error("a stale push moved the branch")
	}

	// A new bot branch; creating it again is stale.
	branch := reconcile.PushRequest{Branch: "rollout/summarizer", Parent: sha, Expect: "", Message: "advance",
		Files: map[string][]byte{"rollouts/summarizer.yaml": []byte("weight: 25\n")}}
	first, err := repo.Push(ctx, branch)
	if err != nil || fx.srv.Ref("rollout/summarizer") != first {
		t.Fatalf("create branch: %v", err)
	}
	if _, err := repo.Push(ctx, branch); !errors.Is(err, reconcile.ErrStale) {
		t.Errorf("second create: err = %v", err)
	}

	// Rewriting the bot branch from the default branch's head needs Force.
	rewrite := reconcile.PushRequest{Branch: "rollout/summarizer", Parent: sha, Expect: first, Message: "advance again",
		Files: map[string][]byte{"rollouts/summarizer.yaml": []byte("weight: 50\n")}}
	if _, err := repo.Push(ctx, rewrite); !errors.Is(err, githubforge.ErrForceRequired) {
		t.Errorf("rewrite without force: err = %v", err)
	}
	rewrite.Force = true
	second, err := repo.Push(ctx, rewrite)
	if err != nil || fx.srv.Ref("rollout/summarizer") != second {
		t.Fatalf("forced rewrite: %v", err)
	}
	if c, _ := fx.srv.Commit(second); c.Files["rollouts/summarizer.yaml"] != "weight: 50\n" || !c.Verified {
		t.Errorf("rewritten commit %+v", c)
	}
}

// gitView is the go-git repository's answer to Branch as the SignedRepository's embedded repository
// gives it: git identities only, so the API's commits look like a human's.
type gitView struct {
	reconcile.Repository
	state reconcile.BranchState
}

var _ reconcile.Repository = (*gitView)(nil)

func (g *gitView) Branch(context.Context, string, string) (reconcile.BranchState, error) {
	return g.state, nil
}

func TestSignedBranchKnowsTheBotsAPICommits(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		noBot   bool // no BotLogin nor BotEmail configured
		human   bool // a human commit on top of the bot's
		onlyBot bool
	}{
		{name: "the bot's signed commit", onlyBot: true},
		{name: "a human commit on top", human: true, onlyBot: false},
		{name: "no bot identity configured", noBot: true, onlyBot: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := setup(t, func(o *githubforge.Options) {
				if tt.noBot {
					o.BotLogin, o.BotEmail = "", ""
				}
			})
			fx.srv.EnableGit(nil)
			base := fx.srv.SeedCommit("main", "", map[string]string{"rollouts/a.yaml": "weight: 5\n"})
			view := &gitView{}
			repo := fx.forge.Signed(view)
			head, err := repo.Push(ctx, reconcile.PushRequest{Branch: "rollout/a", Parent: base, Message: "advance",
				Files: map[string][]byte{"rollouts/a.yaml": []byte("weight: 25\n")}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.human {
				head = fx.srv.SeedCommit("rollout/a", head, map[string]string{"notes.md": "mine\n"})
			}
			view.state = reconcile.BranchState{Head: head, OnlyBot: false}
			fx.srv.ResetCalls()
			st, err := repo.Branch(ctx, "rollout/a", "main")
			if err != nil || st.Head != head || st.OnlyBot != tt.onlyBot {
				t.Errorf("Branch = %+v, %v; want head %s, only bot %v", st, err, head, tt.onlyBot)
			}
			if n := fx.srv.Calls()["GET /repos/{owner}/{repo}/compare/{basehead}"]; n != map[bool]int{true: 0, false: 1}[tt.noBot] {
				t.Errorf("%d compare calls", n)
			}
			// When git already says the bot's, GitHub is not asked.
			view.state.OnlyBot = true
			fx.srv.ResetCalls()
			if st, err := repo.Branch(ctx, "rollout/a", "main"); err != nil || !st.OnlyBot || fx.srv.TotalCalls() != 0 {
				t.Errorf("Branch = %+v, %v with %d calls", st, err, fx.srv.TotalCalls())
			}
		})
	}
}
