package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

func TestPlanChange(t *testing.T) {
	now := t0.Add(10 * time.Hour)
	progressing := func(via string) *rollouts.Document {
		src := specFor("s", via, "hold") + "status:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-04-16T00:00:00Z\n"
		src = strings.Replace(src, "weight: 0", "weight: 5", 1)
		spec, ps := rollouts.Parse("s.yaml", []byte(src))
		if spec == nil {
			t.Fatal(ps)
		}
		return &rollouts.Document{Path: "rollouts/s.yaml", Source: []byte(src), Spec: spec}
	}
	advance := policy.Decision{Rollout: "s", Action: policy.Advance, Current: policy.Step{Stage: 0, Weight: 5}, Next: &policy.Step{Stage: 1, Weight: 25}}
	doc := progressing("pull-request")
	title := "rollout(s): 5% → 25%"
	target := targetHash(doc.Source, title)
	sameBody := EvidenceBody(doc.Spec, advance, target, DefaultBot, "")
	tests := []struct {
		name       string
		doc        *rollouts.Document
		d          policy.Decision
		proposal   *Proposal
		metricsErr int
		kind       actionKind
		to         int
		effect     string
		check      func(t *testing.T, a action)
	}{
		{name: "advance, no proposal: push and propose", doc: doc, d: advance, kind: actPropose, to: 25,
			check: func(t *testing.T, a action) {
				if *a.change.Weight != 25 || a.change.Status.Stage != 1 || !a.change.Status.StageStartedAt.IsZero() {
					t.Errorf("change = %+v %+v", a.change, a.change.Status)
				}
				if a.proposal.Title != title || a.proposal.Branch != "rollout/s" || a.proposal.AutoMerge {
					t.Errorf("proposal = %+v", a.proposal)
				}
			}},
		{name: "advance, open proposal carries it", doc: doc, d: advance, kind: actNone, to: 25, effect: "proposal up to date",
			proposal: &Proposal{State: ProposalOpen, Title: title, Body: sameBody}},
		{name: "advance, evidence changed", doc: doc, d: advance, kind: actRefresh, to: 25,
			proposal: &Proposal{State: ProposalOpen, Title: title, Body: "old evidence <!-- rollout-target:" + target + " -->"}},
		{name: "advance, open proposal for another stage", doc: doc, d: advance, kind: actPropose, to: 25,
			proposal: &Proposal{State: ProposalOpen, Title: "rollout(s): 0% → 5%", Body: sameBody}},
		{name: "advance, closed by a human", doc: doc, d: advance, kind: actNone, to: 25, effect: "proposal was closed without merging; not reopened",
			proposal: &Proposal{State: ProposalClosed, Title: title}},
		{name: "advance via commit", doc: progressing("commit"), d: advance, kind: actCommit, to: 25,
			check: func(t *testing.T, a action) {
				if !a.change.Status.StageStartedAt.Equal(now) || !strings.Contains(a.message, "Rollout-Decision: advance") {
					t.Errorf("change %+v message %q", a.change.Status, a.message)
				}
			}},
		{name: "rollback closes the open proposal and notifies", doc: doc, d: policy.Decision{Rollout: "s", Action: policy.Rollback, Current: policy.Step{Weight: 5},
			Metrics: []policy.RuleResult{{Name: "error_rate", Verdict: policy.Fail, Reason: "too many"}}},
			proposal: &Proposal{State: ProposalOpen}, kind: actCommit, to: 0,
			check: func(t *testing.T, a action) {
				if *a.change.Weight != 0 || a.change.Status.Phase != rollouts.RolledBack || a.closeComment == "" || a.event == nil {
					t.Errorf("%+v", a)
				}
				if !strings.HasPrefix(a.message, "rollout(s): rollback 5% → 0%\n\n- error_rate: too many\n") {
					t.Errorf("message %q", a.message)
				}
			}},
		{name: "promote", doc: doc, d: policy.Decision{Rollout: "s", Action: policy.Promote, Current: policy.Step{Weight: 5}}, kind: actPropose, to: 100,
			check: func(t *testing.T, a action) {
				if !a.change.Promote || a.change.Status.Phase != rollouts.Completed {
					t.Errorf("%+v", a.change)
				}
			}},
		{name: "hold writes nothing", doc: doc, d: policy.Decision{Rollout: "s", Action: policy.Hold, Current: policy.Step{Weight: 5}}, kind: actNone, to: 5, metricsErr: -1},
		{name: "hold records a metrics failure", doc: doc, d: policy.Decision{Rollout: "s", Action: policy.Hold, Current: policy.Step{Weight: 5}}, kind: actCommit, to: 5, metricsErr: 2,
			check: func(t *testing.T, a action) {
				if a.change.Status.MetricsErrors != 2 || a.change.Weight != nil {
					t.Errorf("%+v", a.change)
				}
			}},
		{name: "hold refreshes an open proposal's evidence", doc: doc, d: policy.Decision{Rollout: "s", Action: policy.Hold, Current: policy.Step{Weight: 5}}, metricsErr: -1,
			proposal: &Proposal{State: ProposalOpen, Title: title, Body: sameBody}, kind: actRefresh, to: 5,
			check: func(t *testing.T, a action) {
				if a.proposal.Title != title || targetOf(a.proposal.Body) != target {
					t.Errorf("refresh must keep title and target: %+v", a.proposal)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := planChange(planInput{Doc: tt.doc, Decision: tt.d, Proposal: tt.proposal, Now: now, MetricsErrors: tt.metricsErr, Bot: DefaultBot})
			if err != nil {
				t.Fatal(err)
			}
			if a.kind != tt.kind || a.to != tt.to || (tt.effect != "" && a.effect != tt.effect) {
				t.Fatalf("got kind %d to %d effect %q, want kind %d to %d effect %q", a.kind, a.to, a.effect, tt.kind, tt.to, tt.effect)
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}
}

// The pending mark carries the rollback commit; a mark without one, as older versions wrote it, still counts.
func TestNotifyPendingMark(t *testing.T) {
	tests := []struct {
		msg, clean, commit string
		pending            bool
	}{
		{"rollback 5% → 0%: x [notification pending for 0a1b2c]", "rollback 5% → 0%: x", "0a1b2c", true},
		{"rollback 5% → 0%: x [notification pending]", "rollback 5% → 0%: x", "", true},
		{"rollback 5% → 0%: x", "rollback 5% → 0%: x", "", false},
		{"[notification pending for 0a1b2c] then more", "[notification pending for 0a1b2c] then more", "", false},
	}
	for _, tt := range tests {
		if got := notifyPending(tt.msg); got != tt.pending {
			t.Errorf("notifyPending(%q) = %v, want %v", tt.msg, got, tt.pending)
		}
		if clean, commit := withoutNotifyPending(tt.msg); clean != tt.clean || commit != tt.commit {
			t.Errorf("withoutNotifyPending(%q) = %q, %q; want %q, %q", tt.msg, clean, commit, tt.clean, tt.commit)
		}
	}
	if got := withNotifyPending("m [notification pending]", "beef"); got != "m [notification pending for beef]" {
		t.Errorf("withNotifyPending marks twice or loses the commit: %q", got)
	}
}

// TestPlanStopsAutoMerge: an open proposal the forge is set to merge by itself has it turned off when
// it may no longer merge: its approvals fell short, or the decision holds. A rollback's proposal keeps
// it, and a hold never asks the forge to turn it on.
func TestPlanStopsAutoMerge(t *testing.T) {
	now := t0.Add(10 * time.Hour)
	src := strings.Replace(specFor("s", "auto-merge", "hold"), "  via: auto-merge\n", "  via: auto-merge\n  approvals: {count: 2}\n", 1) +
		"status:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-04-16T00:00:00Z\n"
	src = strings.Replace(src, "weight: 0", "weight: 5", 1)
	spec, ps := rollouts.Parse("s.yaml", []byte(src))
	if spec == nil {
		t.Fatal(ps)
	}
	doc := &rollouts.Document{Path: "rollouts/s.yaml", Source: []byte(src), Spec: spec}
	advance := policy.Decision{Rollout: "s", Action: policy.Advance, Current: policy.Step{Stage: 0, Weight: 5}, Next: &policy.Step{Stage: 1, Weight: 25}}
	hold := policy.Decision{Rollout: "s", Action: policy.Hold, Current: policy.Step{Stage: 0, Weight: 5}}
	title := "rollout(s): 5% → 25%"
	target := targetHash(doc.Source, title)
	body := func(st *ApprovalState) string {
		return st.Line(spec.Promotion.Approvals) + "\n\n" + EvidenceBody(spec, advance, target, DefaultBot, "")
	}
	oneOfTwo, twoOfTwo := &ApprovalState{Have: 1, Need: 2, By: []string{"alice"}}, &ApprovalState{Have: 2, Need: 2, By: []string{"alice", "dave"}}
	open := func(body string, autoMerging bool) *Proposal {
		return &Proposal{Number: 7, State: ProposalOpen, Title: title, Body: body, AutoMerging: autoMerging}
	}
	tests := []struct {
		name      string
		d         policy.Decision
		approvals *ApprovalState
		proposal  *Proposal
		kind      actionKind
		stop      string
		autoMerge bool // the request asks the forge to merge by itself
	}{
		{"approval withdrawn, evidence the same", advance, oneOfTwo, open(body(oneOfTwo), true), actNone, "approvals 1 of 2", false},
		{"approval withdrawn, evidence changed", advance, oneOfTwo, open(body(twoOfTwo), true), actRefresh, "approvals 1 of 2", false},
		{"approvals unreadable", advance, &ApprovalState{Need: 2, Unread: "HTTP 502"}, open("x", true), actPropose,
			"the approvals could not be read: HTTP 502", false},
		{"approvals met", advance, twoOfTwo, open(body(twoOfTwo), true), actNone, "", true},
		{"approvals short, auto-merge off already", advance, oneOfTwo, open(body(oneOfTwo), false), actNone, "", false},
		{"hold, evidence the same", hold, nil, open(EvidenceBody(spec, hold, target, DefaultBot, ""), true), actNone, "the decision is hold", false},
		{"hold, evidence changed", hold, nil, open(body(twoOfTwo), true), actRefresh, "the decision is hold", false},
		{"hold, auto-merge off", hold, nil, open(body(twoOfTwo), false), actRefresh, "", false},
		{"hold, a rollback's proposal", hold, nil, &Proposal{Number: 7, State: ProposalOpen, Title: "rollout(s): rollback 5% → 0%", Body: "x", AutoMerging: true},
			actRefresh, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := planChange(planInput{Doc: doc, Decision: tt.d, Proposal: tt.proposal, Approvals: tt.approvals, Now: now, MetricsErrors: -1, Bot: DefaultBot})
			if err != nil {
				t.Fatal(err)
			}
			if a.kind != tt.kind || a.stopAutoMerge != tt.stop {
				t.Fatalf("kind %d, stop %q (effect %q); want kind %d, stop %q", a.kind, a.stopAutoMerge, a.effect, tt.kind, tt.stop)
			}
			if tt.stop != "" && !strings.Contains(a.effect, "turn off its auto-merge ("+tt.stop+")") {
				t.Errorf("effect %q does not say so", a.effect)
			}
			if asks := a.proposal.AutoMerge || a.autoMerge; a.kind != actNone && asks != tt.autoMerge {
				t.Errorf("the request asks for auto-merge: %t, want %t", asks, tt.autoMerge)
			}
		})
	}
}

// TestPlanRecordsRecoveryBeforeProposing: the first pass after a metrics outage that decides an advance
// records on the default branch that the source recovered, and proposes on the next pass; a refresh
// of the evidence, which changes every pass, would put the record off for good. A rollback is never
// put off.
func TestPlanRecordsRecoveryBeforeProposing(t *testing.T) {
	now := t0.Add(10 * time.Hour)
	src := specFor("s", "pull-request", "hold") + "status:\n  phase: Progressing\n  stage: 0\n  stageStartedAt: 2026-04-16T00:00:00Z\n" +
		"  metricsFailingSince: 2026-04-16T08:00:00Z\n"
	src = strings.Replace(src, "weight: 0", "weight: 5", 1)
	for _, via := range []string{"pull-request", "auto-merge"} {
		src := strings.Replace(src, "via: pull-request", "via: "+via, 1)
		spec, ps := rollouts.Parse("s.yaml", []byte(src))
		if spec == nil {
			t.Fatal(ps)
		}
		doc := &rollouts.Document{Path: "rollouts/s.yaml", Source: []byte(src), Spec: spec}
		advance := policy.Decision{Rollout: "s", Action: policy.Advance, Current: policy.Step{Stage: 0, Weight: 5}, Next: &policy.Step{Stage: 1, Weight: 25}}
		recovered := &time.Time{}
		title := "rollout(s): 5% → 25%"
		for name, p := range map[string]*Proposal{
			"no proposal":      nil,
			"an open proposal": {State: ProposalOpen, Title: title, Body: "old evidence <!-- rollout-target:" + targetHash(doc.Source, title) + " -->"},
		} {
			a, err := planChange(planInput{Doc: doc, Decision: advance, Proposal: p, Now: now, MetricsErrors: 0, FailingSince: recovered, Bot: DefaultBot})
			if err != nil {
				t.Fatal(err)
			}
			if a.kind != actCommit || !a.change.Status.MetricsFailingSince.IsZero() || a.to != 25 ||
				!strings.Contains(a.message, "metrics source recovered after 2h0m0s") || !strings.Contains(a.effect, "the proposal follows on the next pass") {
				t.Errorf("%s, %s: kind %d to %d effect %q\n%s", via, name, a.kind, a.to, a.effect, a.message)
			}
		}
	}
	// A rollback through a pull request is proposed at once.
	rbSrc := strings.Replace(strings.Replace(src, "weight: 0", "weight: 5", 1), "rollback:\n", "rollback:\n  via: pull-request\n", 1)
	spec, ps := rollouts.Parse("s.yaml", []byte(rbSrc))
	if spec == nil {
		t.Fatal(ps)
	}
	doc := &rollouts.Document{Path: "rollouts/s.yaml", Source: []byte(rbSrc), Spec: spec}
	rollback := policy.Decision{Rollout: "s", Action: policy.Rollback, Current: policy.Step{Weight: 5},
		Metrics: []policy.RuleResult{{Name: "error_rate", Verdict: policy.Fail, Reason: "too many"}}}
	a, err := planChange(planInput{Doc: doc, Decision: rollback, Now: now, MetricsErrors: 0, FailingSince: &time.Time{}, Bot: DefaultBot})
	if err != nil || a.kind != actPropose {
		t.Errorf("rollback via pull-request after an outage: kind %d (%v), want a proposal now", a.kind, err)
	}
}
