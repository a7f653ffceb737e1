package rollouts

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// minimal is the smallest valid spec; cases append to it.
const minimal = "apiVersion: rollout/v1\nkind: Rollout\nname: t\nstable: {model: m-20260101}\nstages: [{weight: 100}]\n"

func TestParseMinimalAndDefaults(t *testing.T) {
	s, problems := Parse("t.yaml", []byte(minimal+"canary: {model: c-20260202}\n"))
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if s.Analysis.Confidence != DefaultConfidence || s.Analysis.OnInconclusive != "hold" || s.Analysis.OnMetricsError != "hold" ||
		s.Promotion.Via != "pull-request" || s.Rollback.Via != "commit" || time.Duration(s.Rollback.KeepPrevious) != DefaultKeepPrevious ||
		s.Assignment.Salt != "t-c-20260202" {
		t.Errorf("defaults not applied: %+v", s)
	}
}

// Each case is a spec with one mistake and the problem it must produce, at its position.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // "line:col: message" substring
	}{
		{"unknown key suggests", minimal + "stable2: x\n", "6:1: unknown key `stable2`, did you mean `stable`?"},
		{"nested unknown key", minimal + "traffic:\n  weigth: 5\n", "7:3: traffic: unknown key `weigth`, did you mean `weight`?"},
		{"stage unknown key", strings.Replace(minimal, "{weight: 100}", "{weight: 100, minRequest: 5}", 1), "5:24: stages[0]: unknown key `minRequest`, did you mean `minRequests`?"},
		{"no suggestion when far", minimal + "zzzzzzzz: 1\n", "6:1: unknown key `zzzzzzzz`"},
		{"duplicate key", minimal + "name: u\n", "6:1: name: key defined twice"},
		{"apiVersion", strings.Replace(minimal, "rollout/v1", "rollout/v2", 1), "1:13: apiVersion: want rollout/v1"},
		{"kind", strings.Replace(minimal, "kind: Rollout", "kind: rollout", 1), "2:7: kind: want Rollout"},
		{"missing kind", strings.Replace(minimal, "kind: Rollout\n", "", 1), "kind: required"},
		{"name pattern", strings.Replace(minimal, "name: t", "name: My_Rollout", 1), "3:7: name: \"My_Rollout\" may hold only"},
		{"missing stable", strings.Replace(minimal, "stable: {model: m-20260101}\n", "", 1), "stable: required"},
		{"missing model", strings.Replace(minimal, "{model: m-20260101}", "{prompt: v1}", 1), "stable.model: required"},
		{"weight type", minimal + "traffic: {weight: high}\n", "6:19: traffic.weight: want a whole number, got \"high\""},
		{"weight with a percent sign", strings.Replace(minimal, "[{weight: 100}]", "[{weight: 5}, {weight: 100%}]", 1), "5:32: stages[1].weight: write 100 without the %: this field is a whole number of percent"},
		{"weight range", minimal + "traffic: {weight: 101}\n", "6:19: traffic.weight: 101 is not a percent in 0..100"},
		{"shadow range", minimal + "traffic: {shadow: -1}\n", "traffic.shadow: -1 is not a percent"},
		{"no stages", strings.Replace(minimal, "[{weight: 100}]", "[]", 1), "5:1: stages: want at least one stage"},
		{"stages missing", strings.Replace(minimal, "stages: [{weight: 100}]\n", "", 1), "stages: want at least one stage"},
		{"decreasing", strings.Replace(minimal, "[{weight: 100}]", "[{weight: 50}, {weight: 10}]", 1), "5:33: stages[1].weight: 10 is below the previous stage's 50"},
		{"null stage", strings.Replace(minimal, "[{weight: 100}]", "[{weight: 10}, ~]", 1), "5:24: stages[1]: empty stage"},
		{"stage weight range", strings.Replace(minimal, "{weight: 100}", "{weight: 200}", 1), "stages[0].weight: 200 is not a percent"},
		{"duration", strings.Replace(minimal, "{weight: 100}", "{weight: 100, minDuration: 3 days}", 1), "stages[0].minDuration: invalid duration \"3 days\""},
		{"duration days ok, max below min", strings.Replace(minimal, "{weight: 100}", "{weight: 100, minDuration: 2d, maxDuration: 1d12h}", 1), "stages[0].maxDuration: 1d12h is shorter than minDuration 2d"},
		{"ratio", minimal + "analysis: {rules: [{metric: error_rate, maxIncrease: lots}]}\n", "analysis.rules[0].maxIncrease: invalid fraction \"lots\""},
		{"segment name", minimal + "analysis: {segments: [language, \"tenant id\"]}\n", "6:33: analysis.segments[1]: \"tenant id\" is not an attribute name"},
		{"segment twice", minimal + "analysis: {segments: [language, language]}\n", "analysis.segments[1]: \"language\" is listed twice"},
		{"segment by variant", minimal + "analysis: {segments: [variant]}\n", "analysis.segments[0]: \"variant\" is a field every record has"},
		{"segments typo", minimal + "analysis: {segment: [language]}\n", "segments"},
		{"win rate relative", minimal + "analysis: {rules: [{metric: canary_win_rate, maxDecrease: 10%}]}\n", "analysis.rules[0].maxDecrease: canary_win_rate has no stable value to compare with; limit it with min"},
		{"projected cost relative", minimal + "analysis: {rules: [{metric: projected_extra_cost_per_day, maxIncrease: 10%}]}\n", "projected_extra_cost_per_day has no stable value to compare with; limit it with max"},
		{"cron", minimal + "schedule: '61 * * * *'\n", "6:11: schedule: invalid cron expression"},
		{"unknown metric", minimal + "analysis: {rules: [{metric: latency_p96_ms, max: 1}]}\n", "unknown metric \"latency_p96_ms\"; a metric that is not built in needs a query. Did you mean \"latency_p95_ms\"?"},
		{"maxDecrease on error_rate", minimal + "analysis: {rules: [{metric: error_rate, maxDecrease: 5%}]}\n", "analysis.rules[0].maxDecrease: error_rate gets worse as it rises"},
		{"min on latency", minimal + "analysis: {rules: [{metric: latency_p50_ms, min: 10}]}\n", "analysis.rules[0].min: latency_p50_ms gets worse as it rises"},
		{"maxIncrease on quality", minimal + "analysis: {rules: [{metric: quality_score, maxIncrease: 5%}]}\n", "analysis.rules[0].maxIncrease: quality_score gets worse as it falls"},
		{"max on quality", minimal + "analysis: {rules: [{metric: quality_score, max: 0.9}]}\n", "analysis.rules[0].max: quality_score gets worse as it falls"},
		{"proportion max", minimal + "analysis: {rules: [{metric: refusal_rate, max: 5}]}\n", "6:48: analysis.rules[0].max: refusal_rate is a proportion: 5 is above 1, and a bare number here is a fraction (0.5 means 50%): write 5% if you mean 5%"},
		{"proportion max percent", minimal + "analysis: {rules: [{metric: refusal_rate, max: 150%}]}\n", "analysis.rules[0].max: refusal_rate is a proportion; 150% is not in 0%..100%"},
		{"percent on a latency", minimal + "analysis: {rules: [{metric: latency_p95_ms, max: 2%}]}\n", "analysis.rules[0].max: latency_p95_ms is not a proportion; write its limit as a plain number"},
		{"maxIncrease bare above 1", minimal + "analysis: {rules: [{metric: error_rate, maxIncrease: 50}]}\n", "6:54: analysis.rules[0].maxIncrease: 50 is above 1, and a bare number here is a fraction (0.5 means 50%): write 50% if you mean 50%; an increase above 100% takes the percent form too, as in 5000%"},
		{"maxIncrease 2 means", minimal + "analysis: {rules: [{metric: error_rate, maxIncrease: 2}]}\n", "write 2% if you mean 2%; an increase above 100% takes the percent form too, as in 200%"},
		{"maxDecrease bare above 1", minimal + "analysis: {rules: [{metric: quality_score, maxDecrease: 5}]}\n", "analysis.rules[0].maxDecrease: 5 is above 1"},
		{"confidence bare above 1", minimal + "analysis: {confidence: 95}\n", "6:24: analysis.confidence: 95 is above 1, and a bare number here is a fraction (0.5 means 50%): write 95% if you mean 95%"},
		{"advanceConfidence range", minimal + "analysis: {advanceConfidence: 100%}\n", "analysis.advanceConfidence: 100% is not a probability strictly between 0% and 100%"},
		{"advanceConfidence bare above 1", minimal + "analysis: {advanceConfidence: 80}\n", "analysis.advanceConfidence: 80 is above 1"},
		{"confidence bad percent", minimal + "analysis: {confidence: ninety%}\n", "analysis.confidence: invalid percent \"ninety%\""},
		{"NaN confidence", minimal + "analysis: {confidence: .nan}\n", "6:24: analysis.confidence: .nan is not a number (NaN); it would switch the check off"},
		{"NaN advanceConfidence", minimal + "analysis: {advanceConfidence: .NaN}\n", "analysis.advanceConfidence: .NaN is not a number (NaN)"},
		{"NaN max", minimal + "analysis: {rules: [{metric: error_rate, max: .nan}]}\n", "6:46: analysis.rules[0].max: .nan is not a number (NaN)"},
		{"NaN min", minimal + "analysis: {rules: [{metric: quality_score, min: .nan}]}\n", "analysis.rules[0].min: .nan is not a number (NaN)"},
		{"NaN maxIncrease", minimal + "analysis: {rules: [{metric: error_rate, maxIncrease: .nan}]}\n", "analysis.rules[0].maxIncrease: invalid fraction \".nan\""},
		{"NaN percent", minimal + "analysis: {rules: [{metric: error_rate, maxIncrease: NaN%}]}\n", "analysis.rules[0].maxIncrease: invalid percent \"NaN%\""},
		{"NaN minPassRate", strings.Replace(minimal, "{weight: 100}", "{weight: 100, gate: {evals: e.json, minPassRate: .nan}}", 1), "stages[0].gate.minPassRate: .nan is not a number (NaN)"},
		{"Inf max", minimal + "analysis: {rules: [{metric: latency_p95_ms, max: .inf}]}\n", "analysis.rules[0].max: .inf is infinite"},
		{"-Inf min", minimal + "analysis: {rules: [{metric: quality_score, min: -.Inf}]}\n", "analysis.rules[0].min: -.Inf is infinite"},
		{"Inf maxDecrease", minimal + "analysis: {rules: [{metric: quality_score, maxDecrease: .inf}]}\n", "maxDecrease: invalid fraction \".inf\""},
		{"NaN weight", minimal + "traffic: {weight: .nan}\n", "traffic.weight: .nan is not a number (NaN)"},
		{"octal-looking weight", minimal + "traffic: {weight: 012}\n", "6:19: traffic.weight: 012 has a leading zero: YAML 1.1 readers take it for octal, YAML 1.2 readers for decimal; write 12 (or 10, if you meant the octal number)"},
		{"hex weight", minimal + "traffic: {weight: 0x10}\n", "traffic.weight: 0x10: write numbers in decimal, not hexadecimal; write 16"},
		{"binary stage", strings.Replace(minimal, "{weight: 100}", "{weight: 0b101}", 1), "stages[0].weight: 0b101: binary numbers are YAML 1.1 only; write 5"},
		{"octal 0o", strings.Replace(minimal, "{weight: 100}", "{weight: 0o12}", 1), "stages[0].weight: 0o12: write numbers in decimal, not octal; write 10"},
		{"digit separators", strings.Replace(minimal, "{weight: 100}", "{weight: 100, minRequests: 1_000}", 1), "stages[0].minRequests: 1_000: digit separators (_) are YAML 1.1 only; write 1000"},
		{"leading zero float max", minimal + "analysis: {rules: [{metric: latency_p95_ms, max: 0x1F4}]}\n", "analysis.rules[0].max: 0x1F4: write numbers in decimal, not hexadecimal; write 500"},
		{"lone carriage return", strings.Replace(minimal, "name: t\n", "name: t\r", 1), "3:8: line break a carriage return (\\r) without a line feed"},
		{"line separator", minimal + "description: \"a\u2028b\"\n", "6:16: line break U+2028 (line separator)"},
		{"next line", minimal + "# a\u0085b\n", "6:4: line break U+0085 (next line)"},
		{"utf-16", "\xff\xfea\x00:\x00", "1:1: the file is UTF-16 or UTF-32; save it as UTF-8"},
		{"negative mean", minimal + "analysis: {rules: [{metric: cost_per_request, max: -1}]}\n", "cost_per_request is never negative"},
		{"maxDecrease over 100%", minimal + "analysis: {rules: [{metric: quality_score, maxDecrease: 150%}]}\n", "maxDecrease: 150% is not in 0%..100%"},
		{"rule without limit", minimal + "analysis: {rules: [{metric: error_rate}]}\n", "want at least one limit"},
		{"min above max", minimal + "analysis: {rules: [{metric: input_tokens_per_request, min: 10, max: 5}]}\n", "analysis.rules[0].min: 10 is above max 5"},
		{"confidence", minimal + "analysis: {confidence: 1}\n", "analysis.confidence: 1 is not a probability"},
		{"confidence zero", minimal + "analysis: {confidence: 0}\n", "6:24: analysis.confidence: 0 is 0 (or too small to represent)"},
		{"confidence underflow", minimal + "analysis: {confidence: 1e-400}\n", "6:24: analysis.confidence: 1e-400 is 0 (or too small to represent)"},
		{"advanceConfidence zero percent", minimal + "analysis: {advanceConfidence: 0%}\n", "analysis.advanceConfidence: 0% is 0 (or too small to represent)"},
		{"onInconclusive", minimal + "analysis: {onInconclusive: rolback}\n", "analysis.onInconclusive: \"rolback\" is not one of hold, rollback; did you mean \"rollback\"?"},
		{"promotion via", minimal + "promotion: {via: pr}\n", "promotion.via: \"pr\" is not one of"},
		{"gate both", strings.Replace(minimal, "{weight: 100}", "{weight: 100, gate: {evals: e.json, webhook: env:HOOK}}", 1), "stages[0].gate: want exactly one of evals or webhook, got both"},
		{"gate neither", strings.Replace(minimal, "{weight: 100}", "{weight: 100, gate: {noRegressions: true}}", 1), "got neither"},
		{"gate secret url", strings.Replace(minimal, "{weight: 100}", "{weight: 100, gate: {webhook: 'https://user:pw@gate.example.com/x'}}", 1), "stages[0].gate: this URL holds credentials"},
		{"gate bad url", strings.Replace(minimal, "{weight: 100}", "{weight: 100, gate: {webhook: 'not a url'}}", 1), "stages[0].gate.webhook: want an http(s) URL or env:NAME"},
		{"minPassRate", strings.Replace(minimal, "{weight: 100}", "{weight: 100, gate: {evals: e.json, minPassRate: 95}}", 1), "5:59: stages[0].gate.minPassRate: 95 is above 1, and a bare number here is a fraction (0.5 means 50%): write 95% if you mean 95%"},
		{"minPassRate percent", strings.Replace(minimal, "{weight: 100}", "{weight: 100, gate: {evals: e.json, minPassRate: 101%}}", 1), "stages[0].gate.minPassRate: 101% is not in 0%..100%"},
		{"notify literal", minimal + "rollback: {notify: [{slack: 'https://hooks.slack.com/services/T/B/C'}]}\n", "rollback.notify[0].slack: is a literal URL"},
		{"notify bare name", minimal + "rollback: {notify: [{webhook: HOOK}]}\n", "rollback.notify[0].webhook: must be an env:NAME reference"},
		{"notify both", minimal + "rollback: {notify: [{webhook: env:A, slack: env:B}]}\n", "got both"},
		{"glob", minimal + "assignment: {exclude: ['[a-']}\n", "assignment.exclude[0]: \"[a-\" is not a valid glob pattern"},
		{"metrics source", minimal + "metrics: {source: traffic.jsonl}\n", "metrics.source: \"traffic.jsonl\" has no scheme"},
		{"status phase", minimal + "status: {phase: Done, stage: 0}\n", "status.phase: \"Done\" is not one of"},
		{"status stage", minimal + "status: {phase: Progressing, stage: 3}\n", "status.stage: 3 is not a stage index (0..0)"},
		{"status time", minimal + "status: {phase: Progressing, stage: 0, stageStartedAt: yesterday}\n", "status.stageStartedAt: want a time"},
		{"list expected", minimal + "promotion: {reviewers: ml}\n", "promotion.reviewers: want a list, got \"ml\""},
		{"mapping expected", minimal + "traffic: 5\n", "6:10: traffic: want a mapping, got \"5\""},
		{"bool", minimal + "analysis: {accelerate: yes}\n", "analysis.accelerate: want true or false"},
		{"syntax", minimal + "traffic:\n  weight: 5\n   shadow: 1\n", "8:1: invalid YAML"},
		{"unclosed flow mapping", minimal + "traffic: {weight: 5\n", "6:1: invalid YAML: did not find expected ',' or '}'"},
		{"unclosed flow sequence", minimal + "promotion:\n  labels: [a, b\n", "7:1: invalid YAML: did not find expected ',' or ']'"},
		{"block mapping without key", minimal + "traffic:\n  weight: 5\n  - x\n", "7:1: invalid YAML: did not find expected key"},
		{"two documents", minimal + "---\n" + minimal, "7:1: invalid YAML: a file holds one rollout"},
		{"empty", "", "1:1: empty file"},
		{"comment only", "# nothing\n", "1:1: empty file"},
		{"not a mapping", "- a\n- b\n", "1:1: spec: want a mapping of apiVersion, kind, name, …, got a list"},
		{"explicit key", minimal + "? traffic\n: {weight: 5}\n", "6:3: explicit mapping key (?): write \"traffic\": VALUE on one line instead"},
		{"explicit key in flow", minimal + "traffic: {? weight : 5}\n", "6:13: explicit mapping key (?)"},
		{"alias", minimal + "description: &d text\nx: *d\n", "6:14: YAML anchors and aliases are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, problems := Parse("t.yaml", []byte(tt.src))
			if s != nil {
				t.Errorf("Parse returned a spec despite problems")
			}
			var all []string
			for _, p := range problems {
				if p.File != "t.yaml" || p.Line < 1 || p.Col < 1 {
					t.Errorf("bad position: %+v", p)
				}
				all = append(all, p.Error())
				if strings.Contains(p.Error(), "t.yaml:"+tt.want) || strings.Contains(p.Message, tt.want) {
					return
				}
			}
			t.Errorf("want a problem %q, got:\n%s", tt.want, strings.Join(all, "\n"))
		})
	}
}

// One unit rule for every ratio field: 50% and 0.5 mean the same everywhere; a percent above 100% is a
// legitimate maxIncrease; plain numbers stay plain on metrics that are not proportions; +5 is 5 to every
// YAML reader.
func TestParseRatioFieldsTakeBothForms(t *testing.T) {
	for _, form := range []struct{ half, ninety, twoPct string }{{"50%", "90%", "2%"}, {"0.5", "0.9", "0.02"}, {"'50%'", "\"90 %\"", "0.020"}} {
		src := strings.Replace(minimal, "{weight: 100}", "{weight: +100, gate: {evals: e.json, minPassRate: "+form.ninety+"}}", 1) +
			"analysis:\n  confidence: " + form.ninety + "\n  advanceConfidence: " + form.half + "\n  rules:\n" +
			"    - {metric: error_rate, max: " + form.twoPct + ", maxIncrease: " + form.half + "}\n" +
			"    - {metric: quality_score, min: 0.5, maxDecrease: " + form.half + "}\n" +
			"    - {metric: refusal_rate, maxIncrease: 200%}\n" +
			"    - {metric: latency_p95_ms, max: 2000, maxIncrease: 1}\n"
		s, problems := Parse("t.yaml", []byte(src))
		if len(problems) > 0 {
			t.Fatalf("%s: %v", form.half, problems)
		}
		a, r := s.Analysis, s.Analysis.Rules
		if a.Confidence != 0.9 || a.AdvanceConfidence != 0.5 || s.Stages[0].Gate.MinPassRate != 0.9 || s.Stages[0].Weight != 100 ||
			*r[0].Max != 0.02 || *r[0].MaxIncrease != 0.5 || *r[1].Min != 0.5 || *r[1].MaxDecrease != 0.5 || *r[2].MaxIncrease != 2 ||
			*r[3].Max != 2000 || *r[3].MaxIncrease != 1 {
			t.Errorf("%s: got %+v %+v %+v %+v %+v", form.half, a, *r[0].Max, *r[0].MaxIncrease, *r[1].Min, *r[2].MaxIncrease)
		}
	}
}

// A file with several mistakes reports all of them, in position order.
func TestParseReportsEveryProblem(t *testing.T) {
	src := "apiVersion: rollout/v1\nkind: Rollout\nname: Bad_Name\nstable: {model: m}\ntraffic: {weight: 500, shadw: 1}\nstages: [{weight: 10}, {weight: 5}]\n"
	_, problems := Parse("t.yaml", []byte(src))
	if len(problems) != 4 {
		t.Fatalf("got %d problems, want 4: %v", len(problems), problems)
	}
	for i := 1; i < len(problems); i++ {
		a, b := problems[i-1], problems[i]
		if a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("problems out of order: %v before %v", a, b)
		}
	}
}

func TestParseRefusesHugeFiles(t *testing.T) {
	src := []byte(minimal + "description: " + strings.Repeat("x", MaxFileSize) + "\n")
	_, problems := Parse("big.yaml", src)
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "at most 1048576") {
		t.Fatalf("problems = %v", problems)
	}
	set := LoadPaths(fstest.MapFS{"r/big.yaml": {Data: src}, "r/ok.yaml": {Data: []byte(minimal)}}, []string{"r"})
	if len(set.Documents) != 1 || len(set.Errors()) != 1 {
		t.Fatalf("set = %+v", set)
	}
}

// A billion-laughs document is refused at once, without expanding it.
func TestParseRefusesAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	_, problems := Parse("bomb.yaml", []byte(b.String()))
	if len(problems) == 0 || !strings.Contains(problems[0].Message, "aliases are not allowed") {
		t.Fatalf("problems = %v", problems)
	}
}

func TestLoadKeepsGoodFilesAndReportsBadOnes(t *testing.T) {
	fsys := fstest.MapFS{
		"rollouts/a.yaml":      {Data: []byte(strings.Replace(minimal, "name: t", "name: a", 1))},
		"rollouts/b.yml":       {Data: []byte("name: [\n")},
		"rollouts/c.yaml":      {Data: []byte(strings.Replace(minimal, "name: t", "name: c", 1) + "bogus: 1\n")},
		"rollouts/d.yaml":      {Data: []byte(strings.Replace(minimal, "name: t", "name: d", 1))},
		"rollouts/README.md":   {Data: []byte("not a spec")},
		"rollouts/sub/e.yaml":  {Data: []byte("ignored: true")},
		"rollouts/dup-a.yaml":  {Data: []byte(strings.Replace(minimal, "name: t", "name: same", 1))},
		"rollouts/dup-b.yaml":  {Data: []byte(strings.Replace(minimal, "name: t", "name: same", 1))},
		"elsewhere/other.yaml": {Data: []byte(minimal)},
	}
	set, err := Load(fsys, "rollouts")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range set.Documents {
		names = append(names, d.Spec.Name)
	}
	if got := strings.Join(names, ","); got != "a,d" {
		t.Errorf("documents = %s, want a,d", got)
	}
	files := map[string]bool{}
	for _, p := range set.Errors() {
		files[p.File] = true
	}
	for _, f := range []string{"rollouts/b.yml", "rollouts/c.yaml", "rollouts/dup-a.yaml", "rollouts/dup-b.yaml"} {
		if !files[f] {
			t.Errorf("no problem reported for %s: %v", f, set.Problems)
		}
	}
	if d := set.Lookup("d"); d == nil || d.Path != "rollouts/d.yaml" || string(d.Source) != strings.Replace(minimal, "name: t", "name: d", 1) {
		t.Errorf("Lookup(d) = %+v", d)
	}
	if _, err := Load(fsys, "missing"); err == nil {
		t.Error("Load of a missing folder succeeded")
	}
}

func TestLoadPathsMixesFilesAndFolders(t *testing.T) {
	fsys := fstest.MapFS{
		"a/x.yaml": {Data: []byte(strings.Replace(minimal, "name: t", "name: x", 1))},
		"b.yaml":   {Data: []byte(strings.Replace(minimal, "name: t", "name: x", 1))},
	}
	set := LoadPaths(fsys, []string{"a", "b.yaml", "nope.yaml"})
	if len(set.Documents) != 0 || len(set.Errors()) != 3 {
		t.Errorf("set = %+v", set)
	}
}

func TestClosest(t *testing.T) {
	known := []string{"minDuration", "minRequests", "maxDuration", "weight", "shadow", "gate"}
	for in, want := range map[string]string{"minRequest": "minRequests", "mindurations": "minDuration", "wieght": "weight", "MAXDURATION": "maxDuration", "banana": "", "gat": "gate"} {
		if got := closest(in, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRefusesCustomTags(t *testing.T) {
	_, problems := Parse("t.yaml", []byte(minimal+"description: !secret abc\n"))
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "t.yaml:6:14: YAML tag \"!secret\" is not allowed") {
		t.Fatalf("problems = %v", problems)
	}
	if _, problems := Parse("t.yaml", []byte(minimal+"description: !!str 5\n")); len(problems) != 0 {
		t.Fatalf("standard tag refused: %v", problems)
	}
}
