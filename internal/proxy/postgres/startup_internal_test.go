package postgres

// Startup behaviour, message by message: what the server answers to each
// startup packet a client may open with, before any token is verified.
// The protocol is "55.2.1 Start-up" and "55.2.10 SSL Session Encryption"
// in the PostgreSQL docs.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/audit"
)

// A step is one thing the scripted client does or expects.
type step func(c *pipeClient) error

func send(msgs ...pgproto3.FrontendMessage) step {
	return func(c *pipeClient) error { c.send(msgs...); return nil }
}

// wantByte expects the single-byte answer to SSLRequest or GSSENCRequest.
func wantByte(want byte) step {
	return func(c *pipeClient) error {
		b, err := c.readByte()
		if err != nil {
			return fmt.Errorf("want %q, got error %v", want, err)
		}
		if b != want {
			return fmt.Errorf("want %q, got %q", want, b)
		}
		return nil
	}
}

// wantMsg expects exactly want (compared by its JSON form, which names
// the type and every field).
func wantMsg(want pgproto3.BackendMessage) step {
	return func(c *pipeClient) error {
		got, err := c.receive()
		if err != nil {
			return fmt.Errorf("want %T, got error %v", want, err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			return fmt.Errorf("want %s, got %s", w, g)
		}
		return nil
	}
}

// wantFatal expects a FATAL ErrorResponse with code whose message
// contains every one of words.
func wantFatal(code string, words ...string) step {
	return func(c *pipeClient) error {
		got, err := c.receive()
		if err != nil {
			return fmt.Errorf("want FATAL %s, got error %v", code, err)
		}
		e, ok := got.(*pgproto3.ErrorResponse)
		if !ok {
			g, _ := json.Marshal(got)
			return fmt.Errorf("want FATAL %s, got %s", code, g)
		}
		if e.Severity != "FATAL" || e.SeverityUnlocalized != "FATAL" || e.Code != code {
			return fmt.Errorf("want FATAL %s, got %s/%s %s: %s", code, e.Severity, e.SeverityUnlocalized, e.Code, e.Message)
		}
		for _, w := range words {
			if !strings.Contains(e.Message, w) {
				return fmt.Errorf("FATAL %s message %q does not mention %q", code, e.Message, w)
			}
		}
		return nil
	}
}

// wantClosed expects the server to close the connection with nothing
// more sent.
func wantClosed() step { return (*pipeClient).closedByServer }

func startup(version uint32, params ...string) *pgproto3.StartupMessage {
	m := &pgproto3.StartupMessage{ProtocolVersion: version, Parameters: map[string]string{}}
	for i := 0; i+1 < len(params); i += 2 {
		m.Parameters[params[i]] = params[i+1]
	}
	return m
}

func startup30(params ...string) *pgproto3.StartupMessage {
	return startup(pgproto3.ProtocolVersion30, params...)
}

// rawStartup is a startup packet with an arbitrary code and no body.
func rawStartup(code uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), code)
}

func allowPlaintext(c *Config) { c.AllowPlaintext = true }

func TestStartup(t *testing.T) {
	checkNoLeaks(t)
	tlsRequired := []string{"TLS is required", "sslmode=require"}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		steps []step
		// What the verifier was shown, and the reason of the one
		// login.failed audit event ("" for none).
		wantVerified []string
		wantAudit    string
	}{
		{
			name: "SSLRequest without TLS gets N and startup continues",
			edit: allowPlaintext,
			steps: []step{
				send(&pgproto3.SSLRequest{}), wantByte('N'),
				send(startup30("user", "agent", "database", "app")),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
			},
		},
		{
			name: "SSLRequest refused twice, then startup",
			edit: allowPlaintext,
			steps: []step{
				send(&pgproto3.SSLRequest{}), wantByte('N'),
				send(&pgproto3.SSLRequest{}), wantByte('N'),
				send(startup30("user", "agent", "database", "app")),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
			},
		},
		{
			// libpq's gssencmode=prefer: GSSENCRequest, then SSLRequest,
			// then plaintext ("55.2.11 GSSAPI Session Encryption").
			name: "GSSENCRequest gets N, then SSLRequest gets N",
			edit: allowPlaintext,
			steps: []step{
				send(&pgproto3.GSSEncRequest{}), wantByte('N'),
				send(&pgproto3.SSLRequest{}), wantByte('N'),
				send(startup30("user", "agent", "database", "app")),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
			},
		},
		{
			name: "remote cleartext refused before the password is asked for",
			steps: []step{
				send(startup30("user", "agent", "database", "app")),
				wantFatal("28000", tlsRequired...), wantClosed(),
			},
			wantAudit: "TLS is required",
		},
		{
			name: "remote cleartext refused after SSLRequest was answered N",
			steps: []step{
				send(&pgproto3.SSLRequest{}), wantByte('N'),
				send(startup30("user", "agent", "database", "app")),
				wantFatal("28000", tlsRequired...), wantClosed(),
			},
			wantAudit: "TLS is required",
		},
		{
			// A client that sends its password without being asked
			// gets no further: the refusal comes first, and the token
			// is never read.
			name: "remote cleartext refused even with the password pipelined",
			steps: []step{
				send(startup30("user", "agent", "database", "app"), &pgproto3.PasswordMessage{Password: "pipelined.token"}),
				wantFatal("28000", tlsRequired...), wantClosed(),
			},
			wantAudit: "TLS is required",
		},
		{
			name: "AllowPlaintext asks for the token and verifies it",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "app")),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
				send(&pgproto3.PasswordMessage{Password: "  the.token  "}),
				wantFatal("28P01", "password authentication failed", "token rejected: bad_signature"), wantClosed(),
			},
			wantVerified: []string{"the.token"},
			wantAudit:    "password authentication failed: token rejected: bad_signature",
		},
		{
			name: "AllowPlaintext: a message other than the password",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "app")),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
				send(&pgproto3.Query{String: "SELECT 1"}),
				wantFatal("08P01", "password message"), wantClosed(),
			},
			wantAudit: "expected a password message carrying the access token",
		},
		{
			name: "unknown target",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "prod")),
				wantFatal("3D000", `unknown target "prod"`, "dbname"), wantClosed(),
			},
			wantAudit: `unknown target "prod"`,
		},
		{
			name: "no database parameter",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent")),
				wantFatal("3D000", `unknown target ""`), wantClosed(),
			},
			wantAudit: `unknown target ""`,
		},
		{
			name: "unknown target from a remote plaintext client",
			steps: []step{
				send(startup30("user", "agent", "database", "prod")),
				wantFatal("3D000", `unknown target "prod"`), wantClosed(),
			},
			wantAudit: `unknown target "prod"`,
		},
		{
			name: "physical replication",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "app", "replication", "true")),
				wantFatal("08P01", "replication"), wantClosed(),
			},
			wantAudit: "replication connections are not supported",
		},
		{
			name: "logical replication",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "app", "replication", "database")),
				wantFatal("08P01", "replication"), wantClosed(),
			},
			wantAudit: "replication connections are not supported",
		},
		{
			name: "any replication parameter is refused, even false",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "app", "replication", "false")),
				wantFatal("08P01", "replication"), wantClosed(),
			},
			wantAudit: "replication connections are not supported",
		},
		{
			name: "protocol 3.2 gets NegotiateProtocolVersion first",
			edit: allowPlaintext,
			steps: []step{
				send(startup(pgproto3.ProtocolVersion32, "user", "agent", "database", "app")),
				wantMsg(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: []string{}}),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
			},
		},
		{
			name: "protocol 3.2 refused still gets NegotiateProtocolVersion first",
			steps: []step{
				send(startup(pgproto3.ProtocolVersion32, "user", "agent", "database", "app")),
				wantMsg(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: []string{}}),
				wantFatal("28000", tlsRequired...), wantClosed(),
			},
			wantAudit: "TLS is required",
		},
		{
			name: "protocol 2.0 is closed",
			steps: []step{
				func(c *pipeClient) error { c.sendRaw(rawStartup(2 << 16)); return nil },
				wantClosed(),
			},
		},
		{
			name: "a regular message instead of a startup packet is closed",
			steps: []step{
				send(&pgproto3.Query{String: "SELECT 1"}),
				wantClosed(),
			},
		},
		{
			name: "a startup packet over the 10,000-byte limit is closed",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "app", "application_name", strings.Repeat("x", 10_000))),
				wantClosed(),
			},
		},
		{
			name: "a client that hangs up at the password prompt is not a failed login",
			edit: allowPlaintext,
			steps: []step{
				send(startup30("user", "agent", "database", "app")),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
				func(c *pipeClient) error { return c.conn.Close() },
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.edit)
			c := dial(t, s.Server)
			for i, st := range tc.steps {
				if err := st(c); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			// Let handle finish before looking at what it did.
			c.conn.Close()
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				t.Fatal("handle did not return")
			}
			if got := s.verifier.calls(); !slices.Equal(got, tc.wantVerified) {
				t.Errorf("verifier saw %q, want %q", got, tc.wantVerified)
			}
			evs := s.sink.all()
			switch {
			case tc.wantAudit == "" && len(evs) > 0:
				t.Errorf("audit events %+v, want none", evs)
			case tc.wantAudit != "":
				if len(evs) != 1 {
					t.Fatalf("audit events %+v, want one login.failed", evs)
				}
				ev := evs[0]
				if ev.Kind != audit.KindLoginFailed || ev.Decision != audit.Deny || ev.Protocol != "postgres" ||
					ev.SessionID == "" || !strings.Contains(ev.Reason, tc.wantAudit) {
					t.Errorf("audit event %+v, want login.failed/deny with reason containing %q", ev, tc.wantAudit)
				}
			}
			if n := s.SessionCount(); n != 0 {
				t.Errorf("SessionCount = %d, want 0", n)
			}
		})
	}
}

// The token is read with a bound: a password message over MaxTokenBytes
// ends the connection without reaching the verifier.
func TestTokenSizeLimit(t *testing.T) {
	checkNoLeaks(t)
	const max = 64
	for _, tc := range []struct {
		name     string
		tokenLen int
		verified bool
	}{
		{"short", 10, true},
		// The body is the token and its NUL terminator.
		{"body exactly at the limit", max - 1, true},
		{"one byte over", max + 1, false},
		{"far over", 100_000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) {
				c.AllowPlaintext = true
				c.MaxTokenBytes = max
			})
			c := dial(t, s.Server)
			token := strings.Repeat("t", tc.tokenLen)
			for i, st := range []step{
				send(startup30("user", "agent", "database", "app")),
				wantMsg(&pgproto3.AuthenticationCleartextPassword{}),
				send(&pgproto3.PasswordMessage{Password: token}),
			} {
				if err := st(c); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			wantCode := "08P01"
			if tc.verified {
				wantCode = "28P01"
			}
			if err := wantFatal(wantCode)(c); err != nil {
				t.Fatal(err)
			}
			if err := c.closedByServer(); err != nil {
				t.Fatal(err)
			}
			calls := s.verifier.calls()
			switch {
			case tc.verified && (len(calls) != 1 || calls[0] != token):
				t.Errorf("verifier called %d times, want once with the token", len(calls))
			case !tc.verified && len(calls) != 0:
				t.Errorf("verifier called %d times with an oversized token, want never", len(calls))
			}
			if evs := s.sink.all(); len(evs) != 1 || evs[0].Kind != audit.KindLoginFailed {
				t.Errorf("audit events %+v, want one login.failed", evs)
			}
		})
	}
}

// cancelUpstream is a loopback listener standing in for the upstream
// PostgreSQL's postmaster: it records the CancelRequests it receives.
type cancelUpstream struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []pgproto3.CancelRequest
	errs []error
}

func newCancelUpstream(t *testing.T) *cancelUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &cancelUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// One at a time: cancel routing is sequential here.
			c.SetDeadline(time.Now().Add(ioTimeout))
			be := pgproto3.NewBackend(bufio.NewReader(c), c)
			m, err := be.ReceiveStartupMessage()
			u.mu.Lock()
			if cr, ok := m.(*pgproto3.CancelRequest); ok && err == nil {
				u.got = append(u.got, pgproto3.CancelRequest{ProcessID: cr.ProcessID, SecretKey: append([]byte(nil), cr.SecretKey...)})
			} else {
				u.errs = append(u.errs, fmt.Errorf("upstream got %T, %v", m, err))
			}
			u.mu.Unlock()
			c.Close() // as PostgreSQL does once the cancel is delivered
		}
	}()
	t.Cleanup(u.stop)
	return u
}

// stop closes the listener and waits for its goroutine. It may be
// called more than once.
func (u *cancelUpstream) stop() {
	u.ln.Close()
	u.wg.Wait()
}

// A CancelRequest is answered with nothing, whatever it names ("55.2.8
// Canceling Requests in Progress"), and only one with the right secret
// reaches the upstream, carrying the upstream's own key.
func TestCancelRequest(t *testing.T) {
	checkNoLeaks(t)
	secret := []byte{0xde, 0xad, 0xbe, 0xef}
	upKey := []byte{1, 2, 3, 4}
	const upPID = 4242
	for _, tc := range []struct {
		name      string
		pid       func(registered uint32) uint32
		key       []byte
		forwarded bool
	}{
		{"unknown pid", func(p uint32) uint32 { return p ^ 1 }, secret, false},
		{"pid zero", func(uint32) uint32 { return 0 }, secret, false},
		{"wrong secret", func(p uint32) uint32 { return p }, []byte{0xde, 0xad, 0xbe, 0xee}, false},
		{"secret prefix", func(p uint32) uint32 { return p }, secret[:3], false},
		{"secret with a suffix", func(p uint32) uint32 { return p }, append(append([]byte(nil), secret...), 0), false},
		{"long secret (protocol 3.2)", func(p uint32) uint32 { return p }, bytes.Repeat([]byte{0xde}, 256), false},
		{"right pid and secret", func(p uint32) uint32 { return p }, secret, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newCancelUpstream(t)
			s := newTestServer(t, nil)
			clientEnd, clientPeer := net.Pipe()
			upEnd, upPeer := net.Pipe()
			t.Cleanup(func() {
				for _, c := range []net.Conn{clientEnd, clientPeer, upEnd, upPeer} {
					c.Close()
				}
			})
			ss := &session{
				srv: s.Server, secret: secret, client: clientEnd, rawClient: clientEnd, upstream: upEnd,
				upPID: upPID, upKey: upKey, upAddr: up.ln.Addr().String(),
			}
			if !s.register(ss) {
				t.Fatal("register refused")
			}
			t.Cleanup(func() { s.unregister(ss) })

			c := dial(t, s.Server)
			c.send(&pgproto3.CancelRequest{ProcessID: tc.pid(ss.pid), SecretKey: tc.key})
			if err := c.closedByServer(); err != nil {
				t.Fatal(err)
			}
			up.stop()
			var want []pgproto3.CancelRequest
			if tc.forwarded {
				want = []pgproto3.CancelRequest{{ProcessID: upPID, SecretKey: upKey}}
			}
			g, _ := json.Marshal(up.got)
			w, _ := json.Marshal(want)
			if !bytes.Equal(g, w) || len(up.errs) > 0 {
				t.Errorf("upstream received %s (errors %v), want %s", g, up.errs, w)
			}
			if n := s.SessionCount(); n != 1 {
				t.Errorf("SessionCount = %d, want the one registered session", n)
			}
			if evs := s.sink.all(); len(evs) != 0 {
				t.Errorf("audit events %+v, want none for a cancel", evs)
			}
		})
	}
}

// clientTLS is a client config that trusts testTLS's certificate.
func clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	leaf := testTLS(t).Certificates[0].Leaf
	if leaf == nil {
		t.Fatal("test certificate has no parsed leaf")
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// With TLS configured, SSLRequest is answered 'S' and the token may then
// be asked for from a remote client, over TLS.
func TestSSLRequestTLS(t *testing.T) {
	checkNoLeaks(t)
	s := newTestServer(t, func(c *Config) { c.TLS = testTLS(t) })
	c := dial(t, s.Server)
	c.send(&pgproto3.SSLRequest{})
	if err := wantByte('S')(c); err != nil {
		t.Fatal(err)
	}
	if n := c.br.Buffered(); n != 0 {
		t.Fatalf("%d bytes after 'S' before the handshake", n)
	}
	tc := tls.Client(c.conn, clientTLS(t))
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	b, _ := startup30("user", "agent", "database", "app").Encode(nil)
	if _, err := tc.Write(b); err != nil {
		t.Fatal(err)
	}
	fe := pgproto3.NewFrontend(tc, tc)
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(*pgproto3.AuthenticationCleartextPassword); !ok {
		t.Fatalf("over TLS from a remote client: want AuthenticationCleartextPassword, got %T %+v", m, m)
	}
	// The token goes to the verifier over TLS.
	b, _ = (&pgproto3.PasswordMessage{Password: "tok"}).Encode(nil)
	tc.Write(b)
	m, err = fe.Receive()
	if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != "28P01" {
		t.Fatalf("want FATAL 28P01, got %T %+v, %v", m, m, err)
	}
	tc.Close()
}

// Bytes that arrive after SSLRequest and before the TLS handshake were
// sent in clear by someone, and must not be read as if they had come over
// TLS (CVE-2021-23214, the PostgreSQL server's bug of this class; libpq's
// sibling is CVE-2021-23222). With TLS configured, the server must hang
// up without answering 'S'.
func TestSSLRequestBufferedPlaintextClosed(t *testing.T) {
	checkNoLeaks(t)
	pipelinedStartup, _ := startup30("user", "agent", "database", "app").Encode(nil)
	for _, tc := range []struct {
		name  string
		extra []byte
	}{
		{"one byte", []byte{'Q'}},
		{"a StartupMessage", pipelinedStartup},
		{"a Query", mustEncode(t, &pgproto3.Query{String: "SELECT 1"})},
		{"a TLS record header", []byte{0x16, 0x03, 0x01, 0x00, 0x05}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) { c.TLS = testTLS(t) })
			c := dial(t, s.Server)
			c.sendRaw(append(mustEncode(t, &pgproto3.SSLRequest{}), tc.extra...))
			if err := c.closedByServer(); err != nil {
				t.Fatalf("SSLRequest followed by %d plaintext bytes in the same write: %v", len(tc.extra), err)
			}
		})
	}
}

func mustEncode(t *testing.T, m pgproto3.FrontendMessage) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
