package postgres

// Helpers for the internal tests: a Server built from real parts (a
// compiled policy, a real Target) around a verifier that rejects every
// token, and a scripted client on the other end of a net.Pipe.
//
// net.Pipe is the point: its addresses are not TCP loopback, so the
// server treats the client as remote (isLoopback returns false), and it
// has no kernel buffer, so a byte the server did not send cannot be
// mistaken for one it did.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/devtls"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// ioTimeout bounds every read and write a test makes on a pipe.
const ioTimeout = 2 * time.Second

// testConfigYAML is a small but complete warden.yaml: the policy is
// compiled for real, though no test here gets as far as using it.
const testConfigYAML = `
listen: { postgres: 127.0.0.1:6432 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
targets:
  - { name: app, type: postgres, address: "127.0.0.1:5432", database: app, user: warden }
policies:
  - name: analysts
    when: '"analysts" in groups'
    allow:
      - target: app
        sql: { select: [public.orders] }
`

var (
	testPolicyOnce sync.Once
	testPolicy     *policy.Engine
	testPolicyErr  error
)

// compiledPolicy compiles testConfigYAML once per test binary.
func compiledPolicy(tb testing.TB) *policy.Engine {
	tb.Helper()
	testPolicyOnce.Do(func() {
		cfg, err := config.Parse([]byte(testConfigYAML), "warden.yaml")
		if err != nil {
			testPolicyErr = err
			return
		}
		testPolicy, testPolicyErr = policy.Compile(cfg)
	})
	if testPolicyErr != nil {
		tb.Fatalf("policy: %v", testPolicyErr)
	}
	return testPolicy
}

// rejectingVerifier refuses every token, and remembers what it was shown.
// The verifier is not what these tests are about; what the server does
// before and after asking it is.
type rejectingVerifier struct {
	mu     sync.Mutex
	tokens []string
}

func (v *rejectingVerifier) Verify(_ context.Context, raw string) (*identity.Principal, error) {
	v.mu.Lock()
	v.tokens = append(v.tokens, raw)
	v.mu.Unlock()
	return nil, &identity.VerifyError{Reason: identity.ReasonBadSignature, Err: errors.New("test verifier rejects every token")}
}

func (v *rejectingVerifier) calls() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.tokens...)
}

// memSink is an audit.Sink that keeps events in memory. onRecord, if set,
// runs inside Record (under no lock).
type memSink struct {
	onRecord func(ev *audit.Event)

	mu     sync.Mutex
	events []audit.Event
}

func (s *memSink) Record(_ context.Context, ev *audit.Event) error {
	if s.onRecord != nil {
		s.onRecord(ev)
	}
	s.mu.Lock()
	s.events = append(s.events, *ev)
	s.mu.Unlock()
	return nil
}

func (s *memSink) all() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Event(nil), s.events...)
}

// testTarget is the one target, "app". Its address is never dialed: no
// test here gets past the verifier.
func testTarget(tb testing.TB) *Target {
	tb.Helper()
	t, err := NewTarget("app", "127.0.0.1:1", "app", "warden", "secret", "disable", "")
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// testServer is a Server with its collaborators exposed.
type testServer struct {
	*Server
	verifier *rejectingVerifier
	sink     *memSink
}

// newTestServer builds a Server; edit, if not nil, adjusts its Config
// before NewServer sees it. The Server is closed when the test ends.
func newTestServer(tb testing.TB, edit func(*Config)) *testServer {
	tb.Helper()
	ts := &testServer{verifier: &rejectingVerifier{}, sink: &memSink{}}
	cfg := Config{
		Targets:          map[string]*Target{"app": testTarget(tb)},
		Verifier:         ts.verifier,
		Policy:           compiledPolicy(tb),
		Facts:            sqlfacts.NewCache(16),
		Audit:            ts.sink,
		Logger:           slog.New(slog.DiscardHandler),
		HandshakeTimeout: time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts.Server = s
	tb.Cleanup(func() { s.Close() })
	return ts
}

var (
	tlsOnce sync.Once
	tlsCert tls.Certificate
	tlsErr  error
)

// testTLS returns a server TLS config with a self-signed certificate,
// made once per test binary.
func testTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	tlsOnce.Do(func() {
		var certPath, keyPath string
		certPath, keyPath, tlsErr = devtls.SelfSigned(tb.TempDir(), "localhost", "127.0.0.1")
		if tlsErr == nil {
			tlsCert, tlsErr = tls.LoadX509KeyPair(certPath, keyPath)
		}
	})
	if tlsErr != nil {
		tb.Fatalf("tls: %v", tlsErr)
	}
	return &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}
}

// pipeClient is the client end of a net.Pipe whose server end is being
// handled by (*Server).handle.
//
// Reads go through one bufio.Reader; the pgproto3.Frontend reads it one
// byte at a time (iotest.OneByteReader), so it never reads ahead and the
// single-byte answers to SSLRequest and GSSENCRequest, and the end of the
// stream, can be checked exactly on the same reader.
type pipeClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	fe   *pgproto3.Frontend
	done chan struct{} // closed when handle returns

	// Writes are queued to one writer goroutine, so a test can send
	// more than the server reads (net.Pipe blocks a write until it is
	// read) and still read the answers, in order.
	queue  chan []byte
	writer sync.WaitGroup
}

// dial starts s.handle on the server end of a new pipe and returns the
// client end. When the test ends the client closes, handle must return
// within a bound, and the writer goroutine is waited for.
func dial(t *testing.T, s *Server) *pipeClient {
	t.Helper()
	cli, srv := net.Pipe()
	c := &pipeClient{
		t: t, conn: cli, br: bufio.NewReader(cli),
		done: make(chan struct{}), queue: make(chan []byte, 16),
	}
	c.fe = pgproto3.NewFrontend(iotest.OneByteReader(c.br), cli)
	go func() {
		defer close(c.done)
		s.handle(srv)
	}()
	c.writer.Add(1)
	go func() {
		defer c.writer.Done()
		for b := range c.queue {
			cli.SetWriteDeadline(time.Now().Add(ioTimeout))
			cli.Write(b) // an error means the server has closed; reads report it
		}
	}()
	t.Cleanup(func() {
		cli.Close()
		close(c.queue)
		c.writer.Wait()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Errorf("handle did not return after the client closed")
		}
	})
	return c
}

// sendRaw queues b for writing.
func (c *pipeClient) sendRaw(b []byte) { c.queue <- b }

// send encodes msgs and queues them as one write.
func (c *pipeClient) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			c.t.Fatalf("encode %T: %v", m, err)
		}
	}
	c.sendRaw(b)
}

// readByte reads one raw byte (the answer to SSLRequest / GSSENCRequest).
func (c *pipeClient) readByte() (byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	return c.br.ReadByte()
}

// receive reads one backend message.
func (c *pipeClient) receive() (pgproto3.BackendMessage, error) {
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	return c.fe.Receive()
}

// closedByServer reports whether the server closed the connection
// without sending anything more, and waits for handle to return.
func (c *pipeClient) closedByServer() error {
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := c.br.Peek(1)
	switch {
	case len(b) > 0:
		return errors.New("server sent more bytes: " + quoteBytes(c.br))
	case err != io.EOF:
		return errors.New("want the server to close the connection, got: " + errString(err))
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(ioTimeout):
		return errors.New("server closed the pipe but handle did not return")
	}
}

func quoteBytes(br *bufio.Reader) string {
	b, _ := br.Peek(br.Buffered())
	if len(b) > 64 {
		b = b[:64]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// checkNoLeaks fails t if, when it ends, a goroutine is still running
// code of this package (other than the test's own goroutine). Call it
// from top-level tests only: a subtest's parent is itself such a
// goroutine.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		var stray []string
		for deadline := time.Now().Add(2 * time.Second); ; {
			stray = strayGoroutines()
			if len(stray) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, g := range stray {
			t.Errorf("leaked goroutine:\n%s", g)
		}
	})
}

func strayGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var stray []string
	// The first stack is the calling goroutine's own.
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue
		}
		if strings.Contains(g, "internal/proxy/postgres.") {
			stray = append(stray, g)
		}
	}
	return stray
}
