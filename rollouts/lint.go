package rollouts

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// pinnedModelRE matches a model id that ends in a date or a version: claude-sonnet-4-5-20260415,
// gpt-4o-2024-08-06, gpt-4-0613, llama-3.1-70b@v2, mistral-large-2411.
var pinnedModelRE = regexp.MustCompile(`[-_@:.](\d{8}|\d{4}-\d{2}-\d{2}|\d{4}|v\d+(\.\d+)*)$`)

// promptExtRE matches a prompt that names a file by its extension.
var promptExtRE = regexp.MustCompile(`\.(md|txt|j2|jinja|jinja2|tmpl|tpl|prompt|yaml|yml|json)$`)

// Lint returns the warnings about the valid rollouts of set: habits that are legal but risky. repo is
// the repository's tree, in which prompt paths and eval files are looked up; nil skips those checks.
// Lint does not change set; callers append its problems to set.Problems when they want them together.
//
// The warnings: a model id without a pinned date or version (an alias moves under you); a canary that
// changes model and prompt at once (a regression could not be blamed on either); the same salt in two
// rollouts (their canaries would reach the same users); a prompt path that escapes the repository or
// does not exist in it; an eval file that does not exist (its gate would stay shut); a last stage
// below 100% (promotion would jump to everyone untested); a rule's query that the source cannot run,
// or that returns a bare value the judge only shows (a prometheus: query: advisory, never acted on); a
// bare 1 as a rule's maxIncrease or maxDecrease (100%, most often written for one percent); a
// prometheus: source, which counts requests only, under an assignment by key without
// assignment.unit: request (no stage would advance); a prometheus: source with a literal password.
func Lint(set *Set, repo fs.FS) []Problem {
	var out []Problem
	salts := map[string]string{}
	for _, d := range set.Documents {
		l := linter{doc: d}
		l.root, _ = parseNode(d.Source)
		s := d.Spec
		for _, arm := range []struct {
			key string
			v   *Variant
		}{{"stable", &s.Stable}, {"canary", s.Canary}} {
			if arm.v == nil {
				continue
			}
			if !pinnedModelRE.MatchString(arm.v.Model) {
				l.warn(arm.key+".model", "%s.model: %q is not pinned to a date or version (e.g. %s-20260415); an alias can change under a running rollout", arm.key, arm.v.Model, arm.v.Model)
			}
			l.checkPath(repo, arm.key+".prompt", arm.v.Prompt, promptExtRE.MatchString(arm.v.Prompt) || strings.Contains(arm.v.Prompt, "/"))
		}
		for _, c := range []struct {
			key string
			v   float64
		}{{"confidence", s.Analysis.Confidence}, {"advanceConfidence", s.Analysis.AdvanceConfidence}} {
			if c.v > 0 && c.v < 0.5 {
				l.warn("analysis."+c.key, "analysis.%s: %g is below 50%%: the evidence it asks for is weaker than a coin flip (did you mean %g?)", c.key, c.v, 1-c.v)
			}
		}
		if c := s.Canary; c != nil && c.Model != s.Stable.Model && c.Prompt != s.Stable.Prompt {
			l.warn("canary", "canary: changes both model and prompt; change one at a time, so a regression can be blamed on one of them")
		}
		if salt := s.Assignment.Salt; salt != "" {
			if other, ok := salts[salt]; ok {
				p := "assignment.salt"
				if l.node(p) == nil {
					p = "name"
				}
				l.warn(p, "assignment.salt: %q is also the salt of %s; the two canaries would reach the same users", salt, other)
			} else {
				salts[salt] = d.Path
			}
		}
		if n := len(s.Stages); s.Canary != nil && n > 0 && s.Stages[n-1].Weight < 100 {
			l.warn(fmt.Sprintf("stages[%d]", n-1), "stages[%d]: the last stage holds %d%%; promotion will jump from there to 100%% untested", n-1, s.Stages[n-1].Weight)
		}
		if strings.HasPrefix(s.Metrics.Source, "file:") {
			for i, r := range s.Analysis.Rules {
				if r.Query != "" {
					l.warn(fmt.Sprintf("analysis.rules[%d].query", i), "analysis.rules[%d]: the file: source cannot run a query; %s has no data and holds every stage", i, r.Metric)
				}
			}
		}
		if strings.HasPrefix(s.Metrics.Source, "prometheus:") && s.Assignment.Key != "" && s.Assignment.Unit != UnitRequest {
			l.warn("metrics.source", "metrics.source: a prometheus: source counts requests, not %s keys, so a stage never advances on its evidence while the assignment randomises keys (one user's requests would pass for independent ones); set assignment.unit: request if requests are independent, or use a source that records the key", s.Assignment.Key)
		}
		if strings.HasPrefix(s.Metrics.Source, "prometheus:") && LiteralPassword(s.Metrics.Source) {
			l.warn("metrics.source", "metrics.source: holds a literal password, which git keeps for anyone who can read the repository; write user:env:NAME@host (a ROLLOUT_* variable set where rollout runs) instead")
		}
		if strings.HasPrefix(s.Metrics.Source, "prometheus:") {
			// A PromQL query gives one bare value per arm, with no sample behind it: the judge shows it
			// and never acts on it. SQL sources' queries return counts (n, sum, sumsq), which are judged.
			for i, r := range s.Analysis.Rules {
				if r.Query != "" {
					l.warn(fmt.Sprintf("analysis.rules[%d].query", i), "analysis.rules[%d]: a prometheus: query returns one value per arm, so %s is advisory: shown in the evidence, never a cause to roll back or hold; use a built-in metric, or a SQL source whose query returns n, sum and sumsq, to have it judged", i, r.Metric)
				}
			}
		}
		for i := range s.Analysis.Rules {
			for _, key := range []string{"maxIncrease", "maxDecrease"} {
				p := fmt.Sprintf("analysis.rules[%d].%s", i, key)
				if n := l.node(p); n != nil && n.Kind == yaml.ScalarNode && bareOneRE.MatchString(n.Value) {
					l.warn(p, "analysis.rules[%d].%s: %s is a fraction, so it means 100%%; write 100%% to say so, or 1%% if you mean one percent", i, key, n.Value)
				}
			}
		}
		for i, st := range s.Stages {
			if st.Gate != nil && st.Gate.Evals != "" {
				l.checkPath(repo, fmt.Sprintf("stages[%d].gate.evals", i), st.Gate.Evals, true)
			}
		}
		out = append(out, l.problems...)
	}
	out = append(out, namespaceLints(set)...)
	sortProblems(out)
	return out
}

// bareOneRE matches a ratio written as the bare number 1 (1, 1.0, 1.00).
var bareOneRE = regexp.MustCompile(`^1(\.0*)?$`)

// linter finds positions for warnings about one document.
type linter struct {
	doc      *Document
	root     *yaml.Node
	problems []Problem
}

// node returns the value node at a dotted path such as "stages[1].gate.evals", or nil.
func (l *linter) node(p string) *yaml.Node {
	n := l.root
	for _, part := range strings.Split(p, ".") {
		if n == nil {
			return nil
		}
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 {
			key = part[:i]
			fmt.Sscanf(part[i:], "[%d]", &idx)
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		_, n, _ = mapEntry(n, key)
		if idx >= 0 {
			if n == nil || n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return nil
			}
			n = n.Content[idx]
		}
	}
	return n
}

func (l *linter) warn(p, format string, args ...any) {
	line, col := 1, 1
	if n := l.node(p); n != nil {
		line, col = n.Line, n.Column
	}
	l.problems = append(l.problems, Problem{File: l.doc.Path, Line: line, Col: col, Message: fmt.Sprintf(format, args...), Warning: true})
}

// checkPath warns when a repository path escapes the repository or, with repo set, does not exist or
// is not a regular file.
func (l *linter) checkPath(repo fs.FS, key, p string, isPath bool) {
	if p == "" || !isPath {
		return
	}
	clean := path.Clean(p)
	if path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") {
		l.warn(key, "%s: %q escapes the repository; paths are relative to its root", key, p)
		return
	}
	if repo == nil {
		return
	}
	info, err := fs.Stat(repo, clean)
	if err != nil {
		l.warn(key, "%s: %q does not exist in the repository", key, p)
		return
	}
	if !info.Mode().IsRegular() {
		// A named pipe or a device would block or never end the pass that reads it; it is refused then.
		l.warn(key, "%s: %q is not a regular file (%s); rollout reads only regular files", key, p, fileKind(info.Mode()))
	}
}

// fileKind names a file mode's type for a person.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "type " + m.Type().String()
	}
}
