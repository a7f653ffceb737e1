package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/memory"
)

// listReached reads the remote's refs and, in the same session, asks the remote which heads of the
// branches that pick selects the default branch's head reaches, however deep the history. It wants
// those heads and says it has the default head, so the remote sends exactly the commits that the
// default branch does not reach: a head that does not arrive is in the default branch's history.
// Two round trips, whatever the number of branches or the length of the history; the pack holds
// only the branches' own commits. A head the default head reaches is in reached; so is the default
// head itself.
func (r *Remote) listReached(ctx context.Context, pick func(plumbing.ReferenceName) bool) (refs []*plumbing.Reference, reached map[plumbing.Hash]bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ep, err := transport.NewEndpoint(r.url)
	if err != nil {
		return nil, nil, fmt.Errorf("remote %s: %w", r.shown, err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return nil, nil, fmt.Errorf("remote %s: %w", r.shown, err)
	}
	sess, err := cl.NewUploadPackSession(ep, r.auth)
	if err != nil {
		return nil, nil, r.wrap("connect to", err)
	}
	defer func() {
		if cerr := sess.Close(); cerr != nil && err == nil {
			err = r.wrap("close session with", cerr)
		}
	}()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return nil, nil, r.wrap("list refs of", err)
	}
	all, err := ar.AllReferences()
	if err != nil {
		return nil, nil, r.wrap("list refs of", err)
	}
	for _, ref := range all {
		refs = append(refs, ref)
	}

	reached = map[plumbing.Hash]bool{}
	var defaultHead plumbing.Hash
	if ref, ok := all[plumbing.NewBranchReferenceName(r.branch)]; ok {
		defaultHead = ref.Hash()
		reached[defaultHead] = true
	}
	var wants []plumbing.Hash
	for name, ref := range all {
		if ref.Type() == plumbing.HashReference && pick(name) && !reached[ref.Hash()] && !slices.Contains(wants, ref.Hash()) {
			wants = append(wants, ref.Hash())
		}
	}
	if len(wants) == 0 || defaultHead.IsZero() {
		return refs, reached, nil
	}
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	if ar.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return nil, nil, err
		}
	}
	req.Wants = wants
	req.Haves = []plumbing.Hash{defaultHead}
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return nil, nil, r.wrap("read history of", err)
	}
	defer resp.Close()
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	st := memory.NewStorage()
	if err := packfile.UpdateObjectStorage(st, pack); err != nil && !errors.Is(err, packfile.ErrEmptyPackfile) {
		return nil, nil, r.wrap("read history of", err)
	}
	for _, h := range wants {
		if _, err := st.EncodedObject(plumbing.CommitObject, h); errors.Is(err, plumbing.ErrObjectNotFound) {
			reached[h] = true
		}
	}
	return refs, reached, nil
}
