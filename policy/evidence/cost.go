package evidence

import (
	"fmt"
	"math"

	"github.com/rollout-dev/rollout/policy"
)

// cost is the projection of the canary's extra spend per day at the next stage and at 100% (see
// policy.CostProjection); empty without cost data for both arms.
func cost(d policy.Decision) []string {
	p := d.Cost
	if p == nil {
		return nil
	}
	at := func(c policy.CostAt) string {
		return fmt.Sprintf("**%s/day at %d%%** (%s … %s)", policy.FormatDollars(c.PerDay), c.Weight,
			policy.FormatDollars(c.Interval.Low), policy.FormatDollars(c.Interval.High))
	}
	line := fmt.Sprintf("\n### Cost\n\nThe canary costs %s a request against stable's cost; at the rollout's measured traffic (%s requests a day) that projects to %s",
		policy.FormatDollars(p.ExtraPerRequest), policy.FormatCount(int64(math.Round(p.RequestsPerDay))), at(p.Next))
	if p.Next.Weight != 100 {
		line += "; " + at(p.Full)
	}
	line += fmt.Sprintf(". Intervals: %s.\n", p.Next.Interval.Label())
	return []string{line}
}
