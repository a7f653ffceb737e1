// Package report tells every rollout's story as one self-contained HTML page: the canary weight over
// time from git, and, for the current and past stages, each rule's estimate and always-valid interval
// over time against its limit, with the moment of each decision marked.
//
// The intervals over time are not stored anywhere: Replayer recomputes them by calling policy.Judge at
// past ticks with the spec as git held it then and the statistics the source gives for the stage's
// window up to that tick. The judge is deterministic in its inputs, so a tick's result is kept in a
// Cache under the spec's commit, the tick and the source's identity, and a second report only asks the
// source about ticks it has not seen.
//
// It belongs to the reconcile room (it replays the loop's judgements over the repository's history);
// the drawing is policy/evidence/chart's, and cmd/rollout reads git and opens the sources.
package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence/chart"
	"github.com/rollout-dev/rollout/rollouts"
)

// Version is one commit of a rollout's spec file.
type Version struct {
	Commit string
	When   time.Time
	// Content is the file at that commit; nil when the commit deleted it.
	Content []byte
}

// Change is one row of `rollout history`: a commit that changed the weight or that the controller
// made for the rollout.
type Change struct {
	Commit   string
	When     time.Time
	Author   string
	Actor    string
	Decision string
	Subject  string
	// Weight is the canary weight after the commit; nil when the file was unreadable.
	Weight *int
}

// Input is what git holds of one rollout.
type Input struct {
	Name string
	// Path is the spec file, for the errors of its old versions.
	Path string
	// Spec is the spec on the default branch now; nil when it does not parse.
	Spec *rollouts.Spec
	// Versions are the commits of the spec file, oldest first.
	Versions []Version
	// Changes are the weight changes, oldest first.
	Changes []Change
}

// SourceOpener opens the metrics source of a spec and names it: the identity is part of the cache
// key, so two sources never share results (cmd/rollout passes a hash of the source string, so that no
// credential reaches a file name).
type SourceOpener func(spec *rollouts.Spec) (src policy.Source, identity string, err error)

// Replayer recomputes the judge's evidence at past ticks.
type Replayer struct {
	Open SourceOpener
	// Cache keeps ticks already judged; nil keeps nothing.
	Cache Cache
	// Every is the time between two ticks of a stage (default an hour).
	Every time.Duration
}

// MaxTicks bounds the ticks of one stage: a longer stage is judged at wider steps.
const MaxTicks = 2000

// cacheVersion changes when what a cached tick holds changes, so that old entries are ignored.
const cacheVersion = "report-v1"

// Rollout is one rollout's story, ready to draw.
type Rollout struct {
	Name        string
	Description string
	Phase       string
	Weight      int
	// Stable and Canary describe the variants, "model + prompt".
	Stable, Canary string
	// From and To bound the weight chart.
	From, To time.Time
	// Changes are the weight changes in [From, To], oldest first, and Before the weight at From.
	Changes []Change
	Before  int
	// Stages are the stages whose window overlaps [From, To], newest first.
	Stages []Stage
	// Notes say what could not be replayed, and why.
	Notes []string
}

// Stage is one stage window of one canary.
type Stage struct {
	Index          int
	Weight, Shadow int
	From, To       time.Time
	// Current is true for the stage the rollout is in now.
	Current bool
	// EndedBy names the decision that ended it ("advance", "rollback", ...); empty when it did not end
	// by a decision of the controller.
	EndedBy string
	Rules   []Series
	// Ticks is how many ticks were judged, Failed how many of them the source did not answer, and
	// NoData how many it answered that it holds nothing yet (NoDataReason says what it said): a file
	// that does not exist, such as a relative file: source read from another directory.
	Ticks, Failed, NoData int
	NoDataReason          string
}

// Series is one limit of one rule over a stage.
type Series struct {
	Rule  string
	Limit string
	// LimitValue is the limit on the interval's scale; Relative says the scale is canary/stable - 1.
	LimitValue float64
	Relative   bool
	Points     []chart.Point
	Markers    []chart.Marker
}

// tick is what the report keeps of one judgement: what the cache stores.
type tick struct {
	Action string      `json:"action"`
	Rules  []tickLimit `json:"rules,omitempty"`
}

// tickLimit is one limit of one rule at one tick. Ends the data cannot bound are stored as null.
type tickLimit struct {
	Rule     string   `json:"rule"`
	Limit    string   `json:"limit"`
	Value    float64  `json:"value"`
	Relative bool     `json:"relative,omitempty"`
	Verdict  string   `json:"verdict"`
	Estimate *float64 `json:"estimate"`
	Low      *float64 `json:"low"`
	High     *float64 `json:"high"`
}

// segment is the part of a stage during which one version of the spec held.
type segment struct {
	commit     string
	spec       *rollouts.Spec
	start, end time.Time
}

type stageKey struct {
	canary  string
	stage   int
	started time.Time
}

// Replay builds the story of one rollout over [since, now].
func (r *Replayer) Replay(ctx context.Context, in Input, since, now time.Time) Rollout {
	out := Rollout{Name: in.Name, From: since, To: now}
	// A report that ends before the newest commit (--now in the past) tells the story as git held it
	// then: later versions are left out of the stages, and the header is the spec of that moment.
	noPhase, noSpec := "spec error", "the spec on the default branch has errors (listed at the top): the reconciler leaves this rollout as it is until they are fixed; see `rollout validate`"
	if past := asOf(in.Versions, now); len(past) < len(in.Versions) {
		in.Versions, in.Spec = past, nil
		at := now.UTC().Format(time.RFC3339)
		switch n := len(past); {
		case n == 0:
			noPhase, noSpec = "not added yet", "the spec was not in the repository yet at "+at
		case past[n-1].Content == nil:
			noPhase, noSpec = "deleted", "the spec was deleted by "+at
		default:
			in.Spec, _ = rollouts.Parse(in.Path, past[n-1].Content)
			noSpec = "the spec did not parse at " + at
		}
	}
	if s := in.Spec; s != nil {
		out.Description = s.Description
		out.Weight = s.Traffic.Weight
		out.Stable = variantWords(&s.Stable)
		out.Canary = variantWords(s.Canary)
		out.Phase = string(rollouts.Pending)
		if s.Status != nil && s.Status.Phase != "" {
			out.Phase = string(s.Status.Phase)
		}
		if s.Canary == nil && (s.Status == nil || s.Status.Phase == "") {
			out.Phase = "no canary"
		}
	} else {
		out.Phase = noPhase
		out.Notes = append(out.Notes, noSpec)
	}
	earlier := false
	for _, c := range in.Changes {
		switch {
		case c.When.Before(since):
			earlier = true
			if c.Weight != nil {
				out.Before = *c.Weight
			}
		case !c.When.After(now):
			out.Changes = append(out.Changes, c)
		}
		if in.Spec == nil && c.Weight != nil && !c.When.After(now) {
			// The weight the file holds, which an application reading it may still route by.
			out.Weight = *c.Weight
		}
	}
	if len(out.Changes) > 0 && out.Changes[0].When.After(since) && !earlier {
		// The whole story fits: start the chart at the first commit rather than at --since.
		out.From = out.Changes[0].When
	}

	segs, notes := segments(in, now)
	out.Notes = append(out.Notes, notes...)
	var stages [][]segment
	for _, s := range segs {
		k := keyOf(s.spec)
		if n := len(stages); n > 0 && keyOf(stages[n-1][0].spec) == k {
			stages[n-1] = append(stages[n-1], s)
			continue
		}
		stages = append(stages, []segment{s})
	}
	for i := len(stages) - 1; i >= 0; i-- {
		st := stages[i]
		last := st[len(st)-1]
		if last.end.Before(since) {
			break
		}
		stage := r.replayStage(ctx, st, since, now, in.Changes)
		stage.Current = i == len(stages)-1 && last.end.Equal(now) && in.Spec != nil && in.Spec.Status != nil && keyOf(in.Spec) == keyOf(last.spec)
		if stage.NoData > 0 {
			out.Notes = append(out.Notes, fmt.Sprintf("stage %d: %s (at %d of %d ticks); those ticks are left out", stage.Index, stage.NoDataReason, stage.NoData, stage.Ticks))
		}
		if stage.Failed > 0 {
			out.Notes = append(out.Notes, fmt.Sprintf("stage %d: the metrics source did not answer at %d of %d ticks; those ticks are left out", stage.Index, stage.Failed, stage.Ticks))
		}
		out.Stages = append(out.Stages, stage)
	}
	return out
}

// asOf returns the versions committed at or before now, oldest first.
func asOf(versions []Version, now time.Time) []Version {
	var out []Version
	for _, v := range versions {
		if !v.When.After(now) {
			out = append(out, v)
		}
	}
	return out
}

func keyOf(s *rollouts.Spec) stageKey {
	return stageKey{canary: rollouts.Fingerprint(s.Canary), stage: s.Status.Stage, started: s.Status.StageStartedAt}
}

// segments cuts the spec's history into the spans during which one version held a Progressing stage
// with a window.
func segments(in Input, now time.Time) ([]segment, []string) {
	var out []segment
	var notes []string
	for i, v := range in.Versions {
		end := now
		if i+1 < len(in.Versions) {
			end = in.Versions[i+1].When
		}
		if v.Content == nil {
			continue
		}
		spec, problems := rollouts.Parse(in.Path, v.Content)
		if spec == nil {
			if len(problems) > 0 {
				notes = append(notes, fmt.Sprintf("commit %s: the spec did not parse then (%s); its ticks are left out", short(v.Commit), problems[0].Message))
			}
			continue
		}
		if _, ok := policy.QueryFor(spec, v.When); !ok {
			continue
		}
		start := v.When
		if spec.Status.StageStartedAt.After(start) {
			start = spec.Status.StageStartedAt
		}
		if end.After(start) {
			out = append(out, segment{commit: v.Commit, spec: spec, start: start, end: end})
		}
	}
	return out, notes
}

func (r *Replayer) replayStage(ctx context.Context, segs []segment, since, now time.Time, changes []Change) Stage {
	first, last := segs[0], segs[len(segs)-1]
	st := last.spec.Status
	stage := Stage{Index: st.Stage, Weight: last.spec.Traffic.Weight, Shadow: last.spec.Traffic.Shadow,
		From: st.StageStartedAt, To: last.end}
	if stage.From.Before(first.start) {
		stage.From = first.start
	}
	every := r.Every
	if every <= 0 {
		every = time.Hour
	}
	if n := stage.To.Sub(stage.From) / every; n > MaxTicks {
		every = stage.To.Sub(stage.From) / MaxTicks
	}
	// Ticks on the grid from the stage's start, and the stage's last moment: the tick that decided.
	var ticks []time.Time
	for t := st.StageStartedAt.Add(every); !t.After(stage.To); t = t.Add(every) {
		if !t.Before(since) && t.After(stage.From) {
			ticks = append(ticks, t)
		}
	}
	if n := len(ticks); (n == 0 || !ticks[n-1].Equal(stage.To)) && !stage.To.Before(since) {
		ticks = append(ticks, stage.To)
	}

	results := make([]tick, len(ticks))
	have := make([]bool, len(ticks))
	stage.Ticks = len(ticks)
	var (
		openCommit string
		key        string
		entries    map[int64]tick
		dirty      bool
		src        policy.Source
		srcErr     error
	)
	save := func() {
		if dirty && r.Cache != nil {
			if b, err := json.Marshal(entries); err == nil {
				r.Cache.Put(key, b)
			}
		}
		dirty = false
	}
	// The ticks the cache does not hold are read in batches, one read of the source per batch
	// (policy.StatsWindows): a JSON Lines file is read once for a batch of ticks, not once a tick.
	type pending struct {
		i    int
		t    time.Time
		q    policy.Query
		spec *rollouts.Spec
	}
	var batch []pending
	flush := func() {
		if len(batch) == 0 {
			return
		}
		windows := make([]policy.Window, len(batch))
		for j, p := range batch {
			windows[j] = p.q.Window
		}
		all, err := policy.StatsWindows(ctx, policy.WithMaturity(src), batch[0].q, windows)
		if errors.Is(err, policy.ErrNoData) {
			// Not a failure, as for the reconciler: the source holds nothing yet. Nothing is cached.
			stage.NoData += len(batch)
			stage.NoDataReason = policy.NoDataReason(err)
			batch = batch[:0]
			return
		}
		if err != nil || len(all) != len(batch) {
			// A source that fails is asked again next time: nothing is cached.
			stage.Failed += len(batch)
			batch = batch[:0]
			return
		}
		for j, p := range batch {
			results[p.i], have[p.i] = tickOf(policy.Judge(p.spec, policy.Evidence{Stats: all[j]}, p.t)), true
			// The tick at now moves with every run: it is kept only when it falls on the grid.
			if !p.t.Equal(now) || onGrid(p.t, st.StageStartedAt, every) {
				entries[p.t.Unix()], dirty = results[p.i], true
			}
		}
		batch = batch[:0]
	}
	for i, t := range ticks {
		s := segs[segAt(segs, t)]
		if entries == nil || s.commit != openCommit {
			flush()
			save()
			openCommit, src, srcErr = s.commit, nil, nil
			var identity string
			if r.Open != nil {
				src, identity, srcErr = r.Open(s.spec)
			} else {
				srcErr = fmt.Errorf("no metrics source")
			}
			key, entries = cacheKey(s.commit, identity), map[int64]tick{}
			if r.Cache != nil {
				if b, ok := r.Cache.Get(key); ok {
					if json.Unmarshal(b, &entries) != nil {
						entries = map[int64]tick{} // a damaged entry is recomputed
					}
				}
			}
		}
		if tk, ok := entries[t.Unix()]; ok {
			results[i], have[i] = tk, true
			continue
		}
		q, ok := policy.QueryFor(s.spec, t)
		if !ok {
			continue
		}
		if srcErr != nil {
			stage.Failed++
			continue
		}
		batch = append(batch, pending{i: i, t: t, q: q, spec: s.spec})
		if len(batch) == replayBatch {
			flush()
		}
	}
	flush()
	save()
	stage.Rules = series(last.spec, ticks, results, have)
	if stage.To.Before(now) {
		// The commit that ended the stage is the version at its end; a later decision ended another
		// stage (a stage restarted by a human's edit, which is no weight change, ended by no decision).
		for _, c := range changes {
			if c.When.Equal(stage.To) && c.Decision != "" {
				stage.EndedBy = c.Decision
				break
			}
		}
	}
	var marks []chart.Marker
	for _, c := range changes {
		if c.When.Before(stage.From) || c.When.After(stage.To) {
			continue
		}
		label := c.Decision
		if label == "" {
			label = "edit"
		}
		who := c.Author
		if c.Actor != "" {
			who = c.Actor + " (via " + c.Author + ")"
		}
		marks = append(marks, chart.Marker{At: c.When, Label: label, Bad: c.Decision == string(policy.Rollback),
			Title: fmt.Sprintf("%s %s by %s: %s", short(c.Commit), c.When.UTC().Format(time.RFC3339), who, c.Subject)})
	}
	for i := range stage.Rules {
		stage.Rules[i].Markers = marks
	}
	return stage
}

// replayBatch is how many ticks one read of a source answers: each holds a set of per-arm sums
// (a few MiB for a JSON Lines file) until the batch is judged.
const replayBatch = 16

func segAt(segs []segment, t time.Time) int {
	i := 0
	for i < len(segs)-1 && t.After(segs[i].end) {
		i++
	}
	return i
}

func onGrid(t, start time.Time, every time.Duration) bool {
	return every > 0 && t.Sub(start)%every == 0
}

// cacheKey names the cached ticks of one version of a spec read from one source.
func cacheKey(commit, identity string) string {
	h := sha256.Sum256([]byte(cacheVersion + "\x00" + commit + "\x00" + identity))
	return hex.EncodeToString(h[:16])
}

// tickOf keeps what the charts draw of a decision.
func tickOf(d policy.Decision) tick {
	out := tick{Action: string(d.Action)}
	for _, m := range d.Metrics {
		if m.Advisory {
			continue
		}
		for _, l := range m.Limits {
			value, relative, ok := limitValue(m.Rule, l.Limit)
			if !ok {
				continue
			}
			tl := tickLimit{Rule: m.Name, Limit: l.Limit, Value: value, Relative: relative, Verdict: string(l.Verdict)}
			if relative {
				if m.Stable.Value != 0 {
					tl.Estimate = finite(m.Canary.Value/m.Stable.Value - 1)
				}
			} else {
				tl.Estimate = finite(m.Canary.Value)
			}
			if iv := l.Interval; iv != nil {
				tl.Low, tl.High = finite(iv.Low), finite(iv.High)
			}
			out.Rules = append(out.Rules, tl)
		}
	}
	return out
}

// limitValue reads the limit named by words ("maxIncrease 50%") from the rule, on its interval's scale.
func limitValue(r rollouts.Rule, words string) (value float64, relative, ok bool) {
	kind, _, _ := strings.Cut(words, " ")
	switch {
	case kind == "maxIncrease" && r.MaxIncrease != nil:
		return float64(*r.MaxIncrease), true, true
	case kind == "maxDecrease" && r.MaxDecrease != nil:
		return -float64(*r.MaxDecrease), true, true
	case kind == "max" && r.Max != nil:
		return *r.Max, false, true
	case kind == "min" && r.Min != nil:
		return *r.Min, false, true
	}
	return 0, false, false
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func orNaN(p *float64, inf float64) float64 {
	if p == nil {
		return inf
	}
	return *p
}

// series turns the ticks into one series per limit of each rule of the spec, in the spec's order.
func series(spec *rollouts.Spec, ticks []time.Time, results []tick, have []bool) []Series {
	var out []Series
	index := map[string]int{}
	for _, r := range spec.Analysis.Rules {
		for _, kind := range []string{"max", "min", "maxIncrease", "maxDecrease"} {
			value, relative, ok := limitValue(r, kind)
			if !ok {
				continue
			}
			index[r.Metric+"\x00"+kind] = len(out)
			out = append(out, Series{Rule: r.Metric, LimitValue: value, Relative: relative})
		}
	}
	for i, t := range ticks {
		if !have[i] {
			continue
		}
		for _, l := range results[i].Rules {
			kind, _, _ := strings.Cut(l.Limit, " ")
			j, ok := index[l.Rule+"\x00"+kind]
			if !ok {
				continue
			}
			s := &out[j]
			s.Limit, s.LimitValue = l.Limit, l.Value
			s.Points = append(s.Points, chart.Point{At: t, Estimate: orNaN(l.Estimate, math.NaN()),
				Low: orNaN(l.Low, math.Inf(-1)), High: orNaN(l.High, math.Inf(1)), Verdict: l.Verdict})
		}
	}
	for i := range out {
		if out[i].Limit == "" {
			out[i].Limit = limitWords(spec, out[i])
		}
	}
	return out
}

// limitWords names a limit no tick reported (the data never sufficed), as the judge would.
func limitWords(spec *rollouts.Spec, s Series) string {
	for _, r := range spec.Analysis.Rules {
		if r.Metric != s.Rule {
			continue
		}
		switch {
		case r.MaxIncrease != nil && s.Relative && s.LimitValue >= 0:
			return "maxIncrease " + strings.TrimPrefix(chart.FormatValue(s.LimitValue, true), "+")
		case r.MaxDecrease != nil && s.Relative:
			return "maxDecrease " + strings.TrimPrefix(chart.FormatValue(-s.LimitValue, true), "+")
		case r.Max != nil && !s.Relative && *r.Max == s.LimitValue:
			return "max " + chart.FormatValue(s.LimitValue, false)
		case r.Min != nil && !s.Relative:
			return "min " + chart.FormatValue(s.LimitValue, false)
		}
	}
	return ""
}

func variantWords(v *rollouts.Variant) string {
	if v == nil {
		return ""
	}
	if v.Prompt == "" {
		return v.Model
	}
	return v.Model + " + " + v.Prompt
}

func short(commit string) string {
	return commit[:min(8, len(commit))]
}
