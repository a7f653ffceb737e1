package rollouts

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLint(t *testing.T) {
	repo := fstest.MapFS{"prompts/v3.md": {Data: []byte("p")}, "evals/e.json": {Data: []byte("{}")}}
	spec := func(name, body string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("apiVersion: rollout/v1\nkind: Rollout\nname: " + name + "\n" + body + "stages: [{weight: 100}]\n")}
	}
	fsys := fstest.MapFS{
		"r/clean.yaml":    spec("clean", "stable: {model: m-20260101, prompt: prompts/v3.md}\ncanary: {model: m-20260401, prompt: prompts/v3.md}\nassignment: {salt: s1}\n"),
		"r/unpinned.yaml": spec("unpinned", "stable: {model: claude-sonnet-4-5, prompt: v3}\ncanary: {model: gpt-4o, prompt: v3}\n"),
		"r/both.yaml":     spec("both", "stable: {model: m-20260101, prompt: v3}\ncanary: {model: m-20260401, prompt: v4}\n"),
		"r/salt.yaml":     spec("salt", "stable: {model: m-20260101}\ncanary: {model: m-v2}\nassignment: {salt: s1}\n"),
		"r/paths.yaml":    spec("paths", "stable: {model: m-2026-01-01, prompt: ../secrets/key.txt}\ncanary: {model: m-2026-02-01, prompt: prompts/v4.md}\n"),
		"r/short.yaml":    {Data: []byte("apiVersion: rollout/v1\nkind: Rollout\nname: short\nstable: {model: m-v1}\ncanary: {model: m-v2}\nassignment: {salt: s2}\nstages: [{weight: 10}, {weight: 50}]\n")},
		"r/evals.yaml":    {Data: []byte("apiVersion: rollout/v1\nkind: Rollout\nname: evals\nstable: {model: m-0613}\nstages: [{weight: 1, gate: {evals: evals/nope.json}}, {weight: 2, gate: {evals: evals/e.json}}]\n")},
		"r/query.yaml":    spec("query", "stable: {model: m-20260109}\ncanary: {model: m-20260401}\nmetrics: {source: \"file:t.jsonl\"}\nanalysis:\n  rules:\n    - {metric: slo, query: 'up', max: 1}\n"),
		"r/promql.yaml":   spec("promql", "stable: {model: m-20260108}\ncanary: {model: m-20260402}\nmetrics: {source: \"prometheus:http://p:9090\"}\nanalysis:\n  rules:\n    - {metric: slo, query: 'up', max: 1}\n"),
		"r/one.yaml":      spec("one", "stable: {model: m-20260105}\ncanary: {model: m-20260404}\nanalysis:\n  rules:\n    - {metric: error_rate, maxIncrease: 1}\n    - {metric: quality_score, maxDecrease: 1.0}\n    - {metric: cost_per_request, maxIncrease: 100%}\n    - {metric: latency_p95_ms, maxIncrease: 0.1}\n"),
		"r/weak.yaml":     spec("weak", "stable: {model: m-20260106}\ncanary: {model: m-20260404}\nanalysis: {confidence: 1e-7, advanceConfidence: 0.5}\n"),
		"r/sql.yaml":      spec("sql", "stable: {model: m-20260107}\ncanary: {model: m-20260403}\nmetrics: {source: \"postgres://db/x\"}\nanalysis:\n  rules:\n    - {metric: slo, query: 'SELECT 1', max: 1}\n"),
		"r/promkey.yaml":  spec("promkey", "stable: {model: m-20260110}\ncanary: {model: m-20260405}\nassignment: {key: user_id}\nmetrics: {source: \"prometheus:http://p:9090\"}\n"),
		"r/prompass.yaml": spec("prompass", "stable: {model: m-20260112}\ncanary: {model: m-20260407}\nmetrics: {source: \"prometheus:https://reader:hunter2@p:9090\"}\n"),
		"r/promenv.yaml":  spec("promenv", "stable: {model: m-20260113}\ncanary: {model: m-20260408}\nmetrics: {source: \"prometheus:https://reader:env:ROLLOUT_PROM@p:9090\"}\n"),
		"r/promreq.yaml":  spec("promreq", "stable: {model: m-20260111}\ncanary: {model: m-20260406}\nassignment: {key: user_id, unit: request}\nmetrics: {source: \"prometheus:http://p:9090\"}\n"),
	}
	set, err := Load(fsys, "r")
	if err != nil || len(set.Problems) > 0 {
		t.Fatalf("Load: %v %v", err, set.Problems)
	}
	got := map[string][]string{}
	for _, p := range Lint(set, repo) {
		if !p.Warning {
			t.Errorf("lint is not a warning: %v", p)
		}
		got[p.File] = append(got[p.File], p.Error())
	}
	want := map[string][]string{
		"r/clean.yaml":    nil,
		"r/unpinned.yaml": {"4:17: stable.model: \"claude-sonnet-4-5\" is not pinned", "5:17: canary.model: \"gpt-4o\" is not pinned"},
		"r/both.yaml":     {"5:9: canary: changes both model and prompt"},
		"r/salt.yaml":     {"6:20: assignment.salt: \"s1\" is also the salt of r/clean.yaml"},
		"r/paths.yaml":    {"4:39: stable.prompt: \"../secrets/key.txt\" escapes the repository", "5:39: canary.prompt: \"prompts/v4.md\" does not exist", "changes both model and prompt"},
		"r/short.yaml":    {"7:24: stages[1]: the last stage holds 50%; promotion will jump"},
		"r/evals.yaml":    {"5:36: stages[0].gate.evals: \"evals/nope.json\" does not exist"},
		"r/query.yaml":    {"9:28: analysis.rules[0]: the file: source cannot run a query"},
		"r/promql.yaml":   {"9:28: analysis.rules[0]: a prometheus: query returns one value per arm, so slo is advisory"},
		"r/one.yaml":      {"8:41: analysis.rules[0].maxIncrease: 1 is a fraction, so it means 100%; write 100% to say so, or 1% if you mean one percent", "9:44: analysis.rules[1].maxDecrease: 1.0 is a fraction"},
		"r/sql.yaml":      nil,
		"r/promkey.yaml":  {"7:19: metrics.source: a prometheus: source counts requests, not user_id keys, so a stage never advances"},
		"r/promreq.yaml":  nil,
		"r/prompass.yaml": {"6:19: metrics.source: holds a literal password, which git keeps for anyone who can read the repository; write user:env:NAME@host"},
		"r/promenv.yaml":  nil,
		"r/weak.yaml":     {"6:24: analysis.confidence: 1e-07 is below 50%"},
	}
	for file, wants := range want {
		lines := got[file]
		if len(lines) != len(wants) {
			t.Errorf("%s: got %d warnings, want %d:\n%s", file, len(lines), len(wants), strings.Join(lines, "\n"))
			continue
		}
		for _, w := range wants {
			found := false
			for _, l := range lines {
				found = found || strings.Contains(l, w)
			}
			if !found {
				t.Errorf("%s: no warning %q in:\n%s", file, w, strings.Join(lines, "\n"))
			}
		}
	}
	// Without a repository, the path checks that need one are skipped, but escapes are still caught.
	for _, p := range Lint(set, nil) {
		if strings.Contains(p.Message, "does not exist") {
			t.Errorf("lint without a repo looked up a path: %v", p)
		}
	}
}

func TestPinnedModel(t *testing.T) {
	for model, pinned := range map[string]bool{
		"claude-sonnet-4-5-20260415": true, "claude-sonnet-4-5": false, "gpt-4o-2024-08-06": true, "gpt-4o": false,
		"gpt-4-0613": true, "mistral-large-2411": true, "llama-3.1-70b@v2": true, "my-model:v1.2": true, "latest": false,
		"claude-3-opus-latest": false,
	} {
		if got := pinnedModelRE.MatchString(model); got != pinned {
			t.Errorf("pinned(%q) = %v, want %v", model, got, pinned)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint(&Variant{Model: "m1", Prompt: "p"})
	if len(a) != 8 || a != Fingerprint(&Variant{Model: "m1", Prompt: "p"}) {
		t.Errorf("fingerprint not short and stable: %q", a)
	}
	for _, v := range []*Variant{{Model: "m2", Prompt: "p"}, {Model: "m1", Prompt: "q"}, {Model: "m1p", Prompt: ""}} {
		if Fingerprint(v) == a {
			t.Errorf("%+v has the same fingerprint as m1/p", v)
		}
	}
	if Fingerprint(nil) != "" {
		t.Error("nil canary has a fingerprint")
	}
}
