package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/rollouts"
)

// initOptions are the inputs of `rollout init`.
type initOptions struct {
	Name         string
	StableModel  string
	CanaryModel  string
	Prompt       string
	CanaryPrompt string
	Source       string
	Key          string
	// Root is the repository's top folder and Dir the specs folder inside it; the spec is written to
	// Root/Dir/Name.yaml.
	Root string
	Dir  string
	// Output is text or json.
	Output string
	Out    io.Writer
	Err    io.Writer
}

func (app *App) initCmd() *cobra.Command {
	opts := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init NAME --stable-model MODEL --canary-model MODEL [--prompt PATH] [--source URL]",
		Short: "Write a new rollout spec, with comments, that validates as it is",
		Long: `Init writes rollouts/NAME.yaml (the --dir folder of the repository): a rollout of the canary
model (and prompt) against the stable one in four stages (5%, 25%, 50%, 100%), judged on error
rate, p95 latency and cost per request, with a comment on every block saying what it does and
what to change. It never overwrites a file: an existing spec is left as it is and init fails.

Merge the file on the default branch (or open a pull request with it): the reconciler starts
the canary at the first stage on its next tick.

Example:
  rollout init summarizer --stable-model claude-sonnet-4-5-20260301 --canary-model claude-sonnet-4-5-20260415 --prompt prompts/summarize/v3.md
  rollout init support-reply --stable-model gpt-4o-2024-08-06 --prompt prompts/reply/v1.md --canary-prompt prompts/reply/v2.md --source postgres://rollout@db/llm?password=env:ROLLOUT_PGPASSWORD`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&opts.Output); err != nil {
				return err
			}
			opts.Name = args[0]
			if opts.StableModel == "" {
				return usageError{errors.New("--stable-model MODEL is required")}
			}
			if opts.CanaryModel == "" {
				opts.CanaryModel = opts.StableModel
			}
			if opts.CanaryPrompt == "" {
				opts.CanaryPrompt = opts.Prompt
			}
			if opts.CanaryModel == opts.StableModel && opts.CanaryPrompt == opts.Prompt {
				return usageError{errors.New("the canary changes nothing: give --canary-model a new model, or --canary-prompt a new prompt")}
			}
			opts.Root = app.Repo
			if opts.Root == "" || strings.Contains(opts.Root, "://") {
				opts.Root = "."
				if _, err := os.Stat(app.Dir); err != nil {
					// Run in a subfolder of the checkout, init writes where the reconciler reads (and
					// validate looks): the repository's --dir folder, not one under the subfolder.
					opts.Root = checkoutTop(".")
				}
			}
			opts.Dir, opts.Out, opts.Err = app.Dir, app.Stdout, app.Stderr
			return initRun(opts)
		},
	}
	outputFlag(cmd, &opts.Output, "one object: rollout, file, warnings")
	cmd.Flags().StringVar(&opts.StableModel, "stable-model", "", "the model production serves today (required)")
	cmd.Flags().StringVar(&opts.CanaryModel, "canary-model", "", "the model to try (default: the stable model, for a prompt change)")
	cmd.Flags().StringVar(&opts.Prompt, "prompt", "", "the prompt file (a path in the repository) or version label production uses today")
	cmd.Flags().StringVar(&opts.CanaryPrompt, "canary-prompt", "", "the prompt to try (default: --prompt, for a model change)")
	cmd.Flags().StringVar(&opts.Source, "source", "", "where the application records its requests (default: file:traffic/NAME.jsonl)")
	cmd.Flags().StringVar(&opts.Key, "key", "user_id", "what the application hashes to route, so that one user keeps one variant")
	return cmd
}

// initRun renders the spec, checks it as validate would, and writes it unless the file exists.
func initRun(opts *initOptions) error {
	if opts.Source == "" {
		opts.Source = "file:traffic/" + opts.Name + ".jsonl"
	}
	rel := filepath.ToSlash(filepath.Join(opts.Dir, opts.Name+".yaml"))
	src, err := renderInitSpec(opts)
	if err != nil {
		return err
	}
	// The spec must be valid as written: a name or model the template cannot carry fails here, with
	// the validator's own message, and nothing is written.
	spec, problems := rollouts.Parse(rel, src)
	if spec == nil || len(problems) > 0 {
		for _, p := range problems {
			if !p.Warning {
				fmt.Fprintln(opts.Err, p.Error())
			}
		}
		if spec == nil || hasErrors(problems) {
			return errFailed
		}
	}
	path := filepath.Join(opts.Root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; init never overwrites a spec (edit it, or pick another name)", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(src); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The lints that need the repository (a prompt path that does not exist yet, an unpinned model):
	// worth knowing now, never a reason to refuse the file.
	set := rollouts.LoadPaths(os.DirFS(opts.Root), []string{rel})
	warnings := []string{}
	for _, p := range rollouts.Lint(set, os.DirFS(opts.Root)) {
		warnings = append(warnings, fmt.Sprintf("%s:%d:%d: warning: %s", p.File, p.Line, p.Col, p.Message))
	}
	if opts.Output == "json" {
		return writeJSON(opts.Out, struct {
			Rollout  string   `json:"rollout"`
			File     string   `json:"file"`
			Warnings []string `json:"warnings"`
		}{opts.Name, path, warnings})
	}
	fmt.Fprintf(opts.Out, "wrote %s\n", path)
	for _, w := range warnings {
		fmt.Fprintln(opts.Err, w)
	}
	fmt.Fprintf(opts.Out, "next: rollout validate %s, then commit it (or open a pull request); the reconciler starts the canary at 5%%\n", path)
	return nil
}

// initTemplate is the spec `rollout init` writes. Every value a user gave passes through yamlScalar.
var initTemplate = template.Must(template.New("spec").Funcs(template.FuncMap{"y": yamlScalar}).Parse(`# yaml-language-server: $schema=https://raw.githubusercontent.com/rollout-dev/rollout/main/docs/rollout.schema.json
#
# A canary rollout, written by ` + "`rollout init`" + `. Check it with ` + "`rollout validate`" + `; the README's
# "The spec" section explains every field.
apiVersion: rollout/v1
kind: Rollout
name: {{y .Name}}
description: {{y .Description}}
# What production serves today. After a promotion the canary becomes the stable.
stable:
  model: {{y .StableModel}}
{{- if .Prompt}}
  prompt: {{y .Prompt}}
{{- end}}
# What to try. Change one thing at a time (the model or the prompt) so a regression has one cause.
canary:
  model: {{y .CanaryModel}}
{{- if .CanaryPrompt}}
  prompt: {{y .CanaryPrompt}}
{{- end}}
# Only the reconciler (or a human's pull request) changes these: 0 means the canary has not started.
traffic:
  weight: 0
  shadow: 0
# The application hashes this key, so a user keeps one variant for the whole rollout.
assignment:
  key: {{y .Key}}
# When the reconciler judges this rollout (cron, UTC).
schedule: "*/15 * * * *"
# Each stage waits minDuration and at least minRequests requests per arm before the next one is proposed.
stages:
  - {weight: 5,   minDuration: 4h,  minRequests: 200}
  - {weight: 25,  minDuration: 8h,  minRequests: 200}
  - {weight: 50,  minDuration: 12h, minRequests: 200, maxDuration: 72h}
  - {weight: 100, minDuration: 24h}
# Where the application records each request (see the README's table of metrics sources).
metrics:
  source: {{y .Source}}
# What "better" means. Any rule shown broken rolls the canary back; all shown held lets it advance.
# Limits are relative to stable (maxIncrease: 50% means at most 1.5x stable's value) or absolute (max).
analysis:
  confidence: 0.95
  rules:
    - {metric: error_rate,       max: 0.02, maxIncrease: 50%}
    - {metric: latency_p95_ms,   maxIncrease: 30%}
    - {metric: cost_per_request, maxIncrease: 50%}
  onInconclusive: hold
  onMetricsError: hold
# Advancing is a pull request a human merges; a rollback is a commit on the default branch, at once.
promotion:
  via: pull-request
rollback:
  via: commit
  # To be told of a rollback, add a target whose URL lives in the reconciler's environment:
  # notify: [{slack: env:ROLLOUT_SLACK_WEBHOOK_URL}]
`))

// renderInitSpec fills the template.
func renderInitSpec(opts *initOptions) ([]byte, error) {
	what := opts.CanaryModel
	if opts.CanaryModel == opts.StableModel {
		what = "prompt " + opts.CanaryPrompt
	}
	data := struct {
		*initOptions
		Description string
	}{opts, fmt.Sprintf("%s: canary %s against %s", opts.Name, what, opts.StableModel)}
	if opts.CanaryModel == opts.StableModel {
		data.Description = fmt.Sprintf("%s: canary %s against %s on %s", opts.Name, what, opts.Prompt, opts.StableModel)
	}
	var b bytes.Buffer
	if err := initTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render spec: %w", err)
	}
	return b.Bytes(), nil
}

// yamlScalar writes s as one YAML scalar: plain where YAML reads it back as the same string, quoted
// otherwise (a model id with a colon, a URL with '#', a number-like label).
func yamlScalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSuffix(string(out), "\n")
}
