// Package chart draws the judge's evidence over time as plain SVG: a rollout's canary weight as a step
// line, and one rule's estimate and always-valid interval against its limit. The images need no script,
// no font file and no network; they scale to the width of whatever holds them (a viewBox and no fixed
// size), so the same file reads in a browser, a job summary link or an e-mail.
//
// It is written by hand rather than with a chart library: the two charts need a time axis, a band, a
// limit line and labelled markers, about three hundred lines of SVG; a library (go-analyze/charts and
// the like) brings a font rasteriser and fixed-size canvases, draws no confidence band without the
// same hand work, and writes larger files. There is no PNG: every place the charts go (a browser, the
// Action's artifact, GitHub Pages) shows SVG, a job summary shows no image from the runner's disk in
// either format, and a pure-Go rasteriser (oksvg with rasterx, tdewolff/canvas) would be a sizeable
// dependency for an image nobody needs.
//
// Every string from a spec, a commit or a source is escaped; the output is deterministic for its input.
//
// It belongs to the policy room, beside the Markdown evidence: it renders series and knows nothing of
// git or sources.
package chart

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"time"
)

// The drawing's coordinate system: the viewBox, and the plot area inside it.
const (
	width      = 480
	height     = 250
	plotLeft   = 68
	plotRight  = 468
	plotTop    = 34
	plotBottom = 206
	// MaxPoints is the most points a chart draws of a series; longer series are thinned evenly (a
	// point per two pixels is all the plot can show), keeping the first, the last and every point
	// whose verdict differs from the one before.
	MaxPoints = 100
)

// Step is one change of a rollout's canary weight.
type Step struct {
	At     time.Time
	Weight int
	// Label is what the chart writes beside the step (a number the page's table explains); Title is
	// the tooltip (commit, actor, decision).
	Label, Title string
}

// Weight is the canary weight of one rollout over [From, To].
type Weight struct {
	Title    string
	From, To time.Time
	Steps    []Step
}

// Point is one tick of a rule: the estimate and the interval of the limit, on the limit's scale. An
// interval end the data cannot bound yet is ±Inf and is drawn to the edge of the plot.
type Point struct {
	At                  time.Time
	Estimate, Low, High float64
	// Verdict is the rule's verdict at this tick (pass, fail, inconclusive).
	Verdict string
}

// Marker is a moment on the time axis, such as a decision's commit.
type Marker struct {
	At    time.Time
	Label string
	Title string
	// Bad draws it in the colour of a rollback.
	Bad bool
}

// Band is one limit of one rule over a stage: the estimate and its interval at each tick, against the
// limit.
type Band struct {
	Title  string
	YLabel string
	// Percent writes the y axis as signed percentages (a relative limit's scale).
	Percent  bool
	From, To time.Time
	Points   []Point
	// Limit is the limit on the same scale; LimitLabel names it ("maxIncrease 50%").
	Limit      float64
	LimitLabel string
	Markers    []Marker
}

// WeightSVG draws the weight as a step line from 0 to 100%, each step marked and labelled.
func WeightSVG(w Weight) string {
	from, to := span(w.From, w.To)
	x := timeScale(from, to)
	y := func(v float64) float64 { return plotBottom - (v/100)*(plotBottom-plotTop) }
	var b strings.Builder
	open(&b, w.Title, "weight % of users on the canary")
	grid(&b, []float64{0, 25, 50, 75, 100}, y, func(v float64) string { return strconv.Itoa(int(v)) + "%" })
	timeAxis(&b, from, to, x)
	axisTitles(&b, "canary weight", "time (UTC)")
	if len(w.Steps) > 0 {
		var pts []string
		prev := 0.0
		first := true
		for _, s := range w.Steps {
			sx, sy := x(clampTime(s.At, from, to)), y(float64(s.Weight))
			if !first {
				pts = append(pts, xy(sx, y(prev)))
			}
			pts = append(pts, xy(sx, sy))
			prev, first = float64(s.Weight), false
		}
		pts = append(pts, xy(x(to), y(prev)))
		fmt.Fprintf(&b, `<polyline class="weight" points="%s"/>`, strings.Join(pts, " "))
		for _, s := range w.Steps {
			sx, sy := x(clampTime(s.At, from, to)), y(float64(s.Weight))
			// The label sits above and right of its point, clear of the step's vertical line; near the
			// top, below it.
			ly := sy - 7
			if ly < plotTop+8 {
				ly = sy + 15
			}
			fmt.Fprintf(&b, `<g class="step"><title>%s</title><circle cx="%s" cy="%s" r="3.5"/><text x="%s" y="%s">%s</text></g>`,
				esc(s.Title), num(sx), num(sy), num(sx+3), num(ly), esc(s.Label))
		}
	}
	b.WriteString("</svg>")
	return b.String()
}

// BandSVG draws the estimate as a line, the interval as a band around it, the limit as a dashed line and
// each marker as a labelled vertical line.
func BandSVG(c Band) string {
	from, to := span(c.From, c.To)
	x := timeScale(from, to)
	pts := Thin(c.Points, MaxPoints)
	lo, hi := yRange(pts, c.Limit, c.Percent)
	ticks := niceTicks(lo, hi, 5)
	lo, hi = math.Min(lo, ticks[0]), math.Max(hi, ticks[len(ticks)-1])
	y := func(v float64) float64 {
		v = math.Max(lo, math.Min(hi, v))
		return plotBottom - (v-lo)/(hi-lo)*(plotBottom-plotTop)
	}
	format := func(v float64) string { return FormatValue(v, c.Percent) }
	var b strings.Builder
	open(&b, c.Title, c.Title+": estimate and always-valid interval against the limit "+c.LimitLabel)
	grid(&b, ticks, y, format)
	timeAxis(&b, from, to, x)
	axisTitles(&b, c.YLabel, "time (UTC)")
	// The band, one polygon per run of points with an interval.
	var upper, lower []string
	flush := func() {
		if len(upper) > 0 {
			for i := len(lower) - 1; i >= 0; i-- {
				upper = append(upper, lower[i])
			}
			fmt.Fprintf(&b, `<polygon class="band" points="%s"/>`, strings.Join(upper, " "))
		}
		upper, lower = nil, nil
	}
	for _, p := range pts {
		if math.IsNaN(p.Low) || math.IsNaN(p.High) {
			flush()
			continue
		}
		px := x(clampTime(p.At, from, to))
		upper = append(upper, xyCoarse(px, y(p.High)))
		lower = append(lower, xyCoarse(px, y(p.Low)))
	}
	flush()
	// The limit.
	ly := y(c.Limit)
	fmt.Fprintf(&b, `<line class="limit" x1="%d" x2="%d" y1="%s" y2="%s"/>`, plotLeft, plotRight, num(ly), num(ly))
	labelY := ly - 4
	if labelY < plotTop+10 {
		labelY = ly + 12
	}
	fmt.Fprintf(&b, `<text class="limit-label" x="%d" y="%s" text-anchor="end">limit %s</text>`, plotRight-2, num(labelY), esc(c.LimitLabel))
	// The estimate, one line per run of finite estimates.
	var line []string
	flushLine := func() {
		if len(line) > 1 {
			fmt.Fprintf(&b, `<polyline class="estimate" points="%s"/>`, strings.Join(line, " "))
		} else if len(line) == 1 {
			px, py, _ := strings.Cut(line[0], ",")
			fmt.Fprintf(&b, `<circle class="estimate-dot" cx="%s" cy="%s" r="2"/>`, px, py)
		}
		line = nil
	}
	for _, p := range pts {
		if math.IsNaN(p.Estimate) || math.IsInf(p.Estimate, 0) {
			flushLine()
			continue
		}
		line = append(line, xyCoarse(x(clampTime(p.At, from, to)), y(p.Estimate)))
	}
	flushLine()
	if !hasEstimate(pts) {
		fmt.Fprintf(&b, `<text class="no-data" x="%d" y="%d" text-anchor="middle">no estimate in this stage</text>`,
			(plotLeft+plotRight)/2, (plotTop+plotBottom)/2)
	}
	// The points the verdict was fail, as dots on the estimate.
	for _, p := range pts {
		if p.Verdict == "fail" && !math.IsNaN(p.Estimate) && !math.IsInf(p.Estimate, 0) {
			fmt.Fprintf(&b, `<circle class="fail" cx="%s" cy="%s" r="2.2"/>`, num(x(clampTime(p.At, from, to))), num(y(p.Estimate)))
		}
	}
	markers(&b, c.Markers, from, to, x)
	legend(&b)
	b.WriteString("</svg>")
	return b.String()
}

// Style is the CSS the charts' classes need, for a page that holds them inline. A standalone file
// (WeightSVG or BandSVG written alone) carries its own copy.
const Style = `svg.chart{width:100%;height:auto;display:block;font:12px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
svg.chart .grid{stroke:#e3e6ea;stroke-width:1}
svg.chart .axis{stroke:#8a929c;stroke-width:1}
svg.chart text{fill:#3b424a}
svg.chart .title{font-weight:600;font-size:13px;fill:#1f2328}
svg.chart .weight{fill:none;stroke:#0969da;stroke-width:2}
svg.chart .step circle{fill:#0969da}
svg.chart .step text{font-size:10px;fill:#0969da}
svg.chart .band{fill:#54aeff;fill-opacity:.28;stroke:none}
svg.chart .estimate{fill:none;stroke:#0550ae;stroke-width:1.6}
svg.chart .estimate-dot{fill:#0550ae}
svg.chart .fail{fill:#cf222e}
svg.chart .limit{stroke:#cf222e;stroke-width:1.4;stroke-dasharray:5 3}
svg.chart .limit-label{fill:#cf222e;font-size:11px}
svg.chart .marker{stroke:#6e7781;stroke-width:1;stroke-dasharray:2 2}
svg.chart .marker.bad{stroke:#cf222e}
svg.chart .marker-label{font-size:10px;fill:#57606a}
svg.chart .marker-label.bad{fill:#cf222e}
svg.chart .legend{font-size:10px}
svg.chart .no-data{fill:#57606a;font-style:italic}`

// Standalone wraps a chart with its style, as a file of its own.
func Standalone(svg string) string {
	const head = `<svg xmlns="http://www.w3.org/2000/svg" class="chart"`
	if !strings.HasPrefix(svg, head) {
		return svg
	}
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + head + ` width="960" height="500"` + svg[len(head):strings.Index(svg, ">")+1] +
		"<style>" + Style + "</style>" + svg[strings.Index(svg, ">")+1:] + "\n"
}

// Thin returns at most n of pts, evenly spread, keeping the first, the last and every point whose
// verdict differs from the previous point's.
func Thin(pts []Point, n int) []Point {
	if len(pts) <= n || n < 2 {
		return pts
	}
	out := make([]Point, 0, n+8)
	step := float64(len(pts)-1) / float64(n-1)
	next := 0.0
	for i, p := range pts {
		keep := i == len(pts)-1 || float64(i) >= next || (i > 0 && p.Verdict != pts[i-1].Verdict)
		if keep {
			out = append(out, p)
			for next <= float64(i) {
				next += step
			}
		}
	}
	return out
}

// FormatValue writes a value of a chart's y axis: a signed percentage on a relative scale, else three
// significant digits.
func FormatValue(v float64, percent bool) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "−∞"
	}
	if percent {
		p := math.Round(v*1000) / 10
		s := strconv.FormatFloat(p, 'f', -1, 64) + "%"
		if p > 0 {
			s = "+" + s
		}
		return s
	}
	if v != 0 && (math.Abs(v) < 0.001 || math.Abs(v) >= 1e6) {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	// Three significant digits, never fewer than the integer part.
	digits := max(0, 2-int(math.Floor(math.Log10(math.Abs(v)))))
	if v == 0 {
		digits = 0
	}
	return strconv.FormatFloat(math.Round(v*math.Pow10(digits))/math.Pow10(digits), 'f', -1, 64)
}

func open(b *strings.Builder, title, desc string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s"><title>%s</title>`,
		width, height, esc(desc), esc(desc))
	fmt.Fprintf(b, `<text class="title" x="%d" y="18">%s</text>`, plotLeft, esc(title))
}

func grid(b *strings.Builder, ticks []float64, y func(float64) float64, format func(float64) string) {
	for _, t := range ticks {
		ty := y(t)
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%s" y2="%s"/><text x="%d" y="%s" text-anchor="end">%s</text>`,
			plotLeft, plotRight, num(ty), num(ty), plotLeft-5, num(ty+4), esc(format(t)))
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, plotLeft, plotRight, plotBottom, plotBottom)
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, plotLeft, plotLeft, plotTop, plotBottom)
}

func axisTitles(b *strings.Builder, yTitle, xTitle string) {
	fmt.Fprintf(b, `<text class="y-title" x="%d" y="%d" text-anchor="middle" transform="rotate(-90 12 %d)">%s</text>`,
		12, (plotTop+plotBottom)/2, (plotTop+plotBottom)/2, esc(yTitle))
	fmt.Fprintf(b, `<text class="x-title" x="%d" y="%d" text-anchor="middle">%s</text>`, (plotLeft+plotRight)/2, height-6, esc(xTitle))
}

func legend(b *strings.Builder) {
	x := plotRight - 200
	fmt.Fprintf(b, `<g class="legend"><line class="estimate" x1="%d" x2="%d" y1="27" y2="27"/><text x="%d" y="30">estimate</text>`, x, x+14, x+18)
	fmt.Fprintf(b, `<rect class="band" x="%d" y="22" width="14" height="9"/><text x="%d" y="30">interval</text>`, x+70, x+88)
	fmt.Fprintf(b, `<line class="limit" x1="%d" x2="%d" y1="27" y2="27"/><text x="%d" y="30">limit</text></g>`, x+142, x+156, x+160)
}

func markers(b *strings.Builder, ms []Marker, from, to time.Time, x func(time.Time) float64) {
	lastX := -100.0
	row := 0
	for _, m := range ms {
		if m.At.Before(from) || m.At.After(to) {
			continue
		}
		mx := x(m.At)
		class := "marker"
		if m.Bad {
			class += " bad"
		}
		// Labels closer than their width take turns on two rows.
		if mx-lastX < 46 {
			row = 1 - row
		} else {
			row = 0
		}
		lastX = mx
		anchor := "start"
		tx := mx + 2
		if mx > plotRight-50 {
			anchor, tx = "end", mx-2
		}
		fmt.Fprintf(b, `<g><title>%s</title><line class="%s" x1="%s" x2="%s" y1="%d" y2="%d"/><text class="marker-label%s" x="%s" y="%d" text-anchor="%s">%s</text></g>`,
			esc(m.Title), class, num(mx), num(mx), plotTop, plotBottom, strings.TrimPrefix(class, "marker"), num(tx), plotTop+10+row*11, anchor, esc(m.Label))
	}
}

// timeAxis writes the x axis's ticks: at most five, on round hours or days.
func timeAxis(b *strings.Builder, from, to time.Time, x func(time.Time) float64) {
	d := to.Sub(from)
	steps := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
		48 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if d/s <= 4 {
			step = s
			break
		}
	}
	layout := "Jan 2 15:04"
	if step >= 24*time.Hour {
		layout = "Jan 2"
	}
	first := from.Truncate(step)
	if first.Before(from) {
		first = first.Add(step)
	}
	for t := first; !t.After(to); t = t.Add(step) {
		tx := x(t)
		fmt.Fprintf(b, `<line class="axis" x1="%s" x2="%s" y1="%d" y2="%d"/>`, num(tx), num(tx), plotBottom, plotBottom+4)
		label := t.UTC().Format(layout)
		// A label that would run off the drawing is left out; its tick stays.
		if half := float64(len(label)) * 3.6; tx-half >= 0 && tx+half <= width {
			fmt.Fprintf(b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`, num(tx), plotBottom+16, label)
		}
	}
}

// span widens an empty or reversed time range to an hour, so that every chart has an axis.
func span(from, to time.Time) (time.Time, time.Time) {
	if !to.After(from) {
		to = from.Add(time.Hour)
	}
	return from.UTC(), to.UTC()
}

func timeScale(from, to time.Time) func(time.Time) float64 {
	d := float64(to.Sub(from))
	return func(t time.Time) float64 {
		return plotLeft + float64(t.Sub(from))/d*(plotRight-plotLeft)
	}
}

func clampTime(t, from, to time.Time) time.Time {
	if t.Before(from) {
		return from
	}
	if t.After(to) {
		return to
	}
	return t
}

// yRange is the span of the y axis: the estimates and the limit (and 0 on a relative scale) in full;
// the interval's finite ends only as far as twice that span beyond it, so that the wide intervals of
// a stage's first hours do not flatten the rest.
func yRange(pts []Point, limit float64, percent bool) (float64, float64) {
	lo, hi := limit, limit
	if percent || limit == 0 {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	}
	for _, p := range pts {
		if !math.IsNaN(p.Estimate) && !math.IsInf(p.Estimate, 0) {
			lo, hi = math.Min(lo, p.Estimate), math.Max(hi, p.Estimate)
		}
	}
	base := hi - lo
	if base == 0 {
		base = math.Max(math.Abs(hi), 1)
	}
	lo0, hi0 := lo, hi
	for _, p := range pts {
		if !math.IsNaN(p.Low) && !math.IsInf(p.Low, 0) {
			lo = math.Min(lo, math.Max(p.Low, lo0-2*base))
		}
		if !math.IsNaN(p.High) && !math.IsInf(p.High, 0) {
			hi = math.Max(hi, math.Min(p.High, hi0+2*base))
		}
	}
	if percent && lo < -1 {
		lo = -1
	}
	if hi == lo {
		hi = lo + 1
	}
	pad := (hi - lo) * 0.05
	return lo - pad, hi + pad
}

// niceTicks returns about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	raw := (hi - lo) / float64(n-1)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step+0) // +0: no "-0" label
	}
	if len(out) < 2 {
		out = append(out, out[len(out)-1]+step)
	}
	return out
}

func hasEstimate(pts []Point) bool {
	for _, p := range pts {
		if !math.IsNaN(p.Estimate) && !math.IsInf(p.Estimate, 0) {
			return true
		}
	}
	return false
}

func xy(x, y float64) string { return num(x) + "," + num(y) }

// xyCoarse writes a point of a long series to half a unit (about half a pixel where the page draws a
// chart): the series are most of a report's bytes.
func xyCoarse(x, y float64) string { return half(x) + "," + half(y) }

func half(v float64) string { return strconv.FormatFloat(math.Round(v*2)/2, 'f', -1, 64) }

// num writes a coordinate to a tenth of a unit: finer than a pixel at any size the page draws.
func num(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

func esc(s string) string { return html.EscapeString(s) }
