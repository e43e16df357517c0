package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/pgtest"
	"github.com/warden-gateway/warden/internal/sqlfacts/corpus"
)

// pg is the throwaway PostgreSQL shared by this package's tests.
var pg *pgtest.Server

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	pg, err = pgtest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pg.Stop()
	// The schema belongs to warden's upstream role, which may do anything
	// to it: warden must be the only thing standing between an agent and
	// these tables, so a bypass shows up as a statement that runs.
	conn, err := pgx.Connect(ctx, pg.AppURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := conn.Exec(ctx, corpus.Schema, pgx.QueryExecModeSimpleProtocol); err != nil {
		fmt.Fprintln(os.Stderr, "schema:", err)
		return 1
	}
	conn.Close(ctx)
	return m.Run()
}

const basePolicy = `
policies:
  - name: analysts
    when: '"analysts" in groups'
    allow:
      - target: app
        sql: { select: [public.orders, public.customers] }
  - name: writers
    when: '"writers" in groups'
    allow:
      - target: app
        sql:
          select: [public.orders, public.customers, public.pgbench_*]
          insert: [public.orders]
          update: [public.orders]
    deny:
      - target: app
        sql: { update: [public.customers] }
`

// env is one running gateway in front of pg.
type env struct {
	t      *testing.T
	gw     *gateway.Gateway
	issuer *identitytest.Issuer
	dir    string
	cfg    *config.Config
}

func newEnv(t *testing.T, policyYAML string) *env {
	t.Helper()
	return newEnvWith(t, policyYAML, "")
}

// newEnvWith starts a gateway whose config also holds extra top-level
// YAML (e.g. a tls block).
func newEnvWith(t *testing.T, policyYAML, extra string) *env {
	t.Helper()
	iss := identitytest.NewIssuer(t)
	e := newEnvIssuer(t, iss.URL, policyYAML, extra)
	e.issuer = iss
	return e
}

// newEnvIssuer starts a gateway trusting the issuer at issuerURL.
func newEnvIssuer(t *testing.T, issuerURL, policyYAML, extra string) *env {
	t.Helper()
	if policyYAML == "" {
		policyYAML = basePolicy
	}
	dir := t.TempDir()
	t.Setenv("WARDEN_TEST_PG_PASSWORD", pgtest.AppPassword)
	yaml := fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  http: 127.0.0.1:0
store: sqlite://audit.db
identity:
  oidc:
    - issuer: %s
      audience: warden
targets:
  - name: app
    type: postgres
    address: %s
    database: %s
    user: %s
    password: ${WARDEN_TEST_PG_PASSWORD}
    sslmode: disable
%s
%s`, issuerURL, pg.Addr(), pgtest.AppDatabase, pgtest.AppUser, policyYAML, extra)
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gw, err := gateway.New(context.Background(), cfg, gateway.Options{Logger: logger})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	t.Cleanup(func() { gw.Close() })
	return &env{t: t, gw: gw, dir: dir, cfg: cfg}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// token mints a token for sub in the given groups.
func (e *env) token(sub string, groups ...string) string {
	return e.issuer.Token(e.t, sub, map[string]any{"groups": groups}, 15*time.Minute)
}

func (e *env) port() int { return e.gw.PostgresAddr().(*net.TCPAddr).Port }

// connString is what an agent puts in its client: dbname is the target,
// the password is its access token.
func (e *env) connString(token string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d dbname=app user=agent password=%s sslmode=disable", e.port(), token)
}

// connect opens a pgx connection through warden.
func (e *env) connect(token string) *pgx.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.connString(token))
	if err != nil {
		e.t.Fatalf("connect through warden: %v", err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// direct opens a connection straight to the database as warden's role,
// to check what really happened.
func direct(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), pg.AppURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func count(t *testing.T, sql string) int64 {
	t.Helper()
	var n int64
	if err := direct(t).QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
