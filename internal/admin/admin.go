// Package admin is warden's operator API: reading the audit log, listing
// and killing live sessions, revoking identities, and approving or denying
// held requests (reviews), all over JSON on the http listener under
// /api/v1/. It owns authentication and authorization of operators and the
// audit records of what they do; it knows nothing about wire protocols,
// policy syntax, how events are stored or how a review is decided. What it
// needs from the rest of warden it asks for through small interfaces
// (AuditReader, Sessions, Revoker, Reviews) that the wiring code satisfies.
//
// # Who may call it
//
// Every request under /api/v1/ must carry `Authorization: Bearer <token>`.
// The token is checked by the same identity.Verifier as agents' tokens —
// an operator is an identity like any other, and a revoked or expired
// operator token stops working the same way. A verified caller must also
// satisfy Config.IsAdmin (the config's `admins` CEL expression).
//
//   - no token, or a token the Verifier refuses: 401, code
//     "unauthenticated", `WWW-Authenticate: Bearer` (RFC 6750 §3), and the
//     refusal reason (identity.Reason*) in the body — never the token;
//   - a valid token that is not an admin: 403, code "forbidden", and an
//     audit event (Kind "admin", Decision "deny").
//
// Failed authentications are logged, not audited: an unauthenticated
// caller must not be able to grow the durable log at will.
//
// Three review endpoints decide for themselves who may use them, because
// the people who may act on a review are not only the admins (issue #4):
//
//   - POST /api/v1/reviews/{id}/approve and /deny are open to every
//     verified caller; Reviews decides whether this caller may decide this
//     review (the admins, or the review rule's `approvers`) and refuses the
//     requester itself: 403 "forbidden" or "self_approval";
//   - GET /api/v1/reviews/{id} is for admins, and for the identity that
//     requested the review (same subject and issuer), so an agent can poll
//     its own held request. Anyone else gets 403 "forbidden", audited,
//     whether or not the review exists.
//
// The review list stays admin-only.
//
// # Endpoints
//
//	GET    /api/v1/audit?subject=&target=&decision=&kind=&session=&q=&since=&until=&limit=&after=&order=
//	       → 200 AuditPage {"events": [...], "next": "<cursor>"}
//	GET    /api/v1/sessions                   → 200 SessionList {"sessions": [...]}
//	DELETE /api/v1/sessions/{id}              → 200 TerminateResult, or 404 "not_found"
//	POST   /api/v1/identities/{sub}/revoke    → 200 RevokeResult
//	GET    /api/v1/reviews?state=&subject=&target=&limit=
//	       → 200 ReviewList {"reviews": [...]}; state defaults to pending
//	GET    /api/v1/reviews/{id}               → 200 ReviewView, or 404 "not_found"
//	POST   /api/v1/reviews/{id}/approve       → 200 ReviewView (updated), or 403/404/409
//	POST   /api/v1/reviews/{id}/deny          → 200 ReviewView (updated), or 403/404/409
//
// A ReviewView is a review.Review's JSON with the review's console "url"
// added. Refused decisions: 403 "self_approval" (the requester), 403
// "forbidden" (not an approver), 404 "not_found", 409 "conflict" (no
// longer pending), 409 "duplicate" (this approver already approved).
//
// DELETE /api/v1/sessions/{id} and POST .../revoke take an optional JSON
// body {"reason": "..."} (at most MaxBodyBytes; the reason at most
// MaxReasonBytes); approve and deny an optional {"comment": "..."} (at
// most MaxCommentBytes). Every error is JSON ErrorBody {"error": "...",
// "code": "..."}; an unknown path is 404 "not_found", a known path with
// another method 405 "method_not_allowed" with an Allow header.
//
// # Path segments
//
// {id} and {sub} are single, percent-decoded path segments: a subject
// that contains '/' must be sent with it escaped as %2F (url.PathEscape
// does this), e.g. POST /api/v1/identities/ci%2Freviewer@example.com/revoke
// revokes "ci/reviewer@example.com". Routing runs on the escaped path
// (http.ServeMux since Go 1.22 splits r.URL.EscapedPath() on '/' and only
// then unescapes each segment), so an escaped '/' never splits a segment.
// A subject "." or ".." must be escaped as %2E / %2E%2E. EscapeSegment,
// SessionPath, RevokePath, ReviewPath, ApprovePath and DenyPath build such
// paths for clients. Paths that are not canonical (".", ".." or empty
// segments) are refused with 404 rather than redirected, so every answer
// is JSON.
//
// Mount the API at "/" (or "/api/v1/") of the listener's mux without
// http.StripPrefix: it routes on the full path.
//
// # Audit of operator actions
//
// A state-changing request is recorded (Kind audit.KindAdmin, Decision
// allow, the caller's Subject/Issuer/Groups/TokenID, Client = the TCP
// peer address, Request = "DELETE /api/v1/sessions/<id>" etc.) *before*
// it is carried out; if the record cannot be stored the action is refused
// with 503 "unavailable" (fail closed, as for agents' requests). A session
// kill also sets the event's SessionID and Target to the killed session's,
// so the session's own audit trail shows who ended it. If the Revoker
// fails after its record was stored, a second event (Decision "error",
// Error set) says so and the caller gets 500. Reads (audit, session list,
// reviews) are not recorded, so tailing the log does not grow it.
//
// Approving and denying follow the same rule, with one difference: the
// API cannot know before asking Reviews whether the caller may decide, so
// every attempt is recorded first (Decision "allow": the API let it
// through; Request "POST /api/v1/reviews/<id>/approve"; Reason names the
// review, its requester and target, and carries the comment; SessionID and
// Target are the held request's), and an attempt Reviews refuses gets a
// second record (Decision "deny", Reason the refusal) — or "error" with
// Error set if Reviews failed. The review's own events (proposed,
// approved, executed) are Reviews' to record.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/store"
)

// Limits on what a caller can make the API read or hold.
const (
	// MaxBodyBytes bounds every request body. The only bodies are the
	// optional {"reason": ...} objects; 64 KiB is far more than they need.
	MaxBodyBytes = 64 << 10
	// MaxReasonBytes bounds an operator's reason: it is shown to the
	// terminated client and stored in the audit log.
	MaxReasonBytes = 1024
	// MaxCommentBytes bounds an approver's comment: it is stored with the
	// review, shown to the requester and in the audit log.
	MaxCommentBytes = 1024
	// maxParamBytes bounds each query parameter value.
	maxParamBytes = 4096
	// maxRequestText bounds the Request text of an audit event.
	maxRequestText = 2048
	// recordTimeout bounds how long an action waits for its audit record;
	// a store that slow is a failed store, and the action is refused.
	recordTimeout = 10 * time.Second
	// actionTimeout bounds a Revoker or a Reviews decision call.
	actionTimeout = 30 * time.Second
)

// Prefix is the path prefix the API serves; everything else is 404.
const Prefix = "/api/v1/"

// AuditReader reads the audit log. *store.SQLite implements it.
type AuditReader interface {
	// Query returns the events matching q, in id order (descending if
	// q.Newest), at most q.Limit (capped at store.MaxQueryLimit).
	Query(ctx context.Context, q store.Query) ([]audit.Event, error)
}

// Sessions is the set of live client sessions, across protocols.
type Sessions interface {
	// List returns the live sessions.
	List() []Session
	// Terminate closes the session with the given id, telling its client
	// reason, and reports whether such a session was live.
	Terminate(id, reason string) bool
	// TerminateSubject closes every session of a subject and returns how
	// many it closed. The API itself does not call it — revocation goes
	// through Revoker, which owns closing the subject's sessions — but a
	// Revoker is usually built on it.
	TerminateSubject(sub, reason string) int
}

// Revoker revokes an identity: its tokens are refused from now on, and its
// open sessions are closed.
type Revoker interface {
	// Revoke revokes subject on behalf of the operator by, and returns how
	// many open sessions it closed. An error means the revocation may not
	// have taken effect.
	Revoke(ctx context.Context, subject, by, reason string) (sessionsTerminated int, err error)
}

// Session describes one live client session. Its fields are those of
// postgres.SessionInfo, in the same order, so a conversion
// admin.Session(info) works.
type Session struct {
	ID       string    `json:"id"`
	Protocol string    `json:"protocol"`
	Target   string    `json:"target"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	Groups   []string  `json:"groups"`
	TokenID  string    `json:"token_id,omitempty"`
	Client   string    `json:"client"`
	Started  time.Time `json:"started"`
	Expires  time.Time `json:"token_expires"`
}

// Config is what the API needs. Verifier, IsAdmin and Record are
// required; the rest have the defaults documented on each field.
type Config struct {
	// Verifier checks bearer tokens, exactly as for agents (wrap it with
	// identity.WithRevocations so revoked operators are refused too).
	Verifier identity.Verifier
	// IsAdmin decides whether a verified caller may use the API: the
	// config's `admins` CEL expression (policy.Engine.IsAdmin). It must
	// return false when in doubt.
	IsAdmin func(*identity.Principal) bool
	// Audit serves GET /api/v1/audit. Nil: that endpoint answers 501.
	Audit AuditReader
	// Sessions serves /api/v1/sessions. Nil: those endpoints answer 501.
	Sessions Sessions
	// Revoker serves POST /api/v1/identities/{sub}/revoke. Nil: 501.
	Revoker Revoker
	// Reviews serves /api/v1/reviews (review.Manager). Nil: those
	// endpoints answer 501.
	Reviews Reviews
	// Record stores operator actions and refused callers. Required:
	// without it no action could be carried out (fail closed).
	Record audit.Sink
	// Logger receives failures and operator actions. Default: discard.
	Logger *slog.Logger
	// Now is the clock for audit event times and relative `since`/`until`.
	// Default time.Now.
	Now func() time.Time
}

// API is the admin API. It is an http.Handler, safe for concurrent use,
// meant to be mounted at "/" (or at Prefix) on warden's http listener; it
// owns no goroutines.
type API struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	mux *http.ServeMux // routes requests that passed authentication
	// open holds the mux patterns whose handlers authorize the caller
	// themselves; every other pattern is for admins only. Written once
	// in New.
	open map[string]bool
}

// New checks cfg and returns the API.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Verifier == nil:
		return nil, errors.New("admin.New: Verifier is required")
	case cfg.IsAdmin == nil:
		return nil, errors.New("admin.New: IsAdmin is required (nobody could be an admin)")
	case cfg.Record == nil:
		return nil, errors.New("admin.New: Record is required (operator actions must be audited)")
	}
	a := &API{cfg: cfg, log: cfg.Logger, now: cfg.Now, open: map[string]bool{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}

	// A pattern with a method is more specific than the same path without
	// one, so each path's method-less pattern catches only the other
	// methods: the mux never writes its own plain-text 404/405.
	m := http.NewServeMux()
	m.HandleFunc("GET /api/v1/audit", a.handleAudit)
	m.HandleFunc("/api/v1/audit", methodNotAllowed("GET, HEAD"))
	m.HandleFunc("GET /api/v1/sessions", a.handleSessions)
	m.HandleFunc("/api/v1/sessions", methodNotAllowed("GET, HEAD"))
	m.HandleFunc("DELETE /api/v1/sessions/{id}", a.handleTerminate)
	m.HandleFunc("/api/v1/sessions/{id}", methodNotAllowed("DELETE"))
	m.HandleFunc("POST /api/v1/identities/{sub}/revoke", a.handleRevoke)
	m.HandleFunc("/api/v1/identities/{sub}/revoke", methodNotAllowed("POST"))
	m.HandleFunc("/api/v1/identities/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound,
			"no such endpoint; the identity endpoint is /api/v1/identities/{sub}/revoke, with '/' in the subject escaped as %2F")
	})
	m.HandleFunc("GET /api/v1/reviews", a.handleReviews)
	m.HandleFunc("/api/v1/reviews", methodNotAllowed("GET, HEAD"))
	// Approvers who are not admins, and a review's requester, reach these
	// (see "Who may call it"); their 405s are theirs too.
	open := func(pattern string, h http.HandlerFunc) {
		m.HandleFunc(pattern, h)
		a.open[pattern] = true
	}
	open("GET /api/v1/reviews/{id}", a.handleReview)
	open("/api/v1/reviews/{id}", methodNotAllowed("GET, HEAD"))
	open("POST /api/v1/reviews/{id}/approve", a.handleDecision(approve))
	open("/api/v1/reviews/{id}/approve", methodNotAllowed("POST"))
	open("POST /api/v1/reviews/{id}/deny", a.handleDecision(deny))
	open("/api/v1/reviews/{id}/deny", methodNotAllowed("POST"))
	m.HandleFunc("/api/v1/reviews/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound,
			"no such endpoint; the review endpoints are /api/v1/reviews/{id}, .../approve and .../deny, with '/' in the id escaped as %2F")
	})
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint")
	})
	a.mux = m
	return a, nil
}

// ServeHTTP serves the API: canonical path check, authentication,
// authorization, then the endpoint.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w}
	defer a.recoverPanic(rw, r)

	// Only bodies the handlers mean to read exist; bound them all here so
	// no handler can be made to buffer an unbounded one.
	r.Body = http.MaxBytesReader(rw, r.Body, MaxBodyBytes)

	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, Prefix) {
		writeError(rw, http.StatusNotFound, CodeNotFound, "no such endpoint; the admin API is under "+Prefix)
		return
	}
	if !canonical(p) {
		// http.ServeMux would redirect to the cleaned path; an API
		// client is better served by an error than by a redirect that
		// may change what the path names.
		writeError(rw, http.StatusNotFound, CodeNotFound, "path is not canonical (empty, '.' or '..' segments); escape such characters in path segments")
		return
	}

	caller, ok := a.authenticate(rw, r)
	if !ok {
		return
	}
	// The pattern the mux will route to says who may call it: admins
	// only, unless the handler authorizes the caller itself.
	if _, pattern := a.mux.Handler(r); !a.open[pattern] && !a.cfg.IsAdmin(caller) {
		a.forbid(rw, r, caller)
		return
	}
	a.mux.ServeHTTP(rw, r.WithContext(withCaller(r.Context(), caller)))
}

// canonical reports whether the escaped path p is what path.Clean makes of
// it (keeping a trailing slash), the same test http.ServeMux redirects on.
func canonical(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// authenticate returns the verified caller, or answers 401 and returns
// false.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (*identity.Principal, bool) {
	tok, err := bearerToken(r.Header)
	if err != nil {
		a.log.Info("admin: unauthenticated request", "client", r.RemoteAddr, "request", r.Method+" "+r.URL.EscapedPath(), "reason", err.Error())
		// RFC 6750 §3.1: no error code when the request carried no
		// credential at all.
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: err.Error(), Code: CodeUnauthenticated})
		return nil, false
	}
	p, err := a.cfg.Verifier.Verify(r.Context(), tok)
	if err == nil && (p == nil || p.Subject == "") {
		// A Verifier must fail closed; one that returns no identity
		// without an error is a bug, and gets no access.
		err = errors.New("verifier returned no subject")
	}
	if err != nil {
		reason := identity.ReasonOf(err)
		msg := "invalid token"
		if reason != "" {
			msg += ": " + reason
		}
		a.log.Info("admin: token refused", "client", r.RemoteAddr, "request", r.Method+" "+r.URL.EscapedPath(), "reason", reason, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: msg, Code: CodeUnauthenticated, Reason: reason})
		return nil, false
	}
	return p, true
}

// bearerToken extracts the token of an RFC 6750 §2.1 Authorization header.
// The scheme is case-insensitive (RFC 9110 §11.1). Several Authorization
// headers are refused: which one counts would be a guess.
func bearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", errors.New("missing bearer token (Authorization: Bearer <token>)")
	case len(vals) > 1:
		return "", errors.New("more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New("authorization scheme must be Bearer")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", errors.New("empty bearer token")
	}
	return tok, nil
}

// forbid answers 403 to a verified non-admin and audits the attempt. The
// answer does not depend on the record: nothing is done either way.
func (a *API) forbid(w http.ResponseWriter, r *http.Request, caller *identity.Principal) {
	a.refuse(w, r, caller, "not an administrator: the admins rule does not match",
		"forbidden: "+caller.Subject+" is not an administrator")
}

// refuse answers 403 "forbidden" with msg to a verified caller and audits
// the refusal with reason.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, caller *identity.Principal, reason, msg string) {
	// The path only: the query string is the client's to fill, and it
	// could carry a credential (?access_token=) the log must never hold.
	req := r.Method + " " + r.URL.EscapedPath()
	ev := a.event(r, caller, req, audit.Deny, reason)
	if err := a.record(r.Context(), ev); err != nil {
		a.log.Error("admin: cannot record a refused request", "subject", caller.Subject, "request", ev.Request, "err", err)
	}
	a.log.Warn("admin: forbidden", "subject", caller.Subject, "issuer", caller.Issuer, "client", r.RemoteAddr, "request", ev.Request, "reason", reason)
	writeError(w, http.StatusForbidden, CodeForbidden, msg)
}

// event builds an admin audit event for caller's request.
func (a *API) event(r *http.Request, caller *identity.Principal, request, decision, reason string) *audit.Event {
	return &audit.Event{
		Time: a.now(),
		Kind: audit.KindAdmin,
		// The TCP peer, not X-Forwarded-For: a header is what the client
		// says, and the audit log records what warden saw.
		Client:   r.RemoteAddr,
		Subject:  caller.Subject,
		Issuer:   caller.Issuer,
		Groups:   caller.Groups,
		TokenID:  caller.TokenID,
		Request:  truncate(request, maxRequestText),
		Decision: decision,
		Reason:   reason,
	}
}

// record stores ev durably. It is detached from the request's
// cancellation: a caller hanging up must not leave an action half
// audited, but the wait is bounded.
func (a *API) record(ctx context.Context, ev *audit.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := a.cfg.Record.Record(ctx, ev); err != nil {
		return fmt.Errorf("admin: record: %w", err)
	}
	return nil
}

// recoverPanic turns a handler panic into a 500 (if nothing was written
// yet) and a log line with the stack, so one bad request cannot take the
// listener down. http.ErrAbortHandler keeps its meaning: abort quietly.
func (a *API) recoverPanic(w *responseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	a.log.Error("admin: handler panic", "request", r.Method+" "+r.URL.EscapedPath(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if !w.wroteHeader {
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
}

// responseWriter remembers whether the header was sent, so a recovered
// panic knows whether it can still answer.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// callerKey carries the verified caller from ServeHTTP to the handlers.
type callerKey struct{}

func withCaller(ctx context.Context, p *identity.Principal) context.Context {
	return context.WithValue(ctx, callerKey{}, p)
}

// callerOf returns the caller ServeHTTP verified. Handlers are reachable
// only through ServeHTTP, so it is always set; a missing caller panics
// (and becomes a 500) rather than acting for nobody.
func callerOf(r *http.Request) *identity.Principal {
	p, _ := r.Context().Value(callerKey{}).(*identity.Principal)
	if p == nil {
		panic("admin: handler reached without an authenticated caller")
	}
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the stored text stays valid UTF-8.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// Compile-time interface guards.
var (
	_ http.Handler        = (*API)(nil)
	_ AuditReader         = (*store.SQLite)(nil)
	_ audit.Sink          = (*store.SQLite)(nil)
	_ http.ResponseWriter = (*responseWriter)(nil)
)
