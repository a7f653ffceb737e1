// Package urlpass reads the password of a metrics source's URL (postgres://, clickhouse://), which a
// spec may give only as a reference to an environment variable: password=env:NAME as a parameter, or
// user:env:NAME@host. A literal password is refused, so that none is ever committed in a spec.
//
// It belongs to the policy room and serves the SQL sources (postgres, clickhouse), and a Prometheus
// source whose basic-auth password names a variable (prom).
package urlpass

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// envPrefix marks a password given as a reference to an environment variable.
const envPrefix = "env:"

// Errors of Take, for errors.Is. Their messages never hold a password.
var (
	// ErrLiteral marks a password written in the URL itself.
	ErrLiteral = errors.New("a literal password; use password=env:VAR")
	// ErrUnset marks a reference to an environment variable that is empty or unset.
	ErrUnset = errors.New("not set")
)

// Take removes the password from u, from its user info and its password parameter (the parameter wins
// when both are there), and returns the value of the environment variable it names, read with getenv.
// It returns "" when u has no password.
func Take(u *url.URL, getenv func(string) string) (string, error) {
	var ref string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			ref = p
			u.User = url.User(u.User.Username())
		}
	}
	q := u.Query()
	if p := q.Get("password"); p != "" || q.Has("password") {
		ref = p
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	if ref == "" {
		return "", nil
	}
	name, ok := strings.CutPrefix(ref, envPrefix)
	if !ok {
		return "", ErrLiteral
	}
	if name == "" || getenv == nil || getenv(name) == "" {
		return "", fmt.Errorf("environment variable %q is %w", name, ErrUnset)
	}
	return getenv(name), nil
}
