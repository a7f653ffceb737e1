package rollouts

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// A status time in the future, by any amount (a second, the four minutes once tolerated), is an error
// that names clock skew, at the value's position; a time in the past, or now, is fine.
func TestCheckClock(t *testing.T) {
	now := time.Date(2026, 4, 17, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, status string
		want         string // "" for no problem
	}{
		{"past", "{phase: Progressing, stage: 0, stageStartedAt: 2026-04-16T12:00:00Z}", ""},
		{"just now", "{phase: Progressing, stage: 0, stageStartedAt: 2026-04-17T12:00:00Z}", ""},
		{"four minutes ahead", "{phase: Progressing, stage: 0, stageStartedAt: 2026-04-17T12:04:00Z}",
			"r.yaml:6:56: status.stageStartedAt: 2026-04-17T12:04:00Z is 4m0s in the future (now is 2026-04-17T12:00:00Z): clock skew"},
		{"a second ahead", "{phase: Progressing, stage: 0, stageStartedAt: 2026-04-17T12:00:01Z}", "is 1s in the future"},
		{"no time", "{phase: Progressing, stage: 0}", ""},
		{"future start", "{phase: Progressing, stage: 0, stageStartedAt: 2026-05-24T09:00:00Z}",
			"r.yaml:6:56: status.stageStartedAt: 2026-05-24T09:00:00Z is 885h0m0s in the future (now is 2026-04-17T12:00:00Z): clock skew"},
		{"future start, other zone", "{phase: Progressing, stage: 0, stageStartedAt: '2026-04-17T14:00:00+01:00'}", "is 1h0m0s in the future"},
		{"future promotion", "{phase: Completed, stage: 0, promotedAt: 2026-04-18T00:00:00Z}", "r.yaml:6:50: status.promotedAt: 2026-04-18T00:00:00Z is 12h0m0s in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"rollouts/r.yaml": {Data: []byte(minimal + "status: " + tt.status + "\n")}}
			set, err := Load(fsys, "rollouts")
			if err != nil || len(set.Problems) > 0 || len(set.Documents) != 1 {
				t.Fatalf("load: %v %v", err, set.Problems)
			}
			problems := CheckClock(set, now)
			if len(set.Documents) != 1 {
				t.Error("CheckClock dropped a rollout")
			}
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("unexpected problems: %v", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(strings.Replace(problems[0].Error(), "rollouts/", "", 1), tt.want)):
				t.Errorf("got %v, want one problem containing %q", problems, tt.want)
			}
		})
	}
}
