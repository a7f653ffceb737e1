package growthbook_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/export/growthbook"
)

// The globs of the parity specs: every path.Match construct, ASCII and not.
var (
	parityExclude = []string{"vip-*", "staff-?", "[a-c]x*", `lit\*eral*`, "[^a-z0-9u😀-]??", "😀?*", "[😀-😂]*", "*/admin", "[\\]]*", "ñ[!-/]*"}
	parityInclude = []string{"beta-*", "ü*", "tester-[0-9]", "[x-z]?-[^0-4]*", "用户-1*", "a\nb*"}
	parityWeights = []int{0, 1, 25, 50, 99, 100}
)

// parityKeys returns n keys: plain, non-ASCII (BMP and beyond), glob-matching and edge cases.
func parityKeys(n int) []string {
	r := rand.New(rand.NewPCG(12, 34))
	prefixes := []string{"u-", "vip-", "staff-", "ax", "bx", "lit*eral", "beta-", "ü", "tester-", "x", "y", "z", "用户-", "😀", "😁", "🙏", "ñ", "ñ!", "]", "a\nb", "é", "", "/", "a/"}
	edge := []string{"", "vip-", "staff-1", "staff-12", "staff-😀", "😀", "😀x", "😃", "ü", "tester-9", "tester-😀", "lit*eral", "litXeral", "x😀-5", "x😀-0", "vip-1\n", "a/admin", "a/b/admin", "]x", "ñ/", "ñ-", "\u2028", "\x7f", "日本語のキー", "🏳️‍🌈user"}
	keys := append([]string(nil), edge...)
	for len(keys) < n {
		p := prefixes[r.IntN(len(prefixes))]
		var suffix string
		switch r.IntN(4) {
		case 0:
			suffix = fmt.Sprint(r.IntN(100000))
		case 1:
			suffix = fmt.Sprintf("%d-%s", r.IntN(1000), []string{"ä", "ß", "中", "🚀", "-", "/", "a", "Z"}[r.IntN(8)])
		case 2:
			suffix = string(rune(0x20 + r.IntN(0x2000)))
		default:
			suffix = string(rune(0x1F000+r.IntN(0x1000))) + fmt.Sprint(r.IntN(100))
		}
		keys = append(keys, p+suffix)
	}
	return keys
}

func paritySpecs(t *testing.T) []*rollouts.Spec {
	t.Helper()
	var specs []*rollouts.Spec
	for i, w := range append(parityWeights, parityWeights...) {
		globs := i < len(parityWeights) // the second six: every key decided by the hash
		src := fmt.Sprintf(`apiVersion: rollout/v1
kind: Rollout
name: w%d-%s
stable: {model: model-a, prompt: prompts/a.md}
canary: {model: model-b, prompt: prompts/b.md}
traffic: {weight: %d, shadow: 10}
assignment:
  key: user_id
  salt: parity-ü-%d
stages: [{weight: 5}]
`, w, map[bool]string{true: "globs", false: "plain"}[globs], w, w)
		s, problems := rollouts.Parse(fmt.Sprintf("w%d.yaml", w), []byte(src))
		if s == nil {
			t.Fatalf("parse: %v", problems)
		}
		if globs {
			s.Assignment.Exclude, s.Assignment.Include = parityExclude, parityInclude
		}
		specs = append(specs, s)
	}
	// Three rollouts of one namespace: each in its own slice, two with globs.
	for i, w := range []int{10, 33, 20} {
		src := fmt.Sprintf(`apiVersion: rollout/v1
kind: Rollout
name: ns%d
stable: {model: model-a, prompt: prompts/a.md}
canary: {model: model-c%d, prompt: prompts/a.md}
traffic: {weight: %d, shadow: 10}
assignment:
  key: user_id
  salt: ns-ü-%d
  namespace: summarizer-ü
stages: [{weight: 5}]
`, i, i, w, i)
		s, problems := rollouts.Parse(fmt.Sprintf("ns%d.yaml", i), []byte(src))
		if s == nil {
			t.Fatalf("parse: %v", problems)
		}
		if i > 0 {
			s.Assignment.Exclude, s.Assignment.Include = parityExclude[:3], parityInclude[:2]
		}
		specs = append(specs, s)
	}
	rollouts.ResolveNamespaces(specs)
	return specs
}

// TestParityWithGrowthBookSDK evaluates every feature of the exported payload for 10,000 keys with the
// real GrowthBook TypeScript SDK and requires exactly the variants rollouts.Assigner chooses, for
// rollouts with and without a namespace (GrowthBook's namespace [name, start, end]).
func TestParityWithGrowthBookSDK(t *testing.T) {
	dir := nodeModules(t)
	specs := paritySpecs(t)
	payload, warnings, err := growthbook.Build(specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != len(specs)-2 { // weight 0 mirrors nothing, so it has nothing to warn about
		t.Errorf("want a shadow warning for each rollout with canary traffic, got %q", warnings)
	}
	keys := parityKeys(10000)
	work := t.TempDir()
	writeJSON(t, filepath.Join(work, "payload.json"), payload)
	writeJSON(t, filepath.Join(work, "keys.json"), keys)
	script := filepath.Join(dir, "parity.js")
	if err := os.WriteFile(script, []byte(parityScript), 0o644); err != nil {
		t.Fatal(err)
	}
	var got map[string][]growthbook.Value
	if err := json.Unmarshal(node(t, dir, script, filepath.Join(work, "payload.json"), filepath.Join(work, "keys.json")), &got); err != nil {
		t.Fatalf("read the SDK's answers: %v", err)
	}
	total, diffs := 0, 0
	for _, s := range specs {
		a := s.Assigner()
		sdk := got[s.Name]
		if len(sdk) != len(keys) {
			t.Fatalf("%s: %d answers for %d keys", s.Name, len(sdk), len(keys))
		}
		canaries := 0
		for i, k := range keys {
			c := a.Choose(k)
			want := growthbook.Value{Variant: string(c.Arm), Model: c.Variant.Model, Prompt: c.Variant.Prompt}
			total++
			if c.Arm == rollouts.CanaryArm {
				canaries++
			}
			if sdk[i] != want {
				diffs++
				if diffs <= 10 {
					t.Errorf("%s: key %q: GrowthBook SDK %+v, rollout assign %+v (reason %s, hash %v)", s.Name, k, sdk[i], want, c.Reason, c.Hash)
				}
			}
		}
		t.Logf("%s: %d of %d keys on the canary", s.Name, canaries, len(keys))
	}
	t.Logf("parity: %d differences in %d assignments (%d keys × %d specs: weights %v, with and without globs)", diffs, total, len(keys), len(specs), parityWeights)
}

const parityScript = `
const fs = require("fs");
const { GrowthBook } = require("@growthbook/growthbook");
const payload = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const keys = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const out = {};
for (const name of Object.keys(payload.features)) out[name] = [];
for (const key of keys) {
  const gb = new GrowthBook({ features: payload.features, attributes: { user_id: key } });
  for (const name of Object.keys(payload.features)) {
    const r = gb.evalFeature(name);
    out[name].push(r.value);
  }
  gb.destroy();
}
process.stdout.write(JSON.stringify(out));
`

// TestGlobsRegexInPython checks the regular expressions as GrowthBook's Python SDK evaluates $regex
// (re.search) against path.Match, for the same keys.
func TestGlobsRegexInPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	keys := parityKeys(10000)
	for _, globs := range [][]string{parityExclude, parityInclude} {
		re, err := growthbook.GlobsRegex(globs)
		if err != nil {
			t.Fatal(err)
		}
		work := t.TempDir()
		writeJSON(t, filepath.Join(work, "in.json"), map[string]any{"re": re, "keys": keys})
		cmd := exec.Command("python3", "-c", `import json, re, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
json.dump([re.search(d["re"], k) is not None for k in d["keys"]], sys.stdout)`, filepath.Join(work, "in.json"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python3: %v", err)
		}
		var got []bool
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		diffs := 0
		for i, k := range keys {
			want := false
			for _, g := range globs {
				if ok, _ := path.Match(g, k); ok {
					want = true
				}
			}
			if got[i] != want {
				diffs++
				if diffs <= 10 {
					t.Errorf("%q vs %q: Python %v, path.Match %v (regex %s)", globs, k, got[i], want, re)
				}
			}
		}
		t.Logf("python re: %d differences on %d keys for %s", diffs, len(keys), strings.Join(globs, " "))
	}
}

func writeJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
