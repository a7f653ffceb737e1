package testserver

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Binaries of the Debian package prometheus.
var (
	prometheusBin = "/usr/bin/prometheus"
	promtoolBin   = "/usr/bin/promtool"
)

// Prometheus starts a Prometheus server that scrapes targets (host:port, path /metrics) every second,
// and returns its base URL (http://127.0.0.1:PORT). The server and its storage go away when t ends.
func Prometheus(t testing.TB, scrapeTargets ...string) string {
	t.Helper()
	return startPrometheus(t, nil, scrapeTargets)
}

// PrometheusBackfilled starts a Prometheus server whose storage first receives openMetrics (an
// OpenMetrics text ending in "# EOF", with timestamps) through `promtool tsdb create-blocks-from
// openmetrics`. Queries at those timestamps then see exactly those samples, with no scrape to wait for.
func PrometheusBackfilled(t testing.TB, openMetrics []byte, scrapeTargets ...string) string {
	t.Helper()
	return startPrometheus(t, openMetrics, scrapeTargets)
}

func startPrometheus(t testing.TB, openMetrics []byte, targets []string) string {
	t.Helper()
	WaitForPackages(t)
	for _, bin := range []string{prometheusBin, promtoolBin} {
		if _, err := os.Stat(bin); err != nil {
			missing(t, bin+" (Debian package prometheus)")
		}
	}
	dir := t.TempDir()
	storage := filepath.Join(dir, "data")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		t.Fatal(err)
	}
	if openMetrics != nil {
		input := filepath.Join(dir, "backfill.om")
		if err := os.WriteFile(input, openMetrics, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(promtoolBin, "tsdb", "create-blocks-from", "openmetrics", input, storage)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool backfill: %v\n%s", err, out)
		}
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(prometheusConfig(targets)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, "prometheus", exec.Command(prometheusBin,
		"--config.file="+config,
		"--storage.tsdb.path="+storage,
		"--storage.tsdb.retention.time=100y", // backfilled samples may be old
		"--web.listen-address="+addr,
		"--log.level=warn",
	))
	url := "http://" + addr
	p.waitReady(t, httpReady(url+"/-/ready"))
	return url
}

// prometheusConfig scrapes targets every second, so that a test that waits for samples waits little.
func prometheusConfig(targets []string) string {
	var b bytes.Buffer
	b.WriteString("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n")
	if len(targets) > 0 {
		b.WriteString("scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [")
		b.WriteString(`"` + strings.Join(targets, `", "`) + `"`)
		b.WriteString("]\n")
	}
	return b.String()
}
