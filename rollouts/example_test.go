package rollouts_test

import (
	"fmt"

	"github.com/rollout-dev/rollout/rollouts"
)

// An application routes each request by its user id, the assignment key.
func ExampleAssigner_Choose() {
	spec, problems := rollouts.Parse("summarizer.yaml", []byte(`
apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable: {model: claude-sonnet-4-5-20260301, prompt: v3}
canary: {model: claude-sonnet-4-5-20260415, prompt: v3}
traffic: {weight: 25}
assignment: {salt: summarizer-2026-04-15, exclude: ["vip-*"]}
stages: [{weight: 25}, {weight: 100}]
`))
	if len(problems) > 0 {
		fmt.Println(problems)
		return
	}
	router := spec.Assigner() // keep it: it precomputes the salt
	for _, user := range []string{"u-1", "u-2", "u-8", "vip-1"} {
		c := router.Choose(user)
		fmt.Println(user, c.Arm, c.Variant.Model, c.Reason)
	}
	// Output:
	// u-1 canary claude-sonnet-4-5-20260415 hash
	// u-2 stable claude-sonnet-4-5-20260301 hash
	// u-8 stable claude-sonnet-4-5-20260301 hash
	// vip-1 stable claude-sonnet-4-5-20260301 exclude
}

// The controller advances a rollout by editing only the lines that change.
func ExampleEdit() {
	src := []byte(`name: summarizer
traffic:
  weight: 5   # percent of users on the canary
`)
	weight := 25
	out, err := rollouts.Edit(src, rollouts.Change{Weight: &weight})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(out))
	// Output:
	// name: summarizer
	// traffic:
	//   weight: 25  # percent of users on the canary
}
