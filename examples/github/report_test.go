package examples_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/examples/demo"
	"github.com/rollout-dev/rollout/internal/race"
)

// TestActionUploadsTheReport: for `report`, the action uploads the folder run.sh names as an artifact
// and links it from the job summary, and gives the folder to later steps (GitHub Pages).
func TestActionUploadsTheReport(t *testing.T) {
	var a action
	strictDecode(t, "../../action.yml", &a)
	if v := a.Outputs["report-dir"].Value; v != "${{ steps.run.outputs.report-dir }}" {
		t.Errorf("report-dir output value = %q", v)
	}
	if a.Inputs["artifact"].Description == "" || a.Inputs["artifact"].Default == "" {
		t.Error("input artifact missing, undocumented or without a default")
	}
	var run, upload, link bool
	for _, s := range a.Runs.Steps {
		switch {
		case s.ID == "run":
			run = s.Env["INPUT_ARTIFACT"] == "${{ inputs.artifact }}"
		case strings.HasPrefix(s.Uses, "actions/upload-artifact@"):
			upload = s.ID == "upload-report" && s.With["name"] == "${{ inputs.artifact }}" &&
				s.With["path"] == "${{ steps.run.outputs.report-dir }}" && strings.Contains(s.If, "steps.run.outputs.report-dir != ''")
		case strings.Contains(s.Run, "GITHUB_STEP_SUMMARY") && s.Env["ARTIFACT_URL"] == "${{ steps.upload-report.outputs.artifact-url }}":
			link = true
		}
	}
	if !run || !upload || !link {
		t.Errorf("run passes the artifact name %v, upload step %v, summary link %v: want all three", run, upload, link)
	}
}

// TestReportPagesWorkflow: the example publishes the folder the action wrote, and deploys it in a job
// of its own.
func TestReportPagesWorkflow(t *testing.T) {
	var w struct {
		Jobs map[string]struct {
			Needs       string `yaml:"needs"`
			Environment struct {
				Name string `yaml:"name"`
			} `yaml:"environment"`
			Steps []step `yaml:"steps"`
		} `yaml:"jobs"`
	}
	strictDecode(t, "report-pages.yml", &w)
	var report, pages bool
	for _, s := range w.Jobs["report"].Steps {
		if strings.HasPrefix(s.Uses, "rollout-dev/rollout@") && s.ID == "rollout" && s.With["command"] == "report" {
			report = true
		}
		if strings.HasPrefix(s.Uses, "actions/upload-pages-artifact@") && s.With["path"] == "${{ steps.rollout.outputs.report-dir }}" {
			pages = true
		}
	}
	d := w.Jobs["deploy"]
	deploy := d.Needs == "report" && d.Environment.Name == "github-pages" && len(d.Steps) == 1 && strings.HasPrefix(d.Steps[0].Uses, "actions/deploy-pages@")
	if !report || !pages || !deploy {
		t.Errorf("report step %v, pages artifact of its folder %v, deploy job %v: want all three", report, pages, deploy)
	}
}

// TestRunScriptReport runs action/run.sh with the real rollout on the demo's repository: the summary
// shows every rollout's rules and names chart files that are in the folder it gives as report-dir.
func TestRunScriptReport(t *testing.T) {
	race.Skip(t, race.Slow)
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq is not installed (GitHub's runners have it)")
	}
	bin := filepath.Join(t.TempDir(), "rollout")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/rollout").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script, err := filepath.Abs("../../action/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	scenario, err := demo.Default()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 4, 16, 9, 0, 0, 0, time.UTC)
	// 16 hours: the model bump is rolled back at hour 5, the trickle still holds.
	const hours = 16
	if _, err := demo.Run(context.Background(), demo.Config{Dir: dir, Scenario: scenario, Start: start, Hours: hours,
		Rand: rand.New(rand.NewPCG(1, 0x5eed))}); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	summaryFile, outputFile := filepath.Join(tmp, "summary.md"), filepath.Join(tmp, "output")
	cmd := exec.Command("bash", script)
	cmd.Dir = dir // the specs' file: sources are relative to it
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "GITHUB_STEP_SUMMARY=" + summaryFile, "GITHUB_OUTPUT=" + outputFile,
		"RUNNER_TEMP=" + tmp, "ROLLOUT_BIN=" + bin, "INPUT_COMMAND=report", "INPUT_ARTIFACT=rollout-report",
		"INPUT_ARGS=--repo origin.git --now " + start.Add(hours*time.Hour).Format(time.RFC3339) + " --no-cache"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	summary, _ := os.ReadFile(summaryFile)
	output, _ := os.ReadFile(outputFile)
	reportDir := filepath.Join(tmp, "rollout-report")
	if !strings.Contains(string(output), "report-dir="+reportDir+"\n") {
		t.Errorf("output %q does not name the report folder %s", output, reportDir)
	}
	for _, want := range []string{"### rollout report", "#### summarizer: RolledBack, weight 0%", "#### tagger: Progressing", "artifact `rollout\\-report`", "| rule | limit |"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	if _, err := os.Stat(filepath.Join(reportDir, "index.html")); err != nil {
		t.Error(err)
	}
	charts := regexp.MustCompile("`([A-Za-z0-9_.-]+\\.svg)`").FindAllStringSubmatch(string(summary), -1)
	if len(charts) < 6 {
		t.Errorf("the summary names %d charts", len(charts))
	}
	for _, m := range charts {
		if _, err := os.Stat(filepath.Join(reportDir, "charts", m[1])); err != nil {
			t.Errorf("the summary names %s: %v", m[1], err)
		}
	}
}
