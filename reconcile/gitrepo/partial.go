package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/memory"
)

// A snapshot is fetched as a partial clone when the server allows it (the `filter` capability, as
// GitHub and `git http-backend` with uploadpack.allowFilter have): the head commit and its trees at
// depth 1 with filter blob:none, then, in one more request, the files directly in the Prefetch folders
// (the specs). Any other file (a prompt, an eval set, a route) is fetched when it is first read, and a
// file already read under an earlier head is not fetched again. So memory and transfer follow what the
// specs need, not the size of the repository: 300 MB of model files beside the specs cost nothing.
//
// A server without the capability gets the old exchange: the whole tree at depth 1. A server that
// advertises filters but refuses to send a single blob it was asked for makes the remote fall back to
// that for good.

// upload is one upload-pack exchange: the server's advertisement and a request built on it.
type upload struct {
	sess transport.UploadPackSession
	adv  *packp.AdvRefs
}

// openUpload starts an upload-pack session and reads the advertisement: one round trip.
func (r *Remote) openUpload(ctx context.Context) (*upload, error) {
	ep, err := transport.NewEndpoint(r.url)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", r.shown, err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", r.shown, err)
	}
	auth, err := r.authFor(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := cl.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, r.wrap("connect to", err)
	}
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		sess.Close()
		return nil, r.wrap("list refs of", err)
	}
	return &upload{sess: sess, adv: adv}, nil
}

// head returns the commit of branch in the advertisement.
func (u *upload) head(branch string) (plumbing.Hash, error) {
	refs, err := u.adv.AllReferences()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ref, err := refs.Reference(plumbing.NewBranchReferenceName(branch))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("branch %s: %w", branch, err)
	}
	return ref.Hash(), nil
}

// filters reports whether the server takes object filters (partial clone).
func (u *upload) filters() bool { return u.adv.Capabilities.Supports(capability.Filter) }

// fetch asks for wants (at depth when not 0, with filter when not "") and stores the objects sent in st.
func (u *upload) fetch(ctx context.Context, st *memory.Storage, wants []plumbing.Hash, depth int, filter packp.Filter) (err error) {
	req := packp.NewUploadPackRequestFromCapabilities(u.adv.Capabilities)
	req.Wants = wants
	if depth > 0 {
		req.Depth = packp.DepthCommits(depth)
		if err := req.Capabilities.Set(capability.Shallow); err != nil {
			return err
		}
	}
	if filter != "" {
		req.Filter = filter
		if err := req.Capabilities.Set(capability.Filter); err != nil {
			return err
		}
	}
	if u.adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	resp, err := u.sess.UploadPack(ctx, req)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := resp.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if err := packfile.UpdateObjectStorage(st, pack); err != nil {
		return err
	}
	if len(resp.Shallows) > 0 {
		return st.SetShallow(resp.Shallows)
	}
	return nil
}

// fetchSnapshot fetches the head commit of the branch into st: its trees and the files of the
// Prefetch folders when the server filters, else the whole tree. Files already in prev are not asked
// for again. It reports whether blobs are missing (to be fetched on demand).
func (r *Remote) fetchSnapshot(ctx context.Context, u *upload, head plumbing.Hash, st *memory.Storage, prev *blobCache, cache *blobCache) (partial bool, err error) {
	if !u.filters() || r.noPartial.Load() {
		return false, r.wrapFetch(u.fetch(ctx, st, []plumbing.Hash{head}, 1, ""))
	}
	if err := u.fetch(ctx, st, []plumbing.Hash{head}, 1, packp.FilterBlobNone()); err != nil {
		return false, r.wrapFetch(err)
	}
	commit, err := object.GetCommit(st, head)
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", head, err)
	}
	var wants []plumbing.Hash
	for _, dir := range r.prefetch {
		tree, err := commit.Tree()
		if err != nil {
			return false, err
		}
		if dir != "." && dir != "" {
			if tree, err = tree.Tree(path.Clean(dir)); err != nil {
				continue // no such folder: Load says so
			}
		}
		for _, e := range tree.Entries {
			if !e.Mode.IsFile() || e.Mode == filemode.Symlink {
				continue
			}
			if obj := prev.lookup(e.Hash); obj != nil {
				cache.put(obj)
				continue
			}
			wants = append(wants, e.Hash)
		}
	}
	if len(wants) == 0 {
		return true, nil
	}
	blobs := memory.NewStorage()
	if err := u.fetch(ctx, blobs, wants, 0, ""); err != nil {
		if isTransient(err) {
			return false, r.wrapFetch(err)
		}
		// The server filters but will not send a blob by its hash: fetch whole trees from now on.
		r.noPartial.Store(true)
		whole, err := r.openUpload(ctx)
		if err != nil {
			return false, err
		}
		defer whole.sess.Close()
		return false, r.wrapFetch(whole.fetch(ctx, st, []plumbing.Hash{head}, 1, ""))
	}
	for _, obj := range blobs.ObjectStorage.Blobs {
		cache.put(obj)
	}
	return true, nil
}

func (r *Remote) wrapFetch(err error) error {
	if err == nil {
		return nil
	}
	return r.wrap("fetch "+r.branch+" from", err)
}

// blobCache holds the blobs of one snapshot that the partial fetch left out and that were read since,
// fetched one request per file on first read. It is safe for concurrent use.
type blobCache struct {
	remote *Remote
	head   plumbing.Hash

	mu    sync.Mutex
	blobs map[plumbing.Hash]plumbing.EncodedObject
	// prev is the previous snapshot's cache, asked before the remote; it is dropped when the snapshot
	// after this one is taken, so only the blobs read under the last two heads stay in memory.
	prev *blobCache
	// whole is the snapshot fetched whole, after the server refused to send a blob by its hash.
	whole *memory.Storage
}

func newBlobCache(r *Remote, head plumbing.Hash, prev *blobCache) *blobCache {
	return &blobCache{remote: r, head: head, prev: prev, blobs: map[plumbing.Hash]plumbing.EncodedObject{}}
}

// lookup returns a blob already in memory, or nil; c may be nil.
func (c *blobCache) lookup(h plumbing.Hash) plumbing.EncodedObject {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if obj, ok := c.blobs[h]; ok {
		return obj
	}
	if c.whole != nil {
		if obj, err := c.whole.EncodedObject(plumbing.BlobObject, h); err == nil {
			return obj
		}
	}
	return nil
}

func (c *blobCache) put(obj plumbing.EncodedObject) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blobs[obj.Hash()] = obj
}

// dropPrev forgets the previous snapshot's blobs.
func (c *blobCache) dropPrev() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev = nil
}

// get returns blob h, from memory or else from the remote (one request, within the remote's timeout).
func (c *blobCache) get(h plumbing.Hash) (plumbing.EncodedObject, error) {
	if obj := c.lookup(h); obj != nil {
		return obj, nil
	}
	c.mu.Lock()
	prev := c.prev
	c.mu.Unlock()
	if obj := prev.lookup(h); obj != nil {
		c.put(obj)
		return obj, nil
	}
	r := c.remote
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if r.noPartial.Load() {
		return c.fetchWhole(ctx, h)
	}
	u, err := r.openUpload(ctx)
	if err != nil {
		return nil, err
	}
	defer u.sess.Close()
	st := memory.NewStorage()
	if err := u.fetch(ctx, st, []plumbing.Hash{h}, 0, ""); err != nil {
		if isTransient(err) {
			return nil, r.wrap("fetch file "+h.String()+" from", err)
		}
		r.noPartial.Store(true)
		return c.fetchWhole(ctx, h)
	}
	obj, err := st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("fetch file %s from %s: not sent: %w", h, r.shown, err)
	}
	c.put(obj)
	return obj, nil
}

// fetchWhole fetches the snapshot's whole tree, once, and returns blob h from it.
func (c *blobCache) fetchWhole(ctx context.Context, h plumbing.Hash) (plumbing.EncodedObject, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.whole == nil {
		u, err := c.remote.openUpload(ctx)
		if err != nil {
			return nil, err
		}
		defer u.sess.Close()
		st := memory.NewStorage()
		if err := u.fetch(ctx, st, []plumbing.Hash{c.head}, 1, ""); err != nil {
			return nil, c.remote.wrapFetch(err)
		}
		c.whole = st
	}
	obj, err := c.whole.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("file %s is not in %s", h, c.head), err)
	}
	return obj, nil
}

// Prefetch fetches, in one request, the files at paths that a partial snapshot left out, so that a
// tick reading every file its specs name costs one request, not one per file. A path naming a folder
// stands for the files directly in it; a path that is neither is skipped (reading it later says so). It is idempotent, and a no-op for a
// snapshot fetched whole.
func (f *treeFS) Prefetch(paths []string) error {
	if f.blobs == nil {
		return nil
	}
	var wants []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	want := func(e *object.TreeEntry) {
		if !e.Mode.IsFile() || e.Mode == filemode.Symlink || seen[e.Hash] {
			return
		}
		seen[e.Hash] = true
		if _, err := f.store.EncodedObject(plumbing.BlobObject, e.Hash); err == nil {
			return
		}
		if f.blobs.lookup(e.Hash) == nil {
			wants = append(wants, e.Hash)
		}
	}
	for _, p := range paths {
		name := path.Clean(p)
		e, err := f.lookup("prefetch", name)
		if err != nil {
			continue
		}
		if e.Mode != filemode.Dir {
			want(e)
			continue
		}
		d, err := f.dir(name)
		if err != nil {
			continue
		}
		for i := range d.tree.Entries {
			want(&d.tree.Entries[i])
		}
	}
	return f.blobs.fetchMany(wants)
}

// fetchMany fetches blobs into the cache in one request, from the previous snapshot's cache first.
func (c *blobCache) fetchMany(wants []plumbing.Hash) error {
	c.mu.Lock()
	prev := c.prev
	c.mu.Unlock()
	var missing []plumbing.Hash
	for _, h := range wants {
		if obj := prev.lookup(h); obj != nil {
			c.put(obj)
		} else {
			missing = append(missing, h)
		}
	}
	r := c.remote
	if len(missing) == 0 || r.noPartial.Load() {
		return nil // the blobs come one by one, or with the whole tree, when read
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	u, err := r.openUpload(ctx)
	if err != nil {
		return r.mask(err)
	}
	defer u.sess.Close()
	st := memory.NewStorage()
	if err := u.fetch(ctx, st, missing, 0, ""); err != nil {
		return r.mask(r.wrap("fetch files from", err))
	}
	for _, obj := range st.ObjectStorage.Blobs {
		c.put(obj)
	}
	return nil
}
