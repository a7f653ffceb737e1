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
	return []reconcile.Publication{{Path: p, Render: renderGrowthBook, Keep: keepGrowthBook}}, nil
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

// keepGrowthBook is renderGrowthBook's reconcile.Publication.Keep: the rendered payload plus every
// feature of the previous one that it lacks, so that while a spec file has errors the applications keep
// routing its rollout as they were, instead of finding no feature (which the docs' TypeScript route
// throws on). A previous payload that does not read as one is replaced.
func keepGrowthBook(previous, rendered []byte) ([]byte, error) {
	type payload struct {
		Features map[string]json.RawMessage `json:"features"`
	}
	var old, now payload
	if err := json.Unmarshal(previous, &old); err != nil || len(old.Features) == 0 {
		return rendered, nil
	}
	if err := json.Unmarshal(rendered, &now); err != nil {
		return nil, fmt.Errorf("read the rendered payload: %w", err)
	}
	if now.Features == nil {
		now.Features = map[string]json.RawMessage{}
	}
	kept := false
	for name, f := range old.Features {
		if _, ok := now.Features[name]; !ok {
			now.Features[name], kept = f, true
		}
	}
	if !kept {
		return rendered, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(now); err != nil {
		return nil, fmt.Errorf("write the payload: %w", err)
	}
	return b.Bytes(), nil
}
