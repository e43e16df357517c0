package sqlfacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-gateway/warden/internal/sqlfacts/corpus"
)

// TestCorpusOnPostgres proves the corpus is real SQL: corpus.Schema loads
// through psql with ON_ERROR_STOP, every Allow case runs without error,
// and every Deny case runs (inside BEGIN ... ROLLBACK, as a superuser)
// with no error other than the few expected below. It needs PostgreSQL
// server binaries and is skipped only if initdb cannot be found.
func TestCorpusOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	pg := startPostgres(t)
	pg.psql(t, corpus.Schema)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, pg.connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())

	// SQLSTATEs a Deny case may end with, and why.
	expected := map[string]string{
		"vacuum":              "25001", // VACUUM cannot run inside a transaction block
		"alter system":        "25001", // nor can ALTER SYSTEM
		"prepare transaction": "55000", // max_prepared_transactions is 0 by default
		"dblink":              "42883", // the corpus schema does not install the dblink extension
		"query_to_xml delete": "0A000", // query_to_xml runs its query read-only: the attempt is real, the server stops it
	}

	for _, c := range corpus.Allow {
		if err := run(ctx, conn, c.SQL); err != nil {
			t.Errorf("Allow %q: %v\n%s", c.Name, err, c.SQL)
		}
		reset(ctx, t, conn)
	}
	for _, c := range corpus.Deny {
		if err := exec1(ctx, conn, "BEGIN"); err != nil {
			t.Fatalf("BEGIN: %v", err)
		}
		err := run(ctx, conn, c.SQL)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			if code, ok := expected[c.Name]; ok {
				t.Errorf("Deny %q: ran without the expected error %s; update the test", c.Name, code)
			}
		case errors.As(err, &pgErr) && pgErr.Code == expected[c.Name]:
		default:
			t.Errorf("Deny %q: %v\n%s", c.Name, err, c.SQL)
		}
		if conn.IsClosed() {
			t.Fatalf("Deny %q closed the connection", c.Name)
		}
		_ = exec1(ctx, conn, "ROLLBACK")
		reset(ctx, t, conn)
	}
}

// run sends one corpus query string with the simple query protocol, the
// way a client's Query message would; COPY goes through the copy
// sub-protocol with no data.
func run(ctx context.Context, conn *pgconn.PgConn, sql string) error {
	upper := strings.ToUpper(sql)
	switch {
	case strings.Contains(upper, "FROM STDIN"):
		_, err := conn.CopyFrom(ctx, strings.NewReader(""), sql)
		return err
	case strings.Contains(upper, "TO STDOUT"):
		_, err := conn.CopyTo(ctx, io.Discard, sql)
		return err
	}
	return exec1(ctx, conn, sql)
}

func exec1(ctx context.Context, conn *pgconn.PgConn, sql string) error {
	_, err := conn.Exec(ctx, sql).ReadAll()
	return err
}

// reset puts the session back to a clean state between cases.
func reset(ctx context.Context, t *testing.T, conn *pgconn.PgConn) {
	t.Helper()
	if err := exec1(ctx, conn, "DISCARD ALL"); err != nil {
		t.Fatalf("DISCARD ALL: %v", err)
	}
}

type testPostgres struct {
	bin        string // directory of the server binaries
	dir        string
	port       int
	connString string
	asPostgres bool // run the binaries as the postgres OS user (we are root)
}

// startPostgres runs a throwaway cluster on a free loopback port in a
// temporary directory and stops it when the test ends.
func startPostgres(t *testing.T) *testPostgres {
	t.Helper()
	initdb := findInitdb()
	if initdb == "" {
		t.Skip("initdb not found (PATH, /usr/lib/postgresql/*/bin)")
	}
	pg := &testPostgres{bin: filepath.Dir(initdb)}
	dir, err := os.MkdirTemp("", "sqlfacts-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		pg.asPostgres = true
	}
	data := filepath.Join(dir, "data")
	pg.cmd(t, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	pg.port = freePort(t)
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_prepared_transactions=0", pg.port, dir)
	pg.cmd(t, "pg_ctl", "-D", data, "-w", "-t", "30", "-l", filepath.Join(dir, "log"), "-o", opts, "start")
	t.Cleanup(func() {
		c := pg.command("pg_ctl", "-D", data, "-m", "immediate", "stop")
		if out, err := c.CombinedOutput(); err != nil {
			t.Logf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	pg.connString = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", pg.port)
	return pg
}

func (pg *testPostgres) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(pg.bin, name)
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath(name); err == nil {
			path = p
		}
	}
	if pg.asPostgres {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (pg *testPostgres) cmd(t *testing.T, name string, args ...string) {
	t.Helper()
	c := pg.command(name, args...)
	c.Dir = pg.dir
	if out, err := c.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "log"))
		t.Fatalf("%s: %v\n%s\n%s", name, err, out, log)
	}
}

// psql runs a script the way the corpus documents it must run.
func (pg *testPostgres) psql(t *testing.T, script string) {
	t.Helper()
	c := pg.command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", "-d", "postgres", "-f", "-")
	c.Stdin = strings.NewReader(script)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
}

func findInitdb() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return real
		}
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Strings(matches)
	if len(matches) == 0 {
		return ""
	}
	return matches[len(matches)-1]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
