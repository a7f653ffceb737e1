package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "3f2a9c1e0d4b5a69788796a5b4c3d2e1f0a9b8c7"},
		{Key: "vcs.time", Value: "2026-04-15T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	tests := []struct {
		name    string
		stamped [3]string // version, commit, date from -ldflags
		info    *debug.BuildInfo
		ok      bool
		want    buildVersion
		line    string // String() without the platform
	}{
		{
			name:    "a release build: the stamps win over the build info",
			stamped: [3]string{"1.4.0", "abcdef0123456789", "2026-05-01T00:00:00Z"},
			info:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			ok:      true,
			want:    buildVersion{Version: "1.4.0", Commit: "abcdef0123456789", Modified: true, Date: "2026-05-01T00:00:00Z", GoVersion: "go1.26.8"},
			line:    "rollout version 1.4.0 (commit abcdef012345-dirty, 2026-05-01T00:00:00Z) go1.26.8 ",
		},
		{
			name: "go install …@v1.4.0 records the module version",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			ok:   true,
			want: buildVersion{Version: "v1.4.0", GoVersion: "go1.26.8"},
			line: "rollout version v1.4.0 go1.26.8 ",
		},
		{
			name: "a build from a checkout reads the commit from the vcs settings",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs[:2]},
			ok:   true,
			want: buildVersion{Version: "(devel)", Commit: vcs[0].Value, Date: "2026-04-15T10:00:00Z", GoVersion: "go1.26.8"},
			line: "rollout version (devel) (commit 3f2a9c1e0d4b, 2026-04-15T10:00:00Z) go1.26.8 ",
		},
		{
			name: "no build info at all",
			want: buildVersion{Version: "(devel)", GoVersion: runtime.Version()},
			line: "rollout version (devel) " + runtime.Version() + " ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
			version, commit, date = tt.stamped[0], tt.stamped[1], tt.stamped[2]
			got := versionInfo(tt.info, tt.ok)
			tt.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got != tt.want {
				t.Errorf("versionInfo = %+v\nwant %+v", got, tt.want)
			}
			if line := got.String(); line != tt.line+tt.want.Platform {
				t.Errorf("String() = %q, want %q", line, tt.line+tt.want.Platform)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	code, stdout, stderr := runApp("version")
	if code != exitOK || !strings.HasPrefix(stdout, "rollout version ") || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, flag, _ := runApp("--version")
	if code != exitOK || flag != stdout {
		t.Errorf("--version: exit %d, %q; want the same line as `rollout version` %q", code, flag, stdout)
	}

	code, stdout, _ = runApp("version", "-o", "json")
	var v map[string]any
	if err := json.Unmarshal([]byte(stdout), &v); code != exitOK || err != nil {
		t.Fatalf("version -o json: exit %d, %v: %q", code, err, stdout)
	}
	for _, key := range []string{"version", "commit", "modified", "date", "goVersion", "platform"} {
		if _, ok := v[key]; !ok {
			t.Errorf("version -o json lacks %q: %s", key, stdout)
		}
	}
	if v["goVersion"] != runtime.Version() {
		t.Errorf("goVersion = %v, want %s", v["goVersion"], runtime.Version())
	}

	for _, args := range [][]string{{"version", "-o", "yaml"}, {"version", "extra"}} {
		if code, _, stderr := runApp(args...); code != exitUsage {
			t.Errorf("rollout %s: exit %d (%s), want %d", strings.Join(args, " "), code, stderr, exitUsage)
		}
	}
}
