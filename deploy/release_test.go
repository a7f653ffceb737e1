package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"
)

// repoRoot is the module's root, where .goreleaser.yaml, the Dockerfile and action/ live.
const repoRoot = ".."

// goreleaserConfig is the part of .goreleaser.yaml the tests check.
type goreleaserConfig struct {
	Version     int    `yaml:"version"`
	ProjectName string `yaml:"project_name"`
	Builds      []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Flags   []string `yaml:"flags"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Archives []struct {
		Files           []string `yaml:"files"`
		NameTemplate    string   `yaml:"name_template"`
		Formats         []string `yaml:"formats"`
		FormatOverrides []struct {
			Goos    string   `yaml:"goos"`
			Formats []string `yaml:"formats"`
		} `yaml:"format_overrides"`
	} `yaml:"archives"`
	Checksum struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	DockersV2 []struct {
		IDs        []string `yaml:"ids"`
		Dockerfile string   `yaml:"dockerfile"`
		Images     []string `yaml:"images"`
		Tags       []string `yaml:"tags"`
		Platforms  []string `yaml:"platforms"`
	} `yaml:"dockers_v2"`
}

func readGoreleaser(t *testing.T) goreleaserConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c goreleaserConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if len(c.Builds) != 1 || len(c.Archives) != 1 || len(c.DockersV2) != 1 {
		t.Fatalf(".goreleaser.yaml: want one build, one archive and one image, got %d, %d, %d", len(c.Builds), len(c.Archives), len(c.DockersV2))
	}
	return c
}

// render executes a GoReleaser name template with the fields the tests need.
func render(t *testing.T, tmpl string, fields map[string]string) string {
	t.Helper()
	var b strings.Builder
	if err := template.Must(template.New("").Option("missingkey=error").Parse(tmpl)).Execute(&b, fields); err != nil {
		t.Fatalf("template %q: %v", tmpl, err)
	}
	return b.String()
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// stamp is what the release build stamps into the test's binary through .goreleaser.yaml's ldflags.
var stamp = map[string]string{"Version": "9.8.7", "FullCommit": "3f2a9c1e0d4b5a69788796a5b4c3d2e1f0a9b8c7", "CommitDate": "2026-04-15T10:00:00Z"}

// releaseBinary builds cmd/rollout once with the flags and ldflags of .goreleaser.yaml, as the release
// does.
func releaseBinary(t *testing.T) string {
	t.Helper()
	c := readGoreleaser(t)
	buildOnce.Do(func() {
		var ldflags []string
		for _, l := range c.Builds[0].Ldflags {
			ldflags = append(ldflags, render(t, l, stamp))
		}
		dir, err := os.MkdirTemp("", "rollout-deploy-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, c.Builds[0].Binary)
		args := append([]string{"build"}, c.Builds[0].Flags...)
		cmd := exec.Command("go", append(args, "-ldflags", strings.Join(ldflags, " "), "-o", binPath, c.Builds[0].Main)...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), c.Builds[0].Env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{string(out), err}
		}
	})
	if buildErr != nil {
		t.Fatalf("build rollout: %v", buildErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// update rewrites deploy/testdata/goreleaser-checked.sha256 after a passing `goreleaser check`.
var update = flag.Bool("update", false, "after goreleaser check passes, record .goreleaser.yaml's hash in testdata/goreleaser-checked.sha256")

// goreleaserStamp is the file that records the configuration goreleaser last checked.
const goreleaserStamp = "testdata/goreleaser-checked.sha256"

// configHash is .ci/install-goreleaser --config-hash: the hash of .goreleaser.yaml and the GoReleaser
// version the script installs.
func configHash(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(repoRoot, ".ci/install-goreleaser"), "--config-hash").Output()
	if err != nil {
		t.Fatalf(".ci/install-goreleaser --config-hash: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestGoreleaserCheck runs `goreleaser check` on .goreleaser.yaml. GoReleaser takes about 13 minutes
// to build from the module proxy on two cores, so .ci/install-goreleaser builds it once per machine and
// .ci/test passes its path in ROLLOUT_GORELEASER; it is also looked up in the cache that script fills,
// then on PATH. A machine without it (a fresh CI machine) builds it only when the configuration changed
// since the last passing check: testdata/goreleaser-checked.sha256 records the configuration's hash,
// written by -update only after the check passed, and this test compares it when GoReleaser is absent,
// and checks it is current when GoReleaser is there.
func TestGoreleaserCheck(t *testing.T) {
	bin := os.Getenv("ROLLOUT_GORELEASER")
	if bin == "" {
		if out, err := exec.Command("bash", filepath.Join(repoRoot, ".ci/install-goreleaser"), "--print-only").Output(); err == nil {
			if p := strings.TrimSpace(string(out)); p != "" {
				if _, err := os.Stat(p); err == nil {
					bin = p
				}
			}
		}
	}
	if bin == "" {
		bin, _ = exec.LookPath("goreleaser")
	}
	hash := configHash(t)
	recorded, _ := os.ReadFile(goreleaserStamp)
	current := strings.TrimSpace(strings.Fields(string(recorded) + " x")[0]) == hash
	if bin == "" {
		if current {
			t.Skipf("goreleaser is not installed; .goreleaser.yaml is unchanged since it last passed goreleaser check (%s)", goreleaserStamp)
		}
		if os.Getenv("ROLLOUT_INTEGRATION") == "1" {
			t.Fatalf(".goreleaser.yaml changed since goreleaser last checked it (%s) and goreleaser is missing: run .ci/install-goreleaser (it prints the path to set as ROLLOUT_GORELEASER)", goreleaserStamp)
		}
		t.Skip("goreleaser is not installed; .ci/install-goreleaser builds it")
	}
	cmd := exec.Command(bin, "check")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 configuration file(s) validated") {
		t.Fatalf("goreleaser check: %v\n%s", err, out)
	}
	if *update {
		if err := os.WriteFile(goreleaserStamp, []byte(hash+"  .goreleaser.yaml + goreleaser version (.ci/install-goreleaser --config-hash)\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !current {
		t.Errorf("goreleaser check passed, but %s does not record this .goreleaser.yaml: run go test ./deploy -run TestGoreleaserCheck -update, so that a machine without goreleaser need not build it", goreleaserStamp)
	}
}

// The release builds every platform the Action's runners use, archives them under the names
// action/install.sh asks for, and stamps the values `rollout version` prints.
func TestGoreleaserConfig(t *testing.T) {
	c := readGoreleaser(t)
	b := c.Builds[0]
	if c.Version != 2 || c.ProjectName != "rollout" || b.Main != "./cmd/rollout" || b.Binary != "rollout" {
		t.Errorf("version %d, project %q, main %q, binary %q", c.Version, c.ProjectName, b.Main, b.Binary)
	}
	slices.Sort(b.Goos)
	slices.Sort(b.Goarch)
	if !slices.Equal(b.Goos, []string{"darwin", "linux", "windows"}) || !slices.Equal(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf("targets %v × %v, want darwin, linux, windows × amd64, arm64", b.Goos, b.Goarch)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Error("the build is not static (CGO_ENABLED=0), which the distroless image and old glibc runners need")
	}
	if c.Checksum.NameTemplate != "checksums.txt" || c.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum %+v: action/install.sh reads a sha256 checksums.txt", c.Checksum)
	}
	a := c.Archives[0]
	if !slices.Equal(a.Formats, []string{"tar.gz"}) || len(a.FormatOverrides) != 1 || a.FormatOverrides[0].Goos != "windows" ||
		!slices.Equal(a.FormatOverrides[0].Formats, []string{"zip"}) {
		t.Errorf("archives: tar.gz, and zip on windows, are what action/install.sh unpacks: %+v", a)
	}
	name := render(t, a.NameTemplate, map[string]string{"ProjectName": c.ProjectName, "Version": "1.4.0", "Os": "linux", "Arch": "arm64"})
	if name != "rollout_1.4.0_linux_arm64" {
		t.Errorf("archive name %q", name)
	}
	// The installer's own name for the archive, evaluated by bash with the same values.
	install, err := os.ReadFile(filepath.Join(repoRoot, "action/install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^archive=(.*)$`).FindSubmatch(install)
	if line == nil {
		t.Fatal("action/install.sh sets no archive=")
	}
	out, err := exec.Command("bash", "-c", "version=1.4.0 os=linux arch=arm64 ext=tar.gz; echo "+string(line[1])).Output()
	if err != nil || strings.TrimSpace(string(out)) != name+".tar.gz" {
		t.Errorf("action/install.sh asks for %q (%v), the release holds %q", out, err, name+".tar.gz")
	}
}

// The ldflags of .goreleaser.yaml reach the variables `rollout version` prints.
func TestReleaseBuildIsStamped(t *testing.T) {
	out, err := exec.Command(releaseBinary(t), "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Version, Commit, Date string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.Version != stamp["Version"] || v.Commit != stamp["FullCommit"] || v.Date != stamp["CommitDate"] {
		t.Errorf("rollout version -o json = %s, want the stamps %v", out, stamp)
	}
	flag, err := exec.Command(releaseBinary(t), "--version").Output()
	if err != nil || !bytes.HasPrefix(flag, []byte("rollout version 9.8.7 (commit 3f2a9c1e0d4b, 2026-04-15T10:00:00Z)")) {
		t.Errorf("rollout --version = %q, %v", flag, err)
	}
}

// apacheLicenseSHA256 is the SHA-256 of the Apache License 2.0 as the Apache Software Foundation
// publishes it (https://www.apache.org/licenses/LICENSE-2.0.txt), which Debian ships as
// /usr/share/common-licenses/Apache-2.0 and Argo Rollouts and Flux ship as their LICENSE.
const apacheLicenseSHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

// TestLicenseInEveryArchive: the repository holds the standard Apache-2.0 text as LICENSE, and every
// release archive carries it (GoReleaser's archives.files), with the other files it names, which exist.
func TestLicenseInEveryArchive(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != apacheLicenseSHA256 {
		t.Errorf("LICENSE is not the Apache License 2.0's standard text (sha256 %x)", sum)
	}
	c := readGoreleaser(t)
	files := c.Archives[0].Files
	if !slices.Contains(files, "LICENSE") {
		t.Errorf("archives.files %v: the release archives lack LICENSE", files)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			t.Errorf("archives.files names %s: %v", f, err)
		}
	}
}
