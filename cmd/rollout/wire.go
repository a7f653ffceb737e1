package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/gate"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

// wiring is what the repository commands open from the flags and the environment: the git remote of
// the specs and the forge of its proposals.
type wiring struct {
	remote *gitrepo.Remote
	repo   reconcile.Repository
	forge  reconcile.Forge
	// forgeName says which forge was picked, for messages: "github" or "git".
	forgeName string
	botName   string
	// branch is the branch loadSpecs read the specs from.
	branch string
	// pr is set for the plan of a pull request (plan --base): the base branch's definitions, so that a
	// source the pull request changed is not contacted.
	pr *prPlan
}

// bot is the identity of the bot's commits: ROLLOUT_BOT_NAME and ROLLOUT_BOT_EMAIL, by default
// rollout-bot and its noreply address. A commit by any other identity on a bot branch is a human's.
func (app *App) bot() (name, email string) {
	name, email = app.Getenv("ROLLOUT_BOT_NAME"), app.Getenv("ROLLOUT_BOT_EMAIL")
	if name == "" {
		name = gitrepo.DefaultAuthorName
	}
	if email == "" {
		email = gitrepo.DefaultAuthorEmail
	}
	return name, email
}

// errSignedNeedsGitHub is the usage error of --signed-commits outside GitHub.
var errSignedNeedsGitHub = errors.New("--signed-commits needs GitHub: set GITHUB_REPOSITORY and GITHUB_TOKEN (or --token-file, or a GitHub App)")

// githubEnv is the environment the GitHub settings are read from: Getenv, except that --token-file,
// when given, holds GITHUB_TOKEN. A missing or empty file is a usage error naming the file.
func (app *App) githubEnv() (func(string) string, error) {
	if app.TokenFile == "" {
		return app.Getenv, nil
	}
	b, err := os.ReadFile(app.TokenFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("--token-file: %w", err)}
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return nil, usageError{fmt.Errorf("--token-file %s: the file is empty", app.TokenFile)}
	}
	return func(k string) string {
		if k == "GITHUB_TOKEN" {
			return token
		}
		return app.Getenv(k)
	}, nil
}

// warnGitHubSkipped says, in GitHub Actions (GITHUB_ACTIONS=true), that GitHub mode was not picked and
// what it lacks: without it, proposals are plain rollout/* branches that no one sees as pull requests.
func (app *App) warnGitHubSkipped(getenv func(string) string, github bool) {
	if github || getenv("GITHUB_ACTIONS") != "true" {
		return
	}
	var missing []string
	if getenv("GITHUB_REPOSITORY") == "" {
		missing = append(missing, "GITHUB_REPOSITORY is not set")
	}
	if strings.TrimSpace(getenv("GITHUB_TOKEN")) == "" && getenv("GITHUB_APP_ID") == "" {
		missing = append(missing, "no token: GITHUB_TOKEN is empty (pass `token: ${{ github.token }}` or an App token to the step, or set env GITHUB_TOKEN) and GITHUB_APP_ID is not set")
	}
	fmt.Fprintf(app.Stderr, "rollout: warning: running in GitHub Actions, but GitHub mode was skipped (%s): proposals are plain rollout/* branches, not pull requests\n", strings.Join(missing, "; "))
}

// specsWhere says where the specs were looked for: the folder, the branch and the repository.
func (app *App) specsWhere(branch string) string {
	repo := "the repository of the current directory"
	switch {
	case app.Repo != "":
		repo = app.Repo
		if u, err := url.Parse(app.Repo); err == nil && u.User != nil {
			u.User = nil // a token in the URL stays out of the message
			repo = u.String()
		}
	case app.Getenv("GITHUB_REPOSITORY") != "":
		repo = app.Getenv("GITHUB_REPOSITORY")
	}
	if branch == "" {
		return fmt.Sprintf("%s/*.yaml in %s", app.Dir, repo)
	}
	return fmt.Sprintf("%s/*.yaml on branch %s of %s", app.Dir, branch, repo)
}

// noSpecs reports that no spec was found, where, and fails in CI (CI=true), where an empty folder is
// most likely a wrong --dir, --repo or --branch rather than a repository without rollouts.
func (app *App) noSpecs(branch string) error {
	fmt.Fprintf(app.Stderr, "rollout: no rollout specs found in %s (set --dir, --repo or --branch if they live elsewhere)\n", app.specsWhere(branch))
	if app.Getenv("CI") == "true" {
		return errFailed
	}
	return nil
}

// wire opens the repository of --repo and --branch and picks the forge: wireForge, then open.
func (app *App) wire(ctx context.Context, out io.Writer, signed bool) (*wiring, error) {
	f, err := app.wireForge(signed)
	if err != nil {
		return nil, err
	}
	return f.open(ctx, out)
}

// forgeWiring is a wiring whose repository is not opened yet: the flags and the environment are read
// and the forge is built, and nothing has been contacted. `comment` checks with it who is asking before
// the git remote is touched.
type forgeWiring struct {
	// github is the GitHub forge, nil when the forge is the local one over the remote.
	github  *githubforge.Forge
	git     gitrepo.Options
	signed  bool
	botName string
}

// wireForge picks the forge of wire. With signed, commits are made through GitHub's API so that GitHub
// signs them (githubforge.SignedRepository).
//
// The forge is chosen here and only here: GitHub pull requests (githubforge) when GITHUB_REPOSITORY is
// set with GITHUB_TOKEN (or --token-file), as GitHub Actions sets them, or with a GitHub App
// (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY); otherwise the local forge, whose proposals are the bot's
// rollout/* branches of the plain remote. Without --repo, GitHub mode talks to the repository
// GITHUB_REPOSITORY names on GITHUB_SERVER_URL, and plain mode to the current checkout. In GitHub mode
// git authenticates with the forge's token, asked for before every exchange, so that an App's
// installation token (an hour long) is refreshed while `rollout run` goes on.
func (app *App) wireForge(signed bool) (*forgeWiring, error) {
	getenv, err := app.githubEnv()
	if err != nil {
		return nil, err
	}
	token, ghRepo := getenv("GITHUB_TOKEN"), getenv("GITHUB_REPOSITORY")
	github := ghRepo != "" && (token != "" || getenv("GITHUB_APP_ID") != "")
	if signed && !github {
		return nil, usageError{errSignedNeedsGitHub}
	}
	app.warnGitHubSkipped(getenv, github)
	url := app.Repo
	botName, botEmail := app.bot()
	var gh *githubforge.Forge
	if github {
		// ---- GitHub hook: the one place githubforge is wired. ----
		opts, err := githubforge.FromEnv(getenv)
		if err != nil {
			return nil, err
		}
		opts.Now, opts.Sleep = app.Now, app.Sleep
		opts.BotEmail = botEmail
		gh, err = githubforge.New(opts)
		if err != nil {
			return nil, fmt.Errorf("github: %w", err)
		}
		if url == "" {
			url = githubforge.GitURL(getenv("GITHUB_SERVER_URL"), opts.Owner, opts.Repo)
		}
	}
	gopts := gitrepo.Options{URL: url, Branch: app.Branch, AuthorName: botName, AuthorEmail: botEmail, Prefetch: []string{app.Dir}}
	switch {
	case gh != nil:
		gopts.Token = gh.GitToken
	case token != "" && (strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")):
		gopts.Auth = gitrepo.TokenAuth(token)
	}
	return &forgeWiring{github: gh, git: gopts, signed: signed, botName: botName}, nil
}

// open opens the repository, the first contact with the git remote, and completes the wiring. The
// local forge's messages go to out.
func (f *forgeWiring) open(ctx context.Context, out io.Writer) (*wiring, error) {
	remote, err := gitrepo.Open(ctx, f.git)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	w := &wiring{remote: remote, repo: remote, botName: f.botName}
	if f.github != nil {
		w.forge, w.forgeName = f.github, "github"
		if f.signed {
			w.repo = f.github.Signed(remote)
		}
	} else {
		w.forge, w.forgeName = &gitrepo.LocalForge{Remote: remote, Out: out}, "git"
	}
	return w, nil
}

// readsWorkingTree reports whether validate and evaluate read the files as they are on disk,
// uncommitted changes included (people validate before they commit): without --repo and --branch (the
// current directory), or with --repo naming a local folder that is not a bare repository (a checkout,
// or any folder of specs). Anything else (a URL, a bare repository, a --branch, a path that is no
// folder) is read from the branch's snapshot through branchTree, as plan, status and export read it.
func (app *App) readsWorkingTree() bool {
	if app.Branch != "" {
		return false
	}
	if app.Repo == "" {
		return true
	}
	if info, err := os.Stat(app.Repo); err != nil || !info.IsDir() {
		return false
	}
	repo, err := git.PlainOpen(app.Repo)
	if err != nil {
		return true // a folder that is not the top of a repository: its files are the tree
	}
	_, err = repo.Worktree()
	return !errors.Is(err, git.ErrIsBareRepository)
}

// branchTree opens --repo through wire, as plan, status and export open it, and returns the tree of its
// --branch (default: the remote's default branch) and where that is, for messages: "branch main of
// /srv/specs.git", without credentials.
func (app *App) branchTree(ctx context.Context) (fs.FS, string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	w, err := app.wire(ctx, app.Stderr, false)
	if err != nil {
		return nil, "", err
	}
	snap, err := w.repo.Snapshot(ctx)
	if err != nil {
		return nil, "", err
	}
	return snap.Files, fmt.Sprintf("branch %s of %s", snap.Branch, w.remote.Redacted()), nil
}

// repoPath is the path in a branchTree of a path the user typed (named by what, such as "--spec
// rollouts/x.yaml"): slash-separated, from the top of the repository. An absolute path, or one that
// climbs out with "..", names nothing in a branch and is a usage error.
func repoPath(what, p string) (string, error) {
	name := path.Clean(filepath.ToSlash(p))
	if !fs.ValidPath(name) {
		return "", usageError{fmt.Errorf("%s is not a path in the repository: with --repo naming a URL or a bare repository, or with --branch, files are read from the branch and named from its top folder, such as rollouts/summarizer.yaml", what)}
	}
	return name, nil
}

// loop builds the reconciler over w. metricsOverride (--metrics) replaces every spec's source.
func (app *App) loop(w *wiring, metricsOverride string, log *slog.Logger) (*reconcile.Loop, error) {
	publish, err := app.publications()
	if err != nil {
		return nil, err
	}
	return &reconcile.Loop{
		Repo:     w.repo,
		Loaded:   app.notifiers.add,
		Forge:    w.forge,
		Notifier: app.notifier(),
		Sources: func(spec *rollouts.Spec) (policy.Source, error) {
			if w.pr != nil && metricsOverride == "" {
				if err := w.pr.guard(spec); err != nil {
					return nil, err
				}
			}
			return app.openSource(spec, metricsOverride)
		},
		Gates: func(ctx context.Context, tree fs.FS, spec *rollouts.Spec, stage int) policy.GateResult {
			if w.pr != nil {
				if why := w.pr.gateGuard(spec, stage); why != "" {
					return policy.GateResult{Stage: stage, Reason: why}
				}
			}
			g := &gate.Keeper{Repo: tree, Getenv: app.gateGetenv(spec)}
			return g.Check(ctx, spec, stage)
		},
		History: w.remote,
		Dir:     app.Dir,
		Bot:     w.botName,
		// The published report (ROLLOUT_REPORT_URL, say the Pages site report-pages.yml deploys):
		// each proposal links its rollout's charts there.
		ReportURL: app.Getenv("ROLLOUT_REPORT_URL"),
		Actor:     app.actor(),
		Now:       app.Now,
		Publish:   publish,
		Log:       log,
	}, nil
}

// actor names the person running a manual operation, for the commit's Rollout-Actor trailer: the
// GitHub user that triggered the workflow (GITHUB_ACTOR) in the Action, else the git identity
// (GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL, else user.name and user.email of git's configuration).
func (app *App) actor() string {
	if a := app.Getenv("GITHUB_ACTOR"); a != "" {
		return a + " (GitHub Actions)"
	}
	name, email := app.Getenv("GIT_AUTHOR_NAME"), app.Getenv("GIT_AUTHOR_EMAIL")
	if name == "" && email == "" {
		name, email = gitIdentity(app.Repo)
	}
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case email != "":
		return "<" + email + ">"
	}
	return name
}

// gitIdentity reads user.name and user.email as git would for a commit in the checkout at dir (the
// current directory when dir is not a local path): the checkout's own configuration, then the global one.
func gitIdentity(dir string) (name, email string) {
	if dir == "" || strings.Contains(dir, "://") {
		dir = "."
	}
	if repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
		if cfg, err := repo.ConfigScoped(config.SystemScope); err == nil {
			name, email = cfg.User.Name, cfg.User.Email
		}
	} else if cfg, err := config.LoadConfig(config.GlobalScope); err == nil {
		name, email = cfg.User.Name, cfg.User.Email
	}
	return name, email
}

// cliLog is the logger of one-shot commands: warnings and errors, on stderr.
func (app *App) cliLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(app.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
