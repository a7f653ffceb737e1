package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/examples/demo"
	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

// demoStart is the simulated time of the demo's first tick: fixed, so that a seed always tells the
// same story, commit hashes included.
var demoStart = time.Date(2026, 4, 16, 9, 0, 0, 0, time.UTC)

// maxDemoHours bounds --hours to a simulated month: the records grow with every hour.
const maxDemoHours = 30 * 24

// demoOptions are the inputs of `rollout demo`.
type demoOptions struct {
	Keep  bool
	Seed  uint64
	Hours int
	// Color and Progress are for a terminal; the command sets them from Stdout.
	Color, Progress bool
}

func (app *App) demoCmd() *cobra.Command {
	opts := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo [--keep] [--seed N]",
		Short: "Run the whole loop on a throw-away local repository with synthetic traffic",
		Long: `demo builds a throw-away git repository holding three rollouts from examples/ (a prompt
rewrite whose canary is healthy, a model bump whose canary fails one request in eight from its
first stage, and a cost cut whose application serves only a trickle of requests), then plays two
simulated days, one reconcile tick per hour. A simulated application routes users with the weights on the default branch and records
their requests; the real reconciler judges them, commits starts and rollbacks, and pushes proposal
branches that a simulated reviewer merges. It ends with one proposal, the rollback commit and the
rollback's audit trail from git.

Nothing leaves the process: no network, no git binary. --keep leaves the repository to explore.

Example:
  rollout demo
  rollout demo --seed 7 --keep`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Hours <= 0 || opts.Hours > maxDemoHours {
				return usageError{fmt.Errorf("--hours %d: want 1 to %d", opts.Hours, maxDemoHours)}
			}
			tty := isTerminal(app.Stdout) && app.getenv("NO_COLOR") == "" && app.getenv("TERM") != "dumb"
			opts.Color, opts.Progress = tty, tty
			return app.demoRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep the repository, the clone and the request records, and print where they are")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 1, "seed of the simulated users and requests; the same seed tells the same story")
	cmd.Flags().IntVar(&opts.Hours, "hours", demo.DefaultHours, "simulated hours to play, one reconcile tick each")
	return cmd
}

func (app *App) getenv(name string) string {
	if app.Getenv == nil {
		return ""
	}
	return app.Getenv(name)
}

// isTerminal reports whether w is a character device: colour and a progress line only then.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (app *App) demoRun(ctx context.Context, opts *demoOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// An interrupt stops the story between two hours, so that the temp dir is still removed.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	// So does a reader that goes away (rollout demo | head): with SIGPIPE caught, writing to the
	// closed pipe is an error instead of the end of the process, and the first one stops the story.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &stopOnError{w: app.Stdout, stop: cancel}
	dir, err := os.MkdirTemp("", "rollout-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if !opts.Keep {
		defer os.RemoveAll(dir)
	}
	scenario, err := demo.Default()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	tl := &demo.Timeline{W: w, Color: opts.Color, Progress: opts.Progress, Hours: opts.Hours}
	section := func(title string) { fmt.Fprintf(w, "\n%s\n\n", tl.Heading(title)) }

	fmt.Fprintf(w, "rollout demo (seed %d): three canaries in a throw-away repository, %d simulated hours from %s,\n"+
		"one reconcile tick per hour; a reviewer merges each proposal 20 minutes after it opens.\n",
		opts.Seed, opts.Hours, demoStart.Format("Mon Jan 2 15:04 MST"))
	fmt.Fprintf(w, "  %-14s prompt v5 → v6 on the same model; healthy\n", demo.Healthy)
	fmt.Fprintf(w, "  %-14s model bump; its canary fails one request in eight\n", demo.Regressing)
	fmt.Fprintf(w, "  %-14s cost cut to a cheaper model; a trickle of traffic, so nothing can be shown\n", demo.Trickle)
	section("Timeline")
	tl.Header()
	out, err := demo.Run(ctx, demo.Config{
		Dir: dir, Scenario: scenario, Start: demoStart, Hours: opts.Hours,
		Rand: rand.New(rand.NewPCG(opts.Seed, 0x5eed)), Observe: tl.Observe,
	})
	tl.Done()
	if w.err != nil {
		return fmt.Errorf("demo: %w", w.err)
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	section("Where things stand")
	printStanding(w, out)

	if len(out.Proposals) > 0 {
		p := out.Proposals[0]
		section("A proposal, as the reviewer saw it (" + p.Branch + " → " + demo.DefaultBranch + "; GitHub Markdown)")
		fmt.Fprintf(w, "%s\n\n%s\n", p.Title, strings.TrimRight(p.Body, "\n"))
	}
	for _, e := range out.Decisions(demo.Regressing) {
		if e.Result.Decision == policy.Rollback && e.Result.Commit != "" {
			section("The rollback commit, straight to " + demo.DefaultBranch)
			text, err := demo.CommitText(out.BareDir, e.Result.Commit)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			fmt.Fprint(w, text)
			break
		}
	}

	section("The audit trail: rollout history " + demo.Regressing)
	history := &App{Stdin: app.Stdin, Stdout: w, Stderr: app.Stderr, Getenv: app.Getenv, Now: app.Now,
		Repo: out.RemoteURL, Branch: demo.DefaultBranch, Dir: "rollouts"}
	if err := history.historyRun(ctx, &historyOptions{Name: demo.Regressing, Output: "table"}); err != nil {
		return fmt.Errorf("demo: history: %w", err)
	}

	if opts.Keep {
		section("Kept")
		fmt.Fprintf(w, "  repository (bare): %s\n  clone:             %s\n  request records:   %s\n\n", out.BareDir, out.CloneDir, out.TrafficDir)
		fmt.Fprintf(w, "Explore it with git:\n  cd %s\n  git log --oneline --graph --all\n  rollout status --repo %s\n", out.CloneDir, out.BareDir)
	} else {
		fmt.Fprintf(w, "\nThe repository was removed; run with --keep to explore it.\n")
	}
	if w.err != nil {
		return fmt.Errorf("demo: %w", w.err)
	}
	return nil
}

// stopOnError writes to w until a write fails, then calls stop and fails every later write, so that
// the story ends at the first output nobody can read.
type stopOnError struct {
	w    io.Writer
	stop func()
	err  error
}

func (s *stopOnError) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.err = fmt.Errorf("write output: %w", err)
		s.stop()
	}
	return n, err
}

// printStanding prints each rollout's phase, weight and the last word of the judge.
func printStanding(w io.Writer, out *demo.Outcome) {
	names := make([]string, 0, len(out.Final))
	for name := range out.Final {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		spec := out.Final[name]
		phase := "Pending"
		if spec.Status != nil {
			phase = string(spec.Status.Phase)
		}
		fmt.Fprintf(w, "  %-14s %-12s weight %3d%%  stable %s", name, phase, spec.Traffic.Weight, spec.Stable.Model)
		if spec.Stable.Prompt != "" {
			fmt.Fprintf(w, " + %s", spec.Stable.Prompt)
		}
		fmt.Fprintln(w)
		switch {
		case phase == string(rollouts.RolledBack):
			// A finished rollout's last tick only holds; what ended it is in the status.
			fmt.Fprintf(w, "  %-14s %s\n", "", spec.Status.Message)
		case phase == string(rollouts.Completed):
			fmt.Fprintf(w, "  %-14s promoted: the canary is the stable now\n", "")
		default:
			if d := out.Decisions(name); len(d) > 0 {
				last := d[len(d)-1].Result
				fmt.Fprintf(w, "  %-14s last decision %s: %s\n", "", last.Decision, strings.Join(last.Reasons, "; "))
			}
		}
	}
}
