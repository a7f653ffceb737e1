package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateRoutes: `rollout validate` checks traffic.routes in the repository and names the spec's
// line and the route file's own line of the problem.
func TestValidateRoutes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rollouts/chat.yaml", `apiVersion: rollout/v1
kind: Rollout
name: chat
stable: {model: gpt-4.1-2025-04-14}
canary: {model: gpt-5-2025-08-07}
traffic:
  weight: 0
  routes:
    - litellm: gateway/litellm.yaml
    - file: deploy/route.yaml
      stable: spec.backends[0].weight
      canary: spec.backends[1].wieght
stages: [{weight: 5}, {weight: 100}]
`)
	write("gateway/litellm.yaml", "model_list:\n  - model_name: chat\n    litellm_params: {model: openai/gpt-4.1-2025-04-14, weight: 100}\n")
	write("deploy/route.yaml", "spec:\n  backends:\n    - {name: a, weight: 100}\n    - {name: b, weight: 0}\n")
	code, stdout, stderr := runApp("--repo", dir, "validate")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"rollouts/chat.yaml:9:16: traffic.routes[0].litellm: gateway/litellm.yaml: no model_list entry has litellm_params.model gpt-5-2025-08-07 (the canary model)",
		`rollouts/chat.yaml:10:13: traffic.routes[1].file: deploy/route.yaml:4:7: spec.backends[1] has no key "wieght"`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("validate does not say %q:\n%s", want, stdout)
		}
	}
}
