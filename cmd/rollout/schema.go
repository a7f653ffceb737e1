package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"

	"github.com/invopop/jsonschema"
	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/rollouts"
)

// SchemaID is where the published schema lives; examples point editors at it with a
// `# yaml-language-server: $schema=…` first line.
const SchemaID = "https://raw.githubusercontent.com/rollout-dev/rollout/main/docs/rollout.schema.json"

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
	r := &jsonschema.Reflector{RequiredFromJSONSchemaTags: true, CommentMap: specComments()}
	s := r.Reflect(&rollouts.Spec{})
	s.ID = SchemaID
	s.Title = "rollout spec"
	s.Description = "One canary rollout of an LLM model or prompt change (apiVersion " + rollouts.APIVersion + ")."
	return s
}

// specComments maps "pkg.Type" and "pkg.Type.Field" to the doc comments of the spec types, the
// way the reflector looks descriptions up.
func specComments() map[string]string {
	const pkg = "github.com/rollout-dev/rollout/rollouts"
	out := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "spec.go", rollouts.SpecSource, parser.ParseComments)
	if err != nil {
		return out // descriptions are a help, not a requirement
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			text := ts.Doc.Text()
			if text == "" && len(gd.Specs) == 1 {
				text = gd.Doc.Text()
			}
			if text != "" {
				out[pkg+"."+ts.Name.Name] = oneLine(text)
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, field := range st.Fields.List {
				text := field.Doc.Text()
				if text == "" {
					text = field.Comment.Text()
				}
				for _, name := range field.Names {
					if text != "" {
						out[pkg+"."+ts.Name.Name+"."+name.Name] = oneLine(text)
					}
				}
			}
		}
	}
	return out
}

// oneLine joins a comment's lines into one paragraph.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func specSchemaJSON() ([]byte, error) {
	b, err := json.MarshalIndent(specSchema(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render schema: %w", err)
	}
	return b, nil
}
