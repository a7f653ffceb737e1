package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/utils/ioutil"
)

// Scheme is the URL scheme of the demo's remote: go-git's own git server, run inside this process on a
// bare repository on disk. go-git's file:// transport would start the git binary, which a machine
// with only Go does not have, and an HTTP server would need a socket; this needs neither.
const Scheme = "rollout-demo"

// RemoteURL is the URL under which the bare repository at dir is served in-process. Only this process
// understands it; `git` itself reads the same repository at the plain path dir.
func RemoteURL(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("remote path %s: %w", dir, err)
	}
	installTransport()
	return Scheme + "://" + filepath.ToSlash(abs), nil
}

var installOnce sync.Once

// installTransport registers the in-process server under Scheme, once per process. The registry is
// go-git's global one; a scheme of our own leaves file://, http:// and the others untouched.
func installTransport() {
	installOnce.Do(func() {
		client.InstallProtocol(Scheme, &inProcess{loader: server.DefaultLoader, server: server.NewServer(server.DefaultLoader)})
	})
}

// inProcess is go-git's transport-independent server with the two things a remote must do that it
// leaves out: answering a depth-limited fetch, and refusing a ref update whose expected old value is
// stale.
type inProcess struct {
	loader server.Loader
	server transport.Transport
	// refs serialises ref updates, so that checking the old value and writing the new one is atomic.
	refs sync.Mutex
}

// NewUploadPackSession serves a fetch.
func (t *inProcess) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	st, err := t.loader.Load(ep)
	if err != nil {
		return nil, err
	}
	s, err := t.server.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return &shallowUpload{UploadPackSession: s, objects: st}, nil
}

// NewReceivePackSession serves a push.
func (t *inProcess) NewReceivePackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.ReceivePackSession, error) {
	st, err := t.loader.Load(ep)
	if err != nil {
		return nil, err
	}
	s, err := t.server.NewReceivePackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return &checkedPush{ReceivePackSession: s, refs: st, lock: &t.refs}, nil
}

// shallowUpload answers fetches as git's upload-pack does, depth included: go-git's server advertises
// the references but refuses shallow requests, and rollout reads the default branch at depth 1.
type shallowUpload struct {
	transport.UploadPackSession
	objects storer.EncodedObjectStorer
}

// UploadPack sends the objects the wants reach and the haves do not. With a depth of n commits it
// sends only the first n commits of each want's history, and names the last ones as shallow.
func (s *shallowUpload) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	if req.IsEmpty() {
		return nil, transport.ErrEmptyUploadPackRequest
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	haves, err := revlist.Objects(s.objects, req.Haves, nil)
	if err != nil {
		return nil, fmt.Errorf("walk haves: %w", err)
	}
	depth := 0
	if d, ok := req.Depth.(packp.DepthCommits); ok {
		depth = int(d)
	} else if req.Depth != nil && !req.Depth.IsZero() {
		return nil, fmt.Errorf("only a depth in commits is supported")
	}
	var objs, shallows []plumbing.Hash
	if depth == 0 {
		objs, err = revlist.Objects(s.objects, req.Wants, haves)
	} else {
		objs, shallows, err = s.shallowObjects(req.Wants, depth, haves)
	}
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := packfile.NewEncoder(pw, s.objects, false).Encode(objs, 10)
		pw.CloseWithError(err)
	}()
	resp := packp.NewUploadPackResponseWithPackfile(req, ioutil.NewContextReadCloser(ctx, pr))
	resp.ShallowUpdate.Shallows = shallows
	return resp, nil
}

// shallowObjects walks at most depth commits down from each want and returns their objects that
// the client does not have, and the commits whose parents it left out.
func (s *shallowUpload) shallowObjects(wants []plumbing.Hash, depth int, haves []plumbing.Hash) (objs, shallows []plumbing.Hash, err error) {
	seen := map[plumbing.Hash]bool{}
	for _, h := range haves {
		seen[h] = true
	}
	type level struct {
		hash  plumbing.Hash
		depth int
	}
	queue := make([]level, 0, len(wants))
	for _, w := range wants {
		queue = append(queue, level{w, 1})
	}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		if seen[next.hash] {
			continue
		}
		seen[next.hash] = true
		c, err := object.GetCommit(s.objects, next.hash)
		if err != nil {
			return nil, nil, fmt.Errorf("read commit %s: %w", next.hash, err)
		}
		objs = append(objs, c.Hash)
		if objs, err = s.treeObjects(c.TreeHash, seen, objs); err != nil {
			return nil, nil, err
		}
		if next.depth >= depth {
			if c.NumParents() > 0 {
				shallows = append(shallows, c.Hash)
			}
			continue
		}
		for _, p := range c.ParentHashes {
			queue = append(queue, level{p, next.depth + 1})
		}
	}
	return objs, shallows, nil
}

// treeObjects appends the tree and every tree and blob under it that is not seen yet.
func (s *shallowUpload) treeObjects(h plumbing.Hash, seen map[plumbing.Hash]bool, objs []plumbing.Hash) ([]plumbing.Hash, error) {
	if seen[h] {
		return objs, nil
	}
	seen[h] = true
	objs = append(objs, h)
	tree, err := object.GetTree(s.objects, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	for _, e := range tree.Entries {
		switch {
		case e.Mode == filemode.Dir:
			if objs, err = s.treeObjects(e.Hash, seen, objs); err != nil {
				return nil, err
			}
		case e.Mode == filemode.Submodule || seen[e.Hash]:
		default:
			seen[e.Hash] = true
			objs = append(objs, e.Hash)
		}
	}
	return objs, nil
}

// checkedPush refuses the whole update when a ref is not at the old value the client expects, as git's
// receive-pack does under its ref lock.
type checkedPush struct {
	transport.ReceivePackSession
	refs storer.ReferenceStorer
	lock *sync.Mutex
}

// errStaleRef reads like git's own refusal, so a client classifies it as a lost race.
var errStaleRef = errors.New("failed to update ref: stale info")

func (s *checkedPush) ReceivePack(ctx context.Context, req *packp.ReferenceUpdateRequest) (*packp.ReportStatus, error) {
	s.lock.Lock()
	defer s.lock.Unlock()
	for _, cmd := range req.Commands {
		current := plumbing.ZeroHash
		ref, err := s.refs.Reference(cmd.Name)
		switch {
		case err == nil:
			current = ref.Hash()
		case !errors.Is(err, plumbing.ErrReferenceNotFound):
			return nil, fmt.Errorf("read %s: %w", cmd.Name, err)
		}
		if current != cmd.Old {
			if req.Packfile != nil {
				_ = req.Packfile.Close()
			}
			return nil, fmt.Errorf("command error on %s: %w (at %s, expected %s)", cmd.Name, errStaleRef, current, cmd.Old)
		}
	}
	return s.ReceivePackSession.ReceivePack(ctx, req)
}
