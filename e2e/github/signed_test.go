package e2egithub_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
)

// TestSignedCommits runs the reconciler as `rollout reconcile --signed-commits` wires it: the
// repository is githubforge.SignedRepository over the go-git remote, so every commit the bot makes
// goes through GitHub's Git Data API. The commits land in the repository the server serves over git:
// go-git reads them from the bare repository and a clone fetches them, with the tree, parent, message
// and trailers the git path would have written, and GitHub reports them verified. The bot knows its
// API commits for its own when it rebuilds its branch, and still keeps off a human's.
func TestSignedCommits(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "summarizer"
	path := "rollouts/" + name + ".yaml"
	w := newWorld(t, map[string]string{path: specFile(name, "pull-request"), "README.md": "llm app\n"})
	signed := w.forge.Signed(w.loop.Repo)
	w.loop.Repo = signed

	w.startCanary(name, canaryModel)
	merged := w.head("main")
	w.srv.ResetCalls() // the developer's push is over git; the bot's must not be
	// The merge button's commit is GitHub's but not signed here; a human's push is not either.
	if v := w.verification(merged); v.GetVerified() || v.GetReason() != "unsigned" {
		t.Errorf("spec merge %s: verification %+v, want unsigned", merged[:8], v)
	}

	// The start commit goes straight to main through the API.
	stage0 := t0.Add(time.Minute)
	w.at(stage0)
	r := w.result(w.tick(), name)
	if r.Decision != policy.Start || r.To != 5 || r.Commit == "" {
		t.Fatalf("start: %s →%d commit %q (%s)", r.Decision, r.To, r.Commit, r.Effect)
	}
	if got := w.head("main"); got != r.Commit {
		t.Fatalf("main at %s, want the start commit %s", got, r.Commit)
	}
	w.assertSignedCommit(r.Commit, merged, "rollout(summarizer): start stage 0 at 5%", name, "start")
	if s := w.spec(r.Commit, path); s.Traffic.Weight != 5 || s.Status == nil || !s.Status.StageStartedAt.Equal(stage0) {
		t.Errorf("start commit's spec: traffic %+v status %+v", s.Traffic, s.Status)
	}
	// Only the weight and the status change: the comment and key order survive the API's tree.
	removed, _ := w.diffLines(w.commit(r.Commit))
	if !slices.Equal(removed, []string{"  weight: 0"}) {
		t.Errorf("start commit removes %q, want only the weight", removed)
	}
	if w.file(r.Commit, "README.md") != "llm app\n" {
		t.Error("the start commit lost README.md")
	}
	startCommit := r.Commit

	// A healthy stage 0: the bot's branch is created through the API, and its pull request opened.
	w.traffic(name, stage0, stage0.Add(2*time.Hour), 4000, 50, healthyCanary(), 1)
	w.at(stage0.Add(2 * time.Hour))
	r = w.result(w.tick(), name)
	if r.Decision != policy.Advance || r.To != 25 || r.Proposal == "" {
		t.Fatalf("advance: %s →%d proposal %q reasons %v", r.Decision, r.To, r.Proposal, r.Reasons)
	}
	branch := reconcile.BranchFor(name)
	advance := w.head(branch)
	if advance == "" {
		t.Fatalf("no branch %s in the served repository", branch)
	}
	w.assertSignedCommit(advance, startCommit, "rollout(summarizer): 5% → 25%", name, "advance")
	if s := w.spec(advance, path); s.Traffic.Weight != 25 {
		t.Errorf("advance commit's weight %d, want 25", s.Traffic.Weight)
	}
	// A developer's clone over smart HTTP gets the API's commits, signature and all.
	work := w.clone()
	w.gitOut(work, "fetch", "--quiet", "origin", branch)
	if got := w.gitOut(work, "rev-parse", "origin/"+branch); got != advance {
		t.Errorf("clone sees %s at %s, want %s", branch, got, advance)
	}
	if raw := w.gitOut(work, "cat-file", "commit", advance); !strings.Contains(raw, "\ngpgsig -----BEGIN PGP SIGNATURE-----") {
		t.Errorf("the cloned advance commit has no signature:\n%s", raw)
	}

	// A second reconciler that read main before the start commit: its push is stale and writes nothing.
	_, err := signed.Push(w.ctx, reconcile.PushRequest{Branch: "main", Parent: merged, Expect: merged,
		Message: "rollout(summarizer): start stage 0 at 5%\n\nRollout: summarizer\nRollout-Decision: start\n",
		Files:   map[string][]byte{path: []byte(w.file(startCommit, path))}})
	if !errors.Is(err, reconcile.ErrStale) {
		t.Errorf("stale push to main: err = %v, want ErrStale", err)
	}
	// So is creating the bot's branch again.
	_, err = signed.Push(w.ctx, reconcile.PushRequest{Branch: branch, Parent: startCommit, Expect: "",
		Message: "again", Files: map[string][]byte{path: []byte("x")}})
	if !errors.Is(err, reconcile.ErrStale) {
		t.Errorf("second creation of %s: err = %v, want ErrStale", branch, err)
	}
	// And rewriting it from a head it no longer has.
	_, err = signed.Push(w.ctx, reconcile.PushRequest{Branch: branch, Parent: startCommit, Expect: startCommit, Force: true,
		Message: "again", Files: map[string][]byte{path: []byte("x")}})
	if !errors.Is(err, reconcile.ErrStale) {
		t.Errorf("forced push from a stale head: err = %v, want ErrStale", err)
	}
	if w.head("main") != startCommit || w.head(branch) != advance {
		t.Fatalf("a stale push moved a branch: main %s, %s %s", w.head("main"), branch, w.head(branch))
	}

	// A human rewords the spec on main while the proposal is open: the bot rebuilds its branch on the
	// new main through the API, since the commit on it is its own, though GitHub authored and
	// committed it under identities that are not the git bot's.
	reword := func(from, to string) string {
		return w.humanCommit("main", map[string]string{path: strings.Replace(w.file(w.head("main"), path), from, to, 1)}, "Reword "+name)
	}
	edited := reword("Sonnet 4.5 April bump", "Sonnet 4.5 April bump, reworded")
	w.at(stage0.Add(2*time.Hour + 10*time.Minute))
	r = w.result(w.tick(), name)
	if r.Commit == "" || w.head(branch) != r.Commit {
		t.Fatalf("the bot did not rebuild its branch: %s (commit %q)", r.Effect, r.Commit)
	}
	w.assertSignedCommit(r.Commit, edited, "rollout(summarizer): 5% → 25%", name, "advance")
	// Then a human commits on the bot's branch, and the spec changes again: the bot keeps off it.
	humanHead := w.humanCommit(branch, map[string]string{"README.md": "reviewed\n"}, "Review note")
	reword("reworded", "reworded twice")
	w.at(stage0.Add(2*time.Hour + 20*time.Minute))
	r = w.result(w.tick(), name)
	if r.Commit != "" || w.head(branch) != humanHead || !strings.Contains(r.Effect, "human commits") {
		t.Fatalf("after a human commit on %s: %s (commit %q), head %s", branch, r.Effect, r.Commit, w.head(branch))
	}
	const humanPushes = 3

	// The test merges the proposal; the next stage starts with a signed commit on the merge.
	pr := w.botPulls(name)
	if len(pr) != 1 {
		t.Fatalf("bot pull requests %+v, want one", pr)
	}
	w.srv.MergePull(pr[0].Number)
	mergeCommit := w.head("main")
	w.at(stage0.Add(2*time.Hour + 30*time.Minute))
	r = w.result(w.tick(), name)
	if r.Decision != policy.Start || r.To != 25 || r.Commit == "" || w.head("main") != r.Commit {
		t.Fatalf("stage 1: %s →%d commit %q, main %s", r.Decision, r.To, r.Commit, w.head("main"))
	}
	w.assertSignedCommit(r.Commit, mergeCommit, "rollout(summarizer): start stage 1 at 25%", name, "start")

	// The bot never pushed over git, the humans did: every bot commit was created through the API
	// (start, advance, the three stale attempts, whose commits no ref reaches, the rebuilt advance and
	// the next start).
	calls := w.srv.Calls()
	if n := calls["GIT git-receive-pack"]; n != humanPushes {
		t.Errorf("%d pushes over git, want the humans' %d", n, humanPushes)
	}
	if n := calls["POST /repos/{owner}/{repo}/git/commits"]; n != 7 {
		t.Errorf("%d commits created through the API, want 7", n)
	}
}

// assertSignedCommit checks a commit the bot made through the Git Data API, as go-git reads it from
// the served repository: its one parent, subject and trailers; that it changes the rollout's spec
// alone; that GitHub authored it as the token's account and committed and signed it as itself; that
// the signature checks against GitHub's key; and that the API reports it verified.
func (w *world) assertSignedCommit(hash, parent, subject, rollout, decision string) {
	w.t.Helper()
	c := w.commit(hash)
	if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != parent {
		w.t.Errorf("commit %s parents %v, want %s", hash[:8], c.ParentHashes, parent)
	}
	if got := strings.SplitN(c.Message, "\n", 2)[0]; got != subject {
		w.t.Errorf("commit %s subject %q, want %q", hash[:8], got, subject)
	}
	for _, tr := range []string{"Rollout: " + rollout, "Rollout-Decision: " + decision} {
		if !strings.Contains(c.Message, "\n"+tr+"\n") {
			w.t.Errorf("commit %s lacks trailer %q:\n%s", hash[:8], tr, c.Message)
		}
	}
	if files := w.changedFiles(c); !slices.Equal(files, []string{"rollouts/" + rollout + ".yaml"}) {
		w.t.Errorf("commit %s changes %v, want only the spec", hash[:8], files)
	}
	if c.Author.Email != githubtest.BotEmail || c.Committer.Email != "noreply@github.com" || !c.Author.When.Equal(w.clock.Now()) {
		w.t.Errorf("commit %s by %s <%s> at %s, committed by %s; want the token's account now, committed by GitHub",
			hash[:8], c.Author.Name, c.Author.Email, c.Author.When, c.Committer.Email)
	}
	if c.PGPSignature == "" {
		w.t.Errorf("commit %s is not signed", hash[:8])
	} else if _, err := c.Verify(w.srv.SigningKey()); err != nil {
		w.t.Errorf("commit %s: signature does not check against GitHub's key: %v", hash[:8], err)
	}
	if v := w.verification(hash); !v.GetVerified() || v.GetReason() != "valid" || v.GetSignature() != c.PGPSignature {
		w.t.Errorf("commit %s: verification %+v, want verified and valid", hash[:8], v)
	}
}

// verification asks GitHub for a commit's verification, with the token, as a reviewer's browser would.
func (w *world) verification(hash string) *github.SignatureVerification {
	w.t.Helper()
	c, _, err := w.apiClient().Git.GetCommit(w.ctx, owner, repoName, hash)
	if err != nil {
		w.t.Fatalf("get commit %s: %v", hash, err)
	}
	if c.GetSHA() != hash {
		w.t.Fatalf("get commit %s answered %s", hash, c.GetSHA())
	}
	return c.GetVerification()
}
