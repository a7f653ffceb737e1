package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// weightsFile renders one "name weight" line per spec: a publication whose content shows the split.
func weightsFile(specs []*rollouts.Spec) ([]byte, error) {
	var b strings.Builder
	for _, s := range specs {
		fmt.Fprintf(&b, "%s %d\n", s.Name, s.Traffic.Weight)
	}
	return []byte(b.String()), nil
}

// quarterSource answers as at 25%: 30,000 requests on stable, 10,000 on the canary, few errors.
type quarterSource struct{}

func (quarterSource) Stats(context.Context, policy.Query) (*policy.Stats, error) {
	arm := func(n int64) policy.ArmStats {
		return policy.ArmStats{Requests: n, Metrics: map[string]policy.Sample{
			"error_rate": {Kind: policy.Proportion, N: n, Sum: float64(n) / 100}}}
	}
	return &policy.Stats{Unit: policy.UnitRequest, Stable: arm(30000), Canary: arm(10000)}, nil
}

func publishingLoop(t *testing.T, bare string, src policy.Source, now time.Time) *reconcile.Loop {
	l := routedLoop(t, bare, src, now)
	l.Publish = []reconcile.Publication{{Path: "features/weights.txt", Render: weightsFile}}
	return l
}

func pass(t *testing.T, l *reconcile.Loop) *reconcile.Report {
	t.Helper()
	rep, err := l.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Rollout, r.Err)
		}
	}
	if rep.PublishErr != nil {
		t.Fatalf("publish: %v", rep.PublishErr)
	}
	return rep
}

// TestPublicationRidesEveryDefaultBranchCommit: the start and the rollback commits carry the published
// file with the split they set, in the same commit as the spec and the routes; a proposal does not
// (it would conflict with every other open proposal): the commit that lands the merged stage does. A
// file a person changed is published again, once, in a bookkeeping commit. A plan writes nothing.
func TestPublicationRidesEveryDefaultBranchCommit(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/summarizer.yaml": routedSpec,
		"gateway/litellm.yaml":     routedLiteLLM,
		"deploy/httproute.yaml":    routedHTTPRoute,
	})
	start := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	healthy, failing := armsSource{0.01, 0.01}, armsSource{0.01, 0.2}
	show := func(rev string) string { return gittest.Git(t, bare, "show", rev+":features/weights.txt") }

	rep := pass(t, publishingLoop(t, bare, healthy, start))
	res := rep.Results[0]
	if res.Decision != policy.Start {
		t.Fatalf("first pass: %+v, want a start", res)
	}
	if got := strings.Join(commitFiles(t, bare, res.Commit), " "); got != "deploy/httproute.yaml features/weights.txt gateway/litellm.yaml rollouts/summarizer.yaml" {
		t.Errorf("the start commit changed %s", got)
	}
	if got := show(res.Commit); got != "summarizer 5" {
		t.Errorf("published at the start: %q", got)
	}
	if rep.Published != "" {
		t.Errorf("a pass whose own commit published published again: %s", rep.Published)
	}

	rep = pass(t, publishingLoop(t, bare, healthy, start.Add(2*time.Hour)))
	branch := reconcile.BranchFor("summarizer")
	if rep.Results[0].Decision != policy.Advance || rep.Published != "" {
		t.Fatalf("second pass: %+v, published %q; want an advance proposal and nothing published", rep.Results[0], rep.Published)
	}
	if files := commitFiles(t, bare, branch); strings.Contains(strings.Join(files, " "), "features/") {
		t.Errorf("the proposal carries the publication: %v", files)
	}

	// A person merges the proposal (a merge commit of their own, as GitHub's merge button makes).
	human := gittest.Clone(t, bare)
	human.Git("fetch", "origin", branch)
	human.Git("merge", "--no-ff", "-m", "Merge the 25% stage", "FETCH_HEAD")
	human.Push("HEAD:main")
	// A plan sees the merged stage and writes nothing.
	before := gittest.Head(t, bare, "main")
	if _, err := publishingLoop(t, bare, quarterSource{}, start.Add(150*time.Minute)).Plan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gittest.Head(t, bare, "main") != before {
		t.Fatal("a plan committed")
	}
	// The pass that finds the merge lands the stage (a commit of its own), and that commit publishes.
	rep = pass(t, publishingLoop(t, bare, quarterSource{}, start.Add(150*time.Minute)))
	if res = rep.Results[0]; res.Commit == "" || show(res.Commit) != "summarizer 25" || rep.Published != "" {
		t.Fatalf("after the merge: %+v, published %q; want the landing commit to publish the 25%% split", res, rep.Published)
	}
	// A person deletes the file: the next pass, with nothing to decide, publishes it again, once.
	human.Pull()
	human.Git("rm", "-q", "features/weights.txt")
	human.Commit("Remove the weights")
	human.Push("HEAD:main")
	rep = pass(t, publishingLoop(t, bare, quarterSource{}, start.Add(151*time.Minute)))
	if rep.Results[0].Commit != "" || rep.Published == "" || show(rep.Published) != "summarizer 25" {
		t.Fatalf("after the removal: %+v, published %q, want the file committed again", rep.Results[0], rep.Published)
	}
	if got := strings.Join(commitFiles(t, bare, rep.Published), " "); got != "features/weights.txt" {
		t.Errorf("the publish commit changed %s", got)
	}
	if msg := gittest.Git(t, bare, "log", "-1", "--format=%B", rep.Published); !strings.Contains(msg, reconcile.TrailerBookkeeping+": publish") || strings.Contains(msg, "Rollout-Decision") {
		t.Errorf("the publish commit is not bookkeeping:\n%s", msg)
	}
	if rep = pass(t, publishingLoop(t, bare, quarterSource{}, start.Add(152*time.Minute))); rep.Published != "" {
		t.Errorf("a current publication was committed again: %s", rep.Published)
	}

	rep = pass(t, publishingLoop(t, bare, failing, start.Add(4*time.Hour)))
	res = rep.Results[0]
	if res.Decision != policy.Rollback || res.Commit == "" {
		t.Fatalf("fourth pass: %+v, want a rollback commit", res)
	}
	if got := show(res.Commit); got != "summarizer 0" {
		t.Errorf("the rollback commit publishes %q, want the canary at 0", got)
	}
	if files := strings.Join(commitFiles(t, bare, res.Commit), " "); !strings.Contains(files, "features/weights.txt") || !strings.Contains(files, "rollouts/summarizer.yaml") {
		t.Errorf("the rollback commit changed %s, want the spec and the publication together", files)
	}
}

// TestPublicationFailureNeverStopsARollback: a publication that cannot be rendered leaves the rollback
// to land without it, with a warning.
func TestPublicationFailureNeverStopsARollback(t *testing.T) {
	spec := strings.Replace(routedSpec, "  weight: 0\n", "  weight: 5\n", 1) + "status:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-04-16T00:00:00Z\n"
	bare := gittest.NewBare(t, map[string]string{"rollouts/summarizer.yaml": spec,
		"gateway/litellm.yaml":  strings.Replace(strings.Replace(routedLiteLLM, "weight: 100", "weight: 95", 1), "weight: 0", "weight: 5", 1),
		"deploy/httproute.yaml": strings.Replace(strings.Replace(routedHTTPRoute, "weight: 100", "weight: 95", 1), "weight: 0}", "weight: 5}", 1)})
	l := routedLoop(t, bare, armsSource{0.01, 0.2}, time.Date(2026, 4, 16, 3, 0, 0, 0, time.UTC))
	l.Publish = []reconcile.Publication{{Path: "features/weights.txt", Render: func([]*rollouts.Spec) ([]byte, error) {
		return nil, errors.New("renderer broken")
	}}}
	rep, err := l.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Results[0]
	if res.Decision != policy.Rollback || res.Commit == "" || res.Err != nil {
		t.Fatalf("%+v, want the rollback committed", res)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "features/weights.txt not published: renderer broken") {
		t.Errorf("warnings %q", res.Warnings)
	}
	if rep.PublishErr == nil {
		t.Error("the pass does not report the publication it could not bring up to date")
	}
}

func TestValidPublicationPath(t *testing.T) {
	for p, ok := range map[string]bool{"features.json": true, "features/growthbook.json": true, "": false, "/etc/x": false,
		"../x": false, "a/../b": false, ".git/config": false, "a\\b": false, "./a": false} {
		if err := reconcile.ValidPublicationPath(p); (err == nil) != ok {
			t.Errorf("ValidPublicationPath(%q) = %v", p, err)
		}
	}
}
