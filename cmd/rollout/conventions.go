package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

// repositoryFlags says which repository flags each command takes: only those it uses, so that
// `rollout evaluate --branch main` is a usage error instead of a flag silently ignored.
var repositoryFlags = map[string][]string{
	"plan": {"repo", "branch", "dir", "token-file"}, "reconcile": {"repo", "branch", "dir", "token-file"},
	"run": {"repo", "branch", "dir", "token-file"}, "status": {"repo", "branch", "dir", "token-file"},
	"history": {"repo", "branch", "dir", "token-file"}, "rollback": {"repo", "branch", "dir", "token-file"},
	"pause": {"repo", "branch", "dir", "token-file"}, "resume": {"repo", "branch", "dir", "token-file"},
	"export":  {"repo", "branch", "dir", "token-file"},
	"promote": {"repo", "branch", "dir", "token-file"}, "retry": {"repo", "branch", "dir", "token-file"},
	"comment": {"repo", "branch", "dir", "token-file"},
	// validate and evaluate read the files on disk (a local checkout), or a branch of --repo when it
	// names a URL or a bare repository, or with --branch; init writes into a local checkout. evaluate
	// keeps --dir, unused, hidden, because the GitHub Action passes it to every command.
	"validate": {"repo", "branch", "dir"}, "evaluate": {"repo", "branch", "dir"}, "init": {"repo", "dir"},
}

// specsDir is the --dir flag: a folder of the repository, named from its top folder as git names it.
// "./rollouts" and "rollouts/" (what a shell's completion types) name rollouts: read as typed, they
// named nothing in a branch's tree, and every command but validate failed with "invalid argument".
type specsDir struct{ dir *string }

func (d specsDir) String() string {
	if d.dir == nil {
		return ""
	}
	return *d.dir
}

func (d specsDir) Set(s string) error {
	clean := path.Clean(filepath.ToSlash(s))
	if !fs.ValidPath(clean) {
		return fmt.Errorf("want a folder of the repository named from its top folder, such as rollouts or config/rollouts")
	}
	*d.dir = clean
	return nil
}

func (d specsDir) Type() string { return "string" }

// addRepositoryFlags adds to each subcommand of root the repository flags it uses.
func (app *App) addRepositoryFlags(root *cobra.Command) {
	if app.Dir == "" {
		app.Dir = "rollouts"
	}
	for _, cmd := range root.Commands() {
		for _, name := range repositoryFlags[cmd.Name()] {
			f := cmd.Flags()
			switch name {
			case "repo":
				f.StringVar(&app.Repo, "repo", "", "the repository: a URL or a local path (default: the current checkout)")
			case "branch":
				f.StringVar(&app.Branch, "branch", "", "the branch holding the specs (default: the remote's default branch)")
			case "dir":
				f.Var(specsDir{&app.Dir}, "dir", "the folder of the specs in the repository")
				if cmd.Name() == "evaluate" {
					_ = f.MarkHidden("dir")
				}
			case "token-file":
				f.StringVar(&app.TokenFile, "token-file", "", "a file holding the GitHub token, instead of GITHUB_TOKEN")
			}
		}
	}
}

// rootHelpTail ends the top-level help: what the environment sets and what the exit codes mean.
const rootHelpTail = `{{if not .HasParent}}
Environment:
  GITHUB_TOKEN, GITHUB_REPOSITORY   pick GitHub: pull requests through its API, git over HTTPS with the token
  GITHUB_API_URL, GITHUB_SERVER_URL GitHub Enterprise or a test server (as GitHub Actions sets them)
  GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID
                                    a GitHub App instead of GITHUB_TOKEN
  GITHUB_ACTOR                      who ran a manual rollback, pause or resume in the Action (else the git identity)
  ROLLOUT_BOT_NAME, ROLLOUT_BOT_EMAIL
                                    the bot's commit identity (default rollout-bot)
  any name a spec's env: reference names, such as ROLLOUT_SLACK_WEBHOOK_URL: a notification target's URL
                                    (ROLLOUT_* names, and those listed in ROLLOUT_ALLOW_ENV)

Exit codes:
  0  done
  1  a rollout or spec failed (the others were still handled)
  2  usage: a mistyped command, flag or rollout name
{{end}}`

// nextStep is a hint for an error the user can act on: where to point rollout, how to push.
func nextStep(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, git.ErrRepositoryNotExists):
		return "run rollout inside a clone of the repository that holds the specs, or name it with --repo URL|PATH"
	case errors.Is(err, gitrepo.ErrRejected) && (strings.Contains(msg, "checked out") || strings.Contains(msg, "denyCurrentBranch") || strings.Contains(msg, "current branch")):
		return "the remote is a checkout (not bare) whose branch is checked out, and git refuses to move a checked-out branch: " +
			"point --repo at a bare repository (git init --bare, or git clone --bare of this one) and clone it to work in"
	case errors.Is(err, rollouts.ErrNoFolder):
		return "the branch holds no specs there yet: write one with `rollout init NAME --stable-model M --canary-model M2` and commit it, " +
			"or name the specs' folder with --dir"
	case errors.Is(err, gitrepo.ErrRejected):
		return "the remote refused the push (a hook, a protected branch, or a checked-out branch of a non-bare repository); see its message above"
	}
	return ""
}

// readSpecError is the error of reading a spec file: the path once, then what went wrong (os's errors
// name the path again).
func readSpecError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	}
	return fmt.Errorf("read spec %s: %w", path, err)
}
