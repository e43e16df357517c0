package postgres_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/devtls"
	"github.com/warden-gateway/warden/internal/store"
)

// Every connection attempt and every statement is in the audit log with
// the identity that made it and the rule that decided.
func TestAuditRecords(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	c := e.connect(e.token("agent-7", "analysts"))
	if _, err := c.Exec(ctx, "SELECT count(*) FROM orders"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(ctx, "DELETE FROM orders WHERE id = 42")
	wantDenied(t, err)
	c.Close(ctx)
	if _, err := pgx.Connect(ctx, e.connString("forged.token.value")); err == nil {
		t.Fatal("forged token accepted")
	}

	// The session's end is recorded once warden sees the client go:
	// wait for it, bounded.
	var evs []audit.Event
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		evs, err = e.gw.Store.Query(ctx, store.Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		ended := false
		for _, ev := range evs {
			ended = ended || ev.Kind == audit.KindSessionEnd && ev.Subject == "agent-7"
		}
		if ended || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	find := func(pred func(ev *audit.Event) bool) *audit.Event {
		for i := range evs {
			if pred(&evs[i]) {
				return &evs[i]
			}
		}
		return nil
	}
	if ev := find(func(ev *audit.Event) bool { return ev.Kind == audit.KindSessionStart && ev.Subject == "agent-7" }); ev == nil || ev.Target != "app" || ev.Issuer != e.issuer.URL || ev.Client == "" {
		t.Fatalf("session start: %+v", ev)
	}
	allowed := find(func(ev *audit.Event) bool { return ev.Kind == audit.KindStatement && ev.Decision == audit.Allow })
	if allowed == nil || allowed.Subject != "agent-7" || allowed.Request != "SELECT count(*) FROM orders" || allowed.Policy != "analysts" || allowed.Rule != "analysts/allow[0]" || allowed.StmtKind != "select" || len(allowed.RequestHash) != 64 {
		t.Fatalf("allowed statement record: %+v", allowed)
	}
	denied := find(func(ev *audit.Event) bool { return ev.Kind == audit.KindStatement && ev.Decision == audit.Deny })
	if denied == nil || denied.Subject != "agent-7" || !strings.Contains(denied.Request, "DELETE FROM orders") || denied.Rule != "default deny" || !strings.Contains(denied.Reason, "public.orders") {
		t.Fatalf("denied statement record: %+v", denied)
	}
	failed := find(func(ev *audit.Event) bool { return ev.Kind == audit.KindLoginFailed })
	if failed == nil || failed.Decision != audit.Deny || !strings.Contains(failed.Reason, "token rejected") || failed.Subject != "" {
		t.Fatalf("failed login record: %+v", failed)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Request+ev.Reason+ev.Error, "forged.token.value") {
			t.Fatalf("a token reached the audit log: %+v", ev)
		}
	}
	if end := find(func(ev *audit.Event) bool { return ev.Kind == audit.KindSessionEnd && ev.Subject == "agent-7" }); end == nil || end.Error != "" {
		t.Fatalf("session end record of a clean close: %+v", end)
	}
	if _, bad, err := e.gw.Store.Verify(ctx); err != nil || bad != 0 {
		t.Fatalf("chain: bad=%d err=%v", bad, err)
	}
}

// If the audit log cannot be written, warden refuses (fail closed) and the
// statement never reaches the database.
func TestAuditUnavailableRefuses(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	c := e.connect(e.token("writer-1", "writers"))
	before := count(t, "SELECT count(*) FROM orders")
	e.gw.Store.Close()
	_, err := c.Exec(ctx, "INSERT INTO orders (id, customer_id, amount) VALUES (900100, 1, 1)")
	if pe := pgErr(t, err); pe.Code != "58000" || !strings.Contains(pe.Message, "audit") {
		t.Fatalf("got %s: %s", pe.Code, pe.Message)
	}
	if after := count(t, "SELECT count(*) FROM orders"); after != before {
		t.Fatal("a statement ran although its audit record could not be written")
	}
	// New sessions are refused too.
	if _, err := pgx.Connect(ctx, e.connString(e.token("writer-1", "writers"))); err == nil {
		t.Fatal("a session started without an audit log")
	}
}

// SSLRequest is answered with TLS when configured; the token then never
// crosses the wire in clear.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, err := devtls.SelfSigned(dir, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, "", "tls: { cert: "+cert+", key: "+key+" }\n")
	ctx := context.Background()
	c, err := pgx.Connect(ctx, strings.Replace(e.connString(e.token("agent-1", "analysts")), "sslmode=disable", "sslmode=require", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, want TLS", c.PgConn().Conn())
	}
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	_, err = c.Exec(ctx, "DELETE FROM orders")
	wantDenied(t, err)
}
