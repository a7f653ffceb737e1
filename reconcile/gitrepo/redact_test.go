package gitrepo

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rollout-dev/rollout/reconcile"
)

// TestServerAnswersQuotingTheTokenAreMasked: a git server (or a proxy in front of it) refuses the
// request and quotes the credentials it got, as the token and as the Authorization header. The error
// names the remote and the refusal, never the token in either form, however it was given.
func TestServerAnswersQuotingTheTokenAreMasked(t *testing.T) {
	const token = "ghs_ECHOEDtoken0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, _ := r.BasicAuth()
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "denied: user %s password %s header %s\n", user, pw, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	for name, opts := range map[string]Options{
		"auth":        {URL: srv.URL + "/org/repo.git", Branch: "main", Auth: TokenAuth(token)},
		"in the URL":  {URL: strings.Replace(srv.URL, "http://", "http://x-access-token:"+token+"@", 1) + "/org/repo.git", Branch: "main"},
		"token func":  {URL: srv.URL + "/org/repo.git", Branch: "main", Token: func(context.Context) (string, error) { return token, nil }},
		"default br.": {URL: srv.URL + "/org/repo.git", Auth: TokenAuth(token)},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Open(context.Background(), opts)
			if err == nil {
				_, err = r.Snapshot(context.Background())
			}
			if err == nil {
				t.Fatal("the refusal was not reported")
			}
			msg := fmt.Sprintf("%v %+v", err, err)
			for _, secret := range []string{token, basic} {
				if strings.Contains(msg, secret) {
					t.Errorf("the error holds %q: %s", secret, msg)
				}
			}
			if !strings.Contains(msg, "403") && !strings.Contains(msg, "denied") {
				t.Errorf("the error does not say what the server said: %s", msg)
			}
		})
	}
}

// TestPushRefusalsQuotingTheTokenAreMasked: the advertisement goes through, then a proxy refuses the
// push itself (git-receive-pack) quoting the credentials. Neither a push of the default branch nor the
// deletion of a bot branch (LocalForge.Close) reports the token, in either form.
func TestPushRefusalsQuotingTheTokenAreMasked(t *testing.T) {
	const token = "ghs_PUSHECHOtoken0123456789abcdef"
	_, url, srv := serve(t)
	srv.RequireAuth("x-access-token", token)
	var refuse atomic.Bool
	backend, err := neturl.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			_, pw, _ := r.BasicAuth()
			http.Error(w, "push refused for "+pw+" ("+r.Header.Get("Authorization")+")", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	ctx := context.Background()
	r, err := Open(ctx, Options{URL: strings.Replace(url, srv.URL, front.URL, 1), Branch: "main", Auth: TokenAuth(token)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	branch := BranchPrefix + "chat"
	if _, err := r.Push(ctx, reconcile.PushRequest{Branch: branch, Parent: snap.Head, When: when, Message: "propose",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 2\n")}}); err != nil {
		t.Fatal(err)
	}
	refuse.Store(true)
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	for name, op := range map[string]func() error{
		"push": func() error {
			_, err := r.Push(ctx, reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "rollback",
				Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 0\n")}})
			return err
		},
		"close": func() error {
			return (&LocalForge{Remote: r}).Close(ctx, reconcile.Proposal{Rollout: "chat", Branch: branch}, "rolled back")
		},
	} {
		err := op()
		if err == nil {
			t.Fatalf("%s: the refusal was not reported", name)
		}
		msg := fmt.Sprintf("%v %+v", err, err)
		if strings.Contains(msg, token) || strings.Contains(msg, basic) {
			t.Errorf("%s: the error holds the token: %s", name, msg)
		}
		if !strings.Contains(msg, "502") && !strings.Contains(msg, "refused") {
			t.Errorf("%s: the error does not say what the server said: %s", name, msg)
		}
	}
}
