package main

import (
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"
	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/rollouts"
)

// SchemaID is where the published schema lives; examples point editors at it with a
// `# yaml-language-server: $schema=…` first line.
const SchemaID = "https://raw.githubusercontent.com/rollout-dev/rollout/main/rollout.schema.json"

func (app *App) schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of a rollout spec, for editors",
		Long: `Schema prints the JSON Schema of a rollout spec file, generated from the Go types that
rollout itself reads, so it never drifts from them. Editors with the YAML language server
validate and complete a spec as you type when its first line names the schema:

  # yaml-language-server: $schema=` + SchemaID + `

Example:
  rollout schema > rollout.schema.json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := specSchemaJSON()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(app.Stdout, "%s\n", b)
			return err
		},
	}
}

// specSchema reflects the JSON Schema of rollouts.Spec. Only fields tagged `jsonschema:"required"`
// are required, matching what Parse requires, and unknown keys are refused, as Parse refuses them.
func specSchema() *jsonschema.Schema {
	r := &jsonschema.Reflector{RequiredFromJSONSchemaTags: true}
	s := r.Reflect(&rollouts.Spec{})
	s.ID = SchemaID
	s.Title = "rollout spec"
	s.Description = "One canary rollout of an LLM model or prompt change (apiVersion " + rollouts.APIVersion + ")."
	return s
}

func specSchemaJSON() ([]byte, error) {
	b, err := json.MarshalIndent(specSchema(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render schema: %w", err)
	}
	return b, nil
}
