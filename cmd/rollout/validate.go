package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/internal/envref"
	"github.com/rollout-dev/rollout/internal/hostfile"
	"github.com/rollout-dev/rollout/rollouts"
)

// validateOptions are the inputs of `rollout validate`.
type validateOptions struct {
	Paths  []string
	Format string
	Strict bool
	// Files reads the named spec files and folders; RepoTree is the repository, for the lints that
	// look up prompt and eval paths.
	Files    fs.FS
	RepoTree fs.FS
	// Where names the branch and repository that Files holds ("branch main of /srv/specs.git") when
	// the specs are read from a branch rather than from the files on disk; empty for the files on disk.
	Where string
	// Getenv resolves the env: references of notification targets, to warn of unset ones; nil: no check.
	Getenv func(string) string
	// Env is the operator's allow-list of env: names, to warn of references outside it.
	Env envref.Policy
	// Now is the time status times are checked against (a future stage start is clock skew); zero
	// skips the check.
	Now time.Time
	Out io.Writer
	Err io.Writer
}

func (app *App) validateCmd() *cobra.Command {
	opts := &validateOptions{}
	var output string
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check rollout specs and report every problem with its file, line and column",
		Long: `Validate checks rollout spec files: their YAML, every field's type and range, unknown keys
(with the closest known key suggested), stage weights, durations, cron schedules, metric names and
limits, and that names are unique. It also lints risky habits as warnings: unpinned model ids, a
canary that changes model and prompt at once, a shared salt, and prompt paths that are missing or
escape the repository.

PATH is a spec file or a folder of them; the default is the --dir folder of the repository.
Without --repo and --branch, validate reads the files on disk, uncommitted changes included: the
current checkout, or the local folder --repo names. With --repo naming a URL or a bare repository, or
with --branch, it reads the specs and the files they refer to as that branch of the repository holds
them (by default the remote's default branch), and PATH is named from the repository's top folder.
Exit status: 0 valid, 1 a spec has errors (or warnings, with --strict), 2 usage.

Example:
  rollout validate
  rollout validate rollouts/summarizer.yaml --format github
  rollout validate --repo https://github.com/acme/llm-config.git --branch main`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&output); err != nil {
				return err
			}
			if output == "json" {
				opts.Format = "json"
			}
			switch opts.Format {
			case "text", "github", "json":
			default:
				return usageError{fmt.Errorf("--format %q: want text, github or json", opts.Format)}
			}
			if app.readsWorkingTree() {
				root := app.Repo
				if root == "" {
					root = "."
					if _, err := os.Stat(app.Dir); len(args) == 0 && err != nil {
						// Run in a subfolder of the checkout, validate finds the repository's specs as plan does.
						root = checkoutTop(".")
					}
				}
				opts.Paths = args
				if len(opts.Paths) == 0 {
					opts.Paths = []string{filepath.Join(root, app.Dir)}
				}
				opts.Files = hostFS{root: root}
				opts.RepoTree = committedLineEnds(root, hostfile.DirFS(root))
			} else {
				// A remote, a bare repository or a --branch: the specs as that branch holds them.
				dir, err := repoPath("--dir "+app.Dir, app.Dir)
				if err != nil {
					return err
				}
				opts.Paths = []string{dir}
				if len(args) > 0 {
					opts.Paths = make([]string, len(args))
					for i, a := range args {
						if opts.Paths[i], err = repoPath(a, a); err != nil {
							return err
						}
					}
				}
				tree, where, err := app.branchTree(cmd.Context())
				if err != nil {
					return err
				}
				opts.Files, opts.RepoTree, opts.Where = tree, tree, where
			}
			if app.Now != nil {
				opts.Now = app.Now()
			}
			opts.Out, opts.Err = app.Stdout, app.Stderr
			opts.Getenv = app.Getenv
			opts.Env = app.envPolicy()
			return validateRun(opts)
		},
	}
	outputFlag(cmd, &output, "one object: valid, rollouts, problems; the same as --format json")
	cmd.Flags().StringVar(&opts.Format, "format", "text", "output format: text, github (Actions annotations) or json")
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "treat warnings as errors")
	return cmd
}

// validateRun loads and lints the specs and prints their problems in the chosen format.
func validateRun(opts *validateOptions) error {
	paths := make([]string, len(opts.Paths))
	for i, p := range opts.Paths {
		paths[i] = filepath.ToSlash(p)
	}
	set := rollouts.LoadPaths(opts.Files, paths)
	rollouts.CheckRoutes(set, opts.RepoTree)
	rollouts.ReadReferences(set, opts.RepoTree)
	problems := append(set.Problems, rollouts.Lint(set, opts.RepoTree)...)
	problems = append(problems, nestedSpecs(opts.Files, paths)...)
	problems = append(problems, unsetTargets(set, opts.Getenv, opts.Env)...)
	problems = append(problems, envWarnings(set, opts.Env)...)
	if !opts.Now.IsZero() {
		problems = append(problems, rollouts.CheckClock(set, opts.Now)...)
	}
	sortByPosition(problems)
	var errs, warns int
	for _, p := range problems {
		if p.Warning {
			warns++
		} else {
			errs++
		}
	}
	failed := errs > 0 || (opts.Strict && warns > 0)
	restarts := restartNotes(set)
	switch opts.Format {
	case "github":
		for _, d := range set.Documents {
			if why, ok := restarts[d]; ok {
				fmt.Fprintf(opts.Out, "::notice file=%s,line=1,col=1::%s\n", escapeProperty(d.Path), escapeData(why))
			}
		}
		for _, p := range problems {
			level := "error"
			if p.Warning && !opts.Strict {
				level = "warning"
			}
			fmt.Fprintf(opts.Out, "::%s file=%s,line=%d,col=%d::%s\n", level, escapeProperty(p.File), p.Line, p.Col, escapeData(p.Message))
		}
	case "json":
		type jsonProblem struct {
			File     string `json:"file"`
			Line     int    `json:"line"`
			Col      int    `json:"col"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
		}
		type jsonRollout struct {
			Name string `json:"name"`
			File string `json:"file"`
			// Restart says why the running rollout starts over at stage 0 with these files.
			Restart string `json:"restart,omitempty"`
		}
		report := struct {
			Valid    bool          `json:"valid"`
			Rollouts []jsonRollout `json:"rollouts"`
			Problems []jsonProblem `json:"problems"`
		}{Valid: !failed, Rollouts: []jsonRollout{}, Problems: []jsonProblem{}}
		for _, d := range set.Documents {
			report.Rollouts = append(report.Rollouts, jsonRollout{Name: d.Spec.Name, File: d.Path, Restart: restarts[d]})
		}
		for _, p := range problems {
			sev := "error"
			if p.Warning {
				sev = "warning"
			}
			report.Problems = append(report.Problems, jsonProblem{p.File, p.Line, p.Col, sev, p.Message})
		}
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	default:
		for _, p := range problems {
			if p.Warning {
				fmt.Fprintf(opts.Out, "%s:%d:%d: warning: %s\n", p.File, p.Line, p.Col, p.Message)
			} else {
				fmt.Fprintln(opts.Out, p.Error())
			}
		}
		for _, d := range set.Documents {
			if why, ok := restarts[d]; ok {
				fmt.Fprintf(opts.Out, "%s: note: %s\n", d.Path, why)
			}
		}
		fmt.Fprintf(opts.Err, "%s valid, %s, %s\n", plural(len(set.Documents), "rollout"), plural(errs, "error"), plural(warns, "warning"))
		on := ""
		if opts.Where != "" {
			on = " on " + opts.Where
		}
		if len(set.Documents) == 0 && len(problems) == 0 {
			// Valid, but most likely not what was meant: Load reads only the spec files directly in a folder.
			fmt.Fprintf(opts.Err, "hint: no spec files (*.yaml, *.yml) directly in %s%s\n", strings.Join(opts.Paths, ", "), on)
		}
		for _, path := range opts.Paths {
			if opts.Where != "" {
				// Nothing read, from a path the branch does not hold: most likely a wrong --dir or --branch.
				if _, err := fs.Stat(opts.Files, path); len(set.Documents) == 0 && errors.Is(err, fs.ErrNotExist) {
					fmt.Fprintf(opts.Err, "hint: there is no %s%s: set --dir or --branch, or name spec files or folders from the top of the repository\n", path, on)
				}
				continue
			}
			// Nothing read, from a path that is not there: most likely run outside the checkout.
			if _, err := os.Stat(path); len(set.Documents) == 0 && errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(opts.Err, "hint: there is no %s here: run rollout inside the checkout that holds the specs, point --repo at it, or name spec files or folders\n", path)
			}
		}
	}
	if failed {
		return errFailed
	}
	return nil
}

// nestedSpecs warns of each rollout spec (kind: Rollout) in a subfolder of a folder validated: specs are
// read only directly in the --dir folder, so no command would ever judge it, and nothing else says so.
// Other YAML there (a route file, a gateway config) is left alone.
func nestedSpecs(fsys fs.FS, paths []string) []rollouts.Problem {
	var out []rollouts.Problem
	for _, dir := range paths {
		if info, err := fs.Stat(fsys, dir); err != nil || !info.IsDir() {
			continue
		}
		subs, _ := fs.ReadDir(fsys, dir)
		for _, sub := range subs {
			if !sub.IsDir() || strings.HasPrefix(sub.Name(), ".") {
				continue
			}
			files, _ := fs.ReadDir(fsys, path.Join(dir, sub.Name()))
			for _, f := range files {
				file := path.Join(dir, sub.Name(), f.Name())
				if f.IsDir() || !rollouts.IsSpecFile(f.Name()) || !isRolloutSpec(fsys, file) {
					continue
				}
				out = append(out, rollouts.Problem{File: file, Line: 1, Col: 1, Warning: true,
					Message: fmt.Sprintf("a rollout spec in a subfolder of %s: specs are read only directly in that folder, so no command reads this one; move it up to %s", dir, dir)})
			}
		}
	}
	return out
}

// isRolloutSpec reports whether a YAML file states kind: Rollout, read leniently.
func isRolloutSpec(fsys fs.FS, file string) bool {
	if info, err := fs.Stat(fsys, file); err != nil || info.Size() > rollouts.MaxFileSize {
		return false
	}
	src, err := fs.ReadFile(fsys, file)
	if err != nil {
		return false
	}
	var doc struct {
		Kind string `yaml:"kind"`
	}
	return yaml.Unmarshal(src, &doc) == nil && doc.Kind == rollouts.Kind
}

// restartNotes says, for each running rollout whose canary these files change (its block, or a file it
// refers to such as its prompt), that the rollout starts over at stage 0 once they are on the default
// branch: not a problem, but what a reviewer must know.
func restartNotes(set *rollouts.Set) map[*rollouts.Document]string {
	out := map[*rollouts.Document]string{}
	for _, d := range set.Documents {
		st := d.Spec.Status
		if st == nil || (st.Phase != rollouts.Progressing && st.Phase != rollouts.Paused) {
			continue
		}
		if why, changed := rollouts.CanaryChanged(d.Spec); changed {
			out[d] = fmt.Sprintf("%s: %s: the rollout starts over at stage 0 once this is on the default branch", d.Spec.Name, why)
		}
	}
	return out
}

// unsetTargets warns of each notification target whose env: reference names a variable that is not
// set here, naming the variable: a reconciler run in this environment could not notify it. A name the
// allow-list refuses is left to envWarnings, which says so instead.
func unsetTargets(set *rollouts.Set, getenv func(string) string, policy envref.Policy) []rollouts.Problem {
	if getenv == nil {
		return nil
	}
	var out []rollouts.Problem
	for _, d := range set.Documents {
		for _, ref := range targetRefs(d.Spec) {
			if policy.CheckNotify(ref.name) != nil || strings.TrimSpace(getenv(ref.name)) != "" {
				continue
			}
			line, col := positionOf(d.Source, envref.Prefix+ref.name)
			out = append(out, rollouts.Problem{File: d.Path, Line: line, Col: col, Warning: true,
				Message: fmt.Sprintf("%s: %s is not set in this environment; a reconciler run like this one sends this target no notification (set %s where reconcile runs)", ref.field, ref.name, ref.name)})
		}
	}
	return out
}

// positionOf is the 1-based line and column of the first occurrence of s in src (1:1 if absent).
func positionOf(src []byte, s string) (line, col int) {
	i := strings.Index(string(src), s)
	if i < 0 {
		return 1, 1
	}
	before := string(src[:i])
	line = strings.Count(before, "\n") + 1
	col = i - strings.LastIndex(before, "\n")
	return line, col
}

func sortByPosition(ps []rollouts.Problem) {
	// Stable insertion sort: the lists are short and already sorted per source.
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && less(ps[j], ps[j-1]); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func less(a, b rollouts.Problem) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

// plural counts: "1 error", "3 errors".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// escapeData escapes a workflow command's message as the Actions runner expects.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes a workflow command's property value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// hostFS reads the host's files by the paths the user typed, relative or absolute, so problems name
// files the way the user named them. It never follows a symbolic link out of root, the repository: a
// spec that links to ~/.netrc or /proc/self/environ must not be read, since a parse error quotes what
// it read.
type hostFS struct{ root string }

// errLinkOutside is the error of a path whose symbolic links lead out of the repository.
var errLinkOutside = errors.New("a symbolic link leads outside the repository; it is not followed")

// Open opens a host file.
func (h hostFS) Open(name string) (fs.File, error) {
	p := filepath.FromSlash(name)
	if outside, err := h.linksOutside(p); err == nil && outside {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLinkOutside}
	}
	return hostfile.OpenEntry(p)
}

// linksOutside reports whether p goes through a symbolic link whose target is outside the root. A path
// without links is the user's to name, wherever it is.
func (h hostFS) linksOutside(p string) (bool, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return false, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil || real == abs {
		return false, err
	}
	root, err := filepath.Abs(h.root)
	if err != nil {
		return false, err
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	rel, err := filepath.Rel(root, real)
	return err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel), nil
}

// checkoutTop returns the top folder of the git checkout that holds dir, relative to dir ("." at the
// top, ".." one folder down), or dir itself outside a checkout.
func checkoutTop(dir string) string {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return dir
	}
	wt, err := repo.Worktree()
	if err != nil {
		return dir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	rel, err := filepath.Rel(abs, wt.Filesystem.Root())
	if err != nil {
		return dir
	}
	return filepath.Join(dir, rel)
}
