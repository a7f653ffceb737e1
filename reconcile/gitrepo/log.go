package gitrepo

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/rollout-dev/rollout/reconcile"
)

// Commit is one commit of a file's history, as `rollout history` and `rollout status` show it.
type Commit struct {
	Hash        string
	AuthorName  string
	AuthorEmail string
	When        time.Time
	// Subject is the message's first line; Body the rest, trailers included.
	Subject string
	Body    string
	// Trailers are the "Key: value" lines of the message's last paragraph, such as Rollout and
	// Rollout-Decision. A key given twice keeps its last value.
	Trailers map[string]string
	// Content is the file at this commit; nil when the commit deleted it.
	Content []byte
	// Bot is true when the bot made the commit.
	Bot bool
}

// Log returns the commits of the branch that changed the file at path, newest first, at most n
// (0: all). Like `git log -- path`, a merge that took the file unchanged from one side is followed
// down that side only, so a merged pull request shows as the commit that made the change.
// It fetches the branch's whole history: one fetch. To read the logs of many files, use History.
func (r *Remote) Log(ctx context.Context, path string, n int) ([]Commit, error) {
	h, err := r.History(ctx)
	if err != nil {
		return nil, err
	}
	return h.Log(path, n)
}

// History is the whole history of the branch, fetched once, for reading the logs of many files (as
// `rollout status` does for every rollout). It is safe for concurrent use.
type History struct {
	st       *memory.Storage
	head     plumbing.Hash
	botEmail string
}

// History fetches the branch's whole history: one fetch.
func (r *Remote) History(ctx context.Context) (*History, error) {
	st := memory.NewStorage()
	if err := r.fetch(ctx, st, 0, r.branch); err != nil {
		return nil, err
	}
	head, err := remoteHead(st, r.branch)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return &History{st: st, head: head, botEmail: r.email}, nil
}

// Log is Remote.Log on the fetched history.
func (h *History) Log(path string, n int) ([]Commit, error) {
	out, err := fileHistory(h.st, h.head, path, n, h.botEmail)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", path, err)
	}
	return out, nil
}

// fileHistory walks the history from head, newest first, simplifying merges as git log does.
func fileHistory(st *memory.Storage, head plumbing.Hash, path string, n int, botEmail string) ([]Commit, error) {
	blobs := &pathResolver{st: st, path: strings.Split(path, "/"), byCommit: map[plumbing.Hash]plumbing.Hash{}, byTree: map[treeKey]plumbing.Hash{}}
	fileBlob := blobs.commitBlob
	var out []Commit
	queue := &commitQueue{}
	seen := map[plumbing.Hash]bool{}
	push := func(h plumbing.Hash) error {
		if seen[h] {
			return nil
		}
		seen[h] = true
		c, err := object.GetCommit(st, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil // beyond a shallow boundary
		}
		if err != nil {
			return err
		}
		heap.Push(queue, c)
		return nil
	}
	if err := push(head); err != nil {
		return nil, err
	}
	for queue.Len() > 0 && (n <= 0 || len(out) < n) {
		c := heap.Pop(queue).(*object.Commit)
		blob, err := fileBlob(c)
		if err != nil {
			return nil, err
		}
		var parents []plumbing.Hash
		changed := true
		for _, ph := range c.ParentHashes {
			pc, err := object.GetCommit(st, ph)
			if err != nil {
				continue
			}
			pb, err := fileBlob(pc)
			if err != nil {
				return nil, err
			}
			if pb == blob {
				// Treesame with this parent: the change, if any, came from there.
				parents = []plumbing.Hash{ph}
				changed = false
				break
			}
			parents = append(parents, ph)
		}
		if len(c.ParentHashes) == 0 && blob.IsZero() {
			changed = false
		}
		if changed {
			content, err := blobContent(st, blob)
			if err != nil {
				return nil, err
			}
			out = append(out, newCommit(c, content, botEmail))
		}
		for _, ph := range parents {
			if err := push(ph); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// pathResolver finds one path's blob in many commits. It remembers each commit's answer, and each
// folder's answer by the folder's tree hash: most commits leave the specs folder alone, so most
// lookups never decode it again.
type pathResolver struct {
	st       *memory.Storage
	path     []string
	byCommit map[plumbing.Hash]plumbing.Hash
	byTree   map[treeKey]plumbing.Hash
}

type treeKey struct {
	tree  plumbing.Hash
	depth int
}

// commitBlob is the hash of the path's blob in c, zero when absent.
func (p *pathResolver) commitBlob(c *object.Commit) (plumbing.Hash, error) {
	if h, ok := p.byCommit[c.Hash]; ok {
		return h, nil
	}
	h, err := p.treeBlob(c.TreeHash, 0)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("tree of %s: %w", c.Hash, err)
	}
	p.byCommit[c.Hash] = h
	return h, nil
}

func (p *pathResolver) treeBlob(tree plumbing.Hash, depth int) (plumbing.Hash, error) {
	key := treeKey{tree, depth}
	if h, ok := p.byTree[key]; ok {
		return h, nil
	}
	t, err := object.GetTree(p.st, tree)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var h plumbing.Hash
	for _, e := range t.Entries {
		if e.Name != p.path[depth] {
			continue
		}
		last := depth == len(p.path)-1
		switch {
		case last && e.Mode.IsFile():
			h = e.Hash
		case !last && e.Mode == filemode.Dir:
			if h, err = p.treeBlob(e.Hash, depth+1); err != nil {
				return plumbing.ZeroHash, err
			}
		}
		break
	}
	p.byTree[key] = h
	return h, nil
}

func blobContent(st *memory.Storage, h plumbing.Hash) ([]byte, error) {
	if h.IsZero() {
		return nil, nil
	}
	blob, err := object.GetBlob(st, h)
	if err != nil {
		return nil, err
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b := make([]byte, blob.Size)
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, err
	}
	return b, nil
}

func newCommit(c *object.Commit, content []byte, botEmail string) Commit {
	subject, body, _ := strings.Cut(strings.TrimRight(c.Message, "\n"), "\n")
	return Commit{
		Hash:        c.Hash.String(),
		AuthorName:  c.Author.Name,
		AuthorEmail: c.Author.Email,
		When:        c.Author.When,
		Subject:     strings.TrimSpace(subject),
		Body:        strings.TrimSpace(body),
		Trailers:    ParseTrailers(c.Message),
		Content:     content,
		Bot:         strings.EqualFold(c.Author.Email, botEmail),
	}
}

// ParseTrailers reads the trailers of a commit message: the "Key: value" lines of its last paragraph,
// as git interpret-trailers does (see reconcile.ParseTrailers).
func ParseTrailers(message string) map[string]string { return reconcile.ParseTrailers(message) }

// commitQueue orders commits newest first by committer time, as git log does.
type commitQueue []*object.Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	return q[i].Committer.When.After(q[j].Committer.When)
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*object.Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}
