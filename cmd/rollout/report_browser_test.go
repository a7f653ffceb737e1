package main

// The report as a person sees it: Debian's Chromium opens the report of the demo's repository at a
// desktop and a phone width. The browser is driven through the Chrome DevTools Protocol with chromedp,
// the Go client the protocol's own generator (cdproto) is kept with: it starts the installed binary
// over a pipe (no Node, no WebDriver, no network), measures the laid-out page and reads the console and
// the network log, which `chromium --headless --dump-dom` cannot. The page itself runs no script: the
// test's measuring script runs in the test's own evaluation, not in the report.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rollout-dev/rollout/internal/testserver"
)

// pageFacts is what the measuring script reads of the laid-out page.
type pageFacts struct {
	ViewportWidth float64 `json:"viewportWidth"`
	ScrollWidth   float64 `json:"scrollWidth"`
	// Outside lists elements that reach beyond the viewport, and chart texts that reach beyond their
	// chart (cut off).
	Outside  []string       `json:"outside"`
	Rollouts []rolloutFacts `json:"rollouts"`
}

type rolloutFacts struct {
	ID           string   `json:"id"`
	WeightCharts int      `json:"weightCharts"`
	RuleCharts   int      `json:"ruleCharts"`
	XTitles      []string `json:"xTitles"`
	YTitles      []string `json:"yTitles"`
	LimitLabels  []string `json:"limitLabels"`
	// YTicks counts the charts with at least two labelled y ticks.
	YTicks int `json:"yTicks"`
}

const measure = `(() => {
  const vw = document.documentElement.clientWidth;
  const outside = [];
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('class') ? '.' + el.getAttribute('class').split(' ').join('.') : '') + ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) outside.push(name(el) + ' right ' + Math.round(r.right) + ' > ' + vw);
  }
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (r.width > 0 && (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)) outside.push('cut off: ' + name(t));
    }
  }
  const texts = (root, sel) => [...root.querySelectorAll(sel)].map(t => t.textContent.trim());
  const rollouts = [...document.querySelectorAll('section.rollout')].map(s => ({
    id: s.id,
    weightCharts: s.querySelectorAll('figure.weightchart svg.chart').length,
    ruleCharts: s.querySelectorAll('.charts svg.chart').length,
    xTitles: texts(s, 'svg.chart .x-title'),
    yTitles: texts(s, 'svg.chart .y-title'),
    limitLabels: texts(s, '.charts svg.chart .limit-label'),
    yTicks: [...s.querySelectorAll('svg.chart')].filter(c => c.querySelectorAll('text[text-anchor="end"]').length >= 2).length,
  }));
  return JSON.stringify({viewportWidth: vw, scrollWidth: document.documentElement.scrollWidth, outside: outside.slice(0, 20), rollouts});
})()`

// checkInBrowser opens the report at html in Debian's Chromium at 1280 and 390 px.
func checkInBrowser(t *testing.T, html string, names []string, docs string) {
	chromium := testserver.Chromium(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU, chromedp.Flag("hide-scrollbars", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root, as in CI containers
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems, requests []string
	if err := chromedp.Listen(browser, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if e.Type == cdpruntime.ConsoleAPICalledTypeError || e.Type == cdpruntime.ConsoleAPICalledTypeWarning {
				problems = append(problems, fmt.Sprintf("console.%s", e.Type))
			}
		case *cdpruntime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("console %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			requests = append(requests, e.Request.URL)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(browser, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("start chromium (%s): %v", chromium, err)
	}
	if _, err := chromedp.Call(browser, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}

	url := "file://" + html
	for _, width := range []int64{1280, 390} {
		t.Run(fmt.Sprintf("%dpx", width), func(t *testing.T) {
			var mobile []chromedp.EmulateViewportOption
			if width < 600 {
				mobile = append(mobile, chromedp.EmulateMobile)
			}
			if err := chromedp.Do(browser, chromedp.EmulateViewport(width, 1600, mobile...), chromedp.Navigate(url)); err != nil {
				t.Fatal(err)
			}
			raw, err := chromedp.Run(browser, chromedp.Evaluate[string](measure))
			if err != nil {
				t.Fatal(err)
			}
			var facts pageFacts
			if err := json.Unmarshal([]byte(raw), &facts); err != nil {
				t.Fatal(err)
			}
			if facts.ViewportWidth != float64(width) {
				t.Errorf("viewport %v px wide, want %d", facts.ViewportWidth, width)
			}
			if facts.ScrollWidth > facts.ViewportWidth {
				t.Errorf("the page scrolls sideways: %v px of content in a %v px viewport", facts.ScrollWidth, facts.ViewportWidth)
			}
			for _, o := range facts.Outside {
				t.Errorf("overflows: %s", o)
			}
			var ids []string
			for _, r := range facts.Rollouts {
				ids = append(ids, strings.TrimPrefix(r.ID, "r-"))
				if r.WeightCharts != 1 {
					t.Errorf("%s: %d weight charts, want 1", r.ID, r.WeightCharts)
				}
				if r.RuleCharts == 0 {
					t.Errorf("%s: no rule chart", r.ID)
				}
				charts := r.WeightCharts + r.RuleCharts
				if len(r.XTitles) != charts || len(r.YTitles) != charts || r.YTicks != charts {
					t.Errorf("%s: %d charts, %d x-axis titles %q, %d y-axis titles %q, %d with y ticks: want every axis titled and ticked",
						r.ID, charts, len(r.XTitles), r.XTitles, len(r.YTitles), r.YTitles, r.YTicks)
				}
				for _, x := range r.XTitles {
					if x != "time (UTC)" {
						t.Errorf("%s: x axis titled %q", r.ID, x)
					}
				}
				if len(r.LimitLabels) != r.RuleCharts {
					t.Errorf("%s: %d rule charts, %d limit labels %q", r.ID, r.RuleCharts, len(r.LimitLabels), r.LimitLabels)
				}
				for _, l := range r.LimitLabels {
					if !strings.HasPrefix(l, "limit max") && !strings.HasPrefix(l, "limit min") {
						t.Errorf("%s: limit labelled %q, want the limit as the spec writes it", r.ID, l)
					}
				}
			}
			if !slices.Equal(ids, names) {
				t.Errorf("rollouts on the page %q, want %q", ids, names)
			}
			shot, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			saveScreenshot(t, docs, fmt.Sprintf("report-%dpx.png", width), shot)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("the page logged: %s", p)
	}
	for _, r := range requests {
		if r != url {
			t.Errorf("the page fetched %s: a report needs nothing but itself", r)
		}
	}
}

// saveScreenshot keeps a screenshot with the test's artifacts (go test -artifacts), and with -update
// in docs/, where the README shows it.
func saveScreenshot(t *testing.T, docs, name string, png []byte) {
	t.Helper()
	dir := t.ArtifactDir()
	if *update {
		dir = docs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
