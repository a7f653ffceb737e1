package reconcile_test

import (
	"context"
	"io/fs"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

const routedSpec = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable:
  model: claude-sonnet-4-5-20260301
canary:
  model: claude-sonnet-4-5-20260415
traffic:
  weight: 0
  routes:
    - litellm: gateway/litellm.yaml
    - file: deploy/httproute.yaml
      stable: spec.rules[0].backendRefs[0].weight
      canary: spec.rules[0].backendRefs[1].weight
stages:
  - {weight: 5, minDuration: 1h}
  - {weight: 25, minDuration: 1h}
  - {weight: 100}
analysis:
  rules:
    - {metric: error_rate, max: 0.05}
`

const routedLiteLLM = `model_list:
  - model_name: summarizer
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20260301   # stable
      weight: 100
  - model_name: summarizer
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20260415   # canary
      weight: 0
`

const routedHTTPRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: summarizer}
spec:
  rules:
    - backendRefs:
        - {name: stable, port: 8080, weight: 100}
        - {name: canary, port: 8080, weight: 0}
`

// armsSource answers with fixed per-arm error counts at the weight's split: a hand-written source.
type armsSource struct{ stableErrors, canaryErrors float64 }

func (s armsSource) Stats(context.Context, policy.Query) (*policy.Stats, error) {
	arm := func(n int64, errs float64) policy.ArmStats {
		return policy.ArmStats{Requests: n, Metrics: map[string]policy.Sample{
			"error_rate": {Kind: policy.Proportion, N: n, Sum: errs}}}
	}
	return &policy.Stats{Unit: policy.UnitRequest, Stable: arm(38000, s.stableErrors*38000), Canary: arm(2000, s.canaryErrors*2000)}, nil
}

func routedLoop(t *testing.T, bare string, src policy.Source, now time.Time) *reconcile.Loop {
	t.Helper()
	remote, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	return &reconcile.Loop{Repo: remote, Forge: &gitrepo.LocalForge{Remote: remote},
		Sources: func(*rollouts.Spec) (policy.Source, error) { return src, nil },
		Gates: func(context.Context, fs.FS, *rollouts.Spec, int) policy.GateResult {
			return policy.GateResult{Open: true}
		},
		Now: func() time.Time { return now }}
}

// commitFiles lists the files a commit changed, sorted.
func commitFiles(t *testing.T, bare, commit string) []string {
	t.Helper()
	out := strings.Fields(gittest.Git(t, bare, "show", "--name-only", "--format=", commit))
	sort.Strings(out)
	return out
}

func tick(t *testing.T, l *reconcile.Loop) reconcile.Result {
	t.Helper()
	rep, err := l.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("results %+v, want one", rep.Results)
	}
	res := rep.Results[0]
	if res.Err != nil {
		t.Fatalf("%s: %v", res.Rollout, res.Err)
	}
	return res
}

// TestRoutesChangeInTheSameCommit runs a start, an advance proposal and a rollback through the loop on
// a real git remote: each commit changes the spec and every route file, and the routes carry the
// spec's split.
func TestRoutesChangeInTheSameCommit(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/summarizer.yaml": routedSpec,
		"gateway/litellm.yaml":     routedLiteLLM,
		"deploy/httproute.yaml":    routedHTTPRoute,
	})
	all := []string{"deploy/httproute.yaml", "gateway/litellm.yaml", "rollouts/summarizer.yaml"}
	start := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	healthy, failing := armsSource{0.01, 0.01}, armsSource{0.01, 0.2}
	show := func(rev, file string) string { return gittest.Git(t, bare, "show", rev+":"+file) }

	// Start: stage 0 at 5%, on the default branch.
	res := tick(t, routedLoop(t, bare, healthy, start))
	if res.Decision != policy.Start || res.Commit == "" {
		t.Fatalf("first tick: %+v, want a start commit", res)
	}
	if got := commitFiles(t, bare, res.Commit); strings.Join(got, " ") != strings.Join(all, " ") {
		t.Errorf("start commit changed %v, want %v", got, all)
	}
	litellm := show(res.Commit, "gateway/litellm.yaml")
	if !strings.Contains(litellm, "# stable\n      weight: 95\n") || !strings.Contains(litellm, "# canary\n      weight: 5") {
		t.Errorf("litellm config after the start:\n%s", litellm)
	}
	if r := show(res.Commit, "deploy/httproute.yaml"); !strings.Contains(r, "{name: stable, port: 8080, weight: 95}") || !strings.Contains(r, "{name: canary, port: 8080, weight: 5}") {
		t.Errorf("HTTPRoute after the start:\n%s", r)
	}

	// Advance: the proposal's one commit carries 25% in the spec and in both routes.
	res = tick(t, routedLoop(t, bare, healthy, start.Add(2*time.Hour)))
	if res.Decision != policy.Advance || res.Commit == "" {
		t.Fatalf("second tick: %+v, want an advance proposal", res)
	}
	branch := reconcile.BranchFor("summarizer")
	if got := commitFiles(t, bare, branch); strings.Join(got, " ") != strings.Join(all, " ") {
		t.Errorf("advance commit changed %v, want %v", got, all)
	}
	if l := show(branch, "gateway/litellm.yaml"); !strings.Contains(l, "weight: 75") || !strings.Contains(l, "weight: 25") {
		t.Errorf("litellm config on the proposal:\n%s", l)
	}
	if msg := gittest.Git(t, bare, "log", "-1", "--format=%B", branch); !strings.Contains(msg, "gateway routes (traffic.routes): `gateway/litellm.yaml`, `deploy/httproute.yaml`") {
		t.Errorf("the proposal does not list the route files it changes:\n%s", msg)
	}
	if l := show("HEAD", "gateway/litellm.yaml"); !strings.Contains(l, "weight: 95") {
		t.Errorf("the proposal changed the default branch's routes:\n%s", l)
	}

	// Rollback: the canary fails; one commit on the default branch sends everything back to stable.
	res = tick(t, routedLoop(t, bare, failing, start.Add(3*time.Hour)))
	if res.Decision != policy.Rollback || res.Commit == "" {
		t.Fatalf("third tick: %+v, want a rollback commit", res)
	}
	if got := commitFiles(t, bare, res.Commit); strings.Join(got, " ") != strings.Join(all, " ") {
		t.Errorf("rollback commit changed %v, want %v", got, all)
	}
	if got, want := show(res.Commit, "gateway/litellm.yaml"), routedLiteLLM; strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("litellm config after the rollback:\n%s\nwant the original:\n%s", got, want)
	}
	if got, want := show(res.Commit, "deploy/httproute.yaml"), routedHTTPRoute; strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("HTTPRoute after the rollback:\n%s\nwant the original:\n%s", got, want)
	}
}

// TestBrokenRouteIsASpecError: a route whose model is missing makes the spec invalid, named at the
// route's line, and nothing is committed.
func TestBrokenRouteIsASpecError(t *testing.T) {
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/summarizer.yaml": routedSpec,
		"gateway/litellm.yaml":     strings.ReplaceAll(routedLiteLLM, "20260415", "20991231"),
		"deploy/httproute.yaml":    routedHTTPRoute,
	})
	head := gittest.Head(t, bare, "HEAD")
	rep, err := routedLoop(t, bare, armsSource{0.01, 0.01}, time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)).Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Err == nil || !strings.Contains(rep.Results[0].Err.Error(), "rollouts/summarizer.yaml:11:16: traffic.routes[0].litellm: gateway/litellm.yaml: no model_list entry has litellm_params.model claude-sonnet-4-5-20260415") {
		t.Fatalf("results %+v, want the broken route named", rep.Results)
	}
	if gittest.Head(t, bare, "HEAD") != head {
		t.Error("a spec with a broken route was committed")
	}
}

// canaryOnlySource answers as at 100%: every request on the canary, few errors.
type canaryOnlySource struct{}

func (canaryOnlySource) Stats(context.Context, policy.Query) (*policy.Stats, error) {
	return &policy.Stats{Unit: policy.UnitRequest, Stable: policy.ArmStats{Metrics: map[string]policy.Sample{}},
		Canary: policy.ArmStats{Requests: 40000, Metrics: map[string]policy.Sample{
			"error_rate": {Kind: policy.Proportion, N: 40000, Sum: 400}}}}, nil
}

// TestRoutesFollowAPromotion: a promotion committed straight to the default branch gives the new
// stable model everything, in the spec's commit, even when a human had left the routes at 50/50.
func TestRoutesFollowAPromotion(t *testing.T) {
	atFull := strings.NewReplacer("  weight: 0\n  routes:", "  weight: 100\n  routes:",
		"analysis:", "promotion: {via: commit}\nstatus: {phase: Progressing, stage: 2, stageStartedAt: 2026-04-16T00:00:00Z}\nanalysis:").Replace(routedSpec)
	half := strings.NewReplacer("weight: 100", "weight: 50", "weight: 0", "weight: 50")
	bare := gittest.NewBare(t, map[string]string{
		"rollouts/summarizer.yaml": atFull,
		"gateway/litellm.yaml":     half.Replace(routedLiteLLM),
		"deploy/httproute.yaml":    half.Replace(routedHTTPRoute),
	})
	res := tick(t, routedLoop(t, bare, canaryOnlySource{}, time.Date(2026, 4, 16, 6, 0, 0, 0, time.UTC)))
	if res.Decision != policy.Promote || res.Commit == "" {
		t.Fatalf("tick: %+v, want a promotion commit", res)
	}
	if spec := gittest.Git(t, bare, "show", res.Commit+":rollouts/summarizer.yaml"); !strings.Contains(spec, "stable:\n  model: claude-sonnet-4-5-20260415") {
		t.Fatalf("the promotion did not make the canary stable:\n%s", spec)
	}
	if got := commitFiles(t, bare, res.Commit); strings.Join(got, " ") != "deploy/httproute.yaml gateway/litellm.yaml rollouts/summarizer.yaml" {
		t.Errorf("promotion commit changed %v, want the spec and both routes", got)
	}
	l := gittest.Git(t, bare, "show", res.Commit+":gateway/litellm.yaml")
	if !strings.Contains(l, "# stable\n      weight: 0") || !strings.Contains(l, "# canary\n      weight: 100") {
		t.Errorf("litellm config after the promotion:\n%s", l)
	}
	if r := gittest.Git(t, bare, "show", res.Commit+":deploy/httproute.yaml"); !strings.Contains(r, "{name: stable, port: 8080, weight: 0}") || !strings.Contains(r, "{name: canary, port: 8080, weight: 100}") {
		t.Errorf("HTTPRoute after the promotion:\n%s", r)
	}
}
