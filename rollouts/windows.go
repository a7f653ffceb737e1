package rollouts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones on machines without a zoneinfo database (a scratch container)
)

// Windows are when a rollout may move forward: `promotion.windows`. An instant is open when it falls in
// one of the Allow windows (or Allow is empty) and in none of the Deny windows, read on the wall clock
// of TimeZone. Outside them the controller opens no advance or promotion pull request and merges none;
// rollbacks never wait for a window.
//
// A window is written as cron-style ranges, each part optional but at least one given:
//
//	[DAYS] [DATES] [HH:MM-HH:MM]
//
//	DAYS   Mon-Fri | Sat,Sun | Mon,Wed-Fri | weekdays | weekends   (Mon..Sun, or full names)
//	DATES  2026-12-20..2027-01-04 (both days included) | 2026-12-24
//	TIME   09:00-16:00 (from included, to excluded; 24:00 is the end of the day; 22:00-06:00 runs past
//	       midnight into the next day, which belongs to the window's day)
//
// For example "weekdays 09:00-16:00 Europe/Berlin, never on Fridays, no changes over the holidays":
//
//	windows:
//	  timezone: Europe/Berlin
//	  allow: ["Mon-Fri 09:00-16:00"]
//	  deny: ["Fri", "2026-12-20..2027-01-04"]
//
// Wall-clock ranges rather than RFC 5545 RRULEs: a release window is a range of days and hours, which
// an RRULE can only express as a recurrence of starts plus a duration (and a date range as an UNTIL),
// and the windows read as people say them. Matching is on the wall clock of the time zone, so
// "09:00-16:00" stays 09:00-16:00 local across daylight-saving changes (it is 8 UTC hours in winter and
// summer alike, at different UTC times).
type Windows struct {
	// TimeZone is an IANA time zone name (Europe/Berlin); default UTC.
	TimeZone string   `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	Allow    []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	Deny     []string `yaml:"deny,omitempty" json:"deny,omitempty"`
}

// Calendar is Windows parsed: it answers whether an instant is open and when the next window opens.
type Calendar struct {
	loc         *time.Location
	allow, deny []window
}

// window is one parsed window.
type window struct {
	days       [7]bool // by time.Weekday
	from, to   civil   // zero: any date
	start, end int     // minutes of the day; end <= start runs past midnight
	text       string
}

// civil is a calendar date as yyyymmdd, so that dates compare as numbers.
type civil int

func civilOf(t time.Time) civil {
	y, m, d := t.Date()
	return civil(y*10000 + int(m)*100 + d)
}

// ErrWindow is the error of a window that does not parse.
var ErrWindow = errors.New("invalid window")

// Calendar parses the windows. A nil Windows is a calendar that is always open.
func (w *Windows) Calendar() (*Calendar, error) {
	c := &Calendar{loc: time.UTC}
	if w == nil {
		return c, nil
	}
	if w.TimeZone != "" {
		loc, err := time.LoadLocation(w.TimeZone)
		if err != nil || w.TimeZone == "Local" {
			return nil, fmt.Errorf("%w: unknown time zone %q; want an IANA name such as Europe/Berlin", ErrWindow, w.TimeZone)
		}
		c.loc = loc
	}
	for _, s := range w.Allow {
		win, err := parseWindow(s)
		if err != nil {
			return nil, err
		}
		c.allow = append(c.allow, win)
	}
	for _, s := range w.Deny {
		win, err := parseWindow(s)
		if err != nil {
			return nil, err
		}
		c.deny = append(c.deny, win)
	}
	return c, nil
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday, "sunday": time.Sunday, "monday": time.Monday,
	"tuesday": time.Tuesday, "wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}

// ParseWindow checks one window ("Mon-Fri 09:00-16:00", "2026-12-20..2027-01-04", "Fri"); see
// Windows. The error wraps ErrWindow and says what is wrong.
func ParseWindow(s string) error {
	_, err := parseWindow(s)
	return err
}

func parseWindow(s string) (window, error) {
	w := window{start: 0, end: 24 * 60, text: s}
	bad := func(format string, args ...any) (window, error) {
		return window{}, fmt.Errorf("%w %q: %s", ErrWindow, s, fmt.Sprintf(format, args...))
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return bad("empty; want [DAYS] [DATES] [HH:MM-HH:MM], such as \"Mon-Fri 09:00-16:00\"")
	}
	var haveDays, haveDates, haveTime bool
	for _, f := range fields {
		switch {
		case strings.Contains(f, ":"):
			if haveTime {
				return bad("two time ranges")
			}
			haveTime = true
			a, b, ok := strings.Cut(f, "-")
			start, err1 := clockMinutes(a)
			end, err2 := clockMinutes(b)
			if !ok || err1 != nil || err2 != nil || start == 24*60 {
				return bad("time range %q: want HH:MM-HH:MM, such as 09:00-16:00", f)
			}
			if start == end {
				return bad("time range %q is empty", f)
			}
			w.start, w.end = start, end
		case len(f) >= 10 && f[0] >= '0' && f[0] <= '9':
			if haveDates {
				return bad("two date ranges")
			}
			haveDates = true
			a, b, ok := strings.Cut(f, "..")
			if !ok {
				b = a
			}
			from, err1 := time.Parse(time.DateOnly, a)
			to, err2 := time.Parse(time.DateOnly, b)
			if err1 != nil || err2 != nil {
				return bad("dates %q: want YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD", f)
			}
			if to.Before(from) {
				return bad("dates %q end before they begin", f)
			}
			w.from, w.to = civilOf(from), civilOf(to)
		default:
			if haveDays {
				return bad("two day lists; write them as one, such as Mon,Wed-Fri")
			}
			haveDays = true
			days, err := parseDays(f)
			if err != nil {
				return bad("%v", err)
			}
			w.days = days
		}
	}
	if !haveDays {
		for i := range w.days {
			w.days[i] = true
		}
	}
	return w, nil
}

func parseDays(f string) ([7]bool, error) {
	var days [7]bool
	switch strings.ToLower(f) {
	case "weekdays":
		for d := time.Monday; d <= time.Friday; d++ {
			days[d] = true
		}
		return days, nil
	case "weekends":
		days[time.Saturday], days[time.Sunday] = true, true
		return days, nil
	case "daily":
		for i := range days {
			days[i] = true
		}
		return days, nil
	}
	for _, part := range strings.Split(f, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, ok1 := dayNames[strings.ToLower(a)]
		to, ok2 := from, true
		if isRange {
			to, ok2 = dayNames[strings.ToLower(b)]
		}
		if !ok1 || !ok2 {
			return days, fmt.Errorf("%q is not a day or a range of days (Mon..Sun, Mon-Fri, weekdays, weekends)", part)
		}
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return days, nil
}

func clockMinutes(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("not a time of day")
	}
	return hh*60 + mm, nil
}

// covers reports whether the window holds local wall-clock time t.
func (w window) covers(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.start < w.end {
		return m >= w.start && m < w.end && w.onDay(t)
	}
	// Past midnight: the evening belongs to today's window, the early morning to yesterday's.
	if m >= w.start {
		return w.onDay(t)
	}
	if m < w.end {
		y, mo, d := t.Date()
		return w.onDay(time.Date(y, mo, d-1, 12, 0, 0, 0, t.Location()))
	}
	return false
}

func (w window) onDay(t time.Time) bool {
	if !w.days[t.Weekday()] {
		return false
	}
	if w.from != 0 {
		c := civilOf(t)
		return c >= w.from && c <= w.to
	}
	return true
}

// Open reports whether t is in the windows.
func (c *Calendar) Open(t time.Time) bool {
	t = t.In(c.loc)
	if len(c.allow) > 0 {
		in := false
		for _, w := range c.allow {
			in = in || w.covers(t)
		}
		if !in {
			return false
		}
	}
	for _, w := range c.deny {
		if w.covers(t) {
			return false
		}
	}
	return true
}

// horizon bounds the search for the next window.
const horizon = 400 * 24 * time.Hour

// NextOpen returns the first instant at or after t that is open, to the minute; ok is false when no
// window opens within 400 days.
func (c *Calendar) NextOpen(t time.Time) (next time.Time, ok bool) {
	if c.Open(t) {
		return t, true
	}
	// Every window starts on a whole minute of the wall clock, and every zone's offset is whole
	// minutes, so stepping whole minutes of absolute time visits every wall-clock minute there is.
	next = t.Truncate(time.Minute).Add(time.Minute)
	for end := t.Add(horizon); next.Before(end); next = next.Add(time.Minute) {
		if c.Open(next) {
			return next.In(c.loc), true
		}
	}
	return time.Time{}, false
}

// Location is the time zone the windows are read in.
func (c *Calendar) Location() *time.Location { return c.loc }
