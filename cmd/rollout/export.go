package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/export/growthbook"
)

func (app *App) exportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export FORMAT",
		Short: "Print every rollout in a format another tool routes by",
		Long: `export prints every rollout of the repository's default branch for another tool to route by.

Formats:
  growthbook  a GrowthBook SDK payload {"features": {…}}: one feature per rollout, named after it,
              whose value is {"variant", "model", "prompt"}. Any GrowthBook SDK with hash version 2
              (TypeScript, Python, …) then assigns each key exactly as 'rollout assign' does.
              Shadow traffic cannot be expressed in GrowthBook: each such rollout gets a warning on
              standard error and a note in its feature's description.

A spec with errors is reported on standard error and left out; the others are still exported, and the
exit code is 1.

Example:
  rollout export growthbook > features.json
  rollout export growthbook --repo ../llm-config --dir rollouts > features.json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "growthbook" {
				return usageError{fmt.Errorf("export %q: the only format is growthbook", args[0])}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			_, set, err := app.loadSpecs(ctx)
			if err != nil {
				return err
			}
			return exportGrowthBookRun(set, app.Stdout, app.Stderr)
		},
	}
	return cmd
}

// exportGrowthBookRun writes the payload of every valid rollout in set to out, and the problems of the
// others and what GrowthBook cannot express to errOut.
func exportGrowthBookRun(set *rollouts.Set, out, errOut io.Writer) error {
	specs := make([]*rollouts.Spec, 0, len(set.Documents))
	for _, d := range set.Documents {
		specs = append(specs, d.Spec)
	}
	payload, warnings, err := growthbook.Build(specs)
	if err != nil {
		return fmt.Errorf("export growthbook: %w", err)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(payload); err != nil {
		return fmt.Errorf("write payload: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(errOut, "rollout: warning: %s\n", w)
	}
	problems := set.Errors()
	for _, p := range problems {
		fmt.Fprintln(errOut, p.Error())
	}
	if len(problems) > 0 {
		return errFailed
	}
	return nil
}
