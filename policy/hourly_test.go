package policy_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/rollouts"
)

// judgeHourly judges spec at each of the hours after start over the JSON Lines records in content, as
// an hourly reconciler would, reading content once for all the hours (jsonl.Source.ReadWindows). It
// returns the first decision that advances or rolls back, with its time, else the last one.
func judgeHourly(t *testing.T, spec *rollouts.Spec, content []byte, start time.Time, hours int) (policy.Decision, time.Time) {
	t.Helper()
	var q policy.Query
	windows := make([]policy.Window, hours)
	for h := range hours {
		q, _ = policy.QueryFor(spec, start.Add(time.Duration(h+1)*time.Hour))
		windows[h] = q.Window
	}
	all, err := (&jsonl.Source{}).ReadWindows(context.Background(), bytes.NewReader(content), q, windows)
	if err != nil {
		t.Fatal(err)
	}
	var d policy.Decision
	var now time.Time
	for h, st := range all {
		now = start.Add(time.Duration(h+1) * time.Hour)
		d = policy.Judge(spec, policy.Evidence{Stats: st}, now)
		if d.Action == policy.Advance || d.Action == policy.Rollback {
			break
		}
	}
	return d, now
}
