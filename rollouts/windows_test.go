package rollouts

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// berlin is the example: weekdays 09:00-16:00 Europe/Berlin, never on Fridays, and a freeze
// over the holidays.
var berlin = &Windows{TimeZone: "Europe/Berlin", Allow: []string{"Mon-Fri 09:00-16:00"}, Deny: []string{"Fri", "2026-12-20..2027-01-04"}}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowsOpen(t *testing.T) {
	cal, err := berlin.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   string
		open bool
	}{
		// Winter (CET, UTC+1): 09:00 local is 08:00Z.
		{"2026-03-26T07:59:00Z", false}, {"2026-03-26T08:00:00Z", true}, {"2026-03-26T14:59:59Z", true}, {"2026-03-26T15:00:00Z", false},
		{"2026-03-27T09:00:00Z", false}, // a Friday
		{"2026-03-28T10:00:00Z", false}, // a Saturday
		// Summer after the spring change of 2026-03-29 (CEST, UTC+2): 09:00 local is 07:00Z.
		{"2026-03-30T06:59:00Z", false}, {"2026-03-30T07:00:00Z", true}, {"2026-03-30T13:59:00Z", true}, {"2026-03-30T14:00:00Z", false},
		// The autumn change of 2026-10-25 back to CET.
		{"2026-10-22T07:00:00Z", true}, {"2026-10-26T07:00:00Z", false}, {"2026-10-26T08:00:00Z", true},
		// The holiday freeze, both ends included, in Berlin's dates.
		{"2026-12-18T09:00:00Z", false}, {"2026-12-17T09:00:00Z", true}, {"2026-12-21T09:00:00Z", false},
		{"2027-01-04T09:00:00Z", false}, {"2027-01-05T08:00:00Z", true},
	} {
		if got := cal.Open(utc(tc.at)); got != tc.open {
			t.Errorf("Open(%s) = %t, want %t", tc.at, got, tc.open)
		}
	}
}

// NextOpen across both daylight-saving changes: Friday afternoon to Monday 09:00 local, which is 08:00Z
// before the spring change and 07:00Z after it, and the other way round in autumn.
func TestWindowsNextOpenAcrossDaylightSaving(t *testing.T) {
	cal, err := berlin.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, want string }{
		{"2026-03-26T15:00:00Z", "2026-03-30T07:00:00Z"}, // Thursday 16:00 CET → Monday 09:00 CEST (spring)
		{"2026-10-22T14:00:00Z", "2026-10-26T08:00:00Z"}, // Thursday 16:00 CEST → Monday 09:00 CET (autumn)
		{"2026-12-19T10:00:00Z", "2027-01-05T08:00:00Z"}, // the freeze
		{"2026-03-30T07:00:00Z", "2026-03-30T07:00:00Z"}, // open now
		{"2026-03-30T06:59:30Z", "2026-03-30T07:00:00Z"},
	} {
		got, ok := cal.NextOpen(utc(tc.from))
		if !ok || !got.Equal(utc(tc.want)) {
			t.Errorf("NextOpen(%s) = %s %t, want %s", tc.from, got, ok, tc.want)
		}
	}
	never, _ := (&Windows{Allow: []string{"Mon"}, Deny: []string{"Mon"}}).Calendar()
	if got, ok := never.NextOpen(utc("2026-03-26T15:00:00Z")); ok {
		t.Errorf("a calendar that never opens opens at %s", got)
	}
}

// A window past midnight and a window in the hour that repeats or vanishes are read on the wall clock.
func TestWindowsOnTheChangeNights(t *testing.T) {
	night, err := (&Windows{TimeZone: "Europe/Berlin", Allow: []string{"Sat 22:00-06:00"}}).Calendar()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   string
		open bool
	}{
		{"2026-03-28T20:59:00Z", false}, {"2026-03-28T21:00:00Z", true}, // 22:00 CET Saturday
		{"2026-03-29T01:30:00Z", true},                                  // 03:30 CEST, Sunday morning: Saturday's night
		{"2026-03-29T03:59:00Z", true}, {"2026-03-29T04:00:00Z", false}, // 06:00 CEST
		{"2026-10-25T04:59:00Z", true}, {"2026-10-25T05:00:00Z", false}, // 06:00 CET
	} {
		if got := night.Open(utc(tc.at)); got != tc.open {
			t.Errorf("night: Open(%s) = %t, want %t", tc.at, got, tc.open)
		}
	}
	// 02:00-03:00 on 2026-10-25 happens twice (CEST, then CET); both are denied, and 03:00 CET is open.
	ambiguous, _ := (&Windows{TimeZone: "Europe/Berlin", Deny: []string{"2026-10-25 02:00-03:00"}}).Calendar()
	for _, tc := range []struct {
		at   string
		open bool
	}{{"2026-10-24T23:59:00Z", true}, {"2026-10-25T00:30:00Z", false}, {"2026-10-25T01:30:00Z", false}, {"2026-10-25T02:00:00Z", true}} {
		if got := ambiguous.Open(utc(tc.at)); got != tc.open {
			t.Errorf("repeated hour: Open(%s) = %t, want %t", tc.at, got, tc.open)
		}
	}
	// 02:00-03:00 on 2026-03-29 never happens: a window there is never open, and the next one is found.
	vanished, _ := (&Windows{TimeZone: "Europe/Berlin", Allow: []string{"2026-03-29 02:00-03:00", "2026-03-30 02:00-03:00"}}).Calendar()
	if got, ok := vanished.NextOpen(utc("2026-03-28T12:00:00Z")); !ok || !got.Equal(utc("2026-03-30T00:00:00Z")) {
		t.Errorf("vanished hour: NextOpen = %s %t", got, ok)
	}
}

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"Mon-Fri 09:00-16:00", ""}, {"weekdays", ""}, {"weekends 00:00-24:00", ""}, {"Fri-Mon", ""}, {"Mon,Wed-Fri", ""},
		{"2026-12-24", ""}, {"Sat 2026-12-20..2027-01-04 22:00-06:00", ""}, {"monday", ""},
		{"", "empty"}, {"Funday", "not a day"}, {"Mon Tue", "two day lists"}, {"09:00", "want HH:MM-HH:MM"},
		{"09:00-09:00", "empty"}, {"25:00-26:00", "want HH:MM-HH:MM"}, {"09:60-10:00", "want HH:MM-HH:MM"},
		{"2027-01-04..2026-12-20", "end before"}, {"2026-13-01", "want YYYY-MM-DD"}, {"09:00-10:00 10:00-11:00", "two time ranges"},
	} {
		err := ParseWindow(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseWindow(%q): %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrWindow)):
			t.Errorf("ParseWindow(%q) = %v, want an error saying %q", tc.in, err, tc.err)
		}
	}
	if _, err := (&Windows{TimeZone: "Mars/Olympus"}).Calendar(); err == nil {
		t.Errorf("an unknown time zone was accepted")
	}
}

// Bad windows and approvals are spec errors at their own line and column.
func TestPromotionErrorsNamePositions(t *testing.T) {
	src := `apiVersion: rollout/v1
kind: Rollout
name: s
stable: {model: a, prompt: v1}
canary: {model: b, prompt: v1}
traffic: {weight: 0}
stages: [{weight: 5, minDuration: 1h}]
metrics: {source: file:x.jsonl}
promotion:
  approvals: {count: 0, from: ["a b"]}
  windows:
    timezone: Mars/Olympus
    allow: ["Mon-Fri 09:00-16:00", "Funday"]
    deny: ["2027-01-04..2026-12-20"]
`
	_, problems := Parse("rollouts/s.yaml", []byte(src))
	var got []string
	for _, p := range problems {
		got = append(got, p.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"rollouts/s.yaml:10:22: promotion.approvals.count: want 1 or more",
		"rollouts/s.yaml:10:32: promotion.approvals.from[0]",
		"rollouts/s.yaml:12:15: promotion.windows.timezone: invalid window: unknown time zone \"Mars/Olympus\"",
		"rollouts/s.yaml:13:36: promotion.windows.allow[1]",
		"rollouts/s.yaml:14:12: promotion.windows.deny[0]",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem %q in:\n%s", want, all)
		}
	}
}

func BenchmarkNextOpenThroughAFreeze(b *testing.B) {
	cal, _ := berlin.Calendar()
	from := utc("2026-12-19T10:00:00Z")
	for i := 0; i < b.N; i++ {
		cal.NextOpen(from)
	}
}

// notify targets choose events by name; rollback.notify targets cannot (they get rollbacks and alerts).
func TestNotifyEventsAreChecked(t *testing.T) {
	src := `apiVersion: rollout/v1
kind: Rollout
name: s
stable: {model: a, prompt: v1}
canary: {model: b, prompt: v1}
traffic: {weight: 0}
stages: [{weight: 5, minDuration: 1h}]
metrics: {source: file:x.jsonl}
notify:
  - {slack: env:ROLLOUT_SLACK, on: [promoted, rollbak]}
rollback:
  notify: [{webhook: env:ROLLOUT_HOOK, on: [start]}]
`
	spec, problems := Parse("rollouts/s.yaml", []byte(src))
	var got []string
	for _, p := range problems {
		got = append(got, p.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`rollouts/s.yaml:10:47: notify[0].on[1]: unknown event "rollbak"`,
		"rollouts/s.yaml:12:44: rollback.notify[0].on: rollback.notify targets get rollbacks and alerts",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem %q in:\n%s", want, all)
		}
	}
	if spec == nil {
		return
	}
	good := &Spec{Notify: []Notify{{Slack: "env:A", On: []string{EventPromoted}}, {Webhook: "env:B"}},
		Rollback: RollbackPolicy{Notify: []Notify{{Webhook: "env:C"}}}}
	for ev, want := range map[string]string{EventPromoted: "env:A", EventRollback: "env:C env:B", EventAlert: "env:C env:B", EventStart: ""} {
		var refs []string
		for _, n := range good.Targets(ev) {
			refs = append(refs, n.Slack+n.Webhook)
		}
		if strings.Join(refs, " ") != want {
			t.Errorf("Targets(%s) = %q, want %q", ev, refs, want)
		}
	}
}
