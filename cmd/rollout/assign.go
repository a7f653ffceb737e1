package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/go-git/go-git/v5"
	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/hostfile"
	"github.com/rollout-dev/rollout/rollouts"
)

// assignOptions are the inputs of `rollout assign`.
type assignOptions struct {
	SpecFile string
	Keys     []string
	Output   string
	// Repo is --repo: the repository whose route files the namespace siblings' routes name.
	Repo     string
	Out      io.Writer
	ReadFile func(string) ([]byte, error)
}

func (app *App) assignCmd() *cobra.Command {
	opts := &assignOptions{ReadFile: os.ReadFile}
	cmd := &cobra.Command{
		Use:   "assign --spec FILE KEY...",
		Short: "Show the variant each assignment key gets",
		Long: `Assign prints the variant (stable or canary, with its model and prompt) that each key gets
under the spec's current traffic weight, salt and include/exclude globs: exactly what an
application routing with the rollouts package, or a GrowthBook SDK with the same salt, does. With
assignment.namespace, the rollouts of the spec's folder that share the namespace split the key space,
as rollouts.Load splits it: a key outside this rollout's slice gets stable (reason "namespace").

Example:
  rollout assign --spec rollouts/summarizer.yaml user-1 user-2 vip-7
  rollout assign --spec rollouts/summarizer.yaml -o json user-1`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.SpecFile == "" {
				return usageError{fmt.Errorf("--spec FILE is required")}
			}
			if opts.Output != "text" && opts.Output != "json" {
				return usageError{fmt.Errorf("-o %q: want text or json", opts.Output)}
			}
			opts.Keys, opts.Out, opts.Repo = args, app.Stdout, app.Repo
			return assignRun(opts, app.Stderr)
		},
	}
	cmd.Flags().StringVar(&opts.SpecFile, "spec", "", "the rollout spec file")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json (an array of one object per key)")
	return cmd
}

// assignChoice is one line of `rollout assign -o json`.
type assignChoice struct {
	Key    string   `json:"key"`
	Arm    string   `json:"arm"`
	Model  string   `json:"model"`
	Prompt string   `json:"prompt"`
	Reason string   `json:"reason"`
	Hash   *float64 `json:"hash,omitempty"` // only when the hash decided`
}

// assignRun routes each key and prints its choice; a spec with errors prints them and fails.
func assignRun(opts *assignOptions, stderr io.Writer) error {
	src, err := opts.ReadFile(opts.SpecFile)
	if err != nil {
		return readSpecError(opts.SpecFile, err)
	}
	spec, problems := rollouts.Parse(opts.SpecFile, src)
	if spec == nil {
		for _, p := range problems {
			fmt.Fprintln(stderr, p.Error())
		}
		return errFailed
	}
	if spec.Assignment.Namespace != "" {
		resolveNamespace(spec, opts.SpecFile, opts.Repo)
	}
	a := spec.Assigner()
	if opts.Output == "json" {
		choices := make([]assignChoice, 0, len(opts.Keys))
		for _, k := range opts.Keys {
			c := a.Choose(k)
			line := assignChoice{k, string(c.Arm), c.Variant.Model, c.Variant.Prompt, c.Reason, nil}
			if c.Reason == "hash" {
				line.Hash = &c.Hash
			}
			choices = append(choices, line)
		}
		// One array, one line per key: a single JSON value that line-oriented tools still read.
		var b strings.Builder
		b.WriteString("[\n")
		for i, c := range choices {
			line, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("write choice: %w", err)
			}
			b.WriteString("  ")
			b.Write(line)
			if i < len(choices)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString("]\n")
		_, err := io.WriteString(opts.Out, b.String())
		return err
	}
	tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tARM\tMODEL\tPROMPT\tWHY")
	for _, k := range opts.Keys {
		c := a.Choose(k)
		why := c.Reason
		ns, inNamespace := spec.Namespace()
		switch {
		case why == "hash" && inNamespace:
			why = fmt.Sprintf("hash %.4f vs %.4f: weight %d%% over its slice of namespace %s, %s", c.Hash, a.CanaryThreshold(),
				spec.Traffic.Weight, ns.Name, sliceWords(ns))
		case why == "hash":
			why = fmt.Sprintf("hash %.4f vs weight %d%%", c.Hash, spec.Traffic.Weight)
		case why == "namespace":
			why = fmt.Sprintf("namespace %s: outside its slice, %s", ns.Name, sliceWords(ns))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k, c.Arm, c.Variant.Model, c.Variant.Prompt, why)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write choices: %w", err)
	}
	return nil
}

// resolveNamespace gives spec, read from file, its slice of its namespace as rollouts.Load gives it to
// the application and to the reconciler: the rollouts of file's folder that share the namespace split
// the key space between them. A sibling that does not parse takes no slice, as in Load, and neither
// does one whose traffic.routes do not check against the repository (repo, else the checkout that
// holds file, else the folder above file's), which Load leaves out too.
func resolveNamespace(spec *rollouts.Spec, file, repo string) {
	dir, base := filepath.Split(file)
	dir = cmp.Or(dir, ".")
	set := rollouts.LoadPaths(os.DirFS(dir), []string{"."})
	rollouts.CheckRoutes(set, hostfile.DirFS(specRepoRoot(dir, repo)))
	specs := []*rollouts.Spec{spec}
	for _, d := range set.Documents {
		if d.Path != base {
			specs = append(specs, d.Spec)
		}
	}
	rollouts.ResolveNamespaces(specs)
}

// specRepoRoot is the repository a spec folder belongs to, whose files its routes name: repo (--repo)
// when it is a folder, else the top of the git checkout that holds dir, else dir's parent (the layout
// rollouts.Load(os.DirFS(root), "rollouts") reads).
func specRepoRoot(dir, repo string) string {
	if info, err := os.Stat(repo); repo != "" && err == nil && info.IsDir() {
		return repo
	}
	if r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
		if wt, err := r.Worktree(); err == nil {
			return wt.Filesystem.Root()
		}
	}
	return filepath.Dir(filepath.Clean(dir))
}

// sliceWords words a namespace slice: "keys whose namespace hash is in [0.333, 0.666), one of 3 rollouts".
func sliceWords(ns rollouts.NamespaceSlice) string {
	return fmt.Sprintf("keys whose namespace hash is in [%.3f, %.3f), one of %d rollouts", ns.Start, ns.End, ns.Of)
}
