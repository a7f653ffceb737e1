package reconcile

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// specYAML is a pending rollout: a canary and no status.
const specYAML = `apiVersion: rollout/v1
kind: Rollout
name: NAME
# the canary below was approved in review
stable:
  model: claude-sonnet-4-5-20260301
  prompt: v3
canary:
  model: claude-sonnet-4-5-20260415
  prompt: v3
traffic:
  weight: 0
stages:
  - {weight: 5, minDuration: 4h}
  - {weight: 25, minDuration: 8h}
  - {weight: 100, minDuration: 24h}
metrics:
  source: file:traffic.jsonl
analysis:
  onMetricsError: ON_ERROR
promotion:
  via: VIA
  labels: [rollout]
rollback:
  notify: [{webhook: env:ROLLOUT_ROLLBACK_WEBHOOK}]
`

func specFor(name, via, onError string) string {
	return strings.NewReplacer("NAME", name, "VIA", via, "ON_ERROR", onError).Replace(specYAML)
}

var t0 = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

// harness is a loop over fakes, with a clock the test moves.
type harness struct {
	t      *testing.T
	repo   *memRepo
	forge  *fakeForge
	notes  *fakeNotifier
	judge  *scriptedJudge
	loop   *Loop
	now    time.Time
	srcErr error
	real   bool
}

func newHarness(t *testing.T, files map[string]string) *harness {
	h := &harness{t: t, repo: newMemRepo(files), notes: &fakeNotifier{}, judge: &scriptedJudge{}, now: t0}
	h.forge = newFakeForge(h.repo)
	h.loop = h.newLoop()
	return h
}

// realJudge makes the loop use policy.Judge from now on.
func (h *harness) realJudge() {
	h.real = true
	h.loop.Judge = nil
}

func (h *harness) newLoop() *Loop {
	judge := h.judge.Judge
	if h.real {
		judge = nil
	}
	return &Loop{Repo: h.repo, History: h.repo, Forge: h.forge, Notifier: h.notes, Judge: judge, Now: func() time.Time { return h.now },
		Sources: func(*rollouts.Spec) (policy.Source, error) {
			return fakeSource(func(q policy.Query) (*policy.Stats, error) {
				if h.srcErr != nil {
					return nil, h.srcErr
				}
				return &policy.Stats{}, nil
			}), nil
		},
		Gates: func(context.Context, fs.FS, *rollouts.Spec, int) policy.GateResult {
			return policy.GateResult{Open: true}
		},
	}
}

func (h *harness) tick() *Report {
	h.t.Helper()
	rep, err := h.loop.Tick(context.Background())
	if err != nil {
		h.t.Fatalf("tick: %v", err)
	}
	return rep
}

// only returns the single result of the tick, failing on any error.
func (h *harness) only(rep *Report) Result {
	h.t.Helper()
	if len(rep.Results) != 1 {
		h.t.Fatalf("got %d results, want 1: %+v", len(rep.Results), rep.Results)
	}
	if rep.Results[0].Err != nil {
		h.t.Fatalf("%s: %v", rep.Results[0].Rollout, rep.Results[0].Err)
	}
	return rep.Results[0]
}

// failed returns the single result of the tick, failing unless its error wraps want.
func (h *harness) failed(rep *Report, want error) Result {
	h.t.Helper()
	if len(rep.Results) != 1 {
		h.t.Fatalf("got %d results, want 1: %+v", len(rep.Results), rep.Results)
	}
	if !errors.Is(rep.Results[0].Err, want) {
		h.t.Fatalf("%s: error %v, want %v", rep.Results[0].Rollout, rep.Results[0].Err, want)
	}
	return rep.Results[0]
}

// quiet ticks once more and checks that nothing is written.
func (h *harness) quiet() {
	h.t.Helper()
	before, calls := h.repo.head("main"), len(h.repo.pushes)
	h.forge.takeCalls()
	rep := h.tick()
	for _, r := range rep.Results {
		if r.Err != nil || r.Commit != "" {
			h.t.Errorf("second tick: %s %s commit %q err %v", r.Rollout, r.Decision, r.Commit, r.Err)
		}
	}
	if h.repo.head("main") != before || len(h.repo.pushes) != calls {
		h.t.Errorf("second tick pushed: %v", h.repo.log("main")[:2])
	}
	if c := h.forge.takeCalls(); !slices.Equal(c, []string{"list"}) {
		h.t.Errorf("second tick forge calls = %v, want [list]", c)
	}
}

func (h *harness) spec(name string) *rollouts.Spec {
	h.t.Helper()
	src := h.repo.file("main", "rollouts/"+name+".yaml")
	spec, problems := rollouts.Parse(name, []byte(src))
	if spec == nil {
		h.t.Fatalf("parse %s: %v\n%s", name, problems, src)
	}
	return spec
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update to accept):\n--- want\n%s\n--- got\n%s", p, want, got)
	}
}

// commitDiff is the message and the line diff of one commit, for golden files.
func (h *harness) commitDiff(id string) string {
	c := h.repo.commit(id)
	parent := h.repo.commit(c.parent)
	var b strings.Builder
	b.WriteString(c.message)
	for _, p := range sortedKeys(c.files) {
		if string(parent.files[p]) != string(c.files[p]) {
			b.WriteString("\n--- " + p + "\n")
			b.WriteString(lineDiff(string(parent.files[p]), string(c.files[p])))
		}
	}
	return b.String()
}

// lineDiff is a minimal line diff (longest common subsequence): " " kept, "-" removed, "+" added.
func lineDiff(a, b string) string {
	x, y := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			out.WriteString(" " + x[i])
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			out.WriteString("-" + x[i])
			i++
		default:
			out.WriteString("+" + y[j])
			j++
		}
	}
	return strings.TrimSuffix(out.String(), " ") + "\n"
}

func TestStartThenIdempotent(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	res := h.only(h.tick())
	if res.Decision != policy.Start || res.Commit == "" || res.From != 0 || res.To != 5 {
		t.Fatalf("result = %+v", res)
	}
	st := h.spec("summarizer").Status
	if st.Phase != rollouts.Progressing || st.Stage != 0 || !st.StageStartedAt.Equal(t0) || st.Canary == "" {
		t.Errorf("status = %+v", st)
	}
	golden(t, "start.diff", h.commitDiff(res.Commit))
	h.quiet()
}

func TestAdvanceProposesOnceAndLandsOnMerge(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "auto-merge", "hold")})
	h.tick()
	h.now = t0.Add(5 * time.Hour)
	h.judge.set("summarizer", policy.Advance)
	h.judge.metrics = []policy.RuleResult{{Name: "error_rate", Stable: policy.ArmValue{N: 400, Value: 0.01}, Canary: policy.ArmValue{N: 380, Value: 0.011},
		Verdict: policy.Pass, Interval: &policy.Interval{Low: -0.2, High: 0.3}, Reason: "within 50%"}}
	h.forge.takeCalls()
	res := h.only(h.tick())
	if res.Decision != policy.Advance || res.From != 5 || res.To != 25 || res.Proposal != "https://forge.test/pr/1" {
		t.Fatalf("result = %+v", res)
	}
	if h.repo.head("main") != h.repo.head("main") || h.repo.head("rollout/summarizer") != res.Commit {
		t.Fatalf("advance must push rollout/summarizer only")
	}
	if c := h.forge.takeCalls(); !slices.Equal(c, []string{"list", "open #1"}) {
		t.Errorf("forge calls = %v", c)
	}
	p := h.forge.proposals[0]
	if p.Title != "rollout(summarizer): 5% → 25%" || !strings.Contains(p.Body, "<!-- rollout:summarizer -->") {
		t.Errorf("proposal = %q\n%s", p.Title, p.Body)
	}
	golden(t, "advance.diff", h.commitDiff(res.Commit))
	golden(t, "advance-body.md", p.Body)

	// Same state, same evidence: nothing.
	h.quiet()

	// New evidence: the body is refreshed, nothing is pushed.
	h.judge.metrics[0].Canary.N = 500
	pushes := len(h.repo.pushes)
	res = h.only(h.tick())
	if c := h.forge.takeCalls(); !slices.Equal(c, []string{"list", "update #1"}) || len(h.repo.pushes) != pushes {
		t.Errorf("refresh: forge calls %v, pushes %d→%d", c, pushes, len(h.repo.pushes))
	}
	if !strings.Contains(h.forge.proposals[0].Body, "n=500") {
		t.Errorf("body not refreshed:\n%s", h.forge.proposals[0].Body)
	}

	// The merge lands stage 1 without a window start; the next tick records it as a start.
	h.forge.merge(1)
	h.now = t0.Add(6 * time.Hour)
	h.judge.set("summarizer", policy.Hold)
	res = h.only(h.tick())
	st := h.spec("summarizer").Status
	if res.Decision != policy.Start || st.Stage != 1 || !st.StageStartedAt.Equal(h.now) || h.spec("summarizer").Traffic.Weight != 25 {
		t.Fatalf("after merge: %+v status %+v", res, st)
	}
	h.quiet()
}

func TestRollbackCommitsClosesAndNotifies(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick() // opens #1
	h.judge.set("summarizer", policy.Rollback)
	h.judge.metrics = []policy.RuleResult{{Name: "error_rate", Verdict: policy.Fail, Reason: "canary 4.1% > max 2%"}}
	h.forge.takeCalls()
	res := h.only(h.tick())
	if res.Decision != policy.Rollback || res.To != 0 || h.repo.head("main") != res.Commit || res.Proposal != "" {
		t.Fatalf("result = %+v", res)
	}
	spec := h.spec("summarizer")
	if spec.Traffic.Weight != 0 || spec.Status.Phase != rollouts.RolledBack {
		t.Errorf("spec after rollback: traffic %+v status %+v", spec.Traffic, spec.Status)
	}
	if c := h.forge.takeCalls(); !slices.Equal(c, []string{"list", "close #1"}) {
		t.Errorf("forge calls = %v", c)
	}
	if !strings.Contains(h.forge.comments[1], res.Commit) {
		t.Errorf("close comment %q does not link %s", h.forge.comments[1], res.Commit)
	}
	want := Event{Rollout: "summarizer", Decision: "rollback", From: 5, To: 0, Reasons: []string{"error_rate: canary 4.1% > max 2%"}, Commit: res.Commit}
	if len(h.notes.events) != 1 || !eventEqual(h.notes.events[0], want) {
		t.Errorf("events = %+v, want %+v", h.notes.events, want)
	}
	golden(t, "rollback.diff", h.commitDiff(res.Commit))
	h.quiet()
}

func eventEqual(a, b Event) bool {
	return a.Rollout == b.Rollout && a.Decision == b.Decision && a.From == b.From && a.To == b.To &&
		slices.Equal(a.Reasons, b.Reasons) && a.Commit == b.Commit
}

func TestFailedNotificationIsRetriedFromGit(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Rollback)
	h.judge.reasons = []string{"error_rate failed"}
	h.notes.err = errors.New("webhook answered 500")
	rep := h.tick()
	res := rep.Results[0]
	if res.Decision != policy.Rollback || res.Commit == "" || res.Err == nil {
		t.Fatalf("a failed notification is reported and keeps the rollback: %+v", res)
	}
	rollbackCommit := res.Commit
	if !notifyPending(h.spec("summarizer").Status.Message) || h.spec("summarizer").Traffic.Weight != 0 {
		t.Fatalf("pending notification not recorded: %+v", h.spec("summarizer").Status)
	}
	// A new process (a stateless cron run) delivers it.
	h.notes.err = nil
	h.loop = h.newLoop()
	res = h.only(h.tick())
	if len(h.notes.events) != 1 || h.notes.events[0].From != 5 || notifyPending(h.spec("summarizer").Status.Message) {
		t.Fatalf("retry: %+v events %+v status %+v", res, h.notes.events, h.spec("summarizer").Status)
	}
	if got := h.notes.events[0].Commit; got != rollbackCommit {
		t.Errorf("the retried notification names commit %q, want the rollback's %q", got, rollbackCommit)
	}
	if msg := h.spec("summarizer").Status.Message; strings.Contains(msg, "pending") || strings.Contains(msg, rollbackCommit) {
		t.Errorf("the delivered mark is left in the status message: %q", msg)
	}
	h.quiet()
	if len(h.notes.events) != 1 {
		t.Errorf("notified twice")
	}
}

func TestHumanCommitsOnBotBranchAreNeverOverwritten(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick()
	human := h.repo.commitAs("rollout/summarizer", "alice", "tweak the stage", map[string]string{"notes.md": "hi"})
	h.judge.metrics = []policy.RuleResult{{Name: "error_rate", Verdict: policy.Pass}}
	h.forge.takeCalls()
	// A different target (the human also merged something to main that changes the file) would push;
	// it must not push over alice's commit.
	h.repo.commitAs("main", "bob", "describe", map[string]string{"rollouts/summarizer.yaml": h.repo.file("main", "rollouts/summarizer.yaml") + "description: x\n"})
	res := h.only(h.tick())
	if h.repo.head("rollout/summarizer") != human {
		t.Fatalf("bot branch overwritten")
	}
	if res.Effect != "branch has human commits; evidence refreshed" {
		t.Errorf("effect = %q", res.Effect)
	}
	if c := h.forge.takeCalls(); !slices.Equal(c, []string{"list", "update #1"}) {
		t.Errorf("forge calls = %v", c)
	}
}

func TestClosedProposalIsNotReopenedUntilTheDecisionChanges(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick()
	h.forge.closeByHuman(1)
	h.forge.takeCalls()
	res := h.only(h.tick())
	if res.Effect != "proposal was closed without merging; not reopened" || len(h.forge.proposals) != 1 {
		t.Fatalf("reopened: %+v", res)
	}
	// The decision changes: the rollout is now judged ready to promote straight away.
	h.judge.set("summarizer", policy.Promote)
	res = h.only(h.tick())
	if res.Decision != policy.Promote || len(h.forge.proposals) != 2 || h.forge.proposals[1].Title != "rollout(summarizer): 5% → 100%" {
		t.Fatalf("promote after close: %+v %v", res, h.forge.takeCalls())
	}
	golden(t, "promote.diff", h.commitDiff(res.Commit))
}

func TestPromotionViaCommitAndPreviousHousekeeping(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "commit", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.now = t0.Add(5 * time.Hour)
	res := h.only(h.tick())
	if res.Decision != policy.Advance || h.repo.head("main") != res.Commit || len(h.forge.proposals) != 0 {
		t.Fatalf("advance via commit: %+v", res)
	}
	if st := h.spec("summarizer").Status; st.Stage != 1 || !st.StageStartedAt.Equal(h.now) {
		t.Fatalf("status = %+v", st)
	}
	h.judge.set("summarizer", policy.Promote)
	res = h.only(h.tick())
	spec := h.spec("summarizer")
	if spec.Canary != nil || spec.Previous == nil || spec.Stable.Model != "claude-sonnet-4-5-20260415" || spec.Status.Phase != rollouts.Completed || !spec.Status.PromotedAt.Equal(h.now) {
		t.Fatalf("after promotion: %+v", spec)
	}
	h.quiet()
	h.now = h.now.Add(31 * 24 * time.Hour)
	res = h.only(h.tick())
	if res.Effect != "drop previous" || h.spec("summarizer").Previous != nil {
		t.Fatalf("previous kept: %+v", res)
	}
	h.quiet()
}

func TestPromotedAtRecordedWhenThePromotionLands(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Promote)
	h.tick()
	h.forge.merge(1)
	h.now = t0.Add(time.Hour)
	res := h.only(h.tick())
	if res.Effect != "record when the promotion landed" || !h.spec("summarizer").Status.PromotedAt.Equal(h.now) {
		t.Fatalf("%+v %+v", res, h.spec("summarizer").Status)
	}
	h.quiet()
}

func TestStalePushIsDecidedAgain(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold"),
		"README.md": "hello\n"})
	h.tick()
	h.judge.set("summarizer", policy.Rollback)
	once := sync.Once{}
	h.repo.beforePush = func(PushRequest) {
		once.Do(func() { h.repo.commitAs("main", "bob", "docs", map[string]string{"README.md": "hello again\n"}) })
	}
	res := h.only(h.tick())
	if res.Decision != policy.Rollback || h.repo.head("main") != res.Commit {
		t.Fatalf("%+v", res)
	}
	if got := h.repo.log("main")[:3]; !slices.Equal(got, []string{"rollout(summarizer): rollback 5% → 0%", "docs", "rollout(summarizer): start stage 0 at 5%"}) {
		t.Errorf("log = %q", got)
	}
}

func TestTwoProcessesLandExactlyOneCommit(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	a, b := h.newLoop(), h.newLoop()
	// Both take their snapshot before either pushes.
	var ready sync.WaitGroup
	ready.Add(2)
	h.repo.beforePush = func(PushRequest) { ready.Done(); ready.Wait() }
	var wg sync.WaitGroup
	reps := make([]*Report, 2)
	for i, l := range []*Loop{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], _ = l.Tick(context.Background())
		}()
	}
	wg.Wait()
	if got := h.repo.log("main"); len(got) != 2 {
		t.Fatalf("log = %q, want one start commit", got)
	}
	commits := 0
	for _, rep := range reps {
		r := rep.Results[0]
		if r.Err != nil {
			t.Errorf("%+v", r)
		}
		if r.Commit != "" {
			commits++
		} else if r.Decision != policy.Hold {
			t.Errorf("loser decided %s after a fresh snapshot, want hold", r.Decision)
		}
	}
	if commits != 1 {
		t.Errorf("%d results carry a commit, want 1", commits)
	}
}

func TestOneRolloutFailingNeverStopsTheOthers(t *testing.T) {
	h := newHarness(t, map[string]string{
		"rollouts/a.yaml":   specFor("a", "pull-request", "hold"),
		"rollouts/b.yaml":   specFor("b", "pull-request", "hold"),
		"rollouts/bad.yaml": "name: bad\nstagez: []\n",
		"rollouts/c.yaml":   specFor("c", "pull-request", "hold"),
	})
	h.judge.panics = map[string]bool{"b": true}
	rep := h.tick()
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.Rollout] = r
	}
	if got["a"].Decision != policy.Start || got["a"].Err != nil || got["c"].Decision != policy.Start || got["c"].Err != nil {
		t.Errorf("a, c = %+v, %+v", got["a"], got["c"])
	}
	if got["b"].Err == nil || !strings.Contains(got["b"].Err.Error(), "internal error") {
		t.Errorf("b = %+v", got["b"])
	}
	if got["bad"].Err == nil || !strings.Contains(got["bad"].Err.Error(), "rollouts/bad.yaml:") {
		t.Errorf("bad = %+v", got["bad"])
	}
	if !rep.Failed() || len(rep.Results) != 4 {
		t.Errorf("report = %+v", rep)
	}
	// c's commit went on top of a's within the same pass, without a rejected push.
	if h.repo.stale != 0 || len(h.repo.pushes) != 2 || h.repo.pushes[1].Parent != got["a"].Commit {
		t.Errorf("%d stale pushes; pushes %+v", h.repo.stale, h.repo.pushes)
	}
}

func TestMetricsFailuresRollBackOnlyWhenAsked(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "rollback")})
	h.realJudge()
	h.tick()
	h.srcErr = errDown
	for i := 1; i <= 2; i++ {
		h.loop = h.newLoop() // stateless cron runs
		res := h.failed(h.tick(), errDown)
		if res.Decision != policy.Hold || h.spec("summarizer").Status.MetricsErrors != i {
			t.Fatalf("failure %d: %+v status %+v", i, res, h.spec("summarizer").Status)
		}
	}
	h.loop = h.newLoop()
	// The rollback lands: that is the pass doing its job, so its row does not say failed; its reasons
	// name the source's failures.
	res := h.only(h.tick())
	if res.Decision != policy.Rollback || res.Commit == "" || h.spec("summarizer").Status.Phase != rollouts.RolledBack {
		t.Fatalf("third failure: %+v", res)
	}
	if reasons := strings.Join(res.Reasons, "\n"); !strings.Contains(reasons, "connection refused") || !strings.Contains(reasons, "3 consecutive metrics failures") {
		t.Errorf("the rollback's reasons do not name the source's failures: %q", reasons)
	}
}

// TestNoDataYetIsNotAFailure: a source that has nothing yet (its file not created) holds with "no data
// yet", writes nothing on the default branch, reports no error, and never rolls back under
// onMetricsError: rollback, however many ticks pass.
func TestNoDataYetIsNotAFailure(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "rollback")})
	h.realJudge()
	h.tick()
	h.srcErr = fmt.Errorf("%w: traffic.jsonl does not exist yet", policy.ErrNoData)
	head := h.repo.head("main")
	for i := 0; i < 2*policy.MaxMetricsErrors; i++ {
		h.now = h.now.Add(time.Hour)
		h.loop = h.newLoop() // stateless cron runs
		res := h.only(h.tick())
		if res.Decision != policy.Hold || res.Commit != "" || !slices.Contains(res.Reasons, "no data yet: traffic.jsonl does not exist yet") {
			t.Fatalf("tick %d: %+v", i, res)
		}
	}
	if h.repo.head("main") != head {
		t.Errorf("no data yet wrote to main: %q", h.repo.log("main")[:3])
	}
	if st := h.spec("summarizer").Status; st.Phase != rollouts.Progressing || st.MetricsErrors != 0 || !st.MetricsFailingSince.IsZero() {
		t.Errorf("status %+v", st)
	}
	if len(h.notes.events) != 0 {
		t.Errorf("events %+v, want none", h.notes.events)
	}
}

func TestMetricsRecoveryResetsTheCount(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "rollback")})
	h.realJudge()
	h.tick()
	h.srcErr = errDown
	h.tick()
	h.srcErr = nil
	h.now = h.now.Add(30 * time.Minute)
	res := h.only(h.tick())
	st := h.spec("summarizer").Status
	if res.Effect != "record that the metrics source recovered" || st.MetricsErrors != 0 || !st.MetricsFailingSince.IsZero() {
		t.Fatalf("%+v status %+v", res, st)
	}
	if msg := h.repo.commit(res.Commit).message; !strings.HasPrefix(msg, "rollout(summarizer): metrics source recovered after 30m0s") ||
		!strings.Contains(msg, TrailerBookkeeping+": metrics") {
		t.Errorf("recovery commit:\n%s", msg)
	}
	h.quiet()
}

// With onMetricsError: hold, stateless runs (a new Loop each tick, as cron and the Action run) record
// the start of the outage once, alert once with that commit, say since when in every tick's reasons,
// fail every tick (exit 1), and record the end once.
func TestMetricsFailuresWithHoldAlertOnceFromGit(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.realJudge()
	h.tick()
	head := h.repo.head("main")
	h.srcErr = errDown
	started := h.now.Add(time.Hour)
	for i := range 5 {
		h.now = started.Add(time.Duration(i) * 15 * time.Minute)
		h.loop = h.newLoop()
		res := h.failed(h.tick(), errDown)
		if res.Decision != policy.Hold {
			t.Fatalf("%+v", res)
		}
		if why := strings.Join(res.Reasons, "; "); !strings.Contains(why, "metrics source failing since 2026-04-16T01:00:00Z") ||
			strings.Contains(why, "consecutive") {
			t.Errorf("tick %d: reasons %q", i, why)
		}
	}
	if log := h.repo.log("main"); log[0] != "rollout(summarizer): metrics source failing" || h.repo.commit(h.repo.head("main")).parent != head {
		t.Errorf("want one commit for the outage's start, log %q", log[:3])
	}
	if got := h.spec("summarizer").Status.MetricsFailingSince; !got.Equal(started) {
		t.Errorf("metricsFailingSince = %v, want %v", got, started)
	}
	if len(h.notes.events) != 1 || h.notes.events[0].Decision != "alert" || h.notes.events[0].Commit != h.repo.head("main") {
		t.Errorf("events = %+v, want one alert", h.notes.events)
	}
	rep, _ := h.loop.Plan(context.Background())
	if r := rep.Results[0]; !errors.Is(r.Err, errDown) {
		t.Errorf("plan does not report the source's error: %+v", r)
	}
	h.srcErr = nil
	h.loop = h.newLoop()
	if res := h.only(h.tick()); !strings.HasPrefix(h.repo.log("main")[0], "rollout(summarizer): metrics source recovered after 1h0m0s") {
		t.Errorf("recovery: %+v log %q", res, h.repo.log("main")[:2])
	}
	h.quiet()
	if len(h.notes.events) != 1 {
		t.Errorf("events = %+v", h.notes.events)
	}
}

func TestPlanWritesNothing(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.notes.err = errors.New("must not be called")
	rep, err := h.loop.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := h.only(rep)
	if res.Decision != policy.Start || res.To != 5 || res.Commit != "" || len(h.repo.pushes) != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestManualOperations(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	ctx := context.Background()
	if _, err := h.loop.Operate(ctx, "summarizer", OpResume, ""); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("resume of a pending rollout: %v", err)
	}
	if _, err := h.loop.Operate(ctx, "nope", OpPause, ""); !errors.Is(err, ErrUnknownRollout) {
		t.Errorf("unknown rollout: %v", err)
	}
	h.tick()
	res, err := h.loop.Operate(ctx, "summarizer", OpPause, "investigating latency")
	if err != nil || h.spec("summarizer").Status.Phase != rollouts.Paused || h.spec("summarizer").Traffic.Weight != 5 {
		t.Fatalf("pause: %+v %v", res, err)
	}
	golden(t, "pause.diff", h.commitDiff(res.Commit))
	h.quiet() // a paused rollout holds
	h.now = t0.Add(2 * time.Hour)
	if _, err := h.loop.Operate(ctx, "summarizer", OpResume, ""); err != nil {
		t.Fatal(err)
	}
	if st := h.spec("summarizer").Status; st.Phase != rollouts.Progressing || !st.StageStartedAt.Equal(h.now) {
		t.Errorf("resume: %+v", st)
	}
	h.judge.set("summarizer", policy.Advance)
	h.tick() // opens #1
	res, err = h.loop.Operate(ctx, "summarizer", OpRollback, "bad outputs reported")
	if err != nil || h.spec("summarizer").Status.Phase != rollouts.RolledBack || h.forge.proposals[0].State != ProposalClosed {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if len(h.notes.events) != 1 || h.notes.events[0].Reasons[0] != "by hand: bad outputs reported" {
		t.Errorf("events = %+v", h.notes.events)
	}
	if _, err := h.loop.Operate(ctx, "summarizer", OpRollback, "again"); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("second rollback: %v", err)
	}
}

func TestForgeFailuresNeverStopARollback(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick() // opens #1
	h.judge.set("summarizer", policy.Rollback)

	// The listing fails: the rollback lands anyway, and the stale proposal is closed on a later pass.
	h.forge.listErr = errors.New("502 bad gateway")
	res := h.tick().Results[0]
	if res.Decision != policy.Rollback || h.repo.head("main") != res.Commit || len(h.notes.events) != 1 {
		t.Fatalf("%+v", res)
	}
	// Issue 16: the proposal left open is reported, and the pass fails (exit 1).
	if res.Err == nil || !strings.Contains(res.Err.Error(), "not closed yet") || !strings.Contains(res.Err.Error(), "502 bad gateway") {
		t.Errorf("the proposal left open is not reported: %v", res.Err)
	}
	// Issue 22: every later pass whose listing still fails says so too, not hold and exit 0.
	for range 2 {
		if r := h.tick().Results[0]; r.Err == nil || !strings.Contains(r.Err.Error(), "not closed yet") {
			t.Errorf("a later pass with the listing failing: %+v", r)
		}
	}
	h.forge.listErr = nil
	h.forge.closeErr = errors.New("503")
	rep := h.tick()
	if r := rep.Results[0]; r.Effect != "close the stale proposal" || r.Err == nil {
		t.Fatalf("close failure not reported: %+v", r)
	}
	h.forge.closeErr = nil
	if r := h.only(h.tick()); r.Effect != "close the stale proposal" || h.forge.proposals[0].State != ProposalClosed {
		t.Fatalf("%+v", r)
	}
	h.quiet()
}

func TestAdvanceNeedsAForge(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.loop.Forge = nil
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	rep := h.tick()
	if r := rep.Results[0]; !errors.Is(r.Err, ErrNoForge) || len(h.repo.pushes) != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestTheForgesWordOnHumanCommitsIsHonoured(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick()
	h.judge.set("summarizer", policy.Advance)
	h.tick()
	head := h.repo.head("rollout/summarizer")
	// The repository sees only bot commits (the human used the bot's email), but GitHub knows better.
	h.forge.humans = map[int][]string{1: {head}}
	h.repo.commitAs("main", "bob", "describe", map[string]string{"rollouts/summarizer.yaml": h.repo.file("main", "rollouts/summarizer.yaml") + "description: x\n"})
	res := h.only(h.tick())
	if h.repo.head("rollout/summarizer") != head || !strings.HasPrefix(res.Effect, "branch has human commits") {
		t.Fatalf("pushed over the human's commit: %+v", res)
	}
}

func TestRollbackViaPullRequest(t *testing.T) {
	src := strings.Replace(specFor("summarizer", "pull-request", "hold"), "rollback:\n", "rollback:\n  via: pull-request\n", 1)
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": src})
	h.tick()
	head := h.repo.head("main")
	h.judge.set("summarizer", policy.Rollback)
	res := h.only(h.tick())
	if res.Decision != policy.Rollback || h.repo.head("main") != head || len(h.forge.proposals) != 1 ||
		h.forge.proposals[0].Title != "rollout(summarizer): rollback 5% → 0%" {
		t.Fatalf("%+v %+v", res, h.forge.proposals)
	}
	if !strings.Contains(h.repo.file("rollout/summarizer", "rollouts/summarizer.yaml"), "phase: RolledBack") {
		t.Errorf("the proposed rollback does not roll back")
	}
	// Someone has to merge it: they are told once, with the proposed commit.
	if n := h.notes.events; len(n) != 1 || n[0].Decision != "rollback" || n[0].From != 5 || n[0].To != 0 ||
		n[0].Commit != h.repo.head("rollout/summarizer") {
		t.Errorf("events = %+v, want one rollback event for the proposed commit", h.notes.events)
	}
	h.tick()
	if len(h.notes.events) != 1 {
		t.Errorf("a later tick notified again: %+v", h.notes.events)
	}
	h.quiet()
}

func TestOverlayShowsTheTicksOwnCommit(t *testing.T) {
	base := fstest.MapFS{"rollouts/a.yaml": {Data: []byte("old")}, "evals/x.json": {Data: []byte("{}")}}
	o := overlayFS{base: base, files: map[string][]byte{"rollouts/a.yaml": []byte("new")}}
	if b, err := fs.ReadFile(o, "rollouts/a.yaml"); err != nil || string(b) != "new" {
		t.Errorf("overlaid file = %q, %v", b, err)
	}
	if b, err := fs.ReadFile(o, "evals/x.json"); err != nil || string(b) != "{}" {
		t.Errorf("other file = %q, %v", b, err)
	}
	if es, err := fs.ReadDir(o, "rollouts"); err != nil || len(es) != 1 {
		t.Errorf("ReadDir = %v, %v", es, err)
	}
}

// TestManualRollbackWhoseNotificationFails: the rollback commit lands, so the operation is done even
// when its notification fails: the failure is deferred (ErrDeferred) to the next pass, which finds the
// notification pending in git, also when someone pushed between the rollback and that record. It is
// never decided again into "operation does not apply: it is rolled back".
func TestManualRollbackWhoseNotificationFails(t *testing.T) {
	for _, race := range []bool{false, true} {
		h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold"),
			"README.md": "hello\n"})
		ctx := context.Background()
		h.tick()
		h.notes.err = errors.New("slack env:ROLLOUT_SLACK_WEBHOOK_URL: environment variable is not set")
		if race {
			pushes := 0
			h.repo.beforePush = func(PushRequest) {
				if pushes++; pushes == 2 { // between the rollback and the record of its pending notification
					h.repo.commitAs("main", "alice", "docs", map[string]string{"README.md": "edited\n"})
				}
			}
		}
		res, err := h.loop.Operate(ctx, "summarizer", OpRollback, "bad outputs")
		if res.Commit == "" || !errors.Is(err, ErrDeferred) || errors.Is(err, ErrNotApplicable) {
			t.Fatalf("race %v: %+v %v", race, res, err)
		}
		if st := h.spec("summarizer").Status; st.Phase != rollouts.RolledBack || !notifyPending(st.Message) {
			t.Fatalf("race %v: status %+v", race, st)
		}
		h.repo.beforePush = nil
		h.notes.err = nil
		h.tick()
		if len(h.notes.events) != 1 || h.notes.events[0].Decision != "rollback" || h.notes.events[0].Reasons[0] != "by hand: bad outputs" {
			t.Errorf("race %v: events %+v", race, h.notes.events)
		}
		if st := h.spec("summarizer").Status; notifyPending(st.Message) {
			t.Errorf("race %v: still pending: %+v", race, st)
		}
	}
}

// A clock with sub-second precision still writes whole seconds into the spec.
func TestStageStartIsWrittenInWholeSeconds(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.now = t0.Add(384015553 * time.Nanosecond)
	h.only(h.tick())
	if st := h.spec("summarizer").Status; !st.StageStartedAt.Equal(t0) {
		t.Errorf("stageStartedAt = %s, want %s", st.StageStartedAt.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano))
	}
}

// Removing the canary block ends the rollout in the file too: weight 0 and phase Completed, once.
func TestRemovingTheCanaryEndsTheRollout(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.realJudge()
	h.tick() // start at 5%
	src := h.repo.file("main", "rollouts/summarizer.yaml")
	withoutCanary := strings.Replace(src, "canary:\n  model: claude-sonnet-4-5-20260415\n  prompt: v3\n", "", 1)
	if withoutCanary == src {
		t.Fatal("the canary block was not found")
	}
	h.repo.commitAs("main", "Ada", "drop the canary", map[string]string{"rollouts/summarizer.yaml": withoutCanary})
	res := h.only(h.tick())
	if res.Commit == "" || res.To != 0 {
		t.Fatalf("result = %+v", res)
	}
	spec := h.spec("summarizer")
	if spec.Traffic.Weight != 0 || spec.Status.Phase != rollouts.Completed || !strings.Contains(spec.Status.Message, "canary block was removed") {
		t.Errorf("after the end: traffic %+v status %+v", spec.Traffic, spec.Status)
	}
	h.quiet()
}

// TestSampleRatioMismatchAlertsOncePerEpisodeFromGit: a sample-ratio mismatch holds and is alerted
// once per episode even when every tick is a new process (a new Loop, as a cron run or a GitHub Action
// is): the episode is bookkept in git, one commit when it begins (the alert goes out with it, naming it)
// and one when it ends, nothing on the ticks between. A new episode is alerted again; a plan writes
// and sends nothing.
func TestSampleRatioMismatchAlertsOncePerEpisodeFromGit(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick() // start
	mismatch := false
	judge := func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
		d := h.judge.Judge(spec, ev, now)
		if mismatch {
			d.SampleRatioMismatch = true
			d.Reasons = []string{"sample ratio mismatch: the canary has 10% of keys (100 of 1000), where the spec sets 5%"}
		}
		return d
	}
	stateless := func() *Loop {
		l := h.newLoop()
		l.Judge = judge
		return l
	}
	start := h.repo.head("main")
	began := h.now.Add(time.Hour)
	var alerted []string // the commits the alerts named
	for i, m := range []bool{true, true, true, false, false, true, true} {
		mismatch = m
		h.now = began.Add(time.Duration(i) * 15 * time.Minute)
		h.loop = stateless()
		before := len(h.notes.events)
		if res := h.only(h.tick()); res.Decision != policy.Hold {
			t.Fatalf("tick %d: %+v", i, res)
		}
		for _, ev := range h.notes.events[before:] {
			alerted = append(alerted, ev.Commit)
		}
		// A plan in between writes and sends nothing.
		head, events := h.repo.head("main"), len(h.notes.events)
		h.loop = stateless()
		if _, err := h.loop.Plan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if h.repo.head("main") != head || len(h.notes.events) != events {
			t.Fatalf("tick %d: a plan wrote or notified", i)
		}
	}
	var log []string
	for c := h.repo.head("main"); c != start; c = h.repo.commit(c).parent {
		first, _, _ := strings.Cut(h.repo.commit(c).message, "\n")
		log = append([]string{first}, log...)
		if !strings.Contains(h.repo.commit(c).message, TrailerBookkeeping+": sample-ratio") {
			t.Errorf("commit %q is not sample-ratio bookkeeping", first)
		}
	}
	want := []string{"rollout(summarizer): sample ratio mismatch", "rollout(summarizer): sample ratio matches again after 45m0s",
		"rollout(summarizer): sample ratio mismatch"}
	if !slices.Equal(log, want) {
		t.Errorf("commits = %q, want %q", log, want)
	}
	if got, want := h.spec("summarizer").Status.SampleRatioMismatchSince, began.Add(75*time.Minute); !got.Equal(want) {
		t.Errorf("sampleRatioMismatchSince = %v, want %v", got, want)
	}
	if len(h.notes.events) != 2 {
		t.Fatalf("events = %+v, want one per episode (2)", h.notes.events)
	}
	for i, ev := range h.notes.events {
		if ev.Decision != "alert" || ev.Rollout != "summarizer" || len(ev.Reasons) == 0 || !strings.HasPrefix(ev.Reasons[0], "sample ratio mismatch") {
			t.Errorf("event %+v", ev)
		}
		if ev.Commit == "" || !strings.HasSuffix(strings.SplitN(h.repo.commit(ev.Commit).message, "\n", 2)[0], "sample ratio mismatch") {
			t.Errorf("alert %d does not go out with the commit that records the episode's start: %q", i, alerted)
		}
	}
	mismatch = false
	h.loop = stateless()
	h.tick() // the end of the second episode
	if st := h.spec("summarizer").Status; !st.SampleRatioMismatchSince.IsZero() {
		t.Errorf("status after the end: %+v", st)
	}
	h.quiet()
}

// TestRollbackClearsSampleRatioMismatch: a rollback during a mismatch episode is notified as the
// rollback it is, and its commit ends the episode: the next tick writes nothing more.
func TestRollbackClearsSampleRatioMismatch(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.tick() // start
	h.loop.Judge = func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
		d := h.judge.Judge(spec, ev, now)
		if spec.Status.Phase != rollouts.Progressing {
			return d // a rolled-back rollout compares nothing
		}
		d.SampleRatioMismatch = true
		d.Reasons = append(d.Reasons, "sample ratio mismatch: the canary has 10% of keys (100 of 1000), where the spec sets 5%")
		return d
	}
	h.tick()
	if st := h.spec("summarizer").Status; st.SampleRatioMismatchSince.IsZero() || len(h.notes.events) != 1 {
		t.Fatalf("episode not recorded: %+v events %+v", st, h.notes.events)
	}
	h.judge.set("summarizer", policy.Rollback)
	if res := h.only(h.tick()); res.Decision != policy.Rollback || res.Commit == "" {
		t.Fatalf("%+v", res)
	}
	if st := h.spec("summarizer").Status; st.Phase != rollouts.RolledBack || !st.SampleRatioMismatchSince.IsZero() {
		t.Errorf("status after the rollback: %+v", st)
	}
	if len(h.notes.events) != 2 || h.notes.events[1].Decision != string(policy.Rollback) {
		t.Errorf("events = %+v", h.notes.events)
	}
	h.quiet()
}

// TestAStuckSourceIsAskedOnceAtATime: a source that ignores its deadline (the named pipe that blocked
// open(2) leaked one thread per tick) is abandoned at MetricsTimeout, and while its query is still
// running the next passes fail over to the metrics outage at once instead of starting another: after
// five passes one query runs, not five, and the goroutines do not grow. Once it returns, the source is
// asked again.
func TestAStuckSourceIsAskedOnceAtATime(t *testing.T) {
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": specFor("summarizer", "pull-request", "hold")})
	h.realJudge()
	h.tick() // starts the rollout
	release := make(chan struct{})
	var calls, running, most atomic.Int32
	h.loop.MetricsTimeout = time.Millisecond
	h.loop.Sources = func(*rollouts.Spec) (policy.Source, error) {
		return fakeSource(func(policy.Query) (*policy.Stats, error) {
			calls.Add(1)
			if n := running.Add(1); n > most.Load() {
				most.Store(n)
			}
			defer running.Add(-1)
			<-release // deaf to its context
			return &policy.Stats{}, nil
		}), nil
	}
	var goroutines []int
	for pass := range 5 {
		h.now = h.now.Add(time.Minute)
		res := h.failed(h.tick(), policy.ErrSourceUnavailable)
		if res.Decision != policy.Hold {
			t.Fatalf("pass %d: %+v", pass+1, res)
		}
		if pass > 0 && !strings.Contains(res.Err.Error(), "has not returned; not asked again until it does") {
			t.Errorf("pass %d: err = %v, want the running query named", pass+1, res.Err)
		}
		goroutines = append(goroutines, runtime.NumGoroutine())
	}
	if calls.Load() != 1 || most.Load() != 1 {
		t.Errorf("five passes over a stuck source: %d queries, %d at once; want 1", calls.Load(), most.Load())
	}
	if first, last := goroutines[0], goroutines[len(goroutines)-1]; last > first {
		t.Errorf("goroutines grew across the passes: %v", goroutines)
	}
	close(release)
	for {
		if _, busy := h.loop.querying.Load("summarizer"); !busy {
			break
		}
		runtime.Gosched()
	}
	h.now = h.now.Add(time.Minute)
	h.tick()
	if calls.Load() != 2 {
		t.Errorf("after the stuck query returned: %d queries, want the source asked again", calls.Load())
	}
}

// TestFutureStageStartIsAnErrorThatStillRollsBack: a status.stageStartedAt ahead of the clock (a
// minute) used to answer hold, exit 0, with no alert, while the canary failed 31% of its requests.
// Now every pass reports the rollout's error, the first one alerts once (bookkept in git like a
// metrics outage), plan says so too, and a failing canary is rolled back on the data of the stage's
// last minDuration (a rollback that lands is not a failed row).
func TestFutureStageStartIsAnErrorThatStillRollsBack(t *testing.T) {
	spec := strings.Replace(specFor("summarizer", "pull-request", "hold"), "analysis:\n",
		"analysis:\n  rules: [{metric: error_rate, max: 0.05}]\n", 1)
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": spec})
	h.realJudge()
	h.tick() // starts stage 0 at t0
	errRate := 0.01
	var windows []policy.Window
	h.loop.Sources = func(*rollouts.Spec) (policy.Source, error) {
		return fakeSource(func(q policy.Query) (*policy.Stats, error) {
			windows = append(windows, q.Window)
			arm := func(n int64) policy.ArmStats {
				return policy.ArmStats{Requests: n, Metrics: map[string]policy.Sample{
					"error_rate": {Kind: policy.Proportion, N: n, Sum: float64(n) * errRate}}}
			}
			return &policy.Stats{Stable: arm(20000), Canary: arm(1000)}, nil
		}), nil
	}
	h.now = t0.Add(-time.Minute) // this machine's clock is a minute behind the writer's
	for i := range 3 {
		rep := h.tick()
		res := h.failed(rep, policy.ErrFutureStageStart)
		if why := strings.Join(res.Reasons, "; "); res.Decision != policy.Hold ||
			!strings.Contains(why, "status.stageStartedAt 2026-04-16T00:00:00Z is 1m in the future") {
			t.Fatalf("pass %d: %+v", i+1, res)
		}
	}
	// The whole-stage window is the stage's last minDuration; the judge's recent windows are shorter.
	if !slices.ContainsFunc(windows, func(w policy.Window) bool { return w.From.Equal(h.now.Add(-4*time.Hour)) && w.To.Equal(h.now) }) {
		t.Errorf("windows %+v, want one of the stage's minDuration (4h) before now", windows)
	}
	if len(h.notes.events) != 1 || h.notes.events[0].Decision != "alert" ||
		!strings.Contains(strings.Join(h.notes.events[0].Reasons, "; "), "stage start in the future since") {
		t.Fatalf("events = %+v, want one alert", h.notes.events)
	}
	rep, err := h.loop.Plan(context.Background())
	if err != nil || !errors.Is(rep.Results[0].Err, policy.ErrFutureStageStart) {
		t.Errorf("plan does not report the error: %+v, %v", rep.Results, err)
	}

	errRate = 0.31 // the canary fails 31% of its requests
	// The rollback lands, so its row does not say failed: the pass did its job.
	res := h.failed(h.tick(), nil)
	if res.Decision != policy.Rollback || h.spec("summarizer").Status.Phase != rollouts.RolledBack {
		t.Fatalf("a failing canary with a future stage start: %+v, status %+v", res, h.spec("summarizer").Status)
	}
	if n := len(h.notes.events); n != 2 || h.notes.events[1].Decision != string(policy.Rollback) {
		t.Errorf("events = %+v, want the rollback notified", h.notes.events)
	}
}

// TestPromotionAsksTheNamespaceToRebase: once one rollout of a namespace is promoted, the other's
// result says to rebase its stable on what users now get, as a warning and as what to do next.
func TestPromotionAsksTheNamespaceToRebase(t *testing.T) {
	inNamespace := func(name string) string {
		return strings.Replace(specFor(name, "pull-request", "hold"), "traffic:\n", "assignment: {namespace: summarizer}\ntraffic:\n", 1)
	}
	promoted := strings.Replace(strings.Replace(inNamespace("summarizer-model"),
		"stable:\n  model: claude-sonnet-4-5-20260301\n  prompt: v3\ncanary:\n  model: claude-sonnet-4-5-20260415\n  prompt: v3\n",
		"stable:\n  model: claude-sonnet-4-5-20260415\n  prompt: v3\n", 1), "rollback:", "status: {phase: Completed, stage: 2}\nrollback:", 1)
	h := newHarness(t, map[string]string{"rollouts/summarizer-model.yaml": promoted, "rollouts/summarizer-prompt.yaml": inNamespace("summarizer-prompt")})
	h.realJudge()
	rep := h.tick()
	var got Result
	for _, r := range rep.Results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Rollout, r.Err)
		}
		if r.Rollout == "summarizer-prompt" {
			got = r
		} else if len(r.Warnings) > 0 {
			t.Errorf("the promoted rollout is asked to rebase: %q", r.Warnings)
		}
	}
	want := "rollout summarizer-model of namespace summarizer was promoted: users now get claude-sonnet-4-5-20260415 + v3, not this rollout's stable claude-sonnet-4-5-20260301 + v3; rebase it: set stable to claude-sonnet-4-5-20260415 + v3 in rollouts/summarizer-prompt.yaml"
	if !strings.Contains(strings.Join(got.Warnings, "\n"), want) || !strings.HasPrefix(got.Next, "rollout summarizer-model") {
		t.Errorf("warnings %q, next %q; want %q", got.Warnings, got.Next, want)
	}
}
