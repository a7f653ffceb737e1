package githubforge_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/reconcile"
)

const botEmail = "rollout-bot@users.noreply.github.com"

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commitFile commits one file in a clone as name <email>.
func commitFile(t *testing.T, work, path, content, name, email, msg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(work, path), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, work, "add", path)
	gitRun(t, work, "-c", "user.name="+name, "-c", "user.email="+email, "commit", "--quiet", "-m", msg)
}

// TestOverRealGit runs the forge against the fake GitHub serving the repository over smart HTTP with
// the real git http-backend: the bot pushes its branch with the token, the pull request follows the
// branch, a human's push is noticed, and the test merges the pull request in the real repository.
func TestOverRealGit(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	bare, cloneURL := fx.srv.EnableGit(map[string]string{"summarizer.yaml": "traffic:\n  weight: 5\n"})
	fx.srv.Logins = map[string]string{botEmail: "rollout-bot[bot]", "alice@example.com": "alice"}

	// Without the token git is refused, as on GitHub.
	lsRemote := exec.Command("git", "ls-remote", cloneURL)
	lsRemote.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(), "GIT_TERMINAL_PROMPT=0")
	if err := lsRemote.Run(); err == nil {
		t.Fatal("ls-remote without a token succeeded")
	}
	authed := strings.Replace(cloneURL, "http://", "http://x-access-token:"+token+"@", 1)
	work := t.TempDir()
	gitRun(t, work, "clone", "--quiet", authed, ".")
	gitRun(t, work, "checkout", "--quiet", "-b", "rollout/summarizer")
	commitFile(t, work, "summarizer.yaml", "traffic:\n  weight: 25\n", "rollout", botEmail, "rollout(summarizer): 5% → 25%")
	gitRun(t, work, "push", "--quiet", "origin", "rollout/summarizer")
	botHead := gitRun(t, work, "rev-parse", "HEAD")

	p, err := fx.forge.Propose(ctx, request("summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Head != botHead {
		t.Errorf("proposal head %s, want the pushed %s", p.Head, botHead)
	}
	again, err := fx.forge.Propose(ctx, request("summarizer"))
	if err != nil || len(again.HumanCommits) != 0 {
		t.Fatalf("bot-only branch: humans %v, err %v", again.HumanCommits, err)
	}

	// Alice pushes a fix to the bot's branch.
	commitFile(t, work, "notes.md", "why\n", "Alice", "alice@example.com", "notes")
	gitRun(t, work, "push", "--quiet", "origin", "rollout/summarizer")
	aliceHead := gitRun(t, work, "rev-parse", "HEAD")
	got, err := fx.forge.Proposals(ctx)
	if err != nil || got["summarizer"].Head != aliceHead {
		t.Fatalf("after Alice's push: %+v, %v", got["summarizer"], err)
	}
	again, err = fx.forge.Propose(ctx, request("summarizer"))
	if err != nil || !slices.Equal(again.HumanCommits, []string{aliceHead}) {
		t.Fatalf("humans %v, err %v; want [%s]", again.HumanCommits, err, aliceHead)
	}

	// The reviewer merges; main now holds the new weight, and the proposal reads merged.
	fx.srv.MergePull(p.Number)
	if content := gitRun(t, bare, "show", "main:summarizer.yaml"); content != "traffic:\n  weight: 25" {
		t.Errorf("main:summarizer.yaml = %q", content)
	}
	got, err = fx.forge.Proposals(ctx)
	if err != nil || got["summarizer"].State != reconcile.ProposalMerged {
		t.Errorf("after merge: %+v, %v", got["summarizer"], err)
	}
}
