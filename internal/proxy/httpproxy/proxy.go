// Package httpproxy is warden's reverse proxy for http and kubernetes
// targets, on the http listener. A request reaches a target by path
// (/t/<target>/...) or by Host (<target>.<domain>). Warden verifies the
// agent's bearer token and strips it, decides the request by policy
// (HTTP: method, path, CEL over the request; Kubernetes: the API
// server's own request model, parsed by package kube), holds it for
// review if a rule says so, records the decision durably before
// forwarding, injects the target's own credential (and, for http
// targets, a signed identity assertion), relays the response —
// streaming, upgrades (WebSocket, SPDY: exec, attach, port-forward) and
// watches included — masking JSON fields and Kubernetes Secret values on
// the way, and records what happened.
//
// Fail closed: a request warden cannot route, authenticate, parse,
// decide or audit is refused; a response it must mask but cannot (not
// JSON, encoded, too large, malformed) is refused, never passed.
package httpproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/metrics"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/proxy/kube"
	"github.com/warden-gateway/warden/internal/review"
)

// Reviewer is the approval service held requests wait on
// (internal/review.Manager).
type Reviewer = review.Service

// Config is what the proxy needs.
type Config struct {
	Targets  map[string]*Target
	Domain   string // Host routing: <target>.<Domain>; "" for path routing only
	Verifier identity.Verifier
	// Policy returns the current engine (it may be reloaded).
	Policy   func() *policy.Engine
	Audit    audit.Sink
	Reviews  Reviewer // nil: held requests are refused
	Asserter *Asserter
	// IdentityHeader carries the assertion to http targets.
	IdentityHeader  string
	ReviewWait      time.Duration
	MaxRequestBytes int64
	MaxMaskBytes    int64
	MaxAuditText    int
	MaskHashKey     []byte
	CustomDetectors map[string]string
	Metrics         *metrics.Metrics // optional
	Logger          *slog.Logger
	Now             func() time.Time
}

// Server serves the targets.
type Server struct {
	cfg     Config
	log     *slog.Logger
	maskers *maskers
	proxy   *httputil.ReverseProxy
	seq     atomic.Int64

	mu      sync.Mutex
	streams map[*stream]struct{}
	wg      sync.WaitGroup // result records being written

	// subjects caches bound subjects: the verifier returns the same
	// *Principal for a token it has verified before, and binding
	// evaluates every policy's CEL condition, which an agent's requests
	// need not pay for each time.
	subjectsMu sync.Mutex
	subjects   map[subjectKey]*policy.Subject
}

type subjectKey struct {
	engine    *policy.Engine
	principal *identity.Principal
}

// maxCachedSubjects bounds Server.subjects; past it, it is emptied.
const maxCachedSubjects = 4096

// bind returns p's subject under the current policy.
func (s *Server) bind(p *identity.Principal) *policy.Subject {
	k := subjectKey{s.cfg.Policy(), p}
	s.subjectsMu.Lock()
	defer s.subjectsMu.Unlock()
	if sub, ok := s.subjects[k]; ok {
		return sub
	}
	sub := k.engine.Bind(p)
	if len(s.subjects) >= maxCachedSubjects {
		clear(s.subjects)
	}
	s.subjects[k] = sub
	return sub
}

// stream is a request in flight (for long-running ones — watch, log
// follow, exec, WebSocket — a session): listed by the admin API, ended
// when it is killed, its subject revoked or its token expired.
type stream struct {
	Info
	cancel context.CancelFunc
	done   chan struct{} // closed once the request's handler has returned
}

// terminateWait bounds how long Terminate and TerminateSubject wait for
// the streams they cancel to be torn down.
const terminateWait = 5 * time.Second

// waitEnded waits, up to terminateWait in all, until sts have ended: a
// revocation answers only once its subject's streams are closed, not
// merely told to close.
func waitEnded(sts []*stream) {
	if len(sts) == 0 {
		return
	}
	t := time.NewTimer(terminateWait)
	defer t.Stop()
	for _, st := range sts {
		select {
		case <-st.done:
		case <-t.C:
			return
		}
	}
}

// Info describes a request in flight, for `warden sessions list`.
type Info struct {
	ID       string
	Protocol string
	Target   string
	Subject  string
	Issuer   string
	Groups   []string
	TokenID  string
	Client   string
	Request  string // "GET /api/v1/watch/..."
	Started  time.Time
	Expires  time.Time
}

// Sessions lists the requests in flight, oldest first.
func (s *Server) Sessions() []Info {
	s.mu.Lock()
	out := make([]Info, 0, len(s.streams))
	for st := range s.streams {
		out = append(out, st.Info)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// Terminate ends the request in flight with this id.
func (s *Server) Terminate(id, reason string) bool {
	s.mu.Lock()
	var ended []*stream
	for st := range s.streams {
		if st.ID == id {
			st.cancel()
			delete(s.streams, st)
			ended = append(ended, st)
			break
		}
	}
	s.mu.Unlock()
	waitEnded(ended)
	return len(ended) > 0
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Verifier == nil || cfg.Policy == nil || cfg.Audit == nil {
		return nil, errors.New("httpproxy.New: Verifier, Policy and Audit are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdentityHeader == "" {
		cfg.IdentityHeader = "X-Warden-Identity"
	}
	if cfg.ReviewWait <= 0 {
		cfg.ReviewWait = 30 * time.Second
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 10 << 20
	}
	if cfg.MaxMaskBytes <= 0 {
		cfg.MaxMaskBytes = 32 << 20
	}
	if cfg.MaxAuditText <= 0 {
		cfg.MaxAuditText = 4096
	}
	s := &Server{cfg: cfg, log: cfg.Logger, maskers: newMaskers(cfg.MaskHashKey, cfg.CustomDetectors), streams: map[*stream]struct{}{},
		subjects: map[subjectKey]*policy.Subject{}}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      transportByTarget{},
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.proxyError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Close releases the targets' idle connections, ends streams and waits
// for result records being written.
func (s *Server) Close() {
	defer s.wg.Wait()
	s.TerminateSubject("", "warden is shutting down")
	for _, t := range s.cfg.Targets {
		t.Close()
	}
}

// TerminateSubject ends the streams of subject ("" for all) and returns
// how many it ended.
func (s *Server) TerminateSubject(subject, reason string) int {
	s.mu.Lock()
	var ended []*stream
	for st := range s.streams {
		if subject == "" || st.Subject == subject {
			st.cancel()
			delete(s.streams, st)
			ended = append(ended, st)
		}
	}
	s.mu.Unlock()
	waitEnded(ended)
	return len(ended)
}

// Route returns the target and the escaped path below it for r, by
// Host (<target>.<domain>) or by path (/t/<target>/...). ok is false if
// r is not for a target.
func (s *Server) Route(r *http.Request) (name, rest string, ok bool) {
	if s.cfg.Domain != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if label, found := strings.CutSuffix(host, "."+s.cfg.Domain); found && label != "" && !strings.Contains(label, ".") {
			return label, r.URL.EscapedPath(), true
		}
	}
	p := r.URL.EscapedPath()
	after, found := strings.CutPrefix(p, "/t/")
	if !found {
		return "", "", false
	}
	name, rest, _ = strings.Cut(after, "/")
	return name, "/" + rest, name != ""
}

// IsTargetHost reports whether r is addressed by Host to a target, so the
// gateway sends all of it (even /api/...) to the proxy.
func (s *Server) IsTargetHost(r *http.Request) bool {
	if s.cfg.Domain == "" {
		return false
	}
	_, _, ok := s.Route(r)
	return ok && !strings.HasPrefix(r.URL.EscapedPath(), "/t/")
}

// exchange is one request's state through the proxy.
type exchange struct {
	s         *Server
	start     time.Time
	target    *Target
	name      string
	principal *identity.Principal
	subject   *policy.Subject
	seq       int64
	sessionID string
	client    string

	method   string
	rest     string // escaped path below the target
	path     string // decoded
	ri       *kube.RequestInfo
	kr       *policy.KubeRequest
	decision policy.Decision
	text     string // "GET /v1/x?y=1": the audited request line
	textHash string // sha256 of text, hex, once computed
	// Kubernetes: the request described for the audit log, and the
	// exec/attach/port-forward session it opens, if any.
	fingerprint string
	stream      *kube.StreamInfo
	query       url.Values
	bodyHash    string

	m       *metrics.Target
	inject  http.Header // headers warden sets upstream (rewrite)
	masks   *policy.MaskSet
	secrets *kube.SecretMasker
	masked  atomic.Int64
	status  int
	bytes   atomic.Int64
	err     string
}

type exchangeKey struct{}

// ServeHTTP serves one request for a target.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{s: s, start: s.cfg.Now(), method: r.Method, client: r.RemoteAddr}
	name, rest, ok := s.Route(r)
	if !ok {
		s.plainError(w, http.StatusNotFound, "not_found", "not a target path: use /t/<target>/...")
		return
	}
	x.name, x.rest = name, rest
	x.target = s.cfg.Targets[name]
	if r.Method != strings.ToUpper(r.Method) {
		// Go's server accepts "delete"; many frameworks upper-case it and
		// run it, while rules name "DELETE". One spelling only.
		x.fail(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "warden: HTTP methods are upper case ("+strings.ToUpper(r.Method)+", not "+r.Method+")")
		return
	}

	token, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
		x.fail(w, http.StatusUnauthorized, "Unauthorized", "warden: a bearer token is required (Authorization: Bearer <token>)")
		return
	}
	p, err := s.cfg.Verifier.Verify(r.Context(), token)
	if err != nil {
		s.cfg.Metrics.TokenRejected(identity.ReasonOf(err))
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden", error="invalid_token"`)
		s.record(r.Context(), &audit.Event{Kind: audit.KindLoginFailed, Protocol: x.protocol(), Target: name, Client: x.client,
			Decision: audit.Deny, Reason: err.Error(), Time: x.start, Status: http.StatusUnauthorized})
		x.fail(w, http.StatusUnauthorized, "Unauthorized", "warden: invalid token: "+err.Error())
		return
	}
	x.principal = p
	x.subject = s.bind(p)
	x.seq = s.seq.Add(1)
	x.sessionID = "h" + strconv.FormatInt(x.seq, 36)
	if x.target == nil {
		// The same answer as a target the subject may not use: a client
		// must not learn which target names exist.
		x.decision = x.subject.CanConnect(name)
		x.text = r.Method + " " + rest
		x.deny(w, r)
		return
	}
	if err := x.parse(r); err != nil {
		x.text = r.Method + " " + rest
		x.decision = policy.Decision{Effect: policy.Deny, Rule: policy.RuleBuiltin, Reason: err.Error(), Summary: err.Error()}
		x.deny(w, r)
		return
	}
	t0 := time.Now()
	if x.kr != nil {
		x.decision = x.subject.DecideKube(name, x.kr)
	} else {
		x.decision = x.subject.DecideHTTP(name, &policy.HTTPRequest{Method: r.Method, Path: x.path, Query: r.URL.Query(), Header: r.Header})
	}
	x.m = s.cfg.Metrics.For(x.protocol(), name) // a configured target: bounded label values
	x.m.Decided(x.decision.Effect == policy.Allow, time.Since(t0))

	if r.ContentLength > s.cfg.MaxRequestBytes {
		x.fail(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("warden: request body larger than %d bytes", s.cfg.MaxRequestBytes))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)

	var approved *review.Review
	switch x.decision.Effect {
	case policy.Deny:
		x.deny(w, r)
		return
	case policy.Review:
		// The body is part of what is approved: read it (bounded) and
		// bind its digest into the fingerprint.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			x.fail(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "warden: request body too large or unreadable: "+err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if len(body) > 0 {
			sum := sha256.Sum256(body)
			x.bodyHash = hex.EncodeToString(sum[:])
		}
		if approved = x.hold(w, r); approved == nil {
			return
		}
		// The wait may have been long: the subject may have been revoked,
		// or its token expired, meanwhile.
		if _, err := s.cfg.Verifier.Verify(r.Context(), token); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden", error="invalid_token"`)
			x.fail(w, http.StatusUnauthorized, "Unauthorized", "warden: invalid token: "+err.Error())
			return
		}
	}
	if up := r.Header.Get("Upgrade"); up != "" {
		if msg := x.upgradeRefusal(up); msg != "" {
			x.decision = policy.Decision{Effect: policy.Deny, Rule: policy.RuleBuiltin, Reason: msg, Summary: msg}
			x.deny(w, r)
			return
		}
	}
	// Durable before anything reaches the target.
	if err := x.auditDecision(r.Context(), approved); err != nil {
		x.fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "warden: the audit log cannot be written; refusing the request (fail closed)")
		return
	}
	x.forward(w, r, approved)
}

// upgradeRefusal says why a protocol upgrade cannot be relayed, or "".
// Only WebSocket (and, for Kubernetes exec, attach and port-forward,
// SPDY) is relayed: anything else (h2c, a raw tunnel) would carry requests
// no policy sees. And a stream warden must mask but cannot inspect frame
// by frame is refused.
func (x *exchange) upgradeRefusal(up string) string {
	ws := strings.EqualFold(strings.TrimSpace(up), "websocket")
	spdy := strings.EqualFold(strings.TrimSpace(up), "SPDY/3.1")
	if x.isKube() {
		switch {
		case spdy && x.stream != nil, ws:
		default:
			return "protocol upgrade to " + strconv.Quote(up) + " is not relayed (WebSocket, or SPDY for exec, attach and port-forward)"
		}
		if x.kr.Resource == "secrets" && !x.decision.Reveal {
			return "a WebSocket stream of Secrets cannot be masked; use a plain watch"
		}
		return ""
	}
	if !ws {
		return "protocol upgrade to " + strconv.Quote(up) + " is not relayed (only WebSocket)"
	}
	if m := x.subject.Masks(x.name); m != nil && !m.PassNonJSON() {
		return "a WebSocket stream cannot be masked, and a mask rule applies to this target (non_json: pass lets it through)"
	}
	return ""
}

// protocol is the audit protocol name of the exchange.
func (x *exchange) protocol() string {
	if x.target != nil && x.target.Kind == "kubernetes" {
		return "kubernetes"
	}
	return "http"
}

func (x *exchange) isKube() bool { return x.target != nil && x.target.Kind == "kubernetes" }

// parse validates the path and, for Kubernetes, builds the request model.
func (x *exchange) parse(r *http.Request) error {
	path, err := cleanPath(x.rest)
	if err != nil {
		return err
	}
	x.path = path
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// What warden cannot read, a target might read otherwise.
		return fmt.Errorf("malformed query string: %v", err)
	}
	x.query = q
	// The raw query, as forwarded: reviews bind exactly what runs.
	x.text = r.Method + " " + path
	if r.URL.RawQuery != "" {
		x.text += "?" + r.URL.RawQuery
	}
	if !x.isKube() {
		return nil
	}
	ri, err := kube.Parse(r.Method, x.rest, r.URL.Query())
	if err != nil {
		return fmt.Errorf("unknown Kubernetes API path %s: %v", path, err)
	}
	x.ri = ri
	x.kr = &policy.KubeRequest{
		IsResourceRequest: ri.IsResourceRequest, Path: ri.Path, Verb: ri.Verb, APIGroup: ri.APIGroup,
		Namespace: ri.Namespace, Resource: ri.Resource, Subresource: ri.Subresource, Name: ri.Name,
		Discovery: kube.IsDiscovery(ri),
	}
	x.fingerprint = policy.DescribeKube(x.kr)
	if st, ok := kube.Stream(ri, x.query); ok {
		x.stream = &st
		// exec, attach and port-forward are one request whether the
		// client opens them with a WebSocket GET or a SPDY POST (kubectl
		// tries one, then the other): one audit text, one review.
		x.text = "POST" + strings.TrimPrefix(x.text, r.Method)
		x.fingerprint += " " + describeStream(st)
	}
	return nil
}

// cleanPath decodes an escaped request path and refuses the shapes that
// different servers read differently — dot segments, empty segments,
// encoded slashes and backslashes, control characters — so that the path
// policy decides is the path the target serves.
func cleanPath(escaped string) (string, error) {
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return "", errors.New("encoded '/', '\\' or NUL in the path")
	}
	if strings.Contains(lower, "%25") {
		return "", errors.New("double-encoded path ('%25')")
	}
	if strings.Contains(lower, ";") || strings.Contains(lower, "%3b") {
		// Path parameters: Tomcat and Spring read "/a/..;/b" as "/b".
		return "", errors.New("';' in the path")
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return "", fmt.Errorf("bad path escape: %v", err)
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if strings.ContainsAny(p, "\\") {
		return "", errors.New("backslash in the path")
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return "", errors.New("control character in the path")
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." {
			return "", errors.New("dot segment in the path")
		}
		if seg == "" && i != len(segs)-1 {
			return "", errors.New("empty segment (//) in the path")
		}
	}
	return p, nil
}

// bearer extracts the agent's token: the Authorization header, or the
// bearer subprotocol Kubernetes clients use on WebSockets
// (base64url.bearer.authorization.k8s.io.<token>).
func bearer(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", false
		}
		return strings.TrimSpace(tok), true
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if enc, ok := strings.CutPrefix(p, wsBearerPrefix); ok {
				if b, err := base64RawURL(enc); err == nil && len(b) > 0 {
					return string(b), true
				}
			}
		}
	}
	return "", false
}

const wsBearerPrefix = "base64url.bearer.authorization.k8s.io."

// deny refuses the request with the decision, after recording it.
func (x *exchange) deny(w http.ResponseWriter, r *http.Request) {
	x.status = http.StatusForbidden
	if err := x.auditDecision(r.Context(), nil); err != nil {
		x.s.log.Warn("audit of a refusal failed", "err", err)
	}
	d := x.decision
	x.writeDecision(w, http.StatusForbidden, "Forbidden", d.Message(), map[string]any{
		"error": "forbidden", "policy": d.Policy, "rule": d.Rule,
	})
}

// fail answers an error that is not a policy decision.
func (x *exchange) fail(w http.ResponseWriter, code int, reason, msg string) {
	x.writeDecision(w, code, reason, msg, map[string]any{"error": errorCode(code)})
}

func errorCode(code int) string {
	return strings.ReplaceAll(strings.ToLower(http.StatusText(code)), " ", "_")
}

// writeDecision answers in the target's language: a Kubernetes Status
// for kubernetes targets (kubectl prints its message), JSON otherwise.
func (x *exchange) writeDecision(w http.ResponseWriter, code int, reason, msg string, fields map[string]any) {
	x.status = code
	if x.isKube() {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		w.Write(kube.Status(code, reason, msg, x.ri))
		return
	}
	fields["message"] = msg
	for k, v := range fields {
		if v == "" {
			delete(fields, k)
		}
	}
	writeJSON(w, code, fields)
}

func (s *Server) plainError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]any{"error": errCode, "message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// hold puts a request before a human; it returns the approval, or nil
// after answering the client.
func (x *exchange) hold(w http.ResponseWriter, r *http.Request) *review.Review {
	rv := x.s.cfg.Reviews
	d := x.decision
	if rv == nil {
		x.fail(w, http.StatusForbidden, "Forbidden", "warden: held for review, but no review service is configured: refused ("+d.Message()+")")
		return nil
	}
	kind := strings.ToLower(r.Method)
	if x.kr != nil {
		kind = x.kr.Verb
		if x.stream != nil {
			kind = x.stream.Kind
		}
	}
	req := review.Request{
		Principal: x.principal, SessionID: x.sessionID, Protocol: x.protocol(), Target: x.name,
		Statement: x.text, Kind: kind, ParamsHash: x.bodyHash, PolicyVersion: x.subject.Version(),
		Policy: d.Policy, Rule: d.Rule, Reason: d.Reason, MinApprovals: d.MinApprovals, Approvers: d.Approvers,
	}
	fp := review.Fingerprint(req)
	ctx := r.Context()
	if got, ok, err := rv.Claim(ctx, fp); err != nil {
		x.fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "warden: the review service is unavailable; refusing a request that needs approval (fail closed)")
		return nil
	} else if ok {
		return got
	}
	rev, err := rv.Request(ctx, req)
	if err != nil {
		x.fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "warden: the review service is unavailable; refusing a request that needs approval (fail closed)")
		return nil
	}
	held := x.decision
	held.Reason = fmt.Sprintf("review %s: %s", rev.ID, d.Reason)
	x.auditWith(ctx, held, nil, "review")
	wctx, cancel := context.WithTimeout(ctx, x.s.cfg.ReviewWait)
	got, werr := rv.Wait(wctx, rev.ID)
	cancel()
	if got == nil {
		got = rev
	}
	if got.State == review.Approved {
		if claimed, ok, err := rv.Claim(ctx, fp); err == nil && ok {
			return claimed
		}
	}
	if werr != nil && !errors.Is(werr, context.DeadlineExceeded) && ctx.Err() == nil {
		x.fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "warden: the review service is unavailable; refusing a request that needs approval (fail closed)")
		return nil
	}
	url := rv.URL(got.ID)
	var msg string
	switch got.State {
	case review.Denied:
		msg = fmt.Sprintf("warden: review %s denied by %s", got.ID, got.DeniedBy)
		if got.DenyComment != "" {
			msg += ": " + got.DenyComment
		}
	case review.Expired:
		msg = fmt.Sprintf("warden: review %s expired without a decision; send the request again to ask anew", got.ID)
	default:
		msg = fmt.Sprintf("warden: held for review: review %s is %s; approve it at %s (`warden reviews approve %s`), then send the identical request again and it runs once [policy: %s, rule: %s]",
			got.ID, got.State, url, got.ID, orDash(d.Policy), d.Rule)
	}
	x.writeDecision(w, http.StatusForbidden, "Forbidden", msg, map[string]any{
		"error": "review_" + string(got.State), "review_id": got.ID, "review_url": url, "state": string(got.State),
		"policy": d.Policy, "rule": d.Rule,
	})
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditDecision records the decision (durably) before the request is
// forwarded or refused.
func (x *exchange) auditDecision(ctx context.Context, approved *review.Review) error {
	d := x.decision
	dec := audit.Deny
	if d.Effect == policy.Allow || approved != nil {
		dec = audit.Allow
	}
	if approved != nil {
		d.Reason = fmt.Sprintf("approved by review %s: %s", approved.ID, d.Reason)
	}
	return x.auditWith(ctx, d, nil, dec)
}

func (x *exchange) auditWith(ctx context.Context, d policy.Decision, _ *review.Review, decision string) error {
	ev := x.baseEvent(audit.KindStatement)
	ev.Decision = decision
	ev.Status = int64(x.status) // set when the decision is the answer (a refusal)
	ev.Policy, ev.Rule, ev.Reason = d.Policy, d.Rule, d.Reason
	return x.s.cfg.Audit.Record(context.WithoutCancel(ctx), ev)
}

func (x *exchange) baseEvent(kind string) *audit.Event {
	ev := &audit.Event{
		Time: x.start, Kind: kind, SessionID: x.sessionID, Protocol: x.protocol(), Target: x.name, Client: x.client,
		Seq: x.seq, ParamsHash: x.bodyHash,
	}
	if p := x.principal; p != nil {
		ev.Subject, ev.Issuer, ev.Groups, ev.TokenID = p.Subject, p.Issuer, p.Groups, p.TokenID
	}
	if x.textHash == "" {
		sum := sha256.Sum256([]byte(x.text))
		x.textHash = hex.EncodeToString(sum[:])
	}
	ev.RequestHash = x.textHash
	ev.Request = x.text
	if len(ev.Request) > x.s.cfg.MaxAuditText {
		ev.Request = ev.Request[:x.s.cfg.MaxAuditText]
	}
	ev.StmtKind, ev.Fingerprint = strings.ToLower(x.method), x.method+" "+x.path
	if x.kr != nil {
		ev.StmtKind, ev.Fingerprint = x.kr.Verb, x.fingerprint
	}
	return ev
}

func describeStream(st kube.StreamInfo) string {
	var parts []string
	if len(st.Command) > 0 {
		b, _ := json.Marshal(st.Command)
		parts = append(parts, "command="+string(b))
	}
	if st.Container != "" {
		parts = append(parts, "container="+st.Container)
	}
	if len(st.Ports) > 0 {
		parts = append(parts, "ports="+strings.Join(st.Ports, ","))
	}
	return "(" + st.Kind + " " + strings.Join(parts, " ") + ")"
}

func (s *Server) record(ctx context.Context, ev *audit.Event) {
	if err := s.cfg.Audit.Record(context.WithoutCancel(ctx), ev); err != nil {
		s.log.Warn("audit record failed", "kind", ev.Kind, "err", err)
	}
}

// recordAfter records what already happened (a result, after the response
// went out) without holding the connection for the write: the decision
// that let the request through was made durable before it was forwarded.
// A failure is logged.
func (s *Server) recordAfter(ctx context.Context, ev *audit.Event) {
	if ls, ok := s.cfg.Audit.(audit.LaterSink); ok {
		ls.RecordLater(ev) // the store logs a failure
		return
	}
	as, ok := s.cfg.Audit.(audit.AsyncSink)
	if !ok {
		s.record(ctx, ev)
		return
	}
	p := as.Submit(ev)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := p.Wait(); err != nil {
			s.log.Warn("audit record failed", "kind", ev.Kind, "err", err)
		}
	}()
}
