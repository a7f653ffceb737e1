package faults

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/internal/githubtest"
	"github.com/rollout-dev/rollout/internal/race"
)

// The action's own repository on the fake GitHub, and the commit its release tags point at.
const (
	actionOwner  = "rollout-dev"
	actionRepo   = "rollout"
	releaseSHA   = "5b1f6d1c9e0a4b7d8c3e2f1a0b9c8d7e6f5a4b3c"
	unreleasedSH = "0123456789abcdef0123456789abcdef01234567"
)

// compositeAction is the part of action.yml the test runs: its steps, as the runner would.
type compositeAction struct {
	Runs struct {
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

// actionStep is one step of action.yml.
type actionStep struct {
	Name             string            `yaml:"name"`
	ID               string            `yaml:"id"`
	If               string            `yaml:"if"`
	Uses             string            `yaml:"uses"`
	Run              string            `yaml:"run"`
	Shell            string            `yaml:"shell"`
	Env              map[string]string `yaml:"env"`
	WorkingDirectory string            `yaml:"working-directory"`
}

// actionSteps reads the steps of action.yml.
func actionSteps(t *testing.T) []actionStep {
	t.Helper()
	var a compositeAction
	raw, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	return a.Runs.Steps
}

// actionRun is one run of the composite action: its inputs, the context it runs in, and what came out.
type actionRun struct {
	t        *testing.T
	g        *github
	inputs   map[string]string
	ref      string // github.action_ref; "" leaves it empty, as some runners do in composite actions
	pathRef  string // the ref in the action's path when ref is empty
	toolDir  string
	temp     string
	summary  string
	outputs  map[string]map[string]string // step id → outputs
	skipped  []string                     // steps whose `if` was false
	wanted   []string                     // `uses` steps whose `if` was true (not run here)
	printed  bytes.Buffer
	stopAt   string // stop before the step with this name
	firstOut time.Duration
	took     map[string]time.Duration // wall time, by step id
	cpu      map[string]time.Duration // CPU time, by step id: what a runner with the cores to itself waits
}

var exprRe = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// expr evaluates the expressions action.yml uses: inputs, the github and runner contexts, step outputs.
func (r *actionRun) expr(e string) string {
	if left, right, ok := strings.Cut(e, "=="); ok {
		return strconv.FormatBool(r.expr(strings.TrimSpace(left)) == r.expr(strings.TrimSpace(right)))
	}
	switch {
	case strings.HasPrefix(e, "inputs."):
		return r.inputs[strings.TrimPrefix(e, "inputs.")]
	case e == "github.token":
		return ghToken // the job's own GITHUB_TOKEN in this world
	case e == "github.action_ref":
		return r.ref
	case e == "github.action_repository":
		if r.ref == "" {
			return ""
		}
		return actionOwner + "/" + actionRepo
	case e == "github.action_path":
		return r.actionPath()
	case e == "runner.temp":
		return r.temp
	case strings.HasPrefix(e, "steps."):
		parts := strings.Split(e, ".") // steps.ID.outputs.NAME
		if len(parts) == 4 && parts[2] == "outputs" {
			return r.outputs[parts[1]][parts[3]]
		}
	}
	r.t.Fatalf("action.yml uses an expression the test does not know: %q", e)
	return ""
}

func (r *actionRun) subst(s string) string {
	return exprRe.ReplaceAllStringFunc(s, func(m string) string { return r.expr(exprRe.FindStringSubmatch(m)[1]) })
}

// cond evaluates a step's `if`: empty, or terms joined by `&&`, each `always()`, `steps.X.outputs.Y ==
// 'v'` or `steps.X.outputs.Y != 'v'`.
func (r *actionRun) cond(s string) bool {
	if s == "" {
		return true
	}
	for _, term := range strings.Split(s, "&&") {
		term = strings.TrimSpace(term)
		if term == "always()" {
			continue
		}
		op := "=="
		left, right, ok := strings.Cut(term, op)
		if !ok {
			op = "!="
			left, right, ok = strings.Cut(term, op)
		}
		if !ok {
			r.t.Fatalf("action.yml has an `if` the test does not know: %q", s)
		}
		if equal := r.expr(strings.TrimSpace(left)) == strings.Trim(strings.TrimSpace(right), "'"); equal != (op == "==") {
			return false
		}
	}
	return true
}

// actionPath is where the runner checked the action out: the repository root, seen through a path
// shaped like the runner's (…/_actions/OWNER/REPO/REF), a symlink.
func (r *actionRun) actionPath() string {
	ref := r.ref
	if ref == "" {
		ref = r.pathRef
	}
	link := filepath.Join(r.temp, "_actions", actionOwner, actionRepo, ref)
	if _, err := os.Lstat(link); err == nil {
		return link
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Symlink(root, link); err != nil {
		r.t.Fatal(err)
	}
	return link
}

// run runs the action's steps in order, as a workflow step `uses: rollout-dev/rollout@REF` would.
func (r *actionRun) run() error {
	r.t.Helper()
	steps := actionSteps(r.t)
	r.outputs = map[string]map[string]string{}
	r.took = map[string]time.Duration{}
	r.cpu = map[string]time.Duration{}
	r.summary = filepath.Join(r.temp, "summary.md")
	start := time.Now()
	for i, s := range steps {
		if s.Name == r.stopAt {
			if r.cond(s.If) {
				r.wanted = append(r.wanted, s.Name)
			}
			return nil
		}
		if !r.cond(s.If) {
			r.skipped = append(r.skipped, s.Name)
			continue
		}
		if s.Uses != "" {
			r.wanted = append(r.wanted, s.Name)
			continue
		}
		if s.Name == "Build rollout" {
			// A minute of compiling, in a test that did not ask for it: the release was not found.
			return fmt.Errorf("the action builds rollout from source:\n%s", r.printed.String())
		}
		outFile := filepath.Join(r.temp, fmt.Sprintf("output%d", i))
		cmd := r.stepCommand(i, s, outFile)
		cmd.Stdout, cmd.Stderr = &r.printed, &r.printed
		began := time.Now()
		err := cmd.Run()
		r.took[s.ID] = time.Since(began)
		if cmd.ProcessState != nil { // CPU time of the step and every process it waited for
			r.cpu[s.ID] = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		if s.ID != "" {
			r.outputs[s.ID] = readOutputs(r.t, outFile)
		}
		if s.ID == "run" {
			r.firstOut = time.Since(start)
		}
		if err != nil {
			return fmt.Errorf("step %q: %w", s.Name, err)
		}
	}
	return nil
}

// stepCommand is the process the runner starts for step i of the action (s), as a `shell: bash` step:
// its script under `bash --noprofile --norc -eo pipefail`, in the workspace, with the runner's
// environment and the step's own; the step writes its outputs to outFile.
func (r *actionRun) stepCommand(i int, s actionStep, outFile string) *exec.Cmd {
	r.t.Helper()
	if s.Shell != "bash" {
		r.t.Fatalf("step %q: shell %q", s.Name, s.Shell)
	}
	script := filepath.Join(r.temp, fmt.Sprintf("step%d.sh", i))
	if err := os.WriteFile(script, []byte(r.subst(s.Run)), 0o644); err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Dir = r.g.traffic // the workspace: specs' relative file: sources are read from here
	if s.WorkingDirectory != "" {
		cmd.Dir = r.subst(s.WorkingDirectory)
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.temp, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"RUNNER_OS=" + map[string]string{"linux": "Linux", "darwin": "macOS", "windows": "Windows"}[runtime.GOOS],
		"RUNNER_ARCH=" + map[string]string{"amd64": "X64", "arm64": "ARM64"}[runtime.GOARCH],
		"RUNNER_TEMP=" + r.temp, "RUNNER_TOOL_CACHE=" + r.toolDir,
		"GITHUB_ACTION_PATH=" + r.actionPath(), "GITHUB_OUTPUT=" + outFile, "GITHUB_STEP_SUMMARY=" + r.summary,
		"GITHUB_REPOSITORY=" + ghOwner + "/" + ghRepo, "GITHUB_API_URL=" + r.g.gh.APIURL(), "GITHUB_SERVER_URL=" + r.g.gh.URL,
		"ROLLOUT_ROLLBACK_WEBHOOK=" + r.g.hook.url()}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+r.subst(v))
	}
	return cmd
}

// readOutputs parses a GITHUB_OUTPUT file: name=value lines and name<<DELIM heredocs.
func readOutputs(t *testing.T, path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			for sc.Scan() && sc.Text() != delim {
				val = append(val, sc.Text())
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if name, val, ok := strings.Cut(line, "="); ok {
			out[name] = val
		}
	}
	return out
}

// releaseArchive packs the rollout binary as GoReleaser does (.goreleaser.yaml's archive name, the
// binary at the top with the README and SECURITY files) and returns the archive's name and bytes.
func releaseArchive(t *testing.T, version string, binary []byte) (string, []byte) {
	t.Helper()
	var cfg struct {
		ProjectName string `yaml:"project_name"`
		Builds      []struct {
			Binary string `yaml:"binary"`
		} `yaml:"builds"`
		Archives []struct {
			NameTemplate string   `yaml:"name_template"`
			Formats      []string `yaml:"formats"`
			Files        []string `yaml:"files"`
		} `yaml:"archives"`
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Archives) != 1 || len(cfg.Builds) != 1 || len(cfg.Archives[0].Formats) != 1 || cfg.Archives[0].Formats[0] != "tar.gz" {
		t.Fatalf(".goreleaser.yaml: want one build and one tar.gz archive: %+v", cfg)
	}
	var name strings.Builder
	tmpl := template.Must(template.New("name").Parse(cfg.Archives[0].NameTemplate))
	if err := tmpl.Execute(&name, map[string]string{"ProjectName": cfg.ProjectName, "Version": version,
		"Os": runtime.GOOS, "Arch": runtime.GOARCH}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	// Stored, not compressed: GoReleaser compresses, but tar reads either, and compressing a 30 MB binary
	// was most of this test's own CPU.
	gz, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	tw := tar.NewWriter(gz)
	add := func(name string, mode int64, content []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), ModTime: t0, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range cfg.Archives[0].Files {
		content, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		add(f, 0o644, content)
	}
	add(cfg.Builds[0].Binary, 0o755, binary)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return name.String() + ".tar.gz", buf.Bytes()
}

// publish releases tag on the fake GitHub: the archive for this machine and checksums.txt in
// GoReleaser's format. tamper replaces the archive's binary after the checksums were computed.
func publish(t *testing.T, gh *githubtest.Server, tag, commit string, tamper bool) {
	t.Helper()
	binary, err := os.ReadFile(rolloutBin(t))
	if err != nil {
		t.Fatal(err)
	}
	name, archive := releaseArchive(t, strings.TrimPrefix(tag, "v"), binary)
	sum := sha256.Sum256(archive)
	checksums := fmt.Sprintf("%s  %s\n%s  rollout_%s_plan9_amd64.tar.gz\n", hex.EncodeToString(sum[:]), name,
		strings.Repeat("0", 64), strings.TrimPrefix(tag, "v"))
	if tamper {
		evil := append([]byte("#!/bin/sh\necho pwned\n#"), binary...)
		_, archive = releaseArchive(t, strings.TrimPrefix(tag, "v"), evil)
	}
	gh.AddRelease(actionOwner, actionRepo, githubtest.Release{Tag: tag, Commit: commit,
		Assets: map[string][]byte{name: archive, "checksums.txt": []byte(checksums)}})
}

func newActionRun(t *testing.T, g *github, ref string, inputs map[string]string) *actionRun {
	in := map[string]string{"command": "reconcile", "dir": "rollouts", "args": "", "token": ghToken, "comment": "true", "version": "", "export-growthbook": ""}
	for k, v := range inputs {
		in[k] = v
	}
	return &actionRun{t: t, g: g, ref: ref, inputs: in, toolDir: t.TempDir(), temp: t.TempDir()}
}

// TestActionRunsTheReleaseBinary runs action.yml's steps against the fake GitHub, which serves the
// action's releases: the binary comes from the release its ref names, checked against checksums.txt,
// then from the tool cache; a ref without a release asks for a build; a tampered archive is refused.
func TestActionRunsTheReleaseBinary(t *testing.T) {
	race.Skip(t, race.OutOfProcess)
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("the action's scripts need jq")
	}
	g := newGitHub(t, map[string]string{"rollouts/summarizer.yaml": progressing("summarizer", "hold")})
	g.writeTraffic("summarizer", 0.30)
	publish(t, g.gh, "v1.3.0", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)
	publish(t, g.gh, "v1.4.0", releaseSHA, false)
	g.gh.AddTag(actionOwner, actionRepo, "v1", releaseSHA) // the moving major tag
	g.gh.AddTag(actionOwner, actionRepo, "main", unreleasedSH)

	// @v1: the release v1 points at, downloaded and verified; then reconcile rolls the canary back.
	r := newActionRun(t, g, "v1", nil)
	if err := r.run(); err != nil {
		t.Fatalf("%v\n%s", err, r.printed.String())
	}
	inst := r.outputs["install"]
	if inst["source"] != "release" || inst["version"] != "v1.4.0" || inst["build"] != "false" ||
		inst["bin"] != filepath.Join(r.toolDir, "rollout", "1.4.0", archName(), "rollout") {
		t.Fatalf("install outputs = %v\n%s", inst, r.printed.String())
	}
	// The report's steps are skipped too: this run reconciles, and writes no report.
	if len(r.wanted) != 0 || !slices.Equal(r.skipped, []string{"Set up Go", "Build rollout", "Upload the report", "Link the report from the job summary"}) {
		t.Errorf("with a release, setup-go and the build must be skipped: skipped %v, wanted %v", r.skipped, r.wanted)
	}
	if g.spec("summarizer").Status.Phase != "RolledBack" {
		t.Errorf("the reconcile did not roll back:\n%s", r.printed.String())
	}
	summary, _ := os.ReadFile(r.summary)
	if !strings.Contains(string(summary), "| summarizer | rollback |") || !strings.Contains(r.outputs["run"]["decisions"], `"decision":"rollback"`) {
		t.Errorf("summary %s\ndecisions %q", summary, r.outputs["run"]["decisions"])
	}
	// The job's own GITHUB_TOKEN pushed the rollback, and no export rode along: the run says that a
	// workflow chained on the push will not carry it to the applications.
	if !strings.Contains(r.printed.String(), "::warning title=rollout: rollbacks may not reach your applications::") || !strings.Contains(string(summary), "export-growthbook") {
		t.Errorf("no warning that the rollback starts no workflow:\n%s\n%s", r.printed.String(), summary)
	}
	// Logged, not asserted: timings belong in benchmarks. The CPU time is what the steps cost on a
	// runner that has its cores to itself, whatever else this machine is running.
	t.Logf("action from start to reconcile output, release archive from the fake GitHub: %v wall (install %v, reconcile %v); CPU: install %v, reconcile %v",
		r.firstOut.Round(time.Millisecond), r.took["install"].Round(time.Millisecond), r.took["run"].Round(time.Millisecond),
		r.cpu["install"].Round(time.Millisecond), r.cpu["run"].Round(time.Millisecond))
	downloads := g.gh.Calls()["GET /repos/{owner}/{repo}/releases/assets/{asset_id}"]
	if downloads != 2 {
		t.Errorf("asset downloads = %d, want 2 (checksums.txt and the archive)", downloads)
	}

	// The same tool cache: no download at all.
	again := newActionRun(t, g, "v1", nil)
	again.toolDir, again.stopAt = r.toolDir, "Run rollout"
	if err := again.run(); err != nil || again.outputs["install"]["source"] != "cache" {
		t.Errorf("second run: %v, %v\n%s", err, again.outputs["install"], again.printed.String())
	}
	if n := g.gh.Calls()["GET /repos/{owner}/{repo}/releases/assets/{asset_id}"]; n != downloads {
		t.Errorf("a cached binary was downloaded again (%d downloads)", n-downloads)
	}
	// A release named outright and already in the tool cache: not one API call.
	calls := g.gh.TotalCalls()
	named := newActionRun(t, g, "v1.4.0", nil)
	named.toolDir, named.stopAt = r.toolDir, "Run rollout"
	if err := named.run(); err != nil || named.outputs["install"]["source"] != "cache" || named.outputs["install"]["bin"] != inst["bin"] {
		t.Errorf("a cached release named by the ref: %v, %v\n%s", err, named.outputs["install"], named.printed.String())
	}
	if n := g.gh.TotalCalls() - calls; n != 0 {
		t.Errorf("a cached release named by the ref cost %d API calls", n)
	}

	// Issue 22 item 8: the cache entry is re-checked on every use. A binary changed in the cache since
	// it was verified is never run: it is downloaded and verified again.
	cached := inst["bin"]
	if err := os.WriteFile(cached, []byte("#!/bin/sh\necho pwned\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := g.gh.Calls()["GET /repos/{owner}/{repo}/releases/assets/{asset_id}"]
	tampered := newActionRun(t, g, "v1.4.0", nil)
	tampered.toolDir, tampered.stopAt = r.toolDir, "Run rollout"
	if err := tampered.run(); err != nil || tampered.outputs["install"]["source"] != "release" {
		t.Errorf("a tampered cache entry: %v, %v\n%s", err, tampered.outputs["install"], tampered.printed.String())
	}
	if !strings.Contains(tampered.printed.String(), "does not have the checksum recorded") {
		t.Errorf("the tampered cache entry was not reported:\n%s", tampered.printed.String())
	}
	if n := g.gh.Calls()["GET /repos/{owner}/{repo}/releases/assets/{asset_id}"] - before; n != 2 {
		t.Errorf("the tampered entry was not downloaded again (%d downloads)", n)
	}
	if b, _ := os.ReadFile(cached); strings.Contains(string(b), "pwned") {
		t.Error("the tampered binary is still in the cache")
	}

	refs := []struct {
		name, ref, version string
		want               map[string]string
	}{
		{"a release tag", "v1.3.0", "", map[string]string{"source": "release", "version": "v1.3.0", "build": "false"}},
		{"a commit a release tag points at", releaseSHA, "", map[string]string{"source": "release", "version": "v1.4.0"}},
		{"a branch has no release", "main", "", map[string]string{"source": "build", "build": "true", "version": "main"}},
		{"an unreleased commit", unreleasedSH, "", map[string]string{"source": "build", "build": "true"}},
		{"the version input wins over the ref", "main", "1.3.0", map[string]string{"source": "release", "version": "v1.3.0"}},
		{"no ref in the context: the action path names it", "", "", map[string]string{"source": "release", "version": "v1.3.0"}},
	}
	for _, tt := range refs {
		t.Run(tt.name, func(t *testing.T) {
			r := newActionRun(t, g, tt.ref, map[string]string{"version": tt.version})
			r.stopAt, r.pathRef = "Build rollout", "v1.3.0"
			if err := r.run(); err != nil {
				t.Fatalf("%v\n%s", err, r.printed.String())
			}
			for k, v := range tt.want {
				if got := r.outputs["install"][k]; got != v {
					t.Errorf("output %s = %q, want %q\n%s", k, got, v, r.printed.String())
				}
			}
			if build := tt.want["build"] == "true"; build != (strings.Join(r.wanted, ",") == "Set up Go,Build rollout") {
				t.Errorf("set up Go and build must run exactly when the ref has no release: they run %v", r.wanted)
			}
		})
	}

	t.Run("a rate-limited API builds from source instead", func(t *testing.T) {
		g.gh.FailRoute("GET /repos/{owner}/{repo}/releases/tags/{tag}", 1, githubtest.Fault{Status: http.StatusForbidden, Secondary: true})
		r := newActionRun(t, g, "v1", nil)
		r.stopAt = "Build rollout"
		if err := r.run(); err != nil {
			t.Fatalf("%v\n%s", err, r.printed.String())
		}
		if r.outputs["install"]["build"] != "true" || !strings.Contains(r.printed.String(), "::warning") || !strings.Contains(r.printed.String(), "HTTP 403") {
			t.Errorf("outputs %v\n%s", r.outputs["install"], r.printed.String())
		}
	})

	t.Run("a tampered archive is refused", func(t *testing.T) {
		publish(t, g.gh, "v1.4.1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", true)
		r := newActionRun(t, g, "v1", map[string]string{"version": "v1.4.1"})
		err := r.run()
		if err == nil || !strings.Contains(err.Error(), "Install rollout") {
			t.Fatalf("the tampered binary was not refused: %v\n%s", err, r.printed.String())
		}
		for _, want := range []string{"does not match the release's checksums.txt", "refusing to run it", "::error"} {
			if !strings.Contains(r.printed.String(), want) {
				t.Errorf("the refusal does not say %q:\n%s", want, r.printed.String())
			}
		}
		if strings.Contains(r.printed.String(), "pwned") {
			t.Error("the tampered binary ran")
		}
		if entries, _ := os.ReadDir(r.toolDir); len(entries) != 0 {
			t.Errorf("the tampered binary reached the tool cache: %v", entries)
		}
		if _, ok := r.outputs["run"]; ok {
			t.Error("rollout ran after the refusal")
		}
	})

	t.Run("a version with no release is an error, not a build", func(t *testing.T) {
		r := newActionRun(t, g, "v1", map[string]string{"version": "9.9.9"})
		if err := r.run(); err == nil || !strings.Contains(r.printed.String(), "has no such release") {
			t.Errorf("err %v\n%s", err, r.printed.String())
		}
	})

	// A release the API cannot be asked about now (a secondary rate limit) is not "no such release":
	// the error says what happened, and nothing is built in place of the version asked for.
	t.Run("a version the API cannot read now says so", func(t *testing.T) {
		g.gh.FailRoute("GET /repos/{owner}/{repo}/releases/tags/{tag}", 5, githubtest.Fault{Status: http.StatusForbidden, Secondary: true})
		defer g.gh.Heal()
		r := newActionRun(t, g, "v1", map[string]string{"version": "1.3.0"})
		err := r.run()
		if err == nil || strings.Contains(r.printed.String(), "no such release") || !strings.Contains(r.printed.String(), "could not read the release v1.3.0") ||
			!strings.Contains(r.printed.String(), "HTTP 403") {
			t.Errorf("err %v\n%s", err, r.printed.String())
		}
	})

	for _, secret := range []string{ghToken, g.hook.secret} {
		if strings.Contains(r.printed.String(), secret) {
			t.Errorf("the action printed a secret")
		}
	}
}

func archName() string { return runtime.GOARCH }
