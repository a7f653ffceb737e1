package e2egithub_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile/githubforge"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
)

// holdingSpec is a rollout in the middle of stage 0, which its minDuration keeps holding.
func holdingSpec(name string) string {
	return withCanary(specFile(name, "pull-request"), canaryModel) + fmt.Sprintf(`status:
  phase: Progressing
  stage: 0
  stageStartedAt: %s
`, t0.Format(time.RFC3339))
}

// TestCallsPerTickAreConstant: a tick over many holding rollouts costs one list call, answered 304 (no
// rate limit spent) once nothing changed, and the same git requests, whatever the number of rollouts.
func TestCallsPerTickAreConstant(t *testing.T) {
	t.Parallel()
	type cost struct{ api, git map[string]int }
	measure := func(t *testing.T, rollouts int) (cold, warm cost) {
		files := map[string]string{}
		for i := range rollouts {
			files[fmt.Sprintf("rollouts/r%03d.yaml", i)] = holdingSpec(fmt.Sprintf("r%03d", i))
		}
		w := newWorld(t, files)
		// Other people's pull requests share the list; they are not the bot's.
		w.srv.AddPull("feature/search", "main", "Faster search", "", "bob")
		w.srv.AddPull("fix/typo", "main", "Fix a typo", "", "carol")
		for i := range rollouts {
			w.traffic(fmt.Sprintf("r%03d", i), t0, t0.Add(20*time.Minute), 400, 5, healthyCanary(), int64(i))
		}
		w.at(t0.Add(30 * time.Minute))
		ticks := make([]cost, 3)
		for i := range ticks {
			w.srv.ResetCalls()
			rate := w.srv.RateRemaining()
			rep := w.tick()
			if len(rep.Results) != rollouts {
				t.Fatalf("%d results for %d rollouts", len(rep.Results), rollouts)
			}
			for _, r := range rep.Results {
				if r.Err != nil || r.Decision != policy.Hold || r.Commit != "" {
					t.Fatalf("rollout %s: %s %q %v", r.Rollout, r.Decision, r.Commit, r.Err)
				}
			}
			calls := w.srv.Calls()
			ticks[i] = cost{apiCalls(calls), gitCalls(calls)}
			if spent := rate - w.srv.RateRemaining(); i > 0 && spent != 0 {
				t.Errorf("tick %d spent %d of the rate limit; an unchanged list is a free 304", i, spent)
			}
		}
		if !maps.Equal(ticks[1].api, ticks[2].api) || !maps.Equal(ticks[1].git, ticks[2].git) {
			t.Errorf("warm ticks differ: %v and %v", ticks[1], ticks[2])
		}
		return ticks[0], ticks[1]
	}
	coldFew, warmFew := measure(t, 3)
	coldMany, warmMany := measure(t, 40)
	for _, c := range []struct {
		name     string
		few, any cost
	}{{"first tick", coldFew, coldMany}, {"later ticks", warmFew, warmMany}} {
		if !maps.Equal(c.few.api, map[string]int{listPulls: 1}) {
			t.Errorf("%s: API calls %v, want one list call", c.name, c.few.api)
		}
		if !maps.Equal(c.few.api, c.any.api) || !maps.Equal(c.few.git, c.any.git) {
			t.Errorf("%s: 3 rollouts cost %v, 40 cost %v", c.name, c.few, c.any)
		}
	}
	t.Logf("per tick: API %v, git %v", warmMany.api, warmMany.git)
}

// TestTokenNeverShown: the token stays out of errors and logs when GitHub or git refuse it, when
// GitHub keeps failing, and when a URL carries it. (Every test also checks, as it ends, that the token
// is in none of the reports, logs, pull requests, comments and commits.)
func TestTokenNeverShown(t *testing.T) {
	t.Parallel()
	const name = "summarizer"
	w := newWorld(t, map[string]string{"rollouts/" + name + ".yaml": holdingSpec(name)})
	w.at(t0.Add(30 * time.Minute))
	w.result(w.tick(), name)
	var errs []error

	// The token is revoked: the API and git refuse it.
	w.srv.Token = "ghs_rotatedToken"
	_, err := w.loop.Tick(w.ctx)
	errs = append(errs, err)
	_, err = w.forge.Proposals(w.ctx)
	errs = append(errs, err)
	_, err = gitrepo.Open(w.ctx, gitrepo.Options{URL: githubforge.GitURL(w.srv.URL, owner, repoName), Auth: gitrepo.TokenAuth(token)})
	errs = append(errs, err)

	// A token written into the URL of a server that is down.
	withToken := "http://x-access-token:" + token + "@127.0.0.1:1/acme/llm-app.git"
	_, err = gitrepo.Open(w.ctx, gitrepo.Options{URL: withToken})
	errs = append(errs, err)

	// GitHub keeps answering 502: the forge gives up, the loop reports it.
	w.srv.Token = token
	w.srv.Fail(50, githubtest.Fault{Status: 502})
	_, err = w.forge.Proposals(w.ctx)
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		fmt.Fprintln(&w.output, err)
		t.Logf("case %d: %v", i, err)
		if strings.Contains(err.Error(), token) || strings.Contains(fmt.Sprintf("%+v", err), token) {
			t.Errorf("case %d: the error shows the token: %v", i, err)
		}
	}
	w.loop.Log.Error("errors", "all", errs)
	if strings.Contains(w.logs.String(), token) {
		t.Errorf("the logs show the token")
	}
}

// TestGitHubApp: authenticated as a GitHub App (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY), the bot
// mints an installation token, pushes with it over git and opens its pull request with it.
func TestGitHubApp(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	const name = "summarizer"
	w := newWorldAuth(t, map[string]string{"rollouts/" + name + ".yaml": specFile(name, "pull-request")}, pemKey)
	n := w.stageZeroPassed(name)
	calls := w.srv.Calls()
	if calls["GET /repos/{owner}/{repo}/installation"] != 1 || calls["POST /app/installations/{installation_id}/access_tokens"] < 1 {
		t.Errorf("App calls %v: want the installation looked up once and a token minted", apiCalls(calls))
	}
	if p := w.pull(n); p.State != "open" || p.Title != "rollout(summarizer): 5% → 25%" {
		t.Errorf("pull request #%d %s %q", n, p.State, p.Title)
	}
	if c := w.commit(w.head("rollout/" + name)); c.Author.Email != gitrepo.DefaultAuthorEmail {
		t.Errorf("bot branch commit by %s", c.Author.Email)
	}
}
