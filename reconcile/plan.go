package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// actionKind is the kind of write a decision calls for.
type actionKind int

const (
	actNone    actionKind = iota
	actCommit             // one commit on the default branch (then close the open proposal, notify)
	actPropose            // one commit on rollout/<name>, then open or update the proposal
	actRefresh            // update the open proposal's body only
	actClose              // close the open proposal with a comment
	actNotify             // deliver a pending notification, then record it in git
)

// action is the change planned for one rollout: pure data, computed by planChange from the spec, the
// decision and the rollout's proposal, and carried out by the loop.
type action struct {
	kind   actionKind
	to     int
	effect string
	change rollouts.Change
	// message is the commit message, trailers included.
	message  string
	proposal ProposalRequest
	// closeComment closes the open proposal after the commit; {commit} is replaced by its hash.
	closeComment string
	// event is delivered after the commit (actCommit) or before it (actNotify).
	event *Event
	// owed, for actNotify, lists the targets the event still owes (nil: every target).
	owed       []string
	needsForge bool
	// autoMerge asks the forge again to merge the open proposal, which is up to date
	// (promotion.via: auto-merge).
	autoMerge bool
	// stopAutoMerge, when not "", says why the open proposal may no longer merge by itself: the loop
	// turns off the auto-merge the bot turned on before anything else of the action.
	stopAutoMerge string
	// alert is sent, best effort, once the commit lands (the start of a metrics outage).
	alert *Event
	// notices are the lifecycle events the commit makes (start, started, promoted, paused, resumed,
	// override), delivered best effort once it lands to the targets that chose them.
	notices []Event
	// warnings are what the rollout's owner should fix, though nothing failed.
	warnings []string
}

// planInput is everything planChange reads.
type planInput struct {
	Doc      *rollouts.Document
	Decision policy.Decision
	// Proposal is the rollout's open proposal, or its most recent closed or merged one; nil for none.
	Proposal *Proposal
	Now      time.Time
	// MetricsErrors is the consecutive-failure count to record in status (-1: leave it as it is).
	MetricsErrors int
	// FailingSince is the start of the source's failures to record (nil: leave it; zero: clear it).
	FailingSince *time.Time
	// Alert goes out with the commit that records FailingSince.
	Alert *Event
	// MismatchSince is the start of a sample-ratio mismatch to record (nil: leave it; zero: clear it).
	MismatchSince *time.Time
	// MismatchAlert goes out with the commit that records MismatchSince.
	MismatchAlert *Event
	// NotifyPending is the rollback commit whose notification a bot commit recorded as pending
	// (its Rollout-Notification trailer), "" for none; NotifyMarkUnverified is set when status.message
	// carries a pending mark that no such commit backs.
	NotifyPending        string
	NotifyMarkUnverified bool
	// NotifyOwed lists the targets the pending notification still owes (its
	// Rollout-Notification-Targets trailer); nil for every target.
	NotifyOwed []string
	Bot        string
	// ReportURL is the published report page the proposal links its charts to; "" for none.
	ReportURL string
	// Approvals is where the open proposal stands against promotion.approvals; nil when the spec asks
	// for none or no proposal is open (then none count).
	Approvals *ApprovalState
}

// BranchFor is the bot branch of a rollout.
func BranchFor(rollout string) string { return "rollout/" + rollout }

// Title is the title of the proposal that moves a rollout from one weight to another.
func Title(rollout string, from, to int) string {
	return fmt.Sprintf("rollout(%s): %d%% → %d%%", rollout, from, to)
}

// PromoteTitle is the title of the proposal that promotes a rollout's canary to stable.
func PromoteTitle(rollout string) string {
	return fmt.Sprintf("rollout(%s): promote the canary to stable", rollout)
}

// planChange turns a decision into the change it calls for. It is pure: the same input plans the same
// change, and a state that is already what the decision wants plans nothing. A decision that writes
// nothing to the default branch still records there the end of a metrics outage or of a sample-ratio
// mismatch, so that status stops saying the source fails: first, when an advance would only propose
// (whose evidence changes every pass, so that a refresh would put the record off for good); the
// proposal follows on the next pass. A rollback is never put off.
func planChange(in planInput) (action, error) {
	act, err := planDecision(in)
	if err != nil || in.Decision.Action == policy.Hold || in.Doc.Spec.Status == nil {
		return act, err
	}
	proposes := act.kind == actPropose || act.kind == actRefresh
	if act.kind != actNone && !(proposes && (in.Decision.Action == policy.Advance || in.Decision.Action == policy.Promote)) {
		return act, nil
	}
	st := *in.Doc.Spec.Status
	if in.FailingSince != nil && in.FailingSince.IsZero() && (!st.MetricsFailingSince.IsZero() || st.MetricsErrors > 0) ||
		in.MismatchSince != nil && in.MismatchSince.IsZero() && !st.SampleRatioMismatchSince.IsZero() {
		rec, err := planHousekeeping(in, st)
		if err == nil && rec.kind == actCommit {
			rec.to, rec.stopAutoMerge = act.to, act.stopAutoMerge
			if proposes {
				rec.effect += "; the proposal follows on the next pass"
			}
			return rec, nil
		}
	}
	return act, nil
}

// planDecision plans the change of the decision itself.
func planDecision(in planInput) (action, error) {
	spec, d := in.Doc.Spec, in.Decision
	name := spec.Name
	fp, files := rollouts.CanaryFingerprint(spec), rollouts.CanaryFiles(spec)
	from := d.Current.Weight
	open := in.Proposal != nil && in.Proposal.State == ProposalOpen
	var st rollouts.Status
	if spec.Status != nil {
		st = *spec.Status
	}
	switch d.Action {
	case policy.Start:
		if d.Next == nil {
			return action{}, fmt.Errorf("start decision without a next stage")
		}
		next := *d.Next
		status := rollouts.Status{Phase: rollouts.Progressing, Stage: next.Stage, StageStartedAt: in.Now, Canary: fp, Files: files}
		subject := fmt.Sprintf("start stage %d at %s", next.Stage, trafficText(next))
		if why, changed := rollouts.CanaryChanged(spec); changed {
			// A restart says why in its subject: which file (or the block) changed.
			subject = fmt.Sprintf("restart at stage %d (%s): %s", next.Stage, trafficText(next), why)
		}
		event := rollouts.EventStart
		if _, changed := rollouts.CanaryChanged(spec); spec.Status != nil && spec.Status.Phase == rollouts.Progressing && !changed {
			event = rollouts.EventStarted // an advance that landed: its window starts now
		}
		act := action{kind: actCommit, to: next.Weight, effect: "commit the start of stage " + fmt.Sprint(next.Stage),
			change:  trafficChange(spec, next.Weight, next.Shadow, &status),
			message: commitMessage(name, subject, d.Reasons, policy.Start),
			notices: []Event{{Rollout: name, Event: event, Decision: string(policy.Start), From: from, To: next.Weight, Reasons: d.Reasons}}}
		if open {
			act.closeComment = "The rollout started over at stage 0 in {commit}, so this proposal no longer applies."
		}
		return act, nil

	case policy.Advance, policy.Promote:
		if d.Next == nil && d.Action == policy.Advance {
			return action{}, fmt.Errorf("advance decision without a next stage")
		}
		var change rollouts.Change
		var status rollouts.Status
		to := 100
		if d.Action == policy.Advance {
			next := *d.Next
			to = next.Weight
			status = rollouts.Status{Phase: rollouts.Progressing, Stage: next.Stage, Canary: fp, Files: files}
			change = trafficChange(spec, next.Weight, next.Shadow, &status)
		} else {
			status = rollouts.Status{Phase: rollouts.Completed, Stage: d.Current.Stage, Canary: fp, Files: files}
			change = trafficChange(spec, 0, 0, &status)
			change.Promote = true
		}
		title := Title(name, from, to)
		if d.Action == policy.Promote && from == to {
			// "100% → 100%" would say nothing: the promotion makes the canary the stable.
			title = PromoteTitle(name)
		}
		if spec.Promotion.Via == "commit" {
			// No review: the stage's window starts now, as the commit lands.
			if d.Action == policy.Advance {
				status.StageStartedAt = in.Now
			} else {
				status.PromotedAt = in.Now
			}
			event := rollouts.EventStarted
			if d.Action == policy.Promote {
				event = rollouts.EventPromoted
			}
			act := action{kind: actCommit, to: to, effect: "commit " + string(d.Action) + " on the default branch",
				change: change, message: commitMessage(name, strings.TrimPrefix(title, "rollout("+name+"): "), d.Reasons, d.Action),
				notices: []Event{{Rollout: name, Event: event, Decision: string(d.Action), From: from, To: to, Reasons: d.Reasons}}}
			if open {
				act.closeComment = "Applied directly in {commit} (promotion.via: commit)."
			}
			return act, nil
		}
		return planProposal(in, title, to, change), nil

	case policy.Rollback:
		status := st
		status.Phase = rollouts.RolledBack
		status.Stage = d.Current.Stage
		if status.Canary == "" {
			status.Canary, status.Files = fp, files
		}
		status.MetricsErrors, status.MetricsFailingSince = 0, time.Time{}
		// The rollback ends a sample-ratio mismatch episode too: nothing is compared any more.
		status.SampleRatioMismatchSince = time.Time{}
		reasons := failingReasons(d)
		status.Message = fmt.Sprintf("rollback %d%% → 0%%: %s", from, strings.Join(reasons, "; "))
		change := trafficChange(spec, 0, 0, &status)
		subject := fmt.Sprintf("rollback %d%% → 0%%", from)
		if spec.Rollback.Via == "pull-request" {
			act := planProposal(in, fmt.Sprintf("rollout(%s): %s", name, subject), 0, change)
			if act.kind == actPropose {
				// The rollback waits for a human: tell them, once, when it is proposed.
				act.event = &Event{Rollout: name, Decision: string(policy.Rollback), From: from, To: 0, Reasons: reasons, Next: RetryAdvice(in.Doc.Path)}
			}
			return act, nil
		}
		act := action{kind: actCommit, to: 0, effect: "commit the rollback on the default branch", change: change,
			message: commitMessage(name, subject, reasons, policy.Rollback),
			event:   &Event{Rollout: name, Decision: string(policy.Rollback), From: from, To: 0, Reasons: reasons, Next: RetryAdvice(in.Doc.Path)}}
		if open {
			act.closeComment = "Rolled back in {commit}: " + Inline(strings.Join(reasons, "; "))
		}
		return act, nil

	case policy.Hold:
		return planHousekeeping(in, st)
	}
	return action{}, fmt.Errorf("unknown decision %q", d.Action)
}

// planHousekeeping is what a hold still writes: a pending notification, a stale proposal, the metrics
// failure count, the landing time of a promotion, an expired `previous`, the evidence of an open proposal.
// Each one is written once; the next tick finds nothing left to do.
func planHousekeeping(in planInput, st rollouts.Status) (action, error) {
	spec, d := in.Doc.Spec, in.Decision
	name := spec.Name
	from := d.Current.Weight
	open := in.Proposal != nil && in.Proposal.State == ProposalOpen
	none := action{kind: actNone, to: from, effect: "nothing to do"}
	if spec.Status == nil {
		if open {
			none.effect = "nothing to do; proposal open"
		}
		return none, nil
	}
	if st.Phase == rollouts.RolledBack && in.NotifyPending != "" {
		msg, _ := withoutNotifyPending(st.Message)
		clean := st
		clean.Message = msg
		reasons := []string{msg}
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			reasons = strings.Split(rest, "; ")
		}
		var was int
		fmt.Sscanf(msg, "rollback %d%%", &was)
		// The commit message is written once the delivery's outcome is known (see Loop.deliverPending).
		return action{kind: actNotify, to: from, effect: "deliver the pending rollback notification",
			change: rollouts.Change{Status: &clean}, owed: in.NotifyOwed,
			event: &Event{Rollout: name, Decision: string(policy.Rollback), From: was, To: 0, Reasons: reasons, Commit: in.NotifyPending, Next: RetryAdvice(in.Doc.Path)}}, nil
	}
	var warnings []string
	if in.NotifyMarkUnverified {
		warnings = append(warnings, "status.message ends with a pending-notification mark that no commit of the bot recorded; it is ignored")
	}
	none.warnings = warnings
	if open && (spec.Canary == nil || st.Phase == rollouts.RolledBack || st.Phase == rollouts.Completed) {
		return action{kind: actClose, to: from, effect: "close the stale proposal", needsForge: true,
			closeComment: fmt.Sprintf("The rollout is %s; this proposal no longer applies.", phaseOf(spec, st))}, nil
	}
	if open && spec.Canary != nil && st.Phase == rollouts.Paused && !isRollbackProposal(in.Proposal.Title) {
		// A pause stops advancing: the proposal's evidence is stale, and merging it would advance.
		return action{kind: actClose, to: from, effect: "close the proposal: the rollout is paused", needsForge: true,
			closeComment: pausedComment(st.Message)}, nil
	}
	if spec.Canary == nil && spec.Status != nil &&
		(st.Phase == rollouts.Progressing || st.Phase == rollouts.Paused || spec.Traffic.Weight != 0 || spec.Traffic.Shadow != 0) {
		// Removing the canary block ends the rollout: the file says so, not only the application.
		status := st
		status.Phase, status.Message, status.MetricsErrors = rollouts.Completed, "ended: the canary block was removed", 0
		status.SampleRatioMismatchSince = time.Time{}
		return action{kind: actCommit, to: 0, effect: "end the rollout: the canary was removed",
			change:  trafficChange(spec, 0, 0, &status),
			message: commitMessage(name, "end: canary removed", []string{"the canary block was removed from the spec"}, policy.Hold)}, nil
	}
	metricsChange := in.MetricsErrors >= 0 && in.MetricsErrors != st.MetricsErrors
	sinceChange := in.FailingSince != nil && !in.FailingSince.Equal(st.MetricsFailingSince)
	mismatchChange := in.MismatchSince != nil && !in.MismatchSince.Equal(st.SampleRatioMismatchSince)
	if metricsChange || sinceChange || mismatchChange {
		status := st
		if in.MetricsErrors >= 0 {
			status.MetricsErrors = in.MetricsErrors
		}
		if in.FailingSince != nil {
			status.MetricsFailingSince = *in.FailingSince
		}
		if in.MismatchSince != nil {
			status.SampleRatioMismatchSince = *in.MismatchSince
		}
		alert, topic := in.Alert, "metrics"
		var subject, effect string
		switch {
		case !metricsChange && !sinceChange && status.SampleRatioMismatchSince.IsZero():
			subject, effect, topic = "sample ratio matches again", "record that the sample ratio matches again", "sample-ratio"
			if !st.SampleRatioMismatchSince.IsZero() {
				subject = fmt.Sprintf("sample ratio matches again after %s", in.Now.Sub(st.SampleRatioMismatchSince).Round(time.Minute))
			}
		case !metricsChange && !sinceChange:
			subject, effect, topic = "sample ratio mismatch", "record when the sample ratio mismatch began", "sample-ratio"
			alert = in.MismatchAlert
		case status.MetricsErrors == 0 && status.MetricsFailingSince.IsZero():
			subject, effect = "metrics source recovered", "record that the metrics source recovered"
			if !st.MetricsFailingSince.IsZero() {
				subject = fmt.Sprintf("metrics source recovered after %s", in.Now.Sub(st.MetricsFailingSince).Round(time.Minute))
			}
		case status.MetricsErrors > 0:
			subject = fmt.Sprintf("record metrics failure %d", status.MetricsErrors)
			effect = subject
		default:
			subject, effect = "metrics source failing", "record when the metrics source started failing"
		}
		act := action{kind: actCommit, to: from, effect: effect, change: rollouts.Change{Status: &status},
			message: bookkeeping(commitMessage(name, subject, d.Reasons, policy.Hold), topic), alert: alert, warnings: warnings}
		if alert == nil && mismatchChange && !status.SampleRatioMismatchSince.IsZero() {
			// The metrics bookkeeping of this tick records the mismatch's start as well: alert with it.
			act.alert = in.MismatchAlert
		}
		if act.alert != nil {
			act.effect += " and alert"
		}
		return act, nil
	}
	if d.Stuck && st.Phase == rollouts.Progressing && st.StuckSince.IsZero() {
		status := st
		status.StuckSince = in.Now
		return action{kind: actCommit, to: from, effect: "record that the stage is held past its maxDuration", change: rollouts.Change{Status: &status},
			message:  bookkeeping(commitMessage(name, "held past maxDuration", d.Reasons, policy.Hold), "stuck"),
			warnings: warnings,
			notices:  []Event{{Rollout: name, Event: rollouts.EventStuck, Decision: string(policy.Hold), From: from, To: from, Reasons: d.Reasons}}}, nil
	}
	if st.Phase == rollouts.Completed && st.PromotedAt.IsZero() && spec.Previous != nil {
		status := st
		status.PromotedAt = in.Now
		return action{kind: actCommit, to: from, effect: "record when the promotion landed", change: rollouts.Change{Status: &status},
			message:  bookkeeping(commitMessage(name, "promotion landed", []string{"the promotion is on the default branch; previous is kept for rollback.keepPrevious"}, policy.Hold), "promotion-landed"),
			warnings: warnings,
			notices: []Event{{Rollout: name, Event: rollouts.EventPromoted, Decision: string(policy.Promote), From: from, To: from,
				Reasons: []string{"the canary is the stable now: " + spec.Stable.Model}}}}, nil
	}
	if spec.Previous != nil && !st.PromotedAt.IsZero() && in.Now.Sub(st.PromotedAt) >= time.Duration(spec.Rollback.KeepPrevious) {
		return action{kind: actCommit, to: from, effect: "drop previous", change: rollouts.Change{DropPrevious: true},
			message: bookkeeping(commitMessage(name, "drop previous", []string{fmt.Sprintf("promoted %s ago; rollback.keepPrevious is %s",
				in.Now.Sub(st.PromotedAt).Round(time.Minute), spec.Rollback.KeepPrevious)}, policy.Hold), "drop-previous"), warnings: warnings}, nil
	}
	if open {
		// Keep the open proposal's title and target: only the evidence changes. A hold is no decision to
		// merge: the bot's auto-merge of an advance goes off until the evidence passes again (a
		// rollback's proposal keeps it).
		stop := stopAutoMerge(in.Proposal, in.Proposal.Title, "the decision is "+string(d.Action))
		body := EvidenceBody(spec, d, targetOf(in.Proposal.Body), in.Bot, in.ReportURL)
		if sameEvidence(in.Proposal.Body, body) {
			none.effect = "nothing to do; proposal evidence unchanged" + stoppingEffect(stop)
			none.stopAutoMerge, none.needsForge = stop, stop != ""
			return none, nil
		}
		req := proposalRequest(spec, in.Proposal.Title, body)
		req.AutoMerge = req.AutoMerge && isRollbackProposal(in.Proposal.Title)
		return action{kind: actRefresh, to: from, effect: "refresh the proposal's evidence" + stoppingEffect(stop), proposal: req, needsForge: true,
			warnings: warnings, stopAutoMerge: stop}, nil
	}
	return none, nil
}

// stopAutoMerge returns why for an open proposal the forge is set to merge by itself, else "". A
// proposal titled as a rollback (title, what it is or is becoming) keeps its auto-merge.
func stopAutoMerge(p *Proposal, title, why string) string {
	if p == nil || p.State != ProposalOpen || !p.AutoMerging || isRollbackProposal(title) {
		return ""
	}
	return why
}

// stoppingEffect words stopAutoMerge's reason for an action's effect.
func stoppingEffect(why string) string {
	if why == "" {
		return ""
	}
	return "; turn off its auto-merge (" + why + ")"
}

// isRollbackProposal reports whether a proposal's title is that of a rollback (rollback.via:
// pull-request), which a pause must leave open.
func isRollbackProposal(title string) bool {
	_, rest, _ := strings.Cut(title, "): ")
	return strings.HasPrefix(rest, "rollback ")
}

// pausedComment closes an advance or promotion proposal of a paused rollout.
func pausedComment(message string) string {
	why := "paused"
	if message != "" {
		why = message
	}
	return fmt.Sprintf("The rollout was paused (%s), so this proposal and its evidence no longer apply: a pause stops advancing. "+
		"Rollback rules still apply while it is paused. `rollout resume` starts the stage's window again, and the next stage is proposed anew when its evidence allows.", Inline(why))
}

// bookkeeping adds the trailer that marks msg as the controller's bookkeeping of what, not a decision.
func bookkeeping(msg, what string) string { return withTrailer(msg, TrailerBookkeeping, what) }

// withTrailer appends one trailer to a message that ends with its trailer block.
func withTrailer(msg, key, value string) string {
	return strings.TrimRight(msg, "\n") + "\n" + key + ": " + oneLine(value) + "\n"
}

// planProposal plans the proposal of change: nothing when the open proposal already carries it with the
// same evidence, the evidence alone when only that changed, nothing when a human closed the same
// proposal, and otherwise a push of the bot branch and a proposal.
func planProposal(in planInput, title string, to int, change rollouts.Change) action {
	spec, d := in.Doc.Spec, in.Decision
	target := targetHash(in.Doc.Source, title)
	body := EvidenceBody(spec, d, target, in.Bot, in.ReportURL)
	approvalKey := ApprovalKey(to, rollouts.CanaryFingerprint(spec))
	var approvals *ApprovalState
	if rule := spec.Promotion.Approvals; rule != nil {
		approvals = in.Approvals
		if approvals == nil {
			approvals = &ApprovalState{Need: rule.Count}
		}
		body = approvals.Line(rule) + "\n\n" + body
	}
	req := proposalRequest(spec, title, body)
	p := in.Proposal
	base := action{to: to, proposal: req, needsForge: true}
	if !approvals.Met() {
		// The bot never merges its own proposal without the approvals the spec asks for, nor lets the
		// forge merge it: an approval withdrawn after auto-merge went on turns it off again.
		base.proposal.AutoMerge = false
		base.stopAutoMerge = stopAutoMerge(p, title, approvals.String())
	}
	switch {
	case p != nil && p.State == ProposalOpen && p.Title == title && targetOf(p.Body) == target:
		if sameEvidence(p.Body, body) {
			base.kind, base.effect, base.needsForge = actNone, "proposal up to date", base.stopAutoMerge != ""
			base.autoMerge = base.proposal.AutoMerge && !p.AutoMerging
			base.effect += stoppingEffect(base.stopAutoMerge)
			return base
		}
		base.kind, base.effect = actRefresh, "refresh the proposal's evidence"+stoppingEffect(base.stopAutoMerge)
		return base
	case p != nil && p.State == ProposalClosed && p.Title == title && (targetOf(p.Body) == target || targetOf(p.Body) == ""):
		// The same change from the same spec was turned down. A changed spec on the default branch
		// (a new canary, an edited rule) is a new decision and is proposed again. A body without a target
		// marker was not written by this loop: its title alone decides.
		base.kind, base.effect, base.needsForge = actNone, "proposal was closed without merging; not reopened", false
		return base
	}
	base.kind, base.effect = actPropose, "push "+req.Branch+" and propose it"+stoppingEffect(base.stopAutoMerge)
	base.change = change
	// The commit message carries the whole proposal, so that a forge without pull requests (a plain
	// git remote) reads the proposal back from the branch head.
	base.message = fmt.Sprintf("%s\n\n%s\nRollout: %s\nRollout-Decision: %s\nRollout-Target: %s\n%s: %s\n", title, body, spec.Name, d.Action, target,
		TrailerApprovalKey, approvalKey)
	return base
}

// sameEvidence reports whether a proposal body already shows the evidence of want: everything up to
// the target marker, ignoring what a forge appends after it (trailers, for a plain git remote).
func sameEvidence(have, want string) bool {
	return evidencePart(have) == evidencePart(want)
}

func evidencePart(body string) string {
	if loc := targetRE.FindStringIndex(body); loc != nil {
		body = body[:loc[1]]
	}
	return strings.TrimSpace(body)
}

// trafficChange sets the weight and the shadow share, touching only the values that differ, and the status.
func trafficChange(spec *rollouts.Spec, weight, shadow int, status *rollouts.Status) rollouts.Change {
	ch := rollouts.Change{Status: status}
	if spec.Traffic.Weight != weight {
		ch.Weight = ptr(weight)
	}
	if spec.Traffic.Shadow != shadow {
		ch.Shadow = ptr(shadow)
	}
	return ch
}

func proposalRequest(spec *rollouts.Spec, title, body string) ProposalRequest {
	return ProposalRequest{Rollout: spec.Name, Branch: BranchFor(spec.Name), Title: title, Body: body,
		Labels: spec.Promotion.Labels, Reviewers: spec.Promotion.Reviewers, AutoMerge: spec.Promotion.Via == "auto-merge"}
}

// commitMessage is `rollout(<name>): <subject>`, the reasons as a list, and the trailers.
func commitMessage(rollout, subject string, reasons []string, decision policy.Action) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rollout(%s): %s\n\n", rollout, subject)
	for _, r := range reasons {
		fmt.Fprintf(&b, "- %s\n", oneLine(r))
	}
	if len(reasons) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Rollout: %s\nRollout-Decision: %s\n", rollout, decision)
	return b.String()
}

// failingReasons are the reasons a rollback gives: the failing rules, or the judge's reasons.
func failingReasons(d policy.Decision) []string {
	var out []string
	for _, m := range d.Metrics {
		if m.Verdict == policy.Fail {
			r := m.Name
			if m.Reason != "" {
				r += ": " + oneLine(m.Reason)
			}
			out = append(out, r)
		}
	}
	for _, r := range d.Reasons {
		// The judge's reason for a failed rule is part of that rule's reason, already listed.
		if r = oneLine(r); !slices.ContainsFunc(out, func(o string) bool { return strings.Contains(o, r) }) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		out = []string{"rolled back"}
	}
	return out
}

// notifyPendingMark ends the status message of a rollback whose notification has not been delivered:
// " [notification pending for <rollback commit>]", so that the notification names its commit when it is
// finally sent. It lives in git so that a stateless cron run delivers it too. A mark without a commit
// (" [notification pending]", as written by earlier versions) is still honoured.
var notifyPendingMark = regexp.MustCompile(` \[notification pending(?: for ([0-9a-f]+))?\]$`)

func notifyPending(msg string) bool { return notifyPendingMark.MatchString(msg) }

// withoutNotifyPending returns msg without its pending mark, and the rollback commit the mark names
// ("" when it names none).
func withoutNotifyPending(msg string) (clean, commit string) {
	loc := notifyPendingMark.FindStringSubmatchIndex(msg)
	if loc == nil {
		return msg, ""
	}
	if loc[2] >= 0 {
		commit = msg[loc[2]:loc[3]]
	}
	return msg[:loc[0]], commit
}

// withNotifyPending marks msg as the message of a rollback, made in commit, whose notification is pending.
func withNotifyPending(msg, commit string) string {
	msg, _ = withoutNotifyPending(msg)
	if commit == "" {
		return msg + " [notification pending]"
	}
	return msg + " [notification pending for " + commit + "]"
}

// targetHash names what a proposal proposes: the title and the default-branch file it was made from.
// An open proposal with the same target already carries the change, so it is not pushed again.
func targetHash(source []byte, title string) string {
	h := sha256.New()
	h.Write(source)
	h.Write([]byte{0})
	h.Write([]byte(title))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

var targetRE = regexp.MustCompile(`<!-- rollout-target:([0-9a-f]+) -->|(?m)^Rollout-Target: ([0-9a-f]+)$`)

// targetOf reads the target a proposal body was made for ("" if none).
func targetOf(body string) string {
	m := targetRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1] + m[2]
}

// RetryAdvice says how to try a rolled-back rollout again, with the commands and edits that exist: a new
// canary in its spec file (a model, a prompt, or the prompt file's text: the canary's fingerprint
// changes) starts over at stage 0 on the next pass, as does the same canary once its status block is
// deleted.
func RetryAdvice(file string) string {
	if file == "" {
		file = "its spec"
	}
	return "to try again, fix the canary in " + file + " (its model, its prompt or the prompt file) and commit it, " +
		"or delete its status block to retry the same canary: the next pass starts over at stage 0"
}

func phaseOf(spec *rollouts.Spec, st rollouts.Status) string {
	if spec.Canary == nil && st.Phase != rollouts.RolledBack {
		return "finished"
	}
	if st.Phase == rollouts.RolledBack {
		return "rolled back"
	}
	return strings.ToLower(string(st.Phase))
}

func trafficText(s policy.Step) string {
	if s.Shadow > 0 && s.Weight == 0 {
		return fmt.Sprintf("%d%% shadow", s.Shadow)
	}
	if s.Shadow > 0 {
		return fmt.Sprintf("%d%% (+%d%% shadow)", s.Weight, s.Shadow)
	}
	return fmt.Sprintf("%d%%", s.Weight)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func ptr[T any](v T) *T { return &v }
