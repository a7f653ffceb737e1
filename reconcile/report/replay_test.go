package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

var t0 = time.Date(2026, 4, 16, 9, 0, 0, 0, time.UTC)

const specHead = `apiVersion: rollout/v1
kind: Rollout
name: summarizer
stable: {model: m-old}
canary: {model: m-new}
traffic: {weight: %d}
assignment: {key: user_id}
stages:
  - {weight: 5, minDuration: 1h, minRequests: 10}
  - {weight: 50, minDuration: 1h, minRequests: 10}
metrics: {source: "file:traffic.jsonl"}
analysis:
  rules:
    - {metric: error_rate, max: 0.02, maxIncrease: 50%%}
    - {metric: quality_score, maxDecrease: 5%%}
`

func version(commit string, at time.Time, weight int, status string) Version {
	return Version{Commit: commit, When: at, Content: []byte(fmt.Sprintf(specHead, weight) + status)}
}

func progressing(stage int, started time.Time) string {
	return fmt.Sprintf("status: {phase: Progressing, stage: %d, stageStartedAt: %s}\n", stage, started.Format(time.RFC3339))
}

// story: added at t0, started at +1h (stage 0), advanced at +5h (stage 1), now +8h.
func story() Input {
	w5, w50 := 5, 50
	in := Input{Name: "summarizer", Path: "rollouts/summarizer.yaml",
		Versions: []Version{
			version("c1", t0, 0, ""),
			version("c2", t0.Add(time.Hour), 5, progressing(0, t0.Add(time.Hour))),
			version("c3", t0.Add(5*time.Hour), 50, progressing(1, t0.Add(5*time.Hour))),
		},
		Changes: []Change{
			{Commit: "c2", When: t0.Add(time.Hour), Author: "rollout-bot", Decision: "start", Weight: &w5},
			{Commit: "c3", When: t0.Add(5 * time.Hour), Author: "rollout-bot", Actor: "ada", Decision: "advance", Weight: &w50},
		},
	}
	in.Spec, _ = rollouts.Parse(in.Path, in.Versions[2].Content)
	return in
}

// recordingSource answers every query with empty statistics, or with err, and records the windows.
type recordingSource struct {
	mu      sync.Mutex
	err     error
	windows []string
}

func (s *recordingSource) Stats(_ context.Context, q policy.Query) (*policy.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows = append(s.windows, q.Window.From.Sub(t0).String()+"→"+q.Window.To.Sub(t0).String())
	if s.err != nil {
		return nil, s.err
	}
	return &policy.Stats{}, nil
}

var _ policy.Source = (*recordingSource)(nil)

// memoryCache is a Cache in a map.
type memoryCache map[string][]byte

func (c memoryCache) Get(key string) ([]byte, bool) { b, ok := c[key]; return b, ok }
func (c memoryCache) Put(key string, value []byte)  { c[key] = value }

func replayer(src policy.Source, cache Cache) *Replayer {
	return &Replayer{Cache: cache, Every: time.Hour, Open: func(*rollouts.Spec) (policy.Source, string, error) {
		return src, "test-source", nil
	}}
}

func TestReplayTicks(t *testing.T) {
	for _, tt := range []struct {
		name       string
		since, now time.Time
		windows    string
		stages     []int
		// weight and phase are the header's: the spec as git held it at now.
		weight int
		phase  string
	}{
		{"whole story", t0, t0.Add(8 * time.Hour), "5h0m0s→6h0m0s 5h0m0s→7h0m0s 5h0m0s→8h0m0s 1h0m0s→2h0m0s 1h0m0s→3h0m0s 1h0m0s→4h0m0s 1h0m0s→5h0m0s", []int{1, 0}, 50, "Progressing"},
		{"since cuts stage 0 off", t0.Add(6*time.Hour + 30*time.Minute), t0.Add(8 * time.Hour), "5h0m0s→7h0m0s 5h0m0s→8h0m0s", []int{1}, 50, "Progressing"},
		{"since within stage 0", t0.Add(4 * time.Hour), t0.Add(8 * time.Hour), "5h0m0s→6h0m0s 5h0m0s→7h0m0s 5h0m0s→8h0m0s 1h0m0s→4h0m0s 1h0m0s→5h0m0s", []int{1, 0}, 50, "Progressing"},
		// --now before the advance: nothing git learnt later is read, drawn or shown.
		{"now within stage 0", t0, t0.Add(3 * time.Hour), "1h0m0s→2h0m0s 1h0m0s→3h0m0s", []int{0}, 5, "Progressing"},
		{"now before the start", t0, t0.Add(30 * time.Minute), "", nil, 0, "Pending"},
		{"now before the spec was added", t0.Add(-2 * time.Hour), t0.Add(-time.Hour), "", nil, 0, "not added yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &recordingSource{}
			in := story()
			r := replayer(src, nil).Replay(context.Background(), in, tt.since, tt.now)
			if r.Weight != tt.weight || r.Phase != tt.phase {
				t.Errorf("header: weight %d, phase %s; want %d, %s", r.Weight, r.Phase, tt.weight, tt.phase)
			}
			for _, s := range r.Stages {
				if s.To.After(tt.now) {
					t.Errorf("stage %d runs to %s, after now %s", s.Index, s.To, tt.now)
				}
			}
			if len(tt.stages) == 1 && tt.now.Before(t0.Add(5*time.Hour)) && (len(r.Stages) != 1 || !r.Stages[0].Current) {
				t.Errorf("stages %+v: want stage 0, current at now", r.Stages)
			}
			// Each tick reads the stage's window from its start to the tick; the newest stage first.
			if got := strings.Join(src.windows, " "); got != tt.windows {
				t.Errorf("windows read:\n got %s\nwant %s", got, tt.windows)
			}
			var stages []int
			for _, s := range r.Stages {
				stages = append(stages, s.Index)
			}
			if fmt.Sprint(stages) != fmt.Sprint(tt.stages) {
				t.Errorf("stages %v, want %v (newest first)", stages, tt.stages)
			}
			if wantNotes := tt.phase == "not added yet"; (len(r.Notes) != 0) != wantNotes {
				t.Errorf("notes: %q", r.Notes)
			}
		})
	}
}

func TestReplayStages(t *testing.T) {
	r := replayer(&recordingSource{}, nil).Replay(context.Background(), story(), t0, t0.Add(8*time.Hour))
	if len(r.Stages) != 2 {
		t.Fatalf("%d stages, want 2", len(r.Stages))
	}
	now, past := r.Stages[0], r.Stages[1]
	if !now.Current || now.Weight != 50 || !now.From.Equal(t0.Add(5*time.Hour)) || !now.To.Equal(t0.Add(8*time.Hour)) {
		t.Errorf("current stage %+v", now)
	}
	if past.Current || past.EndedBy != "advance" || past.Weight != 5 || !past.To.Equal(t0.Add(5*time.Hour)) {
		t.Errorf("past stage %+v", past)
	}
	// One series per limit, in the spec's order, each against its limit on its own scale.
	var limits []string
	for _, s := range past.Rules {
		limits = append(limits, fmt.Sprintf("%s %s %v %v", s.Rule, s.Limit, s.LimitValue, s.Relative))
	}
	want := "error_rate max 0.02 0.02 false|error_rate maxIncrease 50% 0.5 true|quality_score maxDecrease 5% -0.05 true"
	if got := strings.Join(limits, "|"); got != want {
		t.Errorf("series:\n got %s\nwant %s", got, want)
	}
	// The decisions in the stage's span are marked, the advance that ended it with its actor.
	marks := past.Rules[0].Markers
	if len(marks) != 2 || marks[0].Label != "start" || marks[1].Label != "advance" || !strings.Contains(marks[1].Title, "ada (via rollout-bot)") {
		t.Errorf("markers %+v", marks)
	}
	if r.From != t0.Add(time.Hour) || len(r.Changes) != 2 {
		t.Errorf("weight chart from %v with %d changes, want from the first change with 2", r.From, len(r.Changes))
	}
}

// TestReplayCache: a second report asks the source nothing it has answered; a failed tick is never
// kept, so it is asked again.
func TestReplayCache(t *testing.T) {
	cache := memoryCache{}
	src := &recordingSource{}
	now := t0.Add(8 * time.Hour)
	first := replayer(src, cache).Replay(context.Background(), story(), t0, now)
	if len(src.windows) != 7 {
		t.Fatalf("first report read %d windows, want 7", len(src.windows))
	}
	src.windows = nil
	second := replayer(src, cache).Replay(context.Background(), story(), t0, now)
	if len(src.windows) != 0 {
		t.Errorf("second report read %v, want nothing", src.windows)
	}
	var a, b bytes.Buffer
	if err := WriteHTML(&a, Page{Now: now, Since: t0, Rollouts: []Rollout{first}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&b, Page{Now: now, Since: t0, Rollouts: []Rollout{second}}); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("the cached report differs")
	}

	// A later now: only the new ticks are read.
	replayer(src, cache).Replay(context.Background(), story(), t0, now.Add(2*time.Hour))
	if got := strings.Join(src.windows, " "); got != "5h0m0s→9h0m0s 5h0m0s→10h0m0s" {
		t.Errorf("a later report read %s, want only the two new ticks", got)
	}

	// Another source shares nothing.
	src.windows = nil
	other := &Replayer{Cache: cache, Every: time.Hour, Open: func(*rollouts.Spec) (policy.Source, string, error) { return src, "other", nil }}
	other.Replay(context.Background(), story(), t0, now)
	if len(src.windows) != 7 {
		t.Errorf("another source read %d windows, want 7", len(src.windows))
	}

	// A failing source: every tick is reported missing, nothing is cached.
	fresh := memoryCache{}
	down := &recordingSource{err: fmt.Errorf("connection refused: %w", policy.ErrSourceUnavailable)}
	r := replayer(down, fresh).Replay(context.Background(), story(), t0, now)
	if len(fresh) != 0 {
		t.Errorf("a failing source's ticks were cached: %d entries", len(fresh))
	}
	if len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "did not answer at 3 of 3 ticks") {
		t.Errorf("notes %q", r.Notes)
	}

	// No data yet (the records file is not where the source reads it): said as the judge says it,
	// not as an outage, and nothing is cached, so the ticks are read once the data is there.
	empty := &recordingSource{err: fmt.Errorf("read file:traffic/summarizer.jsonl: %w: traffic/summarizer.jsonl does not exist yet", policy.ErrNoData)}
	r = replayer(empty, fresh).Replay(context.Background(), story(), t0, now)
	if len(fresh) != 0 {
		t.Errorf("ticks without data were cached: %d entries", len(fresh))
	}
	want := []string{"stage 1: no data yet: traffic/summarizer.jsonl does not exist yet (at 3 of 3 ticks); those ticks are left out",
		"stage 0: no data yet: traffic/summarizer.jsonl does not exist yet (at 4 of 4 ticks); those ticks are left out"}
	if strings.Join(r.Notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes %q, want %q", r.Notes, want)
	}
}

// TestReplayStageEndedByAnEdit: a person moves stage 0's start back by hand (as the README's
// quickstart does with simulate --backdate), then the bot advances. The first window of stage 0 ended
// with that edit, which is no decision; only the second ended by the advance.
func TestReplayStageEndedByAnEdit(t *testing.T) {
	in := story()
	backdated := version("c2b", t0.Add(2*time.Hour), 5, progressing(0, t0.Add(30*time.Minute)))
	in.Versions = []Version{in.Versions[0], in.Versions[1], backdated, in.Versions[2]}
	r := replayer(&recordingSource{}, nil).Replay(context.Background(), in, t0, t0.Add(8*time.Hour))
	var got []string
	for _, s := range r.Stages {
		got = append(got, fmt.Sprintf("%d %s→%s %q", s.Index, s.From.Sub(t0), s.To.Sub(t0), s.EndedBy))
	}
	want := []string{`1 5h0m0s→8h0m0s ""`, `0 2h0m0s→5h0m0s "advance"`, `0 1h0m0s→2h0m0s ""`}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("stages:\n got %s\nwant %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
}

func TestReplayBadVersions(t *testing.T) {
	in := story()
	in.Versions[1].Content = []byte("apiVersion: rollout/v1\nkind: Rollout\nname: [\n")
	in.Spec = nil
	src := &recordingSource{}
	r := replayer(src, nil).Replay(context.Background(), in, t0, t0.Add(8*time.Hour))
	if len(r.Stages) != 1 || r.Stages[0].Index != 1 {
		t.Errorf("stages %+v: want stage 1 only, stage 0's spec does not parse", r.Stages)
	}
	notes := strings.Join(r.Notes, "\n")
	if !strings.Contains(notes, "has errors") || !strings.Contains(notes, "commit c2") || r.Phase != "spec error" || r.Weight != 50 {
		t.Errorf("phase %s, weight %d; notes do not name the bad versions: %s", r.Phase, r.Weight, notes)
	}
	// A spec on the default branch without a status (a status removed by hand) has no current stage.
	in = story()
	in.Spec, _ = rollouts.Parse(in.Path, in.Versions[0].Content)
	r = replayer(src, nil).Replay(context.Background(), in, t0, t0.Add(8*time.Hour))
	if len(r.Stages) != 2 || r.Stages[0].Current || r.Phase != "Pending" {
		t.Errorf("phase %s, stages %+v", r.Phase, r.Stages)
	}
	// A source that cannot be opened is a note, not a failure of the report.
	cannot := &Replayer{Every: time.Hour, Open: func(*rollouts.Spec) (policy.Source, string, error) {
		return nil, "", errors.New("unsupported metrics source")
	}}
	r = cannot.Replay(context.Background(), story(), t0, t0.Add(8*time.Hour))
	if len(r.Stages) != 2 || r.Stages[0].Failed != 3 {
		t.Errorf("stages %+v", r.Stages)
	}
}

func TestDirCache(t *testing.T) {
	c := DirCache{Dir: t.TempDir() + "/nested"}
	if _, ok := c.Get("abc"); ok {
		t.Error("empty cache has a value")
	}
	c.Put("abc", []byte("1"))
	c.Put("abc", []byte("2"))
	if b, ok := c.Get("abc"); !ok || string(b) != "2" {
		t.Errorf("Get = %q, %v", b, ok)
	}
	c.Put("../escape", []byte("x"))
	if _, ok := c.Get("../escape"); ok {
		t.Error("a key that is a path was stored")
	}
}

func TestMarkdown(t *testing.T) {
	now := t0.Add(8 * time.Hour)
	r := replayer(&recordingSource{}, nil).Replay(context.Background(), story(), t0, now)
	r.Notes = append(r.Notes, "a note with | a pipe and <b>html</b>")
	md := Markdown(Page{Since: t0, Now: now, Every: time.Hour, Rollouts: []Rollout{r}, Problems: []string{"rollouts/x.yaml:1:1: bad"}}, "rollout-report")
	for _, want := range []string{
		"#### summarizer: Progressing, weight 50%",
		"chart `summarizer-weight.svg`",
		"Stage 1 (weight 50%), 3 ticks:",
		"| error\\_rate | max 0\\.02 | no data | — | `summarizer-stage1-error_rate-max.svg` |",
		"| quality\\_score | maxDecrease 5% | no data | — | `summarizer-stage1-quality_score-maxDecrease.svg` |",
		"artifact `rollout\\-report`",
		"a note with \\| a pipe and &lt;b&gt;html&lt;/b&gt;",
		"rollouts/x\\.yaml\\:1\\:1\\: bad",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	// Every chart the summary names is one Charts writes.
	names := map[string]bool{}
	for _, f := range Charts(Page{Rollouts: []Rollout{r}}) {
		names[f.Name] = true
	}
	for _, line := range strings.Split(md, "\n") {
		if i := strings.Index(line, "`summarizer-"); i >= 0 {
			name := strings.Trim(line[i:], "` |.\n")
			name = name[:strings.Index(name, ".svg")+4]
			if !names[name] {
				t.Errorf("the summary names %s, which Charts does not write (%v)", name, names)
			}
		}
	}
}
