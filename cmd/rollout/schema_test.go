package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func TestSchemaGolden(t *testing.T) {
	base, _ := os.Getwd()
	code, stdout, stderr := runApp("schema")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Descriptions come from the doc comments of the spec types.
	if !strings.Contains(stdout, `"Weight is the percent of assignment keys routed to the canary, 0..100."`) {
		t.Error("the schema lacks the doc comment of Traffic.Weight")
	}
	// The published copy that the examples' yaml-language-server lines point at never drifts from
	// the types: it is this test's golden file.
	checkGoldenFile(t, filepath.Join(base, "..", "..", "docs", "rollout.schema.json"), []byte(stdout))
}

// compileSchema compiles the output of `rollout schema` with an independent validator.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	_, stdout, _ := runApp("schema")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(stdout)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("rollout.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("rollout.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// yamlAsJSON reads a YAML file as the JSON value an editor's YAML language server would validate.
func yamlAsJSON(t *testing.T, path string) any {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	// Round-trip through encoding/json, with timestamps as strings, to get JSON's own types.
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonable(e)
		}
	case []any:
		for i, e := range v {
			v[i] = jsonable(e)
		}
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return v
}

// Every valid example in the repository validates against the schema, and the broken ones that the
// schema can judge do not.
func TestSchemaValidatesExamples(t *testing.T) {
	s := compileSchema(t)
	valid, _ := filepath.Glob(filepath.Join("..", "..", "rollouts", "testdata", "edit", "*.yaml"))
	valid = append(valid,
		filepath.Join("testdata", "specs", "rollouts", "good.yaml"),
		filepath.Join("testdata", "specs", "rollouts", "lints.yaml"),
		filepath.Join("testdata", "specs", "rollouts", "escape.yaml"),
	)
	examples, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "rollouts", "*.yaml"))
	valid = append(valid, examples...)
	goldens, _ := filepath.Glob(filepath.Join("..", "..", "rollouts", "testdata", "edit", "*.golden"))
	for _, g := range goldens {
		valid = append(valid, g)
	}
	for _, path := range valid {
		if err := s.Validate(yamlAsJSON(t, path)); err != nil {
			t.Errorf("%s does not validate: %v", path, err)
		}
	}
	for _, name := range []string{"typos.yaml", "types.yaml", "header.yaml", "stages.yaml", "sources.yaml", "durations.yaml"} {
		path := filepath.Join("testdata", "specs", "rollouts", name)
		if err := s.Validate(yamlAsJSON(t, path)); err == nil {
			t.Errorf("%s validates, want an error", path)
		}
	}
}

// TestExampleSpecsPointAtThePublishedSchema: a copied example spec keeps a $schema that resolves, the
// schema's published URL, rather than a path relative to this repository (issue 15).
func TestExampleSpecsPointAtThePublishedSchema(t *testing.T) {
	specs, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "rollouts", "*.yaml"))
	if err != nil || len(specs) == 0 {
		t.Fatalf("no example specs: %v", err)
	}
	for _, path := range specs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if first != "# yaml-language-server: $schema="+SchemaID {
			t.Errorf("%s: first line %q, want the published schema %s", path, first, SchemaID)
		}
	}
}
