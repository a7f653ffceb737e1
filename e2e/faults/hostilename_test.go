package faults

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestPlanCommentEscapesHostileFileNames runs `rollout plan --format markdown` (the pull request's plan
// comment) over a repository where someone added a spec file whose name holds an @mention and a
// javascript: link, and whose content is broken, so that the name and the error both reach the table.
// Nothing in the comment can ping anyone or become a link.
func TestPlanCommentEscapesHostileFileNames(t *testing.T) {
	hostile := "rollouts/@acme-admins [click](javascript:alert(1)) <img src=x onerror=alert(1)>.yaml"
	w := newWorld(t, map[string]string{
		"rollouts/summarizer.yaml": progressing("summarizer", "hold"),
		hostile:                    "name: [unclosed\n",
	}, false)
	cmd := exec.Command(rolloutBin(t), "plan", "--format", "markdown", "--repo", w.bare)
	cmd.Dir = repoRoot
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String() // the comment; the terminal's standard error is not posted
	if err == nil || !strings.Contains(out, "acme-admins") {
		t.Fatalf("plan: %v\n%s\n%s", err, out, stderr.String())
	}
	if m := regexp.MustCompile(`@[^\x{200b}]`).FindString(out); m != "" {
		t.Errorf("a live mention %q in the plan comment:\n%s", m, out)
	}
	if m := regexp.MustCompile(`(^|[^\\])\]\(javascript:`).FindString(out); m != "" {
		t.Errorf("a live link %q in the plan comment:\n%s", m, out)
	}
	for _, live := range []string{"[click]", "<img"} {
		if strings.Contains(out, live) {
			t.Errorf("the plan comment holds %q unescaped:\n%s", live, out)
		}
	}
}
