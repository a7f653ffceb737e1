// Package demo runs the whole rollout loop on a throw-away repository, on a simulated clock, with
// simulated users: what `rollout demo` shows a newcomer, and what the examples' tests run.
//
// One simulated hour goes like this. The application reads the weights from the YAML on the default
// branch, routes its users with the rollouts package (sticky hashing) and records every request with
// rollouts/record into the JSON Lines file that the spec's `metrics.source` names. Then the real
// reconciler (reconcile.Loop over gitrepo, go-git underneath) ticks: it judges each rollout on those
// records and commits a start or a rollback, or pushes a proposal branch. Then a reviewer merges the
// open proposals, as a human who read the evidence would.
//
// Nothing leaves the process: the "remote" is a bare repository on disk served by go-git's own git
// server in-process (see Scheme), notifications are written to the timeline, and webhook gates are
// refused. The clock and the randomness are injected, so a seed gives the same story every time.
//
// It lives in examples, beside the repositories it plays; it wires the real rooms as cmd does.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/source/jsonl"
	"github.com/rollout-dev/rollout/reconcile"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/record"
)

// Scenario is a repository and the behaviour of its rollouts' applications.
type Scenario struct {
	// Files is the repository's tree, by slash path: rollouts/*.yaml and what they refer to.
	Files map[string][]byte
	// Traffic is the application traffic of each rollout, by name. A rollout without an entry gets
	// no traffic.
	Traffic map[string]Traffic
}

// Config is one run.
type Config struct {
	// Dir is an existing, empty directory: it receives the bare repository (origin.git), the clone
	// (repo) and the request records (traffic/).
	Dir      string
	Scenario Scenario
	// Start is the simulated time of the first tick; Hours the number of ticks, one per hour.
	Start time.Time
	Hours int
	// Rand draws the users and what their requests did.
	Rand *rand.Rand
	// Observe, when set, receives each event as it happens: for a timeline with progress.
	Observe func(Event)
}

// EventKind says what an Event reports.
type EventKind string

// The kinds of event.
const (
	// Decided is the reconciler's result for one rollout on one tick.
	Decided EventKind = "decided"
	// Merged is the reviewer merging a proposal.
	Merged EventKind = "merged"
	// Notified is a rollback notification, delivered to the timeline instead of Slack or a webhook.
	Notified EventKind = "notified"
	// Ticked closes one simulated hour, for progress.
	Ticked EventKind = "ticked"
)

// Event is one thing that happened in the story.
type Event struct {
	Kind EventKind
	// Hour counts the ticks from 1; At is the simulated time.
	Hour    int
	At      time.Time
	Rollout string
	// Result is the reconciler's result (Decided).
	Result *reconcile.Result
	// Merge is the reviewer's merge (Merged).
	Merge *Merge
	// Notice is the delivered notification and Targets the kinds of its targets, "slack" or "webhook"
	// (Notified).
	Notice  *reconcile.Event
	Targets []string
	// Served counts the requests per arm in the hour before the tick (Decided).
	Stable, Canary int
}

// Outcome is how the story ended.
type Outcome struct {
	// BareDir is the bare repository, CloneDir an up-to-date clone of it, TrafficDir the records.
	BareDir, CloneDir, TrafficDir string
	// RemoteURL serves BareDir in this process; see Scheme.
	RemoteURL string
	Events    []Event
	// Proposals holds every proposal the reconciler opened or updated, evidence included, in order.
	Proposals []reconcile.ProposalRequest
	// Final is each rollout's spec on the default branch at the end, by name.
	Final map[string]*rollouts.Spec
}

// Decisions returns the Decided events of one rollout.
func (o *Outcome) Decisions(rollout string) []Event {
	var out []Event
	for _, e := range o.Events {
		if e.Kind == Decided && e.Rollout == rollout {
			out = append(out, e)
		}
	}
	return out
}

// Merges returns the reviewer's merges, in order.
func (o *Outcome) Merges() []Merge {
	var out []Merge
	for _, e := range o.Events {
		if e.Kind == Merged {
			out = append(out, *e.Merge)
		}
	}
	return out
}

// ErrBadConfig is returned for a Config that Run cannot honour.
var ErrBadConfig = errors.New("bad demo config")

// Run builds the repository and plays cfg.Hours simulated hours of it. The error is for the run as a
// whole; a rollout's own failure is in its Decided event's Result.Err.
func Run(ctx context.Context, cfg Config) (*Outcome, error) {
	if cfg.Dir == "" || cfg.Start.IsZero() || cfg.Hours <= 0 || cfg.Rand == nil || len(cfg.Scenario.Files) == 0 {
		return nil, fmt.Errorf("%w: need a directory, a start time, hours, a rand and files", ErrBadConfig)
	}
	out := &Outcome{
		BareDir:    filepath.Join(cfg.Dir, "origin.git"),
		CloneDir:   filepath.Join(cfg.Dir, "repo"),
		TrafficDir: filepath.Join(cfg.Dir, "traffic"),
	}
	url, err := RemoteURL(out.BareDir)
	if err != nil {
		return nil, err
	}
	out.RemoteURL = url
	if err := createRepository(out.BareDir, out.CloneDir, url, cfg.Scenario.Files, cfg.Start.Add(-time.Hour)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out.TrafficDir, 0o755); err != nil {
		return nil, fmt.Errorf("create traffic folder: %w", err)
	}
	s, err := newStory(ctx, cfg, out)
	if err != nil {
		return nil, err
	}
	defer s.close()
	for hour := 1; hour <= cfg.Hours; hour++ {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("stopped before hour %d: %w", hour, err)
		}
		if err := s.playHour(ctx, hour); err != nil {
			return out, fmt.Errorf("hour %d: %w", hour, err)
		}
	}
	if err := s.close(); err != nil {
		return out, err
	}
	snap, err := s.bot.Snapshot(ctx)
	if err != nil {
		return out, fmt.Errorf("read the final state: %w", err)
	}
	set, err := rollouts.Load(snap.Files, rollouts.DefaultDir)
	if err != nil {
		return out, fmt.Errorf("read the final state: %w", err)
	}
	out.Final = map[string]*rollouts.Spec{}
	for _, d := range set.Documents {
		out.Final[d.Spec.Name] = d.Spec
	}
	if err := updateClone(out.CloneDir, url); err != nil {
		return out, err
	}
	return out, nil
}

// story is the state of one run.
type story struct {
	cfg       Config
	out       *Outcome
	now       time.Time
	bot       *gitrepo.Remote
	loop      *reconcile.Loop
	reviewer  *humanReviewer
	recorders map[string]*record.JSONL
	// notices holds the notifications of the tick under way, told after its decisions.
	notices []Event
}

func newStory(ctx context.Context, cfg Config, out *Outcome) (*story, error) {
	s := &story{cfg: cfg, out: out, now: cfg.Start, recorders: map[string]*record.JSONL{}}
	bot, err := gitrepo.Open(ctx, gitrepo.Options{URL: out.RemoteURL, Branch: DefaultBranch})
	if err != nil {
		return nil, fmt.Errorf("open the remote as the bot: %w", err)
	}
	forge := &gitrepo.LocalForge{Remote: bot, Out: io.Discard}
	s.bot = bot
	s.reviewer = &humanReviewer{forge: forge, cloneDir: out.CloneDir, url: out.RemoteURL}
	s.loop = &reconcile.Loop{
		Repo: bot, Forge: proposalLog{Forge: forge, out: out}, Notifier: timelineNotifier{s}, Sources: s.source,
		Gates: reconcile.Gatekeeper(&http.Client{Transport: noNetwork{}}, time.Second),
		Now:   func() time.Time { return s.now },
	}
	return s, nil
}

// source opens a spec's file: source, relative to the traffic folder's parent, as `rollout reconcile`
// resolves it relative to its working directory.
func (s *story) source(spec *rollouts.Spec) (policy.Source, error) {
	path, ok := strings.CutPrefix(spec.Metrics.Source, "file:")
	if !ok || path == "" {
		return nil, fmt.Errorf("the demo reads only file: sources, not %q", spec.Metrics.Source)
	}
	if filepath.IsAbs(path) || strings.HasPrefix(filepath.Clean(path), "..") {
		return nil, fmt.Errorf("the demo reads only relative file: sources, not %q", spec.Metrics.Source)
	}
	return jsonl.Open(filepath.Join(s.cfg.Dir, filepath.FromSlash(path))), nil
}

// playHour serves an hour of traffic with the default branch's weights, then ticks, then merges.
func (s *story) playHour(ctx context.Context, hour int) error {
	served, err := s.serve(ctx)
	if err != nil {
		return err
	}
	s.now = s.cfg.Start.Add(time.Duration(hour) * time.Hour)
	rep, err := s.loop.Tick(ctx)
	if err != nil {
		return fmt.Errorf("tick: %w", err)
	}
	for i := range rep.Results {
		res := &rep.Results[i]
		n := served[res.Rollout]
		s.emit(Event{Kind: Decided, Hour: hour, At: s.now, Rollout: res.Rollout, Result: res, Stable: n[0], Canary: n[1]})
	}
	for _, e := range s.notices {
		s.emit(e)
	}
	s.notices = nil
	mergedAt := s.now.Add(20 * time.Minute)
	merges, err := s.reviewer.mergeOpen(ctx, mergedAt)
	for i := range merges {
		s.emit(Event{Kind: Merged, Hour: hour, At: mergedAt, Rollout: merges[i].Proposal.Rollout, Merge: &merges[i]})
	}
	if err != nil {
		return err
	}
	s.emit(Event{Kind: Ticked, Hour: hour, At: s.now})
	return nil
}

// serve is the application's hour: weights from the default branch, one recorder per rollout.
func (s *story) serve(ctx context.Context) (map[string][2]int, error) {
	snap, err := s.bot.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("application: read the default branch: %w", err)
	}
	set, err := rollouts.Load(snap.Files, rollouts.DefaultDir)
	if err != nil {
		return nil, fmt.Errorf("application: %w", err)
	}
	served := map[string][2]int{}
	names := make([]string, 0, len(set.Documents))
	for _, d := range set.Documents {
		names = append(names, d.Spec.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		spec := set.Lookup(name).Spec
		tr, ok := s.cfg.Scenario.Traffic[name]
		if !ok {
			continue
		}
		rec, err := s.recorder(spec)
		if err != nil {
			return nil, err
		}
		st, ca, err := serveHour(rec, spec, tr, s.now, s.cfg.Rand)
		if err != nil {
			return nil, err
		}
		if err := rec.Flush(); err != nil {
			return nil, fmt.Errorf("application: flush records of %s: %w", name, err)
		}
		served[name] = [2]int{st, ca}
	}
	return served, nil
}

func (s *story) recorder(spec *rollouts.Spec) (*record.JSONL, error) {
	if rec, ok := s.recorders[spec.Name]; ok {
		return rec, nil
	}
	src, err := s.source(spec)
	if err != nil {
		return nil, fmt.Errorf("application of %s: %w", spec.Name, err)
	}
	path := src.(*jsonl.Source).Path
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("application of %s: %w", spec.Name, err)
	}
	rec, err := record.OpenJSONL(path)
	if err != nil {
		return nil, fmt.Errorf("application of %s: %w", spec.Name, err)
	}
	s.recorders[spec.Name] = rec
	return rec, nil
}

func (s *story) close() error {
	var errs []error
	for name, rec := range s.recorders {
		if err := rec.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close records of %s: %w", name, err))
		}
		delete(s.recorders, name)
	}
	return errors.Join(errs...)
}

func (s *story) emit(e Event) {
	if e.Kind != Ticked {
		s.out.Events = append(s.out.Events, e)
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(e)
	}
}

// timelineNotifier delivers rollback notifications to the timeline: the demo has no network, and its
// Slack webhook is a name in the spec, not a URL.
type timelineNotifier struct{ s *story }

var _ reconcile.Notifier = timelineNotifier{}

// Notify records ev as delivered; it never fails.
func (n timelineNotifier) Notify(_ context.Context, targets []rollouts.Notify, ev reconcile.Event) error {
	hour := int(n.s.now.Sub(n.s.cfg.Start) / time.Hour)
	var kinds []string
	for _, t := range targets {
		switch {
		case t.Slack != "":
			kinds = append(kinds, "slack")
		case t.Webhook != "":
			kinds = append(kinds, "webhook")
		}
	}
	n.s.notices = append(n.s.notices, Event{Kind: Notified, Hour: hour, At: n.s.now, Rollout: ev.Rollout, Notice: &ev, Targets: kinds})
	return nil
}

// proposalLog is the local forge, keeping each proposal's request: the local forge's own record of a
// proposal is its branch's commit message, without the evidence table a pull request would show.
type proposalLog struct {
	reconcile.Forge
	out *Outcome
}

// Propose opens or updates the proposal, and keeps the request once the forge accepted it.
func (f proposalLog) Propose(ctx context.Context, req reconcile.ProposalRequest) (reconcile.Proposal, error) {
	p, err := f.Forge.Propose(ctx, req)
	if err == nil {
		f.out.Proposals = append(f.out.Proposals, req)
	}
	return p, err
}

// noNetwork refuses every request: a webhook gate stays shut in the demo, with this reason.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("the demo makes no network calls")
}
