package reconcile

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing/fstest"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// memRepo is an in-memory git remote: branches point at commits, commits hold whole trees. It checks
// what a real remote checks: a push whose expected head is not the branch's head is stale, and a push
// that does not descend from the old head needs Force.
type memRepo struct {
	mu       sync.Mutex
	def      string
	bot      string
	branches map[string]string
	commits  map[string]*memCommit
	seq      int
	// beforePush runs at the start of each push, outside the lock: tests push there as someone else.
	beforePush func(req PushRequest)
	pushes     []PushRequest
	stale      int
}

type memCommit struct {
	parent  string
	files   map[string][]byte
	message string
	author  string
}

var (
	_ Repository  = (*memRepo)(nil)
	_ FileHistory = (*memRepo)(nil)
)

// FileLog walks the default branch from its head and returns the commits that changed path, with the
// trailers of their message's last paragraph, as git interpret-trailers reads them.
func (r *memRepo) FileLog(ctx context.Context, path string, n int) ([]CommitInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []CommitInfo
	for id := r.branches[r.def]; id != "" && (n == 0 || len(out) < n); id = r.commits[id].parent {
		c := r.commits[id]
		var before []byte
		if c.parent != "" {
			before = r.commits[c.parent].files[path]
		}
		if string(before) == string(c.files[path]) {
			continue
		}
		paras := strings.Split(strings.TrimSpace(c.message), "\n\n")
		trailers := map[string]string{}
		if len(paras) > 1 {
			for _, line := range strings.Split(paras[len(paras)-1], "\n") {
				if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") {
					trailers[k] = v
				}
			}
		}
		out = append(out, CommitInfo{Hash: id, Bot: c.author == r.bot, Trailers: trailers})
	}
	return out, nil
}

func newMemRepo(files map[string]string) *memRepo {
	r := &memRepo{def: "main", bot: "rollout-bot", branches: map[string]string{}, commits: map[string]*memCommit{}}
	tree := map[string][]byte{}
	for p, c := range files {
		tree[p] = []byte(c)
	}
	r.branches["main"] = r.store(&memCommit{files: tree, message: "initial", author: "alice"})
	return r
}

func (r *memRepo) store(c *memCommit) string {
	r.seq++
	h := sha1.Sum([]byte(fmt.Sprintf("%d %s %s", r.seq, c.parent, c.message)))
	id := hex.EncodeToString(h[:])
	r.commits[id] = c
	return id
}

func (r *memRepo) Snapshot(ctx context.Context) (*Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	head := r.branches[r.def]
	fsys := fstest.MapFS{}
	for p, c := range r.commits[head].files {
		fsys[p] = &fstest.MapFile{Data: c}
	}
	return &Snapshot{Branch: r.def, Head: head, Files: fsys}, nil
}

func (r *memRepo) Push(ctx context.Context, req PushRequest) (string, error) {
	if r.beforePush != nil {
		r.beforePush(req)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.branches[req.Branch] != req.Expect {
		r.stale++
		return "", fmt.Errorf("push %s: %w", req.Branch, ErrStale)
	}
	parent, ok := r.commits[req.Parent]
	if !ok {
		return "", fmt.Errorf("push %s: unknown parent %s", req.Branch, req.Parent)
	}
	if req.Expect != "" && !r.ancestor(req.Expect, req.Parent) && !req.Force {
		return "", fmt.Errorf("push %s: non-fast-forward", req.Branch)
	}
	tree := maps.Clone(parent.files)
	for p, c := range req.Files {
		if c == nil {
			delete(tree, p)
		} else {
			tree[p] = c
		}
	}
	id := r.store(&memCommit{parent: req.Parent, files: tree, message: req.Message, author: r.bot})
	r.branches[req.Branch] = id
	r.pushes = append(r.pushes, req)
	return id, nil
}

func (r *memRepo) Branch(ctx context.Context, name, base string) (BranchState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	head := r.branches[name]
	st := BranchState{Head: head, OnlyBot: true}
	baseHead := r.branches[base]
	for c := head; c != "" && !r.ancestor(c, baseHead); c = r.commits[c].parent {
		if r.commits[c].author != r.bot {
			st.OnlyBot = false
		}
	}
	return st, nil
}

// ancestor reports whether a is b or one of its ancestors.
func (r *memRepo) ancestor(a, b string) bool {
	for c := b; c != ""; c = r.commits[c].parent {
		if c == a {
			return true
		}
	}
	return false
}

// commitAs commits files on branch as author, as a human would with git push.
func (r *memRepo) commitAs(branch, author, message string, files map[string]string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	parent := r.branches[branch]
	tree := maps.Clone(r.commits[parent].files)
	for p, c := range files {
		tree[p] = []byte(c)
	}
	id := r.store(&memCommit{parent: parent, files: tree, message: message, author: author})
	r.branches[branch] = id
	return id
}

// squashMerge lands the files a branch changed on the default branch, as a human merging the proposal.
func (r *memRepo) squashMerge(branch string) string {
	r.mu.Lock()
	head := r.commits[r.branches[branch]]
	base := r.commits[head.parent]
	changed := map[string]string{}
	for p, c := range head.files {
		if string(base.files[p]) != string(c) {
			changed[p] = string(c)
		}
	}
	r.mu.Unlock()
	return r.commitAs(r.def, "alice", "Merge "+branch, changed)
}

func (r *memRepo) file(branch, path string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.commits[r.branches[branch]].files[path])
}

func (r *memRepo) head(branch string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.branches[branch]
}

func (r *memRepo) commit(id string) *memCommit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commits[id]
}

// log returns the messages' first lines from head back to the initial commit.
func (r *memRepo) log(branch string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for c := r.branches[branch]; c != ""; c = r.commits[c].parent {
		first, _, _ := strings.Cut(r.commits[c].message, "\n")
		out = append(out, first)
	}
	return out
}

// fakeForge keeps proposals in memory the way a forge does: one per branch while open, numbered.
type fakeForge struct {
	mu        sync.Mutex
	repo      *memRepo
	proposals []*Proposal
	calls     []string
	comments  map[int]string
	listErr   error
	closeErr  error
	// humans lists, by proposal number, the commits the forge knows a human made.
	humans map[int][]string
}

var _ Forge = (*fakeForge)(nil)

func newFakeForge(repo *memRepo) *fakeForge {
	return &fakeForge{repo: repo, comments: map[int]string{}}
}

func (f *fakeForge) Proposals(ctx context.Context) (map[string]Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "list")
	if f.listErr != nil {
		return nil, f.listErr
	}
	out := map[string]Proposal{}
	for _, p := range f.proposals { // in creation order: the latest wins, an open one wins over all
		if cur, ok := out[p.Rollout]; ok && cur.State == ProposalOpen {
			continue
		}
		cp := *p
		cp.Head = f.repo.head(p.Branch)
		cp.HumanCommits = f.humans[p.Number]
		out[p.Rollout] = cp
	}
	return out, nil
}

func (f *fakeForge) Propose(ctx context.Context, req ProposalRequest) (Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Base != f.repo.def || req.Rollout == "" || !strings.HasPrefix(req.Branch, "rollout/") {
		return Proposal{}, fmt.Errorf("bad proposal request %+v", req)
	}
	for _, p := range f.proposals {
		if p.Branch == req.Branch && p.State == ProposalOpen {
			f.calls = append(f.calls, fmt.Sprintf("update #%d", p.Number))
			p.Title, p.Body = req.Title, req.Body
			return *p, nil
		}
	}
	n := len(f.proposals) + 1
	p := &Proposal{Rollout: req.Rollout, Branch: req.Branch, Number: n, URL: fmt.Sprintf("https://forge.test/pr/%d", n),
		Title: req.Title, Body: req.Body, State: ProposalOpen}
	f.proposals = append(f.proposals, p)
	f.calls = append(f.calls, fmt.Sprintf("open #%d", n))
	return *p, nil
}

func (f *fakeForge) Close(ctx context.Context, p Proposal, comment string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("close #%d", p.Number))
	if f.closeErr != nil {
		return f.closeErr
	}
	for _, q := range f.proposals {
		if q.Number == p.Number {
			q.State = ProposalClosed
			f.comments[q.Number] = comment
		}
	}
	return nil
}

// merge merges proposal n: the branch lands on the default branch.
func (f *fakeForge) merge(n int) {
	f.mu.Lock()
	p := f.proposals[n-1]
	p.State = ProposalMerged
	f.mu.Unlock()
	f.repo.squashMerge(p.Branch)
}

// closeByHuman closes proposal n without merging.
func (f *fakeForge) closeByHuman(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals[n-1].State = ProposalClosed
}

func (f *fakeForge) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// fakeNotifier records events; err makes every delivery fail.
type fakeNotifier struct {
	mu     sync.Mutex
	events []Event
	err    error
}

var _ Notifier = (*fakeNotifier)(nil)

func (n *fakeNotifier) Notify(ctx context.Context, targets []rollouts.Notify, ev Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	n.events = append(n.events, ev)
	return nil
}

// fakeSource answers Stats from a function.
type fakeSource func(q policy.Query) (*policy.Stats, error)

func (f fakeSource) Stats(ctx context.Context, q policy.Query) (*policy.Stats, error) { return f(q) }

// scriptedJudge is a judge whose verdict for a Progressing rollout with a started window is set by the
// test; it starts Pending rollouts and merged advances the way the contract says.
type scriptedJudge struct {
	mu      sync.Mutex
	verdict map[string]policy.Action
	panics  map[string]bool
	reasons []string
	metrics []policy.RuleResult
	seen    []policy.Evidence
}

func (j *scriptedJudge) set(rollout string, a policy.Action) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.verdict == nil {
		j.verdict = map[string]policy.Action{}
	}
	j.verdict[rollout] = a
}

func (j *scriptedJudge) Judge(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seen = append(j.seen, ev)
	if j.panics[spec.Name] {
		panic("judge exploded")
	}
	d := policy.Decision{Rollout: spec.Name, Action: policy.Hold, Current: policy.Step{Weight: spec.Traffic.Weight, Shadow: spec.Traffic.Shadow}}
	st := spec.Status
	if spec.Canary == nil {
		return d
	}
	if st == nil || func() bool { _, c := rollouts.CanaryChanged(spec); return c }() {
		s := spec.Stages[0]
		d.Action, d.Next, d.Reasons = policy.Start, &policy.Step{Stage: 0, Weight: s.Weight, Shadow: s.Shadow}, []string{"new canary"}
		return d
	}
	d.Current.Stage = st.Stage
	if st.Phase != rollouts.Progressing {
		return d
	}
	if st.StageStartedAt.IsZero() {
		s := spec.Stages[st.Stage]
		d.Action, d.Next, d.Reasons = policy.Start, &policy.Step{Stage: st.Stage, Weight: s.Weight, Shadow: s.Shadow}, []string{"stage landed"}
		return d
	}
	d.Reasons, d.Metrics = j.reasons, j.metrics
	switch a := j.verdict[spec.Name]; a {
	case policy.Advance:
		if st.Stage+1 >= len(spec.Stages) {
			d.Action = policy.Promote
			return d
		}
		s := spec.Stages[st.Stage+1]
		d.Action, d.Next = a, &policy.Step{Stage: st.Stage + 1, Weight: s.Weight, Shadow: s.Shadow}
	case policy.Rollback:
		d.Action, d.Next = a, &policy.Step{Stage: st.Stage}
	case policy.Promote:
		d.Action = a
	}
	return d
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var errDown = errors.New("connection refused")
