package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/policy/evidence"
	"github.com/rollout-dev/rollout/reconcile"
)

// reconcileOptions are the inputs of `rollout reconcile` and `rollout plan`.
type reconcileOptions struct {
	DryRun  bool
	Output  string // text or json
	Format  string // plan only: text or markdown
	Metrics string
	Signed  bool
	// Base (plan only) plans the checked-out pull request against this base branch.
	Base string
}

func (app *App) reconcileCmd() *cobra.Command {
	opts := &reconcileOptions{}
	cmd := &cobra.Command{
		Use:   "reconcile [--dry-run] [-o json]",
		Short: "Evaluate every rollout once and write what the decisions call for",
		Long: "reconcile makes one pass over every rollout of the repository: it starts pending rollouts, opens\n" +
			"or updates the pull request of a stage that may advance, and commits rollbacks straight to the\n" +
			"default branch. A second pass with nothing new writes nothing. It exits 1 when a rollout or a\n" +
			"spec failed; the others are still reconciled.\n\n" +
			"Example:\n  rollout reconcile --repo https://github.com/acme/llm-config -o json",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.reconcileRun(cmd.Context(), opts, false)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "decide and print, writing nothing (same as rollout plan)")
	cmd.Flags().BoolVar(&opts.Signed, "signed-commits", false, "make commits through GitHub's API, so GitHub signs them (GitHub only)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json (an array of one object per rollout)")
	cmd.Flags().StringVar(&opts.Metrics, "metrics", "", "metrics source for every rollout of this run, replacing the specs' own (file:PATH, …)")
	return cmd
}

func (app *App) planCmd() *cobra.Command {
	opts := &reconcileOptions{DryRun: true}
	cmd := &cobra.Command{
		Use:   "plan [--format text|markdown] [-o json]",
		Short: "Show what reconcile would do now, writing nothing",
		Long: "plan makes the same decisions as reconcile and writes nothing: no commit, no pull request, no\n" +
			"notification. --format markdown prints a table and the evidence of each rollout, for a pull\n" +
			"request comment.\n\n" +
			"With --base, plan reads the specs from the local checkout of a pull request (its head, or the\n" +
			"merge that actions/checkout makes) instead of the default branch, and says what the reconciler\n" +
			"would do once the pull request merges into that base branch.\n\n" +
			"Example:\n  rollout plan --format markdown > plan.md\n  rollout plan --repo . --base main --format markdown",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.reconcileRun(cmd.Context(), opts, true)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "text", "text format: text or markdown")
	cmd.Flags().StringVar(&opts.Base, "base", "", "plan the checked-out pull request (--repo PATH, default the current directory) as if merged into this base branch")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json (an array of one object per rollout)")
	cmd.Flags().StringVar(&opts.Metrics, "metrics", "", "metrics source for every rollout of this run, replacing the specs' own (file:PATH, …)")
	return cmd
}

func (app *App) reconcileRun(ctx context.Context, opts *reconcileOptions, plan bool) error {
	if opts.Output != "text" && opts.Output != "json" {
		return usageError{fmt.Errorf("unknown output format %q: want text or json", opts.Output)}
	}
	if opts.Base != "" && opts.Signed {
		return usageError{errors.New("--base plans and writes nothing; --signed-commits does not apply")}
	}
	if plan && opts.Format != "text" && opts.Format != "markdown" {
		return usageError{fmt.Errorf("unknown format %q: want text or markdown", opts.Format)}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// The local forge prints proposals; in JSON mode they go to stderr so stdout stays JSON.
	proposalsOut := app.Stdout
	if opts.Output == "json" || opts.Format == "markdown" {
		proposalsOut = app.Stderr
	}
	var w *wiring
	var err error
	heading, notPR := "", ""
	if opts.Base != "" {
		var head string
		w, head, err = app.planHeadWiring(ctx, opts.Base)
		heading = fmt.Sprintf("rollout plan for this pull request (%s) against %s: what the reconciler does once it merges", dash(shortHash(head)), opts.Base)
		if err == nil {
			if why := w.pr.notThePullRequest(head, app.Getenv("GITHUB_EVENT_NAME")); why != "" {
				// Said in the comment and in the log: a plan that reads "no change" must not pass for
				// the pull request's.
				heading = fmt.Sprintf("rollout plan of %s (%s), not of a pull request", opts.Base, dash(shortHash(head)))
				notPR = why
				fmt.Fprintf(app.Stderr, "rollout: warning: %s\n", why)
			}
		}
	} else {
		w, err = app.wire(ctx, proposalsOut, opts.Signed)
	}
	if err != nil {
		return err
	}
	loop, err := app.loop(w, opts.Metrics, app.cliLog())
	if err != nil {
		return err
	}
	if !opts.DryRun {
		defer app.finishOnSignal("the pass")()
	}
	rep, err := loop.Run(ctx, reconcile.RunOptions{DryRun: opts.DryRun, Stop: app.stopping()})
	if err != nil {
		return err
	}
	changes := ""
	if w.pr != nil {
		// A pull request's plan is about the change: metrics it must not or cannot read are notes.
		settle(rep)
		if set, err := loop.Specs(ctx); err == nil {
			changes = describeChanges(w.pr, set)
		}
	}
	switch {
	case opts.Output == "json":
		err = writeResultsJSON(app.Stdout, rep)
	case opts.Format == "markdown":
		if notPR != "" {
			heading += "\n\n> **Warning:** " + notPR + "."
		}
		err = writePlanMarkdown(app.Stdout, rep, heading, changes)
	default:
		if heading != "" {
			fmt.Fprintln(app.Stdout, heading)
		}
		if notPR != "" {
			fmt.Fprintf(app.Stdout, "warning: %s\n", notPR)
		}
		if changes != "" {
			fmt.Fprintln(app.Stdout, strings.TrimPrefix(changes, "#### "))
		}
		err = writeResultsText(app.Stdout, rep, opts.DryRun)
	}
	if err != nil {
		return err
	}
	if rep.Published != "" {
		fmt.Fprintf(app.Stderr, "rollout: published %s in %s (the specs had changed without it)\n", app.Getenv(envExportGrowthBook), shortHash(rep.Published))
	}
	if rep.PublishErr != nil {
		fmt.Fprintf(app.Stderr, "rollout: warning: %v (the next pass tries again)\n", rep.PublishErr)
	}
	hints := map[string]bool{}
	for _, r := range rep.Results {
		for _, warning := range r.Warnings {
			fmt.Fprintf(app.Stderr, "rollout: warning: %s: %s\n", r.Rollout, warning)
		}
		if r.Err != nil {
			fmt.Fprintf(app.Stderr, "rollout: %s: %v\n", r.Rollout, r.Err)
			if hint := nextStep(r.Err); hint != "" && !hints[hint] {
				hints[hint] = true
				fmt.Fprintf(app.Stderr, "hint: %s\n", hint)
			}
		}
	}
	if rep.Failed() {
		return errFailed
	}
	if len(rep.Results) == 0 {
		branch := rep.Branch
		if opts.Base != "" {
			branch = "" // the pull request's checkout
		}
		return app.noSpecs(branch)
	}
	return nil
}

// resultJSON is one line of `reconcile -o json` and `plan -o json`, as the contract names its fields.
type resultJSON struct {
	Rollout  string   `json:"rollout"`
	Decision *string  `json:"decision"`
	From     int      `json:"from"`
	To       int      `json:"to"`
	Commit   *string  `json:"commit"`
	Proposal *string  `json:"proposal"`
	Error    *string  `json:"error"`
	Effect   string   `json:"effect,omitempty"`
	Reasons  []string `json:"reasons"`
	Warnings []string `json:"warnings"`
	File     string   `json:"file,omitempty"`
	// Next says what a person can do next (after a rollback: how to try again); absent otherwise.
	Next string `json:"next,omitempty"`
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeResultsJSON prints one JSON array holding one object per rollout (docs/cli.md).
func writeResultsJSON(w io.Writer, rep *reconcile.Report) error {
	out := make([]resultJSON, 0, len(rep.Results))
	for _, r := range rep.Results {
		j := resultJSON{Rollout: r.Rollout, Decision: orNull(string(r.Decision)), From: r.From, To: r.To,
			Commit: orNull(r.Commit), Proposal: orNull(r.Proposal), Effect: r.Effect, Reasons: r.Reasons,
			Warnings: r.Warnings, File: r.File, Next: r.Next}
		if j.Reasons == nil {
			j.Reasons = []string{}
		}
		if j.Warnings == nil {
			j.Warnings = []string{}
		}
		if r.Err != nil {
			j.Error = orNull(r.Err.Error())
		}
		out = append(out, j)
	}
	// One line: the Action and scripts read it whole (jq), people read the text output.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

func writeResultsText(w io.Writer, rep *reconcile.Report, dryRun bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	done := "DONE"
	if dryRun {
		done = "WOULD DO"
	}
	fmt.Fprintf(tw, "ROLLOUT\tDECISION\tWEIGHT\t%s\tCOMMIT\tPROPOSAL\n", done)
	for _, r := range rep.Results {
		decision := string(r.Decision)
		effect := r.Effect
		if r.Err != nil {
			if decision == "" {
				decision = "-"
			}
			effect = "failed: " + firstLineOf(r.Err.Error())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Rollout, decision, weights(r), effect, dash(shortHash(r.Commit)), dash(r.Proposal))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeNext(w, rep.Results)
}

// writeNext prints, under a table of rollouts, what a person can do next for those that wait on one.
func writeNext(w io.Writer, results []reconcile.Result) error {
	first := true
	for _, r := range results {
		if r.Next == "" {
			continue
		}
		if first {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
			first = false
		}
		if _, err := fmt.Fprintf(w, "%s: %s\n", r.Rollout, r.Next); err != nil {
			return err
		}
	}
	return nil
}

// writePlanMarkdown prints the plan for a pull request comment, under heading ("": the default
// branch's plan at its head).
func writePlanMarkdown(w io.Writer, rep *reconcile.Report, heading, changes string) error {
	var b strings.Builder
	if heading == "" {
		heading = fmt.Sprintf("rollout plan for %s at %s", rep.Branch, shortHash(rep.Head))
	}
	fmt.Fprintf(&b, "### %s\n\n", heading)
	if changes != "" {
		b.WriteString(changes + "\n#### What the reconciler does once it merges\n\n")
	}
	if len(rep.Results) == 0 {
		b.WriteString("_No rollouts._\n")
	} else {
		b.WriteString("| rollout | decision | weight | would do |\n|---|---|---|---|\n")
		for _, r := range rep.Results {
			effect := r.Effect
			if r.Err != nil {
				effect = "**failed**: " + firstLineOf(r.Err.Error())
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCell(r.Rollout), dash(string(r.Decision)), weights(r), mdCell(effect))
		}
		for _, r := range rep.Results {
			if r.Next != "" {
				fmt.Fprintf(&b, "\n**%s**: %s\n", mdCell(r.Rollout), mdCell(r.Next))
			}
		}
	}
	for _, r := range rep.Results {
		if r.Evidence == nil {
			continue
		}
		fmt.Fprintf(&b, "\n<details><summary>%s: evidence</summary>\n\n%s\n</details>\n", mdCell(r.Rollout), evidence.Markdown(*r.Evidence))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// weights is "from% → to%", "w%" when the weight stays, or "-" for a spec that failed to load.
func weights(r reconcile.Result) string {
	if r.Decision == "" {
		return "-"
	}
	if r.From == r.To {
		return fmt.Sprintf("%d%%", r.To)
	}
	return fmt.Sprintf("%d%% → %d%%", r.From, r.To)
}

// mdCell escapes text from file names, specs and metrics for the plan's table: no live @mention, link,
// HTML or line break (reconcile.Cell, the one escaper of the text the bot posts).
func mdCell(s string) string { return reconcile.Cell(s) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func firstLineOf(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
