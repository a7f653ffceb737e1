package faults

import (
	"slices"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
)

// TestApprovalsGateTheBotsMerge (issue 24 items 2 and 5): with promotion.via auto-merge and
// promotion.approvals {count: 2, from: [alice, acme/ml-platform]}, the bot's advance pull request is
// neither merged nor set to auto-merge until two approving reviews from those people are on its head.
// An approval from someone without write permission, or not listed, does not count; an approval given
// before the bot moved its branch keeps counting while the weight and the canary stay the same, and
// stops counting when the proposal moves to another weight. The body says "N of 2".
func TestApprovalsGateTheBotsMerge(t *testing.T) {
	spec := strings.Replace(progressing("summarizer", "hold"), "  via: pull-request\n",
		"  via: auto-merge\n  approvals: {count: 2, from: [alice, acme/ml-platform]}\n", 1)
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	g.gh.AutoMergeAllowed = true
	g.gh.SetPermission("alice", "write")
	g.gh.SetPermission("bob", "read")
	g.gh.AddTeamMember("acme", "ml-platform", "bob")
	g.gh.SetPermission("carol", "write")
	g.gh.SetPermission("dave", "maintain")
	g.gh.AddTeamMember("acme", "ml-platform", "dave")
	g.writeTraffic("summarizer", 0.01)

	pr := g.advanced("summarizer")
	if !strings.Contains(pr.Body, "**Approvals: 0 of 2**") || pr.AutoMerge || pr.Merged {
		t.Fatalf("the new proposal: auto-merge %t merged %t\n%s", pr.AutoMerge, pr.Merged, pr.Body)
	}
	pull := func() githubtest.PullRequest {
		t.Helper()
		p, _ := g.pass("summarizer", pr.Number)
		return p
	}

	g.gh.AddReview(pr.Number, githubtest.Review{Login: "alice", State: "APPROVED"})
	g.gh.AddReview(pr.Number, githubtest.Review{Login: "bob", State: "APPROVED"})   // on the team, but read-only
	g.gh.AddReview(pr.Number, githubtest.Review{Login: "carol", State: "APPROVED"}) // may write, not listed
	p := pull()
	t.Logf("body with alice's approval:\n%s", p.Body[:strings.Index(p.Body, "\n")])
	if !strings.Contains(p.Body, "**Approvals: 1 of 2** (alice)") || p.AutoMerge || p.Merged {
		t.Fatalf("with alice's approval: auto-merge %t merged %t\n%s", p.AutoMerge, p.Merged, p.Body)
	}

	// A rule edited on main: the bot moves its branch, with the same weight and canary.
	head := g.head("rollout/summarizer")
	human := gittest.Clone(t, g.bare)
	src := human.Git("show", "HEAD:rollouts/summarizer.yaml")
	human.Write(map[string]string{"rollouts/summarizer.yaml": strings.Replace(src, "max: 0.05", "max: 0.06", 1)})
	human.Commit("Loosen the error rule a little")
	human.Push("HEAD:main")
	p = pull()
	if g.head("rollout/summarizer") == head {
		t.Fatalf("the bot did not move its branch")
	}
	if !strings.Contains(p.Body, "**Approvals: 1 of 2** (alice)") || p.AutoMerge || p.Merged {
		t.Errorf("alice's approval did not survive a push of the same weight and canary:\n%s", p.Body)
	}

	g.gh.AddReview(pr.Number, githubtest.Review{Login: "dave", State: "APPROVED"}) // on the team, may write
	p = pull()
	if !strings.Contains(p.Body, "**Approvals: 2 of 2** (alice, dave)") || !(p.AutoMerge || p.Merged) {
		t.Errorf("with two approvals: auto-merge %t merged %t\n%s", p.AutoMerge, p.Merged, p.Body)
	}
}

// TestApprovalsDoNotSurviveAnotherWeight: an approval given on a proposal of 5% → 25% does not count
// once the proposal moves to another weight.
func TestApprovalsDoNotSurviveAnotherWeight(t *testing.T) {
	spec := strings.Replace(progressing("summarizer", "hold"), "  via: pull-request\n",
		"  via: auto-merge\n  approvals: {count: 1}\n", 1)
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	g.gh.SetPermission("alice", "write")
	g.writeTraffic("summarizer", 0.01)
	pr := g.advanced("summarizer")
	g.gh.AddReview(pr.Number, githubtest.Review{Login: "alice", State: "APPROVED"})

	human := gittest.Clone(t, g.bare)
	src := human.Git("show", "HEAD:rollouts/summarizer.yaml")
	human.Write(map[string]string{"rollouts/summarizer.yaml": strings.Replace(src, "{weight: 25,", "{weight: 30,", 1)})
	human.Commit("Next stage at 30%")
	human.Push("HEAD:main")
	res := result(t, tick(t, g.process()), "summarizer")
	p, _ := g.gh.Pull(pr.Number)
	if res.Decision != policy.Advance || !strings.Contains(p.Title, "5% → 30%") {
		t.Fatalf("the proposal did not move to 30%%: %s %s", res.Decision, p.Title)
	}
	if !strings.Contains(p.Body, "**Approvals: 0 of 1**") || p.AutoMerge || p.Merged {
		t.Errorf("an approval of 25%% counted for 30%%: auto-merge %t merged %t\n%s", p.AutoMerge, p.Merged, p.Body)
	}
}

// TestWithdrawnApprovalTurnsAutoMergeOff: auto-merge went on with the one approval promotion.approvals
// asks for; the reviewer then asks for changes while the checks still run. The next pass turns the
// bot's auto-merge off (GitHub would merge once the checks pass), and turns it on again when the
// reviewer approves again.
func TestWithdrawnApprovalTurnsAutoMergeOff(t *testing.T) {
	spec := strings.Replace(progressing("summarizer", "hold"), "  via: pull-request\n",
		"  via: auto-merge\n  approvals: {count: 1, from: [alice]}\n", 1)
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	g.gh.AutoMergeAllowed = true
	g.gh.SetPermission("alice", "write")
	pr := g.advanced("summarizer")
	g.gh.SetMergeable(pr.Number, false, "blocked") // the checks run
	pull := func() (githubtest.PullRequest, reconcile.Result) {
		t.Helper()
		return g.pass("summarizer", pr.Number)
	}

	g.gh.AddReview(pr.Number, githubtest.Review{Login: "alice", State: "APPROVED"})
	if p, _ := pull(); !p.AutoMerge || p.Merged {
		t.Fatalf("approved: auto-merge %t merged %t", p.AutoMerge, p.Merged)
	}
	g.gh.AddReview(pr.Number, githubtest.Review{Login: "alice", State: "CHANGES_REQUESTED"})
	p, res := pull()
	t.Logf("effect after the approval was withdrawn: %s", res.Effect)
	if p.AutoMerge || p.Merged || !strings.Contains(p.Body, "**Approvals: 0 of 1**") {
		t.Fatalf("approval withdrawn: auto-merge %t merged %t\n%s", p.AutoMerge, p.Merged, p.Body)
	}
	if !strings.Contains(res.Effect, "turn off its auto-merge (approvals 0 of 1)") || g.gh.AutoMergeTurnedOff() != 1 {
		t.Errorf("effect %q, %d turned off", res.Effect, g.gh.AutoMergeTurnedOff())
	}
	if p, _ := pull(); p.AutoMerge || g.gh.AutoMergeTurnedOff() != 1 {
		t.Errorf("the next pass: auto-merge %t, %d turned off (want it left off, once)", p.AutoMerge, g.gh.AutoMergeTurnedOff())
	}
	g.gh.AddReview(pr.Number, githubtest.Review{Login: "alice", State: "APPROVED"})
	if p, _ := pull(); !p.AutoMerge {
		t.Errorf("approved again: auto-merge %t", p.AutoMerge)
	}
}

// TestHoldNeverTurnsAutoMergeOn: a hold refreshes the open proposal's evidence, and a hold is no
// decision to merge. An advance proposal waiting for its approval does not get auto-merge on a hold,
// and the bot's auto-merge of an approved one goes off until the evidence passes again. Auto-merge a
// person turned on stays, with a warning.
func TestHoldNeverTurnsAutoMergeOn(t *testing.T) {
	spec := strings.Replace(progressing("summarizer", "hold"), "  via: pull-request\n",
		"  via: auto-merge\n  approvals: {count: 1}\n", 1)
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
	g.gh.AutoMergeAllowed = true
	g.gh.SetPermission("alice", "write")
	pr := g.advanced("summarizer")
	g.gh.SetMergeable(pr.Number, false, "blocked")
	pass := func(canaryErrors float64) (githubtest.PullRequest, reconcile.Result) {
		t.Helper()
		g.writeTraffic("summarizer", canaryErrors)
		return g.pass("summarizer", pr.Number)
	}

	// 4.5% errors against a 5% limit: neither shown within it nor above it.
	p, res := pass(0.045)
	if res.Decision != policy.Hold || !strings.Contains(res.Effect, "refresh") {
		t.Fatalf("want a hold that refreshes the evidence: %s, %q", res.Decision, res.Effect)
	}
	if p.AutoMerge || p.Merged {
		t.Fatalf("a hold turned auto-merge on without the approval: auto-merge %t merged %t", p.AutoMerge, p.Merged)
	}

	g.gh.AddReview(pr.Number, githubtest.Review{Login: "alice", State: "APPROVED"})
	if p, res := pass(0.01); res.Decision != policy.Advance || !p.AutoMerge {
		t.Fatalf("approved and passing: %s, auto-merge %t", res.Decision, p.AutoMerge)
	}
	p, res = pass(0.045)
	if p.AutoMerge || !strings.Contains(res.Effect, "turn off its auto-merge (the decision is hold)") {
		t.Errorf("the evidence holds again: auto-merge %t, effect %q", p.AutoMerge, res.Effect)
	}

	g.gh.EnableAutoMerge(pr.Number, "alice")
	p, res = pass(0.045)
	if !p.AutoMerge || !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "alice turned on auto-merge") }) {
		t.Errorf("alice's auto-merge: on %t, warnings %q", p.AutoMerge, res.Warnings)
	}
}

// TestAutoMergeNeverLandsAPersonsPush: with promotion.via auto-merge and no promotion.approvals, the
// bot's auto-merge is its decision about its own commit. A person who pushes to the bot's branch adds
// a change nobody reviewed and the evidence does not describe: the bot turns its auto-merge off, merges
// nothing, and says why, until someone merges by hand (or deletes the branch). Before, GitHub's
// auto-merge, turned on by the bot, stayed on, and the bot itself merged the branch when GitHub did
// not: the person's commit landed on the default branch as the bot's decision. With
// promotion.approvals, an approval given on the bot's commit before the push (same weight and canary,
// so it counts) does not approve the person's commit either.
func TestAutoMergeNeverLandsAPersonsPush(t *testing.T) {
	for _, tt := range []struct {
		name      string
		allowed   bool   // GitHub's auto-merge is allowed; else the bot merges a mergeable proposal itself
		approvals string // promotion.approvals, approved by alice on the bot's commit before the push
	}{
		{"GitHub's auto-merge", true, ""},
		{"the bot merges", false, ""},
		{"approved before the push", true, "{count: 1, from: [alice]}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			via := "  via: auto-merge\n"
			if tt.approvals != "" {
				via += "  approvals: " + tt.approvals + "\n"
			}
			spec := strings.Replace(progressing("summarizer", "hold"), "  via: pull-request\n", via, 1)
			g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": spec})
			g.gh.AutoMergeAllowed = tt.allowed
			g.gh.SetPermission("alice", "write")
			g.writeTraffic("summarizer", 0.01)
			tick(t, g.process()) // the bot's proposal (without GitHub's auto-merge, not mergeable yet: an error)
			pulls := g.gh.Pulls()
			if len(pulls) != 1 {
				t.Fatalf("pulls = %+v", pulls)
			}
			pr := pulls[0]
			g.gh.SetMergeable(pr.Number, false, "blocked") // the checks run
			if tt.approvals != "" {
				g.gh.AddReview(pr.Number, githubtest.Review{Login: "alice", State: "APPROVED"})
				g.pass("summarizer", pr.Number)
			}
			if p, _ := g.gh.Pull(pr.Number); p.AutoMerge != tt.allowed || p.Merged {
				t.Fatalf("the bot's proposal: auto-merge %t merged %t", p.AutoMerge, p.Merged)
			}

			human := gittest.Clone(t, g.bare)
			human.Git("fetch", "--quiet", "origin", "rollout/summarizer")
			human.Git("checkout", "--quiet", "FETCH_HEAD")
			human.Write(map[string]string{"prompts/extra.md": "a person's change\n"})
			human.Commit("Add a prompt while we are at it")
			human.Push("HEAD:refs/heads/rollout/summarizer")
			// The checks pass: without GitHub's auto-merge, the bot would merge the proposal itself.
			g.gh.SetMergeable(pr.Number, true, "clean")

			main := g.head("main")
			for i := 0; i < 2; i++ {
				p, res := g.pass("summarizer", pr.Number)
				t.Logf("pass %d: %s", i+1, res.Effect)
				if p.Merged || g.head("main") != main {
					t.Fatalf("the bot merged a branch holding a person's commit: %s", res.Effect)
				}
				if p.AutoMerge {
					t.Errorf("pass %d: the bot's auto-merge is still on over a person's commit", i+1)
				}
				if !strings.Contains(res.Effect, "a person pushed") {
					t.Errorf("pass %d: the effect does not say why it does not merge: %q", i+1, res.Effect)
				}
			}
		})
	}
}
