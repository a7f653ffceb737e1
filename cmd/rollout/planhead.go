package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"

	"github.com/rollout-dev/rollout/internal/hostfile"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
)

// errPlanWritesNothing is what the checkout of a pull request's head answers to a push: plan --base
// never writes.
var errPlanWritesNothing = errors.New("plan --base reads the checkout and writes nothing")

// checkoutHead is the checked-out tree of a pull request (its head, or the merge GitHub's checkout
// makes of it) as a read-only reconcile.Repository whose snapshot is "what the base branch would hold
// once the pull request merges". Snapshot reads the working tree; Push and Branch refuse.
type checkoutHead struct {
	root, base, head string
}

var _ reconcile.Repository = checkoutHead{}

func (c checkoutHead) Snapshot(context.Context) (*reconcile.Snapshot, error) {
	root, err := filepath.Abs(c.root)
	if err != nil {
		return nil, fmt.Errorf("the checkout of the pull request at %s: %w", c.root, err)
	}
	return &reconcile.Snapshot{Branch: c.base, Head: c.head, Files: committedLineEnds(root, checkoutFiles{root: root, dir: hostfile.DirFS(root)})}, nil
}

// checkoutFiles is the pull request's checkout as its plan reads it. Every file there (specs, prompts,
// eval results, routes) is the pull request's to choose, so a symbolic link that leads out of the
// checkout is not followed: a link to a file of the runner's (another team's eval results, say) would
// put what it holds in the plan comment.
type checkoutFiles struct {
	root string // absolute
	dir  fs.FS
}

var (
	_ fs.ReadFileFS = checkoutFiles{}
	_ fs.ReadDirFS  = checkoutFiles{}
	_ fs.StatFS     = checkoutFiles{}
)

// refuse returns the error of a name that a symbolic link leads out of the checkout, nil otherwise (an
// invalid or missing name is left to the file system to report).
func (c checkoutFiles) refuse(op, name string) error {
	if !fs.ValidPath(name) {
		return nil
	}
	if outside, err := (hostFS{root: c.root}).linksOutside(filepath.Join(c.root, filepath.FromSlash(name))); err == nil && outside {
		return &fs.PathError{Op: op, Path: name, Err: errLinkOutside}
	}
	return nil
}

// Open implements fs.FS.
func (c checkoutFiles) Open(name string) (fs.File, error) {
	if err := c.refuse("open", name); err != nil {
		return nil, err
	}
	return c.dir.Open(name)
}

// ReadFile implements fs.ReadFileFS.
func (c checkoutFiles) ReadFile(name string) ([]byte, error) {
	if err := c.refuse("readfile", name); err != nil {
		return nil, err
	}
	return fs.ReadFile(c.dir, name)
}

// ReadDir implements fs.ReadDirFS.
func (c checkoutFiles) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := c.refuse("readdir", name); err != nil {
		return nil, err
	}
	return fs.ReadDir(c.dir, name)
}

// Stat implements fs.StatFS.
func (c checkoutFiles) Stat(name string) (fs.FileInfo, error) {
	if err := c.refuse("stat", name); err != nil {
		return nil, err
	}
	return fs.Stat(c.dir, name)
}

func (c checkoutHead) Push(context.Context, reconcile.PushRequest) (string, error) {
	return "", errPlanWritesNothing
}

func (c checkoutHead) Branch(context.Context, string, string) (reconcile.BranchState, error) {
	return reconcile.BranchState{}, errPlanWritesNothing
}

// planHeadWiring wires `plan --base BRANCH`: the specs from the local checkout (--repo PATH, default
// the current directory), the proposals from GitHub when its environment is set (so that the plan
// says which open pull request a decision would update), and no git remote at all.
func (app *App) planHeadWiring(ctx context.Context, base string) (*wiring, string, error) {
	root := app.Repo
	if root == "" {
		root = "."
	}
	if strings.Contains(root, "://") {
		return nil, "", usageError{fmt.Errorf("plan --base reads a local checkout of the pull request: --repo %s is not a local path", root)}
	}
	repo, err := git.PlainOpenWithOptions(root, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, "", fmt.Errorf("open the checkout of the pull request at %s: %w", root, err)
	}
	head := ""
	if ref, err := repo.Head(); err == nil {
		head = ref.Hash().String()
	}
	w := &wiring{repo: checkoutHead{root: root, base: base, head: head}}
	w.botName, _ = app.bot()
	getenv, err := app.githubEnv()
	if err != nil {
		return nil, "", err
	}
	w.pr = readBase(repo, base, app.Dir, getenv)
	for _, spec := range w.pr.base {
		// The base's notification targets stay out of reach of every source and gate of the plan,
		// even when the pull request deletes them.
		app.notifiers.addSpec(spec)
	}
	if wt, err := repo.Worktree(); err == nil {
		w.pr.checkout = wt.Filesystem.Root()
	}
	github := getenv("GITHUB_REPOSITORY") != "" && (getenv("GITHUB_TOKEN") != "" || getenv("GITHUB_APP_ID") != "")
	app.warnGitHubSkipped(getenv, github)
	if github {
		opts, err := githubforge.FromEnv(getenv)
		if err != nil {
			return nil, "", err
		}
		opts.Now, opts.Sleep = app.Now, app.Sleep
		_, opts.BotEmail = app.bot()
		gh, err := githubforge.New(opts)
		if err != nil {
			return nil, "", fmt.Errorf("github: %w", err)
		}
		w.forge, w.forgeName = gh, "github"
	}
	return w, head, nil
}
