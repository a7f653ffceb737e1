package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/comment"
)

// errCommentNeedsGitHub is the usage error of `comment` outside GitHub.
var errCommentNeedsGitHub = errors.New("comment needs GitHub: set GITHUB_REPOSITORY and GITHUB_TOKEN (or a GitHub App), as the Action does")

func (app *App) commentCmd() *cobra.Command {
	var event, output string
	var signed bool
	cmd := &cobra.Command{
		Use:   "comment [--event FILE]",
		Short: "Run the /rollout commands of a pull request comment (the Action on issue_comment)",
		Long: "comment reads GitHub's issue_comment event (GITHUB_EVENT_PATH) and runs the commands of a new comment:\n" +
			"  /rollout rollback <reason>   /rollout pause <reason>   /rollout resume\n" +
			"  /rollout promote [reason]    /rollout retry            /rollout plan\n" +
			"On the bot's pull request of a rollout the rollout is implied; elsewhere name it first\n" +
			"(/rollout pause summarizer holiday freeze). Only people with write permission or above act; others get\n" +
			"a polite refusal. Each command is the commit the CLI makes, with the commenter in Rollout-Actor; the\n" +
			"answer is a reply and a reaction on the comment. Edited comments, bots' comments, and lines in code\n" +
			"blocks or quotes run nothing. /rollout plan is left to the Action, which keeps the default branch's plan in a\n" +
			"comment of its own, apart from a pull request's own plan.\n\n" +
			"Example:\n  rollout comment --event \"$GITHUB_EVENT_PATH\" -o json",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.commentRun(cmd.Context(), event, signed, output)
		},
	}
	outputFlag(cmd, &output, "one object: commands, plan, reply")
	cmd.Flags().StringVar(&event, "event", "", "the event payload (default: GITHUB_EVENT_PATH)")
	cmd.Flags().BoolVar(&signed, "signed-commits", false, "make the commits through GitHub's API, so GitHub signs them")
	return cmd
}

func (app *App) commentRun(ctx context.Context, eventPath string, signed bool, output string) error {
	if err := checkOutput(&output); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if eventPath == "" {
		eventPath = app.Getenv("GITHUB_EVENT_PATH")
	}
	if eventPath == "" {
		return usageError{errors.New("comment needs the event: --event FILE or GITHUB_EVENT_PATH")}
	}
	raw, err := os.ReadFile(eventPath)
	if err != nil {
		return usageError{fmt.Errorf("read the event: %w", err)}
	}
	ev, err := comment.ParseEvent(raw)
	if err != nil {
		return usageError{fmt.Errorf("%s: %w (the comment command handles issue_comment)", eventPath, err)}
	}
	var out comment.Outcome
	if cmds := comment.Parse(ev.Body); len(cmds) == 0 {
		// Most comments are conversation: answer them without opening the repository.
		out, err = (&comment.Handler{}).Handle(ctx, ev)
	} else {
		out, err = app.handleComment(ctx, ev, signed)
	}
	if err != nil {
		return err
	}
	if output == "json" {
		if werr := writeJSON(app.Stdout, out); werr != nil {
			return werr
		}
	} else {
		printOutcome(app, out)
	}
	var failed []string
	for _, r := range out.Commands {
		if r.Failed && r.Error != nil {
			failed = append(failed, *r.Error)
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// handleComment answers a comment that holds commands. The repository is opened only when a command
// runs: Handle turns away an edited comment, a bot's, too many commands and, first of all, a commenter
// without write permission, and none of them may make the bot touch the git remote (anyone can comment
// on a public repository). `/rollout plan` alone runs no operation, so it never opens the repository.
func (app *App) handleComment(ctx context.Context, ev comment.Event, signed bool) (comment.Outcome, error) {
	f, err := app.wireForge(signed)
	if err != nil {
		return comment.Outcome{}, err
	}
	if f.github == nil {
		return comment.Outcome{}, usageError{errCommentNeedsGitHub}
	}
	// Opened once for all the comment's commands; a failure to open fails each of them, with its reason.
	openLoop := sync.OnceValues(func() (*reconcile.Loop, error) {
		w, err := f.open(ctx, app.Stderr)
		if err != nil {
			return nil, err
		}
		return app.loop(w, "", app.cliLog())
	})
	repo := app.Getenv("GITHUB_REPOSITORY")
	h := &comment.Handler{Thread: f.github, Repository: repo,
		Operate: func(ctx context.Context, name string, op reconcile.Operation, reason, actor string) (reconcile.Result, error) {
			loop, err := openLoop()
			if err != nil {
				return reconcile.Result{}, err
			}
			loop.Actor = actor
			res, err := loop.Operate(ctx, name, op, reason)
			if res.Commit != "" {
				warnings, rest := splitDeferred(err)
				for _, w := range append(res.Warnings, warnings...) {
					fmt.Fprintf(app.Stderr, "rollout: warning: %s\n", w)
				}
				err = rest
			}
			return res, err
		}}
	if server := app.Getenv("GITHUB_SERVER_URL"); server != "" && repo != "" {
		h.CommitURL = strings.TrimSuffix(server, "/") + "/" + repo + "/commit/"
	}
	// A cancelled job (the runner sends SIGINT, then SIGTERM) must not cut a command between its commit
	// and the notification or the record of the notification owed, nor leave it without its reply: the
	// commands, their notifications and the answer finish first, as for `rollout rollback`.
	defer app.finishOnSignal("the comment's commands")()
	return h.Handle(ctx, ev)
}

func printOutcome(app *App, out comment.Outcome) {
	switch {
	case out.Ignored != "":
		fmt.Fprintf(app.Stdout, "nothing to do: %s\n", out.Ignored)
		return
	case out.Refused != "":
		fmt.Fprintf(app.Stdout, "refused: %s\n", out.Refused)
	}
	for _, r := range out.Commands {
		switch {
		case r.Error != nil:
			fmt.Fprintf(app.Stdout, "%s: %s\n", r.Command, *r.Error)
		case r.Commit != "":
			fmt.Fprintf(app.Stdout, "%s: %s %d%% → %d%% in %s\n", r.Command, r.Rollout, r.From, r.To, shortHash(r.Commit))
		default:
			fmt.Fprintf(app.Stdout, "%s: done\n", r.Command)
		}
	}
}
