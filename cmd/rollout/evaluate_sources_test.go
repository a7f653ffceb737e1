package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rollout-dev/rollout/internal/testserver"
	"github.com/rollout-dev/rollout/policy/source/clickhouse"
	"github.com/rollout-dev/rollout/policy/source/postgres"
	"github.com/rollout-dev/rollout/policy/source/prom"
	"github.com/rollout-dev/rollout/policy/source/synth"
	"github.com/rollout-dev/rollout/rollouts"
)

// TestEvaluatePrometheusAndPostgres runs `rollout evaluate` end to end against a real Prometheus and a
// real PostgreSQL holding the same traffic, in which the canary's errors quintupled: both roll back.
func TestEvaluatePrometheusAndPostgres(t *testing.T) {
	from := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	now := from.Add(6 * time.Hour)
	canary := synth.Stable
	canary.ErrorRate = 0.10
	traffic := synth.Generate(synth.Traffic{Rollout: "summarizer", From: from, To: now, Stable: 5700, Canary: 300, // the spec's 5%
		StableProfile: synth.Stable, CanaryProfile: canary}, 7)

	exp := synth.NewExporter("summarizer")
	om, err := synth.OpenMetrics(exp.Registry, exp.Observe, traffic, from, now, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	promURL := testserver.PrometheusBackfilled(t, om)

	dsn := testserver.Postgres(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = testserver.PostgresPassword
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, postgres.Schema); err != nil {
		t.Fatal(err)
	}
	if err := synth.Insert(ctx, conn, traffic); err != nil {
		t.Fatal(err)
	}

	for _, source := range []string{"prometheus:" + promURL, dsn + "&password=env:ROLLOUT_PGPASS"} {
		app, out, errOut := testApp()
		app.Getenv = func(name string) string {
			if name == "ROLLOUT_PGPASS" {
				return testserver.PostgresPassword
			}
			return ""
		}
		code := app.Main([]string{"evaluate", "--spec", "testdata/evaluate/summarizer.yaml", "--metrics", source,
			"--now", now.Format(time.RFC3339)})
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", source, code, errOut)
		}
		t.Log(out.String())
		for _, want := range []string{"summarizer: rollback", "error_rate", "fail"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output does not say %q:\n%s", source, want, out)
			}
		}
		if strings.Contains(out.String()+errOut.String(), testserver.PostgresPassword) {
			t.Errorf("%s: the password reached the output", source)
		}
	}
}

func TestOpenSourceSchemes(t *testing.T) {
	app, _, _ := testApp()
	tests := []struct {
		source  string
		wantErr error
	}{
		{"prometheus:http://127.0.0.1:9090", nil},
		{"prometheus:127.0.0.1:9090", prom.ErrBadURL},
		{"postgres://reader@127.0.0.1/telemetry?password=env:ROLLOUT_PGPASS", postgres.ErrBadDSN}, // ROLLOUT_PGPASS unset
		{"postgres://reader:hunter2@127.0.0.1/telemetry", postgres.ErrBadDSN},
		{"postgresql://reader@127.0.0.1/telemetry", nil},
		{"clickhouse://reader@127.0.0.1:8123/langfuse?password=env:ROLLOUT_CHPASS", clickhouse.ErrBadURL}, // ROLLOUT_CHPASS unset
		{"clickhouse://reader:hunter2@127.0.0.1/default", clickhouse.ErrBadURL},
		{"clickhouse://reader@127.0.0.1/default?secure=true", nil},
	}
	for _, tt := range tests {
		src, err := app.openSource(&rollouts.Spec{Name: "r"}, tt.source)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want %v", tt.source, err, tt.wantErr)
		}
		if err == nil && src == nil {
			t.Errorf("%s: no source", tt.source)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error leaks the password: %v", tt.source, err)
		}
		if err == nil {
			again, _ := app.openSource(&rollouts.Spec{Name: "other"}, tt.source)
			if again != src {
				t.Errorf("%s: opened twice; want the same source reused across ticks", tt.source)
			}
		}
	}
}
