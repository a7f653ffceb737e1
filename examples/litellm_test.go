package examples_test

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/policy/source/synth/genaiexport"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestLiteLLMExampleIsValid loads the LiteLLM example as `rollout validate` does: its route resolves in
// the example's own tree, and nothing is linted.
func TestLiteLLMExampleIsValid(t *testing.T) {
	fsys := os.DirFS("litellm")
	set, err := rollouts.Load(fsys, rollouts.DefaultDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(set.Problems, rollouts.Lint(set, fsys)...) {
		t.Error(p.Error())
	}
	if len(set.Documents) != 1 || len(set.Documents[0].Spec.Traffic.Routes) != 1 || set.Documents[0].Spec.Metrics.Schema != rollouts.SchemaLiteLLM {
		t.Fatalf("want the one rollout chat, routed by LiteLLM and judged on its metrics")
	}
}

// TestLiteLLMExampleRollout runs the example as a team would: its files in a real git remote, the
// proxy's metrics (as LiteLLM's Prometheus callback names and labels them) in a real Prometheus. The
// start commit and the advance proposal each change the spec and the proxy config together, and the
// proxy config's diff holds only its weight lines.
func TestLiteLLMExampleRollout(t *testing.T) {
	files := map[string]string{}
	if err := fs.WalkDir(os.DirFS("litellm"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(os.DirFS("litellm"), p)
		files[p] = string(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	bare := gittest.NewBare(t, files)

	start := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	end := start.Add(90 * time.Minute)
	reg := prometheus.NewRegistry()
	lite := genaiexport.NewLiteLLM(reg)
	traffic := synth.Generate(synth.Traffic{Rollout: "chat", From: start, To: end, Stable: 38000, Canary: 2000,
		StableProfile: synth.Stable, CanaryProfile: synth.Stable}, 21)
	om, err := synth.OpenMetrics(reg, func(r synth.Request) {
		lite.Observe(r, "chat", map[policy.Arm]string{policy.Stable: "openai/gpt-4.1-2025-04-14", policy.Canary: "openai/gpt-5-2025-08-07"}[r.Variant])
	}, traffic, start, end, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	src, err := prom.New(testserver.PrometheusBackfilled(t, om))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	loop := func(now time.Time) *reconcile.Loop {
		return &reconcile.Loop{Repo: remote, Forge: &gitrepo.LocalForge{Remote: remote},
			Sources: func(*rollouts.Spec) (policy.Source, error) { return src, nil },
			Gates: func(context.Context, fs.FS, *rollouts.Spec, int) policy.GateResult {
				return policy.GateResult{Open: true}
			},
			Now: func() time.Time { return now }}
	}
	tick := func(now time.Time, want policy.Action) reconcile.Result {
		t.Helper()
		rep, err := loop(now).Tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 1 || rep.Results[0].Err != nil || rep.Results[0].Decision != want || rep.Results[0].Commit == "" {
			t.Fatalf("tick at %s: %+v, want a %s commit", now.Format(time.Kitchen), rep.Results, want)
		}
		return rep.Results[0]
	}
	changed := func(from, to string) string {
		return strings.Join(strings.Fields(gittest.Git(t, bare, "diff", "--name-only", from, to)), " ")
	}
	weightLinesOnly := func(from, to string) {
		t.Helper()
		for _, l := range strings.Split(gittest.Git(t, bare, "diff", "-U0", from, to, "--", "gateway/litellm.yaml"), "\n") {
			if (strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+")) && !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "+++") && !strings.Contains(l, "weight:") {
				t.Errorf("the proxy config's diff touches %q", l)
			}
		}
	}

	first := gittest.Head(t, bare, "HEAD")
	res := tick(start, policy.Start)
	if got := changed(first, res.Commit); got != "gateway/litellm.yaml rollouts/chat.yaml" {
		t.Errorf("start commit changed %q, want the spec and the proxy config", got)
	}
	weightLinesOnly(first, res.Commit)
	if cfg := gittest.Git(t, bare, "show", res.Commit+":gateway/litellm.yaml"); !strings.Contains(cfg, "# stable\n      api_key: os.environ/OPENAI_API_KEY\n      weight: 95") ||
		!strings.Contains(cfg, "# canary\n      api_key: os.environ/OPENAI_API_KEY\n      weight: 5") {
		t.Errorf("proxy config after the start:\n%s", cfg)
	}

	res = tick(end, policy.Advance)
	branch := reconcile.BranchFor("chat")
	if got := changed(gittest.Head(t, bare, "HEAD"), branch); got != "gateway/litellm.yaml rollouts/chat.yaml" {
		t.Errorf("advance proposal changed %q, want the spec and the proxy config", got)
	}
	weightLinesOnly("HEAD", branch)
	if cfg := gittest.Git(t, bare, "show", branch+":gateway/litellm.yaml"); !strings.Contains(cfg, "weight: 75") || !strings.Contains(cfg, "weight: 25") {
		t.Errorf("proxy config on the proposal:\n%s", cfg)
	}
}
