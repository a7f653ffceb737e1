package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/hostfile"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence"
	"github.com/rollout-dev/rollout/policy/gate"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/rollouts"
)

// evaluateOptions holds the flags of `rollout evaluate` and its dependencies, which tests replace.
type evaluateOptions struct {
	SpecPath string
	Metrics  string
	Now      string
	Output   string

	// Tree, when set, is the branch of the repository that the spec (SpecPath, named from the
	// repository's top folder) is read from, and Where names it for messages; nil reads the spec from
	// the host, by the path the user typed.
	Tree  fs.FS
	Where string

	// OpenSource returns the metrics source of a spec (the --metrics override applied).
	OpenSource func(spec *rollouts.Spec, override string) (policy.Source, error)
	// Gates checks the gates the judge needs.
	Gates gateChecker
}

// gateChecker evaluates the gate of one stage of a rollout. Check writes nothing, may call a webhook
// once, and reports every failure as a shut gate with its reason rather than as an error.
type gateChecker interface {
	Check(ctx context.Context, spec *rollouts.Spec, stage int) policy.GateResult
}

func (app *App) evaluateCmd() *cobra.Command {
	opts := &evaluateOptions{}
	cmd := &cobra.Command{
		Use:   "evaluate --spec FILE [--metrics SRC] [--now RFC3339] [-o json]",
		Short: "Judge one rollout now and print the decision, writing nothing",
		Long: `Evaluate judges one rollout spec against its metrics, as the reconciler would on this tick, and
prints the decision with the evidence of every rule. It writes nothing: no commit, no pull request, no
notification.

The metrics window is the current stage's [status.stageStartedAt, now]. --metrics replaces the spec's
metrics.source for this run; --now judges as of another time.

Without --repo and --branch, the spec and the gate files it names are read from the files on disk (the
current directory, or the local folder --repo names). With --repo naming a URL or a bare repository, or
with --branch, they are read as that branch holds them, and --spec is named from the repository's top
folder. A relative file: metrics path is always read from the directory rollout runs in.

Example:
  rollout evaluate --spec rollouts/summarizer.yaml --metrics file:traffic/summarizer.jsonl -o json
  rollout evaluate --spec rollouts/summarizer.yaml --repo https://github.com/acme/llm-config.git`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.SpecPath == "" {
				return usageError{errors.New("evaluate needs --spec FILE")}
			}
			if opts.Output != "" && opts.Output != "text" && opts.Output != "json" {
				return usageError{fmt.Errorf("unknown output format %q (want text or json)", opts.Output)}
			}
			if opts.OpenSource == nil {
				opts.OpenSource = app.openSource
			}
			var repo fs.FS
			if app.readsWorkingTree() {
				repo = app.repoTree()
			} else {
				name, err := repoPath("--spec "+opts.SpecPath, opts.SpecPath)
				if err != nil {
					return err
				}
				tree, where, err := app.branchTree(cmd.Context())
				if err != nil {
					return err
				}
				opts.SpecPath, opts.Tree, opts.Where = name, tree, where
				repo = tree
			}
			if opts.Gates == nil {
				opts.Gates = &gate.Keeper{Repo: repo, Getenv: app.gateGetenv(nil)}
			}
			return app.evaluate(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.SpecPath, "spec", "", "the rollout spec file to judge")
	f.StringVar(&opts.Metrics, "metrics", "", "metrics source for this run: file:PATH, prometheus:URL, postgres://… or clickhouse://… (default: the spec's)")
	f.StringVar(&opts.Now, "now", "", "judge as of this time, RFC 3339 (default: now)")
	f.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

// repoTree is the tree on disk that gate eval paths are read from when readsWorkingTree: the local
// folder --repo names, else the current directory.
func (app *App) repoTree() fs.FS {
	if app.Repo != "" {
		return hostfile.DirFS(app.Repo)
	}
	return hostfile.DirFS(".")
}

// evaluate judges the spec at opts.SpecPath and prints the decision.
func (app *App) evaluate(ctx context.Context, opts *evaluateOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	now := app.Now()
	if opts.Now != "" {
		t, err := time.Parse(time.RFC3339, opts.Now)
		if err != nil {
			return usageError{fmt.Errorf("--now %q is not an RFC 3339 time such as 2026-04-16T12:00:00Z", opts.Now)}
		}
		now = t
	}
	var src []byte
	var err error
	if opts.Tree != nil {
		if src, err = fs.ReadFile(opts.Tree, opts.SpecPath); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("read spec %s on %s: %w", opts.SpecPath, opts.Where, err)
		}
	} else if src, err = hostfile.ReadFile(opts.SpecPath); err != nil {
		return readSpecError(opts.SpecPath, err)
	}
	spec, problems := rollouts.Parse(opts.SpecPath, src)
	for _, p := range problems {
		if p.Warning {
			fmt.Fprintf(app.Stderr, "%s:%d:%d: warning: %s\n", p.File, p.Line, p.Col, p.Message)
		} else {
			fmt.Fprintln(app.Stderr, p.Error())
		}
	}
	if spec == nil {
		return errFailed
	}

	ev := policy.Evidence{Gates: map[int]policy.GateResult{}}
	for _, i := range policy.NextGates(spec) {
		ev.Gates[i] = opts.Gates.Check(ctx, spec, i)
	}
	if q, ok := policy.QueryFor(spec, now); ok {
		source, err := opts.OpenSource(spec, opts.Metrics)
		if err != nil {
			return fmt.Errorf("open metrics source: %w", err)
		}
		ev.Stats, ev.Err = policy.ForTick(source).Stats(ctx, q)
	}
	d := policy.Judge(spec, ev, now)
	noData := metricsWithoutData(d, spec.Metrics.Schema)
	source := spec.Metrics.Source
	if opts.Metrics != "" {
		source = opts.Metrics
	}
	if opts.Output == "json" {
		err = writeEvaluationJSON(app.Stdout, d, ev.Stats, noData)
	} else {
		err = writeEvaluationText(app.Stdout, d, ev.Stats, source, noData, policy.RequestLevel(spec, d.Unit))
	}
	if err != nil {
		return err
	}
	if ev.Err != nil && !errors.Is(ev.Err, policy.ErrNoData) {
		// The decision printed is a hold for want of data: the run failed to judge, and says so. No data
		// yet (no file, no rows for the rollout) is no failure: the hold says so, and the run succeeds.
		fmt.Fprintf(app.Stderr, "rollout: metrics source %s: %v\n", redactSource(source), ev.Err)
		return errFailed
	}
	return nil
}

// evaluation is the JSON object of `evaluate -o json`, exactly as CONTRACT.md names it.
type evaluation struct {
	Rollout  string           `json:"rollout"`
	Decision policy.Action    `json:"decision"`
	Stage    int              `json:"stage"`
	Weight   int              `json:"weight"`
	Next     *evaluationNext  `json:"next"`
	Reasons  []string         `json:"reasons"`
	Metrics  []evaluationRule `json:"metrics"`
	// Unit is what the statistics counted as one independent observation: "key" (the assignment key,
	// where the source knows it) or "request" (Prometheus: requests only); absent without statistics.
	Unit policy.Unit `json:"unit,omitempty"`
	// Window is the span both arms were compared over (from the stage's first canary record).
	Window *policy.Window `json:"window,omitempty"`
	// SampleRatioMismatch: the canary's share differs from the spec's; the evidence cannot be trusted.
	SampleRatioMismatch bool `json:"sampleRatioMismatch,omitempty"`
	// NotRandomised counts the requests of include/exclude keys left out of both arms.
	NotRandomised int64 `json:"notRandomised,omitempty"`
	// Malformed counts the records the source could not read (0 when it read every one).
	Malformed int64 `json:"malformed"`
	// NoData names the judged metrics that had no data in at least one arm; absent when there are none.
	NoData []string `json:"noData,omitempty"`
}

type evaluationNext struct {
	Stage  int `json:"stage"`
	Weight int `json:"weight"`
}

type evaluationArm struct {
	N int64 `json:"n"`
	// Value is null when the arm has no data: never zero.
	Value *float64 `json:"value"`
}

type evaluationRule struct {
	Name     string           `json:"name"`
	Stable   evaluationArm    `json:"stable"`
	Canary   evaluationArm    `json:"canary"`
	Verdict  policy.Verdict   `json:"verdict"`
	Interval *policy.Interval `json:"interval"`
	Reason   string           `json:"reason"`
	// Limits holds each limit's verdict and interval on its own scale.
	Limits []policy.LimitResult `json:"limits,omitempty"`
	// Advisory: a bare value from a query, shown and never acted on.
	Advisory bool `json:"advisory,omitempty"`
}

func armJSON(a policy.ArmValue) evaluationArm {
	out := evaluationArm{N: a.N}
	if a.N > 0 && !math.IsNaN(a.Value) && !math.IsInf(a.Value, 0) {
		v := a.Value
		out.Value = &v
	}
	return out
}

func writeEvaluationJSON(w io.Writer, d policy.Decision, stats *policy.Stats, noData []noDataMetric) error {
	out := evaluation{Rollout: d.Rollout, Decision: d.Action, Stage: d.Current.Stage, Weight: d.Current.Weight,
		Reasons: d.Reasons, Metrics: []evaluationRule{}, Unit: d.Unit, Window: d.Window,
		SampleRatioMismatch: d.SampleRatioMismatch, NotRandomised: d.NotRandomised}
	for _, m := range noData {
		out.NoData = append(out.NoData, m.Name)
	}
	if out.Reasons == nil {
		out.Reasons = []string{}
	}
	if d.Next != nil {
		out.Next = &evaluationNext{Stage: d.Next.Stage, Weight: d.Next.Weight}
	}
	for _, m := range d.Metrics {
		out.Metrics = append(out.Metrics, evaluationRule{Name: m.Name, Stable: armJSON(m.Stable), Canary: armJSON(m.Canary),
			Verdict: m.Verdict, Interval: m.Interval, Reason: m.Reason, Limits: m.Limits, Advisory: m.Advisory})
	}
	if stats != nil {
		out.Malformed = stats.Malformed
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeEvaluationText writes d for a reader; unitWarning (policy.RequestLevel) is printed under the
// unit when the reasons do not already say it.
func writeEvaluationText(w io.Writer, d policy.Decision, stats *policy.Stats, source string, noData []noDataMetric, unitWarning string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", d.Rollout, d.Action)
	fmt.Fprintf(&b, " (stage %d, %s", d.Current.Stage, trafficWords(d.Current.Weight, d.Current.Shadow))
	if d.Next != nil {
		fmt.Fprintf(&b, " → stage %d, %s", d.Next.Stage, trafficWords(d.Next.Weight, d.Next.Shadow))
	}
	b.WriteString(")\n")
	for _, r := range d.Reasons {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	if len(d.Metrics) > 0 {
		b.WriteString("\n")
		if d.Unit != "" {
			fmt.Fprintf(&b, "unit: %s (%s)\n", d.Unit, unitWords(d.Unit))
			if unitWarning != "" && !slices.Contains(d.Reasons, unitWarning) {
				fmt.Fprintf(&b, "warning: %s\n", unitWarning)
			}
		}
		b.WriteString(evidence.TextTable(evidence.Rows(d)))
		b.WriteString("\n")
		for _, m := range d.Metrics {
			fmt.Fprintf(&b, "  %s: %s\n", m.Name, m.Reason)
		}
	}
	if len(noData) > 0 {
		words := make([]string, len(noData))
		for i, m := range noData {
			words[i] = m.Name + " (" + m.Why + ")"
		}
		fmt.Fprintf(&b, "\nno data: %s\n", strings.Join(words, ", "))
	}
	if stats != nil && stats.Malformed > 0 {
		b.WriteString("\n" + policy.MalformedSummary(source, stats) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// unitWords says what the unit of the statistics means for a reader.
func unitWords(u policy.Unit) string {
	if u == policy.UnitKey {
		return "each assignment key counts as one unit, however many requests it sent"
	}
	return "the source counts requests only, so each request is treated as independent"
}

func trafficWords(weight, shadow int) string {
	if shadow > 0 && weight == 0 {
		return fmt.Sprintf("shadow %d%%", shadow)
	}
	if shadow > 0 {
		return fmt.Sprintf("%d%% + shadow %d%%", weight, shadow)
	}
	return fmt.Sprintf("%d%%", weight)
}

// noDataMetric is a judged metric that had no data in at least one arm, and why.
type noDataMetric struct {
	Name string
	Why  string
}

// metricsWithoutData lists the decision's metrics with no data in an arm; a built-in metric that the
// spec's metrics.schema does not hold says so (the OpenTelemetry conventions have no cost or quality).
func metricsWithoutData(d policy.Decision, schema string) []noDataMetric {
	held := map[string]bool{}
	for _, m := range prom.SchemaMetrics(schema) {
		held[m] = true
	}
	var out []noDataMetric
	for _, m := range d.Metrics {
		var why string
		switch {
		case m.Stable.N > 0 && m.Canary.N > 0:
			continue
		case len(held) > 0 && !held[m.Name] && slices.Contains(rollouts.BuiltinMetricNames, m.Name):
			why = "not in the " + schema + " schema"
		case m.Stable.N == 0 && m.Canary.N == 0:
			why = "neither arm"
		case m.Canary.N == 0:
			why = "canary arm"
		default:
			why = "stable arm"
		}
		out = append(out, noDataMetric{m.Name, why})
	}
	return out
}
