package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/warden-gateway/warden/internal/audit"
)

// Default reasons given to a terminated client when the operator gave
// none.
const (
	defaultTerminateReason = "terminated by an administrator"
	defaultRevokeReason    = "access revoked by an administrator"
)

// handleSessions serves GET /api/v1/sessions.
func (a *API) handleSessions(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Sessions == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "this gateway has no session registry configured")
		return
	}
	// A copy: the slice belongs to the Sessions implementation, and is
	// sorted here (oldest first, then by id) so the order does not depend
	// on which protocol listed what.
	list := slices.Clone(a.cfg.Sessions.List())
	for i := range list {
		if list[i].Groups == nil {
			list[i].Groups = []string{} // a JSON array for clients, never null
		}
	}
	slices.SortStableFunc(list, func(x, y Session) int {
		if c := x.Started.Compare(y.Started); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	if list == nil {
		list = []Session{}
	}
	writeJSON(w, http.StatusOK, SessionList{Sessions: list})
}

// handleTerminate serves DELETE /api/v1/sessions/{id}: audit, then close.
func (a *API) handleTerminate(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	if a.cfg.Sessions == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "this gateway has no session registry configured")
		return
	}
	id := r.PathValue("id")
	if len(id) > maxParamBytes {
		badRequest(w, "id", fmt.Sprintf("session id longer than %d bytes", maxParamBytes))
		return
	}
	body, ok := readActionRequest(w, r)
	if !ok {
		return
	}
	reason := body.Reason
	if reason == "" {
		reason = defaultTerminateReason
	}

	// The session's details, if it is live, make the record say whose
	// session this was. Terminate below stays the authority on whether it
	// exists: the list may be stale by the time it runs.
	var victim *Session
	for _, s := range a.cfg.Sessions.List() {
		if s.ID == id {
			victim = &s
			break
		}
	}
	what := fmt.Sprintf("terminate session %q", id)
	if victim != nil {
		what += fmt.Sprintf(" (subject %q, target %q)", victim.Subject, victim.Target)
	}
	ev := a.event(r, caller, "DELETE "+SessionPath(id), audit.Allow, what+": "+reason)
	// The killed session's id, so the session's own trail shows who
	// ended it (GET /api/v1/audit?session=ID).
	ev.SessionID = id
	if victim != nil {
		ev.Target = victim.Target
	}
	if !a.recordAction(w, r, ev) {
		return
	}

	if !a.cfg.Sessions.Terminate(id, reason) {
		a.log.Info("admin: terminate: no such session", "by", caller.Subject, "session", id)
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no live session %q", id))
		return
	}
	a.log.Info("admin: session terminated", "by", caller.Subject, "session", id, "reason", reason)
	writeJSON(w, http.StatusOK, TerminateResult{Terminated: true, ID: id})
}

// handleRevoke serves POST /api/v1/identities/{sub}/revoke: audit, then
// revoke.
func (a *API) handleRevoke(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	if a.cfg.Revoker == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "this gateway has no revoker configured")
		return
	}
	// PathValue is the unescaped segment: "ci%2Fbot" is "ci/bot".
	sub := r.PathValue("sub")
	if len(sub) > maxParamBytes {
		badRequest(w, "sub", fmt.Sprintf("subject longer than %d bytes", maxParamBytes))
		return
	}
	body, ok := readActionRequest(w, r)
	if !ok {
		return
	}
	reason := body.Reason
	if reason == "" {
		reason = defaultRevokeReason
	}

	// The request text uses the canonical escaping of the subject, so the
	// record is unambiguous whatever escaping the client chose.
	request := "POST " + RevokePath(sub)
	ev := a.event(r, caller, request, audit.Allow, fmt.Sprintf("revoke subject %q: %s", sub, reason))
	if !a.recordAction(w, r, ev) {
		return
	}

	// The revocation runs to completion even if the caller hangs up: it
	// is recorded as done, and half a revocation (refused tokens but live
	// sessions) is the worst outcome.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), actionTimeout)
	defer cancel()
	n, err := a.cfg.Revoker.Revoke(ctx, sub, caller.Subject, reason)
	if err != nil {
		a.log.Error("admin: revoke failed", "by", caller.Subject, "subject", sub, "err", err)
		// The allow record above says it was attempted; this one says it
		// did not (fully) happen. Best effort: the answer is an error
		// either way.
		fail := a.event(r, caller, request, audit.Error, fmt.Sprintf("revoke subject %q failed", sub))
		fail.Error = err.Error()
		if rerr := a.record(r.Context(), fail); rerr != nil {
			a.log.Error("admin: cannot record a failed revocation", "subject", sub, "err", rerr)
		}
		writeError(w, http.StatusInternalServerError, CodeInternal, "revocation failed and may be incomplete; see the gateway log")
		return
	}
	a.log.Info("admin: identity revoked", "by", caller.Subject, "subject", sub, "sessions_terminated", n, "reason", reason)
	writeJSON(w, http.StatusOK, RevokeResult{Subject: sub, Revoked: true, SessionsTerminated: n})
}

// recordAction stores the record of a state-changing request before it is
// carried out. If that fails it answers 503 and returns false: an action
// the audit log cannot hold is not taken.
func (a *API) recordAction(w http.ResponseWriter, r *http.Request, ev *audit.Event) bool {
	if err := a.record(r.Context(), ev); err != nil {
		a.log.Error("admin: action refused: cannot record it", "subject", ev.Subject, "request", ev.Request, "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the audit log cannot record this action, so it was not carried out; retry later")
		return false
	}
	return true
}

// readActionRequest reads the optional JSON body of an action. An empty
// body is an empty request; anything else must be exactly one
// ActionRequest object with no unknown fields. It answers 400/413 itself
// and returns false on a bad body.
func readActionRequest(w http.ResponseWriter, r *http.Request) (ActionRequest, bool) {
	var req ActionRequest
	if !readJSONBody(w, r, &req, `{"reason": "..."}`) {
		return req, false
	}
	if len(req.Reason) > MaxReasonBytes {
		badRequest(w, "reason", fmt.Sprintf("reason longer than %d bytes", MaxReasonBytes))
		return req, false
	}
	return req, true
}

// readJSONBody reads an optional JSON body into v: an empty body leaves v
// alone; anything else must be exactly one object of v's shape (shown to
// the caller as shape) with no unknown fields, so a misspelt field is an
// error rather than silently dropped. It answers 400/413 itself and
// returns false on a bad body.
func readJSONBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	// r.Body is already bounded by MaxBytesReader in ServeHTTP.
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
			return false
		}
		badRequest(w, "body", "cannot read the request body")
		return false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		badRequest(w, "body", "body must be a JSON object "+shape+": "+err.Error())
		return false
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) != 0 {
		badRequest(w, "body", "body must hold a single JSON object")
		return false
	}
	return true
}
