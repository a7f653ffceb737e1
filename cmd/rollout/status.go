package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
)

// statusOptions are the inputs of `rollout status`.
type statusOptions struct {
	Output string
}

func (app *App) statusCmd() *cobra.Command {
	opts := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [-o json]",
		Short: "Show the phase, stage, weight, last decision and open proposal of every rollout",
		Long: "status reads the specs on the default branch, the controller's last decision for each rollout\n" +
			"from the git log (the Rollout-Decision trailer) and the open proposals of the forge. It writes\n" +
			"nothing.\n\n" +
			"Example:\n  rollout status --repo ../llm-config -o json",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.statusRun(cmd.Context(), opts)
		},
	}
	outputFlag(cmd, &opts.Output, "an array of one object per rollout")
	return cmd
}

// rolloutStatus is one line of `rollout status -o json`.
type rolloutStatus struct {
	Rollout        string     `json:"rollout"`
	File           string     `json:"file"`
	Phase          string     `json:"phase"`
	Stage          *int       `json:"stage"`
	Weight         int        `json:"weight"`
	Shadow         int        `json:"shadow"`
	StageStartedAt *time.Time `json:"stageStartedAt"`
	Message        string     `json:"message"`
	// MetricsFailingSince is when the metrics source started failing; null while it answers.
	MetricsFailingSince *time.Time `json:"metricsFailingSince"`
	// SampleRatioMismatchSince is when the current sample-ratio mismatch began; null while the arms'
	// shares match the spec.
	SampleRatioMismatchSince *time.Time `json:"sampleRatioMismatchSince"`
	LastDecision             *string    `json:"lastDecision"`
	LastDecisionAt           *time.Time `json:"lastDecisionAt"`
	LastCommit               *string    `json:"lastCommit"`
	Proposal                 *string    `json:"proposal"`
	Error                    *string    `json:"error"`
	// Next says what a person can do next: after a rollback, how to try again; absent otherwise.
	Next string `json:"next,omitempty"`
}

func (app *App) statusRun(ctx context.Context, opts *statusOptions) error {
	if err := checkOutput(&opts.Output); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	w, set, err := app.loadSpecs(ctx)
	if err != nil {
		return err
	}
	proposals, perr := w.forge.Proposals(ctx)
	if perr != nil {
		fmt.Fprintf(app.Stderr, "rollout: open proposals unknown: %v\n", perr)
	}
	history, herr := w.remote.History(ctx)
	if herr != nil {
		fmt.Fprintf(app.Stderr, "rollout: last decisions unknown: %v\n", herr)
	}
	var out []rolloutStatus
	failed := false
	// lastDecision fills s's last decision from the history of its file; a failure is s's error.
	lastDecision := func(s *rolloutStatus) []gitrepo.Commit {
		if history == nil {
			return nil
		}
		commits, err := history.Log(s.File, 0)
		if err != nil {
			msg := err.Error()
			if s.Error != nil {
				msg = *s.Error + "\n" + msg
			}
			s.Error, failed = &msg, true
		}
		for _, c := range commits {
			// Bookkeeping (a pending notification, a metrics outage) is no decision.
			if d := c.Trailers["Rollout-Decision"]; d != "" && c.Trailers["Rollout"] == s.Rollout && c.Trailers[reconcile.TrailerBookkeeping] == "" && !legacyBookkeeping(c.Subject) {
				when := c.When.UTC()
				s.LastDecision, s.LastDecisionAt, s.LastCommit = &d, &when, orNull(c.Hash)
				break
			}
		}
		return commits
	}
	// One row per file that fails to load, named as plan and reconcile name it, with all its errors. Its
	// traffic is read leniently from the file, as history reads old versions: a broken spec of a live
	// rollout still routes users at its weight, and no pass judges it.
	for _, f := range reconcile.FailedSpecs(set) {
		msg := f.Err().Error()
		s := rolloutStatus{Rollout: f.Rollout, File: f.File, Phase: "-", Error: &msg}
		failed = true
		if commits := lastDecision(&s); len(commits) > 0 {
			if weight, shadow, ok := trafficOf(commits[0].Content); ok {
				s.Weight, s.Shadow = weight, shadow
			}
		}
		out = append(out, s)
	}
	for _, doc := range set.Documents {
		spec := doc.Spec
		s := rolloutStatus{Rollout: spec.Name, File: doc.Path, Weight: spec.Traffic.Weight, Shadow: spec.Traffic.Shadow, Phase: "-"}
		switch st := spec.Status; {
		case st != nil:
			s.Phase, s.Stage, s.Message = string(st.Phase), &st.Stage, st.Message
			if why, changed := rollouts.CanaryChanged(spec); changed {
				s.Phase = string(rollouts.Pending) // a new canary: the status is the old one's
				s.Message = why + ": the next tick starts over at stage 0"
			}
			if s.Phase == string(rollouts.RolledBack) {
				s.Next = reconcile.RetryAdvice(doc.Path)
			}
			if !st.StageStartedAt.IsZero() {
				t := st.StageStartedAt
				s.StageStartedAt = &t
			}
			if !st.MetricsFailingSince.IsZero() {
				t := st.MetricsFailingSince.UTC()
				s.MetricsFailingSince = &t
			}
			if !st.SampleRatioMismatchSince.IsZero() {
				t := st.SampleRatioMismatchSince.UTC()
				s.SampleRatioMismatchSince = &t
			}
		case spec.Canary != nil:
			s.Phase = string(rollouts.Pending)
		}
		if p, ok := proposals[spec.Name]; ok && p.State == reconcile.ProposalOpen {
			s.Proposal = orNull(p.URL)
		}
		lastDecision(&s)
		out = append(out, s)
	}
	if opts.Output == "json" {
		if out == nil {
			out = []rolloutStatus{}
		}
		if err := writeJSON(app.Stdout, out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLLOUT\tPHASE\tSTAGE\tWEIGHT\tLAST DECISION\tPROPOSAL\tNOTE")
		for _, s := range out {
			stage, last := "-", "-"
			if s.Stage != nil {
				stage = fmt.Sprint(*s.Stage)
			}
			if s.LastDecision != nil {
				last = fmt.Sprintf("%s (%s)", *s.LastDecision, s.LastDecisionAt.Format(time.RFC3339))
			}
			if s.Error != nil {
				last = "error: " + firstLineOf(*s.Error)
			}
			weight := fmt.Sprintf("%d%%", s.Weight)
			if s.Shadow > 0 {
				weight += fmt.Sprintf(" (+%d%% shadow)", s.Shadow)
			}
			proposal := "-"
			if s.Proposal != nil {
				proposal = *s.Proposal
			}
			var notes []string
			if s.MetricsFailingSince != nil {
				notes = append(notes, fmt.Sprintf("metrics source failing since %s (%s)", s.MetricsFailingSince.Format(time.RFC3339),
					app.Now().Sub(*s.MetricsFailingSince).Round(time.Minute)))
			}
			if s.SampleRatioMismatchSince != nil {
				notes = append(notes, fmt.Sprintf("sample ratio mismatch since %s (%s)", s.SampleRatioMismatchSince.Format(time.RFC3339),
					app.Now().Sub(*s.SampleRatioMismatchSince).Round(time.Minute)))
			}
			if len(notes) == 0 && s.Message != "" {
				notes = append(notes, firstLineOf(s.Message))
			}
			note := "-"
			if len(notes) > 0 {
				note = fitNote(strings.Join(notes, "; "))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Rollout, s.Phase, stage, weight, last, proposal, note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		var next []reconcile.Result
		for _, s := range out {
			next = append(next, reconcile.Result{Rollout: s.Rollout, Next: s.Next})
		}
		if err := writeNext(app.Stdout, next); err != nil {
			return err
		}
	}
	if failed {
		return errFailed
	}
	if len(out) == 0 {
		return app.noSpecs(w.branch)
	}
	return nil
}

// maxNote is how many characters of a note the status table shows, so that a row fits a terminal;
// -o json has the whole message.
const maxNote = 60

// fitNote cuts a note to maxNote characters, saying where the rest is.
func fitNote(s string) string {
	r := []rune(s)
	if len(r) <= maxNote {
		return s
	}
	return strings.TrimSpace(string(r[:maxNote])) + "… (-o json for all)"
}

// legacyBookkeeping recognises the bookkeeping commits of versions that wrote no Rollout-Bookkeeping
// trailer, by the subjects the bot gave them.
func legacyBookkeeping(subject string) bool {
	_, what, _ := strings.Cut(subject, "): ")
	for _, p := range []string{"notification ", "record metrics failure", "metrics source ", "promotion landed", "drop previous"} {
		if strings.HasPrefix(what, p) {
			return true
		}
	}
	return false
}

// loadSpecs wires the repository and loads the specs of its branch, for the commands that only read.
func (app *App) loadSpecs(ctx context.Context) (*wiring, *rollouts.Set, error) {
	w, err := app.wire(ctx, app.Stderr, false)
	if err != nil {
		return nil, nil, err
	}
	snap, err := w.repo.Snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	set, err := rollouts.Load(snap.Files, app.Dir)
	if err != nil {
		return nil, nil, err
	}
	w.branch = snap.Branch
	return w, set, nil
}
