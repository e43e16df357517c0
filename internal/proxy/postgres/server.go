// Package postgres is warden's PostgreSQL wire-protocol proxy: it accepts
// unchanged PostgreSQL clients, authenticates them by the access token they
// send as their password, logs in upstream with the target's own
// credential, and decides every statement (simple and extended protocol,
// COPY, FunctionCall) before it reaches the database. It knows the wire
// format; it knows nothing about policy syntax or token formats, which it
// reaches through small interfaces.
//
// The flow of one connection: startup (SSLRequest → TLS, GSSENCRequest
// refused, CancelRequest routed) → cleartext password = token → verify →
// bind policy → upstream login through pgconn, then Hijack → make the
// client ready (ParameterStatus, BackendKeyData, ReadyForQuery) → relay,
// deciding each Query, Parse and FunctionCall.
package postgres

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/mask"
	"github.com/warden-gateway/warden/internal/metrics"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// Target is one upstream PostgreSQL database.
type Target struct {
	Name   string
	Schema string // unqualified names resolve here; pinned in search_path
	// Config is the upstream login, parsed once; each connection uses a copy.
	Config *pgconn.Config

	catOnce sync.Once
	cat     *catalog // for masking; opened on first use
}

// catalog returns the target's catalog reader.
func (t *Target) catalog() *catalog {
	t.catOnce.Do(func() {
		cfg := t.Config.Copy()
		cfg.RuntimeParams = map[string]string{"application_name": "warden-catalog", "search_path": "pg_catalog"}
		t.cat = newCatalog(cfg)
	})
	return t.cat
}

// NewTarget builds a Target from its parts.
func NewTarget(name, address, database, user, password, sslmode, schema string) (*Target, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("postgres.NewTarget %s: address: %w", name, err)
	}
	if sslmode == "" {
		sslmode = "prefer"
	}
	if schema == "" {
		schema = "public"
	}
	// Password goes in the struct, not the connection string, so no
	// quoting rule can mangle it or leak it into an error.
	cs := fmt.Sprintf("host=%s port=%s dbname=%s user=%s sslmode=%s connect_timeout=10",
		quoteConnValue(host), quoteConnValue(port), quoteConnValue(database), quoteConnValue(user), sslmode)
	cfg, err := pgconn.ParseConfig(cs)
	if err != nil {
		return nil, fmt.Errorf("postgres.NewTarget %s: %w", name, err)
	}
	cfg.Password = password
	return &Target{Name: name, Schema: schema, Config: cfg}, nil
}

func quoteConnValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Policy binds a verified principal to the rules that apply to it.
type Policy interface {
	Bind(p *identity.Principal) *policy.Subject
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	Targets  map[string]*Target
	Verifier identity.Verifier
	Policy   Policy
	Facts    *sqlfacts.Cache // default: a new cache of 10,000 entries
	Audit    audit.Sink
	Logger   *slog.Logger     // default: slog.Default()
	Metrics  *metrics.Metrics // optional
	// Reviews holds statements that policy marks for review; without it
	// they are refused.
	Reviews    Reviewer
	ReviewWait time.Duration // how long a held statement waits; default 30s
	// MaskHashKey keys the hash masking style; CustomDetectors maps a
	// custom detector's name to its regular expression.
	MaskHashKey     []byte
	CustomDetectors map[string]string

	// TLS, when set, answers SSLRequest with TLS. Without it warden
	// answers 'N'.
	TLS *tls.Config
	// AllowPlaintext permits cleartext token passwords without TLS on a
	// non-loopback connection. Default false.
	AllowPlaintext bool

	MaxMessageBytes  int           // default 1 MiB
	MaxQueryBytes    int           // default 256 KiB
	MaxTokenBytes    int           // default 16 KiB
	MaxAuditText     int           // SQL bytes stored per audit record; default 4096
	HandshakeTimeout time.Duration // default 10s
}

// Server accepts PostgreSQL clients.
type Server struct {
	cfg    Config
	log    *slog.Logger
	facts  *sqlfacts.Cache
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// sessions by the process id warden gave the client, for cancel
	// routing and for closing them on shutdown.
	sessions  map[uint32]*session
	listeners map[net.Listener]struct{}
	scanners  map[string]*mask.Scanner // by detector list
	closed    bool
	wg        sync.WaitGroup
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Verifier == nil || cfg.Policy == nil || cfg.Audit == nil {
		return nil, errors.New("postgres.NewServer: Verifier, Policy and Audit are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Facts == nil {
		cfg.Facts = sqlfacts.NewCache(10000)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1 << 20
	}
	if cfg.MaxQueryBytes <= 0 {
		cfg.MaxQueryBytes = 256 << 10
	}
	if cfg.ReviewWait <= 0 {
		cfg.ReviewWait = 30 * time.Second
	}
	if cfg.MaxAuditText <= 0 {
		cfg.MaxAuditText = 4096
	}
	if cfg.MaxTokenBytes <= 0 {
		cfg.MaxTokenBytes = 16 << 10
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: cfg.Logger, facts: cfg.Facts, ctx: ctx, cancel: cancel,
		sessions:  make(map[uint32]*session),
		scanners:  make(map[string]*mask.Scanner),
		listeners: make(map[net.Listener]struct{}),
	}, nil
}

// Serve accepts connections on l until Close. It always returns a non-nil
// error; after Close it is net.ErrClosed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return net.ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// Close stops the listeners, closes every session and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		msg := "warden: terminating connection: warden is shutting down"
		if id := ss.held.Load(); id != nil {
			// Pending reviews survive a restart: the retry runs once
			// approved.
			msg += fmt.Sprintf("; your statement is held in review %s: reconnect and re-run it after approval", *id)
		}
		ss.terminate("57P01", msg, "warden shutting down")
	}
	s.cancel()
	s.wg.Wait()
	for _, t := range s.cfg.Targets {
		if t.cat != nil {
			t.cat.close()
		}
	}
	return nil
}

// SessionCount is the number of live client sessions.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// startupParams are the client startup parameters warden forwards
// upstream. Everything else — above all `options`, `search_path`, `role`,
// `session_authorization` and any GUC that changes whose privileges apply
// or how names resolve — is dropped. Keys are lower-case: PostgreSQL
// matches GUC names case-insensitively.
var startupParams = map[string]bool{
	"application_name":                    true,
	"client_encoding":                     true,
	"datestyle":                           true,
	"intervalstyle":                       true,
	"timezone":                            true,
	"extra_float_digits":                  true,
	"statement_timeout":                   true,
	"lock_timeout":                        true,
	"idle_in_transaction_session_timeout": true,
	"bytea_output":                        true,
	"geqo":                                true,
}

// safeClientEncodings are the client encodings warden forwards, as
// PostgreSQL's clean_encoding_name writes them (lower case, letters and
// digits only; src/common/encnames.c). Only UTF-8: in SJIS, BIG5, GBK,
// GB18030 or JOHAB the second byte of a character can be an ASCII
// backslash, so the server would see a different string boundary than
// warden's UTF-8 parser does ("24.3.1 Supported Character Sets"). An
// allowlist, because PostgreSQL accepts many spellings of those names.
var safeClientEncodings = map[string]bool{"utf8": true, "unicode": true}

// unsafeClientEncodings are client-only encodings whose trail bytes can
// be ASCII, by their cleaned names; kept for tests and documentation.
var unsafeClientEncodings = map[string]bool{
	"sjis": true, "shiftjis": true, "shiftjis2004": true, "mskanji": true, "win932": true, "windows932": true, "cp932": true,
	"big5": true, "win950": true, "windows950": true, "cp950": true,
	"gbk": true, "win936": true, "windows936": true, "cp936": true, "gb18030": true, "johab": true,
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(a net.Addr) bool {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handle runs one client connection from startup to close.
func (s *Server) handle(raw net.Conn) {
	defer raw.Close()
	start := time.Now()
	raw.SetDeadline(start.Add(s.cfg.HandshakeTimeout))
	conn := raw
	br := bufio.NewReaderSize(conn, 8192)
	be := pgproto3.NewBackend(br, conn)
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := readStartup(br)
		if err != nil {
			s.log.Debug("postgres: startup", "client", raw.RemoteAddr().String(), "err", err)
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if s.cfg.TLS == nil || conn != raw {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return
				}
				continue
			}
			if br.Buffered() > 0 {
				// Bytes after SSLRequest before the handshake would be
				// injected plaintext (CVE-2021-23214 in libpq's sibling).
				return
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return
			}
			tc := tls.Server(raw, s.cfg.TLS)
			if err := tc.Handshake(); err != nil {
				s.log.Info("postgres: TLS handshake failed", "client", raw.RemoteAddr().String(), "err", err)
				return
			}
			conn = tc
			br = bufio.NewReaderSize(conn, 8192)
			be = pgproto3.NewBackend(br, conn)
		case *pgproto3.GSSEncRequest:
			// GSSAPI encryption is not offered; libpq then falls back
			// to SSLRequest or plaintext ("55.2.11 GSSAPI Session Encryption").
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return
			}
		case *pgproto3.CancelRequest:
			s.routeCancel(m.ProcessID, m.SecretKey)
			return
		case *pgproto3.StartupMessage:
			startup = m
		default:
			return
		}
	}
	s.startSession(raw, conn, br, be, startup, start)
}

// fatal sends a FATAL ErrorResponse during startup.
func fatal(be *pgproto3.Backend, code, msg string) {
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	be.Flush()
}

func (s *Server) startSession(raw, conn net.Conn, br *bufio.Reader, be *pgproto3.Backend, startup *pgproto3.StartupMessage, start time.Time) {
	ctx := s.ctx
	client := raw.RemoteAddr().String()
	ev := audit.Event{Time: start, Protocol: "postgres", Client: client, SessionID: randomID()}
	loginFailed := func(code, reason string) {
		result := "failed"
		if code == "28000" || code == "3D000" {
			result = "denied"
		}
		s.cfg.Metrics.Login("postgres", result)
		e := ev
		e.Kind = audit.KindLoginFailed
		e.Decision = audit.Deny
		e.Reason = reason
		if err := s.cfg.Audit.Record(ctx, &e); err != nil {
			s.log.Error("postgres: audit write failed", "err", err)
		}
		fatal(be, code, "warden: "+reason)
	}

	if startup.ProtocolVersion != pgproto3.ProtocolVersion30 {
		// We speak 3.0 upstream; tell a 3.2 client so ("55.2.1 Start-up").
		be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0})
	}
	if _, ok := startup.Parameters["replication"]; ok {
		loginFailed("08P01", "replication connections are not supported")
		return
	}
	target := startup.Parameters["database"]
	ev.Target = target
	t, ok := s.cfg.Targets[target]
	if !ok {
		loginFailed("3D000", fmt.Sprintf("unknown target %q: connect with dbname set to a configured target name", target))
		return
	}
	if _, isTLS := conn.(*tls.Conn); !isTLS && !isLoopback(raw.RemoteAddr()) && !s.cfg.AllowPlaintext {
		loginFailed("28000", "TLS is required: a token must not cross the network in clear (use sslmode=require)")
		return
	}

	// Ask for the token as a cleartext password ("55.3 SASL
	// Authentication" is for passwords the server knows; a bearer token
	// must reach warden whole to be verified, as with RDS IAM tokens).
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return
	}
	// Read the password with warden's own framing, from the same
	// buffered reader the session will use: nothing read ahead is lost.
	mr := msgReader{r: br, max: s.cfg.MaxTokenBytes + 1} // + the NUL
	typ, body, err := mr.next()
	if err != nil {
		// A client that hangs up at the password prompt (psql does, to
		// ask the user for one) is not a failed login.
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			loginFailed("08P01", "expected a password message carrying the access token")
		}
		return
	}
	var pw pgproto3.PasswordMessage
	if typ != 'p' || pw.Decode(body) != nil {
		loginFailed("08P01", "expected a password message carrying the access token")
		return
	}
	token := strings.TrimSpace(pw.Password)
	principal, err := s.cfg.Verifier.Verify(ctx, token)
	if err != nil {
		reason := "token rejected"
		var ve *identity.VerifyError
		if errors.As(err, &ve) {
			reason = "token rejected: " + ve.Reason
			s.cfg.Metrics.TokenRejected(ve.Reason)
		} else {
			s.cfg.Metrics.TokenRejected("other")
		}
		loginFailed("28P01", "password authentication failed: "+reason)
		s.log.Info("postgres: login failed", "client", client, "target", target, "err", err)
		return
	}
	ev.Subject, ev.Issuer, ev.Groups, ev.TokenID = principal.Subject, principal.Issuer, principal.Groups, principal.TokenID
	subject := s.cfg.Policy.Bind(principal)
	if d := subject.CanConnect(target); d.Effect != policy.Allow {
		loginFailed("28000", d.Reason)
		return
	}

	// Upstream login with the target's own credential. The client's
	// startup parameters pass only through the allowlist; warden pins the
	// settings its parser's view of the SQL depends on.
	ucfg := t.Config.Copy()
	params := make(map[string]string, len(ucfg.RuntimeParams)+8)
	for k, v := range ucfg.RuntimeParams {
		params[k] = v
	}
	for k, v := range startup.Parameters {
		lk := strings.ToLower(k)
		if !startupParams[lk] {
			continue
		}
		if lk == "client_encoding" && !safeClientEncodings[normEncoding(v)] {
			// Anything but UTF-8 is dropped, not filtered: the session
			// stays UTF8, which is what warden's parser reads, and the
			// client learns it from ParameterStatus.
			continue
		}
		params[lk] = v
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "warden"
	}
	// pg_catalog is searched first implicitly, then the target's schema
	// (also where unqualified CREATEs go), and pg_temp last, so a
	// temporary table can never shadow a real one ("5.9.3 The Schema
	// Search Path"). sqlfacts resolves names in exactly this order.
	params["search_path"] = quoteIdent(t.Schema) + ", pg_temp"
	if _, ok := params["client_encoding"]; !ok {
		params["client_encoding"] = "UTF8"
	}
	params["standard_conforming_strings"] = "on"
	params["backslash_quote"] = "safe_encoding"
	ucfg.RuntimeParams = params
	uctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	pc, err := pgconn.ConnectConfig(uctx, ucfg)
	cancel()
	if err != nil {
		s.log.Error("postgres: upstream login failed", "target", target, "err", err)
		e := ev
		e.Kind = audit.KindLoginFailed
		e.Decision = audit.Error
		e.Error = "upstream login failed"
		s.cfg.Audit.Record(ctx, &e)
		fatal(be, "08006", "warden: could not connect to target "+target)
		return
	}
	hj, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		fatal(be, "08006", "warden: could not connect to target "+target)
		return
	}
	upstream := hj.Conn

	ss := &session{
		srv: s, id: ev.SessionID, target: t, principal: principal, subject: subject,
		client: conn, rawClient: raw, upstream: upstream,
		cr:       msgReader{r: br, max: s.cfg.MaxMessageBytes},
		cw:       bufio.NewWriterSize(conn, 16<<10),
		ur:       msgReader{r: bufio.NewReaderSize(upstream, 32<<10)},
		uw:       bufio.NewWriterSize(upstream, 16<<10),
		prepared: make(map[string]*sqlfacts.Statement),
		portals:  make(map[string]portal),
		mt:       s.cfg.Metrics.For("postgres", target),
		denials:  make(map[uint64]denial),
		evBase:   ev,
		upPID:    hj.PID,
		upKey:    hj.SecretKey,
		upAddr:   net.JoinHostPort(ucfg.Host, fmt.Sprint(ucfg.Port)),
	}
	ss.ctx, ss.cancel = context.WithCancel(s.ctx)
	if ms := subject.Masks(target); ms != nil {
		me, err := s.newMaskEngine(t, ms)
		if err != nil {
			upstream.Close()
			loginFailed("58000", "masking cannot be set up for this session: "+err.Error())
			return
		}
		ss.me = me
	}
	ss.secret = make([]byte, 4)
	rand.Read(ss.secret)
	if !s.register(ss) {
		upstream.Close()
		fatal(be, "57P01", "warden is shutting down")
		return
	}
	defer s.unregister(ss)

	start2 := ev
	start2.Kind = audit.KindSessionStart
	start2.Decision = audit.Allow
	if err := s.cfg.Audit.Record(ctx, &start2); err != nil {
		upstream.Close()
		fatal(be, "58000", "warden: audit log unavailable; refusing the session")
		s.log.Error("postgres: audit write failed", "err", err)
		return
	}

	// Make the client ready: AuthenticationOk, the upstream's parameter
	// statuses, our own BackendKeyData, ReadyForQuery.
	be.Send(&pgproto3.AuthenticationOk{})
	keys := make([]string, 0, len(hj.ParameterStatuses))
	for k := range hj.ParameterStatuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		be.Send(&pgproto3.ParameterStatus{Name: k, Value: hj.ParameterStatuses[k]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: ss.pid, SecretKey: ss.secret})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: hj.TxStatus})
	if err := be.Flush(); err != nil {
		upstream.Close()
		return
	}
	raw.SetDeadline(time.Time{})
	s.log.Debug("postgres: session started", "session", ss.id, "subject", principal.Subject, "target", target,
		"setup", time.Since(start))
	s.cfg.Metrics.Login("postgres", "ok")
	ss.mt.SessionStarted()
	stopWatch := ss.watchExpiry()
	ss.run()
	stopWatch()
	ss.mt.SessionEnded()
	end := ev
	end.Kind = audit.KindSessionEnd
	end.Time = time.Now()
	end.Decision = audit.Allow
	if ss.endErr != nil {
		end.Error = ss.endErr.Error()
	}
	ss.endMu.Lock()
	end.Reason = ss.endReason
	ss.endMu.Unlock()
	// Nobody waits on a session's end: it rides the next sync (and a
	// failure is the store's to log), so a client that reconnects at once
	// does not wait behind its previous session's record.
	if ls, ok := s.cfg.Audit.(audit.LaterSink); ok {
		ls.RecordLater(&end)
	} else if err := s.cfg.Audit.Record(context.Background(), &end); err != nil {
		s.log.Error("postgres: audit write failed", "err", err)
	}
}

// normEncoding cleans an encoding name as PostgreSQL's
// clean_encoding_name does: letters and digits only, lower case.
func normEncoding(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		}
	}
	return b.String()
}

// quoteIdent quotes a PostgreSQL identifier when it needs quoting.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// register gives ss a unique process id for cancel routing.
func (s *Server) register(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for {
		var b [4]byte
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:]) & 0x7fffffff
		if _, dup := s.sessions[pid]; pid != 0 && !dup {
			ss.pid = pid
			s.sessions[pid] = ss
			return true
		}
	}
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss.pid)
	s.mu.Unlock()
}

// routeCancel forwards a CancelRequest to the upstream backend of the
// session it names, if the secret matches ("55.2.8 Canceling Requests in
// Progress"). Like PostgreSQL, it answers nothing either way.
func (s *Server) routeCancel(pid uint32, key []byte) {
	s.mu.Lock()
	ss := s.sessions[pid]
	s.mu.Unlock()
	if ss == nil || subtle.ConstantTimeCompare(ss.secret, key) != 1 {
		s.log.Info("postgres: cancel request for unknown session ignored")
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ss.upAddr)
	if err != nil {
		s.log.Warn("postgres: cancel: dial upstream", "err", err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := (&pgproto3.CancelRequest{ProcessID: ss.upPID, SecretKey: ss.upKey}).Encode(nil)
	if _, err := c.Write(b); err != nil {
		s.log.Warn("postgres: cancel: write", "err", err)
		return
	}
	// The server closes the connection when done; wait for it briefly so
	// the cancel is delivered before we return.
	var one [1]byte
	c.Read(one[:])
}

// Startup packet codes ("55.7 Message Formats").
const (
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
	cancelRequestCode = 80877102
	// maxStartupPacket is PostgreSQL's own MAX_STARTUP_PACKET_LENGTH.
	maxStartupPacket = 10000
)

// readStartup reads one startup-phase packet (no type byte; a length,
// then a code) with warden's own framing, so that after an SSLRequest the
// reader's Buffered count says exactly whether the client sent plaintext
// bytes it should not have.
func readStartup(br *bufio.Reader) (pgproto3.FrontendMessage, error) {
	h, err := br.Peek(4)
	if err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(h)))
	if n < 8 || n-4 > maxStartupPacket {
		return nil, fmt.Errorf("invalid startup packet length %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, err
	}
	body := buf[4:]
	var msg interface {
		pgproto3.FrontendMessage
		Decode([]byte) error
	}
	switch code := binary.BigEndian.Uint32(body); code {
	case sslRequestCode:
		msg = &pgproto3.SSLRequest{}
	case gssEncRequestCode:
		msg = &pgproto3.GSSEncRequest{}
	case cancelRequestCode:
		msg = &pgproto3.CancelRequest{}
	case pgproto3.ProtocolVersion30, pgproto3.ProtocolVersion32:
		msg = &pgproto3.StartupMessage{}
	default:
		return nil, fmt.Errorf("unknown startup packet code %d", code)
	}
	if err := msg.Decode(body); err != nil {
		return nil, err
	}
	return msg, nil
}

// newMaskEngine builds a session's masking from its rules; scanners are
// built once per detector list and shared.
func (s *Server) newMaskEngine(t *Target, ms *policy.MaskSet) (*maskEngine, error) {
	e := &maskEngine{set: ms, cat: t.catalog(), hashKey: s.cfg.MaskHashKey, maskers: make(map[policy.ColumnMask]mask.Masker)}
	if names := ms.Detectors(); len(names) > 0 {
		key := strings.Join(names, ",")
		s.mu.Lock()
		sc := s.scanners[key]
		s.mu.Unlock()
		if sc == nil {
			var ds []mask.Detector
			for _, n := range names {
				if d, ok := mask.Builtin(n); ok {
					ds = append(ds, d)
					continue
				}
				re, ok := s.cfg.CustomDetectors[n]
				if !ok {
					return nil, fmt.Errorf("unknown detector %q", n)
				}
				d, err := mask.Regex(n, re)
				if err != nil {
					return nil, err
				}
				ds = append(ds, d)
			}
			sc = mask.NewScanner(ds...)
			s.mu.Lock()
			s.scanners[key] = sc
			s.mu.Unlock()
		}
		e.scanner = sc
		e.detect = e.masker(ms.DetectorStyle())
	}
	return e, nil
}
