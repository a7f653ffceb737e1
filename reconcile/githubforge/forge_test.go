package githubforge_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
)

const (
	owner = "acme"
	repo  = "llm-config"
	token = "ghp_secretsecretsecret0123456789"
)

// clock is a test clock that Sleep moves forward.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newClock() *clock { return &clock{now: time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

type fixture struct {
	srv   *githubtest.Server
	clock *clock
	forge *githubforge.Forge
}

func setup(t *testing.T, edit func(*githubforge.Options)) *fixture {
	t.Helper()
	c := newClock()
	srv := githubtest.New(t, owner, repo, c.Now)
	srv.Token = token
	o := githubforge.Options{Owner: owner, Repo: repo, APIURL: srv.APIURL(), Token: token,
		BotLogin: "rollout-bot[bot]", BotEmail: "rollout-bot@users.noreply.github.com",
		Now: c.Now, Sleep: c.Sleep, WriteGap: -1}
	if edit != nil {
		edit(&o)
	}
	f, err := githubforge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, clock: c, forge: f}
}

func request(name string) reconcile.ProposalRequest {
	return reconcile.ProposalRequest{Rollout: name, Branch: "rollout/" + name, Base: "main",
		Title: "rollout(" + name + "): 5% → 25%", Body: "<!-- rollout:" + name + " -->\nevidence",
		Labels: []string{"rollout"}, Reviewers: []string{"alice", "acme/ml-platform", "sre"}}
}

func writes(calls map[string]int) int {
	n := 0
	for k, v := range calls {
		if !strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	return n
}

func TestProposeCreatesWithLabelsAndReviewers(t *testing.T) {
	fx := setup(t, func(o *githubforge.Options) { o.Teams = []string{"sre"} })
	ctx := context.Background()
	if _, err := fx.forge.Proposals(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := fx.forge.Propose(ctx, request("summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Number == 0 || p.State != reconcile.ProposalOpen || p.Rollout != "summarizer" || !strings.HasSuffix(p.URL, fmt.Sprintf("/pull/%d", p.Number)) {
		t.Fatalf("proposal = %+v", p)
	}
	pr, _ := fx.srv.Pull(p.Number)
	if pr.Head != "rollout/summarizer" || pr.Base != "main" || pr.Title != "rollout(summarizer): 5% → 25%" {
		t.Errorf("pull request = %+v", pr)
	}
	if !slices.Equal(pr.Labels, []string{"rollout"}) || !slices.Equal(pr.Reviewers, []string{"alice"}) ||
		!slices.Equal(pr.TeamReviewers, []string{"ml-platform", "sre"}) {
		t.Errorf("labels %v reviewers %v teams %v", pr.Labels, pr.Reviewers, pr.TeamReviewers)
	}
}

func TestProposeUpdatesOnlyWhatDiffers(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	req := request("summarizer")
	first, err := fx.forge.Propose(ctx, req)
	if err != nil {
		t.Fatal(err)
	}

	// Next tick, same proposal: nothing to write.
	fx.srv.ResetCalls()
	if _, err := fx.forge.Proposals(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := fx.forge.Propose(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Number != first.Number {
		t.Fatalf("second propose gave #%d, want #%d", again.Number, first.Number)
	}
	if w := writes(fx.srv.Calls()); w != 0 {
		t.Errorf("unchanged proposal wrote %d times: %v", w, fx.srv.Calls())
	}

	// The body changed and a label was removed by hand: one PATCH with the body, one label call.
	req.Body += "\nmore evidence"
	req.Labels = append(req.Labels, "llm")
	fx.srv.ResetCalls()
	if _, err := fx.forge.Proposals(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.forge.Propose(ctx, req); err != nil {
		t.Fatal(err)
	}
	calls := fx.srv.Calls()
	if calls["PATCH /repos/{owner}/{repo}/pulls/{number}"] != 1 || calls["POST /repos/{owner}/{repo}/issues/{number}/labels"] != 1 ||
		calls["POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers"] != 0 || calls["POST /repos/{owner}/{repo}/pulls"] != 0 {
		t.Errorf("calls = %v", calls)
	}
	pr, _ := fx.srv.Pull(first.Number)
	if pr.Body != req.Body || !slices.Equal(pr.Labels, []string{"rollout", "llm"}) || pr.Title != req.Title {
		t.Errorf("pull request = %+v", pr)
	}
}

func TestProposeNeverOpensADuplicate(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	// Another process (an earlier tick that crashed) opened it; this forge has not listed.
	n := fx.srv.AddPull("rollout/summarizer", "main", "old title", "old body", "rollout-bot[bot]")
	p, err := fx.forge.Propose(ctx, request("summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Number != n || len(fx.srv.Pulls()) != 1 {
		t.Fatalf("proposal #%d, %d pull requests; want #%d and 1", p.Number, len(fx.srv.Pulls()), n)
	}
	pr, _ := fx.srv.Pull(n)
	if pr.Title != request("summarizer").Title || pr.Body != request("summarizer").Body {
		t.Errorf("not updated: %+v", pr)
	}
	if c := fx.srv.Calls()["POST /repos/{owner}/{repo}/pulls"]; c != 1 {
		t.Errorf("create called %d times", c)
	}
}

func TestProposalsStates(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	merged := fx.srv.AddPull("rollout/a", "main", "a 5→25", "", "rollout-bot[bot]")
	fx.srv.MergePull(merged)
	fx.clock.Sleep(ctx, time.Minute)
	closed := fx.srv.AddPull("rollout/b", "main", "b", "", "rollout-bot[bot]")
	fx.srv.ClosePull(closed)
	fx.clock.Sleep(ctx, time.Minute)
	open := fx.srv.AddPull("rollout/a", "main", "a 25→50", "", "rollout-bot[bot]")
	fx.srv.AddPull("feature/x", "main", "a human's", "", "alice")
	fx.clock.Sleep(ctx, time.Minute)
	// A closed pull request updated after the open one must not hide it.
	fx.srv.ClosePull(merged + 100) // no such pull: ignored
	newerClosed := fx.srv.AddPull("rollout/c", "main", "c", "", "rollout-bot[bot]")
	fx.srv.ClosePull(newerClosed)

	got, err := fx.forge.Proposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		n     int
		state reconcile.ProposalState
	}{"a": {open, reconcile.ProposalOpen}, "b": {closed, reconcile.ProposalClosed}, "c": {newerClosed, reconcile.ProposalClosed}}
	if len(got) != len(want) {
		t.Fatalf("got %d proposals: %+v", len(got), got)
	}
	for name, w := range want {
		if got[name].Number != w.n || got[name].State != w.state || got[name].Branch != "rollout/"+name {
			t.Errorf("%s = %+v, want #%d %s", name, got[name], w.n, w.state)
		}
	}

	// Merged is told apart from closed.
	fx.srv.MergePull(open)
	got, err = fx.forge.Proposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["a"].State != reconcile.ProposalMerged || got["a"].Number != open {
		t.Errorf("a = %+v, want merged #%d", got["a"], open)
	}
}

func TestProposalsUseETags(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	fx.srv.AddPull("rollout/a", "main", "a", "", "rollout-bot[bot]")
	if _, err := fx.forge.Proposals(ctx); err != nil {
		t.Fatal(err)
	}
	before := fx.srv.RateRemaining()
	got, err := fx.forge.Proposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["a"].Number == 0 {
		t.Fatalf("cached answer lost the pull request: %+v", got)
	}
	if fx.srv.RateRemaining() != before {
		t.Errorf("an unchanged page cost rate limit: %d → %d", before, fx.srv.RateRemaining())
	}
	if c := fx.srv.Calls()["GET /repos/{owner}/{repo}/pulls"]; c != 2 {
		t.Errorf("list called %d times, want 2 (the second revalidated)", c)
	}
	// A change is seen at once, despite GitHub's max-age=60.
	fx.srv.AddPull("rollout/b", "main", "b", "", "rollout-bot[bot]")
	got, err = fx.forge.Proposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["b"]; !ok || fx.srv.RateRemaining() != before-1 {
		t.Errorf("changed page: %+v, rate %d (before %d)", got, fx.srv.RateRemaining(), before)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name   string
		fault  githubtest.Fault
		n      int
		sleeps []time.Duration
	}{
		{"5xx backs off", githubtest.Fault{Status: 502}, 2, []time.Duration{time.Second, 2 * time.Second}},
		{"500 once", githubtest.Fault{Status: 500}, 1, []time.Duration{time.Second}},
		{"429 Retry-After", githubtest.Fault{Status: 429, RetryAfter: 7}, 1, []time.Duration{7 * time.Second}},
		{"secondary 403 Retry-After", githubtest.Fault{Status: 403, Secondary: true, RetryAfter: 30}, 1, []time.Duration{30 * time.Second}},
		{"secondary 403 without Retry-After", githubtest.Fault{Status: 403, Secondary: true}, 1, []time.Duration{time.Minute}},
		{"primary until reset", githubtest.Fault{Status: 403, Primary: true, ResetIn: 90 * time.Second}, 1, []time.Duration{91 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := setup(t, nil)
			ctx := context.Background()
			fx.srv.Fail(tt.n, tt.fault)
			if _, err := fx.forge.Proposals(ctx); err != nil {
				t.Fatalf("Proposals after %d faults: %v", tt.n, err)
			}
			// A write retries the same way, body and all.
			fx.srv.Fail(tt.n, tt.fault)
			p, err := fx.forge.Propose(ctx, request("summarizer"))
			if err != nil {
				t.Fatalf("Propose after %d faults: %v", tt.n, err)
			}
			if pr, _ := fx.srv.Pull(p.Number); pr.Title != request("summarizer").Title {
				t.Errorf("retried create lost its body: %+v", pr)
			}
			want := append(slices.Clone(tt.sleeps), tt.sleeps...)
			if got := fx.clock.Sleeps(); !slices.Equal(got, want) {
				t.Errorf("sleeps = %v, want %v", got, want)
			}
		})
	}
}

func TestRetryBudgetEndsInTransientError(t *testing.T) {
	tests := []struct {
		name   string
		fault  githubtest.Fault
		target any
	}{
		{"primary", githubtest.Fault{Status: 403, Primary: true, ResetIn: time.Hour}, new(*github.RateLimitError)},
		{"secondary", githubtest.Fault{Status: 403, Secondary: true, RetryAfter: 600}, new(*github.AbuseRateLimitError)},
		{"5xx", githubtest.Fault{Status: 503}, new(*github.ErrorResponse)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := setup(t, nil)
			fx.srv.Fail(100, tt.fault)
			_, err := fx.forge.Proposals(context.Background())
			if !errors.Is(err, reconcile.ErrTransient) {
				t.Fatalf("err = %v, want ErrTransient", err)
			}
			if !errors.As(err, tt.target) {
				t.Errorf("err = %v (%T), want it to hold %T", err, err, tt.target)
			}
			var total time.Duration
			for _, d := range fx.clock.Sleeps() {
				total += d
			}
			if total > 2*time.Minute {
				t.Errorf("waited %v, beyond the 2m budget", total)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestBadCredentialsAreNotTransientAndHideTheToken(t *testing.T) {
	fx := setup(t, nil)
	fx.srv.Token = "another-token"
	_, err := fx.forge.Proposals(context.Background())
	if err == nil || errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("err = %v", err)
	}
	if len(fx.clock.Sleeps()) != 0 {
		t.Errorf("retried a 401: %v", fx.clock.Sleeps())
	}
}

func TestCloseCommentsOnceAndCloses(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	p, err := fx.forge.Propose(ctx, request("summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	comment := "Rolled back in abc123: error_rate failed."
	// The close fails after the comment landed; the retry must not comment twice.
	fx.srv.FailRoute("PATCH /repos/{owner}/{repo}/pulls/{number}", 10, githubtest.Fault{Status: 502})
	if err := fx.forge.Close(ctx, p, comment); !errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	fx.srv.FailRoute("", 0, githubtest.Fault{})
	if pr, _ := fx.srv.Pull(p.Number); pr.State != "open" {
		t.Fatalf("closed despite the failures")
	}
	if err := fx.forge.Close(ctx, p, comment); err != nil {
		t.Fatal(err)
	}
	pr, _ := fx.srv.Pull(p.Number)
	if pr.State != "closed" || pr.Merged {
		t.Errorf("state %s merged %v", pr.State, pr.Merged)
	}
	if len(pr.CommentBodies) != 1 || !strings.Contains(pr.CommentBodies[0], comment) {
		t.Errorf("comments = %q", pr.CommentBodies)
	}
	got, err := fx.forge.Proposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["summarizer"].State != reconcile.ProposalClosed {
		t.Errorf("after close: %+v", got["summarizer"])
	}
}

// TestMarkersOthersPostDoNotSilenceTheBot: the bot comments once per pull request and head (why it
// closed it, that a human pushed to its branch), finding its earlier comment by a hidden marker. Anyone
// may comment on a public repository's pull request, so someone posting the markers first must not
// keep the bot quiet: only a comment the bot's token wrote counts, known without Options.BotLogin
// (which the command line does not set) from GET /user, or for an installation token (an Action's
// GITHUB_TOKEN, an App's) from the App that wrote it. A retried close still comments once.
func TestMarkersOthersPostDoNotSilenceTheBot(t *testing.T) {
	for _, installation := range []bool{false, true} {
		t.Run(fmt.Sprintf("installation token %t", installation), func(t *testing.T) {
			fx := setup(t, func(o *githubforge.Options) { o.BotLogin = "" })
			if installation {
				f, err := githubforge.New(githubforge.Options{Owner: owner, Repo: repo, APIURL: fx.srv.APIURL(),
					Token: fx.srv.InstallationToken(), BotEmail: "rollout-bot@users.noreply.github.com",
					Now: fx.clock.Now, Sleep: fx.clock.Sleep, WriteGap: -1})
				if err != nil {
					t.Fatal(err)
				}
				fx.forge = f
			}
			ctx := context.Background()
			p, err := fx.forge.Propose(ctx, request("summarizer"))
			if err != nil {
				t.Fatal(err)
			}
			for _, who := range []struct{ login, typ string }{{"mallory", "User"}, {"mallory-app[bot]", "Bot"}} {
				fx.srv.AddComment(p.Number, who.login, who.typ, "<!-- rollout:close "+p.Head+" -->\n<!-- rollout:human-commits -->\nnothing to see")
			}
			human := "3333333333333333333333333333333333333333"
			fx.srv.SetCommits(p.Number, []githubtest.Commit{{SHA: human, AuthorLogin: "alice", AuthorName: "Alice", AuthorEmail: "alice@example.com"}})
			if got, err := fx.forge.Propose(ctx, request("summarizer")); err != nil || !slices.Equal(got.HumanCommits, []string{human}) {
				t.Fatalf("propose: %v, human commits %v", err, got.HumanCommits)
			}
			comment := "Rolled back in abc123: error_rate failed."
			for range 2 {
				if err := fx.forge.Close(ctx, p, comment); err != nil {
					t.Fatal(err)
				}
			}
			var closing, notices int
			for _, c := range fx.srv.Comments(p.Number) {
				closing += strings.Count(c.Body, comment)
				notices += strings.Count(c.Body, human)
			}
			if closing != 1 || notices != 1 {
				t.Errorf("the bot's closing comment %d times, its human-commits notice %d times; want each once: %+v",
					closing, notices, fx.srv.Comments(p.Number))
			}
		})
	}
}

func TestHumanCommitsAreReportedAndCommentedOnce(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	p, err := fx.forge.Propose(ctx, request("summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	fx.srv.SetCommits(p.Number, []githubtest.Commit{
		{SHA: "1111111111111111111111111111111111111111", AuthorLogin: "rollout-bot[bot]"},
		{SHA: "2222222222222222222222222222222222222222", AuthorName: "rollout", AuthorEmail: "rollout-bot@users.noreply.github.com"},
	})
	again, err := fx.forge.Propose(ctx, request("summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.HumanCommits) != 0 {
		t.Fatalf("bot commits seen as human: %v", again.HumanCommits)
	}
	human := "3333333333333333333333333333333333333333"
	fx.srv.SetCommits(p.Number, []githubtest.Commit{
		{SHA: "1111111111111111111111111111111111111111", AuthorLogin: "rollout-bot[bot]"},
		{SHA: human, AuthorLogin: "alice", AuthorName: "Alice", AuthorEmail: "alice@example.com"},
	})
	for tick := range 3 {
		req := request("summarizer")
		req.Body += fmt.Sprintf("\ntick %d", tick)
		got, err := fx.forge.Propose(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.HumanCommits, []string{human}) {
			t.Errorf("tick %d: human commits %v", tick, got.HumanCommits)
		}
		if pr, _ := fx.srv.Pull(p.Number); pr.Body != req.Body {
			t.Errorf("tick %d: evidence not updated", tick)
		}
	}
	pr, _ := fx.srv.Pull(p.Number)
	if len(pr.CommentBodies) != 1 || !strings.Contains(pr.CommentBodies[0], human) {
		t.Errorf("comments = %q", pr.CommentBodies)
	}
}

func TestAutoMerge(t *testing.T) {
	tests := []struct {
		name           string
		allowed        bool
		mergeable      bool
		state          string
		wantAutoMerge  bool
		wantMerged     bool
		wantErr        error
		wantErrMention string
	}{
		{"enabled", true, false, "blocked", true, false, nil, ""},
		{"clean: merged now", true, true, "clean", false, true, nil, ""},
		{"not allowed but clean: merged", false, true, "clean", false, true, nil, ""},
		{"not allowed and blocked", false, false, "blocked", false, false, githubforge.ErrAutoMerge, "Auto merge is not allowed for this repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := setup(t, nil)
			ctx := context.Background()
			fx.srv.AutoMergeAllowed = tt.allowed
			req := request("summarizer")
			p, err := fx.forge.Propose(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			fx.srv.SetMergeable(p.Number, tt.mergeable, tt.state)
			req.AutoMerge = true
			got, err := fx.forge.Propose(ctx, req)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantErrMention) {
				t.Errorf("err %q does not say %q", err, tt.wantErrMention)
			}
			pr, _ := fx.srv.Pull(p.Number)
			if pr.AutoMerge != tt.wantAutoMerge || pr.Merged != tt.wantMerged {
				t.Errorf("auto-merge %v merged %v, want %v %v", pr.AutoMerge, pr.Merged, tt.wantAutoMerge, tt.wantMerged)
			}
			if tt.wantMerged && got.State != reconcile.ProposalMerged {
				t.Errorf("proposal state %s", got.State)
			}
		})
	}
}

// TestCancelAutoMerge: the bot's auto-merge goes off (GraphQL disablePullRequestAutoMerge); a
// person's stays, with their login; a pull request without auto-merge is left alone, with no mutation.
func TestCancelAutoMerge(t *testing.T) {
	tests := []struct {
		name     string
		by       string // who turned auto-merge on: "" for nobody, "bot" for the bot through AutoMerge
		wantKept string
		wantOn   bool
		wantOff  int
	}{
		{name: "the bot's", by: "bot", wantOff: 1},
		{name: "a person's", by: "alice", wantKept: "alice", wantOn: true},
		{name: "none", by: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := setup(t, nil)
			ctx := context.Background()
			fx.srv.AutoMergeAllowed = true
			p, err := fx.forge.Propose(ctx, request("summarizer"))
			if err != nil {
				t.Fatal(err)
			}
			fx.srv.SetMergeable(p.Number, false, "blocked")
			switch tt.by {
			case "bot":
				if _, err := fx.forge.AutoMerge(ctx, p.Number); err != nil {
					t.Fatal(err)
				}
			case "":
			default:
				fx.srv.EnableAutoMerge(p.Number, tt.by)
			}
			kept, err := fx.forge.CancelAutoMerge(ctx, p.Number)
			if err != nil {
				t.Fatal(err)
			}
			pr, _ := fx.srv.Pull(p.Number)
			if kept != tt.wantKept || pr.AutoMerge != tt.wantOn || fx.srv.AutoMergeTurnedOff() != tt.wantOff {
				t.Errorf("kept %q, auto-merge %t, %d mutations; want %q, %t, %d", kept, pr.AutoMerge, fx.srv.AutoMergeTurnedOff(),
					tt.wantKept, tt.wantOn, tt.wantOff)
			}
			// The listing agrees, and AutoMerge turns it on again.
			listed, err := fx.forge.Proposals(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := listed["summarizer"].AutoMerging; got != tt.wantOn {
				t.Errorf("listed auto-merging %t, want %t", got, tt.wantOn)
			}
			if _, err := fx.forge.AutoMerge(ctx, p.Number); err != nil {
				t.Fatal(err)
			}
			if pr, _ := fx.srv.Pull(p.Number); !pr.AutoMerge {
				t.Errorf("auto-merge did not go on again")
			}
		})
	}
}

func TestUpsertComment(t *testing.T) {
	fx := setup(t, nil)
	ctx := context.Background()
	n := fx.srv.AddPull("canary/summarizer", "main", "start a canary", "", "alice")
	marker := "<!-- rollout:plan -->"
	if _, err := fx.forge.UpsertComment(ctx, n, marker, "plan v1"); err != nil {
		t.Fatal(err)
	}
	fx.srv.ResetCalls()
	if _, err := fx.forge.UpsertComment(ctx, n, marker, "plan v1"); err != nil {
		t.Fatal(err)
	}
	if w := writes(fx.srv.Calls()); w != 0 {
		t.Errorf("unchanged comment written %d times", w)
	}
	url, err := fx.forge.UpsertComment(ctx, n, marker, "plan v2")
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := fx.srv.Pull(n)
	if len(pr.CommentBodies) != 1 || pr.CommentBodies[0] != marker+"\nplan v2" || !strings.Contains(url, "#issuecomment-") {
		t.Errorf("comments %q url %q", pr.CommentBodies, url)
	}
	if _, err := fx.forge.UpsertComment(ctx, n, "plan", "x"); !errors.Is(err, githubforge.ErrConfig) {
		t.Errorf("bad marker: err = %v", err)
	}
}

// TestCallsPerTickAreConstant: a tick over many holding rollouts costs one list call, whatever their
// number, and nothing against the rate limit when nothing changed.
func TestCallsPerTickAreConstant(t *testing.T) {
	for _, rollouts := range []int{1, 10, 90} {
		t.Run(fmt.Sprint(rollouts), func(t *testing.T) {
			fx := setup(t, nil)
			ctx := context.Background()
			for i := range rollouts {
				fx.srv.AddPull(fmt.Sprintf("rollout/r%d", i), "main", "t", "b", "rollout-bot[bot]")
			}
			for tick := range 3 {
				fx.srv.ResetCalls()
				got, err := fx.forge.Proposals(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != rollouts {
					t.Fatalf("found %d proposals, want %d", len(got), rollouts)
				}
				if total := fx.srv.TotalCalls(); total != 1 {
					t.Errorf("tick %d: %d calls, want 1: %v", tick, total, fx.srv.Calls())
				}
			}
			if spent := 5000 - fx.srv.RateRemaining(); spent != 1 {
				t.Errorf("three ticks spent %d of the rate limit, want 1", spent)
			}
		})
	}
}

func TestProposalsReadBoundedPages(t *testing.T) {
	fx := setup(t, func(o *githubforge.Options) { o.ListPages = 2 })
	for i := range 250 {
		fx.srv.AddPull(fmt.Sprintf("rollout/r%d", i), "main", "t", "b", "rollout-bot[bot]")
	}
	got, err := fx.forge.Proposals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Two pages, then the bot's branches, then one look per branch beyond the pages.
	if len(got) != 250 || fx.srv.TotalCalls() != 2+1+50 {
		t.Errorf("%d proposals in %d calls, want 250 in 53", len(got), fx.srv.TotalCalls())
	}
}

// TestProposalsFindAStalePullRequestWhateverTheCount: the bot's open pull request is older than every
// other one. However many pull requests the repository holds, Proposals finds it, in the same number
// of calls; a repository with fewer pull requests than the pages hold costs one list call, and a tick
// over an unchanged repository spends no rate limit.
func TestProposalsFindAStalePullRequestWhateverTheCount(t *testing.T) {
	for _, others := range []int{50, 400, 1000} {
		t.Run(fmt.Sprint(others), func(t *testing.T) {
			fx := setup(t, nil)
			n := fx.srv.AddPull("rollout/summarizer", "main", "rollout(summarizer): 5% → 25%", "b", "rollout-bot[bot]")
			for i := range others {
				fx.srv.AddPull(fmt.Sprintf("feature/f%d", i), "main", "feature", "b", "alice")
			}
			for tick := range 2 {
				fx.srv.ResetCalls()
				rate := fx.srv.RateRemaining()
				got, err := fx.forge.Proposals(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if p, ok := got["summarizer"]; !ok || p.Number != n || p.State != reconcile.ProposalOpen {
					t.Fatalf("the stale pull request was not found: %+v", got)
				}
				calls := fx.srv.TotalCalls()
				switch {
				case others < 100 && calls != 1:
					t.Errorf("%d calls, want the one list call", calls)
				case others >= 100 && calls != 3+1+1:
					t.Errorf("%d calls, want 3 pages, the branches and one branch look", calls)
				}
				if spent := rate - fx.srv.RateRemaining(); tick == 1 && spent != 0 {
					t.Errorf("a tick over an unchanged repository cost %d of the rate limit", spent)
				}
			}
		})
	}
}

// inFlight counts concurrent writes reaching the network.
type inFlight struct {
	base      http.RoundTripper
	now, peak atomic.Int32
}

func (t *inFlight) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		return t.base.RoundTrip(req)
	}
	n := t.now.Add(1)
	defer t.now.Add(-1)
	for {
		p := t.peak.Load()
		if n <= p || t.peak.CompareAndSwap(p, n) {
			break
		}
	}
	runtime.Gosched() // let another writer in, were the forge to allow it
	return t.base.RoundTrip(req)
}

func TestWritesGoOneAtATime(t *testing.T) {
	counter := &inFlight{base: http.DefaultTransport}
	fx := setup(t, func(o *githubforge.Options) { o.Transport = counter })
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := fx.forge.Propose(ctx, request(fmt.Sprintf("r%d", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := counter.peak.Load(); p != 1 {
		t.Errorf("peak concurrent writes = %d, want 1", p)
	}
	if len(fx.srv.Pulls()) != 8 {
		t.Errorf("%d pull requests, want 8", len(fx.srv.Pulls()))
	}
}

func TestGitHubApp(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	fx := setup(t, func(o *githubforge.Options) { o.Token, o.AppID, o.AppPrivateKey = "", 12345, pemKey })
	fx.srv.Token = "not-the-app"
	fx.srv.TokenLifetime = 100 * 365 * 24 * time.Hour // ghinstallation judges expiry by the wall clock
	ctx := context.Background()
	if _, err := fx.forge.Proposals(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := fx.forge.GitToken(ctx)
	if err != nil || !strings.HasPrefix(tok, "ghs_") {
		t.Fatalf("git token %q, %v", tok, err)
	}
	calls := fx.srv.Calls()
	if calls["GET /repos/{owner}/{repo}/installation"] != 1 || calls["POST /app/installations/{installation_id}/access_tokens"] != 1 {
		t.Errorf("calls = %v", calls)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	now := func() time.Time { return time.Time{} }
	tests := []githubforge.Options{
		{Repo: "r", Token: "t", Now: now},
		{Owner: "o", Repo: "r", Now: now},
		{Owner: "o", Repo: "r", Token: "t"},
		{Owner: "o", Repo: "r", Token: "t", Now: now, APIURL: "ftp://x/"},
		{Owner: "o", Repo: "r", AppID: 1, AppPrivateKey: []byte("not a key"), Now: now},
	}
	for i, o := range tests {
		if _, err := githubforge.New(o); !errors.Is(err, githubforge.ErrConfig) {
			t.Errorf("%d: err = %v, want ErrConfig", i, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"GITHUB_REPOSITORY": "acme/llm-config", "GITHUB_API_URL": "https://ghe.example.com/api/v3",
		"GITHUB_TOKEN": "t"}
	o, err := githubforge.FromEnv(func(k string) string { return env[k] })
	if err != nil || o.Owner != "acme" || o.Repo != "llm-config" || o.APIURL != env["GITHUB_API_URL"] || o.Token != "t" {
		t.Errorf("%+v, %v", o, err)
	}
	env["GITHUB_REPOSITORY"] = "nope"
	if _, err := githubforge.FromEnv(func(k string) string { return env[k] }); !errors.Is(err, githubforge.ErrConfig) {
		t.Errorf("err = %v", err)
	}
}

func TestGitURL(t *testing.T) {
	if got := githubforge.GitURL("", "acme", "x"); got != "https://github.com/acme/x.git" {
		t.Errorf("GitURL = %q", got)
	}
	if got := githubforge.GitURL("https://ghe.example.com/", "acme", "x"); got != "https://ghe.example.com/acme/x.git" {
		t.Errorf("GitURL = %q", got)
	}
}

// BenchmarkTick is one tick's Proposals over 100 rollouts' pull requests when nothing changed: one
// revalidated list call answered 304 and served from the cache.
func BenchmarkTick(b *testing.B) {
	c := newClock()
	srv := githubtest.New(b, owner, repo, c.Now)
	for i := range 100 {
		srv.AddPull(fmt.Sprintf("rollout/r%d", i), "main", "rollout(r): 5% → 25%", strings.Repeat("evidence ", 500), "rollout-bot[bot]")
	}
	f, err := githubforge.New(githubforge.Options{Owner: owner, Repo: repo, APIURL: srv.APIURL(), Token: token, Now: c.Now, Sleep: c.Sleep})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := f.Proposals(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Proposals(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestForbiddenIsNotRetried(t *testing.T) {
	fx := setup(t, nil)
	fx.srv.Fail(1, githubtest.Fault{Status: 403})
	_, err := fx.forge.Proposals(context.Background())
	if err == nil || errors.Is(err, reconcile.ErrTransient) || len(fx.clock.Sleeps()) != 0 {
		t.Errorf("err = %v, sleeps %v: want a permanent error at once", err, fx.clock.Sleeps())
	}
}

func TestWritesAreSpacedBySecond(t *testing.T) {
	fx := setup(t, func(o *githubforge.Options) { o.WriteGap = 0 }) // the default: a second
	ctx := context.Background()
	if _, err := fx.forge.Propose(ctx, request("summarizer")); err != nil {
		t.Fatal(err)
	}
	// Three writes (create, labels, reviewers) with no time passing between them: two waits.
	if got := fx.clock.Sleeps(); !slices.Equal(got, []time.Duration{time.Second, time.Second}) {
		t.Errorf("sleeps = %v", got)
	}
}
