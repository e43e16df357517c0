package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/review"
)

// Error codes, the "code" of an ErrorBody. They are stable strings for
// clients to branch on: add new ones, never rename.
const (
	CodeUnauthenticated  = "unauthenticated"    // 401: no token, or the Verifier refused it
	CodeForbidden        = "forbidden"          // 403: a valid token, not an admin (or not an approver of the review)
	CodeSelfApproval     = "self_approval"      // 403: the caller requested the review it tried to approve or deny
	CodeBadRequest       = "bad_request"        // 400: a bad parameter or body; Param names it
	CodeNotFound         = "not_found"          // 404: no such endpoint, session or review
	CodeMethodNotAllowed = "method_not_allowed" // 405: see the Allow header
	CodeConflict         = "conflict"           // 409: the review is no longer pending (decided, expired or executed)
	CodeDuplicate        = "duplicate"          // 409: the caller has already approved this review
	CodeTooLarge         = "too_large"          // 413: body over MaxBodyBytes
	CodeInternal         = "internal"           // 500: a bug or a failed backend call; see the gateway log
	CodeNotImplemented   = "not_implemented"    // 501: this gateway has no such component configured
	CodeUnavailable      = "unavailable"        // 503: the audit log cannot record the action; nothing was done
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error  string `json:"error"`            // what went wrong, for people
	Code   string `json:"code"`             // one of the Code* constants
	Param  string `json:"param,omitempty"`  // the bad query parameter or body field (400)
	Reason string `json:"reason,omitempty"` // the token refusal reason, identity.Reason* (401)
}

// AuditPage is the body of GET /api/v1/audit.
type AuditPage struct {
	Events []audit.Event `json:"events"` // never null
	// Next is the cursor for the following page, to pass as `after=` with
	// the same filters and order; empty when no more events match (yet).
	// It is the decimal id of the page's last event, so a client may also
	// pass the id of any event it has seen: to tail the log, poll with
	// after=<id of the newest event seen> in ascending order.
	Next string `json:"next"`
}

// SessionList is the body of GET /api/v1/sessions.
type SessionList struct {
	Sessions []Session `json:"sessions"` // never null
}

// TerminateResult is the body of a successful DELETE /api/v1/sessions/{id}.
type TerminateResult struct {
	Terminated bool   `json:"terminated"`
	ID         string `json:"id"`
}

// RevokeResult is the body of a successful POST
// /api/v1/identities/{sub}/revoke.
type RevokeResult struct {
	Subject            string `json:"subject"`
	Revoked            bool   `json:"revoked"`
	SessionsTerminated int    `json:"sessions_terminated"`
}

// ActionRequest is the optional body of DELETE /api/v1/sessions/{id} and
// POST /api/v1/identities/{sub}/revoke.
type ActionRequest struct {
	Reason string `json:"reason,omitempty"` // why; at most MaxReasonBytes
}

// ReviewList is the body of GET /api/v1/reviews.
type ReviewList struct {
	Reviews []ReviewView `json:"reviews"` // never null
}

// ReviewView is a review as the API shows it: every field of the review,
// and the address of its page on the console (Reviews.URL), omitted when
// there is none. A client may decode it into a review.Review.
type ReviewView struct {
	*review.Review
	URL string `json:"url,omitempty"`
}

// DecisionRequest is the optional body of POST
// /api/v1/reviews/{id}/approve and /deny.
type DecisionRequest struct {
	Comment string `json:"comment,omitempty"` // for the requester and the audit log; at most MaxCommentBytes
}

// writeJSON sends v as the whole response. The body is encoded before the
// header is sent, so an encoding failure can still become a 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error: cannot encode the response","code":"internal"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	// Audit records and session lists hold personal data: keep them out
	// of shared caches, and never let a browser sniff them as HTML.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg, Code: code})
}

func badRequest(w http.ResponseWriter, param, msg string) {
	writeJSON(w, http.StatusBadRequest, ErrorBody{Error: msg, Code: CodeBadRequest, Param: param})
}

// methodNotAllowed answers 405 with the methods the path does accept
// (RFC 9110 §15.5.6 requires the Allow header).
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+allow)
	}
}
