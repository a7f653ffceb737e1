package githubforge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rollout-dev/rollout/githubforge"
	"github.com/rollout-dev/rollout/reconcile"
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
