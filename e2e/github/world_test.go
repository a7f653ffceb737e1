package e2egithub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/diff"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-github/v60/github"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/syncbuf"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/reconcile/notify"
	"github.com/rollout-dev/rollout/rollouts"
)

const (
	owner    = "acme"
	repoName = "llm-app"
	// token is the GITHUB_TOKEN of every test; no output may ever show it.
	token    = "ghs_e2eS3cretT0ken0123456789abcdefABCD"
	botLogin = "rollout-bot[bot]"
	alice    = "alice@example.com"
)

// t0 is when every test's story begins.
var t0 = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

// clock is the injected time of the loop, the forge and the fake GitHub.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// world is one repository on the fake GitHub and the reconciler that works on it, wired as
// `rollout reconcile` wires it in a GitHub Action: from GITHUB_* variables alone.
type world struct {
	t     *testing.T
	ctx   context.Context
	clock *clock
	srv   *githubtest.Server
	// bare is the server's bare repository; cloneURL its smart-HTTP URL.
	bare, cloneURL string
	// dir is the directory relative file: sources are read from (the process's working directory).
	dir   string
	forge *githubforge.Forge
	loop  *reconcile.Loop
	// env is the reconciler's environment, as GitHub Actions sets it; hookClient reaches the webhook.
	env        map[string]string
	hookClient *http.Client
	logs       *syncbuf.Buffer
	// sleeps are the waits the forges asked for (rate limits), none really slept; sleepMu guards them.
	sleepMu sync.Mutex
	sleeps  []time.Duration
	// output is everything the loop reported: results, reasons and errors (its log lines are in logs).
	output strings.Builder
	// hookURL is the rollback webhook, a secret like the token; hooks are the events it received.
	hookURL string
	hookMu  sync.Mutex
	hooks   []reconcile.Event
	// secrets must never show: the token, the webhook's path, a line of the App's private key.
	secrets []string
}

// hookSecret is the path of the rollback webhook's URL: a secret, like a Slack webhook's.
const hookSecret = "/hooks/T0SECRET/B0SECRET/xoxSecretPath"

// newWorld starts a fake GitHub serving a repository whose first commit on main holds files; the bot
// authenticates with GITHUB_TOKEN.
func newWorld(t *testing.T, files map[string]string) *world {
	t.Helper()
	return newWorldAuth(t, files, nil)
}

// newWorldAuth is newWorld with the bot's credentials in appKey: nil for GITHUB_TOKEN, or the PEM
// private key of a GitHub App (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY) whose installation tokens the bot
// mints. The humans always use the token.
func newWorldAuth(t *testing.T, files map[string]string, appKey []byte) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), clock: &clock{now: t0}, dir: t.TempDir(), logs: &syncbuf.Buffer{}}
	w.srv = githubtest.New(t, owner, repoName, w.clock.Now)
	w.srv.Token = token
	w.srv.Logins = map[string]string{gitrepo.DefaultAuthorEmail: botLogin, alice: "alice"}
	w.bare, w.cloneURL = w.srv.EnableGit(files)
	// The application has served no request yet: an empty traffic file per rollout, since a missing
	// one is a failing metrics source (which fails the pass and is recorded in git).
	for p := range files {
		if strings.HasPrefix(p, "rollouts/") {
			name := strings.TrimSuffix(path.Base(p), ".yaml")
			if err := os.MkdirAll(filepath.Join(w.dir, "traffic"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(w.dir, "traffic", name+".jsonl"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev reconcile.Event
		if r.Method != http.MethodPost || r.URL.Path != hookSecret || json.NewDecoder(r.Body).Decode(&ev) != nil {
			http.Error(rw, "bad request", http.StatusBadRequest)
			return
		}
		w.hookMu.Lock()
		w.hooks = append(w.hooks, ev)
		w.hookMu.Unlock()
	}))
	t.Cleanup(hook.Close)
	w.hookURL = hook.URL + hookSecret

	env := map[string]string{
		"ROLLOUT_ROLLBACK_WEBHOOK": w.hookURL,
		"GITHUB_REPOSITORY":        owner + "/" + repoName,
		"GITHUB_API_URL":           w.srv.APIURL(),
		"GITHUB_SERVER_URL":        w.srv.URL,
		"GITHUB_TOKEN":             token,
	}
	if appKey != nil {
		delete(env, "GITHUB_TOKEN")
		env["GITHUB_APP_ID"] = "4242"
		env["GITHUB_APP_PRIVATE_KEY"] = string(appKey)
	}
	w.secrets = []string{token, hookSecret}
	if appKey != nil {
		w.secrets = append(w.secrets, strings.Split(strings.TrimSpace(string(appKey)), "\n")[1])
	}
	w.env, w.hookClient = env, hook.Client()
	w.loop, w.forge = w.newLoop()
	t.Cleanup(func() { w.assertNoSecrets() })
	return w
}

// newLoop wires a reconciler as `rollout reconcile` does in a GitHub Action, from the environment
// alone: its own forge (with its own HTTP cache), its own git remote, the webhook notifier.
func (w *world) newLoop() (*reconcile.Loop, *githubforge.Forge) {
	w.t.Helper()
	getenv := func(k string) string { return w.env[k] }
	opts, err := githubforge.FromEnv(getenv)
	if err != nil {
		w.t.Fatalf("forge options from the environment: %v", err)
	}
	opts.Now = w.clock.Now
	opts.Sleep = func(_ context.Context, d time.Duration) error {
		w.sleepMu.Lock()
		defer w.sleepMu.Unlock()
		w.sleeps = append(w.sleeps, d)
		return nil
	}
	opts.WriteGap = -1
	opts.BotLogin, opts.BotEmail = botLogin, gitrepo.DefaultAuthorEmail
	forge, err := githubforge.New(opts)
	if err != nil {
		w.t.Fatalf("forge: %v", err)
	}
	gitToken, err := forge.GitToken(w.ctx)
	if err != nil {
		w.t.Fatalf("git token: %v", err)
	}
	remote, err := gitrepo.Open(w.ctx, gitrepo.Options{
		URL:  githubforge.GitURL(getenv("GITHUB_SERVER_URL"), owner, repoName),
		Auth: gitrepo.TokenAuth(gitToken),
	})
	if err != nil {
		w.t.Fatalf("open the remote: %v", err)
	}
	return &reconcile.Loop{
		Repo:     remote,
		Forge:    forge,
		Notifier: &notify.Dispatcher{Client: w.hookClient, Getenv: getenv},
		Sources:  w.source,
		Now:      w.clock.Now,
		Log:      slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// The bound is wall-clock time: on a loaded two-core machine under -race a read of these
		// files has taken over the default 30 s. These tests are not about it (reconcile's are).
		MetricsTimeout: 5 * time.Minute,
	}, forge
}

// waits returns the waits the forges asked for.
func (w *world) waits() []time.Duration {
	w.sleepMu.Lock()
	defer w.sleepMu.Unlock()
	return append([]time.Duration(nil), w.sleeps...)
}

// source opens a spec's file: source relative to w.dir, as cmd/rollout does relative to its working
// directory.
func (w *world) source(spec *rollouts.Spec) (policy.Source, error) {
	path, ok := strings.CutPrefix(spec.Metrics.Source, "file:")
	if !ok || path == "" {
		return nil, fmt.Errorf("rollout %s: unsupported metrics source %q", spec.Name, spec.Metrics.Source)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(w.dir, filepath.FromSlash(path))
	}
	return jsonl.Open(path), nil
}

// at moves the clock.
func (w *world) at(t time.Time) { w.clock.Set(t) }

// tick runs one reconcile pass at the current clock and returns its report.
func (w *world) tick() *reconcile.Report {
	w.t.Helper()
	rep, err := w.loop.Tick(w.ctx)
	if err != nil {
		w.t.Fatalf("tick at %s: %v", w.clock.Now().Format(time.RFC3339), err)
	}
	for _, r := range rep.Results {
		fmt.Fprintf(&w.output, "%s %s %d→%d %s %s %s %v %v\n", r.Rollout, r.Decision, r.From, r.To, r.Effect,
			r.Commit, r.Proposal, r.Reasons, r.Err)
	}
	return rep
}

// result returns the one result of a rollout in rep, failing the test when it has an error.
// failedResult returns rollout name's result of rep, failing the test unless it has an error.
func (w *world) failedResult(rep *reconcile.Report, name string) reconcile.Result {
	w.t.Helper()
	for _, r := range rep.Results {
		if r.Rollout == name {
			if r.Err == nil {
				w.t.Fatalf("rollout %s at %s: no error (effect %q)", name, w.clock.Now().Format(time.RFC3339), r.Effect)
			}
			return r
		}
	}
	w.t.Fatalf("no result for rollout %s in %+v", name, rep.Results)
	return reconcile.Result{}
}

func (w *world) result(rep *reconcile.Report, name string) reconcile.Result {
	w.t.Helper()
	for _, r := range rep.Results {
		if r.Rollout == name {
			if r.Err != nil {
				w.t.Fatalf("rollout %s at %s: %v (effect %q)", name, w.clock.Now().Format(time.RFC3339), r.Err, r.Effect)
			}
			return r
		}
	}
	w.t.Fatalf("no result for rollout %s in %+v", name, rep.Results)
	return reconcile.Result{}
}

// assertNoSecrets fails the test when a secret shows in anything the loop said or wrote: reports,
// errors, logs, pull requests, comments, or commit messages.
func (w *world) assertNoSecrets() {
	w.t.Helper()
	var all strings.Builder
	all.WriteString(w.output.String())
	all.WriteString(w.logs.String())
	for _, p := range w.srv.Pulls() {
		all.WriteString(p.Title + p.Body + strings.Join(p.CommentBodies, "\n"))
	}
	all.WriteString(w.gitOut(w.bare, "log", "--all", "--format=%H %an %ae%n%B"))
	for _, secret := range w.secrets {
		if strings.Contains(all.String(), secret) {
			w.t.Errorf("a secret (%.12s…) appears in the loop's output, logs, pull requests or commits", secret)
		}
	}
}

// Traffic.

// traffic appends request records of rollout to its JSONL file, evenly spread over [from, to): n/2 on
// the canary and as many on stable as the weight the default branch holds makes them (the judge checks
// that split: a sample-ratio mismatch holds the rollout), or share% on the canary where main holds no
// weight between 0 and 100. The seed makes the records the same every run.
func (w *world) traffic(rollout string, from, to time.Time, n, share int, canary synth.Profile, seed int64) {
	w.t.Helper()
	if head := w.head("main"); head != "" {
		if f, err := w.commit(head).File("rollouts/" + rollout + ".yaml"); err == nil {
			if src, err := f.Contents(); err == nil {
				if spec, _ := rollouts.Parse(f.Name, []byte(src)); spec != nil && spec.Traffic.Weight > 0 && spec.Traffic.Weight < 100 {
					share = spec.Traffic.Weight
					n = n / 2 * 100 / share
				}
			}
		}
	}
	path := filepath.Join(w.dir, "traffic", rollout+".jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		w.t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	// The users (1,000) are routed by a spec at share%: policy/source/synth draws n requests on average.
	spec := synth.Spec(rollout, from)
	spec.Traffic.Weight = share
	opts := synth.Options{Seed: uint64(seed), From: from, To: to, PerHour: float64(n) / to.Sub(from).Hours(),
		Stable: stableArm(), Canary: canary}
	if err := synth.WriteJSONL(f, spec, opts); err != nil {
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
}

// stableArm fails 3% of its requests, within the specs' absolute limit of 5%.
func stableArm() synth.Profile {
	p := synth.DefaultProfile("claude-sonnet-4-5-20260301")
	p.ErrorRate = 0.03
	return p
}

// healthyCanary behaves as the stable arm does.
func healthyCanary() synth.Profile {
	p := stableArm()
	p.Model = "claude-sonnet-4-5-20260415"
	return p
}

// brokenCanary fails a quarter of its requests.
func brokenCanary() synth.Profile {
	p := healthyCanary()
	p.ErrorRate = 0.25
	return p
}

// The humans' side: the git CLI, authenticated with the token as a developer's credential would be.

func (w *world) gitOut(dir string, args ...string) string {
	w.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+w.t.TempDir(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("git %s: %v\n%s", args[0], err, strings.ReplaceAll(string(out), token, "[token]"))
	}
	return strings.TrimSpace(string(out))
}

// clone makes a developer's checkout of the repository.
func (w *world) clone() string {
	w.t.Helper()
	work := w.t.TempDir()
	authed := strings.Replace(w.cloneURL, "http://", "http://x-access-token:"+token+"@", 1)
	w.gitOut(work, "clone", "--quiet", authed, ".")
	w.gitOut(work, "config", "user.name", "Alice")
	w.gitOut(work, "config", "user.email", alice)
	return work
}

// humanCommit writes files in a checkout on branch (created from main when new), commits them as
// Alice and pushes the branch.
func (w *world) humanCommit(branch string, files map[string]string, msg string) string {
	w.t.Helper()
	work := w.clone()
	if w.gitOut(work, "ls-remote", "--heads", "origin", branch) != "" {
		w.gitOut(work, "checkout", "--quiet", branch)
	} else {
		w.gitOut(work, "checkout", "--quiet", "-b", branch)
	}
	for path, content := range files {
		full := filepath.Join(work, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
	w.gitOut(work, "add", "-A")
	w.gitOut(work, "commit", "--quiet", "-m", msg)
	w.gitOut(work, "push", "--quiet", "origin", branch)
	return w.gitOut(work, "rev-parse", "HEAD")
}

// mergeSpecPR opens a pull request from branch as Alice and merges it through GitHub's merge endpoint,
// as the merge button does.
func (w *world) mergeSpecPR(branch, title string) int {
	w.t.Helper()
	n := w.srv.AddPull(branch, "main", title, "Starting the canary.", "alice")
	w.srv.SetMergeable(n, true, "clean")
	w.restMerge(n)
	return n
}

// restMerge calls PUT /repos/{owner}/{repo}/pulls/{n}/merge with the token, as the merge button does.
func (w *world) restMerge(n int) {
	w.t.Helper()
	if _, _, err := w.apiClient().PullRequests.Merge(w.ctx, owner, repoName, n, "", &github.PullRequestOptions{MergeMethod: "merge"}); err != nil {
		w.t.Fatalf("merge #%d: %v", n, err)
	}
}

// apiClient is a go-github client of the fake GitHub with the token, as a developer's would be.
func (w *world) apiClient() *github.Client {
	w.t.Helper()
	client := github.NewClient(nil).WithAuthToken(token)
	base, err := url.Parse(w.srv.APIURL())
	if err != nil {
		w.t.Fatal(err)
	}
	client.BaseURL = base
	return client
}

// Reads of the server's bare repository, with go-git.

func (w *world) repo() *git.Repository {
	w.t.Helper()
	r, err := git.PlainOpen(w.bare)
	if err != nil {
		w.t.Fatalf("open the bare repository: %v", err)
	}
	return r
}

// head is the commit a branch of the server points at, "" when the branch does not exist.
func (w *world) head(branch string) string {
	w.t.Helper()
	ref, err := w.repo().Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return ""
	}
	return ref.Hash().String()
}

// commit reads one commit.
func (w *world) commit(hash string) *object.Commit {
	w.t.Helper()
	c, err := w.repo().CommitObject(plumbing.NewHash(hash))
	if err != nil {
		w.t.Fatalf("read commit %s: %v", hash, err)
	}
	return c
}

// file reads a file as of a commit.
func (w *world) file(hash, path string) string {
	w.t.Helper()
	f, err := w.commit(hash).File(path)
	if err != nil {
		w.t.Fatalf("read %s at %s: %v", path, hash, err)
	}
	s, err := f.Contents()
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// spec parses a spec file as of a commit.
func (w *world) spec(hash, path string) *rollouts.Spec {
	w.t.Helper()
	s, problems := rollouts.Parse(path, []byte(w.file(hash, path)))
	if len(problems) > 0 || s == nil {
		w.t.Fatalf("%s at %s: %v", path, hash, problems)
	}
	return s
}

// firstParents lists main's commits newest first, along first parents, down to (not including) stop.
func (w *world) firstParents(stop string) []*object.Commit {
	w.t.Helper()
	var out []*object.Commit
	for h := w.head("main"); h != "" && h != stop; {
		c := w.commit(h)
		out = append(out, c)
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0].String()
	}
	return out
}

// changedFiles lists the paths a commit changes against its first parent.
func (w *world) changedFiles(c *object.Commit) []string {
	w.t.Helper()
	parent, err := c.Parent(0)
	if err != nil {
		w.t.Fatal(err)
	}
	patch, err := parent.Patch(c)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, fp := range patch.FilePatches() {
		from, to := fp.Files()
		switch {
		case to != nil:
			out = append(out, to.Path())
		case from != nil:
			out = append(out, from.Path())
		}
	}
	return out
}

// pull returns one pull request of the fake GitHub.
func (w *world) pull(n int) githubtest.PullRequest {
	w.t.Helper()
	p, ok := w.srv.Pull(n)
	if !ok {
		w.t.Fatalf("no pull request #%d", n)
	}
	return p
}

// botPulls lists the pull requests from rollout/<name>.
func (w *world) botPulls(name string) []githubtest.PullRequest {
	var out []githubtest.PullRequest
	for _, p := range w.srv.Pulls() {
		if p.Head == reconcile.BranchFor(name) {
			out = append(out, p)
		}
	}
	return out
}

// listPulls is the one API call of a tick that changes nothing.
const listPulls = "GET /repos/{owner}/{repo}/pulls"

// apiCalls keeps the REST and GraphQL calls of a call count, leaving out git's smart-HTTP requests.
func apiCalls(calls map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range calls {
		if !strings.HasPrefix(k, "GIT ") {
			out[k] = v
		}
	}
	return out
}

// gitCalls keeps git's smart-HTTP requests of a call count.
func gitCalls(calls map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range calls {
		if strings.HasPrefix(k, "GIT ") {
			out[k] = v
		}
	}
	return out
}

// events returns the events the rollback webhook received.
func (w *world) events() []reconcile.Event {
	w.hookMu.Lock()
	defer w.hookMu.Unlock()
	return append([]reconcile.Event(nil), w.hooks...)
}

// diffLines returns the lines a commit removes and adds against its first parent.
func (w *world) diffLines(c *object.Commit) (removed, added []string) {
	w.t.Helper()
	parent, err := c.Parent(0)
	if err != nil {
		w.t.Fatal(err)
	}
	patch, err := parent.Patch(c)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, fp := range patch.FilePatches() {
		for _, ch := range fp.Chunks() {
			lines := strings.SplitAfter(ch.Content(), "\n")
			for _, l := range lines {
				if l == "" {
					continue
				}
				switch ch.Type() {
				case diff.Delete:
					removed = append(removed, strings.TrimSuffix(l, "\n"))
				case diff.Add:
					added = append(added, strings.TrimSuffix(l, "\n"))
				}
			}
		}
	}
	return removed, added
}
