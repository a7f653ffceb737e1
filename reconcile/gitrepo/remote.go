// Package gitrepo is rollout's adapter for git, built on go-git: it reads the specs from a remote's
// default branch at depth 1, pushes one commit at a time with an expected old head (so a human's push
// in between is never overwritten), inspects the bot's branches, reads a file's history for `rollout
// history`, and implements a forge for plain git remotes that have no pull requests.
//
// A Remote works on in-memory object storage; nothing is written to disk. Everything it does on the
// remote is one atomic ref update or a read.
//
// It belongs to the reconcile room and adapts git (go-git) to reconcile.Repository.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	nethttp "net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/reconcile"
)

// The bot's default identity.
const (
	DefaultAuthorName  = "rollout-bot"
	DefaultAuthorEmail = "rollout-bot@users.noreply.github.com"
)

// Errors of this package, for errors.Is. A rejected push because the remote moved wraps
// reconcile.ErrStale; a network failure wraps reconcile.ErrTransient.
var (
	// ErrForceDefault is returned by Push when a commit would rewrite the history of the default
	// branch. The default branch is never force-pushed.
	ErrForceDefault = errors.New("refusing to force-push the default branch")
	// ErrNotFastForward is returned by Push when the new commit does not descend from Expect and
	// Force is not set.
	ErrNotFastForward = errors.New("push is not a fast-forward and force was not asked for")
	// ErrForeignCommits is returned by Push when the branch it would force-push holds a commit that
	// the bot did not make. (LocalForge.Close leaves such a branch in place and says so.)
	ErrForeignCommits = errors.New("branch holds commits that are not the bot's")
	// ErrRejected is returned by Push when the remote refused the update for a reason other than a
	// moved branch (a hook, a protected branch, a checked-out branch of a non-bare repository).
	ErrRejected = errors.New("remote rejected the push")
)

// Options say which remote to open and who the bot is.
type Options struct {
	// URL is a local path (a bare repository, or a checkout whose origin remote is used), a file://
	// URL, or an http(s) URL. Empty means the current directory.
	URL string
	// Branch holds the specs; empty means the remote's default branch (its HEAD).
	Branch string
	// AuthorName and AuthorEmail are the bot's identity; empty means rollout-bot.
	AuthorName  string
	AuthorEmail string
	// Auth authenticates to the remote, e.g. TokenAuth(token). It never appears in logs or errors.
	Auth transport.AuthMethod
	// Token, when set, is asked for a token before every exchange with an http(s) remote and used as
	// TokenAuth instead of Auth, so that a token that expires (a GitHub App installation token lasts an
	// hour) is refreshed by its source while a daemon runs. Its error fails the exchange.
	Token func(ctx context.Context) (string, error)
	// Timeout bounds each exchange with the remote, so that a hanging server cannot stall a tick;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// Prefetch names folders (such as "rollouts") whose files come with every snapshot in one request
	// when the server allows partial clone; other files are fetched when first read.
	Prefetch []string
}

// DefaultTimeout bounds one exchange with the remote when Options.Timeout is 0.
const DefaultTimeout = 2 * time.Minute

// TokenAuth is the basic auth that GitHub (and most forges) accept for a token over HTTPS.
func TokenAuth(token string) transport.AuthMethod {
	if token == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: "x-access-token", Password: token}
}

// Remote is one git remote holding the specs. It implements reconcile.Repository. It is safe for
// concurrent use.
type Remote struct {
	url     string
	branch  string
	name    string
	email   string
	auth    transport.AuthMethod
	token   func(context.Context) (string, error)
	timeout time.Duration
	// shown is the address fit to print; secrets are what errors must not quote; lastToken is the
	// last token Options.Token gave.
	shown     string
	secrets   *redact.Secrets
	lastToken atomic.Value
	// prefetch lists the folders whose files come with a partial snapshot; noPartial is set once the
	// server has refused to send a blob by its hash.
	prefetch  []string
	noPartial atomic.Bool

	mu sync.Mutex
	// current is the one snapshot kept: the last one fetched, or the last commit pushed on top of it,
	// which holds the objects of both. A push builds on a commit it holds; a snapshot of a head it holds
	// fetches nothing. A store is never written after it is made.
	current *snapshotStore
}

// snapshotStore is the objects of one snapshot: the commit and its trees, and the blobs fetched with
// them (all of them when blobs is nil, else those of the Prefetch folders and the ones read since).
type snapshotStore struct {
	head  plumbing.Hash
	store *memory.Storage
	blobs *blobCache
}

var _ reconcile.Repository = (*Remote)(nil)

// Open resolves the remote and, when Options.Branch is empty, asks it for its default branch.
func Open(ctx context.Context, opts Options) (*Remote, error) {
	secrets := new(redact.Secrets).Remote(opts.URL)
	if basic, ok := opts.Auth.(*githttp.BasicAuth); ok {
		secrets.Token(basic.Username, basic.Password)
	}
	r, err := open(ctx, opts, secrets)
	return r, secrets.Error(err)
}

func open(ctx context.Context, opts Options, secrets *redact.Secrets) (*Remote, error) {
	url, auth, err := resolveURL(opts.URL, opts.Auth)
	if err != nil {
		return nil, err
	}
	if basic, ok := auth.(*githttp.BasicAuth); ok {
		secrets.Token(basic.Username, basic.Password)
	}
	if _, basic := auth.(*githttp.BasicAuth); basic && !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		auth = nil // a token means nothing to a local path; go-git would refuse it
	}
	r := &Remote{url: url, branch: opts.Branch, name: opts.AuthorName, email: opts.AuthorEmail, auth: auth, timeout: opts.Timeout,
		prefetch: opts.Prefetch, shown: redact.Remote(url), secrets: secrets}
	if opts.Token != nil && (strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")) {
		r.token = opts.Token
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.name == "" {
		r.name = DefaultAuthorName
	}
	if r.email == "" {
		r.email = DefaultAuthorEmail
	}
	if r.branch == "" {
		refs, err := r.list(ctx)
		if err != nil {
			return nil, err
		}
		r.branch, err = defaultBranch(refs)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", r.Redacted(), err)
		}
	}
	return r, nil
}

// DefaultBranch is the branch of the specs: the default branch unless Options.Branch said otherwise.
func (r *Remote) DefaultBranch() string { return r.branch }

// Redacted is the remote's URL without credentials, fit for logs.
func (r *Remote) Redacted() string { return r.shown }

// mask removes the remote's secrets from err: the password or token of its address or of Options.Auth,
// the last token Options.Token gave, their basic-auth encodings, its query values. A server's answer
// that quotes them (an error page, a proxy echoing the request) is masked with the rest.
func (r *Remote) mask(err error) error {
	if err == nil {
		return nil
	}
	err = r.secrets.Error(err)
	if tok, ok := r.lastToken.Load().(string); ok && tok != "" {
		err = new(redact.Secrets).Token("x-access-token", tok).Error(err)
	}
	return err
}

// Author returns the bot's identity.
func (r *Remote) Author() (name, email string) { return r.name, r.email }

// resolveURL turns what a user typed into a URL go-git can reach, moving credentials out of the URL.
func resolveURL(raw string, auth transport.AuthMethod) (string, transport.AuthMethod, error) {
	if raw == "" {
		raw = "."
	}
	if strings.Contains(raw, "://") {
		u, err := neturl.Parse(raw)
		if err != nil {
			return "", nil, fmt.Errorf("repository URL: %w", redactURLError(err))
		}
		if u.User != nil {
			if pw, ok := u.User.Password(); ok && auth == nil {
				auth = &githttp.BasicAuth{Username: u.User.Username(), Password: pw}
			}
			u.User = nil
		}
		if u.Scheme == "file" {
			return u.Path, auth, nil
		}
		return u.String(), auth, nil
	}
	if scpLike(raw) {
		return raw, auth, nil
	}
	path, err := filepath.Abs(raw)
	if err != nil {
		return "", nil, fmt.Errorf("repository path %s: %w", raw, err)
	}
	if _, err := os.Stat(path); err != nil {
		return "", nil, fmt.Errorf("repository path %s: %w", raw, err)
	}
	// A checkout: use its origin remote when it has one, otherwise the repository itself. Git refuses
	// a push to the checked-out branch of a non-bare repository; that surfaces as ErrRejected.
	repo, err := git.PlainOpen(path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpenWithOptions(path, &git.PlainOpenOptions{DetectDotGit: true})
	}
	if err != nil {
		return "", nil, fmt.Errorf("repository path %s: %w", raw, err)
	}
	if _, err := repo.Worktree(); err != nil {
		return path, auth, nil // bare
	}
	if origin, err := repo.Remote("origin"); err == nil && len(origin.Config().URLs) > 0 {
		u := origin.Config().URLs[0]
		if !strings.Contains(u, "://") && !scpLike(u) && !filepath.IsAbs(u) {
			wt, _ := repo.Worktree()
			u = filepath.Join(wt.Filesystem.Root(), u)
		}
		return resolveURL(u, auth)
	}
	wt, _ := repo.Worktree()
	return filepath.Join(wt.Filesystem.Root(), ".git"), auth, nil
}

// scpLike reports whether s is an scp-like address such as git@github.com:owner/repo.git.
func scpLike(s string) bool {
	colon := strings.Index(s, ":")
	slash := strings.Index(s, "/")
	return colon > 1 && (slash < 0 || colon < slash)
}

func redactURLError(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// defaultBranch reads the branch that HEAD points at from an advertisement.
func defaultBranch(refs []*plumbing.Reference) (string, error) {
	var head *plumbing.Reference
	for _, ref := range refs {
		if ref.Name() == plumbing.HEAD {
			head = ref
		}
	}
	if head == nil {
		return "", errors.New("the remote has no HEAD; pass --branch")
	}
	if head.Type() == plumbing.SymbolicReference && head.Target().IsBranch() {
		return head.Target().Short(), nil
	}
	// No symref capability: find a branch at HEAD's commit, preferring the usual names.
	var found []string
	for _, ref := range refs {
		if ref.Name().IsBranch() && ref.Hash() == head.Hash() {
			found = append(found, ref.Name().Short())
		}
	}
	for _, want := range []string{"main", "master"} {
		for _, f := range found {
			if f == want {
				return f, nil
			}
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return "", errors.New("cannot tell the remote's default branch; pass --branch")
}

func (r *Remote) newRemote(st *memory.Storage) *git.Remote {
	return git.NewRemote(st, &config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
}

// authFor returns the credentials of one exchange: a fresh token from Options.Token, or Options.Auth.
func (r *Remote) authFor(ctx context.Context) (transport.AuthMethod, error) {
	if r.token == nil {
		return r.auth, nil
	}
	tok, err := r.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("token for %s: %w", r.Redacted(), err)
	}
	r.lastToken.Store(tok)
	return TokenAuth(tok), nil
}

// list reads the remote's refs: one round trip.
func (r *Remote) list(ctx context.Context) ([]*plumbing.Reference, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	auth, err := r.authFor(ctx)
	if err != nil {
		return nil, err
	}
	refs, err := r.newRemote(memory.NewStorage()).ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, r.wrap("list refs of", err)
	}
	return refs, nil
}

// fetch fetches branches into st; depth 0 means full history.
func (r *Remote) fetch(ctx context.Context, st *memory.Storage, depth int, branches ...string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	specs := make([]config.RefSpec, 0, len(branches))
	for _, b := range branches {
		specs = append(specs, config.RefSpec("+refs/heads/"+b+":refs/remotes/origin/"+b))
	}
	auth, err := r.authFor(ctx)
	if err != nil {
		return err
	}
	err = r.newRemote(st).FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin", RefSpecs: specs, Depth: depth, Auth: auth, Tags: git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return r.wrap("fetch "+strings.Join(branches, ", ")+" from", err)
	}
	return nil
}

func remoteHead(st storer.ReferenceStorer, branch string) (plumbing.Hash, error) {
	ref, err := st.Reference(plumbing.NewRemoteReferenceName("origin", branch))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("branch %s: %w", branch, err)
	}
	return ref.Hash(), nil
}

// Snapshot reads the head of the branch and returns its tree. A head the remote already holds costs one
// round trip (the advertisement); a new one is fetched at depth 1, as a partial clone where the server
// allows it (see partial.go), so a snapshot costs the same whatever the length of the history.
func (r *Remote) Snapshot(ctx context.Context) (*reconcile.Snapshot, error) {
	out, err := r.snapshot(ctx)
	return out, r.mask(err)
}

func (r *Remote) snapshot(ctx context.Context) (*reconcile.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	u, err := r.openUpload(ctx)
	if err != nil {
		return nil, err
	}
	defer u.sess.Close()
	head, err := u.head(r.branch)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", r.shown, err)
	}
	snap := r.storeWith(head)
	if snap == nil {
		r.mu.Lock()
		var prev *blobCache
		if r.current != nil {
			prev = r.current.blobs
		}
		r.mu.Unlock()
		st := memory.NewStorage()
		cache := newBlobCache(r, head, prev)
		partial, err := r.fetchSnapshot(ctx, u, head, st, prev, cache)
		if err != nil {
			return nil, err
		}
		if !partial {
			cache = nil
		}
		snap = &snapshotStore{head: head, store: st, blobs: cache}
		r.mu.Lock()
		r.current = snap
		r.mu.Unlock()
		if cache != nil && prev != nil {
			// Blobs read under the previous head stay reachable through cache until the next snapshot.
			prev.dropPrev()
		}
	}
	commit, err := object.GetCommit(snap.store, head)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read commit %s: %w", r.shown, head, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read tree of %s: %w", r.shown, head, err)
	}
	return &reconcile.Snapshot{Branch: r.branch, Head: head.String(), Files: newTreeFS(snap.store, tree, commit.Committer.When, snap.blobs)}, nil
}

// storeWith returns the kept snapshot if it holds the commit, or nil.
func (r *Remote) storeWith(h plumbing.Hash) *snapshotStore {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current == nil {
		return nil
	}
	if r.current.head == h {
		return r.current
	}
	if _, err := r.current.store.EncodedObject(plumbing.CommitObject, h); err == nil {
		return r.current
	}
	return nil
}

func parseHash(s, what string) (plumbing.Hash, error) {
	if s == "" {
		return plumbing.ZeroHash, nil
	}
	if !plumbing.IsHash(s) {
		return plumbing.ZeroHash, fmt.Errorf("%s %q is not a commit hash", what, s)
	}
	return plumbing.NewHash(s), nil
}

func (r *Remote) signature(when time.Time) object.Signature {
	return object.Signature{Name: r.name, Email: r.email, When: when}
}

// Push makes one commit on top of req.Parent and moves the remote branch from req.Expect to it, in
// one atomic ref update: if the branch moved in between, the remote refuses and Push returns an error
// wrapping reconcile.ErrStale. The default branch is never force-pushed; another branch is
// force-pushed only with req.Force and only while every commit on it is the bot's.
func (r *Remote) Push(ctx context.Context, req reconcile.PushRequest) (string, error) {
	out, err := r.pushOnce(ctx, req)
	return out, r.mask(err)
}

func (r *Remote) pushOnce(ctx context.Context, req reconcile.PushRequest) (string, error) {
	if req.Branch == "" {
		return "", errors.New("push: no branch")
	}
	parent, err := parseHash(req.Parent, "parent")
	if err != nil {
		return "", fmt.Errorf("push %s: %w", req.Branch, err)
	}
	expect, err := parseHash(req.Expect, "expected head")
	if err != nil {
		return "", fmt.Errorf("push %s: %w", req.Branch, err)
	}
	if parent.IsZero() {
		return "", fmt.Errorf("push %s: no parent commit", req.Branch)
	}
	srcSnap := r.storeWith(parent)
	if srcSnap == nil {
		return "", fmt.Errorf("push %s: parent %s is not in a recent snapshot: %w", req.Branch, parent, reconcile.ErrStale)
	}
	src := srcSnap.store
	fastForward := expect.IsZero() || expect == parent || isAncestor(src, expect, parent)
	if !fastForward {
		if req.Branch == r.branch {
			return "", fmt.Errorf("push %s: %w", req.Branch, ErrForceDefault)
		}
		if !req.Force {
			return "", fmt.Errorf("push %s: %w", req.Branch, ErrNotFastForward)
		}
		state, err := r.Branch(ctx, req.Branch, parent.String())
		if err != nil {
			return "", fmt.Errorf("push %s: %w", req.Branch, err)
		}
		if state.Head != expect.String() {
			return "", fmt.Errorf("push %s: remote is at %s, expected %s: %w", req.Branch, short(state.Head), short(expect.String()), reconcile.ErrStale)
		}
		if !state.OnlyBot {
			return "", fmt.Errorf("push %s: %w", req.Branch, ErrForeignCommits)
		}
	}

	// Build the commit in a store of its own: exactly the objects the push sends.
	pc, err := object.GetCommit(src, parent)
	if err != nil {
		return "", fmt.Errorf("push %s: read parent %s: %w", req.Branch, parent, err)
	}
	dst := memory.NewStorage()
	ed := &treeEditor{src: src, dst: dst}
	treeHash, err := ed.apply(pc.TreeHash, req.Files)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", req.Branch, err)
	}
	if treeHash.IsZero() {
		if treeHash, err = writeEmptyTree(dst); err != nil {
			return "", fmt.Errorf("push %s: %w", req.Branch, err)
		}
	}
	sig := r.signature(req.When)
	commit := &object.Commit{Author: sig, Committer: sig, Message: req.Message, TreeHash: treeHash, ParentHashes: []plumbing.Hash{parent}}
	obj := dst.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return "", fmt.Errorf("push %s: encode commit: %w", req.Branch, err)
	}
	newHash, err := dst.SetEncodedObject(obj)
	if err != nil {
		return "", fmt.Errorf("push %s: store commit: %w", req.Branch, err)
	}
	if err := r.sendUpdate(ctx, dst, plumbing.NewBranchReferenceName(req.Branch), expect, newHash, !fastForward); err != nil {
		return "", fmt.Errorf("push %s: %w", req.Branch, err)
	}
	r.remember(newHash, srcSnap, dst)
	return newHash.String(), nil
}

// remember keeps a commit the bot just pushed as a snapshot of its own, holding the parent snapshot's
// objects and the new ones, so that a push on top of it (the next rollout's commit in the same tick, or
// the record of a failed notification right after a rollback) needs no fetch and is not refused as
// stale. Neither store is written: the new one shares their objects.
func (r *Remote) remember(head plumbing.Hash, src *snapshotStore, dst *memory.Storage) {
	st := memory.NewStorage()
	for _, from := range []*memory.Storage{src.store, dst} {
		for _, pair := range [][2]map[plumbing.Hash]plumbing.EncodedObject{
			{st.ObjectStorage.Objects, from.ObjectStorage.Objects},
			{st.ObjectStorage.Commits, from.ObjectStorage.Commits},
			{st.ObjectStorage.Trees, from.ObjectStorage.Trees},
			{st.ObjectStorage.Blobs, from.ObjectStorage.Blobs},
			{st.ObjectStorage.Tags, from.ObjectStorage.Tags},
		} {
			maps.Copy(pair[0], pair[1])
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = &snapshotStore{head: head, store: st, blobs: src.blobs}
}

func writeEmptyTree(st *memory.Storage) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	if err := (&object.Tree{}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// isAncestor reports whether a is reachable from b in st; unknown history counts as not.
func isAncestor(st storer.EncodedObjectStorer, a, b plumbing.Hash) bool {
	seen := map[plumbing.Hash]bool{}
	queue := []plumbing.Hash{b}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if h == a {
			return true
		}
		if seen[h] {
			continue
		}
		seen[h] = true
		c, err := object.GetCommit(st, h)
		if err != nil {
			continue
		}
		queue = append(queue, c.ParentHashes...)
	}
	return false
}

// sendUpdate moves ref on the remote from old (zero: absent) to new, sending every object of objs,
// in one receive-pack session. The remote checks old under its ref lock, so the update is atomic.
// A zero new deletes the ref. forced says new does not descend from old (see classifyRejection).
func (r *Remote) sendUpdate(ctx context.Context, objs *memory.Storage, ref plumbing.ReferenceName, old, new plumbing.Hash, forced bool) (err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ep, err := transport.NewEndpoint(r.url)
	if err != nil {
		return fmt.Errorf("remote %s: %w", r.shown, err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return fmt.Errorf("remote %s: %w", r.shown, err)
	}
	auth, err := r.authFor(ctx)
	if err != nil {
		return err
	}
	sess, err := cl.NewReceivePackSession(ep, auth)
	if err != nil {
		return r.wrap("connect to", err)
	}
	defer func() {
		if cerr := sess.Close(); cerr != nil && err == nil {
			err = r.wrap("close session with", cerr)
		}
	}()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return r.wrap("read refs of", err)
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return r.wrap("read refs of", err)
	}
	current := plumbing.ZeroHash
	if cur, err := refs.Reference(ref); err == nil {
		current = cur.Hash()
	}
	if current != old {
		return fmt.Errorf("%s is at %s, expected %s: %w", ref.Short(), short(current.String()), short(old.String()), reconcile.ErrStale)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: new}}

	var hashes []plumbing.Hash
	if !new.IsZero() {
		iter, err := objs.IterEncodedObjects(plumbing.AnyObject)
		if err != nil {
			return err
		}
		if err := iter.ForEach(func(o plumbing.EncodedObject) error {
			hashes = append(hashes, o.Hash())
			return nil
		}); err != nil {
			return err
		}
	}
	var packErr chan error
	if len(hashes) > 0 {
		rd, wr := io.Pipe()
		req.Packfile = rd
		packErr = make(chan error, 1)
		go func() {
			_, err := packfile.NewEncoder(wr, objs, false).Encode(hashes, 10)
			wr.CloseWithError(err)
			packErr <- err
		}()
		defer rd.Close()
	}
	status, err := sess.ReceivePack(ctx, req)
	if status != nil {
		// go-git returns the report's first refusal as err; the report itself says which it was.
		if rejected := classifyRejection(status, forced); rejected != nil {
			return rejected
		}
	}
	if err != nil {
		return r.wrap("push to", err)
	}
	if packErr != nil {
		if err := <-packErr; err != nil {
			return fmt.Errorf("encode pack: %w", err)
		}
	}
	if status == nil || len(status.CommandStatuses) == 0 {
		// An answer without a report (a server or proxy that cut the body off; go-git takes an empty
		// body for success) says nothing of whether the update landed: ask the remote.
		return r.confirmUpdate(ctx, ref, new)
	}
	return nil
}

// confirmUpdate checks that the remote's ref is at want after a push whose answer held no report.
func (r *Remote) confirmUpdate(ctx context.Context, ref plumbing.ReferenceName, want plumbing.Hash) error {
	refs, err := r.list(ctx)
	if err != nil {
		return fmt.Errorf("the remote did not report the update of %s: %w", ref.Short(), err)
	}
	current := plumbing.ZeroHash
	for _, got := range refs {
		if got.Name() == ref {
			current = got.Hash()
		}
	}
	if current != want {
		return fmt.Errorf("the remote did not report the update of %s, which is at %s: %w", ref.Short(), short(current.String()), reconcile.ErrStale)
	}
	return nil
}

// classifyRejection sorts the refusal in a remote's report: a lost race (the ref was not where the
// push expected it) is ErrStale, anything else ErrRejected. It returns nil when the report refuses
// nothing. Only a command's reason is read, never its ref name, so a branch named rollout/clock is
// not taken for a lock; a pack the remote could not unpack is never a lost race.
//
// forced says the push rewrites the ref (its new commit does not descend from the old one). A remote
// that refuses non-fast-forward updates (receive.denyNonFastForwards, a protected branch) says
// "non-fast-forward" both when a fast-forward lost a race (the ref moved, and the push no longer
// descends from it) and when it will never take a rewrite: for a forced push, that is a refusal, which
// every later try would meet again.
func classifyRejection(report *packp.ReportStatus, forced bool) error {
	err := report.Error()
	if err == nil {
		return nil
	}
	if report.UnpackStatus == "ok" {
		for _, cmd := range report.CommandStatuses {
			if cmd.Error() == nil {
				continue
			}
			if forced && containsWords(strings.ToLower(cmd.Status), "non-fast-forward") {
				return fmt.Errorf("%w: %s (the remote refuses to rewrite the branch: receive.denyNonFastForwards, or branch protection)", ErrRejected, err)
			}
			if lostRace(cmd.Status) { // the first refusal, the one err quotes
				return fmt.Errorf("%s: %w", err, reconcile.ErrStale)
			}
			break
		}
	}
	return fmt.Errorf("%w: %s", ErrRejected, err)
}

// staleReasons are the phrases of a command's reason that mean the ref moved under the push, each
// matched as whole words and regardless of case.
var staleReasons = []string{
	// git receive-pack, one transaction per ref (2.39 here): the commit under the ref's lock failed,
	// because the ref was not at the old value sent or another push held the lock. The detail
	// ("cannot lock ref ...: is at X but expected Y", "Unable to create '...main.lock': File
	// exists.") goes to the server's stderr, not into the report.
	"failed to update ref",
	// git receive-pack with batched reference updates (git commit 9d2962a7c4, 2025): the reason the
	// transaction gives for rejecting the ref, or the whole batch failing (a lock held by another push).
	"incorrect old value provided",
	"reference already exists",
	"reference does not exist",
	"failed to update refs",
	// Detailed reasons ("cannot lock ref ...: is at X but expected Y", "... is missing but expected
	// X") and other servers' words for a lost lock or a moved ref.
	"lock",
	"expected",
	"stale",
	"fetch first",
	"non-fast-forward",
}

// lostRace reports whether a remote's reason for refusing a ref update says the ref moved.
func lostRace(reason string) bool {
	reason = strings.ToLower(reason)
	for _, phrase := range staleReasons {
		if containsWords(reason, phrase) {
			return true
		}
	}
	return false
}

// containsWords reports whether phrase occurs in s with no letter or digit right before or after it,
// so that "lock" is found in "cannot lock ref" and "main.lock" but not in "blocked", and "expected"
// not in "unexpected".
func containsWords(s, phrase string) bool {
	for from := 0; ; {
		i := strings.Index(s[from:], phrase)
		if i < 0 {
			return false
		}
		start, end := from+i, from+i+len(phrase)
		if (start == 0 || !isWordByte(s[start-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		from = start + 1
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}

func short(h string) string {
	if h == "" || h == plumbing.ZeroHash.String() {
		return "(absent)"
	}
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Branch returns the remote head of branch name and whether every commit on it that is not on base
// (a commit hash or a branch name) was made by the bot. It costs one list and at most two fetches.
func (r *Remote) Branch(ctx context.Context, name, base string) (reconcile.BranchState, error) {
	out, err := r.branchState(ctx, name, base)
	return out, r.mask(err)
}

func (r *Remote) branchState(ctx context.Context, name, base string) (reconcile.BranchState, error) {
	refs, err := r.list(ctx)
	if err != nil {
		return reconcile.BranchState{}, err
	}
	var head plumbing.Hash
	baseHash, _ := parseHash(base, "base")
	for _, ref := range refs {
		if ref.Name() == plumbing.NewBranchReferenceName(name) {
			head = ref.Hash()
		}
		if base != "" && ref.Name() == plumbing.NewBranchReferenceName(base) {
			baseHash = ref.Hash()
		}
	}
	if head.IsZero() {
		return reconcile.BranchState{OnlyBot: true}, nil
	}
	st := memory.NewStorage()
	onlyBot, err := r.onlyBot(ctx, st, name, head, baseHash)
	if err != nil {
		return reconcile.BranchState{}, err
	}
	return reconcile.BranchState{Head: head.String(), OnlyBot: onlyBot}, nil
}

// onlyBot fetches the default branch at depth 1, then the branch with no depth limit: the remote
// sends exactly the commits that the default branch's head does not reach, so a parent that did not
// arrive is on the default branch. Every commit that arrived must be the bot's, and its chain must
// reach base or the default branch.
func (r *Remote) onlyBot(ctx context.Context, st *memory.Storage, name string, head, base plumbing.Hash) (bool, error) {
	if err := r.fetch(ctx, st, 1, r.branch); err != nil {
		return false, err
	}
	if err := r.fetch(ctx, st, 0, name); err != nil {
		return false, err
	}
	defaultHead, err := remoteHead(st, r.branch)
	if err != nil {
		return false, err
	}
	seen := map[plumbing.Hash]bool{}
	queue := []plumbing.Hash{head}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if seen[h] || h == defaultHead || h == base {
			continue
		}
		seen[h] = true
		c, err := object.GetCommit(st, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue // not sent: the default branch reaches it
		}
		if err != nil {
			return false, fmt.Errorf("read commit %s: %w", h, err)
		}
		if !strings.EqualFold(c.Author.Email, r.email) || !strings.EqualFold(c.Committer.Email, r.email) {
			return false, nil
		}
		queue = append(queue, c.ParentHashes...)
	}
	return true, nil
}

// transientError marks a failure that a later attempt may not see.
type transientError struct{ err error }

func (e *transientError) Error() string        { return e.err.Error() }
func (e *transientError) Unwrap() error        { return e.err }
func (e *transientError) Is(target error) bool { return target == reconcile.ErrTransient }

// wrap names the remote in err, masks its secrets (the server's answer may quote them) and marks
// network failures as transient.
func (r *Remote) wrap(op string, err error) error {
	wrapped := r.mask(fmt.Errorf("%s %s: %w", op, r.shown, err))
	if isTransient(err) {
		return &transientError{wrapped}
	}
	return wrapped
}

func isTransient(err error) bool {
	// go-git's UnexpectedError and PermanentError hide their cause from errors.As.
	var unexpected *plumbing.UnexpectedError
	if errors.As(err, &unexpected) && unexpected.Err != nil {
		return isTransient(unexpected.Err)
	}
	var permanent *plumbing.PermanentError
	if errors.As(err, &permanent) && permanent.Err != nil {
		return isTransient(permanent.Err)
	}
	var netErr net.Error
	var httpErr *githttp.Err
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return true
	case errors.As(err, &httpErr):
		code := httpErr.Response.StatusCode
		return code >= 500 || code == nethttp.StatusTooManyRequests || code == nethttp.StatusRequestTimeout
	case errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return false
}
