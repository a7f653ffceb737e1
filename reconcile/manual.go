package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// Operation is a change a person asks for by hand: `rollout rollback`, `pause`, `resume`, and the
// pull request's `/rollout promote` and `/rollout retry`.
type Operation string

// The manual operations.
const (
	OpRollback Operation = "rollback"
	OpPause    Operation = "pause"
	OpResume   Operation = "resume"
	// OpPromote moves a progressing rollout to its next stage now (or, at the last stage, makes the
	// canary the stable), as a commit, skipping the evidence rule: an override, recorded in the
	// commit's Rollout-Override trailer.
	OpPromote Operation = "promote"
	// OpRetry starts a rolled-back rollout again at stage 0 with the same canary.
	OpRetry Operation = "retry"
)

// ErrUnknownRollout is returned for a rollout name that no spec on the default branch has.
var ErrUnknownRollout = errors.New("no such rollout")

// ErrSpecInvalid is returned for an operation on a rollout whose spec file fails to load: nothing
// can be committed to it until the file is fixed.
var ErrSpecInvalid = errors.New("its spec does not load")

// ErrNotApplicable is returned when the rollout is not in a phase the operation applies to.
var ErrNotApplicable = errors.New("operation does not apply")

// Operate applies a manual operation to one rollout as one commit on the default branch, deciding again
// on a fresh snapshot when the push is rejected. The commit names Loop.Actor in its Rollout-Actor
// trailer, so that history shows who acted although the bot made the commit. A manual rollback closes the open proposal and notifies
// like an automatic one, and a pause closes an open advance proposal; a failure after the commit landed that the next pass repairs (a notification
// left pending, a proposal left open) wraps ErrDeferred. Pause keeps the traffic as it is; resume restarts the stage's window, since the
// paused period's metrics do not count.
func (l *Loop) Operate(ctx context.Context, name string, op Operation, reason string) (Result, error) {
	for attempt := 0; ; attempt++ {
		t := &tick{}
		if err := l.refresh(ctx, t); err != nil {
			return Result{Rollout: name}, err
		}
		if (op == OpRollback || op == OpPause) && l.Forge != nil {
			// A forge that fails to list never blocks a rollback or a pause: the commit lands, the pass
			// reports the proposal it could not close, and the next pass closes it.
			ps, err := l.Forge.Proposals(ctx)
			if err != nil {
				t.propErr = fmt.Errorf("list proposals: %w", err)
			}
			t.proposals = ps
		}
		doc := t.set.Lookup(name)
		if doc == nil {
			return Result{Rollout: name}, unknownRollout(t.set, name, op, t.snap.Branch)
		}
		var prop *Proposal
		if p, ok := t.proposals[name]; ok {
			prop = &p
		}
		act, err := planOperation(doc.Spec, op, reason, prop, l.now())
		res := Result{Rollout: name, File: doc.Path, Decision: policy.Action(op), From: doc.Spec.Traffic.Weight, To: act.to, Effect: act.effect}
		if err != nil {
			return res, err
		}
		if l.Actor != "" {
			act.message = withTrailer(act.message, TrailerActor, l.Actor)
			for i := range act.notices {
				act.notices[i].Reasons = append(slices.Clone(act.notices[i].Reasons), "by "+l.Actor)
			}
		}
		if op == OpPromote {
			act.message = withTrailer(act.message, TrailerOverride, overrideText(reason))
		}
		res, err = l.commitDefault(ctx, t, doc, act, prop, res)
		// A commit that landed is never decided again: what failed after it is reported, not retried
		// into "does not apply".
		if errors.Is(err, ErrStale) && res.Commit == "" && attempt < 3*l.maxRetries() {
			continue
		}
		return res, err
	}
}

// unknownRollout is the error of an operation on a name no loaded spec has. A rollout whose spec file
// fails to load is not unknown: its errors are what to fix before anything can be committed. Otherwise
// the name is most likely a typo, and a spec that failed to load is named only as a possible home.
func unknownRollout(set *rollouts.Set, name string, op Operation, branch string) error {
	if f, ok := FailedSpecOf(set, name); ok {
		return fmt.Errorf("%s %s: %w: fix %s on %s and run again; nothing was committed:\n%v", op, name, ErrSpecInvalid, f.File, branch, f.Err())
	}
	if near := set.Nearest(name); near != "" {
		return fmt.Errorf("%w %q on %s (did you mean %q?)", ErrUnknownRollout, name, branch, near)
	}
	err := fmt.Errorf("%w %q on %s", ErrUnknownRollout, name, branch)
	if failed := FailedSpecs(set); len(failed) > 0 {
		files := make([]string, len(failed))
		for i, f := range failed {
			files[i] = f.File
		}
		err = fmt.Errorf("%w; these spec files fail to load, and one of them may hold it: %s", err, strings.Join(files, ", "))
	}
	return err
}

// planOperation plans the commit of a manual operation.
func planOperation(spec *rollouts.Spec, op Operation, reason string, prop *Proposal, now time.Time) (action, error) {
	st := rollouts.Status{Phase: rollouts.Pending}
	if spec.Status != nil {
		st = *spec.Status
	}
	from := spec.Traffic.Weight
	switch op {
	case OpRollback:
		if spec.Canary == nil || st.Phase == rollouts.RolledBack {
			return action{to: from}, fmt.Errorf("rollback %s: %w: it is %s", spec.Name, ErrNotApplicable, phaseOf(spec, st))
		}
		d := policy.Decision{Rollout: spec.Name, Action: policy.Rollback, Current: policy.Step{Stage: st.Stage, Weight: from, Shadow: spec.Traffic.Shadow},
			Reasons: []string{"by hand: " + reason}}
		if spec.Status == nil {
			// A rollback before the start still records the canary it stopped.
			st.Canary, st.Files = rollouts.CanaryFingerprint(spec), rollouts.CanaryFiles(spec)
		}
		spec = withStatus(spec, st)
		spec.Rollback.Via = "commit" // by hand is always a commit: the person running it is the review
		return planChange(planInput{Doc: &rollouts.Document{Spec: spec}, Decision: d, Proposal: prop, Now: now, MetricsErrors: -1})
	case OpPause:
		if spec.Canary == nil || st.Phase != rollouts.Progressing {
			return action{to: from}, fmt.Errorf("pause %s: %w: it is %s, not progressing", spec.Name, ErrNotApplicable, phaseOf(spec, st))
		}
		st.Phase = rollouts.Paused
		st.Message = "paused by hand"
		if reason != "" {
			st.Message += ": " + reason
		}
		act := action{kind: actCommit, to: from, effect: "commit the pause on the default branch", change: rollouts.Change{Status: &st},
			message: commitMessage(spec.Name, "pause", nonEmpty(reason), policy.Action(OpPause)),
			notices: []Event{{Rollout: spec.Name, Event: rollouts.EventPaused, Decision: string(OpPause), From: from, To: from, Reasons: nonEmpty(reason)}}}
		if prop != nil && prop.State == ProposalOpen && !isRollbackProposal(prop.Title) {
			act.closeComment = strings.Replace(pausedComment(st.Message), "was paused (", "was paused in {commit} (", 1)
		}
		return act, nil
	case OpResume:
		if st.Phase != rollouts.Paused {
			return action{to: from}, fmt.Errorf("resume %s: %w: it is %s, not paused", spec.Name, ErrNotApplicable, phaseOf(spec, st))
		}
		st.Phase = rollouts.Progressing
		st.Message = ""
		st.StageStartedAt = now
		st.StuckSince = time.Time{} // the stage's window, and its maxDuration, start again
		return action{kind: actCommit, to: from, effect: "commit the resume on the default branch", change: rollouts.Change{Status: &st},
			message: commitMessage(spec.Name, "resume", append(nonEmpty(reason), "the stage's window starts again now"), policy.Action(OpResume)),
			notices: []Event{{Rollout: spec.Name, Event: rollouts.EventResumed, Decision: string(OpResume), From: from, To: from, Reasons: nonEmpty(reason)}}}, nil
	case OpPromote:
		return planPromote(spec, st, reason, prop, now)
	case OpRetry:
		if spec.Canary == nil || st.Phase != rollouts.RolledBack {
			return action{to: from}, fmt.Errorf("retry %s: %w: it is %s, not rolled back", spec.Name, ErrNotApplicable, phaseOf(spec, st))
		}
		if _, changed := rollouts.CanaryChanged(spec); changed {
			return action{to: from}, fmt.Errorf("retry %s: %w: the canary changed since the rollback, so the next reconcile starts it anyway", spec.Name, ErrNotApplicable)
		}
		s := spec.Stages[0]
		d := policy.Decision{Rollout: spec.Name, Action: policy.Start, Current: policy.Step{Stage: st.Stage, Weight: from, Shadow: spec.Traffic.Shadow},
			Next: &policy.Step{Stage: 0, Weight: s.Weight, Shadow: s.Shadow}, Reasons: append([]string{"retry by hand: the same canary starts again at stage 0"}, nonEmpty(reason)...)}
		act, err := planChange(planInput{Doc: &rollouts.Document{Spec: spec}, Decision: d, Proposal: prop, Now: now, MetricsErrors: -1})
		if err != nil {
			return act, err
		}
		act.effect = "commit the retry at stage 0 on the default branch"
		act.message = strings.Replace(act.message, "): start stage 0", "): retry at stage 0", 1)
		return act, nil
	}
	return action{}, fmt.Errorf("unknown operation %q", op)
}

// planPromote plans `/rollout promote`: the next stage (or the promotion, from the last stage) as one
// commit on the default branch, whatever the evidence says, closing the open proposal it replaces.
func planPromote(spec *rollouts.Spec, st rollouts.Status, reason string, prop *Proposal, now time.Time) (action, error) {
	from := spec.Traffic.Weight
	if spec.Canary == nil || st.Phase != rollouts.Progressing || spec.Status == nil {
		return action{to: from}, fmt.Errorf("promote %s: %w: it is %s, not progressing", spec.Name, ErrNotApplicable, phaseOf(spec, st))
	}
	if _, changed := rollouts.CanaryChanged(spec); changed {
		return action{to: from}, fmt.Errorf("promote %s: %w: the canary changed, so the next reconcile starts it over at stage 0", spec.Name, ErrNotApplicable)
	}
	d := policy.Decision{Rollout: spec.Name, Action: policy.Promote, Current: policy.Step{Stage: st.Stage, Weight: from, Shadow: spec.Traffic.Shadow},
		Reasons: []string{overrideText(reason)}}
	if next := st.Stage + 1; next < len(spec.Stages) {
		s := spec.Stages[next]
		d.Action, d.Next = policy.Advance, &policy.Step{Stage: next, Weight: s.Weight, Shadow: s.Shadow}
	}
	cp := *spec
	cp.Promotion.Via = "commit" // by hand is always a commit: the person asking is the review
	act, err := planChange(planInput{Doc: &rollouts.Document{Spec: &cp}, Decision: d, Proposal: prop, Now: now, MetricsErrors: -1})
	if err != nil {
		return act, err
	}
	if act.closeComment != "" {
		act.closeComment = "Promoted by hand in {commit}, skipping the evidence rule (an override), so this proposal no longer applies."
	}
	act.effect = "commit the override on the default branch"
	act.notices = append(act.notices, Event{Rollout: spec.Name, Event: rollouts.EventOverride, Decision: string(OpPromote), From: from, To: act.to,
		Reasons: []string{overrideText(reason)}})
	return act, nil
}

// overrideText is the Rollout-Override trailer of a promotion by hand.
func overrideText(reason string) string {
	if reason == "" {
		return "promote: the evidence rule was skipped by hand"
	}
	return "promote: the evidence rule was skipped by hand: " + reason
}

func withStatus(spec *rollouts.Spec, st rollouts.Status) *rollouts.Spec {
	cp := *spec
	cp.Status = &st
	return &cp
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
