package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/hostfile"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/record"
)

// simulateOptions are the inputs of `rollout simulate`.
type simulateOptions struct {
	SpecPath string
	Hours    float64
	Rate     int
	Users    int
	Regress  bool
	// RegressCost multiplies the canary's cost per request (0: unchanged); RegressSegment confines an
	// error regression (1% → 10%) to one segment, NAME=VALUE; RegressQuality lowers the canary's
	// quality scores from 0.85 to 0.75; RegressWinRate is the canary's share of pairwise judgments
	// (0: 50%, and judgments only where a rule reads canary_win_rate).
	RegressCost    float64
	RegressSegment string
	RegressQuality bool
	RegressWinRate float64
	Seed           uint64
	Out            string
	Backdate       bool
	Output         string
}

func (app *App) simulateCmd() *cobra.Command {
	opts := &simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate --spec FILE [--hours N] [--regress | --regress-cost F | --regress-segment NAME=VALUE | --regress-quality | --regress-win-rate R] [--backdate]",
		Short: "Write synthetic request records for a rollout, as its application would, over the last hours",
		Long: `simulate writes synthetic requests of one rollout to its metrics file (the spec's file: source,
read from the current directory, or --out), spread over the last --hours, split between stable and
canary at the spec's current weight: what the application would have recorded. The canary is healthy,
or it regresses, so that a team can watch each rule fire before trusting it:
  --regress                   its error rate jumps from 1% to 15%
  --regress-cost 2            it costs twice as much per request (projected_extra_cost_per_day, cost rules)
  --regress-segment language=de  its errors go from 1% to 10% for the users of one segment only, a tenth
                              of them (analysis.segments); the others see no change
  --regress-quality           its quality scores fall from 0.85 to 0.75 (quality_score)
  --regress-win-rate 0.4      a judge prefers it in 40% of pairwise comparisons (canary_win_rate)
Users carry a value of each attribute the spec's analysis.segments names (NAME-1 … NAME-4), and, where
a rule reads canary_win_rate, a judge compares 30% of the canary's answers with stable's, late. The
records are appended.

A stage's window starts at status.stageStartedAt, so records older than the stage's start do not count.
--backdate moves status.stageStartedAt of the spec file back by --hours, as if the stage had been
running that long: commit and push it, and the next reconcile judges the simulated hours, with any
records the file already holds from those hours (simulate warns of them).

The requests come from the one synthetic generator of the tests and the demo (policy/source/synth), seeded
by --seed, so a run is reproducible.

Example:
  rollout simulate --spec rollouts/summarizer.yaml --hours 6 --backdate
  rollout simulate --spec rollouts/summarizer.yaml --hours 3 --regress
  rollout simulate --spec rollouts/summarizer.yaml --hours 6 --regress-segment language=de --backdate`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.SpecPath == "" {
				return usageError{errors.New("simulate needs --spec FILE")}
			}
			if opts.Hours <= 0 || opts.Rate <= 0 || opts.Users <= 0 {
				return usageError{errors.New("--hours, --rate and --users must be positive")}
			}
			if err := checkOutput(&opts.Output); err != nil {
				return err
			}
			if opts.RegressCost < 0 || opts.RegressWinRate < 0 || opts.RegressWinRate > 1 {
				return usageError{errors.New("--regress-cost must be positive, --regress-win-rate in 0..1")}
			}
			if s := opts.RegressSegment; s != "" {
				name, value, ok := strings.Cut(s, "=")
				if !ok || !policy.ValidAttrName(name) || value == "" {
					return usageError{fmt.Errorf("--regress-segment %q: want NAME=VALUE, NAME an attribute name (letters, digits, _)", s)}
				}
			}
			return app.simulate(opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.SpecPath, "spec", "", "the rollout spec file")
	f.Float64Var(&opts.Hours, "hours", 6, "how many hours of traffic, ending now")
	f.IntVar(&opts.Rate, "rate", 10000, "requests per hour, both arms together (six hours at the default: about 19 MB, and a healthy canary advances)")
	f.IntVar(&opts.Users, "users", 20000, "how many users send them; each is routed by the spec's assignment")
	f.BoolVar(&opts.Regress, "regress", false, "a regressing canary: its error rate jumps from 1% to 15%")
	f.Float64Var(&opts.RegressCost, "regress-cost", 0, "multiply the canary's cost per request by this factor (2: twice as expensive)")
	f.StringVar(&opts.RegressSegment, "regress-segment", "", "NAME=VALUE: the canary's errors go from 1% to 10% in that segment only (a tenth of the users)")
	f.BoolVar(&opts.RegressQuality, "regress-quality", false, "the canary's quality scores fall from 0.85 to 0.75")
	f.Float64Var(&opts.RegressWinRate, "regress-win-rate", 0, "the canary's share of pairwise judgments, 0..1 (0.4: it loses 40/60)")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the generator")
	f.StringVar(&opts.Out, "out", "", "the JSON Lines file to append to (default: the spec's file: source)")
	f.BoolVar(&opts.Backdate, "backdate", false, "move status.stageStartedAt of the spec file back by --hours")
	outputFlag(cmd, &opts.Output, "one object")
	return cmd
}

// simulation is what `rollout simulate -o json` prints.
type simulation struct {
	Rollout string    `json:"rollout"`
	File    string    `json:"file"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Weight  int       `json:"weight"`
	Stable  int       `json:"stable"`
	Canary  int       `json:"canary"`
	Regress bool      `json:"regress"`
	// Regressions names each regression simulated ("errors 1% → 15%", "cost ×2", …).
	Regressions []string `json:"regressions"`
	Backdated   bool     `json:"backdated"`
}

func (app *App) simulate(opts *simulateOptions) error {
	src, err := hostfile.ReadFile(opts.SpecPath)
	if err != nil {
		return readSpecError(opts.SpecPath, err)
	}
	spec, problems := rollouts.Parse(opts.SpecPath, src)
	if spec == nil {
		for _, p := range problems {
			fmt.Fprintln(app.Stderr, p.Error())
		}
		return errFailed
	}
	if spec.Canary == nil {
		return fmt.Errorf("%s: the spec has no canary to simulate", opts.SpecPath)
	}
	out := opts.Out
	if out == "" {
		path, ok := strings.CutPrefix(spec.Metrics.Source, "file:")
		if !ok {
			return usageError{fmt.Errorf("%s reads metrics from %s, not a file: pass --out FILE", opts.SpecPath, redactSource(spec.Metrics.Source))}
		}
		out = path
	}
	weight := spec.Traffic.Weight
	if weight == 0 && len(spec.Stages) > 0 {
		weight = spec.Stages[0].Weight // not started yet: what its first stage will route
	}
	now := app.Now().UTC().Truncate(time.Second)
	from := now.Add(-time.Duration(opts.Hours * float64(time.Hour)))
	stable := synth.DefaultProfile(spec.Stable.Model)
	stable.Prompt = spec.Stable.Prompt
	canaryProfile := synth.DefaultProfile(spec.Canary.Model)
	canaryProfile.Prompt = spec.Canary.Prompt
	var regressions []string
	if opts.Regress {
		canaryProfile.ErrorRate = 0.15
		regressions = append(regressions, "errors 1% → 15%")
	}
	if opts.RegressCost > 0 && opts.RegressCost != 1 {
		canaryProfile.CostPerToken *= opts.RegressCost
		regressions = append(regressions, fmt.Sprintf("cost per request ×%g", opts.RegressCost))
	}
	if opts.RegressQuality {
		canaryProfile.Quality = 0.75
		regressions = append(regressions, "quality 0.85 → 0.75")
	}
	if opts.RegressWinRate > 0 || specReads(spec, "canary_win_rate") {
		win := 0.5
		if opts.RegressWinRate > 0 {
			win = opts.RegressWinRate
			regressions = append(regressions, fmt.Sprintf("wins %g%% of pairwise judgments", win*100))
		}
		// A tenth of the judgments are ties, counted half a win each.
		canaryProfile.PairwiseShare, canaryProfile.TieRate, canaryProfile.WinRate = 0.3, 0.1, max(win-0.05, 0)
		canaryProfile.PairwiseDelay = 10 * time.Minute
	}
	segments, segmentRegression := simulatedSegments(spec, opts.RegressSegment)
	if segmentRegression != nil {
		regressed := canaryProfile
		regressed.ErrorRate = 0.10
		segmentRegression.Canary = regressed
		regressions = append(regressions, fmt.Sprintf("errors 1%% → 10%% in %s", segmentRegression.Segment))
	}
	// The generator routes each user by the spec's own assignment, as the application would, so that the
	// arms' shares of keys are what the judge's sample-ratio check expects.
	routed := *spec
	routed.Traffic.Weight = weight
	sim := synth.Options{Seed: opts.Seed, From: from, To: now, PerHour: float64(opts.Rate), Users: opts.Users,
		Activity: 1, Stable: stable, Canary: canaryProfile, Segments: segments} // no daily cycle: the same requests whatever the hour it runs at
	if segmentRegression != nil {
		sim.Regressions = []synth.Regression{*segmentRegression}
	}
	var backdated []byte
	if opts.Backdate {
		// Everything --backdate needs is checked before a record is written: a spec it cannot move back
		// must not leave the records of a simulation it refused.
		if backdated, err = backdatedSpec(opts.SpecPath, src, spec, from); err != nil {
			return err
		}
		// Records already in the backdated window were routed at whatever weight held when they were
		// written (an earlier stage's, for an earlier simulate): the judge would mix them with these.
		n, err := recordsSince(out, spec.Name, from)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(app.Stderr, "rollout: warning: %s already holds %d records of %s since %s, which the backdated window "+
				"judges with these; routed at another weight, they show as a sample-ratio mismatch: remove them first "+
				"(git checkout %s, if the file is committed) to judge this simulation alone\n", out, n, spec.Name, from.Format(time.RFC3339), out)
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	rec, err := record.OpenJSONL(out)
	if err != nil {
		return err
	}
	var nStable, nCanary int
	err = synth.Simulate(&routed, sim, func(r synth.Request) error {
		switch {
		case r.Late || r.Shadow:
		case r.Variant == policy.Canary:
			nCanary++
		default:
			nStable++
		}
		if r.Late {
			return rec.RecordLate(synth.Late(r))
		}
		return rec.Record(synth.Record(r))
	})
	if err != nil {
		rec.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := rec.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	res := simulation{Rollout: spec.Name, File: out, From: from, To: now, Weight: weight, Stable: nStable, Canary: nCanary,
		Regress: opts.Regress, Regressions: regressions}
	if res.Regressions == nil {
		res.Regressions = []string{}
	}
	if opts.Backdate {
		if err := os.WriteFile(opts.SpecPath, backdated, 0o644); err != nil {
			return fmt.Errorf("--backdate %s: %w", opts.SpecPath, err)
		}
		res.Backdated = true
	}
	if opts.Output == "json" {
		return writeJSON(app.Stdout, res)
	}
	health := "a healthy canary"
	if len(regressions) > 0 {
		health = "a regressing canary (" + strings.Join(regressions, ", ") + ")"
	}
	fmt.Fprintf(app.Stdout, "%s: %d requests (stable %d, canary %d at %d%%), %s, %s → %s, appended to %s\n", spec.Name, nStable+nCanary,
		nStable, nCanary, weight, health, from.Format(time.RFC3339), now.Format(time.RFC3339), out)
	if res.Backdated {
		fmt.Fprintf(app.Stdout, "%s: status.stageStartedAt moved back to %s: commit and push the spec\n", opts.SpecPath, from.Format(time.RFC3339))
	}
	return nil
}

// backdatedSpec is the spec file with the stage's start of a progressing spec moved back to from, by
// minimal edit, once it is known that the file can be written.
func backdatedSpec(path string, src []byte, spec *rollouts.Spec, from time.Time) ([]byte, error) {
	if spec.Status == nil || spec.Status.Phase != rollouts.Progressing {
		return nil, fmt.Errorf("--backdate: %s is not progressing yet: run rollout reconcile to start it, then git pull; no records were written", path)
	}
	st := *spec.Status
	st.StageStartedAt = from
	edited, err := rollouts.Edit(src, rollouts.Change{Status: &st})
	if err != nil {
		return nil, fmt.Errorf("--backdate %s: %w; no records were written", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("--backdate %s: %w; no records were written", path, err)
	}
	f.Close()
	return edited, nil
}

// recordsSince counts the records of rollout at or after from in the JSON Lines file at path. A missing
// file holds none; a line that does not parse is not counted (the judge reports it).
func recordsSince(path, rollout string, from time.Time) (int, error) {
	f, err := hostfile.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	r := bufio.NewReader(f)
	for {
		line, readErr := r.ReadBytes('\n')
		var rec struct {
			TS      time.Time `json:"ts"`
			Rollout string    `json:"rollout"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Rollout == rollout && !rec.TS.Before(from) {
			n++
		}
		if readErr == io.EOF {
			return n, nil
		}
		if readErr != nil {
			return n, fmt.Errorf("read %s: %w", path, readErr)
		}
	}
}

// specReads reports whether a rule of spec reads metric.
func specReads(spec *rollouts.Spec, metric string) bool {
	for _, r := range spec.Analysis.Rules {
		if r.Metric == metric {
			return true
		}
	}
	return false
}

// simulatedSegments gives the simulated users a value of each attribute the spec's analysis.segments
// names, NAME-1 … NAME-4 in equal shares, and of the attribute of regress (NAME=VALUE, if set): VALUE
// for a tenth of the users, NAME-1 … NAME-3 for the rest, with the regression confined to VALUE.
func simulatedSegments(spec *rollouts.Spec, regress string) ([]synth.SegmentShares, *synth.Regression) {
	name, value, _ := strings.Cut(regress, "=")
	var out []synth.SegmentShares
	for _, attr := range spec.Analysis.Segments {
		if attr == name {
			continue
		}
		out = append(out, synth.SegmentShares{Attr: attr, Values: []string{attr + "-1", attr + "-2", attr + "-3", attr + "-4"}})
	}
	if regress == "" {
		return out, nil
	}
	out = append(out, synth.SegmentShares{Attr: name, Values: []string{value, name + "-1", name + "-2", name + "-3"},
		Shares: []float64{0.1, 0.3, 0.3, 0.3}})
	return out, &synth.Regression{Segment: policy.Attr{Name: name, Value: value}}
}
