package rollouts

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// CheckClock returns an error, at its file:line:col, for every rollout of set whose status holds a
// time (stageStartedAt, promotedAt) after now, by any amount. Such a time means a clock is wrong, the
// controller's or this machine's, or that a human typed it: the controller records its own now, which
// never lies ahead of a later reading. Read as "the stage has not run its minDuration yet" it would
// hold the rollout silently, so it is named as clock skew instead; no skew is tolerated, since a
// tolerated one is a hold nobody hears of.
//
// Parse cannot make this check, as it has no clock: validation below cmd/ never reads one. Callers
// pass their own now (`rollout validate` the real time) and append the problems to the set's. The
// documents stay in set: a rollout is never dropped for a clock.
func CheckClock(set *Set, now time.Time) []Problem {
	var out []Problem
	for _, d := range set.Documents {
		st := d.Spec.Status
		if st == nil {
			continue
		}
		for _, field := range []struct {
			key string
			at  time.Time
		}{{"stageStartedAt", st.StageStartedAt}, {"promotedAt", st.PromotedAt}} {
			ahead := field.at.Sub(now)
			if field.at.IsZero() || ahead <= 0 {
				continue
			}
			line, col := statusFieldPosition(d.Source, field.key)
			out = append(out, Problem{File: d.Path, Line: line, Col: col, Message: fmt.Sprintf(
				"status.%s: %s is %s in the future (now is %s): clock skew, or a time typed by hand; what the controller records cannot lie in the future, so fix the clock or the time",
				field.key, field.at.UTC().Format(time.RFC3339), ahead.Round(time.Second), now.UTC().Format(time.RFC3339))})
		}
	}
	sortProblems(out)
	return out
}

// statusFieldPosition finds the value of status.<key> in a spec file, or the file's start.
func statusFieldPosition(src []byte, key string) (int, int) {
	root, err := parseNode(src)
	if err != nil || root == nil || root.Kind != yaml.MappingNode {
		return 1, 1
	}
	_, status, _ := mapEntry(root, "status")
	if status == nil || status.Kind != yaml.MappingNode {
		return 1, 1
	}
	if _, v, _ := mapEntry(status, key); v != nil {
		return v.Line, v.Column
	}
	return status.Line, status.Column
}
