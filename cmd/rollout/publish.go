package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/export/growthbook"
)

// envExportGrowthBook names the repository file that reconcile, run, rollback, pause and resume keep
// as the GrowthBook payload of every rollout (what `rollout export growthbook` prints), in the same
// commit as each weight change they make on the default branch.
const envExportGrowthBook = "ROLLOUT_EXPORT_GROWTHBOOK"

// publications are the files the loop keeps current on the default branch, from the environment.
func (app *App) publications() ([]reconcile.Publication, error) {
	p := app.Getenv(envExportGrowthBook)
	if p == "" {
		return nil, nil
	}
	if err := reconcile.ValidPublicationPath(p); err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", envExportGrowthBook, err)}
	}
	return []reconcile.Publication{{Path: p, Render: renderGrowthBook}}, nil
}

// renderGrowthBook is the payload `rollout export growthbook` prints for specs, byte for byte.
func renderGrowthBook(specs []*rollouts.Spec) ([]byte, error) {
	payload, _, err := growthbook.Build(specs)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(payload); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
