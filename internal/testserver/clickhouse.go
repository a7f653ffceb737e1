package testserver

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ClickHouseUser and ClickHousePassword are the user of the ClickHouse servers ClickHouse and Chdb
// start; its password is required, so a test proves that a source sends the password it was given.
const (
	ClickHouseUser     = "rollout"
	ClickHousePassword = "s3cret-for-ch-tests"
)

// clickhouseBin is the Debian package's server binary (a variable for the missing-binary test).
var clickhouseBin = "/usr/sbin/clickhouse-server"

// ClickHouseServer is a running ClickHouse HTTP endpoint.
type ClickHouseServer struct {
	// URL is the source URL without the password: clickhouse://rollout@127.0.0.1:PORT/default.
	URL string
	// HTTP is the endpoint, http://127.0.0.1:PORT/.
	HTTP string
	// Engine names the engine and its version, for reports ("ClickHouse 18.16.1").
	Engine string
}

// Exec runs one statement as ClickHouseUser and returns the answer; it fails t on an error.
func (s *ClickHouseServer) Exec(t testing.TB, sql string) string {
	t.Helper()
	out, err := s.exec(context.Background(), sql)
	if err != nil {
		t.Fatalf("clickhouse %s: %v\n%s", s.Engine, err, sql)
	}
	return out
}

func (s *ClickHouseServer) exec(ctx context.Context, sql string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTP, strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(ClickHouseUser, ClickHousePassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

const clickhouseConfig = `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>%d</http_port>
  <tcp_port>%d</tcp_port>
  <path>%[3]s/data/</path>
  <tmp_path>%[3]s/tmp/</tmp_path>
  <user_files_path>%[3]s/user_files/</user_files_path>
  <format_schema_path>%[3]s/format_schemas/</format_schema_path>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`

const clickhouseUsers = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <%[1]s>
      <password>%[2]s</password>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </%[1]s>
  </users>
  <quotas><default></default></quotas>
</yandex>
`

// ClickHouse starts the Debian package's ClickHouse server (18.16 in Debian 12) on free loopback ports
// with its data in a temp directory, and stops it when t ends.
func ClickHouse(t testing.TB) *ClickHouseServer {
	t.Helper()
	WaitForPackages(t)
	if _, err := os.Stat(clickhouseBin); err != nil {
		missing(t, "ClickHouse (Debian package clickhouse-server, "+clickhouseBin+"; .ci/install-clickhouse)")
	}
	dir := t.TempDir()
	httpPort, tcpPort := freePort(t), freePort(t)
	config := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(clickhouseConfig, httpPort, tcpPort, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(fmt.Sprintf(clickhouseUsers, ClickHouseUser, ClickHousePassword)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "clickhouse-server", exec.Command(clickhouseBin, "--config-file="+config))
	// Asked to shut down, the server waits out its keep-alive timeout (10 s) for every idle connection
	// a client still holds, and the tests' clients keep theirs; its data is thrown away with the test.
	p.kill = true
	s := &ClickHouseServer{
		URL:  fmt.Sprintf("clickhouse://%s@127.0.0.1:%d/default", ClickHouseUser, httpPort),
		HTTP: fmt.Sprintf("http://127.0.0.1:%d/", httpPort),
	}
	p.waitReady(t, func(ctx context.Context) error {
		v, err := s.exec(ctx, "SELECT version()")
		s.Engine = "ClickHouse " + strings.TrimSpace(v)
		return err
	})
	return s
}

//go:embed chdbfront.js
var chdbFront []byte

// ChdbDir returns the folder whose node_modules holds the npm package chdb: $ROLLOUT_CHDB_DIR, else
// rollout/chdb in the user's cache folder, where .ci/install-clickhouse puts it.
func ChdbDir() string {
	if d := os.Getenv("ROLLOUT_CHDB_DIR"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "rollout", "chdb")
}

// Chdb starts a test-only ClickHouse HTTP front (chdbfront.js: node and the npm package chdb, which
// embeds a current ClickHouse engine) on a free loopback port with its data in a temp directory, and
// stops it when t ends. It answers the subset of the HTTP interface a source uses: POST / with the SQL
// in the body, basic auth, database and settings as URL parameters, TabSeparated answers.
func Chdb(t testing.TB) *ClickHouseServer {
	t.Helper()
	WaitForPackages(t)
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node (Debian package nodejs; .ci/install-clickhouse)")
	}
	modules := filepath.Join(ChdbDir(), "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "chdb", "package.json")); err != nil {
		missing(t, "the npm package chdb (in "+modules+"; .ci/install-clickhouse installs it)")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "chdbfront.js")
	if err := os.WriteFile(script, chdbFront, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(node, script, strconv.Itoa(port), filepath.Join(dir, "data"), ClickHouseUser, ClickHousePassword)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	p := start(t, "chdb front", cmd)
	s := &ClickHouseServer{
		URL:  fmt.Sprintf("clickhouse://%s@127.0.0.1:%d/default", ClickHouseUser, port),
		HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port),
	}
	p.waitReady(t, func(ctx context.Context) error {
		v, err := s.exec(ctx, "SELECT version()")
		s.Engine = "chdb (ClickHouse " + strings.TrimSpace(v) + ")"
		return err
	})
	return s
}
