package reconcile

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// A top-level notify target that chooses every event hears the whole life of a rollout, each event
// once, in order: start, proposed, started (the merge landed), paused, resumed, override (with the
// started stage it made), rollback. A target left with the default hears the rollback only.
func TestLifecycleEventsReachTheTargetsThatChoseThem(t *testing.T) {
	spec := strings.Replace(specFor("summarizer", "pull-request", "hold"), "rollback:\n",
		"notify:\n  - {webhook: env:ROLLOUT_ALL, on: [start, proposed, started, promoted, paused, resumed, rollback, alert, stuck, override]}\n"+
			"  - {slack: env:ROLLOUT_DEFAULT}\nrollback:\n", 1)
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": spec})
	rec := &targetRecorder{}
	h.loop.Notifier = rec
	h.loop.ReportURL = "https://acme.example/report/"
	h.tick() // start
	h.now = t0.Add(5 * time.Hour)
	h.judge.set("summarizer", policy.Advance)
	h.tick() // proposed
	h.forge.merge(1)
	h.now = t0.Add(6 * time.Hour)
	h.judge.set("summarizer", policy.Hold)
	h.tick() // started
	ctx := context.Background()
	h.loop.Actor = "ada"
	for _, op := range []Operation{OpPause, OpResume, OpPromote, OpRollback} {
		if _, err := h.loop.Operate(ctx, "summarizer", op, "because"); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	want := []string{"start", "proposed", "started", "paused", "resumed", "started", "override", "rollback"}
	if got := rec.heard("env:ROLLOUT_ALL"); !slices.Equal(got, want) {
		t.Errorf("the target of every event heard %q, want %q", got, want)
	}
	if got := rec.heard("env:ROLLOUT_DEFAULT"); !slices.Equal(got, []string{"rollback"}) {
		t.Errorf("the default target heard %q", got)
	}
	if got := rec.heard("env:ROLLOUT_ROLLBACK_WEBHOOK"); !slices.Equal(got, []string{"rollback"}) {
		t.Errorf("rollback.notify heard %q", got)
	}
	for _, ev := range rec.events {
		if ev.Evidence != "https://acme.example/report/" {
			t.Errorf("%s: evidence %q", ev.Event, ev.Evidence)
		}
		if ev.Event == "proposed" && ev.Proposal == "" {
			t.Errorf("the proposed event does not link the proposal")
		}
		if ev.Event != "proposed" && ev.Commit == "" {
			t.Errorf("%s: no commit", ev.Event)
		}
		if (ev.Event == "paused" || ev.Event == "override") && !slices.Contains(ev.Reasons, "by ada") {
			t.Errorf("%s does not name the actor: %q", ev.Event, ev.Reasons)
		}
	}
}

// targetRecorder is a Notifier that records which targets heard which event.
type targetRecorder struct {
	events []Event
	by     map[string][]string
}

func (r *targetRecorder) Notify(_ context.Context, targets []rollouts.Notify, ev Event) error {
	if r.by == nil {
		r.by = map[string][]string{}
	}
	r.events = append(r.events, ev)
	for _, tg := range targets {
		ref := tg.Webhook + tg.Slack
		r.by[ref] = append(r.by[ref], ev.Event)
	}
	return nil
}

func (r *targetRecorder) heard(ref string) []string { return r.by[ref] }

// A stage held past its maxDuration notifies `stuck` once: the first such pass records stuckSince in
// a bookkeeping commit and notifies; the next passes write and notify nothing; a resume clears it.
func TestStuckNotifiesOnce(t *testing.T) {
	spec := strings.Replace(specFor("summarizer", "pull-request", "hold"), "rollback:\n",
		"notify:\n  - {webhook: env:ROLLOUT_ALL, on: [stuck]}\nrollback:\n", 1)
	h := newHarness(t, map[string]string{"rollouts/summarizer.yaml": spec})
	rec := &targetRecorder{}
	h.loop.Notifier = rec
	h.tick()
	h.loop.Judge = func(spec *rollouts.Spec, ev policy.Evidence, now time.Time) policy.Decision {
		return policy.Decision{Rollout: spec.Name, Action: policy.Hold, Current: policy.Step{Weight: spec.Traffic.Weight},
			Reasons: []string{"maxDuration 72h passed without a decision (onInconclusive: hold)"}, Stuck: true}
	}
	h.now = t0.Add(80 * time.Hour)
	res := h.only(h.tick())
	if res.Commit == "" || !h.spec("summarizer").Status.StuckSince.Equal(h.now) {
		t.Fatalf("the first stuck pass: %+v", res)
	}
	h.now = t0.Add(81 * time.Hour)
	if res := h.only(h.tick()); res.Commit != "" {
		t.Errorf("the second stuck pass wrote %s", res.Commit)
	}
	if got := rec.heard("env:ROLLOUT_ALL"); !slices.Equal(got, []string{"stuck"}) {
		t.Errorf("heard %q", got)
	}
	h.loop.Actor = "ada"
	if _, err := h.loop.Operate(context.Background(), "summarizer", OpPause, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.loop.Operate(context.Background(), "summarizer", OpResume, ""); err != nil {
		t.Fatal(err)
	}
	if st := h.spec("summarizer").Status; !st.StuckSince.IsZero() {
		t.Errorf("resume kept stuckSince %s", st.StuckSince)
	}
}
