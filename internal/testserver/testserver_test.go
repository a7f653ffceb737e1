package testserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPrometheusAnswersQueries(t *testing.T) {
	url := Prometheus(t)
	resp, err := http.Get(url + "/api/v1/query?query=vector(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"success"`) {
		t.Fatalf("query: %s %s", resp.Status, body)
	}
}

func TestPostgresNeedsThePassword(t *testing.T) {
	dsn := Postgres(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		t.Fatal("connected without the password; want scram-sha-256 authentication")
	}
	cfg.Password = PostgresPassword
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
}

func TestClickHouseServersNeedThePassword(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *ClickHouseServer{"debian": ClickHouse, "chdb": Chdb} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			resp, err := http.Post(srv.HTTP, "text/plain", strings.NewReader("SELECT 1"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("answered without the password; want the login refused")
			}
			if got := srv.Exec(t, "SELECT 1 + 1"); got != "2\n" {
				t.Fatalf("SELECT 1 + 1 = %q", got)
			}
			if !strings.HasPrefix(srv.Engine, "ClickHouse 18.") && !strings.HasPrefix(srv.Engine, "chdb (ClickHouse 2") {
				t.Errorf("engine %q; want Debian's 18.x or a current chdb", srv.Engine)
			}
		})
	}
}
