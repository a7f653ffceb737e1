package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile"
)

// serve puts a bare repository behind a smart-HTTP server and returns its URL.
func serve(t *testing.T) (bare, url string, srv *gittest.Server) {
	bare = gittest.NewBare(t, seedFiles)
	srv = gittest.NewServer(t, filepath.Dir(bare))
	return bare, srv.URL + "/" + filepath.Base(bare), srv
}

func TestOverHTTPWithAuth(t *testing.T) {
	const token = "s3cr3t-token-value"
	bare, url, srv := serve(t)
	srv.RequireAuth("x-access-token", token)
	ctx := context.Background()

	_, err := Open(ctx, Options{URL: url, Auth: TokenAuth("wrong-token")})
	if err == nil || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("Open with a wrong token: %v", err)
	}
	// Credentials in the URL are moved out of it and never echoed, not even in errors.
	withCreds := strings.Replace(url, "http://", "http://x-access-token:"+token+"@", 1)
	r, err := Open(ctx, Options{URL: withCreds})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Redacted(), token) {
		t.Fatalf("Redacted() = %s holds the token", r.Redacted())
	}
	srv.FailNext(1, http.StatusInternalServerError)
	if _, err := r.Snapshot(ctx); err == nil || strings.Contains(err.Error(), token) || strings.Contains(fmt.Sprintf("%+v", err), token) {
		t.Fatalf("snapshot from a failing server: %v", err)
	}
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := r.Push(ctx, reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "over http",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 1\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := gittest.Head(t, bare, "main"); got != commit {
		t.Fatalf("main = %s, want %s", got, commit)
	}
}

func TestUnreachableRemoteIsTransientAndWritesNothing(t *testing.T) {
	bare, url, srv := serve(t)
	ctx := context.Background()
	r := openRemote(t, url)
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := gittest.Head(t, bare, "main")
	req := reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "x",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 1\n")}}

	// A remote that answers 502 to the push's requests.
	srv.FailNext(10, http.StatusBadGateway)
	_, err = r.Push(ctx, req)
	if !errors.Is(err, reconcile.ErrTransient) || errors.Is(err, reconcile.ErrStale) {
		t.Fatalf("push to a failing remote: %v, want ErrTransient", err)
	}
	if _, err := r.Snapshot(ctx); !errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("snapshot from a failing remote: %v, want ErrTransient", err)
	}
	// A remote that hangs: the caller's context, or the remote's own timeout, bounds the wait.
	srv.Heal()
	srv.HangNext(1)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := r.Push(short, req); !errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("push to a hanging remote: %v, want ErrTransient", err)
	}
	impatient, err := Open(ctx, Options{URL: url, Branch: "main", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.HangNext(1)
	if _, err := impatient.Snapshot(ctx); !errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("snapshot from a hanging remote: %v, want ErrTransient", err)
	}
	// Nobody listening at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String() + "/remote.git"
	ln.Close()
	if _, err := Open(ctx, Options{URL: deadURL}); !errors.Is(err, reconcile.ErrTransient) {
		t.Fatalf("Open of a closed port: %v, want ErrTransient", err)
	}
	if got := gittest.Head(t, bare, "main"); got != before {
		t.Fatalf("main moved from %s to %s", before, got)
	}
	gittest.Git(t, bare, "fsck", "--strict")
	srv.Heal()
	// Once the remote is back, the same push lands.
	if _, err := r.Push(ctx, req); err != nil {
		t.Fatalf("push after recovery: %v", err)
	}
}

func TestOpenLocalCheckoutUsesItsOrigin(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	checkout := gittest.Clone(t, bare)
	r := openRemote(t, checkout.Dir)
	if r.Redacted() != bare {
		t.Fatalf("remote of a checkout = %s, want its origin %s", r.Redacted(), bare)
	}
	// A checkout without origin is read directly; git refuses a push to its checked-out branch.
	checkout.Git("remote", "remove", "origin")
	r = openRemote(t, filepath.Join(checkout.Dir, "rollouts"))
	snap, err := r.Snapshot(context.Background())
	if err != nil || snap.Branch != "main" {
		t.Fatalf("snapshot of a checkout: %+v, %v", snap, err)
	}
	_, err = r.Push(context.Background(), reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "x",
		Files: map[string][]byte{"a": []byte("b")}})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("push to a checked-out branch: %v, want ErrRejected", err)
	}
}

// TestTokenSourceAskedPerExchange: a token that expires (a GitHub App installation token lasts an hour)
// is asked for again on every exchange, so a long-running daemon never pushes with a stale one, and a
// failing token source fails the exchange without writing.
func TestTokenSourceAskedPerExchange(t *testing.T) {
	bare, url, srv := serve(t)
	ctx := context.Background()
	current, calls := "token-1", 0
	var sourceErr error
	srv.RequireAuth("x-access-token", "token-1")
	r, err := Open(ctx, Options{URL: url, Token: func(context.Context) (string, error) {
		calls++
		return current, sourceErr
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	// The token rotates: the old one is refused from now on.
	current = "token-2"
	srv.RequireAuth("x-access-token", "token-2")
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatalf("snapshot after the token rotated: %v", err)
	}
	current = "token-3"
	srv.RequireAuth("x-access-token", "token-3")
	commit, err := r.Push(ctx, reconcile.PushRequest{Branch: "main", Parent: snap.Head, Expect: snap.Head, When: when, Message: "rotated",
		Files: map[string][]byte{"rollouts/chat.yaml": []byte("w: 2\n")}})
	if err != nil {
		t.Fatalf("push after the token rotated: %v", err)
	}
	if got := gittest.Head(t, bare, "main"); got != commit {
		t.Fatalf("main = %s, want %s", got, commit)
	}
	if calls < 3 {
		t.Errorf("token source asked %d times, want once per exchange", calls)
	}
	sourceErr = errors.New("mint installation token: boom")
	if _, err := r.Snapshot(ctx); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("snapshot with a failing token source: %v", err)
	}
}
