package githubforge

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// GitURL is the HTTPS URL git clones and pushes owner/repo with, on serverURL as GITHUB_SERVER_URL
// holds it (default https://github.com). Git authenticates with GitToken as the password of user
// x-access-token.
func GitURL(serverURL, owner, repo string) string {
	if serverURL == "" {
		serverURL = "https://github.com"
	}
	return strings.TrimSuffix(serverURL, "/") + "/" + owner + "/" + repo + ".git"
}

// GitToken returns the token git pushes with over HTTPS, as the password of user x-access-token.
func (f *Forge) GitToken(ctx context.Context) (string, error) {
	tok, err := f.token(ctx)
	if err != nil {
		return "", f.wrap("mint installation token", err)
	}
	return tok, nil
}

// tokenAuth adds a token to every request.
type tokenAuth struct {
	base  http.RoundTripper
	token string
}

func (t tokenAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(req)
}

// appAuth authenticates as a GitHub App installation, finding the installation on first use when
// its id is not configured.
type appAuth struct {
	apps *ghinstallation.AppsTransport
	repo string

	mu           sync.Mutex
	installation *ghinstallation.Transport
	id           int64
}

func newAppAuth(base http.RoundTripper, apiBase string, o Options) (*appAuth, error) {
	apps, err := ghinstallation.NewAppsTransport(base, o.AppID, o.AppPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("GitHub App private key: %w", ErrConfig)
	}
	apps.BaseURL = apiBase
	a := &appAuth{apps: apps, repo: o.Owner + "/" + o.Repo, id: o.InstallationID}
	if a.id != 0 {
		a.installation = ghinstallation.NewFromAppsTransport(apps, a.id)
	}
	return a, nil
}

func (a *appAuth) transport(ctx context.Context) (*ghinstallation.Transport, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.installation != nil {
		return a.installation, nil
	}
	client := github.NewClient(&http.Client{Transport: a.apps})
	base, _ := url.Parse(a.apps.BaseURL + "/")
	client.BaseURL = base
	owner, repo, _ := strings.Cut(a.repo, "/")
	inst, _, err := client.Apps.FindRepositoryInstallation(ctx, owner, repo)
	if err != nil {
		return nil, fmt.Errorf("find the App's installation on %s: %w", a.repo, err)
	}
	a.id = inst.GetID()
	a.installation = ghinstallation.NewFromAppsTransport(a.apps, a.id)
	return a.installation, nil
}

func (a *appAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	t, err := a.transport(req.Context())
	if err != nil {
		return nil, err
	}
	return t.RoundTrip(req)
}

// Token returns a valid installation token, minting one when needed.
func (a *appAuth) Token(ctx context.Context) (string, error) {
	t, err := a.transport(ctx)
	if err != nil {
		return "", err
	}
	return t.Token(ctx)
}
