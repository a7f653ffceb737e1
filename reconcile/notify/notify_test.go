package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
)

// recorder is an httptest server that records the JSON bodies posted to its secret path.
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	status int
}

const secretPath = "/services/T000/B000/XXXXsecretXXXX"

func newRecorder(t *testing.T, status int) *recorder {
	r := &recorder{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != secretPath || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("unexpected %s %s (%s)", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var body map[string]any
		raw, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("body is not JSON: %s", raw)
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		w.WriteHeader(r.status)
		io.WriteString(w, "invalid_payload "+req.URL.Path)
	}))
	t.Cleanup(r.Close)
	return r
}

var event = reconcile.Event{Rollout: "summarizer", Decision: "rollback", From: 25, To: 0,
	Reasons: []string{"error_rate: canary 4.1% > max 2% <b>"}, Commit: "3f2a9c1e"}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestWebhookAndSlackPayloads(t *testing.T) {
	hook, sl := newRecorder(t, 200), newRecorder(t, 200)
	d := &Dispatcher{Getenv: env(map[string]string{"HOOK": hook.URL + secretPath, "SLACK": sl.URL + secretPath})}
	err := d.Notify(context.Background(), []rollouts.Notify{{Webhook: "env:HOOK"}, {Slack: "env:SLACK"}}, event)
	if err != nil {
		t.Fatal(err)
	}
	if len(hook.bodies) != 1 || len(sl.bodies) != 1 {
		t.Fatalf("deliveries: webhook %d, slack %d", len(hook.bodies), len(sl.bodies))
	}
	got, _ := json.Marshal(hook.bodies[0])
	want := `{"commit":"3f2a9c1e","decision":"rollback","event":"rollback","from":25,"reasons":["error_rate: canary 4.1% \u003e max 2% \u003cb\u003e"],"rollout":"summarizer","to":0}`
	if string(got) != want {
		t.Errorf("webhook body\n got %s\nwant %s", got, want)
	}
	msg := sl.bodies[0]
	if msg["text"] != "summarizer: rollback 25% → 0%" {
		t.Errorf("slack text = %v", msg["text"])
	}
	blocks := fmt.Sprint(msg["blocks"])
	if !strings.Contains(blocks, "rolled back: 25% → 0%") || !strings.Contains(blocks, "&lt;b&gt;") || !strings.Contains(blocks, "3f2a9c1e") {
		t.Errorf("slack blocks = %s", blocks)
	}
}

// Every lifecycle event has its own Slack line, and the message links the pull request, the commit and
// the evidence; the webhook body names the event.
func TestLifecycleEventPayloads(t *testing.T) {
	hook, sl := newRecorder(t, 200), newRecorder(t, 200)
	d := &Dispatcher{Getenv: env(map[string]string{"HOOK": hook.URL + secretPath, "SLACK": sl.URL + secretPath}),
		CommitURL: "https://github.example/acme/llm-config/commit/"}
	for _, ev := range rollouts.Events {
		err := d.Notify(context.Background(), []rollouts.Notify{{Webhook: "env:HOOK"}, {Slack: "env:SLACK"}}, reconcile.Event{
			Rollout: "summarizer", Event: ev, Decision: "advance", From: 5, To: 25, Reasons: []string{"why"}, Commit: "0123456789abcdef",
			Proposal: "https://github.example/acme/llm-config/pull/7", Evidence: "https://acme.example/report/#summarizer"})
		if err != nil {
			t.Fatal(err)
		}
	}
	heads := map[string]bool{}
	for i, ev := range rollouts.Events {
		if hook.bodies[i]["event"] != ev || hook.bodies[i]["proposal"] != "https://github.example/acme/llm-config/pull/7" {
			t.Errorf("webhook body of %s: %v", ev, hook.bodies[i])
		}
		blocks := fmt.Sprint(sl.bodies[i]["blocks"])
		for _, want := range []string{"<https://github.example/acme/llm-config/pull/7|pull request>",
			"<https://github.example/acme/llm-config/commit/0123456789abcdef|commit `0123456`>", "<https://acme.example/report/#summarizer|evidence>"} {
			if !strings.Contains(blocks, want) {
				t.Errorf("slack message of %s lacks %q: %s", ev, want, blocks)
			}
		}
		head := fmt.Sprint(sl.bodies[i]["blocks"].([]any)[0])
		if heads[head] {
			t.Errorf("two events share the Slack line %s", head)
		}
		heads[head] = true
	}
}

func TestFailuresNeverShowTheURL(t *testing.T) {
	failing := newRecorder(t, http.StatusInternalServerError)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + secretPath
	closed.Close()
	tests := []struct {
		name   string
		target rollouts.Notify
		env    map[string]string
		want   string
		is     error
	}{
		{"server error", rollouts.Notify{Webhook: "env:HOOK"}, map[string]string{"HOOK": failing.URL + secretPath}, "webhook env:HOOK: answered 500 Internal Server Error", nil},
		{"no answer in time", rollouts.Notify{Slack: "env:HOOK"}, map[string]string{"HOOK": hang.URL + secretPath}, "slack env:HOOK: no answer within 50ms", nil},
		{"connection refused", rollouts.Notify{Webhook: "env:HOOK"}, map[string]string{"HOOK": closedURL}, "webhook env:HOOK:", nil},
		{"unset", rollouts.Notify{Webhook: "env:NOPE"}, nil, "webhook env:NOPE: environment variable is not set", ErrUnset},
		{"literal URL", rollouts.Notify{Slack: "https://hooks.slack.com" + secretPath}, nil, "slack <literal>:", ErrLiteralURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Dispatcher{Getenv: env(tt.env), Timeout: 50 * time.Millisecond}
			err := d.Notify(context.Background(), []rollouts.Notify{tt.target}, event)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the URL leaked: %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func TestEveryTargetIsTried(t *testing.T) {
	ok := newRecorder(t, 204)
	d := &Dispatcher{Getenv: env(map[string]string{"OK": ok.URL + secretPath})}
	err := d.Notify(context.Background(), []rollouts.Notify{{Webhook: "env:MISSING"}, {Webhook: "env:OK"}}, reconcile.Event{Rollout: "x", Decision: "alert"})
	if !errors.Is(err, ErrUnset) || len(ok.bodies) != 1 {
		t.Fatalf("err %v, deliveries %d", err, len(ok.bodies))
	}
	if r, _ := json.Marshal(ok.bodies[0]["reasons"]); string(r) != "[]" {
		t.Errorf("reasons = %s, want []", r)
	}
}

func TestRefusedTargetIsNotSentTo(t *testing.T) {
	hook, ok := newRecorder(t, 200), newRecorder(t, 200)
	refuse := errors.New("env:HOOK is not allowed")
	d := &Dispatcher{
		Getenv: env(map[string]string{"HOOK": hook.URL + secretPath, "ROLLOUT_OK": ok.URL + secretPath}),
		Allow: func(name string) error {
			if name == "HOOK" {
				return refuse
			}
			return nil
		},
	}
	targets := []rollouts.Notify{{Webhook: "env:HOOK"}, {Slack: "env:ROLLOUT_OK"}}
	err := d.Notify(context.Background(), targets, event)
	if len(hook.bodies) != 0 || len(ok.bodies) != 1 {
		t.Fatalf("deliveries: refused %d, allowed %d", len(hook.bodies), len(ok.bodies))
	}
	if !errors.Is(err, reconcile.ErrTargetNotConfigured) || !errors.Is(err, refuse) || !strings.Contains(err.Error(), "webhook env:HOOK") {
		t.Errorf("err = %v, want a not-configured warning naming env:HOOK", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the URL leaked: %v", err)
	}
	got := d.Check(targets)
	if len(got) != 1 || !strings.Contains(got[0], "env:HOOK is not allowed, so this target gets no notification") {
		t.Errorf("Check = %q", got)
	}
}

// TestSlackMessageFitsSlacksLimits: Slack refuses a message whose section block holds over 3000
// characters (400 invalid_blocks), so a rollback with many failing rules (a rule per segment, say), an
// alert listing every problem of a broken spec, or one long source error would never reach the channel,
// and be retried on every tick in vain. The message keeps within the limit: the first reasons, then how
// many more there are.
func TestSlackMessageFitsSlacksLimits(t *testing.T) {
	var got []slackBlock
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg slack
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			t.Errorf("body is not JSON: %v", err)
		}
		for _, b := range msg.Blocks {
			if b.Text != nil && len([]rune(b.Text.Text)) > 3000 {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, "invalid_blocks")
				return
			}
		}
		got = msg.Blocks
	}))
	t.Cleanup(srv.Close)
	var segments []string
	for i := range 80 {
		segments = append(segments, fmt.Sprintf("error_rate[language=l%02d]: canary 4.1%% > max 2%% (95%% interval 3.2%%…5.0%%, %s)", i, strings.Repeat("é", 30)))
	}
	for _, tt := range []struct {
		name      string
		reasons   []string
		want      []string
		notWanted string
	}{
		{"a reason per segment", segments, []string{"error_rate[language=l00]", "…and ", "more reasons"}, "l79"},
		{"one long reason", []string{"metrics source: " + strings.Repeat("<x>", 2000), "second"},
			[]string{"metrics source: &lt;x&gt;", "…\n• …and 1 more reason\n"}, "second"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := reconcile.Event{Rollout: "summarizer", Decision: "rollback", From: 25, To: 0, Commit: "3f2a9c1e0123", Reasons: tt.reasons}
			d := &Dispatcher{Getenv: env(map[string]string{"SLACK": srv.URL + secretPath}), CommitURL: "https://github.example/acme/llm-config/commit/"}
			if err := d.Notify(context.Background(), []rollouts.Notify{{Slack: "env:SLACK"}}, ev); err != nil {
				t.Fatalf("the message was refused: %v", err)
			}
			if len(got) != 2 {
				t.Fatalf("blocks = %v", got)
			}
			body := got[1].Text.Text
			for _, want := range append(tt.want, "3f2a9c1e0123|commit `3f2a9c1`") {
				if !strings.Contains(body, want) {
					t.Errorf("the message lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, tt.notWanted) {
				t.Errorf("the message holds every reason: %d characters", len([]rune(body)))
			}
		})
	}
}

// TestDeliveryCutShortWhenStopping: once the process is asked to stop, a target that hangs does not
// keep it until the runner kills it: the delivery under way ends after StoppingGrace (here at once), as
// a failure of that target, which the loop records as owed; so does every later one.
func TestDeliveryCutShortWhenStopping(t *testing.T) {
	ok := newRecorder(t, 204)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	stopping := make(chan struct{})
	d := &Dispatcher{Getenv: env(map[string]string{"HANG": hang.URL + secretPath, "OK": ok.URL + secretPath}),
		Timeout: time.Hour, Stopping: stopping, StoppingGrace: -1}
	go func() {
		<-arrived
		close(stopping) // the signal comes while the first delivery hangs
	}()
	err := d.Notify(context.Background(), []rollouts.Notify{{Webhook: "env:HANG"}, {Webhook: "env:OK"}}, event)
	var te *reconcile.TargetError
	if !errors.As(err, &te) || te.Target != reconcile.TargetName("webhook", "env:HANG") || !strings.Contains(err.Error(), "cut short: the process was asked to stop") {
		t.Fatalf("err = %v, want the hanging target cut short", err)
	}
	if len(ok.bodies) != 0 {
		t.Errorf("a target tried after the stop got the notification: %d deliveries", len(ok.bodies))
	}
}

// A commit id in a Slack message is text, never markup: one that is not a commit id (text that reached
// the event some other way) cannot mention a channel or add a link.
func TestSlackCommitIsNeverMarkup(t *testing.T) {
	sl := newRecorder(t, 200)
	ev := event
	ev.Commit = "<!channel> <https://evil.example|click>"
	for _, commitURL := range []string{"", "https://github.com/acme/models/commit/"} {
		sl.bodies = nil
		d := &Dispatcher{Getenv: env(map[string]string{"SLACK": sl.URL + secretPath}), CommitURL: commitURL}
		if err := d.Notify(context.Background(), []rollouts.Notify{{Slack: "env:SLACK"}}, ev); err != nil {
			t.Fatal(err)
		}
		blocks := fmt.Sprint(sl.bodies[0]["blocks"])
		if strings.Contains(blocks, "<!channel>") || strings.Contains(blocks, "<https://evil") || strings.Contains(blocks, "|click") {
			t.Errorf("CommitURL %q: the commit became markup: %s", commitURL, blocks)
		}
	}
}
