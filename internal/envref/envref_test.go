package envref

import (
	"errors"
	"reflect"
	"testing"
)

func TestCheck(t *testing.T) {
	env := map[string]string{"ROLLOUT_PG": "pg", "PGPASSWORD": "pw", "GITHUB_TOKEN": "ghs_x", "CH_PASS": "ch"}
	p := New(func(k string) string {
		if k == AllowVar {
			return " CH_PASS, GITHUB_TOKEN ,GH_TOKEN,SLACK_WEBHOOK_URL,ROLLOUT_HOOK"
		}
		return env[k]
	}, []string{"PGPASSWORD,GITHUB_APP_PRIVATE_KEY", "APP_PRIVATE_KEY"})
	notifier := []string{"ROLLOUT_HOOK"}
	for _, tc := range []struct {
		name string
		want error
	}{
		{"ROLLOUT_PG", nil},
		{"PGPASSWORD", nil}, // listed by the flag
		{"CH_PASS", nil},    // listed in ROLLOUT_ALLOW_ENV
		{"HOME", ErrNotAllowed},
		{"AWS_SECRET_ACCESS_KEY", ErrNotAllowed},
		{"GITHUB_TOKEN", ErrNeverAllowed}, // listed, still never
		{"GH_TOKEN", ErrNeverAllowed},
		{"ACTIONS_RUNTIME_TOKEN", ErrNeverAllowed},
		{"RUNNER_TEMP", ErrNeverAllowed},
		{"GITHUB_APP_PRIVATE_KEY", ErrNeverAllowed},
		{"APP_PRIVATE_KEY", ErrNeverAllowed},
		{"SLACK_WEBHOOK_URL", ErrNeverAllowed},
		{"ROLLOUT_SLACK_WEBHOOK_URL", ErrNeverAllowed},
		{"ROLLOUT_HOOK", ErrNeverAllowed}, // a notification target references it
	} {
		err := p.Check(tc.name, notifier)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Check(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	get := p.Getenv(func(k string) string { return env[k] }, notifier)
	if get("GITHUB_TOKEN") != "" || get("ROLLOUT_PG") != "pg" || get("PGPASSWORD") != "pw" {
		t.Errorf("Getenv: GITHUB_TOKEN=%q ROLLOUT_PG=%q PGPASSWORD=%q", get("GITHUB_TOKEN"), get("ROLLOUT_PG"), get("PGPASSWORD"))
	}
}

func TestZeroPolicyAllowsThePrefixOnly(t *testing.T) {
	var p Policy
	if err := p.Check("ROLLOUT_X", nil); err != nil {
		t.Error(err)
	}
	if err := p.Check("PGPASSWORD", nil); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("PGPASSWORD: %v", err)
	}
}

func TestNotify(t *testing.T) {
	p := New(func(k string) string {
		if k == AllowVar {
			return "SLACK_WEBHOOK_URL,GITHUB_TOKEN,GH_TOKEN"
		}
		return ""
	}, nil)
	get := p.NotifyGetenv(func(k string) string { return "v-" + k })
	for name, want := range map[string]string{
		"ROLLOUT_SLACK_WEBHOOK_URL":      "v-ROLLOUT_SLACK_WEBHOOK_URL", // the prefix
		"SLACK_WEBHOOK_URL":              "v-SLACK_WEBHOOK_URL",         // listed
		"PAGER_WEBHOOK":                  "",                            // neither
		"HOME":                           "",
		"GITHUB_TOKEN":                   "", // listed, still never
		"GH_TOKEN":                       "",
		"GITHUB_APP_PRIVATE_KEY":         "",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "",
		"RUNNER_TEMP":                    "",
	} {
		if got := get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]error{"ROLLOUT_HOOK": nil, "PAGER_WEBHOOK": ErrNotAllowed, "GITHUB_TOKEN": ErrNeverAllowed, "ROLLOUT_PRIVATE_KEY": ErrNeverAllowed} {
		err := p.CheckNotify(name)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("CheckNotify(%s) = %v, want %v", name, err, want)
		}
	}
	var zero Policy
	if err := zero.CheckNotify("SLACK_WEBHOOK_URL"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("the zero policy resolves SLACK_WEBHOOK_URL for a notification target: %v", err)
	}
}

func TestRefs(t *testing.T) {
	for in, want := range map[string][]string{
		"clickhouse://x:env:GITHUB_TOKEN@attacker:8123/db":              {"GITHUB_TOKEN"},
		"postgres://u@h/db?password=env:SLACK_WEBHOOK_URL&x=env:PGPASS": {"SLACK_WEBHOOK_URL", "PGPASS"},
		"postgres://u@h/db?password=env%3AGH_TOKEN":                     {"GH_TOKEN"},
		"prometheus:http://prom:9090":                                   nil,
	} {
		if got := Refs(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Refs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckGate(t *testing.T) {
	var p Policy
	for name, want := range map[string]error{"ROLLOUT_GATE_WEBHOOK": nil, "ROLLOUT_HOOK": ErrNeverAllowed, "GITHUB_TOKEN": ErrNeverAllowed, "GATE_URL": ErrNotAllowed} {
		err := p.CheckGate(name, []string{"ROLLOUT_HOOK"})
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("CheckGate(%s) = %v, want %v", name, err, want)
		}
	}
	if err := p.Check("ROLLOUT_GATE_WEBHOOK", nil); !errors.Is(err, ErrNeverAllowed) {
		t.Errorf("a source may not read a *WEBHOOK* name: %v", err)
	}
}
