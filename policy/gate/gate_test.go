package gate

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rollout-dev/rollout/rollouts"
)

func baseSpec() *rollouts.Spec {
	return &rollouts.Spec{
		Name:   "summarizer",
		Stable: rollouts.Variant{Model: "claude-sonnet-4-5-20260301", Prompt: "v3"},
		Canary: &rollouts.Variant{Model: "claude-sonnet-4-5-20260415", Prompt: "v3"},
		Stages: []rollouts.Stage{{Shadow: 100}, {Weight: 5}, {Weight: 25}},
	}
}

// gatedSpec is a rollout with a gate on stage 0.
func gatedSpec(g rollouts.Gate) *rollouts.Spec {
	s := baseSpec()
	s.Stages[0].Gate = &g
	return s
}

func TestEvalsGate(t *testing.T) {
	repo := fstest.MapFS{
		"evals/good.json":      {Data: []byte(`{"cases":[{"id":"a","stable":true,"canary":true},{"id":"b","stable":false,"canary":true},{"id":"c","stable":false,"canary":false}]}`)},
		"evals/regressed.json": {Data: []byte(`{"cases":[{"id":"refund-1","stable":true,"canary":false},{"id":"b","stable":true,"canary":true},{"id":"c","stable":true,"canary":true}]}`)},
		"evals/broken.json":    {Data: []byte(`{"cases":[{"id":"a","stable":tru`)},
		"evals/empty.json":     {Data: []byte(`{"cases":[]}`)},
		"evals/partial.json":   {Data: []byte(`{"cases":[{"id":"a","stable":true}]}`)},
	}
	tests := []struct {
		name       string
		gate       rollouts.Gate
		wantOpen   bool
		wantReason string
	}{
		{"pass rate reached", rollouts.Gate{Evals: "evals/good.json", MinPassRate: 0.6}, true, "canary passes 2 of 3 cases (66.7%)"},
		{"pass rate missed", rollouts.Gate{Evals: "evals/good.json", MinPassRate: 0.95}, false, "below minPassRate 95%"},
		{"no regressions holds", rollouts.Gate{Evals: "evals/good.json", NoRegressions: true}, true, "2 of 3"},
		{"a regression shuts", rollouts.Gate{Evals: "evals/regressed.json", NoRegressions: true}, false, "1 regressed from stable: refund-1"},
		{"regressions allowed without noRegressions", rollouts.Gate{Evals: "evals/regressed.json", MinPassRate: 0.5}, true, "2 of 3"},
		{"a leading slash or ./ is the repository root", rollouts.Gate{Evals: "./evals/good.json"}, true, "2 of 3"},
		{"missing file shuts", rollouts.Gate{Evals: "evals/none.json"}, false, "evals evals/none.json: file not found"},
		{"malformed file shuts", rollouts.Gate{Evals: "evals/broken.json"}, false, "not an eval results file"},
		{"no cases shuts", rollouts.Gate{Evals: "evals/empty.json"}, false, "no cases"},
		{"a case without a canary result shuts", rollouts.Gate{Evals: "evals/partial.json"}, false, "case a has no stable or canary result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Keeper{Repo: repo}
			res := g.Check(context.Background(), gatedSpec(tt.gate), 0)
			if res.Open != tt.wantOpen || res.Stage != 0 || !strings.Contains(res.Reason, tt.wantReason) {
				t.Errorf("got %+v, want open=%v with %q", res, tt.wantOpen, tt.wantReason)
			}
		})
	}
	if res := (&Keeper{Repo: repo}).Check(context.Background(), baseSpec(), 1); !res.Open {
		t.Errorf("a stage without a gate is shut: %+v", res)
	}
	if res := (&Keeper{Repo: repo}).Check(context.Background(), baseSpec(), 7); res.Open {
		t.Errorf("a stage out of range is open: %+v", res)
	}
}

func TestWebhookGate(t *testing.T) {
	type call struct {
		method, contentType string
		body                map[string]any
	}
	var calls []call
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		calls = append(calls, call{r.Method, r.Header.Get("Content-Type"), body})
		switch r.URL.Path {
		case "/ok/s3cret-token":
			w.WriteHeader(http.StatusNoContent)
		case "/deny/s3cret-token":
			http.Error(w, "blocked: eval suite red for "+r.URL.String(), http.StatusForbidden)
		case "/slow/s3cret-token":
			<-release
		}
	}))
	defer srv.Close()
	defer close(release)

	env := map[string]string{"GATE_OK": srv.URL + "/ok/s3cret-token", "GATE_DENY": srv.URL + "/deny/s3cret-token",
		"GATE_SLOW": srv.URL + "/slow/s3cret-token"}
	g := &Keeper{Client: srv.Client(), Timeout: 200 * time.Millisecond, Getenv: func(k string) string { return env[k] }}

	res := g.Check(context.Background(), gatedSpec(rollouts.Gate{Webhook: "env:GATE_OK"}), 0)
	if !res.Open || res.Reason != "webhook answered 204 No Content" {
		t.Errorf("2xx: %+v", res)
	}
	want := call{"POST", "application/json", map[string]any{
		"rollout": "summarizer", "stage": float64(0), "weight": float64(0),
		"stable": map[string]any{"model": "claude-sonnet-4-5-20260301", "prompt": "v3"},
		"canary": map[string]any{"model": "claude-sonnet-4-5-20260415", "prompt": "v3"},
	}}
	if len(calls) != 1 || !reflect.DeepEqual(calls[0], want) {
		t.Errorf("webhook got %+v, want %+v", calls, want)
	}

	// A literal URL works too.
	if res := g.Check(context.Background(), gatedSpec(rollouts.Gate{Webhook: srv.URL + "/ok/s3cret-token"}), 0); !res.Open {
		t.Errorf("literal URL: %+v", res)
	}

	for _, tc := range []struct{ name, ref, want string }{
		{"non-2xx shuts with the answer", "env:GATE_DENY", "webhook answered 403 Forbidden: blocked: eval suite red for <redacted>"},
		{"no answer in time shuts", "env:GATE_SLOW", "webhook: no answer within 200ms"},
		{"unset variable shuts", "env:GATE_NONE", "webhook: environment variable GATE_NONE is not set"},
		{"refused connection shuts", "http://127.0.0.1:1/s3cret-token", "webhook: dial: connect: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := g.Check(context.Background(), gatedSpec(rollouts.Gate{Webhook: tc.ref}), 0)
			if res.Open || res.Reason != tc.want {
				t.Errorf("got %+v, want shut with %q", res, tc.want)
			}
			if strings.Contains(res.Reason, "s3cret") {
				t.Errorf("the reason leaks the webhook URL: %q", res.Reason)
			}
		})
	}
}
