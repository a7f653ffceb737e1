package faults

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// commentRun is one run of the Action's script for `command: comment` on an issue_comment event.
type commentRun struct {
	summary, output, printed string
	err                      error
}

// comment posts body on issue or pull request number as login (on the test server, so that the
// reaction has a comment to land on) and runs the Action's script on the issue_comment event, with
// action "created" or "edited".
func (g *github) comment(t *testing.T, number int, login, action, body string) commentRun {
	t.Helper()
	event := g.commentEvent(t, number, login, action, body)
	dir := t.TempDir()
	cmd := exec.Command("bash", actionScript(t))
	cmd.Dir = g.traffic
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"ROLLOUT_BIN=" + rolloutBin(t), "INPUT_COMMAND=comment", "INPUT_DIR=rollouts", "INPUT_COMMENT=true",
		"GITHUB_EVENT_NAME=issue_comment", "GITHUB_EVENT_PATH=" + event,
		"GITHUB_TOKEN=" + ghToken, "GITHUB_REPOSITORY=" + ghOwner + "/" + ghRepo, "GITHUB_ACTOR=" + login,
		"GITHUB_API_URL=" + g.gh.APIURL(), "GITHUB_SERVER_URL=" + g.gh.URL,
		"ROLLOUT_ROLLBACK_WEBHOOK=" + g.hook.url(),
		"GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary.md"), "GITHUB_OUTPUT=" + filepath.Join(dir, "output")}
	out, err := cmd.CombinedOutput()
	s, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	o, _ := os.ReadFile(filepath.Join(dir, "output"))
	return commentRun{summary: string(s), output: string(o), printed: string(out), err: err}
}

// commentEvent posts body on issue or pull request number as login and writes the issue_comment
// event (action "created" or "edited") GitHub sends for it; it returns the event file's path.
func (g *github) commentEvent(t *testing.T, number int, login, action, body string) string {
	t.Helper()
	id := g.gh.AddComment(number, login, "User", body)
	ev := map[string]any{
		"action": action,
		"issue": map[string]any{"number": number, "title": "x",
			"pull_request": map[string]any{"url": g.gh.APIURL() + "repos/" + ghOwner + "/" + ghRepo + "/pulls/" + itoa(number)}},
		"comment":    map[string]any{"id": id, "body": body, "user": map[string]any{"login": login, "type": "User"}, "author_association": "OWNER"},
		"repository": map[string]any{"full_name": ghOwner + "/" + ghRepo},
		"sender":     map[string]any{"login": login, "type": "User"},
	}
	raw, _ := json.Marshal(ev)
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return event
}

func itoa(n int) string { return strconv.Itoa(n) }

// hasLine reports whether text holds line as a whole line.
func hasLine(text, line string) bool {
	return slices.Contains(strings.Split(strings.TrimSpace(text), "\n"), line)
}

// newComments returns the bodies of the comments on number after the first skip.
func newComments(g *github, number, skip int) []string {
	var out []string
	for i, c := range g.gh.Comments(number) {
		if i >= skip {
			out = append(out, c.Login+": "+c.Body)
		}
	}
	return out
}

// reactionsOn returns the reactions on comment id.
func reactionsOn(g *github, id int64) []string {
	var out []string
	for _, r := range g.gh.Reactions() {
		if r.CommentID == id {
			out = append(out, r.Content)
		}
	}
	return out
}

// lastCommentID is the id of the newest comment on number.
func lastCommentID(g *github, number int, login string) int64 {
	var id int64
	for _, c := range g.gh.Comments(number) {
		if c.Login == login {
			id = c.ID
		}
	}
	return id
}

// TestCommentCommandsNeedWritePermission (issue 24 item 1): a `/rollout pause` comment on the bot's
// pull request runs through action/run.sh against the GitHub test server. A read-only commenter and a
// triager get a polite refusal and a confused reaction, and nothing lands; a maintainer's and an
// admin's comments land as the CLI's commit, with the commenter as Rollout-Actor, a reply and a +1.
func TestCommentCommandsNeedWritePermission(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	pr := g.advanced("summarizer")
	g.gh.SetPermission("rita", "read")
	g.gh.SetPermission("tom", "triage")
	g.gh.SetPermission("mia", "maintain")
	g.gh.SetPermission("ada", "admin")
	head := g.head("main")

	for _, login := range []string{"rita", "tom", "mallory"} {
		before := len(g.gh.Comments(pr.Number))
		run := g.comment(t, pr.Number, login, "created", "/rollout pause let me freeze this")
		if run.err != nil {
			t.Fatalf("%s: a refusal failed the step: %v\n%s", login, run.err, run.printed)
		}
		id := lastCommentID(g, pr.Number, login)
		replies := newComments(g, pr.Number, before+1)
		t.Logf("reply to %s: %q", login, replies)
		if len(replies) != 1 || !strings.Contains(replies[0], "@"+login+", thank you") || !strings.Contains(replies[0], "write permission") {
			t.Errorf("%s: replies = %q", login, replies)
		}
		if got := reactionsOn(g, id); len(got) != 1 || got[0] != "confused" {
			t.Errorf("%s: reactions = %q", login, got)
		}
		if g.head("main") != head {
			t.Fatalf("%s without write permission made a commit", login)
		}
		if !strings.Contains(run.summary, "Refused") {
			t.Errorf("%s: summary = %s", login, run.summary)
		}
	}

	run := g.comment(t, pr.Number, "mia", "created", "Looks odd.\n\n/rollout pause summarizer looks odd, investigating\n")
	if run.err != nil {
		t.Fatalf("maintainer: %v\n%s", run.err, run.printed)
	}
	if st := g.spec("summarizer").Status; st.Phase != "Paused" || !strings.Contains(st.Message, "looks odd, investigating") {
		t.Errorf("after mia's pause: %+v", st)
	}
	msg := g.git("log", "-1", "--format=%B", "main")
	if !hasLine(msg, "Rollout-Actor: mia") || !strings.Contains(msg, "Rollout-Decision: pause") {
		t.Errorf("pause commit:\n%s", msg)
	}
	if got := reactionsOn(g, lastCommentID(g, pr.Number, "mia")); len(got) != 1 || got[0] != "+1" {
		t.Errorf("mia: reactions = %q", got)
	}
	if p, _ := g.gh.Pull(pr.Number); p.State != "closed" {
		t.Errorf("the pause left the advance pull request open")
	}

	run = g.comment(t, pr.Number, "ada", "created", "/rollout resume")
	if run.err != nil {
		t.Fatalf("admin: %v\n%s", run.err, run.printed)
	}
	if st := g.spec("summarizer").Status; st.Phase != "Progressing" {
		t.Errorf("after ada's resume: %+v", st)
	}
	if msg := g.git("log", "-1", "--format=%B", "main"); !hasLine(msg, "Rollout-Actor: ada") {
		t.Errorf("resume commit:\n%s", msg)
	}
	replies := newComments(g, pr.Number, 0)
	last := replies[len(replies)-1]
	t.Logf("reply to ada:\n%s\nsummary:\n%s", last, run.summary)
	if !strings.Contains(last, "@ada, done as you asked") || !strings.Contains(last, "summarizer: resumed") || !strings.Contains(last, "/commit/") {
		t.Errorf("reply to ada: %s", last)
	}
	if !strings.Contains(run.output, `"decision":"resume"`) {
		t.Errorf("decisions output: %s", run.output)
	}
}

// TestCommentCommandsIgnoreWhatIsNotACommand: an edited comment, a command inside a code block or a
// quote, and a bot's comment run nothing and get no answer (no reply, no reaction); two commands in
// one comment run in order, each its own commit.
func TestCommentCommandsIgnoreWhatIsNotACommand(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	pr := g.advanced("summarizer")
	g.gh.SetPermission("ada", "admin")
	head := g.head("main")
	for name, c := range map[string]struct{ action, body string }{
		"edited":     {"edited", "/rollout rollback it was bad"},
		"code block": {"created", "To roll back, write:\n\n```\n/rollout rollback <reason>\n```\n"},
		"tilde":      {"created", "~~~md\n/rollout pause x\n~~~"},
		"indented":   {"created", "Like this:\n\n    /rollout rollback reason\n"},
		"quote":      {"created", "> /rollout rollback bad canary\n\nI disagree."},
		"inline":     {"created", "Use `/rollout rollback <reason>` if it regresses."},
	} {
		before := len(g.gh.Comments(pr.Number))
		run := g.comment(t, pr.Number, "ada", c.action, c.body)
		if run.err != nil {
			t.Errorf("%s: %v\n%s", name, run.err, run.printed)
		}
		if g.head("main") != head {
			t.Fatalf("%s: a commit landed", name)
		}
		if extra := newComments(g, pr.Number, before+1); len(extra) != 0 {
			t.Errorf("%s: answered %q", name, extra)
		}
		if got := reactionsOn(g, lastCommentID(g, pr.Number, "ada")); len(got) != 0 {
			t.Errorf("%s: reactions %q", name, got)
		}
		if !strings.Contains(run.summary, "Nothing to do") {
			t.Errorf("%s: summary %s", name, run.summary)
		}
	}

	run := g.comment(t, pr.Number, "ada", "created", "/rollout pause checking the dashboards\n/rollout resume dashboards are fine")
	if run.err != nil {
		t.Fatalf("two commands: %v\n%s", run.err, run.printed)
	}
	subjects := g.subjects("main")
	if !strings.HasPrefix(subjects[0], "rollout(summarizer): resume") || !strings.HasPrefix(subjects[1], "rollout(summarizer): pause") {
		t.Errorf("main: %q", subjects[:3])
	}
	replies := newComments(g, pr.Number, 0)
	last := replies[len(replies)-1]
	if strings.Count(last, "✅") != 2 || strings.Index(last, "paused") > strings.Index(last, "resumed") {
		t.Errorf("reply: %s", last)
	}
}

// TestCommentPromoteRetryRollbackPlan: `/rollout promote` moves the rollout to its next stage as an
// override the history shows with actor and reason; `/rollout rollback <reason>` rolls back and
// notifies; `/rollout retry` starts stage 0 again with the same canary; a rollback without a reason,
// an unknown command and a command that does not apply are answered with the reason and change
// nothing; `/rollout plan` updates the plan comment.
func TestCommentPromoteRetryRollbackPlan(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.03) // inconclusive at the 5% limit: the evidence rule would hold
	pr := g.gh.AddPull("feature/docs", "main", "Docs", "", "ada")
	g.gh.SetPermission("ada", "write")

	run := g.comment(t, pr, "ada", "created", "/rollout promote summarizer launch needs 25% today")
	if run.err != nil {
		t.Fatalf("promote: %v\n%s", run.err, run.printed)
	}
	spec := g.spec("summarizer")
	if spec.Traffic.Weight != 25 || spec.Status.Stage != 1 {
		t.Errorf("after promote: weight %d stage %d", spec.Traffic.Weight, spec.Status.Stage)
	}
	msg := g.git("log", "-1", "--format=%B", "main")
	for _, want := range []string{"Rollout-Actor: ada", "Rollout-Override: promote: the evidence rule was skipped by hand: launch needs 25% today"} {
		if !strings.Contains(msg, want) {
			t.Errorf("promote commit lacks %q:\n%s", want, msg)
		}
	}
	t.Logf("reply to the promote: %s", newComments(g, pr, 0)[1])
	hist, err := exec.Command(rolloutBin(t), "history", "summarizer", "--repo", g.bare).CombinedOutput()
	t.Logf("history:\n%s", hist)
	if err != nil || !strings.Contains(string(hist), "ada (via") || !strings.Contains(string(hist), "advance (override)") ||
		!strings.Contains(string(hist), "launch needs 25% today") {
		t.Errorf("history does not show the override: %v\n%s", err, hist)
	}

	before := len(g.gh.Comments(pr))
	head := g.head("main")
	for _, body := range []string{"/rollout rollback summarizer", "/rollout frobnicate summarizer", "/rollout resume summarizer", "/rollout pause", "/rollout pause nosuch x"} {
		run = g.comment(t, pr, "ada", "created", body)
		if run.err != nil {
			t.Errorf("%q failed the step: %v\n%s", body, run.err, run.printed)
		}
	}
	if g.head("main") != head {
		t.Errorf("a refused command made a commit")
	}
	replies := newComments(g, pr, before)
	for _, want := range []string{"a rollback needs a reason", "unknown command", "not paused", "name the rollout", "no such rollout"} {
		if !strings.Contains(strings.Join(replies, "\n"), want) {
			t.Errorf("no reply says %q:\n%s", want, strings.Join(replies, "\n"))
		}
	}

	run = g.comment(t, pr, "ada", "created", "/rollout rollback summarizer summaries are truncated")
	if run.err != nil {
		t.Fatalf("rollback: %v\n%s", run.err, run.printed)
	}
	if st := g.spec("summarizer").Status; st.Phase != "RolledBack" {
		t.Errorf("after rollback: %+v", st)
	}
	if ev := g.hook.received(); len(ev) == 0 || ev[len(ev)-1].Decision != "rollback" {
		t.Errorf("rollback notifications: %+v", ev)
	}
	run = g.comment(t, pr, "ada", "created", "/rollout retry summarizer the truncation was the gateway")
	if run.err != nil {
		t.Fatalf("retry: %v\n%s", run.err, run.printed)
	}
	spec = g.spec("summarizer")
	if spec.Status.Phase != "Progressing" || spec.Status.Stage != 0 || spec.Traffic.Weight != 5 {
		t.Errorf("after retry: weight %d %+v", spec.Traffic.Weight, spec.Status)
	}
	if s := g.subjects("main")[0]; !strings.Contains(s, "retry at stage 0") {
		t.Errorf("retry subject: %s", s)
	}

	before = len(g.gh.Comments(pr))
	run = g.comment(t, pr, "ada", "created", "/rollout plan")
	if run.err != nil {
		t.Fatalf("plan: %v\n%s", run.err, run.printed)
	}
	replies = newComments(g, pr, before+1)
	if len(replies) != 1 || !strings.HasPrefix(replies[0], "rollout-bot[bot]: <!-- rollout:plan:default-branch -->") || !strings.Contains(replies[0], "summarizer") {
		t.Errorf("plan: %q", replies)
	}
	if got := reactionsOn(g, lastCommentID(g, pr, "ada")); len(got) != 1 || got[0] != "+1" {
		t.Errorf("plan reactions %q", got)
	}
}

// TestCommentPlanKeepsThePullRequestsOwnPlan: `/rollout plan` on a person's pull request runs on the
// default branch's checkout (issue_comment events do), so its plan is the default branch's. It gets a
// comment of its own and never replaces the pull request's own plan (the `plan` workflow's comment,
// written with the same token). A plan that reports a rollout's error (its metrics source does not
// answer) is still the answer: the step stays green, as docs/github.md says it fails only when a
// commit could not be made or the answer could not be given.
func TestCommentPlanKeepsThePullRequestsOwnPlan(t *testing.T) {
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.01)
	pr := g.gh.AddPull("feature/prompt", "main", "A new prompt", "", "ada")
	g.gh.SetPermission("ada", "write")
	const own = "<!-- rollout:plan -->\n## rollout plan of this pull request\n\nsummarizer: a new canary starts"
	ownID := g.gh.AddComment(pr, "rollout-bot[bot]", "Bot", own)

	run := g.comment(t, pr, "ada", "created", "/rollout plan")
	if run.err != nil {
		t.Fatalf("plan: %v\n%s", run.err, run.printed)
	}
	var plans []string
	for _, c := range g.gh.Comments(pr) {
		if c.ID == ownID && c.Body != own {
			t.Errorf("the pull request's own plan was replaced by the default branch's:\n%s", c.Body)
		}
		if c.ID != ownID && c.Login == "rollout-bot[bot]" {
			plans = append(plans, c.Body)
		}
	}
	if len(plans) != 1 || !strings.HasPrefix(plans[0], "<!-- rollout:plan:default-branch -->") || !strings.Contains(plans[0], "summarizer") {
		t.Fatalf("the default branch's plan: %q", plans)
	}

	// The metrics source fails: the plan says so, and is the answer all the same.
	if err := os.Remove(filepath.Join(g.traffic, "traffic", "summarizer.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(g.traffic, "traffic", "summarizer.jsonl"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := len(g.gh.Comments(pr))
	run = g.comment(t, pr, "ada", "created", "/rollout plan")
	if run.err != nil {
		t.Errorf("a plan that reports the metrics failure failed the step: %v\n%s", run.err, run.printed)
	}
	if got := newComments(g, pr, before+1); len(got) != 0 {
		t.Errorf("the plan comment was not updated in place: %q", got)
	}
	for _, c := range g.gh.Comments(pr) {
		if c.ID == ownID && c.Body != own {
			t.Errorf("the pull request's own plan was replaced:\n%s", c.Body)
		}
		if c.ID != ownID && c.Login == "rollout-bot[bot]" && !strings.Contains(c.Body, "summarizer.jsonl") {
			t.Errorf("the plan does not show the metrics failure:\n%s", c.Body)
		}
	}
}
