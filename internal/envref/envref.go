// Package envref is the one place where an env:NAME reference that a spec names for a metrics source,
// a gate or a notification target resolves, against the operator's allow-list.
//
// A spec is written by whoever can open a pull request, and it chooses both the host a metrics source
// connects to and the variable sent there as a password. So a reference resolves only a name the
// operator allowed: one that begins with AllowedPrefix (ROLLOUT_), or one listed in the environment
// variable AllowVar (ROLLOUT_ALLOW_ENV, comma-separated) or by the --allow-env flag. Some names never
// resolve, even if listed: the runner's and GitHub's own (GITHUB_*, GH_*, ACTIONS_*, RUNNER_*), a
// private key (*PRIVATE_KEY*), and a notifier's variable (*SLACK*, *WEBHOOK*, and any name a
// notification target references), since a notification URL is itself the secret that lets anyone post
// to the channel. A gate's webhook resolves like a source but may be named *WEBHOOK* (its value is the
// gate's own URL): see Policy.CheckGate.
//
// A notification target resolves through the same allow-list (ROLLOUT_*, or listed; never the runner's
// own names), and may be named *SLACK* or *WEBHOOK*: see Policy.CheckNotify. Otherwise a pull request
// could point a rollback notification at any variable of the runner and have its value posted to.
package envref

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// AllowedPrefix begins every name a spec may reference without a listing.
const AllowedPrefix = "ROLLOUT_"

// AllowVar is the environment variable that lists more names a spec may reference, comma-separated.
const AllowVar = "ROLLOUT_ALLOW_ENV"

// Prefix marks a reference to an environment variable in a spec.
const Prefix = "env:"

// ErrNotAllowed marks a reference to a name the operator did not allow; ErrNeverAllowed one to a name
// that never resolves. Their messages name the variable, never its value.
var (
	ErrNotAllowed   = errors.New("not allowed")
	ErrNeverAllowed = errors.New("never resolved from a spec")
)

// neverPrefixes are names that never resolve: GitHub's and the runner's, whatever the allow-list says.
var neverPrefixes = []string{"GITHUB_", "GH_", "ACTIONS_", "RUNNER_"}

// Policy is the operator's allow-list. The zero value allows only the ROLLOUT_ prefix.
type Policy struct {
	listed map[string]bool
}

// New returns the policy of the environment getenv reads (AllowVar) and the names given on the command
// line (each may hold several, comma-separated).
func New(getenv func(string) string, flagNames []string) Policy {
	p := Policy{listed: map[string]bool{}}
	lists := append([]string{}, flagNames...)
	if getenv != nil {
		lists = append(lists, getenv(AllowVar))
	}
	for _, l := range lists {
		for _, n := range strings.Split(l, ",") {
			if n = strings.TrimSpace(n); n != "" {
				p.listed[n] = true
			}
		}
	}
	return p
}

// Listed returns the names listed explicitly, sorted.
func (p Policy) Listed() []string {
	out := make([]string, 0, len(p.listed))
	for n := range p.listed {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// never reports why name never resolves, for any reference ("" when the allow-list decides).
func never(name string) string {
	for _, pre := range neverPrefixes {
		if strings.HasPrefix(name, pre) {
			return pre + "* is the runner's or GitHub's own"
		}
	}
	if strings.Contains(name, "PRIVATE_KEY") {
		return "a private key"
	}
	return ""
}

// Check returns nil when a metrics source may reference name: allowed by the operator and not one
// of the names that never resolve. notifierNames are the names the notification targets reference.
// Its error wraps ErrNotAllowed or ErrNeverAllowed and says how to allow the name.
func (p Policy) Check(name string, notifierNames []string) error {
	if strings.Contains(name, "SLACK") || strings.Contains(name, "WEBHOOK") {
		if why := never(name); why != "" {
			return fmt.Errorf("env:%s is %w (%s)", name, ErrNeverAllowed, why)
		}
		return fmt.Errorf("env:%s is %w (a notifier's variable)", name, ErrNeverAllowed)
	}
	return p.CheckGate(name, notifierNames)
}

// CheckGate is Check for a gate's webhook, whose value is the URL the gate posts to (so a name such as
// ROLLOUT_GATE_WEBHOOK is fine): allowed by the operator, not one of the runner's own names, not a
// name a notification target references.
func (p Policy) CheckGate(name string, notifierNames []string) error {
	if why := never(name); why != "" {
		return fmt.Errorf("env:%s is %w (%s)", name, ErrNeverAllowed, why)
	}
	for _, n := range notifierNames {
		if n == name {
			return fmt.Errorf("env:%s is %w (a notification target references it)", name, ErrNeverAllowed)
		}
	}
	return p.allowed(name)
}

// Getenv returns getenv restricted to the names Check allows: any other name reads as unset. Sources
// and gates get this function, so that no other path reads the environment for a spec.
func (p Policy) Getenv(getenv func(string) string, notifierNames []string) func(string) string {
	return func(name string) string {
		if getenv == nil || p.Check(name, notifierNames) != nil {
			return ""
		}
		return getenv(name)
	}
}

// GateGetenv returns getenv restricted to the names CheckGate allows.
func (p Policy) GateGetenv(getenv func(string) string, notifierNames []string) func(string) string {
	return func(name string) string {
		if getenv == nil || p.CheckGate(name, notifierNames) != nil {
			return ""
		}
		return getenv(name)
	}
}

// CheckNotify returns nil when a notification target may reference name: allowed by the operator
// (ROLLOUT_*, or listed), and not one of the names that never resolve (GitHub's, the runner's, a
// private key), even if listed. Its error wraps ErrNotAllowed or ErrNeverAllowed, naming the variable.
func (p Policy) CheckNotify(name string) error {
	if why := never(name); why != "" {
		return fmt.Errorf("env:%s is %w (%s)", name, ErrNeverAllowed, why)
	}
	return p.allowed(name)
}

// allowed returns nil for a name that begins with AllowedPrefix or is listed, else ErrNotAllowed.
func (p Policy) allowed(name string) error {
	if strings.HasPrefix(name, AllowedPrefix) || p.listed[name] {
		return nil
	}
	return fmt.Errorf("env:%s is %w: a spec may reference only %s* names and those the operator lists in %s or with --allow-env", name, ErrNotAllowed, AllowedPrefix, AllowVar)
}

// NotifyGetenv returns getenv restricted to the names CheckNotify allows: any other name reads as
// unset.
func (p Policy) NotifyGetenv(getenv func(string) string) func(string) string {
	return func(name string) string {
		if getenv == nil || p.CheckNotify(name) != nil {
			return ""
		}
		return getenv(name)
	}
}

// refPattern finds env:NAME anywhere in a string: user info, a password parameter, any other parameter.
var refPattern = regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`)

// Refs returns the names of every env: reference in s, in order, each once. A URL's escapes are
// undone first, so env%3ANAME counts too.
func Refs(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, text := range []string{s, unescape(s)} {
		for _, m := range refPattern.FindAllStringSubmatch(text, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				out = append(out, m[1])
			}
		}
	}
	return out
}

// unescape undoes %XX escapes, leaving a malformed one as it is.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
