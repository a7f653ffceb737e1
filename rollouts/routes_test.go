package rollouts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

const (
	routeStable = "claude-sonnet-4-5-20260301"
	routeCanary = "claude-sonnet-4-5-20260415"
)

var routeCases = []struct {
	name, file     string
	route          Route
	stable, canary string
	weight         int
}{
	{"litellm-start", "litellm.yaml", Route{LiteLLM: "gw.yaml"}, routeStable, "anthropic/" + routeCanary, 5},
	{"litellm-rollback", "litellm.yaml", Route{LiteLLM: "gw.yaml"}, routeStable, routeCanary, 0},
	{"litellm-promote", "litellm.yaml", Route{LiteLLM: "gw.yaml"}, "anthropic/" + routeStable, routeCanary, 100},
	{"regions-advance", "regions.yaml", Route{LiteLLM: "gw.yaml"}, "openai/gpt-4o-2024-08-06", "gpt-4.1-2025-04-14", 25},
	{"httproute-advance", "httproute.yaml", Route{File: "r.yaml", Stable: "spec.rules[0].backendRefs[0].weight", Canary: "spec.rules[0].backendRefs[1].weight"}, routeStable, routeCanary, 25},
}

// TestEditRouteGolden edits real route files and keeps the line diff as the golden file: a review of
// it shows that only weight lines change.
func TestEditRouteGolden(t *testing.T) {
	for _, tc := range routeCases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "routes", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := EditRoute(tc.file, src, tc.route, tc.stable, tc.canary, tc.weight)
			if err != nil {
				t.Fatal(err)
			}
			diff := lineDiff(string(src), string(got))
			for _, l := range strings.Split(diff, "\n") {
				if (strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+")) && !strings.Contains(l, "weight") {
					t.Errorf("the edit touches a line that is not a weight: %q", l)
				}
			}
			checkRouteGolden(t, tc.name+".diff", []byte(diff))
			again, err := EditRoute(tc.file, got, tc.route, tc.stable, tc.canary, tc.weight)
			if err != nil || string(again) != string(got) {
				t.Errorf("a second edit to the same weight changed the file again (err %v)", err)
			}
		})
	}
}

func checkRouteGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "routes", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("diff differs from %s:\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

// lineDiff writes the lines only a has as -, the lines only b has as +, by longest common subsequence.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&out, "%d: -%s\n", i+1, x[i])
			i++
		default:
			fmt.Fprintf(&out, "%d: +%s\n", j+1, y[j])
			j++
		}
	}
	return out.String()
}

func TestEditRouteErrors(t *testing.T) {
	litellm, _ := os.ReadFile(filepath.Join("testdata", "routes", "litellm.yaml"))
	route, _ := os.ReadFile(filepath.Join("testdata", "routes", "httproute.yaml"))
	file := func(stable, canary string) Route { return Route{File: "r.yaml", Stable: stable, Canary: canary} }
	tests := []struct {
		name           string
		src            []byte
		route          Route
		stable, canary string
		want           string
	}{
		{"canary model not found", litellm, Route{LiteLLM: "gw.yaml"}, routeStable, "claude-opus-9", "no model_list entry has litellm_params.model claude-opus-9 (the canary model)"},
		{"provider disagrees", litellm, Route{LiteLLM: "gw.yaml"}, "openai/" + routeStable, routeCanary, "(the stable model)"},
		{"prompt-only change", litellm, Route{LiteLLM: "gw.yaml"}, routeStable, routeStable, "cannot carry a prompt-only change"},
		{"not litellm", route, Route{LiteLLM: "gw.yaml"}, routeStable, routeCanary, "no model_list sequence"},
		{"different groups", []byte("model_list:\n  - model_name: a\n    litellm_params: {model: m1}\n  - model_name: b\n    litellm_params: {model: m2}\n"), Route{LiteLLM: "gw.yaml"}, "m1", "m2", `different model_name groups ("a", "b")`},
		{"bad weight", []byte("model_list:\n  - model_name: a\n    litellm_params: {model: m1, weight: lots}\n  - model_name: a\n    litellm_params: {model: m2}\n"), Route{LiteLLM: "gw.yaml"}, "m1", "m2", "gw.yaml:3:41: model_list[0].litellm_params.weight is \"lots\", not a number"},
		{"missing key", route, file("spec.rules[0].backendRefs[0].weight", "spec.rules[0].backendRefs[1].wieght"), routeStable, routeCanary, `r.yaml:17:11: spec.rules[0].backendRefs[1] has no key "wieght"`},
		{"index out of range", route, file("spec.rules[0].backendRefs[0].weight", "spec.rules[0].backendRefs[2].weight"), routeStable, routeCanary, "spec.rules[0].backendRefs has 2 items, no [2]"},
		{"not an integer", route, file("spec.rules[0].backendRefs[0].weight", "spec.rules[0].backendRefs[1].name"), routeStable, routeCanary, `r.yaml:17:17: canary spec.rules[0].backendRefs[1].name is "summarizer-canary", not an integer`},
		{"same path", route, file("spec.rules[0].backendRefs[0].weight", "spec.rules[0].backendRefs[0].weight"), routeStable, routeCanary, "stable and canary name the same path"},
		{"bad path", route, file("spec..weight", "spec.x"), routeStable, routeCanary, "want keys separated by dots"},
		{"two documents", append(append([]byte{}, route...), "---\nkind: Other\n"...), file("spec.rules[0].backendRefs[0].weight", "spec.rules[0].backendRefs[1].weight"), routeStable, routeCanary, "exactly one YAML document, found 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.route.RoutePath()
			_, err := EditRoute(name, tt.src, tt.route, tt.stable, tt.canary, 25)
			if !errors.Is(err, ErrRoute) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want ErrRoute saying %q", err, tt.want)
			}
		})
	}
}

func TestRouteEditsAllOrNothing(t *testing.T) {
	litellm, _ := os.ReadFile(filepath.Join("testdata", "routes", "litellm.yaml"))
	repo := fstest.MapFS{"gateway/litellm.yaml": {Data: litellm}}
	spec := &Spec{Name: "s", Stable: Variant{Model: routeStable}, Canary: &Variant{Model: routeCanary},
		Traffic: Traffic{Weight: 5, Routes: []Route{{LiteLLM: "gateway/litellm.yaml"}}}}
	files, err := RouteEdits(repo, spec, Change{Weight: intp(25)})
	if err != nil || len(files) != 1 || !strings.Contains(string(files["gateway/litellm.yaml"]), "weight: 75") {
		t.Fatalf("RouteEdits = %q, %v; want the litellm file at 75/25", files, err)
	}
	promoted, err := RouteEdits(repo, spec, Change{Promote: true, Weight: intp(0)})
	if err != nil || !strings.Contains(string(promoted["gateway/litellm.yaml"]), "# stable\n      api_key: os.environ/ANTHROPIC_API_KEY\n      weight: 0 ") ||
		!strings.Contains(string(promoted["gateway/litellm.yaml"]), "# canary\n      api_key: os.environ/ANTHROPIC_API_KEY\n      weight: 100\n") {
		t.Errorf("a promotion gives the canary's model everything: %s, %v", promoted["gateway/litellm.yaml"], err)
	}
	ended := *spec
	ended.Canary = nil
	ended.Traffic.Weight = 25
	files, err = RouteEdits(repo, &ended, Change{Weight: intp(0)})
	if got := string(files["gateway/litellm.yaml"]); err != nil || !strings.Contains(got, "weight: 100 ") || !strings.Contains(got, "# canary\n      api_key: os.environ/ANTHROPIC_API_KEY\n      weight: 0\n") || !strings.Contains(got, "{model: openai/text-embedding-3-small, weight: 1}") {
		t.Errorf("with the canary block removed, stable gets everything in its group, other groups stay: %s, %v", got, err)
	}
	if files, err := RouteEdits(repo, spec, Change{Status: &Status{Phase: Paused}}); err != nil || files != nil {
		t.Errorf("a status-only change edits routes: %q, %v", files, err)
	}
	spec.Traffic.Routes = append(spec.Traffic.Routes, Route{File: "gateway/missing.yaml", Stable: "a", Canary: "b"})
	if files, err := RouteEdits(repo, spec, Change{Weight: intp(25)}); !errors.Is(err, ErrRoute) || files != nil {
		t.Errorf("with one broken route: %q, %v; want nothing and ErrRoute", files, err)
	}
}

func TestCheckRoutes(t *testing.T) {
	litellm, _ := os.ReadFile(filepath.Join("testdata", "routes", "litellm.yaml"))
	route, _ := os.ReadFile(filepath.Join("testdata", "routes", "httproute.yaml"))
	dir := t.TempDir()
	for name, data := range map[string][]byte{"gateway/litellm.yaml": litellm, "deploy/httproute.yaml": route} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "x.yaml"), route, 0o644)
	if err := os.Symlink(filepath.Join(outside, "x.yaml"), filepath.Join(dir, "deploy", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	spec := func(routes string) string {
		return "apiVersion: rollout/v1\nkind: Rollout\nname: s\nstable: {model: " + routeStable + "}\ncanary: {model: " + routeCanary + "}\n" +
			"traffic:\n  weight: 5\n  routes:\n" + routes + "stages: [{weight: 5}]\n"
	}
	tests := []struct {
		name, routes string
		want         string // "" for valid
	}{
		{"valid", "    - litellm: gateway/litellm.yaml\n    - file: deploy/httproute.yaml\n      stable: spec.rules[0].backendRefs[0].weight\n      canary: spec.rules[0].backendRefs[1].weight\n", ""},
		{"missing file", "    - litellm: gateway/nope.yaml\n", "s.yaml:9:16: traffic.routes[0].litellm: gateway/nope.yaml does not exist in the repository"},
		{"escape", "    - litellm: ../etc/litellm.yaml\n", "s.yaml:9:16: traffic.routes[0].litellm: \"../etc/litellm.yaml\" escapes the repository"},
		{"symlink", "    - file: deploy/link.yaml\n      stable: spec.rules[0].backendRefs[0].weight\n      canary: spec.rules[0].backendRefs[1].weight\n", "deploy/link.yaml is a symbolic link"},
		{"both kinds", "    - litellm: gateway/litellm.yaml\n      file: deploy/httproute.yaml\n", "s.yaml:9:7: traffic.routes[0]: name exactly one of litellm and file"},
		{"no canary path", "    - file: deploy/httproute.yaml\n      stable: spec.rules[0].backendRefs[0].weight\n", "needs both a stable and a canary path"},
		{"not an integer", "    - file: deploy/httproute.yaml\n      stable: spec.rules[0].backendRefs[0].weight\n      canary: metadata.name\n", "s.yaml:9:13: traffic.routes[0].file: deploy/httproute.yaml:4:9: canary metadata.name is \"summarizer\", not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := spec(tt.routes)
			sp, problems := Parse("s.yaml", []byte(src))
			if sp == nil {
				t.Fatalf("parse: %v", problems)
			}
			set := &Set{Documents: []*Document{{Path: "s.yaml", Source: []byte(src), Spec: sp}}}
			CheckRoutes(set, os.DirFS(dir))
			if tt.want == "" {
				// Valid; the files hold 100/0 while traffic.weight is 5: a warning each, not an error.
				if len(set.Problems) != 2 || len(set.Documents) != 1 {
					t.Fatalf("problems %v, documents %d; want a valid spec with two warnings", set.Problems, len(set.Documents))
				}
				for _, p := range set.Problems {
					if !p.Warning || !strings.Contains(p.Message, "does not hold traffic.weight's split (5% to the canary)") {
						t.Errorf("problem %v, want a warning that the route is out of step", p)
					}
				}
				return
			}
			if len(set.Problems) != 1 || !strings.Contains(set.Problems[0].Error(), tt.want) || set.Problems[0].Warning {
				t.Fatalf("problems %v, want one error saying %q", set.Problems, tt.want)
			}
			if len(set.Documents) != 0 {
				t.Errorf("a spec with a broken route stays in the set")
			}
		})
	}
}
