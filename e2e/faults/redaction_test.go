package faults

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/policy/evidence"
	gates "github.com/rollout-dev/rollout/policy/gate"
	"github.com/rollout-dev/rollout/rollouts"
)

// runRolloutIn runs the rollout command in dir with an empty environment and returns its exit code
// and everything it printed.
func runRolloutIn(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(rolloutBin(t), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "SSH_AUTH_SOCK="}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("rollout %v: %v", args, err)
	}
	return 0, out.String()
}

// TestValidateNeverFollowsALinkOutOfTheRepository: a spec in the repository is a symbolic link to a
// file outside it that holds a token. `rollout validate --format github` reports the file without
// reading it, so no annotation can quote the token.
func TestValidateNeverFollowsALinkOutOfTheRepository(t *testing.T) {
	token := "ghp_LEAKEDtoken0123456789abcdefABCDEF0123"
	outside := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(outside, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, "rollouts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "rollouts/good.yaml"), []byte(progressing("good", "hold")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(repo, "rollouts/evil.yaml")); err != nil {
		t.Fatal(err)
	}
	// A link that stays inside the repository is followed as before.
	if err := os.Symlink("good.yaml", filepath.Join(repo, "rollouts/alias.yml")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", "--format", "github"}, {"validate", "rollouts/evil.yaml"}} {
		code, out := runRolloutIn(t, repo, args...)
		if strings.Contains(out, token[:8]) || strings.Contains(out, token[20:]) {
			t.Errorf("rollout %v printed the target's content:\n%s", args, out)
		}
		if code != 1 || !strings.Contains(out, "evil.yaml") || !strings.Contains(out, "symbolic link") {
			t.Errorf("rollout %v exited %d:\n%s", args, code, out)
		}
	}
}

// TestSchemelessRemoteNeverPrintsItsPassword: a remote written without a scheme, with a token as the
// password of its user, x-access-token:TOKEN@host:org/repo.git, cannot be reached; the error names the
// remote without the token.
func TestSchemelessRemoteNeverPrintsItsPassword(t *testing.T) {
	token := "ghs_SCHEMELESSsecret0123456789"
	code, out := runRolloutIn(t, t.TempDir(), "status", "--repo", "x-access-token:"+token+"@127.0.0.1:org/repo.git")
	if code == 0 || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("status exited %d:\n%s", code, out)
	}
	if strings.Contains(out, token) || strings.Contains(out, token[4:16]) {
		t.Errorf("the token was printed:\n%s", out)
	}
}

// TestGateAnswersThatEchoTheURLAreRedacted: a gate webhook whose URL carries secrets in a path segment
// and in its query answers 403 quoting them one at a time. The reasons (what `reconcile -o json`
// prints), the error and the evidence (what the plan comment and the pull request show) hold neither.
func TestGateAnswersThatEchoTheURLAreRedacted(t *testing.T) {
	const segment, query = "PATHsecretSEGMENT42", "QUERYsecretTOKEN42"
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "token %s is not valid for hook %s (auth %s)", r.URL.Query().Get("token"), strings.Split(r.URL.Path, "/")[2],
			base64.StdEncoding.EncodeToString([]byte(query)))
	}))
	defer gate.Close()
	gateURL := gate.URL + "/hooks/" + segment + "/run?token=" + query

	spec := strings.Replace(progressing("summarizer", "hold"), "  - {weight: 25, minDuration: 1h, minRequests: 100}",
		"  - {weight: 25, minDuration: 1h, minRequests: 100, gate: {webhook: env:ROLLOUT_GATE_URL}}", 1)
	if _, problems := rollouts.Parse("s.yaml", []byte(spec)); len(problems) > 0 {
		t.Fatalf("spec: %v", problems)
	}
	w := newWorld(t, map[string]string{"rollouts/summarizer.yaml": spec}, false)
	w.writeTraffic("summarizer", 0.01)
	loop := w.localLoop()
	loop.Gates = func(ctx context.Context, tree fs.FS, spec *rollouts.Spec, stage int) policy.GateResult {
		g := &gates.Keeper{Repo: tree, Client: gate.Client(), Getenv: func(name string) string {
			if name == "ROLLOUT_GATE_URL" {
				return gateURL
			}
			return ""
		}}
		return g.Check(ctx, spec, stage)
	}
	rep, err := loop.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := result(t, rep, "summarizer")
	var shown strings.Builder
	fmt.Fprintf(&shown, "%s\n%v\n", strings.Join(res.Reasons, "\n"), res.Err)
	if res.Evidence != nil {
		shown.WriteString(evidence.Markdown(*res.Evidence))
	}
	if !strings.Contains(shown.String(), "403") {
		t.Fatalf("the gate's answer is not in the result; the check proves nothing:\n%s", shown.String())
	}
	for _, secret := range []string{segment, query, gateURL} {
		if strings.Contains(shown.String(), secret) {
			t.Errorf("%q reached the output:\n%s", secret, shown.String())
		}
	}
	if res.Decision == policy.Advance {
		t.Errorf("a shut gate advanced: %+v", res)
	}
}
