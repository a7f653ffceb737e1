package redact

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestURLMasksEveryPiece(t *testing.T) {
	hook := "https://hooks.example.com/services/T0SECRET/B0SECRET/XXhooksecretXX?token=QSECRET%2F1&v=1"
	for _, answer := range []string{
		"invalid_token T0SECRET",                     // one path segment
		"no such hook: /services/T0SECRET/B0SECRET/", // part of the path
		"bad token=QSECRET/1",                        // a query value, decoded
		"bad token QSECRET%2F1",                      // a query value, raw
		"POST " + hook + " failed",                   // the whole URL
		"XXhooksecretXX expired",
	} {
		got := URL(answer, hook)
		for _, secret := range []string{"T0SECRET", "B0SECRET", "XXhooksecretXX", "QSECRET"} {
			if strings.Contains(got, secret) {
				t.Errorf("URL(%q) = %q holds %s", answer, got, secret)
			}
		}
		if !strings.Contains(got, Mask) {
			t.Errorf("URL(%q) = %q masks nothing", answer, got)
		}
	}
	if got := URL("status 401 from v1", "https://example.com/v1/abcdefgh"); got != "status 401 from v1" {
		t.Errorf("a short segment was masked: %q", got)
	}
}

func TestRemoteHidesThePassword(t *testing.T) {
	for raw, want := range map[string]string{
		"x-access-token:SECRET123@github.com:org/repo.git":      "x-access-token:<redacted>@github.com:org/repo.git",
		"https://x-access-token:SECRET123@github.com/org/r.git": "https://x-access-token:<redacted>@github.com/org/r.git",
		"https://github.com/org/r.git?access_token=SECRET123":   "https://github.com/org/r.git?access_token=<redacted>",
		"git@github.com:org/repo.git":                           "git@github.com:org/repo.git",
		"https://github.com/org/repo.git":                       "https://github.com/org/repo.git",
		"/srv/git/org@2024/repo.git":                            "/srv/git/org@2024/repo.git",
	} {
		if got := Remote(raw); got != want {
			t.Errorf("Remote(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestErrorKeepsTheChainAndMasksTheToken(t *testing.T) {
	var s Secrets
	s.Token("x-access-token", "ghs_TOKEN0123456789").Remote("x-access-token:PW0123456789@host:org/r.git")
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:ghs_TOKEN0123456789"))
	inner := &fs.PathError{Op: "open", Path: "ghs_TOKEN0123456789", Err: fs.ErrNotExist}
	err := s.Error(errors.Join(errors.New("server said: Basic "+basic+" PW0123456789"), inner))
	for _, secret := range []string{"ghs_TOKEN0123456789", basic, "PW0123456789"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q holds %q", err, secret)
		}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the chain is lost: %v", err)
	}
	plain := errors.New("nothing secret")
	if s.Error(plain) != plain || s.Error(nil) != nil {
		t.Error("an error without secrets was changed")
	}
}

// TestWordsInAURLAreNotMasked (issue 22 item 8): a secret URL whose path has an ordinary word as a
// segment ("gate") does not mask that word in prose, while the whole URL and its secret-looking
// segments (letters and digits mixed, or long) are masked.
func TestWordsInAURLAreNotMasked(t *testing.T) {
	s := (&Secrets{}).URL("https://hooks.example.com/gate/T0AB12/checks/xoxbsecretvalue?sig=ab12&mode=fast")
	for in, want := range map[string]string{
		"gate closed: checks failed, mode fast":                                                "gate closed: checks failed, mode fast",
		"POST https://hooks.example.com/gate/T0AB12/checks/xoxbsecretvalue?sig=ab12&mode=fast": "POST " + Mask,
		"segment T0AB12 leaked":     "segment " + Mask + " leaked",
		"token xoxbsecretvalue end": "token " + Mask + " end",
		"sig ab12":                  "sig " + Mask,
	} {
		if got := s.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}
