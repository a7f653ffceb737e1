package policy_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// trafficBufs holds the buffers of finished judgeTraffic calls: a stage's traffic is megabytes of JSON
// Lines, and growing a fresh buffer to that size for every stage of every seed cost the simulations 3 s
// of CPU.
var trafficBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// judgeTraffic writes opts' traffic for spec as JSON Lines and judges it with judgeHourly.
func judgeTraffic(t *testing.T, spec *rollouts.Spec, opts synth.Options, hours int) (policy.Decision, time.Time) {
	t.Helper()
	buf := trafficBufs.Get().(*bytes.Buffer)
	defer trafficBufs.Put(buf)
	buf.Reset()
	if err := synth.WriteJSONL(buf, spec, opts); err != nil {
		t.Fatal(err)
	}
	return judgeHourly(t, spec, buf.Bytes(), opts.From, hours)
}

// judgeHourly judges spec at each of the hours after start over the JSON Lines records in content, as
// an hourly reconciler would. It returns the first decision that advances or rolls back, with its
// time, else the last one. It reads content for a batch of hours at a time (jsonl.Source.ReadWindows:
// one read, every window of the batch), 4 hours first, then twice as many as read so far: most
// stages decide within the first batches, and a window costs its records, where one more read costs
// only the parse.
func judgeHourly(t *testing.T, spec *rollouts.Spec, content []byte, start time.Time, hours int) (policy.Decision, time.Time) {
	t.Helper()
	var d policy.Decision
	var now time.Time
	for from, batch := 0, 4; from < hours; from, batch = from+batch, from+batch {
		to := min(from+batch, hours)
		var q policy.Query
		windows := make([]policy.Window, 0, to-from)
		for h := from; h < to; h++ {
			q, _ = policy.QueryFor(spec, start.Add(time.Duration(h+1)*time.Hour))
			windows = append(windows, q.Window)
		}
		all, err := (&jsonl.Source{}).ReadWindows(context.Background(), bytes.NewReader(content), q, windows)
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range all {
			now = start.Add(time.Duration(from+i+1) * time.Hour)
			d = policy.Judge(spec, policy.Evidence{Stats: st}, now)
			if d.Action == policy.Advance || d.Action == policy.Rollback {
				return d, now
			}
		}
	}
	return d, now
}
