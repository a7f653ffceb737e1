package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// rfc3339 matches the times that commits made outside the injected clock carry.
var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// TestWhatNextGolden: after a pause, a resume and a rollback by hand, status, plan and history say what
// happened, why and what next, in text and JSON: status's note fits a terminal and it says how to try
// again, as do plan and the rollback's notification; history names the person (not the whole git
// identity) and the reason of each pause, resume and rollback. The advice is true: deleting the status
// block, as it says, starts the same canary over at stage 0.
func TestWhatNextGolden(t *testing.T) {
	e := newE2E(t)
	e.env["GIT_AUTHOR_NAME"], e.env["GIT_AUTHOR_EMAIL"] = "Ada Lovelace", "ada@example.com"
	e.env["GITHUB_ACTOR"] = "ada-l"
	e.reconcile()
	var shown strings.Builder
	step := func(args ...string) {
		t.Helper()
		code, out, errOut := e.run(args...)
		if code != 0 && args[0] != "plan" {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		e.now = e.now.Add(time.Hour)
		shown.WriteString("$ rollout " + strings.Join(args, " ") + "\n" + out + "\n")
	}
	step("pause", "summarizer", "--reason", "holiday freeze")
	step("resume", "summarizer", "--reason", "freeze over")
	step("rollback", "summarizer", "--reason", "support reports truncated summaries; the long reason goes on to say which customers wrote in and when")
	step("status")
	step("plan")
	step("plan", "--format", "markdown")
	step("history", "summarizer")
	got := rfc3339.ReplaceAllString(withoutHashes(shown.String()), "<time>")
	got = strings.ReplaceAll(got, e.traffic, "TRAFFIC")
	checkGolden(t, ".", "whatnext.txt", []byte(got))

	for _, want := range []string{
		"summarizer: pause at 5% in ", "summarizer: resume at 5% in ",
		"summarizer: to try again, fix the canary in rollouts/summarizer.yaml",
		"**summarizer**: to try again",
		"pause     <hash>  rollout(summarizer): pause: holiday freeze",
		"resume    <hash>  rollout(summarizer): resume: freeze over",
		"… (-o json for all)",
		"ada-l (via rollout-bot)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "ada@example.com") || strings.Contains(got, "<ada") {
		t.Errorf("a text output shows the whole git identity:\n%s", got)
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "summarizer  RolledBack") && len([]rune(line)) > 200 {
			t.Errorf("status row of %d characters: %s", len([]rune(line)), line)
		}
	}

	// JSON: the whole message, the advice, the person and the reasons.
	_, out, _ := e.run("status", "-o", "json")
	var status []rolloutStatus
	if err := json.Unmarshal([]byte(out), &status); err != nil || len(status) != 1 {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if s := status[0]; !strings.HasPrefix(s.Next, "to try again") || !strings.Contains(s.Message, "which customers wrote in and when") {
		t.Errorf("status -o json: next %q, message %q", s.Next, s.Message)
	}
	_, out, _ = e.run("plan", "-o", "json")
	if !strings.Contains(out, `"next":"to try again`) {
		t.Errorf("plan -o json has no next: %s", out)
	}
	_, out, _ = e.run("history", "summarizer", "-o", "json")
	var history []historyEntry
	if err := json.Unmarshal([]byte(out), &history); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, h := range history {
		if h.Actor != "" && h.Who == h.Actor {
			t.Errorf("who %q is the whole identity", h.Who)
		}
		reasons[h.Decision] = h.Reason
	}
	if reasons["pause"] != "holiday freeze" || !strings.HasPrefix(reasons["resume"], "freeze over") ||
		!strings.Contains(reasons["rollback"], "which customers wrote in and when") {
		t.Errorf("history reasons %q", reasons)
	}

	// The notification says it too.
	select {
	case hook := <-e.hooks:
		if next, _ := hook["next"].(string); !strings.HasPrefix(next, "to try again") {
			t.Errorf("rollback notification %v has no next", hook)
		}
	default:
		t.Error("no rollback notification")
	}

	// The advice works: without its status block, the same canary starts over at stage 0.
	human := gittest.Clone(t, e.bare)
	path := filepath.Join(human.Dir, "rollouts", "summarizer.yaml")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(src), "\nstatus:")
	human.Write(map[string]string{"rollouts/summarizer.yaml": text + "\n"})
	human.Commit("retry the summarizer canary")
	human.Push("main")
	if res := e.reconcile(); *res.Decision != "start" || res.To != 5 {
		t.Errorf("after deleting status: %+v", res)
	}
}

func TestShortIdentity(t *testing.T) {
	for id, want := range map[string]string{
		"Ada Lovelace <ada@example.com>": "Ada Lovelace",
		"octocat (GitHub Actions)":       "octocat",
		"<ada@example.com>":              "ada@example.com",
		"rollout-bot":                    "rollout-bot",
	} {
		if got := shortIdentity(id); got != want {
			t.Errorf("shortIdentity(%q) = %q, want %q", id, got, want)
		}
	}
}
