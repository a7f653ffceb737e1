package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/reconcile"
)

func (app *App) rollbackCmd() *cobra.Command {
	var reason, output string
	var signed bool
	cmd := &cobra.Command{
		Use:   "rollback NAME --reason TEXT",
		Short: "Roll a rollout back to stable now, as a commit on the default branch",
		Long: "rollback sets the rollout's weight and shadow to 0 and its phase to RolledBack in one commit on\n" +
			"the default branch, closes its open proposal and notifies its rollback targets, like an automatic\n" +
			"rollback. Changing the canary starts a new rollout.\n\n" +
			"Example:\n  rollout rollback summarizer --reason \"support reports truncated summaries\"",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError{errors.New("rollback needs --reason: it goes into the commit and the notification")}
			}
			return app.operate(cmd.Context(), args[0], reconcile.OpRollback, reason, signed, output)
		},
	}
	outputFlag(cmd, &output, "one object")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the commit message and the notification (required)")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}

func (app *App) pauseCmd() *cobra.Command {
	var reason, output string
	var signed bool
	cmd := &cobra.Command{
		Use:   "pause NAME [--reason TEXT]",
		Short: "Pause a rollout at its current weight, as a commit",
		Long: "pause sets the rollout's phase to Paused in a commit on the default branch; the traffic stays as\n" +
			"it is and the reconciler holds until `rollout resume`.\n\nExample:\n  rollout pause summarizer --reason \"holiday freeze\"",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.operate(cmd.Context(), args[0], reconcile.OpPause, reason, signed, output)
		},
	}
	outputFlag(cmd, &output, "one object")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the commit message")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}

func (app *App) resumeCmd() *cobra.Command {
	var signed bool
	var reason, output string
	cmd := &cobra.Command{
		Use:   "resume NAME [--reason TEXT]",
		Short: "Resume a paused rollout, as a commit",
		Long: "resume sets a paused rollout's phase back to Progressing in a commit on the default branch. The\n" +
			"stage's metrics window starts again, since the paused period does not count.\n\nExample:\n  rollout resume summarizer --reason \"freeze over\"",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.operate(cmd.Context(), args[0], reconcile.OpResume, reason, signed, output)
		},
	}
	outputFlag(cmd, &output, "one object")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the commit message")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}

// operationJSON is what `rollback`, `pause` and `resume` print with -o json.
type operationJSON struct {
	Rollout   string   `json:"rollout"`
	Operation string   `json:"operation"`
	From      int      `json:"from"`
	To        int      `json:"to"`
	Commit    *string  `json:"commit"`
	Actor     *string  `json:"actor"`
	Warnings  []string `json:"warnings"`
	Error     *string  `json:"error"`
}

func (app *App) operate(ctx context.Context, name string, op reconcile.Operation, reason string, signed bool, output string) error {
	if err := checkOutput(&output); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	w, err := app.wire(ctx, app.Stderr, signed)
	if err != nil {
		return err
	}
	loop, err := app.loop(w, "", app.cliLog())
	if err != nil {
		return err
	}
	release := app.finishOnSignal("the " + string(op))
	res, err := loop.Operate(ctx, name, op, reason)
	release()
	var warnings []string
	if res.Commit != "" {
		warnings, err = splitDeferred(err)
	}
	warnings = append(res.Warnings, warnings...)
	if output == "json" {
		j := operationJSON{Rollout: name, Operation: string(op), From: res.From, To: res.To, Commit: orNull(res.Commit),
			Actor: orNull(loop.Actor), Warnings: warnings}
		if j.Warnings == nil {
			j.Warnings = []string{}
		}
		if err != nil {
			j.Error = orNull(err.Error())
		}
		if werr := writeJSON(app.Stdout, j); werr != nil {
			return werr
		}
	} else if res.Commit != "" {
		by := ""
		if loop.Actor != "" {
			by = " by " + loop.Actor
		}
		weight := fmt.Sprintf("%d%% → %d%%", res.From, res.To)
		if res.From == res.To {
			weight = fmt.Sprintf("at %d%%", res.To) // pause and resume keep the weight: no arrow between equals
		}
		fmt.Fprintf(app.Stdout, "%s: %s %s in %s%s\n", name, op, weight, shortHash(res.Commit), by)
	}
	for _, w := range warnings {
		fmt.Fprintf(app.Stderr, "rollout: warning: %s\n", w)
	}
	if errors.Is(err, reconcile.ErrUnknownRollout) {
		return usageError{err}
	}
	return err
}

// splitDeferred separates the failures that followed a landed commit and that the next reconcile pass
// repairs (reconcile.ErrDeferred: a notification left pending) from those that remain.
func splitDeferred(err error) (warnings []string, rest error) {
	if err == nil {
		return nil, nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var remaining []error
	for _, e := range errs {
		if errors.Is(e, reconcile.ErrDeferred) {
			warnings = append(warnings, e.Error()+" (the next reconcile pass retries it)")
		} else {
			remaining = append(remaining, e)
		}
	}
	return warnings, errors.Join(remaining...)
}

func (app *App) promoteCmd() *cobra.Command {
	var reason, output string
	var signed bool
	cmd := &cobra.Command{
		Use:   "promote NAME [--reason TEXT]",
		Short: "Move a rollout to its next stage now, skipping the evidence rule (an override), as a commit",
		Long: "promote commits the rollout's next stage (at the last stage: the canary as the new stable) on the\n" +
			"default branch now, whatever the evidence says, and closes its open proposal. The commit carries a\n" +
			"Rollout-Override trailer with the reason, so `rollout history` shows the override and who asked.\n" +
			"Rollback rules keep applying at the new stage.\n\n" +
			"Example:\n  rollout promote summarizer --reason \"launch needs 50% today; evals signed off by hand\"",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.operate(cmd.Context(), args[0], reconcile.OpPromote, reason, signed, output)
		},
	}
	outputFlag(cmd, &output, "one object")
	cmd.Flags().StringVar(&reason, "reason", "", "why the evidence rule is skipped, for the commit's Rollout-Override trailer")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}

func (app *App) retryCmd() *cobra.Command {
	var reason, output string
	var signed bool
	cmd := &cobra.Command{
		Use:   "retry NAME [--reason TEXT]",
		Short: "Start a rolled-back rollout again at stage 0 with the same canary, as a commit",
		Long: "retry commits stage 0 of a rolled-back rollout on the default branch, with the canary it rolled\n" +
			"back (a changed canary starts over by itself). Use it after a rollback that the canary did not\n" +
			"cause, such as a provider outage.\n\nExample:\n  rollout retry summarizer --reason \"the rollback was the provider's outage\"",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.operate(cmd.Context(), args[0], reconcile.OpRetry, reason, signed, output)
		},
	}
	outputFlag(cmd, &output, "one object")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the commit message")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}
