package examples_test

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	randv2 "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/examples"
	"github.com/rollout-dev/rollout/examples/demo"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/gate"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

var update = flag.Bool("update", false, "regenerate the examples' traffic/*.jsonl from their seeds")

// sample is how one example's application behaves: the profiles of its two arms.
type sample struct {
	rollout        string
	seed           int64
	stable, canary synth.Profile
}

func samples() map[string]sample {
	arm := func(model, prompt string, edit func(*synth.Profile)) synth.Profile {
		p := synth.DefaultProfile(model)
		p.Prompt = prompt
		if edit != nil {
			edit(&p)
		}
		return p
	}
	haiku := func(p *synth.Profile) {
		p.LatencyMedian, p.CostPerToken = 450, 1e-6
	}
	return map[string]sample{
		"model-bump": {rollout: "summarizer", seed: 1,
			stable: arm("claude-sonnet-4-5-20260301", "prompts/summarize/v3.md", nil),
			canary: arm("claude-sonnet-4-5-20260415", "prompts/summarize/v3.md", func(p *synth.Profile) { p.Quality = 0.86 })},
		"prompt-rewrite": {rollout: "support-reply", seed: 2,
			stable: arm("claude-haiku-4-5-20251001", "prompts/support/v5.md", func(p *synth.Profile) {
				haiku(p)
				p.FeedbackShare, p.NegativeRate = 0.4, 0.12
			}),
			canary: arm("claude-haiku-4-5-20251001", "prompts/support/v6.md", func(p *synth.Profile) {
				haiku(p)
				p.FeedbackShare, p.NegativeRate, p.OutputTokensMean = 0.4, 0.08, 240
			})},
		"cross-provider": {rollout: "classifier", seed: 3,
			stable: arm("gpt-4o-2024-08-06", "prompts/classify/v2.md", func(p *synth.Profile) { p.LatencyMedian = 650 }),
			canary: arm("claude-sonnet-4-5-20260415", "prompts/classify/v2.md", func(p *synth.Profile) {
				p.ErrorRate, p.LatencyMedian = 0.005, 700
			})},
		"cost-cut": {rollout: "tagger", seed: 4,
			stable: arm("claude-sonnet-4-5-20260301", "v4", nil),
			canary: arm("claude-haiku-4-5-20251001", "v4", func(p *synth.Profile) { haiku(p); p.Quality = 0.84 })},
	}
}

// sampleStart is the ts of every example's first request: the day the examples' canaries start.
var sampleStart = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

// samplePerHour makes each traffic file about 2,000 requests a day: enough records to evaluate, small
// enough to read.
const samplePerHour = 2000.0 / 24

// TestExampleTraffic checks that each traffic file is what its seed generates (policy/source/synth, routed by
// the example's own spec at its first stage's weight and shadow, 500 users with a few heavy ones, a
// few minutes of deploy lag, a tenth of the feedback arriving late), and that the file source reads it
// whole: go test ./examples -update regenerates them.
func TestExampleTraffic(t *testing.T) {
	for name, s := range samples() {
		t.Run(name, func(t *testing.T) {
			set, err := rollouts.Load(os.DirFS(name), rollouts.DefaultDir)
			if err != nil || len(set.Documents) != 1 {
				t.Fatalf("load: %v", err)
			}
			spec := set.Documents[0].Spec
			spec.Traffic.Weight, spec.Traffic.Shadow = spec.Stages[0].Weight, spec.Stages[0].Shadow
			var buf bytes.Buffer
			err = synth.WriteJSONL(&buf, spec, synth.Options{Seed: uint64(s.seed), From: sampleStart, To: sampleStart.Add(24 * time.Hour),
				PerHour: samplePerHour, Users: 500, Activity: 0.7, DeployLag: 5 * time.Minute,
				Stable: s.stable, Canary: s.canary, LateFeedback: 0.1, LateDelay: 10 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(name, "traffic", s.rollout+".jsonl")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./examples -update writes it)", err)
			}
			if !bytes.Equal(got, buf.Bytes()) {
				t.Fatalf("%s is not what seed %d generates (go test ./examples -update rewrites it)", path, s.seed)
			}
			stats, err := jsonl.Open(path).Stats(context.Background(), policy.Query{Rollout: s.rollout})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Malformed != 0 || stats.LateUnmatched != 0 || stats.Stable.Requests == 0 || stats.Canary.Requests == 0 || stats.Unit != policy.UnitKey {
				t.Errorf("stats of %s: %d malformed, %d late unmatched, %d stable, %d canary requests, unit %s",
					path, stats.Malformed, stats.LateUnmatched, stats.Stable.Requests, stats.Canary.Requests, stats.Unit)
			}
			if spec.Traffic.Shadow == 100 && stats.Shadow != stats.Canary.Requests {
				t.Errorf("%s: %d shadow of %d canary requests, want all shadow", path, stats.Shadow, stats.Canary.Requests)
			}
		})
	}
}

// TestSampleDayIsHealthy judges each example on its day of sample traffic, as `rollout evaluate`
// does once a reconciler has started the rollout: the sample canaries are healthy, so none is rolled
// back, and the judge reads every rule's metric from the file.
func TestSampleDayIsHealthy(t *testing.T) {
	now := sampleStart.Add(24 * time.Hour)
	for _, name := range examples.Names {
		t.Run(name, func(t *testing.T) {
			repo := os.DirFS(name)
			set, err := rollouts.Load(repo, rollouts.DefaultDir)
			if err != nil || len(set.Documents) != 1 {
				t.Fatalf("load: %v, %d documents", err, len(set.Documents))
			}
			spec := set.Documents[0].Spec
			spec.Status = &rollouts.Status{Phase: rollouts.Progressing, Stage: 0, StageStartedAt: sampleStart}
			q, ok := policy.QueryFor(spec, now)
			if !ok {
				t.Fatal("no metrics query for a progressing rollout")
			}
			stats, err := jsonl.Open(filepath.Join(name, "traffic", spec.Name+".jsonl")).Stats(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			ev := policy.Evidence{Stats: stats, Gates: map[int]policy.GateResult{}}
			gates := &gate.Keeper{Repo: repo}
			for _, i := range policy.NextGates(spec) {
				ev.Gates[i] = gates.Check(context.Background(), spec, i)
			}
			d := policy.Judge(spec, ev, now)
			if d.Action == policy.Rollback {
				t.Errorf("the sample day rolls back: %v", d.Reasons)
			}
			for _, m := range d.Metrics {
				if m.Canary.N == 0 || (m.Stable.N == 0 && spec.Traffic.Shadow == 0 && spec.Stages[0].Shadow == 0) {
					t.Errorf("%s: no data (stable n=%d, canary n=%d)", m.Name, m.Stable.N, m.Canary.N)
				}
			}
		})
	}
}

// TestExamplesAreValid loads each example as `rollout validate` does, with the lints, against the
// example's own tree: every prompt and eval file a spec names must be there.
func TestExamplesAreValid(t *testing.T) {
	if len(samples()) != len(examples.Names) {
		t.Fatalf("%d samples for %d examples", len(samples()), len(examples.Names))
	}
	for _, name := range examples.Names {
		t.Run(name, func(t *testing.T) {
			for label, tree := range map[string]func() (fs.FS, error){
				"folder":   func() (fs.FS, error) { return os.DirFS(name), nil },
				"embedded": func() (fs.FS, error) { return examples.Repo(name) },
			} {
				fsys, err := tree()
				if err != nil {
					t.Fatal(err)
				}
				set, err := rollouts.Load(fsys, rollouts.DefaultDir)
				if err != nil {
					t.Fatalf("%s: %v", label, err)
				}
				for _, p := range append(set.Problems, rollouts.Lint(set, fsys)...) {
					t.Errorf("%s: %s", label, p.Error())
				}
				if len(set.Documents) != 1 || set.Documents[0].Spec.Name != samples()[name].rollout {
					t.Errorf("%s: want the one rollout %s", label, samples()[name].rollout)
				}
				spec := set.Documents[0].Spec
				if want := "file:traffic/" + spec.Name + ".jsonl"; spec.Metrics.Source != want {
					t.Errorf("%s: metrics.source %q, want %q so that the sample traffic is read from the example's folder", label, spec.Metrics.Source, want)
				}
			}
		})
	}
}

// TestExampleTicks runs a few demo hours on each example: the reconciler starts the rollout, the
// application routes and records, and every tick judges without error.
func TestExampleTicks(t *testing.T) {
	for _, name := range examples.Names {
		t.Run(name, func(t *testing.T) {
			s := samples()[name]
			repo, err := examples.Repo(name)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := demo.ScenarioFrom(repo, map[string]demo.Traffic{s.rollout: {PerHour: 200, Stable: s.stable, Canary: s.canary}})
			if err != nil {
				t.Fatal(err)
			}
			out, err := demo.Run(context.Background(), demo.Config{Dir: t.TempDir(), Scenario: sc, Start: sampleStart, Hours: 4,
				Rand: randv2.New(randv2.NewPCG(uint64(s.seed), 1))})
			if err != nil {
				t.Fatal(err)
			}
			decisions := out.Decisions(s.rollout)
			if len(decisions) != 4 {
				t.Fatalf("%d decisions in 4 hours, want 4", len(decisions))
			}
			for _, e := range decisions {
				if e.Result.Err != nil {
					t.Errorf("hour %d: %v", e.Hour, e.Result.Err)
				}
			}
			first := decisions[0].Result
			if first.Decision != policy.Start || first.Commit == "" {
				t.Errorf("first tick: %s (commit %q), want a start commit", first.Decision, first.Commit)
			}
			later := decisions[len(decisions)-1].Result
			if later.Evidence == nil || len(later.Evidence.Metrics) != len(out.Final[s.rollout].Analysis.Rules) {
				t.Errorf("last tick judged no rules: %+v", later)
			}
			st := out.Final[s.rollout].Status
			if st == nil || st.Phase != rollouts.Progressing {
				t.Errorf("status after 4 hours: %+v, want Progressing", st)
			}
			if strings.Contains(strings.Join(later.Reasons, " "), "metrics source failed") {
				t.Errorf("the metrics source failed: %v", later.Reasons)
			}
		})
	}
}
