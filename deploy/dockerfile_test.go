package deploy_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// stages splits a Dockerfile's instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.keyword == "FROM" {
			out = append(out, nil)
		}
		if len(out) == 0 {
			if in.keyword == "ARG" {
				continue // an ARG before the first FROM belongs to no stage
			}
			return nil
		}
		out[len(out)-1] = append(out[len(out)-1], in)
	}
	return out
}

// goDirective is the Go version go.mod asks for, as major and minor.
func goDirective(t *testing.T) (int, int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major, minor
}

// TestDockerfileBuildsFromAClone checks the root Dockerfile, which `docker build .` uses in a clone: a
// build stage on the Go image go.mod needs, and a final stage that is the release's (the same base,
// user, port, entrypoint and command as deploy/release.Dockerfile). No docker daemon runs where the
// tests run, so its build stage is carried out here as docker would: the files COPY names copied from
// the clone (git's files, what .dockerignore leaves) into a fresh WORKDIR, each RUN run there with its
// ARGs, and the binary the final stage copies must be there, static, and stamped with the VERSION
// build argument.
func TestDockerfileBuildsFromAClone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rollout")
	}
	st := stages(parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile")))
	if len(st) != 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(st))
	}
	build, final := st[0], st[1]
	from := regexp.MustCompile(`^golang:(\d+)\.(\d+)(?:\.\d+)?(?:-[a-z0-9]+)?(?:@sha256:[0-9a-f]{64})? AS build$`).FindStringSubmatch(build[0].args)
	if from == nil {
		t.Fatalf("FROM %s: want golang:X.Y[-variant] AS build", build[0].args)
	}
	major, minor := goDirective(t)
	if m, _ := strconv.Atoi(from[1]); m != major {
		t.Errorf("FROM %s: Go %s, go.mod asks for %d.%d", build[0].args, from[1], major, minor)
	} else if n, _ := strconv.Atoi(from[2]); n < minor {
		t.Errorf("FROM %s: older than the Go %d.%d go.mod asks for", build[0].args, major, minor)
	}

	// The final stage is the release image's, except for where its binary comes from.
	release := parseDockerfile(t, filepath.Join(repoRoot, "deploy/release.Dockerfile"))
	keep := func(ins []instruction) []string {
		var out []string
		for _, in := range ins {
			if in.keyword != "COPY" && in.keyword != "ARG" {
				out = append(out, in.keyword+" "+in.args)
			}
		}
		return out
	}
	if got, want := keep(final), keep(release); !slices.Equal(got, want) {
		t.Errorf("the final stage is\n%s\nwant the release's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var copyFrom []string
	for _, in := range final {
		if in.keyword == "COPY" {
			copyFrom = strings.Fields(in.args)
		}
	}
	var releaseDest string
	for _, in := range release {
		if in.keyword == "COPY" {
			releaseDest = strings.Fields(in.args)[1]
		}
	}
	if len(copyFrom) != 3 || copyFrom[0] != "--from=build" || copyFrom[2] != releaseDest {
		t.Fatalf("COPY %v: want --from=build SRC %s", copyFrom, releaseDest)
	}

	// The build stage, carried out in a temporary root.
	root := t.TempDir()
	files := cloneFiles(t)
	workdir := "/"
	env := append(os.Environ(), "CGO_ENABLED=1") // the stage must turn cgo off itself
	args := map[string]string{"VERSION": "9.9.9"}
	at := func(p string) string {
		if !filepath.IsAbs(p) {
			p = filepath.Join(workdir, p)
		}
		return filepath.Join(root, p)
	}
	for _, in := range build[1:] {
		switch in.keyword {
		case "WORKDIR":
			workdir = in.args
			if err := os.MkdirAll(at("."), 0o755); err != nil {
				t.Fatal(err)
			}
		case "COPY":
			f := strings.Fields(in.args)
			srcs, dest := f[:len(f)-1], f[len(f)-1]
			for _, src := range srcs {
				for _, name := range files {
					if src != "." && name != src {
						continue
					}
					to := at(filepath.Join(dest, name))
					if src != "." && !strings.HasSuffix(dest, "/") && len(srcs) == 1 {
						to = at(dest)
					}
					copyFile(t, filepath.Join(repoRoot, name), to)
				}
			}
		case "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			if v, ok := args[name]; ok {
				env = append(env, name+"="+v)
			} else {
				env = append(env, name+"="+def)
			}
		case "ENV":
			env = append(env, strings.Join(strings.Fields(in.args), "="))
		case "RUN":
			cmd := exec.Command("sh", "-c", in.args)
			if in.exec != nil {
				cmd = exec.Command(in.exec[0], in.exec[1:]...)
			}
			cmd.Dir, cmd.Env = at("."), env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("Dockerfile:%d: RUN %s: %v\n%s", in.line, in.args, err, out)
			}
		default:
			t.Fatalf("Dockerfile:%d: %s in the build stage is not carried out here", in.line, in.keyword)
		}
	}
	bin := filepath.Join(root, copyFrom[1])
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the binary the image copies (%s): %v", copyFrom[1], err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked; distroless/static has no libc")
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	var v struct{ Version string }
	if err != nil || json.Unmarshal(out, &v) != nil || v.Version != "9.9.9" {
		t.Errorf("rollout version -o json = %s, %v; want the VERSION build argument 9.9.9", out, err)
	}
}

// cloneFiles lists what a clone of the working tree holds and .dockerignore lets into the build
// context: git's tracked files and the new ones it does not ignore.
func cloneFiles(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(ignore), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	var files []string
	for _, name := range bytes.Split(out, []byte{0}) {
		n := string(name)
		if n == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(repoRoot, n)); err != nil {
			continue // deleted in the working tree
		}
		skip := false
		for _, p := range patterns {
			first, _, _ := strings.Cut(n, "/")
			if ok, _ := filepath.Match(p, n); ok || first == p {
				skip = true
			}
		}
		if !skip {
			files = append(files, n)
		}
	}
	return files
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
