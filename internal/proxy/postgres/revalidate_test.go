package postgres_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// waitClosed reads from the client's connection until the server closes
// it, and returns the FATAL error it sent first, if any.
func waitClosed(t *testing.T, c *pgx.Conn, within time.Duration) (*pgconn.PgError, time.Duration) {
	t.Helper()
	start := time.Now()
	pc := c.PgConn()
	fe := pc.Frontend()
	pc.Conn().SetReadDeadline(time.Now().Add(within))
	var fatal *pgconn.PgError
	for {
		msg, err := fe.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
				return fatal, time.Since(start)
			}
			t.Fatalf("waiting for the server to close the session: %v (after %v)", err, time.Since(start))
		}
		if er, ok := msg.(*pgproto3.ErrorResponse); ok && fatal == nil {
			fatal = pgconn.ErrorResponseToPgError(er)
		}
	}
}

// A session whose token expires is closed at expiry, not at its next
// reconnect.
func TestSessionClosedAtTokenExpiry(t *testing.T) {
	e := newEnv(t, "")
	tok := e.issuer.Token(t, "short-lived", map[string]any{"groups": []string{"analysts"}}, 2*time.Second)
	c := e.connect(tok)
	if _, err := c.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	fatal, after := waitClosed(t, c, 10*time.Second)
	if fatal == nil || fatal.Severity != "FATAL" || !strings.Contains(fatal.Message, "expired") {
		t.Fatalf("want a FATAL naming the expiry, got %+v", fatal)
	}
	// Expiry was ~2s after minting; the session must not outlive it by a second.
	if after > 3*time.Second {
		t.Fatalf("session closed %v after the test started waiting", after)
	}
}

// Terminating a subject's sessions (what revocation does) closes its open
// psql/pgx sessions at once with a FATAL error.
func TestTerminateSubject(t *testing.T) {
	e := newEnv(t, "")
	c1 := e.connect(e.token("contractor", "analysts"))
	c2 := e.connect(e.token("contractor", "analysts"))
	other := e.connect(e.token("employee", "analysts"))
	if n := len(e.gw.PG.Sessions()); n != 3 {
		t.Fatalf("sessions = %d", n)
	}
	if n := e.gw.PG.TerminateSubject("contractor", "access revoked"); n != 2 {
		t.Fatalf("terminated %d sessions, want 2", n)
	}
	for _, c := range []*pgx.Conn{c1, c2} {
		fatal, after := waitClosed(t, c, 5*time.Second)
		if fatal == nil || fatal.Code != "57P01" || !strings.Contains(fatal.Message, "revoked") || after > time.Second {
			t.Fatalf("got %+v after %v", fatal, after)
		}
	}
	if _, err := other.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatalf("another subject's session was affected: %v", err)
	}
}
