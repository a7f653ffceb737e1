package jsonl

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strconv"
	"time"
)

// ArmProfile describes the traffic of one arm for Synthesize. Rates are probabilities in [0, 1].
type ArmProfile struct {
	Model  string
	Prompt string
	// ErrorRate and RefusalRate are per-request probabilities.
	ErrorRate   float64
	RefusalRate float64
	// LatencyMedianMs and LatencySigma shape a lognormal latency: median e^mu, log-space spread sigma.
	LatencyMedianMs float64
	LatencySigma    float64
	// InputTokensMean and OutputTokensMean are the means of exponential token counts (at least 1).
	InputTokensMean  float64
	OutputTokensMean float64
	// CostPerInputToken and CostPerOutputToken price a request in USD.
	CostPerInputToken  float64
	CostPerOutputToken float64
	// QualityMean and QualitySD shape a normal quality score clamped to [0, 1]; QualityShare is the
	// share of requests that carry a score (graded ones).
	QualityMean  float64
	QualitySD    float64
	QualityShare float64
	// FeedbackShare is the share of requests with user feedback; NegativeShare of those are -1,
	// PositiveShare +1, the rest 0.
	FeedbackShare float64
	NegativeShare float64
	PositiveShare float64
}

// SynthConfig describes synthetic traffic of one rollout.
type SynthConfig struct {
	Rollout string
	// Start is the ts of the first record; records are spaced Interval apart.
	Start    time.Time
	Interval time.Duration
	// Requests is the number of records written (shadow copies included).
	Requests int
	// CanaryShare is the share of users routed to the canary, ShadowShare the share of stable requests
	// mirrored to the canary as an extra shadow record.
	CanaryShare float64
	ShadowShare float64
	// Users is the number of distinct keys (u-0 … u-N-1); 1000 when zero.
	Users  int
	Stable ArmProfile
	Canary ArmProfile
}

// ErrBadSynthConfig is returned for a configuration Synthesize cannot honour.
var ErrBadSynthConfig = errors.New("bad synthetic traffic config")

// Synthesize writes cfg.Requests realistic request records as JSON Lines to w. The output depends only
// on cfg and r's seed, so tests and demos get the same traffic every run.
func Synthesize(w io.Writer, cfg SynthConfig, r *rand.Rand) error {
	if cfg.Rollout == "" || cfg.Start.IsZero() || cfg.Requests < 0 || r == nil {
		return fmt.Errorf("%w: need a rollout, a start time, a non-negative request count and a rand", ErrBadSynthConfig)
	}
	users := cfg.Users
	if users <= 0 {
		users = 1000
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	ts := cfg.Start.UTC()
	for written := 0; written < cfg.Requests; {
		key := r.Intn(users)
		variant, prof := variantStable, &cfg.Stable
		if r.Float64() < cfg.CanaryShare {
			variant, prof = variantCanary, &cfg.Canary
		}
		line = appendSynthRecord(line[:0], ts, cfg.Rollout, variant, false, key, prof, r)
		written++
		if variant == variantStable && written < cfg.Requests && r.Float64() < cfg.ShadowShare {
			line = appendSynthRecord(line, ts, cfg.Rollout, variantCanary, true, key, &cfg.Canary, r)
			written++
		}
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("write synthetic records: %w", err)
		}
		ts = ts.Add(cfg.Interval)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write synthetic records: %w", err)
	}
	return nil
}

func appendSynthRecord(b []byte, ts time.Time, rollout, variant string, shadow bool, key int, p *ArmProfile, r *rand.Rand) []byte {
	b = append(b, `{"ts":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","rollout":`...)
	b = appendJSONString(b, rollout)
	b = append(b, `,"variant":"`...)
	b = append(b, variant...)
	b = append(b, '"')
	if shadow {
		b = append(b, `,"shadow":true`...)
	}
	b = append(b, `,"key":"u-`...)
	b = strconv.AppendInt(b, int64(key), 10)
	b = append(b, '"')
	if p.Model != "" {
		b = append(b, `,"model":`...)
		b = appendJSONString(b, p.Model)
	}
	if p.Prompt != "" {
		b = append(b, `,"prompt":`...)
		b = appendJSONString(b, p.Prompt)
	}
	isErr := r.Float64() < p.ErrorRate
	refusal := !isErr && r.Float64() < p.RefusalRate
	latency := p.LatencyMedianMs * math.Exp(p.LatencySigma*r.NormFloat64())
	in := math.Max(1, math.Round(r.ExpFloat64()*p.InputTokensMean))
	out := 0.0
	if !isErr {
		out = math.Max(1, math.Round(r.ExpFloat64()*p.OutputTokensMean))
	}
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, math.Round(latency*10)/10, 'f', -1, 64)
	b = append(b, `,"error":`...)
	b = strconv.AppendBool(b, isErr)
	b = append(b, `,"refusal":`...)
	b = strconv.AppendBool(b, refusal)
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendFloat(b, in, 'f', -1, 64)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendFloat(b, out, 'f', -1, 64)
	b = append(b, `,"cost_usd":`...)
	b = strconv.AppendFloat(b, in*p.CostPerInputToken+out*p.CostPerOutputToken, 'g', 6, 64)
	if !isErr && r.Float64() < p.QualityShare {
		q := math.Min(1, math.Max(0, p.QualityMean+p.QualitySD*r.NormFloat64()))
		b = append(b, `,"quality":`...)
		b = strconv.AppendFloat(b, math.Round(q*1000)/1000, 'f', -1, 64)
	}
	if !isErr && r.Float64() < p.FeedbackShare {
		fb := 0
		switch u := r.Float64(); {
		case u < p.NegativeShare:
			fb = -1
		case u < p.NegativeShare+p.PositiveShare:
			fb = 1
		}
		b = append(b, `,"feedback":`...)
		b = strconv.AppendInt(b, int64(fb), 10)
	}
	return append(b, "}\n"...)
}

// DefaultProfile is a plausible arm: 1% errors, 2% refusals, ~800 ms median latency, ~1,200 input and
// ~300 output tokens, quality around 0.85 on a fifth of the requests, feedback on a tenth.
func DefaultProfile(model string) ArmProfile {
	return ArmProfile{
		Model: model, Prompt: "v3",
		ErrorRate: 0.01, RefusalRate: 0.02,
		LatencyMedianMs: 800, LatencySigma: 0.5,
		InputTokensMean: 1200, OutputTokensMean: 300,
		CostPerInputToken: 3e-6, CostPerOutputToken: 15e-6,
		QualityMean: 0.85, QualitySD: 0.08, QualityShare: 0.2,
		FeedbackShare: 0.1, NegativeShare: 0.1, PositiveShare: 0.6,
	}
}

// appendJSONString appends s as a JSON string; plain ASCII is copied, anything else goes through
// encoding/json so that the escapes are JSON's, not Go's.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always marshals
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
