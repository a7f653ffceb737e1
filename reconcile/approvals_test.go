package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/rollouts"
)

// fakeReviews is a hand-written ApprovalReader.
type fakeReviews struct {
	reviews []Review
	keys    map[string]string // commit → approval key
	perms   map[string]string
	teams   map[string]bool // org/team/login
	teamErr error
}

var _ ApprovalReader = (*fakeReviews)(nil)

func (f *fakeReviews) Reviews(context.Context, int) ([]Review, error) { return f.reviews, nil }
func (f *fakeReviews) ApprovalKey(_ context.Context, sha string) (string, error) {
	return f.keys[sha], nil
}
func (f *fakeReviews) Permission(_ context.Context, login string) (string, error) {
	if p, ok := f.perms[login]; ok {
		return p, nil
	}
	return "none", nil
}
func (f *fakeReviews) TeamMember(_ context.Context, org, team, login string) (bool, error) {
	return f.teams[org+"/"+team+"/"+login], f.teamErr
}

func TestCountApprovals(t *testing.T) {
	const want = "25% abc"
	base := func() *fakeReviews {
		return &fakeReviews{keys: map[string]string{"h2": want, "h1": want, "h0": "25% old", "human": ""},
			perms: map[string]string{"ann": "write", "ben": "admin", "cy": "read", "di": "write", "rollout-bot[bot]": "admin"},
			teams: map[string]bool{"acme/ml/di": true, "acme/ml/cy": true}}
	}
	for _, tc := range []struct {
		name    string
		reviews []Review
		from    []string
		teamErr error
		want    string // By, joined; "!" prefix: unread
	}{
		{"on the head", []Review{{"ann", "APPROVED", "h2"}, {"ben", "APPROVED", "h2"}}, nil, nil, "ann,ben"},
		{"an earlier head with the same key", []Review{{"ann", "APPROVED", "h1"}}, nil, nil, "ann"},
		{"another canary", []Review{{"ann", "APPROVED", "h0"}}, nil, nil, ""},
		{"a human's push", []Review{{"ann", "APPROVED", "human"}}, nil, nil, ""},
		{"read permission", []Review{{"cy", "APPROVED", "h2"}}, nil, nil, ""},
		{"withdrawn by a request for changes", []Review{{"ann", "APPROVED", "h2"}, {"ann", "CHANGES_REQUESTED", "h2"}}, nil, nil, ""},
		{"dismissed", []Review{{"ann", "APPROVED", "h2"}, {"ann", "DISMISSED", "h2"}}, nil, nil, ""},
		{"a comment keeps it", []Review{{"ann", "APPROVED", "h2"}, {"ann", "COMMENTED", "h2"}}, nil, nil, "ann"},
		{"the bot", []Review{{"rollout-bot[bot]", "APPROVED", "h2"}}, nil, nil, ""},
		{"listed login and team", []Review{{"ann", "APPROVED", "h2"}, {"ben", "APPROVED", "h2"}, {"di", "APPROVED", "h2"}, {"cy", "APPROVED", "h2"}},
			[]string{"ann", "acme/ml"}, nil, "ann,di"},
		{"a team that cannot be read", []Review{{"di", "APPROVED", "h2"}}, []string{"acme/ml"}, errors.New("502"), "!502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			r.reviews, r.teamErr = tc.reviews, tc.teamErr
			st := countApprovals(context.Background(), r, Proposal{Number: 3, Head: "h2"}, &rollouts.Approvals{Count: 2, From: tc.from}, "rollout-bot", want)
			got := strings.Join(st.By, ",")
			if st.Unread != "" {
				got = "!" + st.Unread
			}
			if got != tc.want || (st.Unread == "" && st.Have != len(st.By)) {
				t.Errorf("approvals = %q (%+v), want %q", got, st, tc.want)
			}
			if st.Met() != (st.Unread == "" && st.Have >= 2) {
				t.Errorf("Met = %t for %+v", st.Met(), st)
			}
		})
	}
}
