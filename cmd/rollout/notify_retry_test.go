package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// TestARetriedNotificationGoesOnlyWhereItFailed: a rollback notifies two webhooks; the team's answers,
// the on-call one fails (500). The notification is owed to the on-call webhook alone: the next pass
// delivers it there, and the team's webhook, which has it, does not get it again (with a webhook that
// stays down, it got the same rollback on every pass).
func TestARetriedNotificationGoesOnlyWhereItFailed(t *testing.T) {
	spec := strings.Replace(e2eSpec, "notify: [{webhook: env:ROLLOUT_ROLLBACK_WEBHOOK}]",
		"notify: [{webhook: env:ROLLOUT_ROLLBACK_WEBHOOK}, {webhook: env:ROLLOUT_ONCALL_WEBHOOK}]", 1)
	e := newE2EWith(t, spec)
	var down atomic.Bool
	down.Store(true)
	oncall := make(chan map[string]any, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		oncall <- body
	}))
	t.Cleanup(srv.Close)
	e.env["ROLLOUT_ONCALL_WEBHOOK"] = srv.URL + "/oncall-token"
	if res := e.reconcile(); *res.Decision != "start" {
		t.Fatalf("start: %+v", res)
	}
	e.now = e.now.Add(2 * time.Hour)
	e.addTraffic(400, 0.5, 2)
	if code, out, errOut := e.run("reconcile"); code != exitFailed || !strings.Contains(out, "rollback") {
		t.Fatalf("rollback with a failed notification: exit %d\n%s%s", code, out, errOut)
	}
	if len(e.hooks) != 1 || len(oncall) != 0 {
		t.Fatalf("deliveries: team %d, on-call %d; want 1 and 0", len(e.hooks), len(oncall))
	}
	if mark := gittest.Git(t, e.bare, "log", "-1", "--format=%B", "main"); !strings.Contains(mark, "Rollout-Notification-Targets: webhook env:ROLLOUT_ONCALL_WEBHOOK") {
		t.Errorf("the pending mark does not say which target is owed:\n%s", mark)
	}

	down.Store(false)
	for range 2 { // the retry, then a pass with nothing owed
		e.now = e.now.Add(15 * time.Minute)
		if code, out, errOut := e.run("reconcile"); code != exitOK {
			t.Fatalf("retry: exit %d\n%s%s", code, out, errOut)
		}
	}
	if len(e.hooks) != 1 || len(oncall) != 1 {
		t.Errorf("deliveries: team %d, on-call %d; want 1 each", len(e.hooks), len(oncall))
	}
	if ev := <-oncall; ev["decision"] != "rollback" || ev["from"] != 5.0 {
		t.Errorf("the on-call webhook got %v", ev)
	}
}
