package jsonl

import (
	"bytes"
	"context"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

var synthStart = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)

func synthConfig(requests int) SynthConfig {
	canary := DefaultProfile("model-new")
	canary.ErrorRate = 0.03
	canary.LatencyMedianMs = 1000
	canary.QualityMean = 0.80
	return SynthConfig{
		Rollout: "summarizer", Start: synthStart, Interval: 100 * time.Millisecond, Requests: requests,
		CanaryShare: 0.25, ShadowShare: 0.1,
		Stable: DefaultProfile("model-old"), Canary: canary,
	}
}

func TestSynthesizeDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	cfg := synthConfig(500)
	for _, w := range []struct {
		buf  *bytes.Buffer
		seed int64
	}{{&a, 7}, {&b, 7}, {&c, 8}} {
		if err := Synthesize(w.buf, cfg, rand.New(rand.NewSource(w.seed))); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("same seed, different output")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("different seeds, same output")
	}
	if n := bytes.Count(a.Bytes(), []byte("\n")); n != 500 {
		t.Errorf("%d records, want 500", n)
	}
	if err := Synthesize(&a, SynthConfig{}, rand.New(rand.NewSource(1))); err == nil {
		t.Error("empty config: no error")
	}
}

// TestSynthesizeRates checks that the source recovers the configured traffic from synthetic records, to
// within sampling error (fixed seed, 200,000 records).
func TestSynthesizeRates(t *testing.T) {
	const n = 200_000
	cfg := synthConfig(n)
	var buf bytes.Buffer
	if err := Synthesize(&buf, cfg, rand.New(rand.NewSource(42))); err != nil {
		t.Fatal(err)
	}
	st, err := (&Source{}).Read(context.Background(), &buf, policy.Query{Rollout: "summarizer"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 0 || st.Stable.Requests+st.Canary.Requests != n {
		t.Fatalf("%d malformed, %d records; want 0, %d", st.Malformed, st.Stable.Requests+st.Canary.Requests, n)
	}
	// Canary requests: a CanaryShare of users plus shadow copies of ShadowShare of stable requests.
	users := float64(n) / (1 + (1-cfg.CanaryShare)*cfg.ShadowShare)
	wantShadow := users * (1 - cfg.CanaryShare) * cfg.ShadowShare
	checkRel(t, "shadow", float64(st.Shadow), wantShadow, 0.05)
	checkRel(t, "canary", float64(st.Canary.Requests), users*cfg.CanaryShare+wantShadow, 0.02)

	for _, arm := range []struct {
		name  string
		stats policy.ArmStats
		prof  ArmProfile
	}{{"stable", st.Stable, cfg.Stable}, {"canary", st.Canary, cfg.Canary}} {
		m := arm.stats.Metrics
		mean := func(name string) float64 { return m[name].Sum / float64(m[name].N) }
		checkRel(t, arm.name+" error rate", mean(ErrorRate), arm.prof.ErrorRate, 0.15)
		checkRel(t, arm.name+" refusal rate", mean(RefusalRate), arm.prof.RefusalRate*(1-arm.prof.ErrorRate), 0.15)
		checkRel(t, arm.name+" p50", m[LatencyP50Ms].Dist.Quantile(0.5), arm.prof.LatencyMedianMs, 0.03)
		// lognormal p95 = median·e^(1.645σ)
		checkRel(t, arm.name+" p95", m[LatencyP95Ms].Dist.Quantile(0.95), arm.prof.LatencyMedianMs*math.Exp(1.645*arm.prof.LatencySigma), 0.04)
		checkRel(t, arm.name+" quality", mean(QualityScore), arm.prof.QualityMean, 0.02)
		checkRel(t, arm.name+" graded share", float64(m[QualityScore].N)/float64(arm.stats.Requests), arm.prof.QualityShare*(1-arm.prof.ErrorRate), 0.05)
		checkRel(t, arm.name+" input tokens", mean(InputTokensPerRequest), arm.prof.InputTokensMean, 0.03)
		checkRel(t, arm.name+" negative feedback", mean(NegativeFeedbackRate), arm.prof.NegativeShare, 0.2)
		if m[CostPerRequest].N != arm.stats.Requests {
			t.Errorf("%s: %d costs for %d requests", arm.name, m[CostPerRequest].N, arm.stats.Requests)
		}
	}
}

func checkRel(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol*want {
		t.Errorf("%s = %.4g, want %.4g ±%.0f%%", what, got, want, tol*100)
	}
}
