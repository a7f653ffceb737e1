package testserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresUser and PostgresPassword are the superuser of the servers Postgres starts. Password
// authentication (scram-sha-256) is on, so a test proves that a source sends the password it was given.
const (
	PostgresUser     = "rollout"
	PostgresPassword = "s3cret-for-tests"
	PostgresDB       = "postgres"
)

// postgresBinDir returns the newest /usr/lib/postgresql/N/bin holding postgres and initdb.
func postgresBinDir() (string, bool) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d, true
			}
		}
	}
	return "", false
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Postgres initialises a database cluster in a temp directory, starts PostgreSQL on a free loopback
// port, and returns a DSN without the password (postgres://rollout@127.0.0.1:PORT/postgres?sslmode=disable);
// the password is PostgresPassword. PostgreSQL refuses to run as root, so under root the server runs
// as the postgres user (created by the Debian package). It is stopped when t ends.
func Postgres(t testing.TB) string {
	t.Helper()
	WaitForPackages(t)
	bin, ok := postgresBinDir()
	if !ok {
		missing(t, "PostgreSQL (Debian package postgresql, /usr/lib/postgresql/*/bin)")
	}
	dir := t.TempDir()
	cred, owner := postgresCredential(t)
	if cred != nil {
		// t.TempDir and its parent are private to root; the server's user must reach its data directory.
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	data := filepath.Join(dir, "pgdata")
	pwfile := filepath.Join(dir, "pwfile")
	for _, p := range []string{data} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(pwfile, []byte(PostgresPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if owner != nil {
		for _, p := range []string{data, pwfile} {
			if err := os.Chown(p, owner.uid, owner.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", PostgresUser,
		"--pwfile="+pwfile, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	server := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	)
	server.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	server.Env = append(os.Environ(), "LC_ALL=C")
	p := start(t, "postgres", server)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dsn := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", PostgresUser, addr, PostgresDB)
	p.waitReady(t, func(ctx context.Context) error {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return err
		}
		cfg.Password = PostgresPassword
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	return dsn
}

type uidGid struct{ uid, gid int }

// postgresCredential returns the credential to run PostgreSQL under: none when not root, the postgres
// user when root.
func postgresCredential(t testing.TB) (*syscall.Credential, *uidGid) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		missing(t, "the postgres user (PostgreSQL refuses to run as root; the Debian package creates it)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, &uidGid{uid, gid}
}
