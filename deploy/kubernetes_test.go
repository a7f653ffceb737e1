package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/internal/gittest"
)

// The parts of the Kubernetes objects the tests check, with their API field names.
type (
	object struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Metadata   metadata `yaml:"metadata"`
		Spec       struct {
			Replicas *int `yaml:"replicas"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Template    podTemplate `yaml:"template"`
			Schedule    string      `yaml:"schedule"`
			Concurrency string      `yaml:"concurrencyPolicy"`
			JobTemplate struct {
				Spec struct {
					Template podTemplate `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"`
			Ports []struct {
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
		Resources []string          `yaml:"resources"`
		Data      map[string]string `yaml:"data"`
	}
	metadata struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Annotations map[string]string `yaml:"annotations"`
	}
	podTemplate struct {
		Metadata metadata `yaml:"metadata"`
		Spec     struct {
			SecurityContext struct {
				RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				RunAsUser    int   `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			Containers []container `yaml:"containers"`
		} `yaml:"spec"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		EnvFrom []struct {
			ConfigMapRef *struct {
				Name string `yaml:"name"`
			} `yaml:"configMapRef"`
		} `yaml:"envFrom"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Security       struct {
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
	}
	probe struct {
		HTTPGet struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"`
		} `yaml:"httpGet"`
	}
)

// manifests reads every document of every YAML file under kubernetes/.
func manifests(t *testing.T) map[string][]object {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][]object{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var o object
			// Decode loosely: the structs above name only the fields checked here.
			if err := doc.Decode(&o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" || o.APIVersion == "" {
				t.Errorf("%s: a document without kind or apiVersion", f)
			}
			out[f] = append(out[f], o)
		}
	}
	return out
}

// flagsOf lists the long flags `rollout COMMAND --help` prints: the command's and the global ones.
func flagsOf(t *testing.T, bin, command string) map[string]bool {
	t.Helper()
	out, err := exec.Command(bin, command, "--help").Output()
	if err != nil {
		t.Fatalf("rollout %s --help: %v", command, err)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	if !flags["help"] {
		t.Fatalf("rollout %s --help lists no flags:\n%s", command, out)
	}
	return flags
}

// imageRef matches an image against .goreleaser.yaml: its repository, and a tag one of the tag
// templates makes for some release.
func checkImage(t *testing.T, where, image string, c goreleaserConfig) {
	t.Helper()
	repo, tag, ok := strings.Cut(image, ":")
	if !ok || repo != c.DockersV2[0].Images[0] {
		t.Errorf("%s: image %q is not %s:TAG, the image .goreleaser.yaml publishes", where, image, c.DockersV2[0].Images[0])
		return
	}
	for _, tmpl := range c.DockersV2[0].Tags {
		re := regexp.QuoteMeta(tmpl)
		re = strings.ReplaceAll(re, regexp.QuoteMeta("{{ .Version }}"), `\d+\.\d+\.\d+`)
		re = strings.ReplaceAll(re, regexp.QuoteMeta("{{ .Major }}"), `\d+`)
		if regexp.MustCompile("^" + re + "$").MatchString(tag) {
			return
		}
	}
	t.Errorf("%s: tag %q is none of the tags .goreleaser.yaml publishes (%v)", where, tag, c.DockersV2[0].Tags)
}

// The manifests name only what exists: the released image, flags the binary has, the port the
// daemon listens on and paths it serves.
func TestKubernetesManifests(t *testing.T) {
	c := readGoreleaser(t)
	bin := releaseBinary(t)
	all := manifests(t)

	var deployments, cronjobs int
	for file, objs := range all {
		for _, o := range objs {
			var pods []podTemplate
			switch o.Kind {
			case "Deployment":
				deployments++
				pods = append(pods, o.Spec.Template)
				if o.Spec.Replicas == nil || *o.Spec.Replicas != 1 || o.Spec.Strategy.Type != "Recreate" {
					t.Errorf("%s: the daemon must run as exactly one replica, replaced with Recreate (docs/kubernetes.md)", file)
				}
			case "CronJob":
				cronjobs++
				pods = append(pods, o.Spec.JobTemplate.Spec.Template)
				if o.Spec.Concurrency != "Forbid" || len(strings.Fields(o.Spec.Schedule)) != 5 {
					t.Errorf("%s: schedule %q, concurrencyPolicy %q", file, o.Spec.Schedule, o.Spec.Concurrency)
				}
			case "Kustomization":
				for _, r := range o.Resources {
					if _, ok := all[filepath.Join("kubernetes", r)]; !ok {
						t.Errorf("%s lists %s, which is not a manifest here", file, r)
					}
				}
				if len(o.Resources) != len(all)-1 {
					t.Errorf("%s lists %d resources; there are %d other manifests", file, len(o.Resources), len(all)-1)
				}
			}
			for _, p := range pods {
				if sc := p.Spec.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == 0 {
					t.Errorf("%s: the pod must run as non-root: %+v", file, sc)
				}
				for _, ctr := range p.Spec.Containers {
					where := file + ": container " + ctr.Name
					checkImage(t, where, ctr.Image, c)
					if len(ctr.Command) != 0 {
						t.Errorf("%s: command %v replaces the image's entrypoint (rollout); use args", where, ctr.Command)
					}
					if !ctr.Security.ReadOnlyRootFilesystem || ctr.Security.AllowPrivilegeEscalation == nil || *ctr.Security.AllowPrivilegeEscalation {
						t.Errorf("%s: want a read-only root filesystem and no privilege escalation", where)
					}
					checkArgs(t, where, bin, ctr.Args)
					checkCredentials(t, where, ctr)
					if ctr.Args[0] == "run" {
						checkDaemon(t, where, bin, p, ctr)
					}
				}
			}
		}
	}
	if deployments != 1 || cronjobs != 1 {
		t.Errorf("%d Deployments and %d CronJobs, want one of each", deployments, cronjobs)
	}
}

// checkArgs: the first argument is a command of the binary, every flag one that command takes.
func checkArgs(t *testing.T, where, bin string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no args: the image's default command would run", where)
		return
	}
	flags := flagsOf(t, bin, args[0])
	for _, a := range args[1:] {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if !flags[name] {
			t.Errorf("%s: `rollout %s` has no flag --%s", where, args[0], name)
		}
	}
}

// checkCredentials: GitHub is reached as a GitHub App, whose private key comes from a Secret (never
// from the manifest) and whose id and repository come from the ConfigMap kustomization.yaml generates;
// no one-hour installation token is configured, and the repository is not named in the arguments.
func checkCredentials(t *testing.T, where string, ctr container) {
	t.Helper()
	key := false
	for _, e := range ctr.Env {
		switch e.Name {
		case "GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_APP_ID":
			t.Errorf("%s: %s is set in the manifest; want the App's key from a Secret and the rest from the ConfigMap", where, e.Name)
		case "GITHUB_APP_PRIVATE_KEY":
			key = e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != "" && e.ValueFrom.SecretKeyRef.Key != ""
		}
	}
	if !key {
		t.Errorf("%s: GITHUB_APP_PRIVATE_KEY must come from a Secret (valueFrom.secretKeyRef)", where)
	}
	if len(ctr.EnvFrom) != 1 || ctr.EnvFrom[0].ConfigMapRef == nil || ctr.EnvFrom[0].ConfigMapRef.Name != "rollout" {
		t.Errorf("%s: envFrom %+v, want the ConfigMap rollout that kustomization.yaml generates", where, ctr.EnvFrom)
	}
	for _, a := range ctr.Args {
		if strings.HasPrefix(a, "--repo") {
			t.Errorf("%s: %s names the repository a second time; GITHUB_REPOSITORY from the ConfigMap is the one place", where, a)
		}
	}
}

// listenFlag is the value of --listen in args.
func listenFlag(args []string) string { return flagValue(args, "listen") }

// flagValue is the value of --name in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// checkDaemon: --listen and --health-addr are explicit and on every interface, at ports the container
// names; the scrape annotations name --listen's port and the probes --health-addr's, the probes' own
// listener; the daemon really serves the probe and metrics paths there.
func checkDaemon(t *testing.T, where, bin string, p podTemplate, ctr container) {
	t.Helper()
	host, port, err := net.SplitHostPort(listenFlag(ctr.Args))
	if err != nil || host != "0.0.0.0" {
		t.Errorf("%s: --listen %q: want 0.0.0.0:PORT, since the default listens on loopback only", where, listenFlag(ctr.Args))
		return
	}
	healthHost, healthPort, err := net.SplitHostPort(flagValue(ctr.Args, "health-addr"))
	if err != nil || healthHost != "0.0.0.0" || healthPort == port {
		t.Errorf("%s: --health-addr %q: want 0.0.0.0:PORT on a port of its own, since the default listens on loopback only",
			where, flagValue(ctr.Args, "health-addr"))
		return
	}
	named := map[string]string{}
	for _, cp := range ctr.Ports {
		named[cp.Name] = strconv.Itoa(cp.ContainerPort)
	}
	for _, p := range []string{port, healthPort} {
		if !slices.Contains(mapValues(named), p) {
			t.Errorf("%s: no container port %s (ports %v)", where, p, named)
		}
	}
	var probePaths []string
	for what, pr := range map[string]*probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe} {
		if pr == nil {
			t.Errorf("%s: no %s probe", where, what)
			continue
		}
		pp := pr.HTTPGet.Port.Value
		if n, ok := named[pp]; ok {
			pp = n
		}
		if pp != healthPort {
			t.Errorf("%s: the %s probe's port %q is not the daemon's health port %s", where, what, pr.HTTPGet.Port.Value, healthPort)
		}
		probePaths = append(probePaths, pr.HTTPGet.Path)
	}
	ann := p.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != port {
		t.Errorf("%s: scrape annotations %v, want port %s", where, ann, port)
	}
	metricsPaths := []string{ann["prometheus.io/path"]}

	// The real daemon, on a loopback port, over a real (local) repository: every path answers.
	repo := gittest.NewBare(t, map[string]string{"rollouts/.keep": ""})
	addr, healthAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--repo", repo, "--listen", addr, "--health-addr", healthAddr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	go func() { _, _ = io.Copy(io.Discard, bufio.NewReader(stderr)) }()
	for at, paths := range map[string][]string{addr: metricsPaths, healthAddr: probePaths} {
		for _, path := range paths {
			code := getWhenUp(ctx, t, "http://"+at+path)
			if code != http.StatusOK && !((path == "/healthz" || path == "/readyz") && code == http.StatusServiceUnavailable) {
				t.Errorf("%s: the daemon answers %s on %s with %d", where, path, at, code)
			}
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// freeAddr is a loopback address no one listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// getWhenUp GETs url, retrying while the daemon is not listening yet, and returns the status.
func getWhenUp(ctx context.Context, t *testing.T, url string) int {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: %v", url, err)
		case <-tick.C:
		}
	}
}

// dockerfile is one instruction: its keyword and arguments, with a JSON array decoded.
type instruction struct {
	line    int
	keyword string
	args    string
	exec    []string // the JSON (exec) form, when the arguments are one
}

// parseDockerfile reads the instructions of a Dockerfile: comments and blank lines dropped,
// backslash continuations joined, JSON-array arguments decoded. It knows what this repository's
// Dockerfile may use; heredocs and parser directives are refused rather than misread.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			if strings.HasPrefix(trimmed, "# syntax=") || strings.HasPrefix(trimmed, "# escape=") {
				t.Fatalf("%s:%d: parser directives are not expected", path, i+1)
			}
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.Contains(trimmed, "<<") {
			t.Fatalf("%s:%d: heredocs are not expected", path, i+1)
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		keyword, args, _ := strings.Cut(cur.String(), " ")
		in := instruction{line: start, keyword: strings.ToUpper(keyword), args: strings.TrimSpace(args)}
		if strings.HasPrefix(in.args, "[") {
			if err := json.Unmarshal([]byte(in.args), &in.exec); err != nil {
				t.Fatalf("%s:%d: %s: %v", path, start, in.keyword, err)
			}
		}
		out = append(out, in)
		cur.Reset()
	}
	return out
}

// The image GoReleaser builds from deploy/release.Dockerfile: a static binary on a base with CA
// certificates and no shell, run as non-root. Docker is not available where the tests run, so the file
// is checked here.
func TestDockerfile(t *testing.T) {
	c := readGoreleaser(t)
	d := c.DockersV2[0]
	if d.Dockerfile != "deploy/release.Dockerfile" || !slices.Equal(d.IDs, []string{c.Builds[0].ID}) {
		t.Errorf("dockers_v2: dockerfile %q, ids %v", d.Dockerfile, d.IDs)
	}
	for _, p := range d.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		if goos != "linux" || !slices.Contains(c.Builds[0].Goarch, goarch) {
			t.Errorf("image platform %s is not built", p)
		}
	}
	ins := parseDockerfile(t, filepath.Join(repoRoot, d.Dockerfile))
	by := map[string][]instruction{}
	for _, in := range ins {
		by[in.keyword] = append(by[in.keyword], in)
	}
	// distroless/static: CA certificates, tzdata and /etc/passwd, no shell, no package manager.
	if len(by["FROM"]) != 1 || !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?$`).MatchString(by["FROM"][0].args) {
		t.Errorf("FROM %v: want one stage on gcr.io/distroless/static…:nonroot", by["FROM"])
	}
	if len(by["RUN"]) > 0 {
		t.Errorf("line %d: RUN needs a shell, which the image must not have", by["RUN"][0].line)
	}
	wantSrc := "$TARGETPLATFORM/" + c.Builds[0].Binary
	if len(by["COPY"]) != 1 || strings.Fields(by["COPY"][0].args)[0] != wantSrc || len(by["ARG"]) != 1 || by["ARG"][0].args != "TARGETPLATFORM" {
		t.Errorf("COPY %v: want ARG TARGETPLATFORM and one COPY of %s, where dockers_v2 puts the binary", by["COPY"], wantSrc)
	}
	dest := strings.Fields(by["COPY"][0].args)[1]
	if len(by["USER"]) != 1 {
		t.Fatal("no USER")
	}
	user := strings.Split(by["USER"][0].args, ":")[0]
	if n, err := strconv.Atoi(user); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid, so that Kubernetes' runAsNonRoot can verify it", by["USER"][0].args)
	}
	for _, objs := range manifests(t) {
		for _, o := range objs {
			for _, p := range []podTemplate{o.Spec.Template, o.Spec.JobTemplate.Spec.Template} {
				if p.Spec.SecurityContext.RunAsUser != 0 && strconv.Itoa(p.Spec.SecurityContext.RunAsUser) != user {
					t.Errorf("%s runs as uid %d, the image as %s", o.Metadata.Name, p.Spec.SecurityContext.RunAsUser, user)
				}
			}
		}
	}
	if len(by["ENTRYPOINT"]) != 1 || !slices.Equal(by["ENTRYPOINT"][0].exec, []string{dest}) {
		t.Errorf("ENTRYPOINT %v: want the exec form [%q] (the shell form needs a shell)", by["ENTRYPOINT"], dest)
	}
	if len(by["CMD"]) != 1 || by["CMD"][0].exec == nil {
		t.Fatalf("CMD %v: want the exec form", by["CMD"])
	}
	checkArgs(t, "Dockerfile CMD", releaseBinary(t), by["CMD"][0].exec)
	_, port, err := net.SplitHostPort(listenFlag(by["CMD"][0].exec))
	if err != nil || len(by["EXPOSE"]) != 1 || by["EXPOSE"][0].args != port {
		t.Errorf("EXPOSE %v and CMD %v: want the port --listen names (%v)", by["EXPOSE"], by["CMD"][0].exec, err)
	}
}
