package synth

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

var day = time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)

func testSpec(weight int) *rollouts.Spec {
	s := Spec("summarizer", day)
	s.Traffic.Weight = weight
	s.Assignment.Exclude = []string{"vip-*"}
	return s
}

func TestSimulateDeterministic(t *testing.T) {
	opts := Options{Seed: 7, From: day, To: day.Add(2 * time.Hour), PerHour: 500, Stable: DefaultProfile("a"), Canary: DefaultProfile("b"),
		LateFeedback: 0.5, LateDelay: 10 * time.Minute}
	var a, b, c bytes.Buffer
	for _, w := range []struct {
		buf  *bytes.Buffer
		seed uint64
	}{{&a, 7}, {&b, 7}, {&c, 8}} {
		o := opts
		o.Seed = w.seed
		if err := WriteJSONL(w.buf, testSpec(25), o); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("same seed, different output")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("different seeds, same output")
	}
	if n := bytes.Count(a.Bytes(), []byte("\n")); n < 900 || n > 1300 {
		t.Errorf("%d records in 2 h at 500/h (plus late records), want about 1000-1200", n)
	}
	if !bytes.Contains(a.Bytes(), []byte(`"request_id":"r-`)) {
		t.Error("no request_id written")
	}
	if err := WriteJSONL(&a, testSpec(25), Options{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("empty options: err = %v, want ErrBadOptions", err)
	}
}

// TestSimulateIgnoresTheClock checks that a span simulated later is the same traffic shifted in time
// (rollout simulate writes the same story whatever the hour it runs at), and that another Span of the
// same seed draws afresh.
func TestSimulateIgnoresTheClock(t *testing.T) {
	opts := Options{Seed: 7, From: day, To: day.Add(2 * time.Hour), PerHour: 500, Activity: 1,
		Stable: DefaultProfile("a"), Canary: DefaultProfile("b")}
	const shift = 13*time.Hour + 37*time.Minute + 13500*time.Millisecond
	later := opts
	later.From, later.To = opts.From.Add(shift), opts.To.Add(shift)
	other := opts
	other.Span = 1
	a, err := Collect(testSpec(25), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Collect(testSpec(25), later)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Collect(testSpec(25), other)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d requests, %d an hour later", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if !y.TS.Equal(x.TS.Add(shift)) {
			t.Fatalf("request %d at %s, shifted to %s, want %s", i, x.TS, y.TS, x.TS.Add(shift))
		}
		x.TS, y.TS, x.RequestID, y.RequestID = time.Time{}, time.Time{}, "", ""
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("request %d differs when simulated later:\n%+v\n%+v", i, x, y)
		}
	}
	if len(a) == len(c) && reflect.DeepEqual(a[0], c[0]) {
		t.Error("another span of the same seed drew the same requests")
	}
}

// TestSimulateAssignsBySpec checks that every request's variant is the one the spec's assigner gives
// its key, that the share of canary users is the weight, and that nothing reaches the canary during
// the deploy lag.
func TestSimulateAssignsBySpec(t *testing.T) {
	spec := testSpec(20)
	keys := append(keyRange("user-", 3000), keyRange("vip-", 50)...)
	lag := 30 * time.Minute
	reqs, err := Collect(spec, Options{Seed: 1, From: day, To: day.Add(6 * time.Hour), PerHour: 4000, Keys: keys,
		DeployLag: lag, Stable: DefaultProfile("a"), Canary: DefaultProfile("b")})
	if err != nil {
		t.Fatal(err)
	}
	assigner := spec.Assigner()
	canaryKeys, keysSeen := map[string]bool{}, map[string]bool{}
	for _, r := range reqs {
		if r.Late {
			continue
		}
		want := policy.Stable
		if assigner.Choose(r.Key).Arm == rollouts.CanaryArm && !r.TS.Before(day.Add(lag)) {
			want = policy.Canary
		}
		if r.Variant != want {
			t.Fatalf("%s at %s: variant %s, want %s", r.Key, r.TS, r.Variant, want)
		}
		keysSeen[r.Key] = true
		if r.Variant == policy.Canary {
			canaryKeys[r.Key] = true
			if strings.HasPrefix(r.Key, "vip-") {
				t.Fatalf("excluded key %s on the canary", r.Key)
			}
		}
	}
	if share := float64(len(canaryKeys)) / float64(len(keysSeen)); math.Abs(share-0.20) > 0.03 {
		t.Errorf("canary share of keys = %.3f, want 0.20 ± 0.03", share)
	}
}

// TestSimulateClusters checks the per-user traits: bad users fail at their rate on every request, and
// heavy users send many requests each.
func TestSimulateClusters(t *testing.T) {
	reqs, err := Collect(testSpec(50), Options{Seed: 3, From: day, To: day.Add(24 * time.Hour), PerHour: 2000, Users: 1000,
		Activity: 1, BadUsers: 0.01, BadUserErrorRate: 0.9, DailyAmplitude: 0.5, Stable: DefaultProfile("a"), Canary: DefaultProfile("b")})
	if err != nil {
		t.Fatal(err)
	}
	perUser := map[string][2]int{} // requests, errors
	var byHour [24]int
	for _, r := range reqs {
		c := perUser[r.Key]
		c[0]++
		if r.Error {
			c[1]++
		}
		perUser[r.Key] = c
		byHour[r.TS.Hour()]++
	}
	bad, badRequests, badErrors := 0, 0, 0
	for _, c := range perUser {
		if c[0] >= 20 && float64(c[1])/float64(c[0]) > 0.6 {
			bad++
			badRequests += c[0]
			badErrors += c[1]
		}
	}
	if bad < 4 || bad > 20 {
		t.Errorf("%d users failing most of their requests, want about 10 (1%% of 1000)", bad)
	}
	if rate := float64(badErrors) / float64(badRequests); math.Abs(rate-0.9) > 0.05 {
		t.Errorf("bad users' error rate %.3f, want 0.9", rate)
	}
	if peak, trough := byHour[15], byHour[3]; float64(peak) < 2*float64(trough) {
		t.Errorf("requests at 15h %d, at 3h %d: want the daily cycle (peak ≈ 3× trough)", peak, trough)
	}
}

func TestSimulateRegressionAndLate(t *testing.T) {
	broken := DefaultProfile("b")
	broken.ErrorRate = 0.3
	opts := Options{Seed: 5, From: day, To: day.Add(4 * time.Hour), PerHour: 3000, Stable: DefaultProfile("a"), Canary: DefaultProfile("b"),
		Regressions: []Regression{{From: day.Add(2 * time.Hour), Canary: broken}}, LateFeedback: 1, LateDelay: 5 * time.Minute}
	reqs, err := Collect(testSpec(50), opts)
	if err != nil {
		t.Fatal(err)
	}
	var before, after [2]int
	ids := map[string]time.Time{}
	late := 0
	for _, r := range reqs {
		if r.Late {
			late++
			at, ok := ids[r.RequestID]
			if !ok || !r.TS.After(at) || (r.Feedback == nil && r.Quality == nil) {
				t.Fatalf("late record %+v: request known %v at %s", r, ok, at)
			}
			continue
		}
		ids[r.RequestID] = r.TS
		if r.Feedback != nil || r.Quality != nil {
			t.Fatalf("request %s kept its feedback with LateFeedback 1", r.RequestID)
		}
		if r.Variant != policy.Canary {
			continue
		}
		c := &before
		if !r.TS.Before(day.Add(2 * time.Hour)) {
			c = &after
		}
		c[0]++
		if r.Error {
			c[1]++
		}
	}
	if late == 0 {
		t.Error("no late records")
	}
	if b, a := float64(before[1])/float64(before[0]), float64(after[1])/float64(after[0]); b > 0.03 || a < 0.25 {
		t.Errorf("canary error rate %.3f before the regression, %.3f after; want ≈0.01 and ≈0.3", b, a)
	}
	// The truth attaches the late values to their requests.
	st := Expected(reqs, "summarizer", policy.Window{From: day, To: day.Add(4 * time.Hour)})
	if st.Canary.Metrics["quality_score"].N == 0 || st.Canary.Metrics["negative_feedback_rate"].N == 0 {
		t.Error("Expected ignores the late values")
	}
}

func keyRange(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + itoa(i)
	}
	return out
}

// TestSimulateBots: bots send their share of the requests, at their own error rate on each arm.
func TestSimulateBots(t *testing.T) {
	spec := testSpec(50)
	opts := Options{Seed: 3, From: day, To: day.Add(4 * time.Hour), PerHour: 5000, Users: 500,
		Stable: DefaultProfile("a"), Canary: DefaultProfile("b"),
		Bots: []Bot{{Key: "bot-1", Share: 0.3, StableErrorRate: 0.5, CanaryErrorRate: 0.5}}}
	reqs, err := Collect(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	var bot, botErrors, total float64
	for _, r := range reqs {
		if r.Late || r.Shadow {
			continue
		}
		total++
		if r.Key == "bot-1" {
			bot++
			if r.Error {
				botErrors++
			}
		}
	}
	if share := bot / total; math.Abs(share-0.3) > 0.02 {
		t.Errorf("bot share %.3f, want 0.3", share)
	}
	if r := botErrors / bot; math.Abs(r-0.5) > 0.03 {
		t.Errorf("bot error rate %.3f, want 0.5", r)
	}
	opts.Bots = append(opts.Bots, Bot{Key: "bot-2", Share: 0.8})
	if err := Simulate(spec, opts, func(Request) error { return nil }); !errors.Is(err, ErrBadOptions) {
		t.Errorf("bots over all traffic: err = %v, want ErrBadOptions", err)
	}
}
