package testserver

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recordingTB stands in for a test to see whether a helper skips or fails it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with rec in its own goroutine, as the testing package does, so Goexit ends only f.
func run(rec *recordingTB, f func(testing.TB)) {
	done := make(chan struct{})
	go func() { defer close(done); f(rec) }()
	<-done
}

func TestMissingPrometheusSkipsOrFails(t *testing.T) {
	saved := prometheusBin
	prometheusBin = "/nonexistent/prometheus"
	defer func() { prometheusBin = saved }()

	t.Setenv("ROLLOUT_INTEGRATION", "")
	rec := &recordingTB{TB: t}
	run(rec, func(tb testing.TB) { Prometheus(tb) })
	if rec.skipped == "" || rec.failed != "" {
		t.Errorf("without ROLLOUT_INTEGRATION: skipped %q, failed %q; want a skip", rec.skipped, rec.failed)
	}

	t.Setenv("ROLLOUT_INTEGRATION", "1")
	rec = &recordingTB{TB: t}
	run(rec, func(tb testing.TB) { Prometheus(tb) })
	if rec.failed == "" || !strings.Contains(rec.failed, "prometheus") {
		t.Errorf("with ROLLOUT_INTEGRATION=1: skipped %q, failed %q; want a failure naming prometheus", rec.skipped, rec.failed)
	}
}

func TestMissingClickHouseSkipsOrFails(t *testing.T) {
	saved := clickhouseBin
	clickhouseBin = "/nonexistent/clickhouse-server"
	defer func() { clickhouseBin = saved }()
	t.Setenv("ROLLOUT_CHDB_DIR", t.TempDir()) // no node_modules/chdb there

	for _, tt := range []struct {
		name  string
		start func(testing.TB)
		want  string
	}{
		{"ClickHouse", func(tb testing.TB) { ClickHouse(tb) }, "ClickHouse"},
		{"Chdb", func(tb testing.TB) { Chdb(tb) }, "chdb"},
	} {
		t.Setenv("ROLLOUT_INTEGRATION", "")
		rec := &recordingTB{TB: t}
		run(rec, tt.start)
		if rec.skipped == "" || rec.failed != "" {
			t.Errorf("%s without ROLLOUT_INTEGRATION: skipped %q, failed %q; want a skip", tt.name, rec.skipped, rec.failed)
		}
		t.Setenv("ROLLOUT_INTEGRATION", "1")
		rec = &recordingTB{TB: t}
		run(rec, tt.start)
		if rec.failed == "" || !strings.Contains(rec.failed, tt.want) {
			t.Errorf("%s with ROLLOUT_INTEGRATION=1: skipped %q, failed %q; want a failure naming %s", tt.name, rec.skipped, rec.failed, tt.want)
		}
	}
}
