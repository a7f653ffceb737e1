package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
)

// leaks returns the secrets that text holds.
func leaks(text string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			found = append(found, s)
		}
	}
	return found
}

// everythingWritten is every text the bot wrote where people can read it: pull request titles, bodies
// and comments, and every commit message on every branch.
func (g *github) everythingWritten() string {
	var b strings.Builder
	for _, p := range g.gh.Pulls() {
		fmt.Fprintf(&b, "%s\n%s\n%s\n", p.Title, p.Body, strings.Join(p.CommentBodies, "\n"))
	}
	b.WriteString(g.git("log", "--all", "--format=%B"))
	return b.String()
}

// TestSecretsNeverLeak runs a rollout through an advance and a rollback on the GitHub test server while
// everything that can fail does: GitHub answers 502 past the retries, the webhook answers 500, a process
// opens the remote with the token in its URL. The token and the webhook URL never appear
// in the logs, the errors, the pull requests, the comments, the commits or the webhook payloads.
func TestSecretsNeverLeak(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	secrets := []string{ghToken, g.hook.secret, g.hook.url()}
	var errs []string
	collect := func(rep *reconcile.Report, err error) {
		if err != nil {
			errs = append(errs, fmt.Sprintf("%v %+v %#v", err, err, err))
		}
		if rep != nil {
			for _, r := range rep.Results {
				if r.Err != nil {
					errs = append(errs, fmt.Sprintf("%v %+v", r.Err, r.Err))
				}
			}
		}
	}
	ctx := context.Background()

	// The advance, through GitHub failing past its retries, then through a healthy GitHub.
	g.writeTraffic("summarizer", 0.01)
	g.gh.Fail(50, githubtest.Fault{Status: 502})
	collect(g.process().Tick(ctx))
	g.gh.Heal()
	collect(g.process().Tick(ctx))
	if len(g.gh.Pulls()) != 1 {
		t.Fatalf("pulls = %+v", g.gh.Pulls())
	}
	// A process whose remote URL carries the token: once against GitHub with no forge (the advance fails
	// with ErrNoForge), once against a git server that fails every request after the first fetch.
	withToken := strings.Replace(g.cloneURL, "http://", "http://x-access-token:"+ghToken+"@", 1)
	r, err := gitrepo.Open(ctx, gitrepo.Options{URL: withToken})
	collect(nil, err)
	if err == nil {
		collect(g.loop(r, nil).Tick(ctx))
	}
	other := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	srv := gittest.NewServer(t, filepath.Dir(other))
	srv.RequireAuth("x-access-token", ghToken)
	flaky, err := gitrepo.Open(ctx, gitrepo.Options{URL: strings.Replace(srv.URL, "http://", "http://x-access-token:"+ghToken+"@", 1) + "/" + filepath.Base(other)})
	collect(nil, err)
	if err == nil {
		srv.FailNext(10, http.StatusInternalServerError)
		collect(g.loop(flaky, nil).Tick(ctx))
	}
	// The rollback, with the webhook failing: the notification error is reported and retried.
	g.writeTraffic("summarizer", 0.30)
	g.hook.fail(http.StatusInternalServerError)
	collect(g.process().Tick(ctx))
	g.hook.fail(0)
	collect(g.process().Tick(ctx))
	if st := g.spec("summarizer").Status; st.Phase != "RolledBack" {
		t.Fatalf("status = %+v", st)
	}
	if len(errs) == 0 {
		t.Fatal("no errors were produced: the test injected nothing")
	}
	if found := leaks(strings.Join(errs, "\n"), secrets...); len(found) > 0 {
		t.Errorf("errors hold %q:\n%s", found, strings.Join(errs, "\n"))
	}
	if found := leaks(g.logs.String(), secrets...); len(found) > 0 {
		t.Errorf("logs hold %q", found)
	}
	if found := leaks(g.everythingWritten(), secrets...); len(found) > 0 {
		t.Errorf("pull requests, comments or commits hold %q", found)
	}
	g.hook.mu.Lock()
	payloads := strings.Join(g.hook.bodies, "\n")
	g.hook.mu.Unlock()
	if found := leaks(payloads, secrets...); len(found) > 0 || payloads == "" {
		t.Errorf("webhook payloads %q hold %q", payloads, found)
	}
	if !strings.Contains(g.logs.String(), "summarizer") {
		t.Errorf("the logs say nothing: the check above proves nothing")
	}
}

// liveLink matches the end of a markdown link to a javascript: URL whose bracket is not escaped.
var liveLink = regexp.MustCompile(`(^|[^\\])\]\(javascript:`)

// TestProposalTextIsEscaped: a traffic path holding markup and a team mention reaches the pull request
// body (as evidence) and the closing comment (as the reason of a rollback on metrics failures). Both
// are escaped: no raw tag, no live mention, no link.
func TestProposalTextIsEscaped(t *testing.T) {
	const evil = `<img src=x onerror=alert(1)>@acme-ml-platform](javascript:alert(1))<script>`
	spec := strings.Replace(progressing("summarizer", "rollback"), "file:traffic/summarizer.jsonl", `'file:traffic/`+evil+`.jsonl'`, 1)
	spec = strings.Replace(spec, "\nstable:", "\ndescription: '"+evil+"'\nstable:", 1)
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	g.writeTraffic("summarizer", 0.01)
	if err := os.Rename(filepath.Join(g.traffic, "traffic/summarizer.jsonl"), filepath.Join(g.traffic, "traffic", evil+".jsonl")); err != nil {
		t.Fatal(err)
	}
	res := result(t, tick(t, g.process()), "summarizer")
	if res.Decision != policy.Advance || res.Err != nil {
		t.Fatalf("advance: %+v", res)
	}
	// The source disappears: three failures roll back, and the reason names the evil path.
	if err := os.Remove(filepath.Join(g.traffic, "traffic", evil+".jsonl")); err != nil {
		t.Fatal(err)
	}
	// A directory in its place: the source fails (a file not created yet would be no data).
	if err := os.Mkdir(filepath.Join(g.traffic, "traffic", evil+".jsonl"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		g.setNow(t0.Add(time.Duration(3+i) * time.Hour))
		res = result(t, tick(t, g.process()), "summarizer")
	}
	// The rollback that lands is the pass's result, not its failure (issue 21).
	if res.Decision != policy.Rollback || res.Err != nil || res.Commit == "" {
		t.Fatalf("rollback on metrics failures: %+v", res)
	}
	pulls := g.gh.Pulls()
	if len(pulls) != 1 || len(pulls[0].CommentBodies) != 1 {
		t.Fatalf("pulls = %+v", pulls)
	}
	for what, text := range map[string]string{"body": pulls[0].Body, "title": pulls[0].Title, "comment": pulls[0].CommentBodies[0]} {
		for _, bad := range []string{"<img", "<script>", "@acme-ml-platform"} {
			if strings.Contains(text, bad) {
				t.Errorf("pull request %s holds %q unescaped:\n%s", what, bad, text)
			}
		}
		if liveLink.MatchString(text) {
			t.Errorf("pull request %s holds a live javascript: link:\n%s", what, text)
		}
	}
	if !strings.Contains(pulls[0].CommentBodies[0], "onerror") {
		t.Errorf("the comment does not name the failing source at all; the check above proves nothing:\n%s", pulls[0].CommentBodies[0])
	}
}

// escaped reports whether the byte at i follows an odd number of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// FuzzInline: whatever a spec or a metrics record holds, the text the bot puts in a pull request keeps
// no tag, no live mention, no link syntax and no line break.
func FuzzInline(f *testing.F) {
	for _, s := range []string{"<script>alert(1)</script>", "@acme/ml-platform", "[x](javascript:alert(1))", "a\nb\r\nc", "`code`", "&lt;", `\[x\](javascript:1)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := reconcile.Inline(s)
		if strings.ContainsAny(got, "<>\n\r") {
			t.Fatalf("Inline(%q) = %q keeps a tag or a line break", s, got)
		}
		if i := strings.Index(got, "@"); i >= 0 && !strings.HasPrefix(got[i:], "@\u200b") {
			t.Fatalf("Inline(%q) = %q keeps a live mention", s, got)
		}
		for i := 0; i < len(got); i++ {
			if (got[i] == '[' || got[i] == ']' || got[i] == '`') && !escaped(got, i) {
				t.Fatalf("Inline(%q) = %q keeps %q unescaped", s, got, got[i])
			}
		}
	})
}
