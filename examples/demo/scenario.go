package demo

import (
	"bytes"
	"fmt"
	"io/fs"

	"github.com/rollout-dev/rollout/examples"
	"github.com/rollout-dev/rollout/policy/source/synth"
)

// The rollouts of the default story.
const (
	// Healthy is the prompt rewrite, whose canary is fine and goes all the way.
	Healthy = "support-reply"
	// Regressing is the model bump, whose canary fails one request in eight from its first stage: a
	// stage advances only on evidence that every rule is within its limit, and at 5% of 240 requests an
	// hour that evidence takes days, so the regression is caught where it starts.
	Regressing = "summarizer"
	// Trickle is the cost cut, whose application serves so few requests that nothing can be shown.
	Trickle = "tagger"
)

// DefaultHours is how long the default story runs: long enough for the prompt rewrite to be promoted.
const DefaultHours = 48

// adjustment is one change the demo makes to an example spec, so that a story of two simulated days
// runs on a few thousand requests. Each must apply exactly once, so that a change to the example
// shows up here instead of silently changing the story.
type adjustment struct {
	file     string
	old, new string
}

var adjustments = []adjustment{
	// Fewer requests per stage: the demo serves hundreds of requests an hour, not thousands.
	{"rollouts/support-reply.yaml", "    minRequests: 500\n  - weight: 50", "    minRequests: 150\n  - weight: 50"},
	{"rollouts/support-reply.yaml", "    minRequests: 500\n  - weight: 100", "    minRequests: 150\n  - weight: 100"},
	{"rollouts/summarizer.yaml", "{weight: 5,  minDuration: 4h,  minRequests: 200}", "{weight: 5,  minDuration: 4h,  minRequests: 60}"},
	{"rollouts/summarizer.yaml", "{weight: 25, minDuration: 8h,  minRequests: 200}", "{weight: 25, minDuration: 8h,  minRequests: 60}"},
	// The rewrite's shorter replies cost less: a rule on the next stage's projected extra spend shows,
	// in every proposal, what the next stage and 100% would cost a day (issue 25's rehearsal of a cost
	// rule; `rollout simulate --regress-cost 2` makes it fire).
	{"rollouts/support-reply.yaml", "    - metric: quality_score\n      maxDecrease: 3%\n", "    - metric: quality_score\n      maxDecrease: 3%\n    - metric: projected_extra_cost_per_day\n      max: 20\n"},
	// A shorter last stage, so that the prompt rewrite, which advances only once each stage shows every
	// rule within its limit, is promoted within the two days.
	{"rollouts/support-reply.yaml", "  - weight: 100\n    minDuration: 24h", "  - weight: 100\n    minDuration: 12h"},
}

// Default is the story `rollout demo` tells: the prompt rewrite, the model bump and the cost cut from
// examples/, in one repository, with traffic that makes the first healthy, the second regress from
// its first stage (5%) and the third a trickle.
func Default() (Scenario, error) {
	files := map[string][]byte{}
	for _, name := range []string{"prompt-rewrite", "model-bump", "cost-cut"} {
		repo, err := examples.Repo(name)
		if err != nil {
			return Scenario{}, err
		}
		fsys, err := readFiles(repo)
		if err != nil {
			return Scenario{}, fmt.Errorf("example %s: %w", name, err)
		}
		for p, b := range fsys {
			files[p] = b
		}
	}
	for _, a := range adjustments {
		src, ok := files[a.file]
		if !ok {
			return Scenario{}, fmt.Errorf("demo adjustment: no file %s in the examples", a.file)
		}
		if n := bytes.Count(src, []byte(a.old)); n != 1 {
			return Scenario{}, fmt.Errorf("demo adjustment of %s: %q appears %d times, want once; update examples/demo/scenario.go to the example", a.file, a.old, n)
		}
		files[a.file] = bytes.Replace(src, []byte(a.old), []byte(a.new), 1)
	}
	return Scenario{Files: files, Traffic: DefaultTraffic()}, nil
}

// ScenarioFrom is the scenario of a repository tree and its applications' traffic.
func ScenarioFrom(repo fs.FS, traffic map[string]Traffic) (Scenario, error) {
	files, err := readFiles(repo)
	if err != nil {
		return Scenario{}, err
	}
	return Scenario{Files: files, Traffic: traffic}, nil
}

// DefaultTraffic is the application behaviour of the default story.
func DefaultTraffic() map[string]Traffic {
	haiku := synth.DefaultProfile("claude-haiku-4-5-20251001")
	haiku.LatencyMedian, haiku.CostPerToken = 450, 1e-6
	haiku.FeedbackShare, haiku.NegativeRate = 0.4, 0.12
	// The rewrite is shorter and warmer: fewer output tokens, fewer unhappy users.
	rewrite := haiku
	rewrite.OutputTokensMean, rewrite.NegativeRate, rewrite.Quality = 240, 0.08, 0.87

	sonnet := synth.DefaultProfile("claude-sonnet-4-5-20260301")
	bump := sonnet
	bump.Quality = 0.86
	// The new model hits a rate limit: one request in eight fails.
	overloaded := bump
	overloaded.ErrorRate = 0.12

	tagStable := synth.DefaultProfile("claude-sonnet-4-5-20260301")
	tagCanary := haiku
	tagCanary.Quality = 0.84

	accounts := append(KeyRange("acct-", 300), append(KeyRange("vip-", 20), KeyRange("beta-", 10)...)...)
	return map[string]Traffic{
		Healthy:    {PerHour: 1200, Stable: haiku, Canary: rewrite},
		Regressing: {PerHour: 240, Stable: sonnet, Canary: bump, RegressAt: 5, Regressed: overloaded},
		Trickle:    {PerHour: 6, Keys: accounts, Stable: tagStable, Canary: tagCanary},
	}
}
