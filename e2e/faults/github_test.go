package faults

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/internal/syncbuf"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
)

const (
	ghOwner  = "acme"
	ghRepo   = "models"
	ghToken  = "ghs_TOPSECRETtokenVALUE0123456789"
	botEmail = "rollout-bot@users.noreply.github.com"
)

// github is a world whose remote is the GitHub test server: its REST API and its git over smart HTTP.
type github struct {
	*world
	gh       *githubtest.Server
	cloneURL string

	mu     sync.Mutex
	sleeps []time.Duration
}

func newGitHub(t *testing.T, files map[string]string) *github {
	t.Helper()
	g := &github{world: &world{t: t, traffic: t.TempDir(), hook: newWebhook(t), logs: &syncbuf.Buffer{}, now: t0.Add(2 * time.Hour)}}
	g.gh = githubtest.New(t, ghOwner, ghRepo, g.clock)
	g.gh.Token = ghToken
	g.gh.Logins = map[string]string{botEmail: "rollout-bot[bot]"}
	g.bare, g.cloneURL = g.gh.EnableGit(files)
	g.url = g.cloneURL
	return g
}

// sleep is the forge's backoff: it records the wait instead of waiting.
func (g *github) sleep(ctx context.Context, d time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sleeps = append(g.sleeps, d)
	return ctx.Err()
}

func (g *github) waited() []time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sleeps)
}

// process is one `rollout reconcile` run in GitHub Actions: a go-git remote with the token, and the
// go-github forge.
func (g *github) process() *reconcile.Loop {
	g.t.Helper()
	r := g.remote(gitrepo.Options{Auth: gitrepo.TokenAuth(ghToken), AuthorEmail: botEmail})
	f, err := githubforge.New(githubforge.Options{Owner: ghOwner, Repo: ghRepo, APIURL: g.gh.APIURL(), Token: ghToken,
		BotLogin: "rollout-bot[bot]", BotEmail: botEmail, Now: g.clock, Sleep: g.sleep, WriteGap: -1})
	if err != nil {
		g.t.Fatal(err)
	}
	return g.loop(r, f)
}

// advanced ticks a healthy stage-0 rollout into its advance pull request and returns it.
func (g *github) advanced(name string) githubtest.PullRequest {
	g.t.Helper()
	g.writeTraffic(name, 0.01)
	res := result(g.t, tick(g.t, g.process()), name)
	if res.Decision != policy.Advance || res.Err != nil || res.Proposal == "" {
		g.t.Fatalf("advance: %+v", res)
	}
	pulls := g.gh.Pulls()
	if len(pulls) != 1 || pulls[0].State != "open" {
		g.t.Fatalf("pulls = %+v", pulls)
	}
	return pulls[0]
}

// pass runs one pass of the process, which must not fail for rollout name, and returns pull request
// number as GitHub then holds it, with name's result.
func (g *github) pass(name string, number int) (githubtest.PullRequest, reconcile.Result) {
	g.t.Helper()
	res := result(g.t, tick(g.t, g.process()), name)
	if res.Err != nil {
		g.t.Fatalf("tick: %v", res.Err)
	}
	p, _ := g.gh.Pull(number)
	return p, res
}

// head is the commit a branch points at in the repository behind GitHub, "" if none.
func (g *github) head(branch string) string {
	out, err := gittest.RunGit(g.bare, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	if err != nil {
		return ""
	}
	return out
}

// TestKilledBetweenPushAndPullRequest: the bot pushed rollout/summarizer, then GitHub failed every try
// to open the pull request (as if the process died right after the push). The next run finds the bot's
// branch, opens exactly one pull request for it, and a third run changes nothing.
func TestKilledBetweenPushAndPullRequest(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.01)
	g.gh.FailRoute("POST /repos/{owner}/{repo}/pulls", 20, githubtest.Fault{Status: 502})
	res := result(t, tick(t, g.process()), "summarizer")
	if res.Decision != policy.Advance || res.Err == nil || !errors.Is(res.Err, reconcile.ErrTransient) {
		t.Fatalf("advance with pull requests failing: %+v", res)
	}
	branch := g.head("rollout/summarizer")
	if branch == "" || len(g.gh.Pulls()) != 0 {
		t.Fatalf("after the failed run: branch %q, pulls %+v", branch, g.gh.Pulls())
	}
	// GitHub is back; a fresh process runs.
	g.gh.Heal()
	res = result(t, tick(t, g.process()), "summarizer")
	if res.Err != nil || res.Proposal == "" {
		t.Fatalf("the next run: %+v", res)
	}
	pulls := g.gh.Pulls()
	if len(pulls) != 1 || pulls[0].Head != "rollout/summarizer" || pulls[0].Title != "rollout(summarizer): 5% → 25%" {
		t.Fatalf("pulls = %+v, want one", pulls)
	}
	if n := g.git("rev-list", "--count", "main..rollout/summarizer"); n != "1" {
		t.Errorf("bot branch holds %s commits over main, want 1", n)
	}
	head := g.head("rollout/summarizer")
	res = result(t, tick(t, g.process()), "summarizer")
	if res.Err != nil || res.Commit != "" || len(g.gh.Pulls()) != 1 || g.head("rollout/summarizer") != head {
		t.Fatalf("a third run wrote: %+v, pulls %+v", res, g.gh.Pulls())
	}
}

// TestPullRequestCreatedButAnswerLost: GitHub opened the pull request but the bot never saw the answer
// (the forge errs after the real call). The next run finds the open pull request and does not open a
// second one.
func TestPullRequestCreatedButAnswerLost(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.01)
	l := g.process()
	l.Forge = &lostAnswer{Forge: l.Forge}
	res := result(t, tick(t, l), "summarizer")
	if res.Err == nil || len(g.gh.Pulls()) != 1 {
		t.Fatalf("first run: %+v, pulls %+v", res, g.gh.Pulls())
	}
	for range 2 {
		res = result(t, tick(t, g.process()), "summarizer")
		if res.Err != nil {
			t.Fatalf("next run: %+v", res)
		}
	}
	if pulls := g.gh.Pulls(); len(pulls) != 1 {
		t.Fatalf("pulls = %+v, want exactly one", pulls)
	}
	if n := g.git("rev-list", "--count", "main..rollout/summarizer"); n != "1" {
		t.Errorf("bot branch holds %s commits over main, want 1", n)
	}
}

// lostAnswer is a forge whose first Propose reaches GitHub but whose answer is lost.
type lostAnswer struct {
	reconcile.Forge
	once sync.Once
}

func (f *lostAnswer) Propose(ctx context.Context, req reconcile.ProposalRequest) (reconcile.Proposal, error) {
	p, err := f.Forge.Propose(ctx, req)
	lost := false
	f.once.Do(func() { lost = true })
	if lost && err == nil {
		return reconcile.Proposal{}, errors.New("connection reset by peer")
	}
	return p, err
}

// TestGitHubFaultsBackOffThenComplete: GitHub answers 500, 502, a 403 secondary rate limit and a 429
// with Retry-After to the rollback's calls. The forge waits (Retry-After honoured) and completes: the
// rollback commit is on main, the pull request is closed with a comment naming it.
func TestGitHubFaultsBackOffThenComplete(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	pr := g.advanced("summarizer")
	g.writeTraffic("summarizer", 0.30)
	g.gh.Fail(1, githubtest.Fault{Status: 500})
	g.gh.Fail(1, githubtest.Fault{Status: 502})
	g.gh.Fail(1, githubtest.Fault{Status: 403, Secondary: true, RetryAfter: 60})
	g.gh.Fail(1, githubtest.Fault{Status: 429, RetryAfter: 7})
	g.gh.FailRoute("POST /repos/{owner}/{repo}/issues/{number}/comments", 1, githubtest.Fault{Status: 502})
	res := result(t, tick(t, g.process()), "summarizer")
	if res.Decision != policy.Rollback || res.Err != nil || res.Commit == "" {
		t.Fatalf("rollback through GitHub faults: %+v", res)
	}
	if g.head("main") != res.Commit {
		t.Errorf("main = %s, want the rollback %s", g.head("main"), res.Commit)
	}
	closed, _ := g.gh.Pull(pr.Number)
	if closed.State != "closed" || len(closed.CommentBodies) != 1 || !strings.Contains(closed.CommentBodies[0], res.Commit) {
		t.Errorf("pull request after the rollback: %+v", closed)
	}
	waits := g.waited()
	if !slices.Contains(waits, 60*time.Second) || !slices.Contains(waits, 7*time.Second) || len(waits) < 5 {
		t.Errorf("waits = %v, want a backoff per fault with Retry-After 60s and 7s honoured", waits)
	}
}

// TestRollbackNeverLostToGitHub: GitHub's API is down for the whole run (every call 502, so the open
// pull requests cannot even be listed). The rollback commit still lands on main, over git, and notifies;
// the next run, with GitHub back, closes the pull request and commits nothing more.
func TestRollbackNeverLostToGitHub(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	pr := g.advanced("summarizer")
	g.writeTraffic("summarizer", 0.30)
	g.gh.Fail(200, githubtest.Fault{Status: 502})
	res := result(t, tick(t, g.process()), "summarizer")
	if res.Decision != policy.Rollback || res.Commit == "" || g.head("main") != res.Commit {
		t.Fatalf("rollback with GitHub's API down: %+v", res)
	}
	if evs := g.hook.received(); len(evs) != 1 || evs[0].Decision != "rollback" {
		t.Errorf("notifications = %+v", evs)
	}
	g.gh.Heal()
	res = result(t, tick(t, g.process()), "summarizer")
	if res.Err != nil || res.Commit != "" {
		t.Fatalf("next run: %+v", res)
	}
	if p, _ := g.gh.Pull(pr.Number); p.State != "closed" {
		t.Errorf("pull request still %s", p.State)
	}
	if got := g.subjects("main"); len(got) != 2 {
		t.Errorf("main = %q, want one rollback commit over the initial one", got)
	}
}

// TestTwoProcessesAdvanceAtOnce: two runs on GitHub advance the same rollout at the same moment, both
// having listed the pull requests and fetched before either pushes. Exactly one pull request is opened,
// the bot branch holds one commit over main, and main is untouched.
func TestTwoProcessesAdvanceAtOnce(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.01)
	main := g.head("main")
	var ready sync.WaitGroup
	ready.Add(2)
	loops := make([]*reconcile.Loop, 2)
	for i := range loops {
		loops[i] = g.process()
		loops[i].Repo = &pushHook{Repository: loops[i].Repo, before: func(reconcile.PushRequest) { ready.Done(); ready.Wait() }}
	}
	var wg sync.WaitGroup
	reps := make([]*reconcile.Report, 2)
	errs := make([]error, 2)
	for i, l := range loops {
		wg.Go(func() { reps[i], errs[i] = l.Tick(context.Background()) })
	}
	wg.Wait()
	for i, rep := range reps {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		if res := result(t, rep, "summarizer"); res.Decision != policy.Advance || res.Err != nil {
			t.Errorf("process %d: %+v", i, res)
		}
	}
	if pulls := g.gh.Pulls(); len(pulls) != 1 {
		t.Fatalf("pulls = %+v, want exactly one", pulls)
	}
	if n := g.git("rev-list", "--count", "main..rollout/summarizer"); n != "1" {
		t.Errorf("bot branch holds %s commits over main, want 1", n)
	}
	if g.head("main") != main {
		t.Errorf("an advance moved main")
	}
}
