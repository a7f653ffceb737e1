package report

import (
	"fmt"
	"html/template"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/policy/evidence/chart"
)

// Page is everything one report shows.
type Page struct {
	// Repository names where the specs were read (a URL or a path), Branch the branch.
	Repository, Branch string
	Since, Now         time.Time
	Every              time.Duration
	Rollouts           []Rollout
	// Problems are the spec files that could not be read; each is shown, none stops the report.
	Problems []string
}

// WriteHTML writes the page: one file, its style and charts inline, no script, no link to fetch.
func WriteHTML(w io.Writer, p Page) error {
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// File is one chart as a file of its own.
type File struct {
	Name string
	SVG  string
}

// Charts returns each rollout's weight chart and the rule charts of its newest stage, as standalone
// SVG files named <rollout>-weight.svg and <rollout>-stage<N>-<rule>-<limit>.svg.
func Charts(p Page) []File {
	var out []File
	for _, r := range p.Rollouts {
		out = append(out, File{Name: fileName(r.Name, "weight"), SVG: chart.Standalone(WeightChart(r))})
		if len(r.Stages) == 0 {
			continue
		}
		st := r.Stages[0]
		for _, s := range st.Rules {
			kind, _, _ := strings.Cut(s.Limit, " ")
			out = append(out, File{Name: fileName(r.Name, "stage"+strconv.Itoa(st.Index), s.Rule, kind), SVG: chart.Standalone(RuleChart(st, s))})
		}
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func fileName(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.Trim(unsafeName.ReplaceAllString(p, "_"), "._")
	}
	return strings.Join(parts, "-") + ".svg"
}

// WeightChart draws a rollout's canary weight over the report's span, each change numbered as in the
// page's table.
func WeightChart(r Rollout) string {
	w := chart.Weight{Title: r.Name + ": canary weight", From: r.From, To: r.To}
	if r.Before != 0 || len(r.Changes) == 0 || r.Changes[0].When.After(r.From) {
		w.Steps = append(w.Steps, chart.Step{At: r.From, Weight: r.Before, Title: "weight at the start of the report"})
	}
	weight := r.Before
	for i, c := range r.Changes {
		if c.Weight != nil {
			weight = *c.Weight
		}
		w.Steps = append(w.Steps, chart.Step{At: c.When, Weight: weight, Label: strconv.Itoa(i + 1), Title: changeTitle(i, c)})
	}
	return chart.WeightSVG(w)
}

// RuleChart draws one limit of one rule over a stage.
func RuleChart(st Stage, s Series) string {
	ylabel := s.Rule
	if s.Relative {
		ylabel = "canary vs stable"
	}
	return chart.BandSVG(chart.Band{
		Title: s.Rule + " (" + s.Limit + ")", YLabel: ylabel, Percent: s.Relative, From: st.From, To: st.To,
		Points: s.Points, Limit: s.LimitValue, LimitLabel: s.Limit, Markers: s.Markers,
	})
}

func changeTitle(i int, c Change) string {
	return fmt.Sprintf("%d. %s %s by %s: %s (%s)", i+1, decisionWords(c.Decision), c.When.UTC().Format(time.RFC3339), who(c), c.Subject, short(c.Commit))
}

func who(c Change) string {
	if c.Actor != "" {
		return c.Actor + " (via " + c.Author + ")"
	}
	return c.Author
}

func decisionWords(d string) string {
	if d == "" {
		return "edit"
	}
	return d
}

func weightWords(c Change) string {
	if c.Weight == nil {
		return "—"
	}
	return strconv.Itoa(*c.Weight) + "%"
}

func lastVerdict(s Series) string {
	if len(s.Points) == 0 {
		return "no data"
	}
	return s.Points[len(s.Points)-1].Verdict
}

func lastInterval(s Series) string {
	if len(s.Points) == 0 {
		return "—"
	}
	p := s.Points[len(s.Points)-1]
	return "[" + chart.FormatValue(p.Low, s.Relative) + ", " + chart.FormatValue(p.High, s.Relative) + "]"
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"weightChart": func(r Rollout) template.HTML { return template.HTML(WeightChart(r)) },
	"ruleChart":   func(st Stage, s Series) template.HTML { return template.HTML(RuleChart(st, s)) },
	"style":       func() template.CSS { return template.CSS(chart.Style + pageStyle) },
	"time":        func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") },
	"short":       short,
	"who":         who,
	"decision":    decisionWords,
	"weight":      weightWords,
	"inc":         func(i int) int { return i + 1 },
	"verdict":     lastVerdict,
	"interval":    lastInterval,
	"duration":    func(d time.Duration) string { return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m") },
	"anchor":      func(name string) string { return "r-" + unsafeName.ReplaceAllString(name, "-") },
	"phaseClass":  func(phase string) string { return unsafeName.ReplaceAllString(phase, "-") },
}).Parse(pageHTML))

const pageStyle = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:24px;margin:8px 0}
h2{font-size:20px;margin:0 0 4px}
h3{font-size:16px;margin:20px 0 8px}
p,li{overflow-wrap:anywhere}
section.rollout{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px;margin:16px 0}
.meta{color:#57606a;font-size:13px}
.phase{display:inline-block;font-size:12px;padding:1px 8px;border-radius:10px;background:#ddf4ff;color:#0550ae;vertical-align:middle}
.phase.RolledBack{background:#ffebe9;color:#a40e26}
.phase.Completed{background:#dafbe1;color:#116329}
.phase.spec-error{background:#fff8c5;color:#9a6700}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));gap:12px}
.charts figure{margin:0;min-width:0}
.charts figcaption{font-size:12px;color:#57606a;overflow-wrap:anywhere}
.weightchart{max-width:640px;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:13px;table-layout:fixed}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eaeef2;vertical-align:top;overflow-wrap:anywhere}
th{font-weight:600;color:#57606a;overflow-wrap:normal}
col.n{width:2.2em}col.when{width:9.5em}col.w{width:5.5em}col.d{width:6.5em}col.c{width:6em}
.notes{color:#9a6700;font-size:13px}
code{font-size:12px}
@media (max-width:600px){main{padding:8px}section.rollout{padding:10px}table{table-layout:auto}colgroup,.hide-narrow{display:none}}
`

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rollout report</title>
<style>{{style}}</style>
</head>
<body>
<main>
<h1>Rollout report</h1>
<p class="meta">{{with .Repository}}{{.}}{{if $.Branch}} on {{$.Branch}}{{end}} · {{end}}from {{time .Since}} to {{time .Now}} · the judge replayed every {{duration .Every}} over each stage's window</p>
{{if .Problems}}<ul class="notes">{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if not .Rollouts}}<p>No rollouts.</p>{{end}}
<nav><ul>{{range .Rollouts}}<li><a href="#{{anchor .Name}}">{{.Name}}</a> <span class="phase {{phaseClass .Phase}}">{{.Phase}}</span> weight {{.Weight}}%</li>{{end}}</ul></nav>
{{range $r := .Rollouts}}
<section class="rollout" id="{{anchor $r.Name}}">
<h2>{{$r.Name}} <span class="phase {{phaseClass $r.Phase}}">{{$r.Phase}}</span></h2>
{{with $r.Description}}<p>{{.}}</p>{{end}}
<p class="meta">stable <code>{{$r.Stable}}</code>{{with $r.Canary}} → canary <code>{{.}}</code>{{end}} · weight now {{$r.Weight}}%</p>
<figure class="weightchart">{{weightChart $r}}</figure>
{{if $r.Changes}}<table class="changes">
<colgroup><col class="n"><col class="when"><col class="w"><col class="d"><col class="c"><col class="who"><col class="why"></colgroup>
<thead><tr><th>#</th><th>when</th><th>weight</th><th>decision</th><th class="hide-narrow">commit</th><th>who</th><th class="hide-narrow">why</th></tr></thead>
<tbody>{{range $i, $c := $r.Changes}}<tr><td>{{inc $i}}</td><td>{{time $c.When}}</td><td>{{weight $c}}</td><td>{{decision $c.Decision}}</td><td class="hide-narrow"><code>{{short $c.Commit}}</code></td><td>{{who $c}}</td><td class="hide-narrow">{{$c.Subject}}</td></tr>{{end}}</tbody>
</table>{{else}}<p class="meta">No weight change in this span.</p>{{end}}
{{range $st := $r.Stages}}
<h3>Stage {{$st.Index}} · weight {{$st.Weight}}%{{if $st.Shadow}}, shadow {{$st.Shadow}}%{{end}} · {{time $st.From}} → {{time $st.To}}{{if $st.Current}} (now){{else if $st.EndedBy}} · ended by {{$st.EndedBy}}{{end}}</h3>
{{if $st.Rules}}<div class="charts">{{range $s := $st.Rules}}<figure>{{ruleChart $st $s}}<figcaption>{{$s.Rule}} against {{$s.Limit}}: {{verdict $s}} at the last tick, interval {{interval $s}}</figcaption></figure>{{end}}</div>
{{else}}<p class="meta">No rules to chart.</p>{{end}}
{{end}}
{{if $r.Notes}}<ul class="notes">{{range $r.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
</section>
{{end}}
<p class="meta">Written by <code>rollout report</code>. Each interval is always-valid: it holds at every tick at once, so reading it at any moment is safe. A dashed red line is the rule's limit; a dotted line marks a commit, labelled with its decision.</p>
</main>
</body>
</html>
`
