// Command rollout is a GitOps rollout controller for LLM model and prompt changes: it judges each
// rollout spec in a git repository against real metrics, proposes the next stage as a pull request and
// commits rollbacks straight to the default branch.
//
// This file is the one boundary where errors become exit codes and messages: 0 done, 1 a rollout or
// spec failed, 2 usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes of the contract.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// errFailed reports that a rollout or spec failed; the command has already said why.
var errFailed = errors.New("failed")

// usageError is a mistake in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// App holds what every command shares: its streams, its environment and its clock.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	Now    func() time.Time
	// Sleep waits between GitHub calls (the pause GitHub asks for between writes, retries after a rate
	// limit); nil for a real timer. A test whose Now stands still gives one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error

	// Repository flags, shared by the commands that read a repository.
	Repo   string
	Branch string
	Dir    string
	// TokenFile (--token-file) holds the GitHub token instead of GITHUB_TOKEN.
	TokenFile string
	// AllowEnv (--allow-env) lists more env: names a spec may reference for a source, a gate or a
	// notification target, beyond ROLLOUT_* and ROLLOUT_ALLOW_ENV.
	AllowEnv []string

	// sources keeps the network metrics sources opened so far, reused across ticks.
	sources sourceCache
	// notifiers holds the env: names that the notification targets of the specs read so far reference.
	notifiers notifierIndex

	// stopCh is closed when a signal asks a writing command to stop (see stopping).
	stopMu   sync.Mutex
	stopCh   chan struct{}
	stopOnce sync.Once
}

func main() {
	app := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Now: time.Now}
	os.Exit(app.Main(os.Args[1:]))
}

// Main runs the command line args and returns the exit code.
func (app *App) Main(args []string) int {
	stdout := &countingWriter{w: app.Stdout}
	app.Stdout = stdout
	defer func() { app.Stdout = stdout.w }()
	root := app.rootCmd()
	root.SetArgs(args)
	root.SetIn(app.Stdin)
	root.SetOut(app.Stdout)
	root.SetErr(app.Stderr)
	cmd, err := root.ExecuteC()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFailed):
		return exitFailed
	case isUsage(err) || isUnknownCommand(root, args):
		fmt.Fprintf(app.Stderr, "rollout: %v\n", err)
		help := "rollout --help"
		if cmd != nil && cmd != root {
			help = cmd.CommandPath() + " --help"
		}
		fmt.Fprintf(app.Stderr, "Run '%s' for usage.\n", help)
		app.jsonFailure(cmd, stdout, err, "run '"+help+"' for usage")
		return exitUsage
	default:
		fmt.Fprintf(app.Stderr, "rollout: %v\n", err)
		hint := nextStep(err)
		if hint != "" {
			fmt.Fprintf(app.Stderr, "hint: %s\n", hint)
		}
		app.jsonFailure(cmd, stdout, err, hint)
		return exitFailed
	}
}

// jsonFailure keeps a JSON run to one JSON value when it failed before printing any: a command run with
// -o json whose failure left standard output empty (an unreadable repository, a spec file that does not
// exist, a flag it does not take) prints {"error", "hint"} there too, the message standard error got.
func (app *App) jsonFailure(cmd *cobra.Command, stdout *countingWriter, err error, hint string) {
	if cmd == nil || stdout.n > 0 {
		return
	}
	if f := cmd.Flags().Lookup("output"); f == nil || f.Value.String() != "json" {
		return
	}
	v := struct {
		Error string `json:"error"`
		Hint  string `json:"hint,omitempty"`
	}{err.Error(), hint}
	_ = writeJSON(stdout, v) // standard error has the message already
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// isUnknownCommand reports whether args name no command of root: cobra returns that mistake as a plain
// error before any flag or argument check could mark it as a usage error.
func isUnknownCommand(root *cobra.Command, args []string) bool {
	_, _, err := root.Find(args)
	return err != nil
}

func (app *App) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "rollout",
		Short:         "GitOps canary rollouts for LLM model and prompt changes",
		Long:          "rollout judges canary rollouts of model and prompt changes against real metrics.\nIt proposes each next stage as a pull request and commits rollbacks straight to the default branch.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		app.initCmd(),
		app.validateCmd(),
		app.schemaCmd(),
		app.assignCmd(),
		app.evaluateCmd(),
		app.planCmd(),
		app.reconcileCmd(),
		app.runCmd(),
		app.statusCmd(),
		app.historyCmd(),
		app.reportCmd(),
		app.rollbackCmd(),
		app.pauseCmd(),
		app.resumeCmd(),
		app.promoteCmd(),
		app.retryCmd(),
		app.commentCmd(),
		app.demoCmd(),
		app.exportCmd(),
		app.simulateCmd(),
		app.versionCmd(),
	)
	app.addRepositoryFlags(root)
	root.PersistentFlags().StringArrayVar(&app.AllowEnv, "allow-env", nil,
		"an environment variable a spec's metrics source, gate or notification target may reference (repeatable; beyond ROLLOUT_* and ROLLOUT_ALLOW_ENV)")
	root.SetUsageTemplate(root.UsageTemplate() + rootHelpTail)
	setVersion(root)
	return root
}

// exactArgs is cobra.ExactArgs whose error is a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs whose error is a usage error.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
