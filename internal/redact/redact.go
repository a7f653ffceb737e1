// Package redact removes secrets from text that leaves the process: errors, logs, pull request bodies
// and comments, `-o json` output, webhook answers. It is the one place that knows what the secret
// pieces of a URL or of a git remote address are, so every boundary redacts the same way:
//
//   - a URL that is itself a secret (a Slack incoming webhook, a gate hook with a token in its path or
//     query): the whole URL, its user info, its path and each path segment, its query and each query
//     value, raw and decoded;
//   - a git remote address: the password of its user info, with or without a scheme
//     (https://x-access-token:TOKEN@host/org/repo.git, x-access-token:TOKEN@host:org/repo.git), and
//     each query value;
//   - a token: itself, and the basic-auth header value it travels in.
//
// Pieces shorter than MinPiece are left alone: they are words ("v1", "api"), not secrets, and
// masking them would garble every message. A piece of a URL (a path segment, a query value) is
// masked on its own only when it looks like a secret (MinSegment characters or more, or letters and
// digits mixed: "T0ABC123", "XXXXXXXXXXXXXXXXXXXXXXXX"): a Slack hook's segments are all like that,
// while a segment that is an ordinary word ("gate", "hooks", "services") also appears in prose
// ("gate closed") and masking it would garble messages without hiding anything. The whole URL, its
// path and its query are always masked.
//
// It is a leaf helper of internal: it imports nothing of rollout's rooms.
package redact

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// Mask replaces each secret piece.
const Mask = "<redacted>"

// MinSegment is the length from which a URL's path segment or query value is masked on its own even
// when it is one word; a shorter one is masked only when it mixes letters and digits.
const MinSegment = 8

// MinPiece is the length below which a piece of a URL is not treated as a secret.
const MinPiece = 4

// Secrets is a set of secret strings to remove from text. The zero value removes nothing.
type Secrets struct {
	pieces []string
}

// Add adds secret pieces; empty and short ones are ignored. It returns s, for chaining.
func (s *Secrets) Add(pieces ...string) *Secrets {
	for _, p := range pieces {
		if len(p) >= MinPiece && !containsString(s.pieces, p) {
			s.pieces = append(s.pieces, p)
		}
	}
	// Longest first, so that a piece inside another (a segment inside the path) does not leave the
	// rest of the longer one behind.
	sort.SliceStable(s.pieces, func(i, j int) bool { return len(s.pieces[i]) > len(s.pieces[j]) })
	return s
}

// Token adds a token: itself, and the basic-auth header values that carry it (as user or password).
func (s *Secrets) Token(user, token string) *Secrets {
	if len(token) < MinPiece {
		return s
	}
	s.Add(token)
	for _, pair := range []string{user + ":" + token, "x-access-token:" + token, token + ":x-oauth-basic", token + ":"} {
		s.Add(base64.StdEncoding.EncodeToString([]byte(pair)))
	}
	return s
}

// URL adds the secret pieces of a URL that is a secret as a whole (see the package comment).
func (s *Secrets) URL(raw string) *Secrets {
	s.Add(raw)
	u, err := url.Parse(raw)
	if err != nil {
		// Not a URL: every piece between separators is a candidate.
		s.addSegments(strings.FieldsFunc(raw, func(r rune) bool { return strings.ContainsRune("/?&=:@#", r) })...)
		return s
	}
	if u.User != nil {
		s.Add(u.User.String(), u.User.Username())
		if pw, ok := u.User.Password(); ok {
			s.Add(pw, url.QueryEscape(pw))
		}
	}
	if u.Host != "" {
		s.Add(strings.TrimPrefix(raw, u.Scheme+"://"))
	}
	s.Add(u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery, u.Fragment)
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		s.addSegments(seg)
		if dec, err := url.PathUnescape(seg); err == nil {
			s.addSegments(dec)
		}
	}
	s.query(u.RawQuery)
	return s
}

// Remote adds the secret pieces of a git remote address: the password of its user info and each
// query value. Its host and path are not secret.
func (s *Secrets) Remote(raw string) *Secrets {
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return s
		}
		if u.User != nil {
			if pw, ok := u.User.Password(); ok {
				s.Token(u.User.Username(), pw)
				s.Add(url.QueryEscape(pw), url.PathEscape(pw))
			}
		}
		s.query(u.RawQuery)
		return s
	}
	if user, pw, ok := scpPassword(raw); ok {
		s.Token(user, pw)
	}
	return s
}

func (s *Secrets) query(raw string) {
	for _, kv := range strings.Split(raw, "&") {
		_, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		s.addSegments(v)
		if dec, err := url.QueryUnescape(v); err == nil {
			s.addSegments(dec)
		}
	}
}

// String returns text with every secret piece replaced by Mask.
func (s *Secrets) String(text string) string {
	if s == nil {
		return text
	}
	for _, p := range s.pieces {
		text = strings.ReplaceAll(text, p, Mask)
	}
	return text
}

// Error returns err with every secret piece masked in its message; errors.Is and errors.As still see
// the errors it wraps. It returns err itself when the message holds no secret, and nil for nil.
func (s *Secrets) Error(err error) error {
	if err == nil || s == nil {
		return err
	}
	msg := err.Error()
	if clean := s.String(msg); clean != msg {
		return &redacted{msg: clean, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// URL returns text with the secret pieces of rawURL masked.
func URL(text, rawURL string) string { return new(Secrets).URL(rawURL).String(text) }

// Remote returns a git remote address fit to print: the password of its user info replaced by Mask,
// with or without a scheme, and its query values masked.
func Remote(raw string) string {
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return new(Secrets).Remote(raw).String(raw)
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "REDACTED")
			}
		}
		return strings.Replace(new(Secrets).Remote(raw).String(u.String()), "REDACTED", Mask, 1)
	}
	if user, pw, ok := scpPassword(raw); ok {
		return strings.Replace(raw, user+":"+pw+"@", user+":"+Mask+"@", 1)
	}
	return raw
}

// scpPassword finds the password in a scheme-less remote user:password@host:path.
func scpPassword(raw string) (user, pw string, ok bool) {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return "", "", false
	}
	// The host part must follow the user info: user:pw@host:path, where the path holds no '@'.
	info := raw[:at]
	if strings.Contains(info, "/") {
		return "", "", false
	}
	user, pw, ok = strings.Cut(info, ":")
	return user, pw, ok && pw != ""
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// addSegments adds the pieces of a URL that look like secrets on their own (see the package comment).
func (s *Secrets) addSegments(pieces ...string) {
	for _, p := range pieces {
		if secretLike(p) {
			s.Add(p)
		}
	}
}

// secretLike reports whether a piece of a URL looks like a secret: long, or letters and digits mixed.
func secretLike(p string) bool {
	if len(p) >= MinSegment {
		return true
	}
	letters := strings.IndexFunc(p, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0
	digits := strings.IndexFunc(p, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0
	return letters && digits
}
