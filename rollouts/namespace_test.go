package rollouts_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rollout-dev/rollout/rollouts"
)

func namespaceSpec(name, stable, canary, namespace string, weight int) string {
	ns := ""
	if namespace != "" {
		ns = "assignment: {namespace: " + namespace + "}\n"
	}
	return fmt.Sprintf(`apiVersion: rollout/v1
kind: Rollout
name: %s
stable: {model: %s}
canary: {model: %s}
traffic: {weight: %d}
%sstages: [{weight: 5}, {weight: 50}]
metrics: {source: "file:traffic.jsonl"}
analysis: {rules: [{metric: error_rate, maxIncrease: 50%%}]}
`, name, stable, canary, weight, ns)
}

// TestNamespaceDisjointCanaries assigns 100,000 keys to two rollouts of one namespace at 50% each: no
// key is in both canaries, and each canary still holds about half of all keys. Without the namespace,
// about a quarter of the keys get both.
func TestNamespaceDisjointCanaries(t *testing.T) {
	for _, namespace := range []string{"summarizer", ""} {
		set, err := rollouts.Load(fstest.MapFS{
			"rollouts/summarizer-model.yaml":  {Data: []byte(namespaceSpec("summarizer-model", "sonnet-old", "sonnet-new", namespace, 50))},
			"rollouts/summarizer-prompt.yaml": {Data: []byte(namespaceSpec("summarizer-prompt", "sonnet-old", "sonnet-old-v2", namespace, 50))},
		}, "rollouts")
		if err != nil || len(set.Documents) != 2 {
			t.Fatalf("load: %v %v", err, set.Problems)
		}
		a, b := set.Lookup("summarizer-model").Spec.Assigner(), set.Lookup("summarizer-prompt").Spec.Assigner()
		const n = 100000
		var inA, inB, both int
		for i := range n {
			key := fmt.Sprintf("user-%d", i)
			ca, cb := a.Choose(key).Arm == rollouts.CanaryArm, b.Choose(key).Arm == rollouts.CanaryArm
			if ca {
				inA++
			}
			if cb {
				inB++
			}
			if ca && cb {
				both++
			}
		}
		t.Logf("namespace %q: canary A %d, canary B %d, both %d of %d keys", namespace, inA, inB, both, n)
		for _, c := range []int{inA, inB} {
			if c < n*48/100 || c > n*52/100 {
				t.Errorf("namespace %q: a canary holds %d of %d keys, want about half", namespace, c, n)
			}
		}
		switch {
		case namespace != "" && both != 0:
			t.Errorf("%d keys are in both canaries of namespace %s", both, namespace)
		case namespace == "" && (both < n*23/100 || both > n*27/100):
			t.Errorf("without a namespace %d keys are in both canaries, want about a quarter", both)
		}
	}
}

// TestNamespaceSlices: the rollouts of a namespace split [0, 1) in the order of their names, and the
// namespace hash is GrowthBook's version 1 with seed "__" + namespace.
func TestNamespaceSlices(t *testing.T) {
	specs := []*rollouts.Spec{{Name: "c"}, {Name: "a"}, {Name: "b"}, {Name: "alone"}}
	for _, s := range specs[:3] {
		s.Assignment.Namespace = "ns"
	}
	rollouts.ResolveNamespaces(specs)
	want := map[string][2]float64{"a": {0, 0.333}, "b": {0.333, 0.666}, "c": {0.666, 1}}
	for _, s := range specs {
		got, ok := s.Namespace()
		if w, in := want[s.Name]; ok != in || in && (got.Start != w[0] || got.End != w[1] || got.Of != 3) {
			t.Errorf("%s: slice %+v %v, want %v %v", s.Name, got, ok, w, in)
		}
	}
	// FNV-1a 32 of "user-1__ns", modulo 1000, over 1000.
	h := uint32(0x811c9dc5)
	for _, c := range []byte("user-1__ns") {
		h = (h ^ uint32(c)) * 0x01000193
	}
	if got, want := rollouts.NamespaceHash("ns", "user-1"), float64(h%1000)/1000; got != want {
		t.Errorf("NamespaceHash = %v, want %v", got, want)
	}
}

// TestNamespaceWarnings: Lint warns when two rollouts share a stable without a common namespace, when
// the rollouts of a namespace have different stables (one was promoted: rebase the other), and when a
// stage's weight exceeds the rollout's slice.
func TestNamespaceWarnings(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"shared stable, no namespace", map[string]string{
			"a": namespaceSpec("summarizer-model", "sonnet-old", "sonnet-new", "", 5),
			"b": namespaceSpec("summarizer-prompt", "sonnet-old", "sonnet-v2", "", 5)},
			[]string{"rollouts/a.yaml:4:9: stable: rollout summarizer-model shares its stable (sonnet-old) with summarizer-prompt, without a common assignment.namespace",
				"rollouts/b.yaml:4:9: stable: rollout summarizer-prompt shares its stable (sonnet-old) with summarizer-model", "(assignment.namespace: summarizer)"}},
		{"one namespace", map[string]string{
			"a": namespaceSpec("summarizer-model", "sonnet-old", "sonnet-new", "summarizer", 5),
			"b": namespaceSpec("summarizer-prompt", "sonnet-old", "sonnet-v2", "summarizer", 5)},
			nil},
		{"promoted one", map[string]string{
			"a": namespaceSpec("summarizer-model", "sonnet-new", "sonnet-newer", "summarizer", 5),
			"b": namespaceSpec("summarizer-prompt", "sonnet-old", "sonnet-v2", "summarizer", 5)},
			[]string{"rollouts/b.yaml:4:9: stable: rollout summarizer-prompt's stable (sonnet-old) is not the stable of summarizer-model (sonnet-new), which shares namespace summarizer: when one of them is promoted, rebase the other"}},
		{"promoted", map[string]string{
			"a": strings.Replace(namespaceSpec("summarizer-model", "sonnet-new", "x", "summarizer", 5), "canary: {model: x}\n", "", 1) + "status: {phase: Completed, stage: 1}\n",
			"b": namespaceSpec("summarizer-prompt", "sonnet-old", "sonnet-v2", "summarizer", 5)},
			[]string{"rollouts/b.yaml:4:9: stable: rollout summarizer-model of namespace summarizer was promoted: users now get sonnet-new, not this rollout's stable sonnet-old; rebase it: set stable to sonnet-new in rollouts/b.yaml"}},
		{"weight beyond the slice", map[string]string{
			"a": strings.Replace(namespaceSpec("summarizer-model", "sonnet-old", "sonnet-new", "summarizer", 5), "{weight: 50}]", "{weight: 100}]", 1),
			"b": namespaceSpec("summarizer-prompt", "sonnet-old", "sonnet-v2", "summarizer", 5)},
			[]string{"rollouts/a.yaml:8:23: stages[1]: weight 100% is more than this rollout's slice of namespace summarizer (50% of the keys, one of 2 rollouts)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, src := range tt.files {
				fsys["rollouts/"+name+".yaml"] = &fstest.MapFile{Data: []byte(src)}
			}
			set, err := rollouts.Load(fsys, "rollouts")
			if err != nil || len(set.Documents) != 2 {
				t.Fatalf("load: %v %v", err, set.Problems)
			}
			if len(set.Problems) > 0 {
				t.Fatalf("load: %v", set.Problems)
			}
			var got []string
			for _, p := range rollouts.Lint(set, nil) {
				if !p.Warning {
					t.Errorf("an error, not a warning: %s", p.Error())
				}
				if strings.Contains(p.Message, "namespace") {
					got = append(got, p.Error())
				}
			}
			all := strings.Join(got, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("warnings lack %q:\n%s", w, all)
				}
			}
			if len(tt.want) == 0 && len(got) > 0 {
				t.Errorf("unexpected warnings:\n%s", all)
			}
		})
	}
}
