package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/rollouts"
)

// Review is one review of a proposal, as the forge lists it.
type Review struct {
	Login string
	// State is APPROVED, CHANGES_REQUESTED, COMMENTED or DISMISSED.
	State string
	// CommitID is the head the review was given on.
	CommitID string
}

// ApprovalReader is a Forge that can tell who approved a proposal, for promotion.approvals. Every
// method is read-only and idempotent; an error leaves the proposal unmerged.
type ApprovalReader interface {
	// Reviews lists the reviews of proposal number, oldest first.
	Reviews(ctx context.Context, number int) ([]Review, error)
	// ApprovalKey returns the Rollout-Approval-Key trailer of the bot's commit sha, "" when sha is not a
	// commit of the bot or has none.
	ApprovalKey(ctx context.Context, sha string) (string, error)
	// Permission returns the repository permission of login: admin, write, read or none.
	Permission(ctx context.Context, login string) (string, error)
	// TeamMember reports whether login is an active member of org/team.
	TeamMember(ctx context.Context, org, team, login string) (bool, error)
}

// TrailerApprovalKey is the trailer of a proposal's commit that names what an approval of it approves:
// the weight it moves to and the canary's fingerprint. An approval given on an earlier head of the
// proposal still counts when that head carries the same key (the bot only refreshed the evidence or
// moved the branch onto a newer default branch).
const TrailerApprovalKey = "Rollout-Approval-Key"

// ApprovalKey is the approval key of a proposal that moves to weight `to` with canary fingerprint fp.
func ApprovalKey(to int, fp string) string { return fmt.Sprintf("%d%% %s", to, fp) }

// ApprovalState is where a proposal stands against promotion.approvals.
type ApprovalState struct {
	Have, Need int
	// By are the logins whose approvals count, sorted.
	By []string
	// Unread says why the approvals could not be read ("" when they were): then none count.
	Unread string
}

// Met reports whether the proposal has the approvals it needs.
func (a *ApprovalState) Met() bool { return a == nil || (a.Unread == "" && a.Have >= a.Need) }

// String words the state for an effect: "approvals 1 of 2", or why they could not be read.
func (a *ApprovalState) String() string {
	if a.Unread != "" {
		return "the approvals could not be read: " + a.Unread
	}
	return fmt.Sprintf("approvals %d of %d", min(a.Have, a.Need), a.Need)
}

// Line words the state for the proposal's body.
func (a *ApprovalState) Line(rule *rollouts.Approvals) string {
	from := "people with write permission"
	if len(rule.From) > 0 {
		from = strings.Join(rule.From, ", ")
	}
	by := ""
	if len(a.By) > 0 {
		by = " (" + strings.Join(a.By, ", ") + ")"
	}
	s := fmt.Sprintf("**Approvals: %d of %d**%s. The bot merges this pull request only once %d approving reviews from %s are on its current head.",
		min(a.Have, a.Need), a.Need, by, a.Need, Inline(from))
	if a.Unread != "" {
		s += " The reviews could not be read on this pass (" + Inline(a.Unread) + "), so none count yet."
	}
	return s
}

// countApprovals counts the approvals of open proposal p that rule accepts for the change with approval
// key want: each reviewer's latest approving review (a later request for changes or a dismissal
// withdraws it), given on a commit of the bot that carries want (the proposal's head, or an earlier
// head when the bot only refreshed the evidence or moved the branch, the weight and the canary
// unchanged), from someone with write permission who is one of rule.From (a login, or a member of an
// org/team) when From is set. An approval of a human's push never counts: the bot does not merge what
// it did not write. The bot's own reviews never count.
func countApprovals(ctx context.Context, r ApprovalReader, p Proposal, rule *rollouts.Approvals, bot, want string) ApprovalState {
	st := ApprovalState{Need: rule.Count}
	unread := func(err error) ApprovalState { return ApprovalState{Need: rule.Count, Unread: err.Error()} }
	reviews, err := r.Reviews(ctx, p.Number)
	if err != nil {
		return unread(err)
	}
	approved := map[string]string{} // login → commit
	var order []string
	for _, rv := range reviews {
		login := strings.ToLower(rv.Login)
		switch strings.ToUpper(rv.State) {
		case "APPROVED":
			if _, ok := approved[login]; !ok {
				order = append(order, login)
			}
			approved[login] = rv.CommitID
		case "CHANGES_REQUESTED", "DISMISSED":
			delete(approved, login)
		}
	}
	keys := map[string]string{}
	for _, login := range order {
		commit, ok := approved[login]
		if !ok || strings.EqualFold(login, bot) || strings.HasSuffix(login, "[bot]") {
			continue
		}
		k, seen := keys[commit]
		if !seen {
			if k, err = r.ApprovalKey(ctx, commit); err != nil {
				return unread(err)
			}
			keys[commit] = k
		}
		if k == "" || k != want {
			continue // given on another weight or canary, or on a human's push
		}
		perm, err := r.Permission(ctx, login)
		if err != nil {
			return unread(err)
		}
		if perm != "admin" && perm != "write" {
			continue
		}
		listed, err := approverListed(ctx, r, rule.From, login)
		if err != nil {
			return unread(err)
		}
		if listed {
			st.By = append(st.By, login)
		}
	}
	slices.Sort(st.By)
	st.Have = len(st.By)
	return st
}

// approverListed reports whether login is one of from: the login itself, or a member of an org/team.
func approverListed(ctx context.Context, r ApprovalReader, from []string, login string) (bool, error) {
	if len(from) == 0 {
		return true, nil
	}
	for _, who := range from {
		org, team, isTeam := strings.Cut(who, "/")
		if !isTeam {
			if strings.EqualFold(strings.TrimPrefix(who, "@"), login) {
				return true, nil
			}
			continue
		}
		member, err := r.TeamMember(ctx, strings.TrimPrefix(org, "@"), team, login)
		if err != nil {
			return false, err
		}
		if member {
			return true, nil
		}
	}
	return false, nil
}
