package gitrepo

import (
	"context"

	"github.com/rollout-dev/rollout/reconcile"
)

var _ reconcile.FileHistory = (*Remote)(nil)

// FileLog is Log as the reconciler reads it to verify its own bookkeeping: the commits of the branch
// that changed path, newest first, at most n (0: all), each with its trailers and whether the bot made
// it. It fetches the branch's history: one fetch.
func (r *Remote) FileLog(ctx context.Context, path string, n int) ([]reconcile.CommitInfo, error) {
	commits, err := r.Log(ctx, path, n)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.CommitInfo, len(commits))
	for i, c := range commits {
		out[i] = reconcile.CommitInfo{Hash: c.Hash, Bot: c.Bot, Trailers: c.Trailers}
	}
	return out, nil
}
