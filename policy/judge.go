package policy

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

// MaxMetricsErrors is how many consecutive ticks the metrics source may fail before
// `onMetricsError: rollback` rolls back: the judge rolls back when status.metricsErrors+1 reaches it.
// A single failed scrape never rolls back.
const MaxMetricsErrors = 3

// Judge decides what to do with one rollout now, from its spec and the evidence of its current stage.
//
// It is pure: the same spec, evidence and now give the same decision. The state machine:
//   - no canary: hold, nothing to roll out;
//   - a canary with no status, a Pending status, or a status that belongs to another canary (its
//     fingerprint differs: the block, or the content of a file it refers to, such as its prompt
//     file): start at stage 0, once stage 0's gate (if any) is open;
//   - a Progressing stage whose window has not started (stageStartedAt is zero): start it;
//   - Paused: the stage is judged as if progressing, and only a rollback is acted on (a pause stops
//     advancing, not the protection: as Argo Rollouts' background analysis keeps running);
//   - RolledBack, Completed: hold;
//   - a Progressing stage: judge the rules on ev.Stats (see judgeStage).
//
// An advance or a promotion outside promotion.windows is a hold that says when the next window opens;
// a rollback never waits for a window.
func Judge(spec *rollouts.Spec, ev Evidence, now time.Time) Decision {
	return inWindow(judge(spec, ev, now), spec, now)
}

// inWindow holds an advance or a promotion that falls outside the rollout's promotion windows.
func inWindow(d Decision, spec *rollouts.Spec, now time.Time) Decision {
	if (d.Action != Advance && d.Action != Promote) || spec.Promotion.Windows == nil {
		return d
	}
	cal, err := spec.Promotion.Windows.Calendar()
	if err != nil {
		return d.hold(fmt.Sprintf("promotion.windows: %v", err))
	}
	if cal.Open(now) {
		return d
	}
	what := "advance"
	if d.Action == Promote {
		what = "promotion"
	}
	next, ok := cal.NextOpen(now)
	if !ok {
		return d.hold(fmt.Sprintf("outside the promotion windows: the %s waits, and no window opens within 400 days", what))
	}
	return d.hold(fmt.Sprintf("outside the promotion windows: the %s waits for the next window, which opens %s (in %s)",
		what, next.Format("Mon 2006-01-02 15:04 MST"), roundDuration(next.Sub(now))))
}

func judge(spec *rollouts.Spec, ev Evidence, now time.Time) Decision {
	d := Decision{Rollout: spec.Name, Action: Hold, Current: Step{Weight: spec.Traffic.Weight, Shadow: spec.Traffic.Shadow}}
	st := spec.Status
	if st != nil {
		d.Current.Stage = st.Stage
	}
	switch {
	case spec.Canary == nil:
		return d.hold("no canary: nothing to roll out")
	case len(spec.Stages) == 0:
		return d.hold("the spec has no stages")
	case st == nil || st.Phase == rollouts.Pending || st.Phase == "":
		return startAt(d, spec, 0, ev, "new canary")
	}
	if why, changed := rollouts.CanaryChanged(spec); changed {
		return startAt(d, spec, 0, ev, why+": starting over at stage 0")
	}
	switch st.Phase {
	case rollouts.Paused:
		return judgePaused(d, spec, ev, now)
	case rollouts.RolledBack:
		return d.hold("rolled back" + messageSuffix(st.Message) + "; to try again, change the canary or delete its status block")
	case rollouts.Completed:
		return d.hold("completed")
	case rollouts.Progressing:
	default:
		return d.hold(fmt.Sprintf("unknown phase %q", st.Phase))
	}
	if st.Stage < 0 || st.Stage >= len(spec.Stages) {
		return d.hold(fmt.Sprintf("status.stage %d is not a stage of this rollout (0..%d)", st.Stage, len(spec.Stages)-1))
	}
	if st.StageStartedAt.IsZero() {
		s := spec.Stages[st.Stage]
		d.Action, d.Next = Start, &Step{Stage: st.Stage, Weight: s.Weight, Shadow: s.Shadow}
		d.Reasons = []string{fmt.Sprintf("stage %d landed: its window starts now", st.Stage)}
		return d
	}
	return judgeStage(d, spec, ev, now)
}

// changedCanary reports whether spec's status belongs to an earlier canary.
func changedCanary(spec *rollouts.Spec) bool {
	_, changed := rollouts.CanaryChanged(spec)
	return changed
}

// judgePaused judges a paused rollout's stage: a rollback stands, anything else holds with the stage's
// evidence, saying it is paused.
func judgePaused(d Decision, spec *rollouts.Spec, ev Evidence, now time.Time) Decision {
	st := spec.Status
	paused := "paused" + messageSuffix(st.Message)
	if st.Stage < 0 || st.Stage >= len(spec.Stages) || st.StageStartedAt.IsZero() {
		return d.hold(paused)
	}
	j := judgeStage(d, spec, ev, now)
	switch j.Action {
	case Rollback:
		j.Reasons = append(j.Reasons, "rolled back while paused: a pause stops advancing, not rollbacks")
		return j
	case Hold:
		j.Reasons = append([]string{paused}, j.Reasons...)
	default:
		j.Reasons = []string{paused, fmt.Sprintf("the stage's evidence would %s; resume to go on", j.Action)}
	}
	j.Action, j.Next = Hold, nil
	return j
}

func messageSuffix(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}

func (d Decision) hold(reasons ...string) Decision {
	d.Action, d.Next = Hold, nil
	d.Reasons = append(d.Reasons, reasons...)
	return d
}

// startAt starts stage i when its gate is open.
func startAt(d Decision, spec *rollouts.Spec, i int, ev Evidence, reason string) Decision {
	if shut, why := gateShut(spec, i, ev); shut {
		return d.hold(reason, why)
	}
	s := spec.Stages[i]
	d.Action, d.Next = Start, &Step{Stage: i, Weight: s.Weight, Shadow: s.Shadow}
	d.Reasons = append(d.Reasons, reason)
	return d
}

// gateShut reports whether stage i has a gate that is not known to be open, and why.
func gateShut(spec *rollouts.Spec, i int, ev Evidence) (bool, string) {
	if spec.Stages[i].Gate == nil {
		return false, ""
	}
	g, ok := ev.Gates[i]
	switch {
	case !ok:
		return true, fmt.Sprintf("gate of stage %d not checked yet", i)
	case !g.Open:
		return true, fmt.Sprintf("gate of stage %d is shut: %s", i, g.Reason)
	}
	return false, ""
}

// budgetOf returns the error budget of each limit of spec's rules: the rollback side splits
// 1-confidence over every limit of every rule (Bonferroni, with a divisor fixed by the spec, so that it
// does not change within a stage as metrics get data), and gives recentShare of each limit's share to
// the recent windows (recent.go); the advance side spends 1-advanceConfidence on every limit
// (intersection-union), or 1-confidence with requirePass.
func budgetOf(spec *rollouts.Spec, _ *Stats) errorBudget {
	conf := spec.Analysis.Confidence
	if conf <= 0 || conf >= 1 {
		conf = rollouts.DefaultConfidence
	}
	adv := spec.Analysis.AdvanceConfidence
	if adv <= 0 || adv >= 1 {
		adv = rollouts.DefaultAdvanceConfidence
	}
	if spec.Analysis.RequirePass || adv > conf {
		adv = conf
	}
	limits := 0
	for _, r := range spec.Analysis.Rules {
		limits += len(limitsOf(r))
	}
	each := (1 - conf) / float64(max(limits, 1))
	var segments float64
	if len(spec.Analysis.Segments) > 0 {
		each /= 2 // the other half is the segments' (segment.go)
		segments = each
	}
	return errorBudget{fail: each * (1 - recentShare), recent: each * recentShare, segments: segments, pass: 1 - adv}
}

// JudgeRules judges every rule of spec on stats, in the spec's order.
func JudgeRules(spec *rollouts.Spec, stats *Stats) []RuleResult {
	outs := judgeRules(spec, stats)
	res := make([]RuleResult, len(outs))
	for i, o := range outs {
		res[i] = o.RuleResult
	}
	return res
}

func judgeRules(spec *rollouts.Spec, stats *Stats) []ruleOutcome {
	budget := budgetOf(spec, stats)
	outs := make([]ruleOutcome, len(spec.Analysis.Rules))
	for i, r := range spec.Analysis.Rules {
		outs[i] = judgeRule(r, stats, budget)
	}
	return outs
}

// judgeStage judges a Progressing stage whose window has started.
func judgeStage(d Decision, spec *rollouts.Spec, ev Evidence, now time.Time) Decision {
	st := spec.Status
	stage := spec.Stages[st.Stage]
	if errors.Is(ev.Err, ErrNoData) {
		return d.hold(NoDataReason(ev.Err))
	}
	if ev.Err != nil {
		n := st.MetricsErrors + 1
		reason := fmt.Sprintf("metrics source failed: %v", ev.Err)
		count := fmt.Sprintf("%d consecutive metrics failures", n)
		if n == 1 {
			count = "1 consecutive metrics failure"
		}
		if spec.Analysis.OnMetricsError == "rollback" && n >= MaxMetricsErrors {
			d.Action, d.Next = Rollback, &Step{Stage: st.Stage}
			d.Reasons = []string{reason, count + " (onMetricsError: rollback)"}
			return d
		}
		return d.hold(reason, count)
	}
	if ev.Stats == nil {
		return d.hold("no statistics for this stage")
	}
	if ev.Stats.Arm(Stable).Requests == 0 && ev.Stats.Arm(Canary).Requests == 0 && ev.Stats.Malformed == 0 {
		reason := fmt.Sprintf("%s: the source has no requests of %s in this stage's window", ErrNoData, spec.Name)
		if others := ev.Stats.OtherRollouts; len(others) > 0 {
			reason += fmt.Sprintf("; it holds records of %s only: is the rollout field of the application's records %q?", strings.Join(others, ", "), spec.Name)
		}
		return d.hold(reason)
	}
	if st.StageStartedAt.After(now) {
		return judgeFutureStart(d, spec, ev, now)
	}
	from := st.StageStartedAt
	if f := ev.Stats.From; !f.IsZero() && f.After(from) && !f.After(now) {
		from = f
	}
	d.Unit = ev.Stats.Unit
	if d.Unit == "" {
		d.Unit = UnitRequest
	}
	d.Window = &Window{From: from, To: now}
	d.NotRandomised = ev.Stats.NotRandomised
	outs := judgeRules(spec, ev.Stats)
	if stage.Weight == 100 && ev.Stats.Arm(Stable).Requests == 0 {
		outs = judgeWithoutStable(spec, ev.Stats)
	}
	judgeCost(spec, ev.Stats, from, now, outs, &d)
	d.Metrics = make([]RuleResult, len(outs))
	var failed, unshown, advisory []string
	allBetter := len(outs) > 0
	for i, o := range outs {
		d.Metrics[i] = o.RuleResult
		switch {
		case o.Verdict == Fail:
			failed = append(failed, o.failures...)
		case o.Advisory:
			advisory = append(advisory, o.Name)
		case o.exempt:
		case o.Verdict != Pass:
			unshown = append(unshown, o.Reason)
		}
		allBetter = allBetter && o.better
	}
	// A sample-ratio mismatch means the comparison cannot be trusted, so the stage never advances on
	// it; a failing rule still rolls back, since sending every user back to stable is safe whatever
	// the routing did.
	srm := sampleRatioStage(spec, ev.Stats, st.StageStartedAt, now)
	d.SampleRatioMismatch = srm != ""
	if len(failed) == 0 && stage.Weight < 100 {
		failed = judgeRecent(spec, ev.Stats, st.StageStartedAt, now)
	}
	if segmentFailed := judgeSegments(spec, ev.Stats, d.Metrics); len(failed) == 0 {
		failed = segmentFailed
	}
	if len(failed) > 0 {
		d.Action, d.Next = Rollback, &Step{Stage: st.Stage}
		d.Reasons = failed
		if srm != "" {
			d.Reasons = append(d.Reasons, srm)
		}
		return d
	}
	if srm != "" {
		return d.hold(srm)
	}

	// minDuration counts from where both arms' window starts: the stage's first canary record.
	elapsed := now.Sub(from)
	var waiting []string
	if min := time.Duration(stage.MinDuration); elapsed < min {
		switch {
		case !ev.Stats.From.IsZero() && from.After(st.StageStartedAt):
			waiting = append(waiting, fmt.Sprintf("minDuration %s not reached (%s since the stage's first canary request)", stage.MinDuration, roundDuration(elapsed)))
		default:
			waiting = append(waiting, fmt.Sprintf("minDuration %s not reached (%s so far)", stage.MinDuration, roundDuration(elapsed)))
		}
	}
	if stage.MinRequests > 0 {
		for _, arm := range []Arm{Stable, Canary} {
			if n := ev.Stats.Arm(arm).Requests; n < stage.MinRequests {
				waiting = append(waiting, fmt.Sprintf("%s has %s of %s requests: %s", arm, thousands(n), thousands(stage.MinRequests),
					timeToRequests(n, stage.MinRequests, elapsed)))
			}
		}
	}
	if why := RequestLevel(spec, d.Unit); why != "" {
		waiting = append(waiting, why)
	}
	// Each rule not yet shown within its limits says so in its own words; the levels it is judged at are
	// in the evidence's details and in JSON.
	waiting = append(waiting, unshown...)
	if len(waiting) > 0 {
		if maxd := time.Duration(stage.MaxDuration); maxd > 0 && now.Sub(st.StageStartedAt) >= maxd {
			reason := fmt.Sprintf("maxDuration %s passed without a decision", stage.MaxDuration)
			if spec.Analysis.OnInconclusive == "rollback" {
				d.Action, d.Next = Rollback, &Step{Stage: st.Stage}
				d.Reasons = append([]string{reason + " (onInconclusive: rollback)"}, waiting...)
				return d
			}
			waiting = append([]string{reason + " (onInconclusive: hold)"}, waiting...)
			d.Stuck = true
		}
		return d.hold(waiting...)
	}

	var notes []string
	if len(advisory) > 0 {
		notes = append(notes, "advisory, not judged: "+strings.Join(advisory, ", "))
	}
	last := len(spec.Stages) - 1
	if st.Stage == last {
		d.Action, d.Next = Promote, &Step{Stage: len(spec.Stages), Weight: 100}
		d.Reasons = append([]string{fmt.Sprintf("stage %d (the last) passed: promote the canary to stable", st.Stage)}, notes...)
		return d
	}
	next := st.Stage + 1
	accelerated := false
	if spec.Analysis.Accelerate && allBetter && next+1 < len(spec.Stages) &&
		spec.Stages[next].Gate == nil && spec.Stages[next+1].Gate == nil {
		next++
		accelerated = true
	}
	if shut, why := gateShut(spec, next, ev); shut {
		return d.hold(append([]string{why}, notes...)...)
	}
	s := spec.Stages[next]
	d.Action, d.Next = Advance, &Step{Stage: next, Weight: s.Weight, Shadow: s.Shadow}
	reason := fmt.Sprintf("stage %d passed: every rule shown within its limits", st.Stage)
	if accelerated {
		reason += fmt.Sprintf("; every rule shows the canary clearly better, so stage %d is skipped", st.Stage+1)
	}
	d.Reasons = append([]string{reason}, notes...)
	return d
}

// RequestLevel says why a stage does not advance on evidence counted in unit, else "": evidence that
// counts requests as independent while the assignment randomises keys (assignment.key is set) and the
// spec does not declare the request the unit. One user's requests are alike (a user whose prompts
// break the canary fails on most of them), so such bounds are too narrow: a canary at its limit
// advanced in a third of simulated stages instead of a fifth (TestKeylessRecords). A rule still
// rolls back on it.
func RequestLevel(spec *rollouts.Spec, unit Unit) string {
	if unit != UnitRequest || spec.Assignment.Key == "" || spec.Assignment.Unit == rollouts.UnitRequest {
		return ""
	}
	return fmt.Sprintf("the evidence counts requests, not %s keys (the records carry no key, or the source counts requests only): "+
		"one user's requests would pass for independent ones and the bounds be too narrow, so the stage does not advance on it; "+
		"record the key with each request, or set assignment.unit: request if requests are independent", spec.Assignment.Key)
}

// ErrFutureStageStart is wrapped by FutureStageStart's error.
var ErrFutureStageStart = errors.New("the stage starts in the future: clock skew, or a time typed by hand")

// FutureStageStart returns an error wrapping ErrFutureStageStart when spec's current stage started after
// now (status.stageStartedAt in the future, by any amount), and nil otherwise. What the controller
// records never lies in the future: such a time is a wrong clock, this machine's or the writer's, or a
// time typed by hand. It is an error of the rollout, reported like a metrics outage, and the stage
// never advances while it lasts; the judge still rolls it back on the data it has (judgeFutureStart).
func FutureStageStart(spec *rollouts.Spec, now time.Time) error {
	st := spec.Status
	if st == nil || st.Phase != rollouts.Progressing || !st.StageStartedAt.After(now) {
		return nil
	}
	return fmt.Errorf("status.stageStartedAt %s is %s in the future (now is %s): %w; fix the clock or the status",
		st.StageStartedAt.UTC().Format(time.RFC3339), rollouts.Duration(st.StageStartedAt.Sub(now).Round(time.Second)),
		now.UTC().Format(time.RFC3339), ErrFutureStageStart)
}

// FutureStartLookback is how far back the metrics window of a stage whose start lies in the future
// reaches when the stage sets no minDuration.
const FutureStartLookback = time.Hour

// stageWindowStart is where the metrics window of spec's current stage starts: status.stageStartedAt,
// or, when that lies after now, the stage's minDuration (FutureStartLookback without one) before now:
// the span the stage would have been judged over had it started on time. Only a rollback can come of
// that window, since the stage never advances while its start lies in the future, and sending users
// back to stable is safe whatever the true start.
func stageWindowStart(spec *rollouts.Spec, now time.Time) time.Time {
	st := spec.Status
	if !st.StageStartedAt.After(now) {
		return st.StageStartedAt
	}
	back := FutureStartLookback
	if st.Stage >= 0 && st.Stage < len(spec.Stages) {
		if m := time.Duration(spec.Stages[st.Stage].MinDuration); m > 0 {
			back = m
		}
	}
	return now.Add(-back)
}

// judgeFutureStart judges a stage whose status.stageStartedAt lies after now: its rules are judged on
// the data of stageWindowStart's window, a failing one rolls the canary back, and otherwise the stage
// holds (or, with onMetricsError: rollback, rolls back once the failures count MaxMetricsErrors, as the
// loop counts this error like a metrics failure).
func judgeFutureStart(d Decision, spec *rollouts.Spec, ev Evidence, now time.Time) Decision {
	st := spec.Status
	why := FutureStageStart(spec, now).Error()
	from := stageWindowStart(spec, now)
	if f := ev.Stats.From; !f.IsZero() && f.After(from) && !f.After(now) {
		from = f
	}
	d.Unit = ev.Stats.Unit
	if d.Unit == "" {
		d.Unit = UnitRequest
	}
	d.Window = &Window{From: from, To: now}
	d.NotRandomised = ev.Stats.NotRandomised
	outs := judgeRules(spec, ev.Stats)
	if spec.Stages[st.Stage].Weight == 100 && ev.Stats.Arm(Stable).Requests == 0 {
		outs = judgeWithoutStable(spec, ev.Stats)
	}
	d.Metrics = make([]RuleResult, len(outs))
	var failed []string
	for i, o := range outs {
		d.Metrics[i] = o.RuleResult
		if o.Verdict == Fail {
			failed = append(failed, o.failures...)
		}
	}
	if len(failed) > 0 {
		d.Action, d.Next = Rollback, &Step{Stage: st.Stage}
		d.Reasons = append(failed, why)
		return d
	}
	n := st.MetricsErrors + 1
	if spec.Analysis.OnMetricsError == "rollback" && n >= MaxMetricsErrors {
		d.Action, d.Next = Rollback, &Step{Stage: st.Stage}
		d.Reasons = []string{why, fmt.Sprintf("%d consecutive metrics failures (onMetricsError: rollback)", n)}
		return d
	}
	return d.hold(why, "the stage does not advance while its start lies in the future; a failing rule still rolls it back")
}

// judgeWithoutStable judges the rules of a stage at 100%, where every assignment key is on the canary
// and the stable arm has no traffic: a limit relative to stable cannot be judged there and does not
// hold the stage (else the last stage could never pass); absolute limits (max, min) are judged as
// always, and a failing one still rolls back.
func judgeWithoutStable(spec *rollouts.Spec, stats *Stats) []ruleOutcome {
	abs := *spec
	abs.Analysis.Rules = make([]rollouts.Rule, len(spec.Analysis.Rules))
	for i, r := range spec.Analysis.Rules {
		r.MaxIncrease, r.MaxDecrease = nil, nil
		abs.Analysis.Rules[i] = r
	}
	outs := judgeRules(&abs, stats)
	for i, r := range spec.Analysis.Rules {
		outs[i].Rule = r
		if r.Max == nil && r.Min == nil {
			outs[i].exempt = true
			outs[i].Reason = labelOf(r.Metric).words + ": not judged at 100%: the stable arm has no traffic to compare with"
		}
	}
	return outs
}

// timeToRequests says roughly how long an arm that received n requests in elapsed takes to reach need
// at the same rate: "about 3h more".
func timeToRequests(n, need int64, elapsed time.Duration) string {
	if n <= 0 || elapsed <= 0 {
		return "no traffic yet to tell how long that takes"
	}
	more := time.Duration(float64(elapsed) * float64(need-n) / float64(n))
	switch {
	case more < time.Minute:
		return "about a minute more at the current traffic"
	case more < time.Hour:
		return "about " + roundDuration(more.Round(time.Minute)) + " more at the current traffic"
	case more < 48*time.Hour:
		return fmt.Sprintf("about %dh more at the current traffic", int(math.Round(more.Hours())))
	default:
		return fmt.Sprintf("about %d days more at the current traffic", int(math.Round(more.Hours()/24)))
	}
}

func roundDuration(d time.Duration) string {
	return rollouts.Duration(d.Round(time.Minute)).String()
}

// QueryFor returns what the judge needs from the source for spec's current stage at now, and false when
// the rollout is not in a stage whose metrics matter (no canary, pending, finished, a stage
// that belongs to an earlier canary or whose window has not started).
func QueryFor(spec *rollouts.Spec, now time.Time) (Query, bool) {
	st := spec.Status
	if spec.Canary == nil || st == nil || (st.Phase != rollouts.Progressing && st.Phase != rollouts.Paused) || st.StageStartedAt.IsZero() ||
		changedCanary(spec) ||
		st.Stage < 0 || st.Stage >= len(spec.Stages) {
		return Query{}, false
	}
	q := Query{Rollout: spec.Name, Window: Window{From: stageWindowStart(spec, now), To: now},
		Schema: spec.Metrics.Schema, StableModel: spec.Stable.Model, CanaryModel: spec.Canary.Model}
	q.NotRandomised = append(q.NotRandomised, spec.Assignment.Exclude...)
	q.NotRandomised = append(q.NotRandomised, spec.Assignment.Include...)
	asked, projected := map[string]bool{}, false
	for _, r := range spec.Analysis.Rules {
		m := rollouts.MaturityOf(r)
		q.Metrics = append(q.Metrics, MetricQuery{Name: r.Metric, Query: r.Query, Maturity: m, DefaultMaturity: m > 0 && r.Maturity == nil})
		asked[r.Metric] = asked[r.Metric] || r.Query == ""
		projected = projected || isProjectedCost(r)
	}
	if projected && !asked[costMetric] {
		// The projection is computed from the cost per request of both arms.
		q.Metrics = append(q.Metrics, MetricQuery{Name: costMetric})
	}
	q.Segments = spec.Analysis.Segments
	return q, true
}
