package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/internal/testserver"
)

// alertRule is one alerting rule of deploy/prometheus/rollout-alerts.yaml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// prometheusRule reads the PrometheusRule and returns its groups as a plain Prometheus rule file.
func prometheusRule(t *testing.T) (rules []alertRule, groupsFile []byte) {
	t.Helper()
	raw, err := os.ReadFile("prometheus/rollout-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Groups []struct {
				Name  string      `yaml:"name"`
				Rules []alertRule `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		t.Fatalf("%s %s with %d groups: want a PrometheusRule", pr.APIVersion, pr.Kind, len(pr.Spec.Groups))
	}
	for _, g := range pr.Spec.Groups {
		rules = append(rules, g.Rules...)
	}
	out, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	return rules, out
}

// promtool is Prometheus' rule checker, installed with Prometheus by .ci/test.
func promtool(t *testing.T) string {
	t.Helper()
	testserver.WaitForPackages(t)
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("ROLLOUT_INTEGRATION") == "1" {
			t.Fatal("promtool is missing (the prometheus package installs it)")
		}
		t.Skip("promtool is not installed")
	}
	return bin
}

// annotations renders a rule's annotations for one alert as Prometheus does (Go templates with $labels).
func annotations(t *testing.T, r alertRule, labels map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range r.Annotations {
		tmpl, err := template.New(k).Parse("{{$labels := .}}" + v)
		if err != nil {
			t.Fatalf("%s: annotation %s: %v", r.Alert, k, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, labels); err != nil {
			t.Fatal(err)
		}
		out[k] = b.String()
	}
	return out
}

// TestStuckRolloutAlerts runs the example PrometheusRule through promtool: the rules check, and on
// series shaped as the daemon's /metrics serves them (one sample a minute for 100 minutes), each alert
// fires for the rollout it is about and only once its `for` has passed: summarizer sits in its stage
// past two days, tagger's last evaluation is a stale timestamp, every evaluation of router fails; a
// paused rollout past two days is not stuck.
func TestStuckRolloutAlerts(t *testing.T) {
	bin := promtool(t)
	rules, groups := prometheusRule(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), groups, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", filepath.Join(dir, "rules.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	byName := map[string]alertRule{}
	for _, r := range rules {
		byName[r.Alert] = r
	}
	for _, name := range []string{"RolloutStuck", "RolloutNotEvaluated", "RolloutEvaluationFailing"} {
		if _, ok := byName[name]; !ok {
			t.Fatalf("no alert %s", name)
		}
	}
	series := []map[string]string{
		// summarizer: stage 2 days minus 10 minutes in at 0, evaluated every minute, progressing.
		{"series": `rollout_stage_seconds{rollout="summarizer"}`, "values": "172200+60x100"},
		{"series": `rollout_phase{rollout="summarizer",phase="Progressing"}`, "values": "1x100"},
		{"series": `rollout_weight{rollout="summarizer"}`, "values": "25x100"},
		{"series": `rollout_last_decision_timestamp_seconds{rollout="summarizer",decision="hold"}`, "values": "0+60x100"},
		// tagger: a young stage, but its last evaluation was at time 0 and never again.
		{"series": `rollout_stage_seconds{rollout="tagger"}`, "values": "600+60x100"},
		{"series": `rollout_phase{rollout="tagger",phase="Progressing"}`, "values": "1x100"},
		{"series": `rollout_weight{rollout="tagger"}`, "values": "5x100"},
		{"series": `rollout_last_decision_timestamp_seconds{rollout="tagger",decision="hold"}`, "values": "0x100"},
		// router: evaluated every minute, every evaluation an error, its canary at 5%.
		{"series": `rollout_stage_seconds{rollout="router"}`, "values": "600+60x100"},
		{"series": `rollout_phase{rollout="router",phase="Progressing"}`, "values": "1x100"},
		{"series": `rollout_weight{rollout="router"}`, "values": "5x100"},
		{"series": `rollout_last_decision_timestamp_seconds{rollout="router",decision="error"}`, "values": "0+60x100"},
		// classifier: paused for three days, evaluated: not stuck, a person paused it.
		{"series": `rollout_stage_seconds{rollout="classifier"}`, "values": "259200+60x100"},
		{"series": `rollout_phase{rollout="classifier",phase="Paused"}`, "values": "1x100"},
		{"series": `rollout_weight{rollout="classifier"}`, "values": "5x100"},
		{"series": `rollout_last_decision_timestamp_seconds{rollout="classifier",decision="hold"}`, "values": "0+60x100"},
	}
	expect := func(alert, rollout string) map[string]any {
		labels := map[string]string{"rollout": rollout}
		for k, v := range byName[alert].Labels {
			labels[k] = v
		}
		return map[string]any{"exp_labels": labels, "exp_annotations": annotations(t, byName[alert], labels)}
	}
	var checks []map[string]any
	for _, at := range []string{"20m", "95m"} {
		for alert, rollout := range map[string]string{"RolloutStuck": "summarizer", "RolloutNotEvaluated": "tagger", "RolloutEvaluationFailing": "router"} {
			exp := []map[string]any{}
			if at == "95m" {
				exp = append(exp, expect(alert, rollout))
			}
			checks = append(checks, map[string]any{"eval_time": at, "alertname": alert, "exp_alerts": exp})
		}
	}
	test := map[string]any{
		"rule_files":          []string{"rules.yaml"},
		"evaluation_interval": "1m",
		"tests": []map[string]any{{
			"interval":        "1m",
			"input_series":    series,
			"alert_rule_test": checks,
		}},
	}
	raw, err := yaml.Marshal(test)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yaml"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "test", "rules", "test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, raw)
	}
}
