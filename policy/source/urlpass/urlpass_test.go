package urlpass

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestTake(t *testing.T) {
	env := map[string]string{"PGPASS": "s3cret", "CHPASS": "other"}
	getenv := func(name string) string { return env[name] }
	for _, c := range []struct {
		url, want, rest string
		err             error
	}{
		{"postgres://ro@db:5432/app", "", "postgres://ro@db:5432/app", nil},
		{"postgres://ro@db/app?password=env:PGPASS&sslmode=require", "s3cret", "postgres://ro@db/app?sslmode=require", nil},
		{"clickhouse://ro:env:CHPASS@ch:8123/default", "other", "clickhouse://ro@ch:8123/default", nil},
		{"clickhouse://ro:env:CHPASS@ch/default?password=env:PGPASS", "s3cret", "clickhouse://ro@ch/default", nil},
		{"postgres://ro:hunter2@db/app", "", "", ErrLiteral},
		{"postgres://ro@db/app?password=hunter2", "", "", ErrLiteral},
		{"postgres://ro@db/app?password=env:NOPE", "", "", ErrUnset},
		{"postgres://ro@db/app?password=env:", "", "", ErrUnset},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Take(u, getenv)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("%s: %q, %v; want %q, %v", c.url, got, err, c.want, c.err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s: the error %q shows the password", c.url, err)
			}
			continue
		}
		if u.String() != c.rest {
			t.Errorf("%s: left %s, want %s", c.url, u, c.rest)
		}
	}
}
