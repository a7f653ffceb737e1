package gitrepo

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
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
	// Path is the file's path at this commit: the path Log was asked for, or, below a commit that
	// renamed the file, the path it had before.
	Path string
}

// Log returns the commits of the branch that changed the file at path, newest first, at most n
// (0: all). Like `git log -- path`, a merge that took the file unchanged from one side is followed
// down that side only, so a merged pull request shows as the commit that made the change. Like
// `git log --follow`, the log goes on below a commit that renamed or moved the spec (identical, or
// edited but with the same top-level name:) at the path it had before; each Commit says its Path.
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

// fileHistory walks the history from head, newest first, simplifying merges as git log does, and
// following the file across renames as `git log --follow` does. Each step of the walk carries the path
// it follows: when the walk reaches the commit that created the file there, and a parent held a spec
// of the same rollout that the commit deleted (an identical file, or one with the same top-level
// name:), that parent is followed at the old path. A file that is created where an unrelated rollout
// was deleted earlier is not stitched to it: the walk stops at the older rollout's deletion.
func fileHistory(st *memory.Storage, head plumbing.Hash, path string, n int, botEmail string) ([]Commit, error) {
	w := &fileWalk{st: st, resolvers: map[string]*pathResolver{}, seen: map[plumbing.Hash]bool{}, queue: &commitQueue{}}
	var out []Commit
	if err := w.push(head, path, ""); err != nil {
		return nil, err
	}
	for w.queue.Len() > 0 && (n <= 0 || len(out) < n) {
		step := w.queue.next()
		c, blobs := step.commit, w.resolver(step.path)
		blob, err := blobs.commitBlob(c)
		if err != nil {
			return nil, err
		}
		// The name of the rollout whose file is absent here, carried down from the commit that created
		// it, so that an older file at the same path is followed only when it is that rollout's.
		gapName := ""
		if blob.IsZero() {
			gapName = step.gapName
		}
		var parents []*object.Commit
		changed, excluded := true, 0
		for _, ph := range c.ParentHashes {
			pc, err := object.GetCommit(st, ph)
			if err != nil {
				continue // beyond a shallow boundary
			}
			pb, err := blobs.commitBlob(pc)
			if err != nil {
				return nil, err
			}
			if pb == blob {
				// Treesame with this parent: the change, if any, came from there.
				parents = []*object.Commit{pc}
				changed = false
				break
			}
			if gapName != "" {
				name, err := w.specName(pb)
				if err != nil {
					return nil, err
				}
				if name != gapName {
					excluded++ // another rollout's file, which this commit deleted: not this history
					continue
				}
			}
			parents = append(parents, pc)
		}
		if blob.IsZero() && (len(c.ParentHashes) == 0 || len(parents) == 0 && excluded > 0) {
			changed = false
		}
		if changed {
			content, err := blobContent(st, blob)
			if err != nil {
				return nil, err
			}
			commit := newCommit(c, content, botEmail)
			commit.Path = step.path
			out = append(out, commit)
		}
		for _, pc := range parents {
			if err := w.followParent(c, pc, step.path, blob, gapName); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// fileWalk is the state of one fileHistory walk.
type fileWalk struct {
	st        *memory.Storage
	resolvers map[string]*pathResolver
	seen      map[plumbing.Hash]bool
	queue     *commitQueue
	names     map[plumbing.Hash]string
}

// walkStep is a commit to visit and the path of the file there.
type walkStep struct {
	commit *object.Commit
	path   string
	// gapName is the name of the rollout whose history the walk follows where the file is absent.
	gapName string
}

// resolver is the pathResolver of path, made once per walk.
func (w *fileWalk) resolver(path string) *pathResolver {
	r, ok := w.resolvers[path]
	if !ok {
		r = &pathResolver{st: w.st, path: strings.Split(path, "/"), byCommit: map[plumbing.Hash]plumbing.Hash{}, byTree: map[treeKey]plumbing.Hash{}}
		w.resolvers[path] = r
	}
	return r
}

// push queues commit h, at path, unless the walk has already queued it.
func (w *fileWalk) push(h plumbing.Hash, path, gapName string) error {
	if w.seen[h] {
		return nil
	}
	w.seen[h] = true
	c, err := object.GetCommit(w.st, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil // beyond a shallow boundary
	}
	if err != nil {
		return err
	}
	w.queue.add(walkStep{commit: c, path: path, gapName: gapName})
	return nil
}

// followParent queues parent p of c. Where c created the file at path (p lacks it), p is followed at
// the path of the spec c renamed, if any; else at path, remembering which rollout c created, so that
// the walk does not wander into an unrelated rollout deleted earlier at the same path.
func (w *fileWalk) followParent(c, p *object.Commit, path string, blob plumbing.Hash, gapName string) error {
	if blob.IsZero() {
		return w.push(p.Hash, path, gapName)
	}
	pb, err := w.resolver(path).commitBlob(p)
	if err != nil {
		return err
	}
	if !pb.IsZero() {
		return w.push(p.Hash, path, "")
	}
	name, err := w.specName(blob)
	if err != nil {
		return err
	}
	old, err := w.renamedFrom(p, c, blob, name)
	if err != nil {
		return err
	}
	if old != "" {
		return w.push(p.Hash, old, "")
	}
	return w.push(p.Hash, path, name)
}

// renamedFrom is the path of the spec file that p held and c deleted, and that is the same rollout as
// the blob (named name) c holds at its new path: the identical file, else the file with the same
// top-level name:. It is empty when c deleted no such file.
func (w *fileWalk) renamedFrom(p, c *object.Commit, blob plumbing.Hash, name string) (string, error) {
	deleted := map[string]plumbing.Hash{}
	if err := deletedSpecs(w.st, p.TreeHash, c.TreeHash, "", deleted); err != nil {
		return "", fmt.Errorf("renames in %s: %w", c.Hash, err)
	}
	paths := make([]string, 0, len(deleted))
	for p, h := range deleted {
		if h == blob {
			return p, nil
		}
		paths = append(paths, p)
	}
	if name == "" {
		return "", nil
	}
	sort.Strings(paths)
	for _, p := range paths {
		old, err := w.specName(deleted[p])
		if err != nil {
			return "", err
		}
		if old == name {
			return p, nil
		}
	}
	return "", nil
}

// specName is the top-level name: of the spec in blob h, read leniently (see rolloutName), and
// remembered.
func (w *fileWalk) specName(h plumbing.Hash) (string, error) {
	if h.IsZero() {
		return "", nil
	}
	if name, ok := w.names[h]; ok {
		return name, nil
	}
	content, err := blobContent(w.st, h)
	if err != nil {
		return "", err
	}
	if w.names == nil {
		w.names = map[plumbing.Hash]string{}
	}
	name := rolloutName(content)
	w.names[h] = name
	return name, nil
}

// rolloutName is the top-level name: of one version of a spec, read leniently: an old version may not
// pass today's validation, or parse at all, and is then named by its first unindented name: line.
func rolloutName(content []byte) string {
	var doc struct {
		Name any `yaml:"name"`
	}
	if err := yaml.Unmarshal(content, &doc); err == nil {
		if s, ok := doc.Name.(string); ok {
			return strings.TrimSpace(s)
		}
		if doc.Name != nil {
			return fmt.Sprint(doc.Name)
		}
		return ""
	}
	for _, line := range strings.Split(string(content), "\n") {
		v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "name:")
		if !ok {
			continue
		}
		if i := strings.Index(v, " #"); i >= 0 {
			v = v[:i]
		}
		return strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return ""
}

// deletedSpecs adds to out the spec files (path to blob) under prefix that tree from holds and tree to
// (zero: none) lacks. A folder the two trees share unchanged is not read.
func deletedSpecs(st *memory.Storage, from, to plumbing.Hash, prefix string, out map[string]plumbing.Hash) error {
	ft, err := object.GetTree(st, from)
	if err != nil {
		return err
	}
	kept := map[string]object.TreeEntry{}
	if !to.IsZero() {
		tt, err := object.GetTree(st, to)
		if err != nil {
			return err
		}
		for _, e := range tt.Entries {
			kept[e.Name] = e
		}
	}
	for _, e := range ft.Entries {
		t, ok := kept[e.Name]
		if ok && t.Hash == e.Hash && t.Mode == e.Mode {
			continue
		}
		switch {
		case e.Mode == filemode.Dir:
			sub := plumbing.ZeroHash
			if ok && t.Mode == filemode.Dir {
				sub = t.Hash
			}
			if err := deletedSpecs(st, e.Hash, sub, prefix+e.Name+"/", out); err != nil {
				return err
			}
		case e.Mode.IsFile() && rollouts.IsSpecFile(e.Name) && (!ok || !t.Mode.IsFile()):
			out[prefix+e.Name] = e.Hash
		}
	}
	return nil
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

// commitQueue orders the walk's steps newest first by committer time, as git log does.
type commitQueue []walkStep

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	return q[i].commit.Committer.When.After(q[j].commit.Committer.When)
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(walkStep)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// add queues s. Unlike heap.Push, it does not box the step in an interface: one allocation less for
// every commit of a long history.
func (q *commitQueue) add(s walkStep) {
	*q = append(*q, s)
	heap.Fix(q, len(*q)-1)
}

// next removes and returns the newest step.
func (q *commitQueue) next() walkStep {
	old := *q
	s := old[0]
	last := len(old) - 1
	old[0] = old[last]
	old[last] = walkStep{}
	*q = old[:last]
	if last > 0 {
		heap.Fix(q, 0)
	}
	return s
}
