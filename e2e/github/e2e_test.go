package e2egithub_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/race"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// specFile is a rollout with no canary yet, as it sits on main before anyone proposes one. The
// comment and the key order must survive every commit of the bot.
func specFile(name, promotion string) string {
	return fmt.Sprintf(`# Owned by the summarization team. Edit through pull requests.
apiVersion: rollout/v1
kind: Rollout
name: %[1]s
description: "Sonnet 4.5 April bump <img src=x onerror=alert(1)> cc @ml-team"
stable:
  model: claude-sonnet-4-5-20260301
  prompt: v3
traffic:
  weight: 0
  shadow: 0
stages:
  - {weight: 5,  minDuration: 1h, minRequests: 200}
  - {weight: 25, minDuration: 1h, minRequests: 200}
  - {weight: 50, minDuration: 1h, minRequests: 200}
  - {weight: 100, minDuration: 1h}
metrics:
  source: file:traffic/%[1]s.jsonl
analysis:
  confidence: 0.95
  rules:
    - {metric: error_rate,     max: 0.05, maxIncrease: 50%%}
    - {metric: latency_p95_ms, maxIncrease: 30%%}
promotion:
  via: %[2]s
  reviewers: [carol, acme/ml-platform]
  labels: [rollout, llm]
rollback:
  via: commit
  notify: [{webhook: env:ROLLOUT_ROLLBACK_WEBHOOK}]
`, name, promotion)
}

// withCanary adds a canary block after the stable one, as the developer's pull request does.
func withCanary(spec, model string) string {
	block := "canary:\n  model: " + model + "\n  prompt: v3\n"
	if i := strings.Index(spec, "canary:\n"); i >= 0 {
		j := strings.Index(spec[i:], "traffic:")
		return spec[:i] + block + spec[i+j:]
	}
	return strings.Replace(spec, "traffic:\n", block+"traffic:\n", 1)
}

const canaryModel = "claude-sonnet-4-5-20260415"

// startCanary is the developer's part: a branch adding the canary block, a pull request, a merge.
func (w *world) startCanary(name, model string) {
	w.t.Helper()
	path := "rollouts/" + name + ".yaml"
	spec := withCanary(w.file(w.head("main"), path), model)
	branch := "canary-" + name + "-" + strings.ReplaceAll(model, ".", "-")
	w.humanCommit(branch, map[string]string{path: spec}, "Canary "+model+" for "+name)
	w.mergeSpecPR(branch, name+": canary "+model)
}

// assertBotCommit checks a bot commit: its subject, its trailers, its author, and that it changes the
// rollout's spec file alone.
func (w *world) assertBotCommit(hash, subject, rollout, decision string) {
	w.t.Helper()
	c := w.commit(hash)
	if got := strings.SplitN(c.Message, "\n", 2)[0]; got != subject {
		w.t.Errorf("commit %s subject %q, want %q", hash[:8], got, subject)
	}
	for _, tr := range []string{"Rollout: " + rollout, "Rollout-Decision: " + decision} {
		if !strings.Contains(c.Message, "\n"+tr+"\n") {
			w.t.Errorf("commit %s lacks trailer %q:\n%s", hash[:8], tr, c.Message)
		}
	}
	if c.Author.Email != "rollout-bot@users.noreply.github.com" {
		w.t.Errorf("commit %s author %s, want the bot", hash[:8], c.Author.Email)
	}
	if files := w.changedFiles(c); !slices.Equal(files, []string{"rollouts/" + rollout + ".yaml"}) {
		w.t.Errorf("commit %s changes %v, want only the spec", hash[:8], files)
	}
}

// TestLifecycle follows one rollout from the developer's pull request to a rollback: start commit,
// healthy stage 0, bot pull request 5% → 25% with evidence, merged by the test, stage 1 started,
// pull request 25% → 50%, a regression, the rollback commit on main and that pull request closed.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	const name = "summarizer"
	path := "rollouts/" + name + ".yaml"
	w := newWorld(t, map[string]string{path: specFile(name, "pull-request"), "README.md": "llm app\n"})

	// No canary: nothing to do, nothing written.
	if r := w.result(w.tick(), name); r.Decision != policy.Hold || r.Commit != "" {
		t.Fatalf("before the canary: %s %q", r.Decision, r.Commit)
	}

	// The developer's pull request adds the canary; the merge was the approval.
	w.startCanary(name, canaryModel)
	merged := w.head("main")
	w.at(t0.Add(time.Minute))
	start := w.tick()
	r := w.result(start, name)
	if r.Decision != policy.Start || r.To != 5 || r.Commit == "" {
		t.Fatalf("after the spec merge: %s →%d commit %q (%s)", r.Decision, r.To, r.Commit, r.Effect)
	}
	if got := w.head("main"); got != r.Commit {
		t.Fatalf("main at %s, want the start commit %s", got, r.Commit)
	}
	if c := w.commit(r.Commit); len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != merged {
		t.Errorf("start commit's parents %v, want the spec merge %s", c.ParentHashes, merged)
	}
	w.assertBotCommit(r.Commit, "rollout(summarizer): start stage 0 at 5%", name, "start")
	s := w.spec(r.Commit, path)
	stage0 := t0.Add(time.Minute)
	if s.Traffic.Weight != 5 || s.Status == nil || s.Status.Phase != rollouts.Progressing || s.Status.Stage != 0 ||
		!s.Status.StageStartedAt.Equal(stage0) || s.Status.Canary != rollouts.Fingerprint(s.Canary) {
		t.Fatalf("after start: traffic %+v status %+v", s.Traffic, s.Status)
	}
	// The commit changes only the lines it must: the weight, and the status it adds.
	removed, added := w.diffLines(w.commit(r.Commit))
	wantAdded := []string{"  weight: 5", "status:", "  phase: Progressing", "  stage: 0",
		"  stageStartedAt: " + stage0.Format(time.RFC3339), "  canary: " + s.Status.Canary}
	if !slices.Equal(removed, []string{"  weight: 0"}) || !sameSet(added, wantAdded) {
		t.Errorf("start commit removes %q and adds %q; want only the weight and the status", removed, added)
	}

	// Too early and no traffic: hold, nothing written.
	w.at(stage0.Add(10 * time.Minute))
	if r := w.result(w.tick(), name); r.Decision != policy.Hold || r.Commit != "" || r.Proposal != "" {
		t.Fatalf("early tick: %s commit %q proposal %q", r.Decision, r.Commit, r.Proposal)
	}

	// A healthy stage 0: the bot proposes 5% → 25%.
	w.traffic(name, stage0, stage0.Add(2*time.Hour), 4000, 50, healthyCanary(), 1)
	w.at(stage0.Add(2 * time.Hour))
	r = w.result(w.tick(), name)
	if r.Decision != policy.Advance || r.From != 5 || r.To != 25 || r.Proposal == "" {
		t.Fatalf("healthy stage 0: %s %d→%d proposal %q reasons %v", r.Decision, r.From, r.To, r.Proposal, r.Reasons)
	}
	prs := w.botPulls(name)
	if len(prs) != 1 {
		t.Fatalf("bot pull requests %+v, want one", prs)
	}
	pr1 := prs[0]
	if pr1.Title != "rollout(summarizer): 5% → 25%" || pr1.State != "open" || pr1.Base != "main" {
		t.Errorf("bot pull request: %q %s onto %s", pr1.Title, pr1.State, pr1.Base)
	}
	if !slices.Equal(pr1.Labels, []string{"rollout", "llm"}) || !slices.Equal(pr1.Reviewers, []string{"carol"}) ||
		!slices.Equal(pr1.TeamReviewers, []string{"ml-platform"}) {
		t.Errorf("labels %v reviewers %v teams %v", pr1.Labels, pr1.Reviewers, pr1.TeamReviewers)
	}
	// The body is the evidence: the table with the change column, sample sizes, the stage timeline, a
	// chart GitHub draws, the hidden marker; and what came from the spec is inert.
	for _, want := range []string{"| metric | stable | canary | change | interval |", `error\_rate`, `latency\_p95\_ms`,
		"Sample sizes", "Stage timeline", "```mermaid", reconcile.Marker(name), `&lt;img src\=x`} {
		if !strings.Contains(pr1.Body, want) {
			t.Errorf("bot pull request body lacks %q:\n%s", want, pr1.Body)
		}
	}
	if strings.Contains(pr1.Body, "<img") || strings.Contains(pr1.Body, "@ml-team") {
		t.Errorf("the spec's description reaches the body unescaped:\n%s", pr1.Body)
	}
	branchHead := w.head("rollout/summarizer")
	w.assertBotCommit(branchHead, "rollout(summarizer): 5% → 25%", name, "advance")
	if c := w.commit(branchHead); c.ParentHashes[0].String() != w.head("main") {
		t.Errorf("bot branch commit's parent %s, want main %s", c.ParentHashes[0], w.head("main"))
	}
	if s := w.spec(branchHead, path); s.Traffic.Weight != 25 || s.Status.Stage != 1 || !s.Status.StageStartedAt.IsZero() {
		t.Errorf("bot branch spec: traffic %+v status %+v", s.Traffic, s.Status)
	}

	// The same tick again: the pull request is up to date; no push, no duplicate, one API call.
	w.srv.ResetCalls()
	r = w.result(w.tick(), name)
	if r.Commit != "" || len(w.botPulls(name)) != 1 || w.head("rollout/summarizer") != branchHead {
		t.Fatalf("repeated tick: commit %q, %d pull requests, effect %q", r.Commit, len(w.botPulls(name)), r.Effect)
	}
	if api := apiCalls(w.srv.Calls()); !maps.Equal(api, map[string]int{listPulls: 1}) {
		t.Errorf("repeated tick's API calls %v, want only the list", api)
	}

	// The reviewer merges; the next tick starts the stage's window.
	w.srv.MergePull(pr1.Number)
	stage1 := stage0.Add(2*time.Hour + 5*time.Minute)
	w.at(stage1)
	r = w.result(w.tick(), name)
	if r.Decision != policy.Start || r.Commit == "" || r.To != 25 {
		t.Fatalf("after the merge: %s →%d commit %q (%s) %v", r.Decision, r.To, r.Commit, r.Effect, r.Reasons)
	}
	w.assertBotCommit(r.Commit, "rollout(summarizer): start stage 1 at 25%", name, "start")
	if s := w.spec(r.Commit, path); s.Traffic.Weight != 25 || s.Status.Stage != 1 || !s.Status.StageStartedAt.Equal(stage1) {
		t.Errorf("stage 1 start: traffic %+v status %+v", s.Traffic, s.Status)
	}
	if p := w.pull(pr1.Number); !p.Merged {
		t.Errorf("pull request #%d not merged", pr1.Number)
	}

	// A healthy stage 1: the bot proposes 25% → 50%, in a new pull request.
	w.traffic(name, stage1, stage1.Add(2*time.Hour), 4000, 50, healthyCanary(), 2)
	w.at(stage1.Add(2 * time.Hour))
	r = w.result(w.tick(), name)
	if r.Decision != policy.Advance || r.From != 25 || r.To != 50 {
		t.Fatalf("healthy stage 1: %s %d→%d %v", r.Decision, r.From, r.To, r.Reasons)
	}
	prs = w.botPulls(name)
	if len(prs) != 2 {
		t.Fatalf("bot pull requests %d, want 2", len(prs))
	}
	pr2 := prs[1]
	if pr2.Title != "rollout(summarizer): 25% → 50%" || pr2.State != "open" {
		t.Fatalf("second bot pull request %q %s", pr2.Title, pr2.State)
	}

	// The canary regresses: rollback straight to main, and the open pull request closed with a
	// comment naming the rollback commit.
	w.traffic(name, stage1.Add(2*time.Hour), stage1.Add(3*time.Hour), 4000, 50, brokenCanary(), 3)
	w.at(stage1.Add(3 * time.Hour))
	before := w.head("main")
	// GitHub pushes back while the bot closes the pull request: a 502 on the comment, a secondary
	// rate limit on the close. The rollback waits them out; nothing is dropped.
	w.srv.FailRoute("POST /repos/{owner}/{repo}/issues/{number}/comments", 1, githubtest.Fault{Status: 502})
	w.srv.FailRoute("PATCH /repos/{owner}/{repo}/pulls/{number}", 1, githubtest.Fault{Status: 403, Secondary: true, RetryAfter: 60})
	r = w.result(w.tick(), name)
	if !slices.Contains(w.waits(), 60*time.Second) {
		t.Errorf("the forge waited %v, want the 60 s GitHub asked for", w.waits())
	}
	if r.Decision != policy.Rollback || r.From != 25 || r.To != 0 || r.Commit == "" {
		t.Fatalf("regression: %s %d→%d commit %q %v", r.Decision, r.From, r.To, r.Commit, r.Reasons)
	}
	if got := w.head("main"); got != r.Commit || w.commit(got).ParentHashes[0].String() != before {
		t.Fatalf("main %s, want the rollback %s on top of %s", got, r.Commit, before)
	}
	w.assertBotCommit(r.Commit, "rollout(summarizer): rollback 25% → 0%", name, "rollback")
	if msg := w.commit(r.Commit).Message; !strings.Contains(msg, "error_rate") {
		t.Errorf("rollback commit does not name the failing rule:\n%s", msg)
	}
	s = w.spec(r.Commit, path)
	if s.Traffic.Weight != 0 || s.Status.Phase != rollouts.RolledBack {
		t.Errorf("after rollback: traffic %+v status %+v", s.Traffic, s.Status)
	}
	if evs := w.events(); len(evs) != 1 || evs[0].Decision != "rollback" || evs[0].From != 25 || evs[0].To != 0 ||
		evs[0].Commit != r.Commit || evs[0].Rollout != name {
		t.Errorf("rollback webhook received %+v, want one rollback 25 → 0 naming %s", evs, r.Commit)
	}
	p2 := w.pull(pr2.Number)
	if p2.State != "closed" || p2.Merged {
		t.Errorf("pull request #%d %s merged=%v, want closed unmerged", p2.Number, p2.State, p2.Merged)
	}
	if len(p2.CommentBodies) != 1 || !strings.Contains(p2.CommentBodies[0], r.Commit) {
		t.Errorf("closing comments %q, want one naming %s", p2.CommentBodies, r.Commit)
	}

	// Rolled back: later ticks write nothing.
	rolledBack := w.head("main")
	w.at(stage1.Add(4 * time.Hour))
	r = w.result(w.tick(), name)
	if r.Decision != policy.Hold || r.Commit != "" || w.head("main") != rolledBack || len(w.botPulls(name)) != 2 {
		t.Fatalf("after rollback: %s commit %q", r.Decision, r.Commit)
	}

	// git log is the audit trail: the bot's commits on main, newest first.
	var subjects []string
	for _, c := range w.firstParents("") {
		subjects = append(subjects, strings.SplitN(c.Message, "\n", 2)[0])
	}
	want := []string{
		"rollout(summarizer): rollback 25% → 0%",
		"rollout(summarizer): start stage 1 at 25%",
		fmt.Sprintf("Merge pull request #%d from %s/rollout/summarizer", pr1.Number, owner),
		"rollout(summarizer): start stage 0 at 5%",
	}
	if len(subjects) < len(want) || !slices.Equal(subjects[:len(want)], want) {
		t.Errorf("main's history:\n%s\nwant it to start with:\n%s", strings.Join(subjects, "\n"), strings.Join(want, "\n"))
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestPromotion follows a healthy rollout through every stage: each stage's pull request merged by the
// test, each landing recorded, and at 100% the promotion pull request that makes the canary the new
// stable, after which the rollout is Completed and nothing more is written.
func TestPromotion(t *testing.T) {
	race.Skip(t, race.Slow)
	t.Parallel()
	const name = "tagger"
	path := "rollouts/" + name + ".yaml"
	w := newWorld(t, map[string]string{path: specFile(name, "pull-request")})
	w.startCanary(name, canaryModel)
	at := t0.Add(time.Minute)
	w.at(at)
	if r := w.result(w.tick(), name); r.Decision != policy.Start {
		t.Fatalf("start: %s %v", r.Decision, r.Reasons)
	}
	weights := []int{5, 25, 50, 100}
	for stage, weight := range weights {
		share := 50
		if weight == 100 {
			share = 100 // every key on the canary: no stable traffic at all
		}
		w.traffic(name, at, at.Add(2*time.Hour), 8000, share, healthyCanary(), int64(100+stage))
		at = at.Add(2 * time.Hour)
		w.at(at)
		r := w.result(w.tick(), name)
		want, to := policy.Advance, 100
		if stage+1 < len(weights) {
			to = weights[stage+1]
		} else {
			want = policy.Promote
		}
		if r.Decision != want || r.From != weight || r.To != to || r.Proposal == "" {
			t.Fatalf("stage %d at %d%%: %s %d→%d proposal %q %v", stage, weight, r.Decision, r.From, r.To, r.Proposal, r.Reasons)
		}
		prs := w.botPulls(name)
		pr := prs[len(prs)-1]
		wantTitle := fmt.Sprintf("rollout(%s): %d%% → %d%%", name, weight, to)
		if weight == to {
			wantTitle = reconcile.PromoteTitle(name) // not "100% → 100%"
		}
		if pr.Title != wantTitle || pr.State != "open" {
			t.Fatalf("stage %d: pull request %q %s, want %q open", stage, pr.Title, pr.State, wantTitle)
		}
		w.srv.MergePull(pr.Number)
		at = at.Add(5 * time.Minute)
		w.at(at)
		r = w.result(w.tick(), name)
		if want == policy.Promote {
			// The promotion landed: one commit records when, so that previous expires on time.
			if r.Commit == "" {
				t.Fatalf("after the promotion merged: %s, no commit (%s)", r.Decision, r.Effect)
			}
			w.assertBotCommit(r.Commit, "rollout(tagger): promotion landed", name, "hold")
			if s := w.spec(r.Commit, path); s.Status == nil || !s.Status.PromotedAt.Equal(at) {
				t.Errorf("promotion landed: status %+v, want promotedAt %s", s.Status, at)
			}
			break
		}
		if r.Decision != policy.Start || r.Commit == "" {
			t.Fatalf("stage %d landed: %s %q %v", stage+1, r.Decision, r.Commit, r.Reasons)
		}
	}
	s := w.spec(w.head("main"), path)
	if s.Canary != nil || s.Stable.Model != canaryModel || s.Previous == nil || s.Previous.Model != "claude-sonnet-4-5-20260301" ||
		s.Traffic.Weight != 0 || s.Status == nil || s.Status.Phase != rollouts.Completed {
		t.Fatalf("after the promotion: stable %+v canary %+v previous %+v traffic %+v status %+v", s.Stable, s.Canary, s.Previous, s.Traffic, s.Status)
	}
	// Completed: a later tick writes nothing and opens nothing.
	head, pulls := w.head("main"), len(w.botPulls(name))
	w.at(at.Add(time.Hour))
	if r := w.result(w.tick(), name); r.Commit != "" || w.head("main") != head || len(w.botPulls(name)) != pulls {
		t.Errorf("completed rollout: %s commit %q (%s)", r.Decision, r.Commit, r.Effect)
	}
}

// TestConcurrentReconcilers: two reconcilers (an overlapping cron run, a daemon) tick at once. Git
// rejects the slower push, the loser decides again on the new main, and the result is what one
// reconciler would have written: one start commit, one bot branch commit, one pull request.
func TestConcurrentReconcilers(t *testing.T) {
	t.Parallel()
	const name = "summarizer"
	w := newWorld(t, map[string]string{"rollouts/" + name + ".yaml": specFile(name, "pull-request")})
	other, _ := w.newLoop()
	both := func() [2]*reconcile.Report {
		var reps [2]*reconcile.Report
		var errs [2]error
		var wg sync.WaitGroup
		for i, l := range []*reconcile.Loop{w.loop, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reps[i], errs[i] = l.Tick(w.ctx)
			}()
		}
		wg.Wait()
		for i := range reps {
			if errs[i] != nil {
				t.Fatalf("reconciler %d: %v", i, errs[i])
			}
			for _, r := range reps[i].Results {
				if r.Err != nil {
					t.Fatalf("reconciler %d, %s: %v (%s)", i, r.Rollout, r.Err, r.Effect)
				}
				fmt.Fprintf(&w.output, "%d %s %s %s %v\n", i, r.Decision, r.Effect, r.Commit, r.Reasons)
			}
		}
		return reps
	}
	commits := func(reps [2]*reconcile.Report) (n int) {
		for _, rep := range reps {
			if rep.Results[0].Commit != "" {
				n++
			}
		}
		return n
	}

	w.startCanary(name, canaryModel)
	merged := w.head("main")
	w.at(t0.Add(time.Minute))
	if n := commits(both()); n != 1 {
		t.Errorf("%d reconcilers committed the start, want 1", n)
	}
	if got := w.firstParents(merged); len(got) != 1 {
		t.Fatalf("%d commits on main after the spec merge, want the one start commit", len(got))
	}

	w.traffic(name, t0.Add(time.Minute), t0.Add(2*time.Hour), 4000, 50, healthyCanary(), 1)
	w.at(t0.Add(2*time.Hour + time.Minute))
	both()
	prs := w.botPulls(name)
	if len(prs) != 1 || prs[0].State != "open" || prs[0].Title != "rollout(summarizer): 5% → 25%" {
		t.Fatalf("bot pull requests after two concurrent advances: %+v", prs)
	}
	branch := w.head("rollout/" + name)
	if c := w.commit(branch); c.ParentHashes[0].String() != w.head("main") {
		t.Errorf("bot branch %s is not one commit on main", branch)
	}
}
