package postgres_test

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/sqlfacts"
	"github.com/warden-gateway/warden/internal/sqlfacts/corpus"
)

// pgErr returns the PostgreSQL error in err, failing the test if there is none.
func pgErr(t *testing.T, err error) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PostgreSQL error, got %v", err)
	}
	return pe
}

func wantDenied(t *testing.T, err error) *pgconn.PgError {
	t.Helper()
	if err == nil {
		t.Fatal("statement ran; want it refused by warden")
	}
	pe := pgErr(t, err)
	if pe.Code != "42501" || !strings.HasPrefix(pe.Message, "warden:") {
		t.Fatalf("want warden's 42501, got %s: %s", pe.Code, pe.Message)
	}
	return pe
}

func TestSelectAllowedDeleteDenied(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	before := count(t, "SELECT count(*) FROM orders")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeCacheDescribe} {
		t.Run(mode.String(), func(t *testing.T) {
			c := e.connect(e.token("agent-1", "analysts"))
			var n int64
			if err := c.QueryRow(ctx, "SELECT count(*) FROM orders WHERE amount > $1", mode, 0).Scan(&n); err != nil {
				t.Fatalf("allowed select: %v", err)
			}
			if n != before {
				t.Fatalf("count through warden = %d, direct = %d", n, before)
			}
			_, err := c.Exec(ctx, "DELETE FROM orders WHERE id = $1", mode, 1)
			pe := wantDenied(t, err)
			if !strings.Contains(pe.Message, "delete") || !strings.Contains(pe.Message, "public.orders") || !strings.Contains(pe.Message, "rule") {
				t.Errorf("message should name the action, table and rule: %q", pe.Message)
			}
			// The session stays usable.
			if err := c.QueryRow(ctx, "SELECT count(*) FROM customers", mode).Scan(&n); err != nil {
				t.Fatalf("select after a refusal: %v", err)
			}
			// Same named statement again: pgx's statement cache must not
			// let a refused statement through on a second try.
			_, err = c.Exec(ctx, "DELETE FROM orders WHERE id = $1", mode, 1)
			wantDenied(t, err)
		})
	}
	if after := count(t, "SELECT count(*) FROM orders"); after != before {
		t.Fatalf("orders changed: %d -> %d", before, after)
	}
}

func TestExplicitDenyOverridesAllow(t *testing.T) {
	e := newEnv(t, "")
	c := e.connect(e.token("writer-1", "writers"))
	_, err := c.Exec(context.Background(), "UPDATE customers SET name = name WHERE id = 1")
	pe := wantDenied(t, err)
	if !strings.Contains(pe.Message, "writers") {
		t.Errorf("message should name the policy that denied: %q", pe.Message)
	}
}

// A refused statement inside a transaction block leaves the client where
// PostgreSQL would: the block is aborted, the next statement gets 25P02,
// and COMMIT rolls back — nothing half-applied.
func TestTransactionAbortSemantics(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			c := e.connect(e.token("writer-1", "writers"))
			before := count(t, "SELECT count(*) FROM orders")
			if _, err := c.Exec(ctx, "BEGIN", mode); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "INSERT INTO orders (id, customer_id, amount, note) VALUES (900001, 1, 5, 'tx')", mode); err != nil {
				t.Fatalf("allowed insert: %v", err)
			}
			_, err := c.Exec(ctx, "DELETE FROM orders", mode)
			wantDenied(t, err)
			if st := c.PgConn().TxStatus(); st != 'E' {
				t.Fatalf("transaction status after refusal = %q, want 'E' (aborted)", st)
			}
			_, err = c.Exec(ctx, "SELECT 1", mode)
			if pe := pgErr(t, err); pe.Code != "25P02" {
				t.Fatalf("next statement: got %s, want 25P02", pe.Code)
			}
			tag, err := c.PgConn().Exec(ctx, "COMMIT").ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got := tag[0].CommandTag.String(); got != "ROLLBACK" {
				t.Fatalf("COMMIT of an aborted block: tag %q, want ROLLBACK", got)
			}
			if after := count(t, "SELECT count(*) FROM orders"); after != before {
				t.Fatalf("insert in the aborted block was applied: %d -> %d", before, after)
			}
			if st := c.PgConn().TxStatus(); st != 'I' {
				t.Fatalf("status after COMMIT = %q", st)
			}
		})
	}
}

// A multi-statement query is refused whole if any part is refused, and
// the allowed parts do not run.
func TestMultiStatementRefusedWhole(t *testing.T) {
	e := newEnv(t, "")
	c := e.connect(e.token("writer-1", "writers"))
	before := count(t, "SELECT count(*) FROM orders")
	_, err := c.Exec(context.Background(), "INSERT INTO orders (id, customer_id, amount) VALUES (900002, 1, 1); DELETE FROM orders", pgx.QueryExecModeSimpleProtocol)
	wantDenied(t, err)
	if after := count(t, "SELECT count(*) FROM orders"); after != before {
		t.Fatalf("part of a refused multi-statement query ran: %d -> %d", before, after)
	}
}

// An extended-protocol pipeline: statements before the refused one run,
// the refused one and everything after it up to Sync do not.
func TestPipelineRefusalPosition(t *testing.T) {
	e := newEnv(t, "")
	c := e.connect(e.token("writer-1", "writers"))
	ctx := context.Background()
	before := count(t, "SELECT count(*) FROM orders")
	// One Sync for all: Parse/Bind/Describe/Execute × 3, then Sync.
	b := &pgconn.Batch{}
	b.ExecParams("SELECT count(*) FROM orders", nil, nil, nil, nil)
	b.ExecParams("DELETE FROM orders WHERE id = $1", [][]byte{[]byte("1")}, nil, nil, nil)
	b.ExecParams("INSERT INTO orders (id, customer_id, amount) VALUES (900005, 1, 1)", nil, nil, nil, nil)
	rr := c.PgConn().ExecBatch(ctx, b)
	if !rr.NextResult() {
		t.Fatal("no first result")
	}
	if res := rr.ResultReader().Read(); res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("first statement of the batch: %v", res.Err)
	}
	var refusal error
	for rr.NextResult() {
		if res := rr.ResultReader().Read(); res.Err != nil {
			refusal = res.Err
			break
		}
	}
	err := rr.Close()
	if refusal == nil {
		refusal = err
	}
	wantDenied(t, refusal)
	if after := count(t, "SELECT count(*) FROM orders"); after != before {
		t.Fatalf("orders changed: %d -> %d (the insert after the refused delete ran)", before, after)
	}
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatalf("after batch: %v", err)
	}
}

// The adversarial corpus: every statement a read-only agent must not get
// past is refused by warden (not by PostgreSQL: the upstream role could
// run every one of them), and every legitimate one runs.
func TestCorpus(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	tok := e.token("agent-1", "analysts")
	ordersBefore := count(t, "SELECT count(*) FROM orders")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := e.connect(tok)
		bypass, falseDeny := 0, 0
		for _, tc := range corpus.Deny {
			_, err := c.Exec(ctx, tc.SQL, mode)
			var pe *pgconn.PgError
			if err == nil || !errors.As(err, &pe) || !strings.HasPrefix(pe.Message, "warden:") {
				// The extended protocol cannot carry several statements:
				// PostgreSQL rejecting that is not a bypass, but warden
				// must still have refused first.
				bypass++
				t.Errorf("%s: deny case %q got past warden: %v", mode, tc.Name, err)
			}
			if c.PgConn().TxStatus() != 'I' {
				c.Exec(ctx, "ROLLBACK", pgx.QueryExecModeSimpleProtocol)
			}
		}
		for _, tc := range corpus.Allow {
			if mode == pgx.QueryExecModeExec && multiStatement(tc.SQL) {
				continue // not expressible in one Parse
			}
			if _, err := c.Exec(ctx, tc.SQL, mode); err != nil {
				falseDeny++
				t.Errorf("%s: allow case %q refused: %v", mode, tc.Name, err)
			}
			if c.PgConn().TxStatus() != 'I' {
				c.Exec(ctx, "ROLLBACK", pgx.QueryExecModeSimpleProtocol)
			}
		}
		t.Logf("corpus (%s): %d deny cases, %d bypasses; %d allow cases, %d false denials", mode, len(corpus.Deny), bypass, len(corpus.Allow), falseDeny)
	}
	if after := count(t, "SELECT count(*) FROM orders"); after != ordersBefore {
		t.Fatalf("orders changed during the corpus: %d -> %d", ordersBefore, after)
	}
}

// Client startup parameters that change name resolution or privileges are
// not forwarded: search_path stays pinned.
func TestStartupOptionsIgnored(t *testing.T) {
	e := newEnv(t, "")
	tok := e.token("agent-1", "analysts")
	cs := e.connString(tok) + " options='-c search_path=evil -c role=postgres' search_path=evil"
	c, err := pgx.Connect(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var sp, user string
	if err := c.QueryRow(context.Background(), "SELECT current_setting('search_path'), current_user").Scan(&sp, &user); err != nil {
		t.Fatal(err)
	}
	if sp != `public, pg_temp` || user != "warden_app" {
		t.Fatalf("search_path=%q user=%q", sp, user)
	}
}

func TestLoginFailures(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	cases := []struct {
		name, token, code string
	}{
		{"garbage token", "not-a-token", "28P01"},
		{"expired token", expiredToken(t, e), "28P01"},
		{"no policy for the subject", e.token("nobody", "interns"), "28000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgx.Connect(ctx, e.connString(tc.token))
			if pe := pgErr(t, err); pe.Code != tc.code {
				t.Fatalf("code %s (%s), want %s", pe.Code, pe.Message, tc.code)
			}
		})
	}
	t.Run("unknown target", func(t *testing.T) {
		cs := strings.Replace(e.connString(e.token("agent-1", "analysts")), "dbname=app", "dbname=nope", 1)
		_, err := pgx.Connect(ctx, cs)
		if pe := pgErr(t, err); pe.Code != "3D000" {
			t.Fatalf("code %s", pe.Code)
		}
	})
}

// FunctionCall messages call a function by OID with no SQL to inspect.
func TestFunctionCallDenied(t *testing.T) {
	e := newEnv(t, "")
	c := e.connect(e.token("agent-1", "analysts"))
	pc := c.PgConn()
	fe := pc.Frontend()
	fe.Send(&pgproto3.FunctionCall{Function: 2619 /* pg_read_file */, ArgFormatCodes: []uint16{0}, Arguments: [][]byte{[]byte("/etc/passwd")}, ResultFormatCode: 0})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var gotErr *pgproto3.ErrorResponse
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			cp := *m
			gotErr = &cp
		case *pgproto3.FunctionCallResponse:
			t.Fatal("FunctionCall was executed")
		case *pgproto3.ReadyForQuery:
			if gotErr == nil || gotErr.Code != "42501" {
				t.Fatalf("want 42501, got %+v", gotErr)
			}
			return
		}
	}
}

func TestCopy(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	c := e.connect(e.token("agent-1", "analysts"))
	var out strings.Builder
	if _, err := c.PgConn().CopyTo(ctx, &out, "COPY orders TO STDOUT"); err != nil {
		t.Fatalf("COPY TO STDOUT of an allowed table: %v", err)
	}
	if out.Len() == 0 {
		t.Fatal("COPY TO STDOUT returned nothing")
	}
	_, err := c.PgConn().CopyTo(ctx, &out, "COPY secrets TO STDOUT")
	wantDenied(t, err)
	_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("9999\t1\t1\tx\t2024-01-01\n"), "COPY orders (id, customer_id, amount, note, created_at) FROM STDIN")
	wantDenied(t, err)

	w := e.connect(e.token("writer-1", "writers"))
	before := count(t, "SELECT count(*) FROM orders")
	tag, err := w.PgConn().CopyFrom(ctx, strings.NewReader("900003\t1\t7\tcopied\n900004\t1\t8\tcopied\n"), "COPY orders (id, customer_id, amount, note) FROM STDIN")
	if err != nil {
		t.Fatalf("COPY FROM STDIN with insert allowed: %v", err)
	}
	if tag.RowsAffected() != 2 || count(t, "SELECT count(*) FROM orders") != before+2 {
		t.Fatalf("copy: %v", tag)
	}
}

// Cancel requests reach the right upstream backend.
func TestCancel(t *testing.T) {
	e := newEnv(t, "")
	c := e.connect(e.token("agent-1", "analysts"))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "SELECT count(*) FROM generate_series(1, 2000000000)")
	if err == nil {
		t.Fatal("long query finished; want it cancelled")
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	// pgx closes the connection on context cancellation; check via a
	// fresh connection that the backend is no longer running the query.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := count(t, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM generate_series(1, 2000000000)%' AND state = 'active'")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("query still running upstream after cancel")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// psql, unchanged, against warden.
func TestPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed (make deps installs it)")
	}
	e := newEnv(t, "")
	tok := e.token("agent-1", "analysts")
	run := func(sql string) (string, error) {
		cmd := exec.Command(psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=0", "-h", "127.0.0.1", "-p", itoa(e.port()), "-U", "agent", "-d", "app", "-c", sql)
		cmd.Env = append(cmd.Environ(), "PGPASSWORD="+tok, "PGSSLMODE=disable")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("SELECT count(*) FROM orders")
	if err != nil {
		t.Fatalf("psql select: %v\n%s", err, out)
	}
	out, _ = run("DELETE FROM orders")
	if !strings.Contains(out, "ERROR:  warden: permission denied") {
		t.Fatalf("psql delete: %s", out)
	}
	// One session: a refused statement then an allowed one.
	cmd := exec.Command(psql, "-X", "-A", "-t", "-h", "127.0.0.1", "-p", itoa(e.port()), "-U", "agent", "-d", "app")
	cmd.Env = append(cmd.Environ(), "PGPASSWORD="+tok, "PGSSLMODE=disable")
	cmd.Stdin = strings.NewReader("DROP TABLE orders;\nSELECT 'still here';\n")
	b, _ := cmd.CombinedOutput()
	if !strings.Contains(string(b), "42501") && !strings.Contains(string(b), "permission denied") || !strings.Contains(string(b), "still here") {
		t.Fatalf("psql session: %s", b)
	}
}

// pgbench, unchanged, in each query mode.
func TestPgbench(t *testing.T) {
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Skip("pgbench not installed (make deps installs it)")
	}
	init := exec.Command(pgbench, "-i", "-s", "1", "-q", pg.AppURL())
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i (direct): %v\n%s", err, out)
	}
	e := newEnv(t, "")
	tok := e.token("writer-1", "writers")
	for _, mode := range []string{"simple", "extended", "prepared"} {
		cmd := exec.Command(pgbench, "-n", "-S", "-M", mode, "-c", "2", "-j", "1", "-t", "200", "-h", "127.0.0.1", "-p", itoa(e.port()), "-U", "agent", "app")
		cmd.Env = append(cmd.Environ(), "PGPASSWORD="+tok, "PGSSLMODE=disable")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "number of transactions actually processed: 400/400") {
			t.Fatalf("pgbench -M %s through warden: %v\n%s", mode, err, out)
		}
	}
	// The default TPC-B-like script writes pgbench_branches: refused.
	cmd := exec.Command(pgbench, "-n", "-c", "1", "-t", "1", "-h", "127.0.0.1", "-p", itoa(e.port()), "-U", "agent", "app")
	cmd.Env = append(cmd.Environ(), "PGPASSWORD="+tok, "PGSSLMODE=disable")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "warden: permission denied") {
		t.Fatalf("pgbench write script: %s", out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func multiStatement(sql string) bool {
	f, err := sqlfacts.Extract(sql, sqlfacts.Options{})
	return err == nil && len(f.Statements) > 1
}

func expiredToken(t *testing.T, e *env) string {
	now := time.Now()
	tok, err := e.issuer.Dev.Sign(map[string]any{
		"iss": e.issuer.URL, "aud": "warden", "sub": "agent-1", "groups": []string{"analysts"},
		"iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(-10 * time.Minute).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A client asking for an encoding in which a multibyte character can end
// in a backslash (SJIS, under any spelling PostgreSQL accepts) gets a
// UTF8 session: otherwise E'ぁ\'; DELETE ...' would be one string to
// warden and a DELETE to the server.
func TestClientEncodingPinned(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	before := count(t, "SELECT count(*) FROM orders")
	for _, enc := range []string{"SJIS", "s.jis", "S.J.I.S", "(big5)", "gb 18030", "LATIN1"} {
		cfg, err := pgconn.ParseConfig(e.connString(e.token("agent-1", "analysts")))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["client_encoding"] = enc
		pc, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if got := pc.ParameterStatus("client_encoding"); got != "UTF8" {
			t.Errorf("client_encoding=%q: session encoding %q, want UTF8", enc, got)
		}
		// The SJIS bytes 81 5C are one character there; in UTF-8 they
		// are invalid, and warden refuses invalid UTF-8.
		pc.Exec(ctx, "SELECT E'\x81\\'; DELETE FROM orders; --'").ReadAll()
		pc.Close(ctx)
	}
	if after := count(t, "SELECT count(*) FROM orders"); after != before {
		t.Fatalf("orders changed: %d -> %d", before, after)
	}
}
