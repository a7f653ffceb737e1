package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/reconcile"
)

func (app *App) rollbackCmd() *cobra.Command {
	var reason string
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
			return app.operate(cmd.Context(), args[0], reconcile.OpRollback, reason, signed)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the commit message and the notification (required)")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}

func (app *App) pauseCmd() *cobra.Command {
	var reason string
	var signed bool
	cmd := &cobra.Command{
		Use:   "pause NAME [--reason TEXT]",
		Short: "Pause a rollout at its current weight, as a commit",
		Long: "pause sets the rollout's phase to Paused in a commit on the default branch; the traffic stays as\n" +
			"it is and the reconciler holds until `rollout resume`.\n\nExample:\n  rollout pause summarizer --reason \"holiday freeze\"",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.operate(cmd.Context(), args[0], reconcile.OpPause, reason, signed)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the commit message")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}

func (app *App) resumeCmd() *cobra.Command {
	var signed bool
	cmd := &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a paused rollout, as a commit",
		Long: "resume sets a paused rollout's phase back to Progressing in a commit on the default branch. The\n" +
			"stage's metrics window starts again, since the paused period does not count.\n\nExample:\n  rollout resume summarizer",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.operate(cmd.Context(), args[0], reconcile.OpResume, "", signed)
		},
	}
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commit through GitHub's API, so GitHub signs it (GitHub only)")
	return cmd
}

func (app *App) operate(ctx context.Context, name string, op reconcile.Operation, reason string, signed bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	w, err := app.wire(ctx, app.Stderr, signed)
	if err != nil {
		return err
	}
	res, err := app.loop(w, "", app.cliLog()).Operate(ctx, name, op, reason)
	if res.Commit != "" {
		fmt.Fprintf(app.Stdout, "%s: %s %d%% → %d%% in %s\n", name, op, res.From, res.To, shortHash(res.Commit))
		err = app.warnDeferred(err)
	}
	if errors.Is(err, reconcile.ErrUnknownRollout) {
		return usageError{err}
	}
	return err
}

// warnDeferred reports as warnings the failures that followed a landed commit and that the next
// reconcile pass repairs (reconcile.ErrDeferred: a notification left pending, a proposal left open),
// and returns the failures that remain.
func (app *App) warnDeferred(err error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var rest []error
	for _, e := range errs {
		if errors.Is(e, reconcile.ErrDeferred) {
			fmt.Fprintf(app.Stderr, "rollout: warning: %v (the next reconcile pass retries it)\n", e)
		} else {
			rest = append(rest, e)
		}
	}
	return errors.Join(rest...)
}
