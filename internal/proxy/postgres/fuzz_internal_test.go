package postgres

// Fuzz targets for the two places warden reads bytes an unauthenticated
// or untrusted client chose: the startup exchange, and the framing and
// first decoding of every message in a session. Seed corpora are in
// testdata/fuzz/<Name>/; run with, e.g.,
//
//	go test -run '^$' -fuzz '^FuzzStartup$' -fuzztime 60s ./internal/proxy/postgres/

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// fuzzMaxToken is MaxTokenBytes in FuzzStartup: small, so the fuzzer can
// reach the limit.
const fuzzMaxToken = 256

// FuzzStartup feeds data to (*Server).handle as a client's first bytes,
// then shuts down the client's sending side. withTLS configures a
// certificate (so SSLRequest is answered 'S' and data goes on as a TLS
// ClientHello); allowPlaintext is Config.AllowPlaintext. The verifier
// rejects every token.
//
// Invariants: handle never panics and returns within a bound; no session
// is ever registered or audited as started; a token is only ever read
// from this remote (non-loopback) client when AllowPlaintext says so, and
// never over MaxTokenBytes; no audit event carries the token; every
// refusal is audited; and what the server writes in clear is a
// well-formed sequence of the startup answers it may give, refusals in
// warden's voice.
func FuzzStartup(f *testing.F) {
	tlsConfig := testTLS(f)
	policy := compiledPolicy(f)
	target := testTarget(f)
	facts := sqlfacts.NewCache(16)
	f.Fuzz(func(t *testing.T, data []byte, withTLS, allowPlaintext bool) {
		verifier := &rejectingVerifier{}
		var s *Server
		sink := &memSink{onRecord: func(ev *audit.Event) {
			if ev.Kind != audit.KindLoginFailed || ev.Decision != audit.Deny {
				t.Errorf("audit event %s/%s: only failed logins are possible here", ev.Kind, ev.Decision)
			}
			if n := s.SessionCount(); n != 0 {
				t.Errorf("SessionCount = %d during startup", n)
			}
		}}
		cfg := Config{
			Targets:          map[string]*Target{"app": target},
			Verifier:         verifier,
			Policy:           policy,
			Facts:            facts,
			Audit:            sink,
			Logger:           slog.New(slog.DiscardHandler),
			AllowPlaintext:   allowPlaintext,
			MaxTokenBytes:    fuzzMaxToken,
			HandshakeTimeout: 200 * time.Millisecond,
		}
		if withTLS {
			cfg.TLS = tlsConfig
		}
		var err error
		if s, err = NewServer(cfg); err != nil {
			t.Fatal(err)
		}
		defer s.Close()

		out, cut := runStartup(t, s, data)

		if n := s.SessionCount(); n != 0 {
			t.Errorf("SessionCount = %d, want 0", n)
		}
		tokens := verifier.calls()
		evs := sink.all()
		if len(tokens) > 1 {
			t.Errorf("verifier called %d times on one connection", len(tokens))
		}
		if len(evs) > 1 {
			t.Errorf("%d audit events for one connection, want at most one", len(evs))
		}
		for _, tok := range tokens {
			if len(tok) > fuzzMaxToken {
				t.Errorf("verifier shown a %d-byte token; MaxTokenBytes is %d", len(tok), fuzzMaxToken)
			}
			if tok != strings.TrimSpace(tok) {
				t.Errorf("verifier shown an untrimmed token %q", tok)
			}
			if len(tok) >= 8 {
				for _, ev := range evs {
					if eventMentions(&ev, tok) {
						t.Errorf("audit event %+v contains the token", ev)
					}
				}
			}
			if len(evs) != 1 || !strings.HasPrefix(evs[0].Reason, "password authentication failed") {
				t.Errorf("a rejected token was not audited as such: %+v", evs)
			}
		}
		// The fuzzer cannot complete a TLS handshake, so a token can
		// only have been read in clear.
		if !allowPlaintext && len(tokens) > 0 {
			t.Errorf("token read in clear from a non-loopback client without AllowPlaintext")
		}
		fatals, clear := checkStartupOutput(t, out, withTLS, allowPlaintext)
		if clear && !cut && fatals != len(evs) {
			t.Errorf("%d FATAL responses but %d audit events: every refusal is audited, and only refusals", fatals, len(evs))
		}
	})
}

// runStartup runs s.handle with data as everything the client sends,
// and returns all the server wrote. cut reports that the server's writes
// were cut short by its handshake deadline.
//
// A net.Pipe can only be closed whole, which would make the server's
// first answer fail and end every exchange after one packet. So the
// connection is two pipes, one each way: the client closes its sending
// pipe after writing, as a TCP client shuts down its sending side, and
// keeps reading the server's answers until the server hangs up.
func runStartup(t *testing.T, s *Server, data []byte) (out []byte, cut bool) {
	t.Helper()
	toServer, fromClient := net.Pipe()
	fromServer, toClient := net.Pipe()
	conn := &pipePair{r: fromClient, w: toClient}
	start := time.Now()
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		s.handle(conn)
	}()
	var buf bytes.Buffer
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(&buf, fromServer) // until the server closes
	}()
	toServer.SetWriteDeadline(time.Now().Add(5 * time.Second))
	toServer.Write(data) // fails if the server hangs up first; that is fine
	toServer.Close()
	select {
	case <-handled:
	case <-time.After(5 * time.Second):
		t.Fatal("handle did not return within 5s of the client's last byte")
	}
	toServer.Close()
	<-drained
	fromServer.Close()
	return buf.Bytes(), time.Since(start) >= s.cfg.HandshakeTimeout
}

// pipePair is one side of a connection made of two net.Pipes, one per
// direction, so that each direction can be closed alone.
type pipePair struct {
	r, w net.Conn
}

func (p *pipePair) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipePair) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipePair) Close() error                { return errors.Join(p.r.Close(), p.w.Close()) }
func (p *pipePair) LocalAddr() net.Addr         { return p.r.LocalAddr() }
func (p *pipePair) RemoteAddr() net.Addr        { return p.r.RemoteAddr() }
func (p *pipePair) SetDeadline(t time.Time) error {
	return errors.Join(p.r.SetDeadline(t), p.w.SetDeadline(t))
}
func (p *pipePair) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *pipePair) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }

func eventMentions(ev *audit.Event, s string) bool {
	for _, f := range []string{ev.Target, ev.Client, ev.Subject, ev.Issuer, ev.TokenID, ev.Request, ev.Reason, ev.Error} {
		if strings.Contains(f, s) {
			return true
		}
	}
	return false
}

// checkStartupOutput checks what the server wrote: any number of 'N'
// answers, then either 'S' and TLS, or at most a NegotiateProtocolVersion,
// an AuthenticationCleartextPassword and a FATAL ErrorResponse, in that
// order, and nothing after the FATAL. It returns the number of FATALs and
// whether the output was all in clear (no 'S').
func checkStartupOutput(t *testing.T, out []byte, withTLS, allowPlaintext bool) (fatals int, clear bool) {
	t.Helper()
	for len(out) > 0 && out[0] == 'N' {
		out = out[1:]
	}
	if len(out) > 0 && out[0] == 'S' {
		if !withTLS {
			t.Fatalf("server answered 'S' without a TLS config")
		}
		return 0, false // the rest is TLS
	}
	mr := msgReader{r: bufio.NewReader(bytes.NewReader(out))}
	stage := 0 // 1: NegotiateProtocolVersion, 2: password request, 3: FATAL
	for {
		typ, body, err := mr.next()
		if err == io.EOF {
			return fatals, true
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fatals, true // a write cut short by the handshake deadline
		}
		if err != nil {
			t.Fatalf("server wrote a malformed message: %v (output %q)", err, out)
		}
		next := 0
		switch typ {
		case 'v':
			var m pgproto3.NegotiateProtocolVersion
			if err := m.Decode(body); err != nil || m.NewestMinorProtocol != 0 || len(m.UnrecognizedOptions) != 0 {
				t.Errorf("NegotiateProtocolVersion %q: %+v, %v; want minor 0 and no options", body, m, err)
			}
			next = 1
		case 'R':
			if !bytes.Equal(body, []byte{0, 0, 0, 3}) {
				t.Fatalf("authentication request %q, want AuthenticationCleartextPassword", body)
			}
			if !allowPlaintext {
				t.Errorf("password requested in clear from a non-loopback client without AllowPlaintext")
			}
			next = 2
		case 'E':
			var m pgproto3.ErrorResponse
			if err := m.Decode(body); err != nil {
				t.Fatalf("ErrorResponse %q: %v", body, err)
			}
			if m.Severity != "FATAL" || !strings.HasPrefix(m.Message, "warden: ") || len(m.Code) != 5 {
				t.Errorf("startup error %s %s %q, want a FATAL in warden's voice", m.Severity, m.Code, m.Message)
			}
			fatals++
			next = 3
		default:
			t.Fatalf("server wrote message %q during startup (output %q)", typ, out)
		}
		if next <= stage {
			t.Fatalf("server wrote %q out of order (output %q)", typ, out)
		}
		stage = next
	}
}

// fuzzMaxMessage is the msgReader limit in FuzzClientMessages.
const fuzzMaxMessage = 4096

// FuzzClientMessages runs the session's framing (msgReader) over data and,
// for every message it yields, the decoding the client loop applies to
// it. A simple model of the framing ("55.7 Message Formats") says what
// each call must return: the type byte and exactly the declared body, a
// *tooLargeError exactly when the declared body exceeds the limit, and an
// error for a length under 4 or a truncated message.
func FuzzClientMessages(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		// Two readers: one that hands over whatever is asked for, and
		// one that gives a byte at a time through a minimal buffer, so
		// every Peek and ReadFull crosses a refill.
		checkFraming(t, data, bufio.NewReader(bytes.NewReader(data)))
		checkFraming(t, data, bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16))
	})
}

func checkFraming(t *testing.T, data []byte, r *bufio.Reader) {
	t.Helper()
	m := msgReader{r: r, max: fuzzMaxMessage}
	for off := 0; ; {
		typ, body, err := m.next()
		rest := data[off:]
		// The model.
		var (
			wantErr   string // "" for a message, else the error kind
			wantTyp   byte
			wantBody  []byte
			wantLarge int
		)
		switch {
		case len(rest) == 0:
			wantErr = "eof"
		case len(rest) < 5:
			wantErr = "unexpected eof"
		default:
			wantTyp = rest[0]
			l := int(int32(binary.BigEndian.Uint32(rest[1:5])))
			switch n := l - 4; {
			case l < 4:
				wantErr = "invalid length"
			case n > fuzzMaxMessage:
				wantErr, wantLarge = "too large", n
			case len(rest)-5 < n:
				wantErr = "unexpected eof"
			default:
				wantBody = rest[5 : 5+n]
				off += 5 + n
			}
		}
		var tl *tooLargeError
		switch wantErr {
		case "":
			if err != nil {
				t.Fatalf("at %d: want message %q of %d bytes, got error %v", len(data)-len(rest), wantTyp, len(wantBody), err)
			}
			if typ != wantTyp || !bytes.Equal(body, wantBody) {
				t.Fatalf("at %d: want %q %q, got %q %q", len(data)-len(rest), wantTyp, wantBody, typ, body)
			}
		case "eof":
			if err != io.EOF {
				t.Fatalf("at the end: want io.EOF, got %v (message %q)", err, typ)
			}
			return
		case "unexpected eof":
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncated message: want io.ErrUnexpectedEOF, got %v", err)
			}
			return
		case "too large":
			if !errors.As(err, &tl) || tl.typ != wantTyp || tl.size != wantLarge || tl.max != fuzzMaxMessage {
				t.Fatalf("declared body %d > max %d: want tooLargeError{%q %d %d}, got %v", wantLarge, fuzzMaxMessage, wantTyp, wantLarge, fuzzMaxMessage, err)
			}
			return
		case "invalid length":
			if err == nil || errors.As(err, &tl) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("length under 4: want a framing error, got %v", err)
			}
			return
		}
		if len(body) > fuzzMaxMessage {
			t.Fatalf("body of %d bytes over the limit %d", len(body), fuzzMaxMessage)
		}
		decodeClientMessage(t, typ, body)
	}
}

// decodeClientMessage applies clientLoop's decoding to one message and
// checks it against what PostgreSQL reads from the same bytes.
func decodeClientMessage(t *testing.T, typ byte, body []byte) {
	t.Helper()
	nul := bytes.IndexByte(body, 0)
	switch typ {
	case 'Q':
		q, ok := cstring(body)
		wantOK := len(body) > 0 && body[len(body)-1] == 0
		if ok != wantOK || ok && q != string(body[:len(body)-1]) {
			t.Fatalf("cstring(%q) = %q, %v", body, q, ok)
		}
	case 'P':
		var p pgproto3.Parse
		if err := p.Decode(body); err == nil {
			// PostgreSQL reads the statement name and the query as
			// the first two C strings (exec_parse_message); the
			// decision must be about that same query.
			name, query, ok := twoCStrings(body)
			if !ok || p.Name != name || p.Query != query {
				t.Fatalf("Parse decoded as %q %q; the message's C strings are %q %q (%v)", p.Name, p.Query, name, query, ok)
			}
		}
	case 'C':
		var c pgproto3.Close
		if err := c.Decode(body); err == nil {
			if len(body) < 2 || c.ObjectType != body[0] || c.Name != string(body[1:len(body)-1]) || strings.IndexByte(c.Name, 0) >= 0 {
				t.Fatalf("Close decoded as %q %q from %q", c.ObjectType, c.Name, body)
			}
		}
	case 'B':
		portal, stmt, ok := twoCStrings(body)
		if ok {
			if nul < 0 || portal != string(body[:nul]) || !strings.HasPrefix(string(body[nul+1:]), stmt+"\x00") {
				t.Fatalf("twoCStrings(%q) = %q, %q", body, portal, stmt)
			}
		} else if nul >= 0 && bytes.IndexByte(body[nul+1:], 0) >= 0 {
			t.Fatalf("twoCStrings(%q) failed on a body with two C strings", body)
		}
	case 'E':
		portal, ok := firstCString(body)
		if ok != (nul >= 0) || ok && portal != string(body[:nul]) {
			t.Fatalf("firstCString(%q) = %q, %v", body, portal, ok)
		}
	}
}
