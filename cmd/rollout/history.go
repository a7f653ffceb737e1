package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

// historyOptions are the inputs of `rollout history`.
type historyOptions struct {
	Name   string
	Output string
}

func (app *App) historyCmd() *cobra.Command {
	opts := &historyOptions{}
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "Show every weight change of a rollout, from git",
		Long: "history reads the git log of a rollout's spec file on the default branch and shows every commit\n" +
			"that changed its traffic weight or shadow, or that the controller made for it: who, when,\n" +
			"from which weight to which, and why. Like git log --follow, it goes on below a commit that\n" +
			"renamed or moved the file (same content, or the same name:), at the path the file had then.\n\n" +
			"Example:\n  rollout history summarizer --repo https://github.com/acme/llm-config -o json",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return app.historyRun(cmd.Context(), opts)
		},
	}
	outputFlag(cmd, &opts.Output, "an array of one object per weight change, oldest first")
	return cmd
}

// historyEntry is one weight change, as printed by `rollout history -o json`.
type historyEntry struct {
	Commit     string    `json:"commit"`
	Author     string    `json:"author"`
	Email      string    `json:"email"`
	When       time.Time `json:"when"`
	From       *int      `json:"from"`
	To         *int      `json:"to"`
	ShadowFrom *int      `json:"shadowFrom"`
	ShadowTo   *int      `json:"shadowTo"`
	Decision   string    `json:"decision"`
	Subject    string    `json:"subject"`
	Bot        bool      `json:"bot"`
	// Actor is the person on whose behalf the bot made a manual operation's commit (its Rollout-Actor
	// trailer); empty for the controller's own decisions and for a person's own commits.
	Actor string `json:"actor,omitempty"`
	// Override says which rule a person skipped, and why (the Rollout-Override trailer of
	// `/rollout promote`); empty for a change that followed every rule.
	Override string `json:"override,omitempty"`
	// Who is the person to name: the actor's name or login when there is one, else the author's name.
	Who string `json:"who"`
	// Reason is why a pause, resume or rollback was made: the reasons its commit lists; empty for other
	// changes.
	Reason string `json:"reason,omitempty"`
	// File is the spec's path at this commit: the history goes on below a commit that renamed or moved
	// the file, where it had another path.
	File string `json:"file"`
}

func (app *App) historyRun(ctx context.Context, opts *historyOptions) error {
	if err := checkOutput(&opts.Output); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	getenv, err := app.githubEnv()
	if err != nil {
		return err
	}
	remote, err := gitrepo.Open(ctx, gitrepo.Options{
		URL: app.Repo, Branch: app.Branch, Auth: gitrepo.TokenAuth(getenv("GITHUB_TOKEN")),
	})
	if err != nil {
		return err
	}
	snap, err := remote.Snapshot(ctx)
	if err != nil {
		return err
	}
	set, err := rollouts.Load(snap.Files, app.Dir)
	if err != nil {
		return err
	}
	file := ""
	if doc := set.Lookup(opts.Name); doc != nil {
		file = doc.Path
	} else if failed, ok := reconcile.FailedSpecOf(set, opts.Name); ok {
		// The history of a spec that a commit broke is what its owner reads next: the log is git's, and
		// each old version is read leniently, so it is shown, with what to fix.
		fmt.Fprintf(app.Stderr, "rollout: warning: %s fails to load on %s; its history is shown, but no pass judges it until it is fixed:\n", failed.File, snap.Branch)
		for _, p := range failed.Problems {
			fmt.Fprintln(app.Stderr, p.Error())
		}
		file = failed.File
	} else {
		for _, p := range set.Errors() {
			fmt.Fprintln(app.Stderr, p.Error())
		}
		if near := set.Nearest(opts.Name); near != "" {
			return usageError{fmt.Errorf("%w %q in %s on %s (did you mean %q?)", reconcile.ErrUnknownRollout, opts.Name, app.Dir, snap.Branch, near)}
		}
		return usageError{fmt.Errorf("%w %q in %s on %s", reconcile.ErrUnknownRollout, opts.Name, app.Dir, snap.Branch)}
	}
	commits, err := remote.Log(ctx, file, 0)
	if err != nil {
		return err
	}
	entries := weightChanges(opts.Name, commits)
	if opts.Output == "json" {
		if entries == nil {
			entries = []historyEntry{}
		}
		return writeJSON(app.Stdout, entries)
	}
	return printHistory(app.Stdout, entries)
}

// trafficOf reads the traffic block of one version of a spec, leniently: an old version may not pass
// today's validation. ok is false when the file is absent or unreadable.
func trafficOf(content []byte) (weight, shadow int, ok bool) {
	if content == nil {
		return 0, 0, false
	}
	var doc struct {
		Traffic rollouts.Traffic `yaml:"traffic"`
	}
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return 0, 0, false
	}
	return doc.Traffic.Weight, doc.Traffic.Shadow, true
}

// weightChanges turns a file's log (newest first) into the weight changes of the rollout, oldest
// first: commits that changed traffic.weight or traffic.shadow, and commits the controller marked
// with the trailer Rollout: NAME.
func weightChanges(name string, commits []gitrepo.Commit) []historyEntry {
	var out []historyEntry
	var prevWeight, prevShadow *int
	for i := len(commits) - 1; i >= 0; i-- {
		c := commits[i]
		weight, shadow, ok := trafficOf(c.Content)
		var to, shadowTo *int
		if ok {
			to, shadowTo = &weight, &shadow
		}
		changed := !sameInt(prevWeight, to) || !sameInt(prevShadow, shadowTo)
		decided := c.Trailers["Rollout"] == name && c.Trailers[reconcile.TrailerBookkeeping] == "" && !legacyBookkeeping(c.Subject)
		if changed || decided {
			out = append(out, historyEntry{
				Commit: c.Hash, Author: c.AuthorName, Email: c.AuthorEmail, When: c.When.UTC(),
				From: prevWeight, To: to, ShadowFrom: prevShadow, ShadowTo: shadowTo,
				Decision: c.Trailers["Rollout-Decision"], Subject: c.Subject, Bot: c.Bot,
				Actor: c.Trailers[reconcile.TrailerActor], Override: c.Trailers[reconcile.TrailerOverride],
				Who: shortIdentity(c.AuthorName), File: c.Path,
			})
			e := &out[len(out)-1]
			if e.Actor != "" {
				e.Who = shortIdentity(e.Actor)
			}
			switch e.Decision {
			case string(reconcile.OpPause), string(reconcile.OpResume), string(reconcile.OpRollback):
				e.Reason = commitReasons(c.Body)
			}
		}
		prevWeight, prevShadow = to, shadowTo
	}
	return out
}

// shortIdentity is the name of an actor (see App.actor) for a column a person reads: "Ada Lovelace
// <ada@example.com>" gives "Ada Lovelace", "octocat (GitHub Actions)" the login "octocat", "<ada@example.com>"
// the address; the actor field of -o json keeps the whole identity.
func shortIdentity(id string) string {
	id = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(id), "(GitHub Actions)"))
	if name, _, ok := strings.Cut(id, "<"); ok && strings.TrimSpace(name) != "" {
		return strings.TrimSpace(name)
	}
	return strings.Trim(id, "<>")
}

// commitReasons are the reasons a controller's commit lists, one "- " line each, joined by "; ".
func commitReasons(body string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(line), "- "); ok && r != "" {
			out = append(out, r)
		}
	}
	return strings.Join(out, "; ")
}

// maxWhy is how many characters of a reason the history table shows; -o json has all of it.
const maxWhy = 100

func fitWhy(s string) string {
	r := []rune(s)
	if len(r) <= maxWhy {
		return s
	}
	return strings.TrimSpace(string(r[:maxWhy])) + "…"
}

func sameInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func printHistory(w io.Writer, entries []historyEntry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "No weight changes.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tWHO\tWEIGHT\tSHADOW\tDECISION\tCOMMIT\tWHY")
	for _, e := range entries {
		decision := e.Decision
		if decision == "" {
			decision = "-"
		}
		who := e.Who
		if e.Actor != "" {
			who = e.Who + " (via " + e.Author + ")"
		}
		why := e.Subject
		if e.Reason != "" {
			why += ": " + e.Reason
		}
		if e.Override != "" {
			// The override's reason first: the column is cut to fit a terminal.
			decision += " (override)"
			why = "[override: " + e.Override + "] " + why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.When.Format(time.RFC3339), who,
			percentChange(e.From, e.To), percentChange(e.ShadowFrom, e.ShadowTo), decision, e.Commit[:min(8, len(e.Commit))],
			fitWhy(strings.ReplaceAll(why, "\t", " ")))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print history: %w", err)
	}
	return nil
}

func percentChange(from, to *int) string {
	pct := func(p *int) string {
		if p == nil {
			return "-"
		}
		return strconv.Itoa(*p) + "%"
	}
	if sameInt(from, to) {
		return pct(to)
	}
	return pct(from) + " → " + pct(to)
}
