// Package examples holds four example repositories, each the rollout folder of a team facing one
// common situation, with sample request traffic:
//
//   - model-bump: a model version bump judged on quality, errors and latency, with a Slack
//     notification on rollback;
//   - prompt-rewrite: a prompt rewrite on the same model;
//   - cross-provider: a migration to another provider, with a shadow stage behind an offline-eval gate;
//   - cost-cut: a cheaper model, with VIP accounts excluded and beta accounts opted in.
//
// Each folder is laid out as a team's repository: rollouts/ (the specs), the prompts and eval files
// they name, and traffic/<rollout>.jsonl (sample request records, the specs' file: source). Run
// rollout inside one to try it:
//
//	cd examples/model-bump && go run ../../cmd/rollout evaluate --spec rollouts/summarizer.yaml
//
// A fifth, litellm, is an application behind a LiteLLM proxy: its rollout is judged on the proxy's
// Prometheus metrics (metrics.schema: litellm) and its proxy config follows traffic.weight
// (traffic.routes). It needs a Prometheus, so the demo leaves it out and its tests bring one.
//
// The Go package embeds the repositories without their traffic, so that `rollout demo` can build its
// throw-away repository from them in any directory; the traffic files are regenerated from fixed seeds
// by `go test ./examples -update`.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed model-bump/rollouts model-bump/prompts
//go:embed prompt-rewrite/rollouts prompt-rewrite/prompts
//go:embed cross-provider/rollouts cross-provider/prompts cross-provider/evals
//go:embed cost-cut/rollouts
var repos embed.FS

// Names lists the example repositories, in the order the README presents them.
var Names = []string{"model-bump", "prompt-rewrite", "cross-provider", "cost-cut"}

// Repo returns the tree of one example repository, without its traffic.
func Repo(name string) (fs.FS, error) {
	for _, n := range Names {
		if n == name {
			return fs.Sub(repos, name)
		}
	}
	return nil, fmt.Errorf("no example repository named %q", name)
}
