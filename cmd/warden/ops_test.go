package main

// End-to-end tests of the operator commands (ops.go): audit tail, search
// and export, sessions list and kill, revoke. A real gateway runs
// in-process (internal/gateway.New) with its admin API on the http
// listener, in front of a throwaway PostgreSQL, trusting a loopback OIDC
// issuer (identitytest); agents are real pgx clients, and the CLI is the
// binary TestMain built, run as a subprocess with a deadline.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/pgtest"
	"github.com/warden-gateway/warden/internal/store"
)

// opsFixture is a running gateway and what the tests need to reach it.
type opsFixture struct {
	gw       *gateway.Gateway
	iss      *identitytest.Issuer
	cfg      string // config file
	store    string // its audit store
	server   string // http://127.0.0.1:port, the admin API's base URL
	pgAddr   string
	adminTok string // ops-admin, group sre
	tokFile  string // holds adminTok
	tokens   []string
	log      syncBuffer // the gateway's log, shown when a test fails
}

func startOpsGateway(t *testing.T) *opsFixture {
	t.Helper()
	needPostgres(t)
	pg := startPostgres(t)
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := pgx.Connect(ctx, pg.AppURL())
		if err == nil {
			_, err = conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, amount int);
INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30)`, pgx.QueryExecModeSimpleProtocol)
			conn.Close(ctx)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	f := &opsFixture{iss: identitytest.NewIssuer(t)}
	dir := t.TempDir()
	tmpl, err := template.ParseFiles("testdata/ops/warden.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Option("missingkey=error").Execute(&b, map[string]string{
		"Issuer": f.iss.URL, "DBAddr": pg.Addr(),
		"Database": pgtest.AppDatabase, "User": pgtest.AppUser, "Password": pgtest.AppPassword,
	}); err != nil {
		t.Fatal(err)
	}
	f.cfg = filepath.Join(dir, "warden.yaml")
	f.store = filepath.Join(dir, "audit.db")
	if err := os.WriteFile(f.cfg, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.gw, err = gateway.New(ctx, cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(&f.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.gw.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", f.log.String())
		}
	})
	f.server = "http://" + f.gw.HTTPAddr().String()
	f.pgAddr = f.gw.PostgresAddr().String()
	f.adminTok = f.token(t, "ops-admin", "sre")
	f.tokFile = f.tokenFile(t, f.adminTok)
	return f
}

// token mints a token for sub in groups, valid for 10 minutes, and
// remembers it: no command's output may ever contain one.
func (f *opsFixture) token(t *testing.T, sub string, groups ...string) string {
	t.Helper()
	tok := f.iss.Token(t, sub, map[string]any{"groups": groups}, 10*time.Minute)
	f.tokens = append(f.tokens, tok)
	return tok
}

func (f *opsFixture) tokenFile(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// warden runs the CLI and checks that its output holds no token.
func (f *opsFixture) warden(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := warden(t, env, args...)
	for _, tok := range f.tokens {
		if strings.Contains(r.stdout+r.stderr, tok) {
			t.Errorf("warden %s printed an access token:\n%s", strings.Join(args, " "), r)
		}
	}
	return r
}

// admin runs an admin API command as ops-admin against the gateway.
func (f *opsFixture) admin(t *testing.T, args ...string) result {
	t.Helper()
	return f.warden(t, nil, append(args, "--server", f.server, "--token-file", f.tokFile)...)
}

// mustAdmin is admin, failing the test unless the command exits 0.
func (f *opsFixture) mustAdmin(t *testing.T, args ...string) result {
	t.Helper()
	r := f.admin(t, args...)
	if r.code != 0 {
		t.Fatalf("warden %s: want exit 0:\n%s", strings.Join(args, " "), r)
	}
	return r
}

// connect logs in through the gateway with pgx as sub, an analyst agent.
func (f *opsFixture) connect(t *testing.T, sub string) (*pgx.Conn, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(f.pgAddr)
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s dbname=prod-db user=%s sslmode=disable connect_timeout=10", host, port, sub))
	if err != nil {
		t.Fatal(err)
	}
	cc.Password = f.token(t, sub, "analysts")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
	})
	return conn, nil
}

func (f *opsFixture) mustConnect(t *testing.T, sub string) *pgx.Conn {
	t.Helper()
	conn, err := f.connect(t, sub)
	if err != nil {
		t.Fatalf("%s: connect through warden: %v", sub, err)
	}
	return conn
}

// sqlExec runs sql on conn, bounded.
func sqlExec(conn *pgx.Conn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, sql)
	return err
}

// wantDenied checks that err is warden's refusal, and the session lives on.
func wantDenied(t *testing.T, err error) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("want SQLSTATE 42501 from warden, got %v", err)
	}
}

// jsonEvents parses JSON lines of audit events.
func jsonEvents(t *testing.T, out string) []audit.Event {
	t.Helper()
	var evs []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev audit.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not a JSON audit event: %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func eventIDs(evs []audit.Event) []int64 {
	ids := make([]int64, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	return ids
}

// sessionsJSON lists the live sessions through the CLI.
func (f *opsFixture) sessionsJSON(t *testing.T) []map[string]any {
	t.Helper()
	r := f.mustAdmin(t, "sessions", "list", "--json")
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var s map[string]any
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("not a JSON session: %q: %v", line, err)
		}
		out = append(out, s)
	}
	return out
}

// sessionOf returns the id of sub's one live session.
func (f *opsFixture) sessionOf(t *testing.T, sub string) string {
	t.Helper()
	var ids []string
	for _, s := range f.sessionsJSON(t) {
		if s["subject"] == sub {
			ids = append(ids, s["id"].(string))
		}
	}
	if len(ids) != 1 {
		t.Fatalf("want one live session of %s, got %v", sub, ids)
	}
	return ids[0]
}

// waitClosed checks that the gateway closed conn: the next statement
// fails, and pgx then knows the connection is gone. It returns the
// statement's error.
func waitClosed(t *testing.T, conn *pgx.Conn) error {
	t.Helper()
	err := sqlExec(conn, "SELECT count(*) FROM orders")
	if err == nil {
		t.Fatal("a statement on the closed session succeeded")
	}
	if !conn.IsClosed() {
		t.Errorf("pgx does not see the connection closed after %v", err)
	}
	return err
}

// eventLine matches one table line of an audit event: time, id, kind,
// subject, target, decision, rule, request.
func eventLine(kind, subject, target, decision, rule, request string) string {
	return `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\d+ +` + regexp.QuoteMeta(kind) + ` +` + regexp.QuoteMeta(subject) +
		` +` + regexp.QuoteMeta(target) + ` +` + regexp.QuoteMeta(decision) + ` +` + regexp.QuoteMeta(rule) + ` +` + request + `$`
}

// tableIDs returns the ids (second column) of an event table's lines.
func tableIDs(t *testing.T, out string) []int64 {
	t.Helper()
	var ids []int64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] == "TIME" {
			continue
		}
		id, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			t.Fatalf("line without an id: %q", line)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestOps(t *testing.T) {
	f := startOpsGateway(t)

	// agent-1's statements are what the audit commands read back.
	agent := f.mustConnect(t, "agent-1")
	if err := sqlExec(agent, "SELECT count(*) FROM orders"); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, sqlExec(agent, "DELETE FROM orders WHERE id = 1"))
	if err := sqlExec(agent, "SELECT\n  count(*)\tFROM orders WHERE amount > 15"); err != nil {
		t.Fatal(err)
	}
	// A statement that carries a terminal escape sequence (set the
	// window title) in a string: an operator's terminal must not obey it.
	if err := sqlExec(agent, "SELECT count(*) FROM orders WHERE '\x1b]0;pwned\x07' <> ''"); err != nil {
		t.Fatal(err)
	}
	// Wait until the three reads have their results, so that the log holds
	// still while the tests read it: a read answered at once carries its
	// result in its own record; one that took longer (a busy machine) has
	// a result record of its own, written off the client's path.
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := f.gw.Store.Query(context.Background(), store.Query{Kinds: []string{audit.KindStatement, audit.KindResult}, Subject: "agent-1"})
		if err != nil {
			t.Fatal(err)
		}
		results := 0
		for _, ev := range evs {
			if ev.Kind == audit.KindResult || ev.Decision == audit.Allow && ev.Rows > 0 {
				results++
			}
		}
		if results >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 results recorded after 10s: %+v", results, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("tail", func(t *testing.T) {
		r := f.mustAdmin(t, "audit", "tail", "-n", "50")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		wantOutput(t, "tail", lines[0], `^TIME +ID +KIND +SUBJECT +TARGET +DECISION +RULE +REQUEST$`)
		wantOutput(t, "tail", r.stdout,
			eventLine("session.start", "agent-1", "prod-db", "allow", "-", `.*`),
			eventLine("statement", "agent-1", "prod-db", "allow", "analyst-agents/allow[0]", regexp.QuoteMeta("SELECT count(*) FROM orders")),
			eventLine("statement", "agent-1", "prod-db", "deny", "default deny", regexp.QuoteMeta("DELETE FROM orders WHERE id = 1")),
			// A multi-line statement is shown on one line.
			eventLine("statement", "agent-1", "prod-db", "allow", "analyst-agents/allow[0]", regexp.QuoteMeta("SELECT count(*) FROM orders WHERE amount > 15")),
		)
		// Columns line up: every line's REQUEST column starts at the
		// header's.
		col := strings.Index(lines[0], "REQUEST")
		for _, l := range lines[1:] {
			if i := strings.Index(l, "SELECT"); i >= 0 && i != col {
				t.Errorf("request column at %d, header's at %d: %q", i, col, l)
			}
		}
		ids := tableIDs(t, r.stdout)
		// The session's start and its four statements (and the results of
		// the reads that were not answered at once).
		if !slices.IsSorted(ids) || len(ids) < 5 {
			t.Errorf("want at least 5 events, oldest first; ids %v", ids)
		}
		// Control characters are shown, not sent to the terminal.
		if strings.ContainsAny(r.stdout, "\x1b\x07") {
			t.Errorf("tail printed raw control characters:\n%q", r.stdout)
		}
		wantOutput(t, "tail", r.stdout, regexp.QuoteMeta(`WHERE '\x1b]0;pwned\x07' <> ''`)+`$`)

		// -n N: the newest N, oldest first.
		r = f.mustAdmin(t, "audit", "tail", "-n", "2", "--json")
		last2 := eventIDs(jsonEvents(t, r.stdout))
		if len(last2) != 2 || last2[0] >= last2[1] || last2[1] != ids[len(ids)-1] {
			t.Errorf("tail -n 2: ids %v, want the last two of %v, ascending", last2, ids)
		}

		// Filters.
		r = f.mustAdmin(t, "audit", "tail", "--json", "--decision", "deny", "--subject", "agent-1")
		evs := jsonEvents(t, r.stdout)
		if len(evs) != 1 || evs[0].Request != "DELETE FROM orders WHERE id = 1" || evs[0].Rule != "default deny" {
			t.Errorf("tail --decision deny --subject agent-1: want the one denied DELETE, got %+v", evs)
		}
	})

	t.Run("tail follow", func(t *testing.T) {
		w := startWarden(t, nil, "audit", "tail", "--follow", "-n", "1", "--interval", "100ms",
			"--subject", "agent-1", "--server", f.server, "--token-file", f.tokFile)
		waitOutput := func(what string, ok func(string) bool) {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for !ok(w.out.String()) {
				select {
				case <-w.done:
					t.Fatalf("tail --follow exited (%v) before %s:\n%s", w.err, what, w.out.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %s from tail --follow after 20s:\n%s", what, w.out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// The header and the newest event: the first read is done.
		waitOutput("first event", func(s string) bool { return strings.Count(s, "\n") >= 2 })
		if err := sqlExec(agent, "SELECT count(*) FROM orders WHERE id <> 424242"); err != nil {
			t.Fatal(err)
		}
		wantDenied(t, sqlExec(agent, "DELETE FROM orders WHERE id = 424243"))
		waitOutput("new events", func(s string) bool { return strings.Contains(s, "424243") })

		out := w.out.String()
		if i, j := strings.Index(out, "424242"), strings.Index(out, "424243"); i < 0 || i > j {
			t.Errorf("want the SELECT, then the DELETE:\n%s", out)
		}
		wantOutput(t, "tail --follow", out,
			eventLine("statement", "agent-1", "prod-db", "deny", "default deny", regexp.QuoteMeta("DELETE FROM orders WHERE id = 424243")))
		// Batches printed a poll apart still line up.
		lines := strings.Split(strings.TrimSpace(out), "\n")
		col := strings.Index(lines[0], "REQUEST")
		for _, l := range lines[1:] {
			for _, marker := range []string{"SELECT", "DELETE", "#"} {
				if i := strings.Index(l, marker); i >= 0 && i != col {
					t.Errorf("request column at %d, header's at %d: %q", i, col, l)
				}
			}
		}
		ids := tableIDs(t, out)
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("want each event once, in order; ids %v", ids)
		}

		// Interrupted, it stops cleanly.
		if err := w.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		select {
		case <-w.done:
			if w.err != nil {
				t.Errorf("tail --follow after SIGINT: %v, want exit 0\n%s", w.err, w.out.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("tail --follow still running 10s after SIGINT")
		}
		for _, tok := range f.tokens {
			if strings.Contains(w.out.String(), tok) {
				t.Errorf("tail --follow printed a token")
			}
		}
	})

	t.Run("not an admin", func(t *testing.T) {
		agentFile := f.tokenFile(t, f.token(t, "agent-1", "analysts"))
		for _, args := range [][]string{
			{"audit", "tail"},
			{"audit", "search", "--decision", "deny"},
			{"sessions", "list"},
			{"sessions", "kill", "some-session"},
			{"revoke", "agent-1"},
		} {
			r := f.warden(t, nil, append(args, "--server", f.server, "--token-file", agentFile)...)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("%s: want exit 1 and no output:\n%s", strings.Join(args, " "), r)
			}
			wantOutput(t, strings.Join(args, " "), r.stderr, `^warden: 403 forbidden: agent-1 is not an administrator$`)
		}
		// The refused revocation did nothing: agent-1 still logs in.
		if _, err := f.connect(t, "agent-1"); err != nil {
			t.Errorf("agent-1 refused after a refused revocation: %v", err)
		}
		// The refusals are audited, and an admin can find them.
		r := f.mustAdmin(t, "audit", "search", "--kind", "admin", "--decision", "deny", "--subject", "agent-1", "--json")
		var reqs []string
		for _, ev := range jsonEvents(t, r.stdout) {
			reqs = append(reqs, ev.Request)
		}
		for _, want := range []string{"GET /api/v1/audit", "GET /api/v1/sessions", "DELETE /api/v1/sessions/some-session", "POST /api/v1/identities/agent-1/revoke"} {
			if !slices.Contains(reqs, want) {
				t.Errorf("no audited refusal of %q among %q", want, reqs)
			}
		}
	})

	t.Run("client errors", func(t *testing.T) {
		dead := "http://" + freeAddr(t) // nothing listens there
		for _, tc := range []struct {
			name string
			env  []string
			args []string
			want string // regexp on stderr
		}{
			{"bad token", nil, []string{"sessions", "list", "--server", f.server, "--token", "not-a-token"},
				`^warden: 401 unauthenticated: invalid token`},
			{"no token", nil, []string{"sessions", "list", "--server", f.server},
				`^warden: no admin token: give --token-file FILE or set WARDEN_TOKEN$`},
			{"token and token file", nil, []string{"sessions", "list", "--server", f.server, "--token", "x", "--token-file", f.tokFile},
				`--token or --token-file, not both`},
			{"unreachable", nil, []string{"audit", "tail", "--server", dead, "--token-file", f.tokFile},
				`^warden: cannot reach warden at ` + regexp.QuoteMeta(dead) + `: .*connection refused`},
			{"cleartext to another host", nil, []string{"sessions", "list", "--server", "http://192.0.2.1:8080", "--token-file", f.tokFile},
				`plain http to a non-loopback host would send the admin token in cleartext`},
			{"not the admin API", nil, []string{"sessions", "list", "--server", f.iss.URL, "--token-file", f.tokFile},
				`^warden: 404 Not Found from ` + regexp.QuoteMeta(f.iss.URL) + ` \(not a warden admin API answer\)`},
			{"bad parameter", nil, []string{"audit", "search", "--since", "yesterday", "--server", f.server, "--token-file", f.tokFile},
				`^warden: 400 bad_request: parameter since: "yesterday" is neither`},
			{"no such session", nil, []string{"sessions", "kill", "no-such-session", "--server", f.server, "--token-file", f.tokFile},
				`^warden: 404 not_found: no live session "no-such-session"$`},
			{"server and store", nil, []string{"audit", "search", "--server", f.server, "--store", f.store},
				`give one or the other`},
			{"tail reads no store", nil, []string{"audit", "tail", "--store", f.store},
				`does not read --config or --store`},
			{"environment", []string{"WARDEN_SERVER=" + dead, "WARDEN_TOKEN=" + f.adminTok}, []string{"revoke", "nobody"},
				`^warden: cannot reach warden at ` + regexp.QuoteMeta(dead)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := f.warden(t, tc.env, tc.args...)
				if r.code != 1 || r.stdout != "" {
					t.Errorf("want exit 1 and no output:\n%s", r)
				}
				wantOutput(t, "stderr", r.stderr, tc.want)
			})
		}
	})

	t.Run("sessions list and kill", func(t *testing.T) {
		victim := f.mustConnect(t, "agent-kill")
		before := time.Now()
		id := f.sessionOf(t, "agent-kill")

		// The table, found by the environment instead of flags.
		r := f.warden(t, []string{"WARDEN_SERVER=" + f.server, "WARDEN_TOKEN=" + f.adminTok}, "sessions", "list")
		if r.code != 0 {
			t.Fatalf("sessions list: %s", r)
		}
		wantOutput(t, "sessions list", r.stdout,
			`^ID +SUBJECT +TARGET +CLIENT +STARTED +TOKEN EXPIRES$`,
			`^`+regexp.QuoteMeta(id)+` +agent-kill +prod-db +127\.0\.0\.1:\d+ +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (9m|10m)[0-9.]*s?\)$`)

		r = f.mustAdmin(t, "sessions", "kill", id, "--reason", "ops test kill")
		if strings.TrimSpace(r.stdout) != "terminated session "+id {
			t.Errorf("sessions kill: stdout %q", r.stdout)
		}
		err := waitClosed(t, victim)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code != "57P01" || !strings.Contains(pe.Message, "ops test kill")) {
			t.Errorf("the client was told %s %q, want 57P01 with the reason", pe.Code, pe.Message)
		}
		for _, s := range f.sessionsJSON(t) {
			if s["id"] == id {
				t.Errorf("session %s still listed after kill", id)
			}
		}
		r = f.admin(t, "sessions", "kill", id)
		if r.code != 1 || !strings.Contains(r.stderr, "404 not_found") {
			t.Errorf("killing it again: want 404:\n%s", r)
		}

		// The session's own trail says who ended it.
		r = f.mustAdmin(t, "audit", "search", "--session", id, "--kind", "admin", "--newest=false", "--json", "--since", before.Add(-time.Minute).UTC().Format(time.RFC3339))
		evs := jsonEvents(t, r.stdout)
		if len(evs) == 0 || evs[0].Subject != "ops-admin" || evs[0].Request != "DELETE /api/v1/sessions/"+id || !strings.Contains(evs[0].Reason, "ops test kill") {
			t.Errorf("want the kill audited as ops-admin's, got %+v", evs)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		victim := f.mustConnect(t, "agent-rev")
		f.sessionOf(t, "agent-rev")
		r := f.mustAdmin(t, "revoke", "agent-rev", "--reason", "offboarded")
		if strings.TrimSpace(r.stdout) != "revoked agent-rev: 1 session closed" {
			t.Errorf("revoke: stdout %q", r.stdout)
		}
		waitClosed(t, victim)
		if conn, err := f.connect(t, "agent-rev"); err == nil {
			conn.Close(context.Background())
			t.Errorf("agent-rev logged in with a fresh token after revocation")
		}
		// Other agents are untouched.
		if err := sqlExec(agent, "SELECT 1 FROM orders LIMIT 1"); err != nil {
			t.Errorf("agent-1 after revoking agent-rev: %v", err)
		}
		// A subject with '/' travels as one path segment.
		r = f.mustAdmin(t, "revoke", "ci/bot@example.com")
		if strings.TrimSpace(r.stdout) != "revoked ci/bot@example.com: 0 sessions closed" {
			t.Errorf("revoke ci/bot@example.com: stdout %q", r.stdout)
		}
	})

	t.Run("search", func(t *testing.T) {
		// The API, paging two events at a time, reads what the local
		// store holds, in both orders.
		for _, newest := range []string{"false", "true"} {
			// Statements only: they are recorded before they run, while
			// results are recorded asynchronously and could land between
			// the two reads.
			api := f.mustAdmin(t, "audit", "search", "--kind", "statement", "--subject", "agent-1", "--limit", "5", "--page-size", "2", "--newest="+newest, "--json")
			local := f.warden(t, nil, "audit", "search", "--store", f.store, "--kind", "statement", "--subject", "agent-1", "--limit", "5", "--newest="+newest)
			if local.code != 0 {
				t.Fatalf("local search: %s", local)
			}
			a, l := eventIDs(jsonEvents(t, api.stdout)), eventIDs(jsonEvents(t, local.stdout))
			if len(a) != 5 || !slices.Equal(a, l) {
				t.Errorf("--newest=%s: API ids %v, local store ids %v", newest, a, l)
			}
			if !bytes.Equal([]byte(api.stdout), []byte(local.stdout)) {
				t.Errorf("--newest=%s: API and local JSON lines differ:\n%s\n---\n%s", newest, api.stdout, local.stdout)
			}
		}
		// Past the end of the log: every event, no error.
		r := f.mustAdmin(t, "audit", "search", "--kind", "statement", "--decision", "deny", "--subject", "agent-1", "--text", "DELETE", "--limit", "1000", "--page-size", "1", "--json")
		if n := len(jsonEvents(t, r.stdout)); n != 2 {
			t.Errorf("want the 2 denied DELETEs, got %d:\n%s", n, r.stdout)
		}
		// The table.
		r = f.mustAdmin(t, "audit", "search", "--decision", "deny", "--subject", "agent-1", "--since", "1h")
		wantOutput(t, "search", r.stdout,
			`^TIME +ID +KIND`,
			eventLine("statement", "agent-1", "prod-db", "deny", "default deny", regexp.QuoteMeta("DELETE FROM orders WHERE id = 1")))
		// An explicit --config reads the local store even when the
		// environment names a server.
		r = f.warden(t, []string{"WARDEN_SERVER=http://" + freeAddr(t)}, "audit", "search", "--config", f.cfg, "--kind", "statement", "--decision", "deny", "--subject", "agent-1")
		if r.code != 0 || len(jsonEvents(t, r.stdout)) != 2 {
			t.Errorf("local search with WARDEN_SERVER set: %s", r)
		}
	})

	t.Run("export", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "export.jsonl")
		r := f.warden(t, nil, "audit", "export", "--store", f.store, "--since", "1h", "--out", out)
		if r.code != 0 {
			t.Fatalf("export: %s", r)
		}
		wantOutput(t, "export stderr", r.stderr, `^exported \d+ records to `+regexp.QuoteMeta(out)+`$`)
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("export file mode %v, want 0600", fi.Mode().Perm())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(string(b), "\n")
		checked, firstBad, err := audit.VerifyLines(bytes.NewReader(b))
		if err != nil || firstBad != 0 || checked != int64(lines) || lines < 20 {
			t.Errorf("VerifyLines: checked %d of %d lines, first bad %d: %v", checked, lines, firstBad, err)
		}
		if !strings.Contains(string(b), `"request":"DELETE FROM orders WHERE id = 1"`) {
			t.Errorf("the export lacks the denied DELETE")
		}

		// To standard output, through --config, from a given id on.
		r = f.warden(t, nil, "audit", "export", "--config", f.cfg, "--after-id", "3")
		if r.code != 0 {
			t.Fatalf("export --config: %s", r)
		}
		checked, firstBad, err = audit.VerifyLines(strings.NewReader(r.stdout))
		evs := jsonEvents(t, r.stdout)
		if err != nil || firstBad != 0 || checked == 0 || len(evs) == 0 || evs[0].ID != 4 {
			t.Errorf("export --after-id 3: checked %d, first bad %d, ids %v: %v", checked, firstBad, eventIDs(evs), err)
		}

		// A bad flag writes nothing.
		bad := filepath.Join(t.TempDir(), "bad.jsonl")
		r = f.warden(t, nil, "audit", "export", "--store", f.store, "--since", "tomorrow", "--out", bad)
		if r.code == 0 || !strings.Contains(r.stderr, "--since") {
			t.Errorf("export --since tomorrow: want an error naming --since:\n%s", r)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Errorf("a failed export left %s", bad)
		}
	})
}

// ---- the client's own checks, without a gateway ----------------------------

func TestParseServer(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "http://localhost:8080/", want: "http://localhost:8080"},
		{in: "http://[::1]:8080", want: "http://[::1]:8080"},
		{in: "https://warden.example.com/gw/", want: "https://warden.example.com/gw"},
		{in: "http://warden.example.com", err: "cleartext"},
		{in: "http://10.0.0.1:8080", err: "cleartext"},
		{in: "ftp://127.0.0.1", err: "http:// or https://"},
		{in: "127.0.0.1:8080", err: "http:// or https://"},
		{in: "https://user:pw@warden.example.com", err: "credentials in the URL"},
		{in: "https://warden.example.com/?x=1", err: "without query"},
		{in: "ftp://user:pw@127.0.0.1", err: "http:// or https://"},
		{in: "https://", err: "no host"},
	} {
		u, err := parseServer(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseServer(%q) = %v, %v; want an error containing %q", tc.in, u, err, tc.err)
		case tc.err == "" && (err != nil || u.String() != tc.want):
			t.Errorf("parseServer(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("parseServer(%q): the error repeats the URL's password: %v", tc.in, err)
		}
	}
}

func TestResolveToken(t *testing.T) {
	t.Setenv("WARDEN_TOKEN", "env-token")
	file := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(file, []byte("  file-token\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		name  string
		f     apiFlags
		stdin string
		want  string // token, or the error's text
		err   bool
	}{
		{name: "flag", f: apiFlags{token: "flag-token"}, want: "flag-token"},
		{name: "file", f: apiFlags{tokenFile: file}, want: "file-token"},
		{name: "stdin", f: apiFlags{tokenFile: "-"}, stdin: "stdin-token\n", want: "stdin-token"},
		{name: "environment", want: "env-token"},
		{name: "both", f: apiFlags{token: "a", tokenFile: file}, want: "not both", err: true},
		{name: "empty file", f: apiFlags{tokenFile: empty}, want: "is empty", err: true},
		{name: "missing file", f: apiFlags{tokenFile: file + ".nope"}, want: "no such file", err: true},
		{name: "two tokens", f: apiFlags{token: "a b"}, want: "whitespace", err: true},
		{name: "header injection", f: apiFlags{token: "a\r\nX-Evil: 1"}, want: "whitespace", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.resolveToken(strings.NewReader(tc.stdin))
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, tc.want)
				}
				if strings.Contains(err.Error(), tc.f.token) && tc.f.token != "" {
					t.Errorf("the error repeats the token: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestEventCells(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"SELECT 1", "SELECT 1"},
		{"SELECT\n\t1  ,\r\n 2", "SELECT 1 , 2"},
		{"x\x1b[31mred", `x\x1b[31mred`},
		{"\u202eevil", `\u202eevil`},
		{"bad \xff byte", "bad \ufffd byte"},
		{"", "-"},
		{strings.Repeat("é", 100), strings.Repeat("é", requestColumn-1) + "…"},
	} {
		if got := cell(squeeze(tc.in), requestColumn); got != tc.want {
			t.Errorf("cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	ev := audit.Event{ID: 7, Kind: audit.KindResult, Seq: 3, Rows: 2, Bytes: 40, DurationUS: 1500, Error: "57014: canceled"}
	if got := eventRow(&ev)[7]; got != "#3: 2 rows, 40 bytes, 1.5ms, error 57014: canceled" {
		t.Errorf("result row request cell = %q", got)
	}
}
