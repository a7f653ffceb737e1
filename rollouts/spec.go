// Package rollouts holds the domain of rollout: the spec of one canary rollout of an LLM model or prompt
// change, its validation, the minimal-diff edits the controller makes to it, and the assignment of users
// to variants that applications use at request time.
//
// The package does no I/O beyond reading spec files from a directory handed to it: no git, no GitHub,
// no network. Everything here is safe to import from an application's request path.
//
// In the house's four rooms (rollouts ← policy ← reconcile ← cmd) this is the rollouts room, the domain at
// the bottom: it imports no git, GitHub or network code. Under it, record and export serve the applications.
package rollouts

import (
	"slices"
	"time"
)

// APIVersion and Kind are the only values a spec's apiVersion and kind may hold.
const (
	APIVersion = "rollout/v1"
	Kind       = "Rollout"
)

// Spec is one rollout, as written in one YAML file of the repository's rollouts folder.
type Spec struct {
	APIVersion  string `yaml:"apiVersion" json:"apiVersion" jsonschema:"required,enum=rollout/v1"`
	Kind        string `yaml:"kind" json:"kind" jsonschema:"required,enum=Rollout"`
	Name        string `yaml:"name" json:"name" jsonschema:"required,pattern=^[a-z0-9-]+$"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Stable is what most users get, and everyone when there is no canary.
	Stable Variant `yaml:"stable" json:"stable" jsonschema:"required"`
	// Canary is the change being rolled out. Adding or changing it starts a rollout; removing it ends one.
	Canary *Variant `yaml:"canary,omitempty" json:"canary,omitempty"`
	// Traffic is what production does now. Only the controller, or a human's pull request, changes it.
	Traffic Traffic `yaml:"traffic" json:"traffic"`
	// Assignment says how the application maps a request to a variant.
	Assignment Assignment `yaml:"assignment,omitempty" json:"assignment,omitempty"`
	// Schedule is the cron expression on which `rollout run` evaluates this rollout, in UTC (prefix
	// CRON_TZ=Zone/Name for another time zone); five fields, or a descriptor such as @every 15m.
	Schedule  string        `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	Stages    []Stage       `yaml:"stages" json:"stages" jsonschema:"required,minItems=1"`
	Metrics   MetricsSource `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	Analysis  Analysis      `yaml:"analysis,omitempty" json:"analysis,omitempty"`
	Promotion Promotion     `yaml:"promotion,omitempty" json:"promotion,omitempty"`
	// Notify lists notification targets for any lifecycle event, each choosing its events with `on`.
	Notify   []Notify       `yaml:"notify,omitempty" json:"notify,omitempty"`
	Rollback RollbackPolicy `yaml:"rollback,omitempty" json:"rollback,omitempty"`
	// Previous is the stable that the last promotion replaced, kept for a quick way back.
	Previous *Variant `yaml:"previous,omitempty" json:"previous,omitempty"`
	// Status is written by the controller only.
	Status *Status `yaml:"status,omitempty" json:"status,omitempty"`

	// references are the files the canary refers to, read by ReadSpecReferences from the repository's
	// tree; referencesRead says whether they were (a spec parsed from bytes alone was not).
	references     []Reference
	referencesRead bool
	// slice is the part of the key space the rollout's namespace gives it (ResolveNamespaces); nil
	// without a namespace, or before the namespace is resolved.
	slice *NamespaceSlice
}

// Variant is one arm of a rollout: a model and a prompt.
type Variant struct {
	Model string `yaml:"model" json:"model" jsonschema:"required"`
	// Prompt is a path in the repository or an opaque version label such as "v3".
	Prompt string `yaml:"prompt,omitempty" json:"prompt,omitempty"`
}

// Traffic is the share of users and requests that production sends to the canary now.
type Traffic struct {
	// Weight is the percent of assignment keys routed to the canary, 0..100.
	Weight int `yaml:"weight" json:"weight" jsonschema:"minimum=0,maximum=100"`
	// Shadow is the percent of requests mirrored to the canary; users still see stable.
	Shadow int `yaml:"shadow,omitempty" json:"shadow,omitempty" jsonschema:"minimum=0,maximum=100"`
	// Routes are gateway configs in this repository that carry the same split; each is edited in the
	// same commit as Weight.
	Routes []Route `yaml:"routes,omitempty" json:"routes,omitempty"`
}

// Route is one gateway config that follows traffic.weight. Exactly one of LiteLLM and File is set.
type Route struct {
	// LiteLLM is the path of a LiteLLM proxy config: the model_list entries whose litellm_params.model
	// names the stable or the canary model get weight 100-W and W.
	LiteLLM string `yaml:"litellm,omitempty" json:"litellm,omitempty"`
	// File is the path of any YAML file; the values at the Stable and Canary paths get 100-W and W.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Stable and Canary are paths in File such as spec.rules[0].backendRefs[0].weight.
	Stable string `yaml:"stable,omitempty" json:"stable,omitempty"`
	Canary string `yaml:"canary,omitempty" json:"canary,omitempty"`
}

// Assignment says what the application hashes and which keys bypass the hash.
type Assignment struct {
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
	// Salt seeds the hash. Default: the rollout name plus the canary model.
	Salt string `yaml:"salt,omitempty" json:"salt,omitempty"`
	// Exclude holds glob patterns of keys that always get stable.
	Exclude []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	// Include holds glob patterns of keys that always get the canary.
	Include []string `yaml:"include,omitempty" json:"include,omitempty"`
	// Unit is the unit of analysis: key (the default: the users the assignment randomises, so the
	// evidence must know each request's key) or request (the requests are independent, so evidence that
	// counts requests alone may advance a stage; see UnitRequest).
	Unit string `yaml:"unit,omitempty" json:"unit,omitempty" jsonschema:"enum=key,enum=request"`
	// Namespace (GrowthBook's word) groups rollouts of one feature: each rollout in a namespace takes
	// its own slice of the key space, so no key is in two of their canaries (see ResolveNamespaces).
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
}

// UnitRequest is the Assignment.Unit that declares requests independent: with it, a stage may advance
// on evidence that counts requests (records without keys, a source that counts requests only); without
// it, while assignment.key is set, such evidence holds the stage, since one user's correlated requests
// would be counted as independent and its bounds be too narrow.
const UnitRequest = "request"

// Stage is one step of the rollout: a weight (or a shadow share) held until the evidence allows the next.
type Stage struct {
	Weight      int      `yaml:"weight,omitempty" json:"weight,omitempty" jsonschema:"minimum=0,maximum=100"`
	Shadow      int      `yaml:"shadow,omitempty" json:"shadow,omitempty" jsonschema:"minimum=0,maximum=100"`
	MinDuration Duration `yaml:"minDuration,omitempty" json:"minDuration,omitempty"`
	// MinRequests is the number of requests each arm needs in this stage's window.
	MinRequests int64    `yaml:"minRequests,omitempty" json:"minRequests,omitempty"`
	MaxDuration Duration `yaml:"maxDuration,omitempty" json:"maxDuration,omitempty"`
	// Gate must open before the stage may start.
	Gate *Gate `yaml:"gate,omitempty" json:"gate,omitempty"`
}

// Gate is a check outside the metrics that must pass before a stage starts: an offline eval file or a
// webhook. Exactly one of Evals and Webhook is set.
type Gate struct {
	Evals         string  `yaml:"evals,omitempty" json:"evals,omitempty"`
	MinPassRate   float64 `yaml:"minPassRate,omitempty" json:"minPassRate,omitempty" unit:"ratio"`
	NoRegressions bool    `yaml:"noRegressions,omitempty" json:"noRegressions,omitempty"`
	Webhook       string  `yaml:"webhook,omitempty" json:"webhook,omitempty"`
}

// MetricsSource names where the request metrics live: file:PATH, prometheus:URL, postgres://… (or
// postgresql://…) or clickhouse://….
type MetricsSource struct {
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	// Schema names what the source holds: rollout (default), otel-genai, litellm, langfuse or helicone.
	Schema string `yaml:"schema,omitempty" json:"schema,omitempty" jsonschema:"enum=rollout,enum=otel-genai,enum=litellm,enum=langfuse,enum=helicone"`
}

// The metrics schemas a source may hold.
const (
	SchemaRollout   = "rollout"
	SchemaOTelGenAI = "otel-genai"
	SchemaLiteLLM   = "litellm"
	SchemaLangfuse  = "langfuse"
	SchemaHelicone  = "helicone"
)

// Analysis is how the canary is judged against stable.
type Analysis struct {
	// Confidence of every verdict, default 0.95; split across the rules.
	Confidence float64 `yaml:"confidence,omitempty" json:"confidence,omitempty" unit:"ratio"`
	Rules      []Rule  `yaml:"rules,omitempty" json:"rules,omitempty"`
	// OnInconclusive applies when maxDuration passes undecided: hold or rollback.
	OnInconclusive string `yaml:"onInconclusive,omitempty" json:"onInconclusive,omitempty" jsonschema:"enum=hold,enum=rollback"`
	// OnMetricsError applies after repeated metrics failures: hold or rollback.
	OnMetricsError string `yaml:"onMetricsError,omitempty" json:"onMetricsError,omitempty" jsonschema:"enum=hold,enum=rollback"`
	// Accelerate skips a stage when every rule shows the canary clearly better.
	Accelerate bool `yaml:"accelerate,omitempty" json:"accelerate,omitempty"`
	// AdvanceConfidence is the always-valid confidence at which every rule must be shown within its
	// limit before a stage advances; default 0.8. RequirePass raises it to Confidence.
	AdvanceConfidence float64 `yaml:"advanceConfidence,omitempty" json:"advanceConfidence,omitempty" unit:"ratio"`
	// RequirePass advances only when every rule is shown within its limit at Confidence.
	RequirePass bool `yaml:"requirePass,omitempty" json:"requirePass,omitempty"`
	// Segments names request attributes (a JSONL record's attrs, a SQL column, a Prometheus label):
	// the rollback side of every rule is also judged within each value of each, so a regression
	// confined to one language or tenant is not diluted in the average.
	Segments []string `yaml:"segments,omitempty" json:"segments,omitempty"`
}

// Rule is one limit on one metric. Max and Min are absolute limits on the canary; MaxIncrease and
// MaxDecrease are relative to stable over the same window.
type Rule struct {
	Metric string `yaml:"metric" json:"metric" jsonschema:"required"`
	// Query is a source-defined query for a metric that is not built in.
	Query       string   `yaml:"query,omitempty" json:"query,omitempty"`
	Max         *float64 `yaml:"max,omitempty" json:"max,omitempty" unit:"number-or-ratio"`
	Min         *float64 `yaml:"min,omitempty" json:"min,omitempty" unit:"number-or-ratio"`
	MaxIncrease *Ratio   `yaml:"maxIncrease,omitempty" json:"maxIncrease,omitempty"`
	MaxDecrease *Ratio   `yaml:"maxDecrease,omitempty" json:"maxDecrease,omitempty"`
	// Maturity is how long after a request its late values (feedback, scores) are all in: the rule
	// is judged only over requests at least this old, so that an arm whose late values come later
	// (or sooner) than the other's is not misread. Default: DefaultMaturity for the built-in late
	// metrics (negative_feedback_rate, quality_score), none for the others; 0s turns it off.
	Maturity *Duration `yaml:"maturity,omitempty" json:"maturity,omitempty"`
}

// MaturityOf is the maturity window of r: its maturity, else DefaultMaturity for a built-in late
// metric, else 0 (every request counts as soon as it is recorded).
func MaturityOf(r Rule) time.Duration {
	if r.Maturity != nil {
		return time.Duration(*r.Maturity)
	}
	if m, ok := BuiltinMetrics[r.Metric]; ok && m.Late && r.Query == "" {
		return DefaultMaturity
	}
	return 0
}

// Promotion says how the controller proposes the next stage.
type Promotion struct {
	// Via is pull-request (default), auto-merge or commit.
	Via       string   `yaml:"via,omitempty" json:"via,omitempty" jsonschema:"enum=pull-request,enum=auto-merge,enum=commit"`
	Reviewers []string `yaml:"reviewers,omitempty" json:"reviewers,omitempty"`
	Labels    []string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Approvals is how many approving reviews, and from whom, the bot's proposal needs before the bot
	// merges it (promotion.via: auto-merge); nil for none.
	Approvals *Approvals `yaml:"approvals,omitempty" json:"approvals,omitempty"`
	// Windows are when the rollout may move forward; nil for always. Rollbacks never wait for one.
	Windows *Windows `yaml:"windows,omitempty" json:"windows,omitempty"`
}

// Approvals is promotion.approvals: Count approving reviews of the proposal's current head, from the
// people From lists (logins, or org/team for the members of a team; empty: anyone with write
// permission).
type Approvals struct {
	Count int      `yaml:"count" json:"count"`
	From  []string `yaml:"from,omitempty" json:"from,omitempty"`
}

// RollbackPolicy says how the controller rolls back and whom it tells.
type RollbackPolicy struct {
	// Via is commit (default: straight to the default branch) or pull-request.
	Via    string   `yaml:"via,omitempty" json:"via,omitempty" jsonschema:"enum=commit,enum=pull-request"`
	Notify []Notify `yaml:"notify,omitempty" json:"notify,omitempty"`
	// KeepPrevious is how long `previous` stays after a promotion, default 30d.
	KeepPrevious Duration `yaml:"keepPrevious,omitempty" json:"keepPrevious,omitempty"`
}

// Notify is one notification target. Its URL is an env: reference, never a literal secret.
type Notify struct {
	Slack   string `yaml:"slack,omitempty" json:"slack,omitempty"`
	Webhook string `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	// On lists the events the target gets (top-level notify only); default rollback and alert.
	On []string `yaml:"on,omitempty" json:"on,omitempty"`
}

// The events a notification target may choose (Notify.On).
const (
	EventStart    = "start"    // a new canary started at stage 0 (or started over)
	EventProposed = "proposed" // the bot opened a pull request to advance or promote
	EventStarted  = "started"  // a stage's change landed on the default branch (the advance was merged)
	EventPromoted = "promoted" // the canary became the stable
	EventPaused   = "paused"
	EventResumed  = "resumed"
	EventRollback = "rollback"
	EventAlert    = "alert"    // the metrics source started failing, or a sample-ratio mismatch began
	EventStuck    = "stuck"    // a stage is held past its maxDuration (onInconclusive: hold)
	EventOverride = "override" // a person skipped a rule (/rollout promote)
)

// Events are every event a target may choose, in lifecycle order.
var Events = []string{EventStart, EventProposed, EventStarted, EventPromoted, EventPaused, EventResumed, EventRollback,
	EventAlert, EventStuck, EventOverride}

// defaultEvents are the events of a target whose `on` is empty, and of every rollback.notify target.
var defaultEvents = []string{EventRollback, EventAlert}

// Targets returns the notification targets that get event: those of rollback.notify for rollback and
// alert, and those of the top-level notify whose `on` lists it (by default rollback and alert).
func (s *Spec) Targets(event string) []Notify {
	var out []Notify
	if slices.Contains(defaultEvents, event) {
		out = append(out, s.Rollback.Notify...)
	}
	for _, n := range s.Notify {
		on := n.On
		if len(on) == 0 {
			on = defaultEvents
		}
		if slices.Contains(on, event) {
			out = append(out, n)
		}
	}
	return out
}

// AllTargets returns every notification target of the spec, rollback.notify first.
func (s *Spec) AllTargets() []Notify {
	return append(slices.Clone(s.Rollback.Notify), s.Notify...)
}

// Phase is where a rollout is in its life.
type Phase string

// The phases of a rollout.
const (
	Pending     Phase = "Pending"
	Progressing Phase = "Progressing"
	Paused      Phase = "Paused"
	RolledBack  Phase = "RolledBack"
	Completed   Phase = "Completed"
)

// Status is the controller's record of a rollout's progress, kept in the spec file itself.
type Status struct {
	Phase Phase `yaml:"phase" json:"phase" jsonschema:"required,enum=Pending,enum=Progressing,enum=Paused,enum=RolledBack,enum=Completed"`
	Stage int   `yaml:"stage" json:"stage" jsonschema:"minimum=0"`
	// StageStartedAt is when the stage's weight landed on the default branch. Zero while a merged
	// advance waits for its first tick.
	StageStartedAt time.Time `yaml:"stageStartedAt,omitempty" json:"stageStartedAt,omitempty"`
	// Canary is the fingerprint of the canary block this status belongs to. Empty means the current one.
	Canary string `yaml:"canary,omitempty" json:"canary,omitempty"`
	// Files holds a short hash of the content of every file the canary refers to (its prompt file, its
	// route entries), by path: which one changed is what a restart at stage 0 says.
	Files   map[string]string `yaml:"files,omitempty" json:"files,omitempty"`
	Message string            `yaml:"message,omitempty" json:"message,omitempty"`
	// MetricsErrors counts consecutive ticks on which the metrics source failed.
	MetricsErrors int `yaml:"metricsErrors,omitempty" json:"metricsErrors,omitempty"`
	// MetricsFailingSince is when the metrics source started failing; zero while it answers. The
	// controller writes it once when failures start and clears it once when they end.
	MetricsFailingSince time.Time `yaml:"metricsFailingSince,omitempty" json:"metricsFailingSince,omitempty"`
	// SampleRatioMismatchSince is when the current sample-ratio mismatch began; zero while the arms'
	// shares match the spec. The controller writes it once when a mismatch begins (and alerts with that
	// commit) and clears it once when the mismatch ends.
	SampleRatioMismatchSince time.Time `yaml:"sampleRatioMismatchSince,omitempty" json:"sampleRatioMismatchSince,omitempty"`
	// StuckSince is when the stage was first held past its maxDuration (onInconclusive: hold), written
	// once, with the `stuck` notification; the next stage's status starts without it.
	StuckSince time.Time `yaml:"stuckSince,omitempty" json:"stuckSince,omitempty"`
	// PromotedAt is when the last promotion landed; `previous` is dropped keepPrevious after it.
	PromotedAt time.Time `yaml:"promotedAt,omitempty" json:"promotedAt,omitempty"`
}

// Defaults applied by Parse where a spec leaves a field out.
const (
	DefaultConfidence = 0.95
	// DefaultAdvanceConfidence is the confidence at which a stage must be shown within its limits.
	DefaultAdvanceConfidence = 0.8
	DefaultKeepPrevious      = 30 * 24 * time.Hour
	// DefaultMaturity is the maturity window of the built-in late metrics (Rule.Maturity).
	DefaultMaturity = 6 * time.Hour
	DefaultDir      = "rollouts"
)
