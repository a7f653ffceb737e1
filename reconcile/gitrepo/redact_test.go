package gitrepo

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
