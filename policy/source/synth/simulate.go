package synth

import (
	"bufio"
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
	"github.com/rollout-dev/rollout/rollouts/record"
)

// Options shapes the traffic Simulate draws for one rollout's application. The zero value of a field
// means "none" unless its comment names a default.
type Options struct {
	// Seed makes the traffic reproducible: the same spec, options and seed give the same requests, and
	// without a daily cycle the same requests shifted in time whatever From is (a span simulated now
	// and the same span simulated an hour later differ only in their timestamps).
	Seed uint64
	// Span tells apart consecutive spans simulated with one seed: their users are the same (a user's
	// traits depend on Seed and the key only), their draws independent.
	Span uint64
	// From and To bound the span simulated, [From, To).
	From, To time.Time
	// PerHour is the mean number of user requests per hour (shadow copies and late feedback come on
	// top); 1000 when zero.
	PerHour float64
	// Users is the number of users, keys KeyPrefix0 … KeyPrefix(Users-1); 1000 when zero. Keys, when
	// set, lists the keys instead.
	Users     int
	KeyPrefix string // "user-" when empty
	Keys      []string
	// Keyless: the records carry no key (the application assigns by key but does not record it), as
	// a source that cannot group a user's requests sees them.
	Keyless bool
	// Activity is the log-space spread of the users' request rates: with 1 a heavy user sends several
	// times the requests of a light one (lognormal); 0 gives every user the same rate.
	Activity float64
	// DailyAmplitude in [0, 1) modulates the request rate over the day, peaking at 15:00 UTC:
	// rate × (1 + A·cos(2π(h-15)/24)).
	DailyAmplitude float64
	// CanarySince is when the spec's current canary weight took effect (the stage start); From when
	// zero. DeployLag delays the canary after it: until CanarySince+DeployLag the users the spec
	// sends to the canary are served (and recorded) by stable, as when a deploy rolls out slowly.
	CanarySince time.Time
	DeployLag   time.Duration
	// PreviousWeight, when set, is the weight the application still routes at until
	// CanarySince+DeployLag (the previous stage's), as one that picks up a new weight late; without it
	// nobody is on the canary until then (a first deploy).
	PreviousWeight int
	// BadUsers is the share of users who fail far more than the others, at BadUserErrorRate (on both
	// arms): the clustered traffic that makes per-request variances wrong.
	BadUsers         float64
	BadUserErrorRate float64
	// UserLatencySigma is the log-space spread of a per-user latency factor (long prompts, big
	// documents): every request of one user is that much slower or faster.
	UserLatencySigma float64
	// Stable and Canary are how each arm behaves (DefaultProfile is a plausible one).
	Stable, Canary Profile
	// Regressions change the canary's behaviour from a time or a weight on; the last one that applies
	// wins.
	Regressions []Regression
	// LateFeedback is the share of feedback and quality scores that arrive as a separate late record
	// (request_id, ts, feedback/quality) LateDelay on average after the request (exponential).
	LateFeedback float64
	LateDelay    time.Duration
	// NegativeLateDelay is the mean delay of a late record whose feedback is negative (LateDelay when
	// zero): unhappy users often give their thumbs first. A Profile's own delays override both.
	NegativeLateDelay time.Duration
	// Bots are a few keys that send a large share of all requests (scripts, integrations, load
	// tests), each with error rates of its own on each arm: the traffic where a handful of keys
	// dominate a per-key comparison.
	Bots []Bot
	// Segments gives every user one value of each attribute (language, tenant), drawn by the given
	// shares from the seed and the key only, written in each request's attrs: the traffic that
	// analysis.segments splits.
	Segments []SegmentShares
}

// SegmentShares is how the users spread over the values of one attribute.
type SegmentShares struct {
	Attr   string
	Values []string
	// Shares are the values' shares of the users, summing to 1 (equal shares when empty).
	Shares []float64
}

// Bot is one dominant key.
type Bot struct {
	Key string
	// Share is the bot's share of all user requests, in (0, 1); the bots' shares sum below 1.
	Share float64
	// StableErrorRate and CanaryErrorRate are the bot's error rates when served by each arm.
	StableErrorRate, CanaryErrorRate float64
}

// Regression replaces the canary's profile from a point on: the bug that shows only under load, or
// after a provider's change.
type Regression struct {
	// From: the regression applies to requests at or after this time (zero: from the start).
	From time.Time
	// AtWeight: the regression applies only while the spec's traffic weight is at least this (0: any).
	AtWeight int
	// Segment, when set, confines the regression to the requests of users in that segment: the
	// regression a pooled comparison dilutes.
	Segment policy.Attr
	Canary  Profile
}

// ErrBadOptions is returned for options Simulate cannot honour.
var ErrBadOptions = errors.New("bad synthetic traffic options")

// user is one simulated user: their key and the traits every request of theirs shares.
type user struct {
	key           string
	attrs         map[string]string
	bot           *Bot
	badErrorRate  float64 // the error rate of a user out of luck; 0 for the others
	latencyFactor float64
}

// Simulate draws the requests that spec's application serves over [opts.From, opts.To) and calls emit
// for each, in time order (a late feedback record is emitted when its time comes, after its request;
// those due after To come last). Users are routed by the spec's own rollouts.Assigner: its weight,
// salt, include and exclude globs and shadow percent, exactly as the application would. Every request
// carries a request_id. Simulate stops at emit's first error and returns it.
//
// The traffic depends only on spec, opts and opts.Seed, and not on the wall clock: the draws depend on
// the seed and Span, the timestamps are From plus the drawn gaps, and only a daily cycle reads the hour
// of day. A user's traits (activity, bad luck, latency factor) depend only on the seed and the key, so
// consecutive spans simulated with the same seed and different Spans see the same users.
func Simulate(spec *rollouts.Spec, opts Options, emit func(Request) error) error {
	if spec == nil || opts.From.IsZero() || !opts.To.After(opts.From) {
		return fmt.Errorf("%w: need a spec and a span From < To", ErrBadOptions)
	}
	if opts.DailyAmplitude < 0 || opts.DailyAmplitude >= 1 || opts.BadUsers < 0 || opts.BadUsers > 1 ||
		opts.LateFeedback < 0 || opts.LateFeedback > 1 || opts.PerHour < 0 || botShare(opts.Bots) >= 1 {
		return fmt.Errorf("%w: shares and amplitude must lie in [0, 1), the rate be non-negative", ErrBadOptions)
	}
	perHour := opts.PerHour
	if perHour == 0 {
		perHour = 1000
	}
	users, cumulative := population(opts)
	assigner := spec.Assigner()
	var previous *rollouts.Assigner
	if opts.PreviousWeight > 0 {
		prev := *spec
		prev.Traffic.Weight = opts.PreviousWeight
		previous = prev.Assigner()
	}
	r := rand.New(rand.NewPCG(opts.Seed, opts.Span^0x7370616e))
	canarySince := opts.CanarySince
	if canarySince.IsZero() {
		canarySince = opts.From
	}
	canaryLive := canarySince.Add(opts.DeployLag)
	var (
		late lateQueue
		seq  int
	)
	// Requests arrive as a Poisson process whose rate follows the day: thinning a process at the peak
	// rate keeps every arrival independent and the count right.
	peak := perHour * (1 + opts.DailyAmplitude) / float64(time.Hour)
	for at := opts.From; ; {
		at = at.Add(time.Duration(r.ExpFloat64() / peak))
		if !at.Before(opts.To) {
			break
		}
		if opts.DailyAmplitude > 0 && r.Float64()*(1+opts.DailyAmplitude) > dailyRate(at, opts.DailyAmplitude) {
			continue
		}
		at = at.Truncate(time.Millisecond) // as every store keeps them
		for len(late) > 0 && !late[0].TS.After(at) {
			if err := emit(heap.Pop(&late).(Request)); err != nil {
				return err
			}
		}
		u := &users[sort.SearchFloat64s(cumulative, r.Float64()*cumulative[len(cumulative)-1])]
		choice := assigner.Choose(u.key)
		live := !at.Before(canaryLive)
		if !live && previous != nil {
			choice, live = previous.Choose(u.key), true
		}
		arm, profile := policy.Stable, opts.Stable
		if choice.Arm == rollouts.CanaryArm && live {
			arm, profile = policy.Canary, canaryProfile(spec, opts, at, u)
		}
		seq++
		req := draw(r, profile, u, at, spec.Name, arm, requestID(opts.Seed, at, seq))
		if opts.Keyless {
			req.Key = ""
		}
		if err := split(r, opts, profile, &req, &late, emit); err != nil {
			return err
		}
		if arm == policy.Canary {
			judgePair(r, profile, req, &late)
		}
		if arm == policy.Stable && !at.Before(canaryLive) && assigner.Shadow(r) {
			seq++
			cp := canaryProfile(spec, opts, at, u)
			mirror := draw(r, cp, u, at, spec.Name, policy.Canary, requestID(opts.Seed, at, seq))
			mirror.Shadow, mirror.Feedback = true, nil // no user saw the mirrored answer
			if opts.Keyless {
				mirror.Key = ""
			}
			if err := split(r, opts, cp, &mirror, &late, emit); err != nil {
				return err
			}
			judgePair(r, cp, mirror, &late)
		}
	}
	for len(late) > 0 {
		if err := emit(heap.Pop(&late).(Request)); err != nil {
			return err
		}
	}
	return nil
}

// split emits req, moving its feedback and quality into a late record with probability
// opts.LateFeedback, due after an exponential delay whose mean is p's (or opts') late delay.
func split(r *rand.Rand, opts Options, p Profile, req *Request, late *lateQueue, emit func(Request) error) error {
	if opts.LateFeedback > 0 && (req.Feedback != nil || req.Quality != nil) && r.Float64() < opts.LateFeedback {
		mean := cmp.Or(p.LateDelay, opts.LateDelay)
		if req.Feedback != nil && *req.Feedback < 0 {
			mean = cmp.Or(p.NegativeLateDelay, opts.NegativeLateDelay, mean)
		}
		delay := time.Duration(r.ExpFloat64() * float64(mean)).Truncate(time.Millisecond)
		heap.Push(late, Request{TS: req.TS.Add(max(delay, time.Millisecond)), Rollout: req.Rollout, RequestID: req.RequestID,
			Late: true, Feedback: req.Feedback, Quality: req.Quality})
		req.Feedback, req.Quality = nil, nil
	}
	return emit(*req)
}

// judgePair queues, with probability p.PairwiseShare, a late pairwise verdict on the canary request
// req: canary with probability p.WinRate, tie with p.TieRate, else stable.
func judgePair(r *rand.Rand, p Profile, req Request, late *lateQueue) {
	if p.PairwiseShare <= 0 || r.Float64() >= p.PairwiseShare {
		return
	}
	preferred := "stable"
	switch v := r.Float64(); {
	case v < p.WinRate:
		preferred = "canary"
	case v < p.WinRate+p.TieRate:
		preferred = "tie"
	}
	delay := time.Duration(r.ExpFloat64() * float64(p.PairwiseDelay)).Truncate(time.Millisecond)
	heap.Push(late, Request{TS: req.TS.Add(max(delay, time.Millisecond)), Rollout: req.Rollout, RequestID: req.RequestID,
		Late: true, Preferred: preferred})
}

// dailyRate is the relative request rate at t: 1 + a·cos(2π(h-15)/24).
func dailyRate(t time.Time, a float64) float64 {
	h := float64(t.UTC().Hour()) + float64(t.UTC().Minute())/60
	return 1 + a*math.Cos(2*math.Pi*(h-15)/24)
}

// canaryProfile is how the canary behaves for u at t: opts.Canary, or the last regression that
// applies.
func canaryProfile(spec *rollouts.Spec, opts Options, t time.Time, u *user) Profile {
	p := opts.Canary
	for _, reg := range opts.Regressions {
		if reg.Segment.Name != "" && u.attrs[reg.Segment.Name] != reg.Segment.Value {
			continue
		}
		if (reg.From.IsZero() || !t.Before(reg.From)) && (reg.AtWeight == 0 || spec.Traffic.Weight >= reg.AtWeight) {
			p = reg.Canary
		}
	}
	return p
}

// population returns the users and the cumulative sums of their activity, for drawing the user of each
// request in proportion to how active they are.
func population(opts Options) ([]user, []float64) {
	keys := opts.Keys
	if len(keys) == 0 {
		n := opts.Users
		if n <= 0 {
			n = 1000
		}
		prefix := opts.KeyPrefix
		if prefix == "" {
			prefix = "user-"
		}
		keys = make([]string, n)
		for i := range keys {
			keys[i] = prefix + strconv.Itoa(i)
		}
	}
	users := make([]user, len(keys))
	cumulative := make([]float64, len(keys))
	total := 0.0
	for i, k := range keys {
		// A user's traits depend on the seed and the key only.
		r := rand.New(rand.NewPCG(opts.Seed^0x75736572, uint64(policy.KeyBucket(k))<<32|uint64(fnv32(k))))
		users[i] = user{key: k, latencyFactor: math.Exp(opts.UserLatencySigma * r.NormFloat64())}
		if r.Float64() < opts.BadUsers {
			users[i].badErrorRate = opts.BadUserErrorRate
		}
		users[i].attrs = keyAttrs(opts.Seed, k, opts.Segments)
		total += math.Exp(opts.Activity*r.NormFloat64() - opts.Activity*opts.Activity/2)
		cumulative[i] = total
	}
	// Each bot weighs its share of the whole: w_b = share_b · total / (1 - Σ shares).
	others := total / (1 - botShare(opts.Bots))
	for i := range opts.Bots {
		b := &opts.Bots[i]
		users = append(users, user{key: b.Key, bot: b, latencyFactor: 1})
		total += b.Share * others
		cumulative = append(cumulative, total)
	}
	return users, cumulative
}

// keyAttrs draws the segment values of key from the seed and the key only (a stream of its own, so
// that segments change no other trait of a user); nil without segments.
func keyAttrs(seed uint64, key string, segments []SegmentShares) map[string]string {
	if len(segments) == 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(seed^0x7365676d, uint64(fnv32(key))))
	attrs := make(map[string]string, len(segments))
	for _, s := range segments {
		attrs[s.Attr] = s.pick(r.Float64())
	}
	return attrs
}

// pick returns the value at cumulative share v in [0, 1).
func (s SegmentShares) pick(v float64) string {
	if len(s.Values) == 0 {
		return ""
	}
	total := 0.0
	for i := range s.Values {
		total += s.share(i)
	}
	acc := 0.0
	for i, name := range s.Values {
		acc += s.share(i)
		if v*total < acc {
			return name
		}
	}
	return s.Values[len(s.Values)-1]
}

func (s SegmentShares) share(i int) float64 {
	if len(s.Shares) != len(s.Values) {
		return 1
	}
	return s.Shares[i]
}

// botShare is the bots' share of all requests; 1 (refused) when one is out of (0, 1).
func botShare(bots []Bot) float64 {
	var s float64
	for _, b := range bots {
		if !(b.Share > 0 && b.Share < 1) || b.Key == "" {
			return 1
		}
		s += b.Share
	}
	return s
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// requestID is a request's id: unique within a seed's traffic, readable in a diff.
func requestID(seed uint64, at time.Time, seq int) string {
	// Appended into one buffer: one allocation, where concatenating four formatted parts took five.
	b := make([]byte, 0, 40)
	b = append(b, "r-"...)
	b = strconv.AppendUint(b, seed, 36)
	b = append(b, '-')
	b = strconv.AppendInt(b, at.UnixMilli(), 36)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(seq), 10)
	return string(b)
}

// draw returns what one request of u did on an arm behaving as p.
func draw(r *rand.Rand, p Profile, u *user, at time.Time, rollout string, arm policy.Arm, id string) Request {
	req := Request{TS: at, Rollout: rollout, Variant: arm, Key: u.key, Model: p.Model, Prompt: p.Prompt, RequestID: id, Attrs: u.attrs}
	errorRate := math.Max(p.ErrorRate, u.badErrorRate)
	if u.bot != nil {
		errorRate = u.bot.StableErrorRate
		if arm == policy.Canary {
			errorRate = u.bot.CanaryErrorRate
		}
	}
	req.Error = r.Float64() < errorRate
	req.Refusal = !req.Error && r.Float64() < p.RefusalRate
	req.LatencyMS = math.Round(p.LatencyMedian*u.latencyFactor*math.Exp(p.LatencySigma*r.NormFloat64())*10) / 10
	req.InputTokens = int(math.Max(1, math.Round(r.ExpFloat64()*p.inputMean())))
	if !req.Error {
		req.OutputTokens = int(math.Max(1, math.Round(r.ExpFloat64()*p.outputMean())))
	}
	req.CostUSD = math.Round(float64(req.InputTokens+4*req.OutputTokens)*p.CostPerToken*1e9) / 1e9
	if !req.Error && r.Float64() < p.QualityShare {
		q := math.Round(math.Min(1, math.Max(0, p.Quality+p.qualitySD()*r.NormFloat64()))*1000) / 1000
		req.Quality = &q
	}
	if !req.Error && r.Float64() < p.FeedbackShare {
		f := 1
		switch v := r.Float64(); {
		case v < p.NegativeRate:
			f = -1
		case v < p.NegativeRate+p.NeutralRate:
			f = 0
		}
		req.Feedback = &f
	}
	return req
}

// lateQueue holds late feedback records until their time, earliest first.
type lateQueue []Request

func (q lateQueue) Len() int { return len(q) }
func (q lateQueue) Less(i, j int) bool {
	return q[i].TS.Before(q[j].TS) || q[i].TS.Equal(q[j].TS) && q[i].RequestID < q[j].RequestID
}
func (q lateQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *lateQueue) Push(x any)   { *q = append(*q, x.(Request)) }
func (q *lateQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// WriteJSONL writes the requests Simulate draws as JSON Lines request records, the `file:` source's
// format, exactly as the application's rollouts/record recorder writes them. This is the entry point
// of `rollout simulate`.
func WriteJSONL(w io.Writer, spec *rollouts.Spec, opts Options) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	err := Simulate(spec, opts, func(req Request) error {
		line = AppendJSON(line[:0], req)
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return fmt.Errorf("simulate %s: %w", spec.Name, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("simulate %s: %w", spec.Name, err)
	}
	return nil
}

// AppendJSON appends req as one JSON Lines record: a request as record.AppendJSON writes it, a late
// record as record.AppendLateJSON does.
func AppendJSON(b []byte, req Request) []byte {
	if req.Late {
		l := Late(req)
		return record.AppendLateJSON(b, &l)
	}
	rec := Record(req)
	return record.AppendJSON(b, &rec)
}

// Collect returns every request Simulate draws, for tests that need them all (Expected, Insert).
func Collect(spec *rollouts.Spec, opts Options) ([]Request, error) {
	var out []Request
	err := Simulate(spec, opts, func(r Request) error {
		out = append(out, r)
		return nil
	})
	return out, err
}
