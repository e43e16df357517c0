package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/review"
)

// Reviews is the set of held requests awaiting (or past) a human decision.
// review.Manager implements it; the API only reads reviews and passes
// decisions on, and Reviews owns every rule about who may decide what.
type Reviews interface {
	// Get returns the review with this id, or an error wrapping
	// review.ErrNotFound.
	Get(ctx context.Context, id string) (*review.Review, error)
	// List returns the reviews matching f (f.State "" is any state).
	List(ctx context.Context, f review.Filter) ([]*review.Review, error)
	// Approve records approver's yes to review id and returns the
	// review as it now stands (still pending while it lacks approvals).
	// It refuses with errors wrapping review.ErrNotFound, ErrSelfApproval
	// (approver requested it), ErrNotApprover (neither an admin nor
	// matching the rule's approvers), ErrNotPending (already decided,
	// expired or executed) or ErrDuplicate (approver already approved).
	Approve(ctx context.Context, id string, approver *identity.Principal, comment string) (*review.Review, error)
	// Deny records approver's no and returns the denied review. It
	// refuses as Approve does (but for ErrDuplicate).
	Deny(ctx context.Context, id string, approver *identity.Principal, comment string) (*review.Review, error)
	// URL is the console address of review id, for people.
	URL(id string) string
}

// Bounds of GET /api/v1/reviews (review.Filter's).
const (
	DefaultReviewLimit = 100
	MaxReviewLimit     = 1000
)

// reviewParams are the query parameters GET /api/v1/reviews accepts; any
// other is refused, as for the audit log, so a misspelt filter cannot
// widen the list.
var reviewParams = map[string]bool{"state": true, "subject": true, "target": true, "limit": true}

// stateAny is the `state` value that lists reviews in every state.
const stateAny = "any"

// parseReviewFilter reads the query parameters of GET /api/v1/reviews. An
// empty value counts as absent.
//
//   - state: pending (the default), approved, denied, expired, executed,
//     or any;
//   - subject, target: exact match (the requester's subject, the target);
//   - limit: at most this many, default DefaultReviewLimit; larger than
//     MaxReviewLimit is lowered to it.
func parseReviewFilter(vals url.Values) (review.Filter, *paramError) {
	get := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		vs := vals[k]
		switch {
		case k == "":
			return review.Filter{}, &paramError{"(unnamed)", "a parameter has no name"}
		case !reviewParams[k]:
			return review.Filter{}, &paramError{k, "unknown parameter"}
		case len(vs) > 1:
			return review.Filter{}, &paramError{k, "given more than once"}
		case len(vs[0]) > maxParamBytes:
			return review.Filter{}, &paramError{k, fmt.Sprintf("longer than %d bytes", maxParamBytes)}
		}
		get[k] = vs[0]
	}
	f := review.Filter{Subject: get["subject"], Target: get["target"], Limit: DefaultReviewLimit}
	switch s := review.State(get["state"]); s {
	case "":
		f.State = review.Pending
	case stateAny:
		f.State = ""
	case review.Pending, review.Approved, review.Denied, review.Expired, review.Executed:
		f.State = s
	default:
		return review.Filter{}, &paramError{"state", "must be pending, approved, denied, expired, executed or any"}
	}
	if s := get["limit"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return review.Filter{}, &paramError{"limit", "must be a positive integer"}
		}
		f.Limit = min(n, MaxReviewLimit)
	}
	return f, nil
}

// noReviews answers 501 when no Reviews is configured.
func (a *API) noReviews(w http.ResponseWriter) bool {
	if a.cfg.Reviews != nil {
		return false
	}
	writeError(w, http.StatusNotImplemented, CodeNotImplemented, "this gateway has no review manager configured")
	return true
}

// handleReviews serves GET /api/v1/reviews (admins only).
func (a *API) handleReviews(w http.ResponseWriter, r *http.Request) {
	if a.noReviews(w) {
		return
	}
	f, perr := parseReviewFilter(r.URL.Query())
	if perr != nil {
		badRequest(w, perr.param, "parameter "+perr.Error())
		return
	}
	list, err := a.cfg.Reviews.List(r.Context(), f)
	if err != nil {
		a.log.Error("admin: review list failed", "subject", callerOf(r).Subject, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "cannot list reviews; see the gateway log")
		return
	}
	// The limit is the API's promise, whatever the implementation does
	// with it; and a nil entry would be a null in the array.
	views := make([]ReviewView, 0, min(len(list), f.Limit))
	for _, rv := range list {
		if rv != nil && len(views) < f.Limit {
			views = append(views, a.view(rv))
		}
	}
	writeJSON(w, http.StatusOK, ReviewList{Reviews: views})
}

// handleReview serves GET /api/v1/reviews/{id}: to admins, and to the
// identity that requested the review.
func (a *API) handleReview(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	if a.noReviews(w) {
		return
	}
	id := r.PathValue("id")
	if len(id) > maxParamBytes {
		badRequest(w, "id", fmt.Sprintf("review id longer than %d bytes", maxParamBytes))
		return
	}
	rv, err := a.cfg.Reviews.Get(r.Context(), id)
	if err == nil && rv == nil {
		err = fmt.Errorf("admin: Reviews.Get(%q) returned no review and no error", id)
	}
	notFound := errors.Is(err, review.ErrNotFound)
	if err != nil && !notFound {
		a.log.Error("admin: review read failed", "subject", caller.Subject, "review", id, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "cannot read the review; see the gateway log")
		return
	}
	if !a.cfg.IsAdmin(caller) && (notFound || !requestedBy(rv, caller)) {
		// The same answer whether or not the review exists, so review
		// ids cannot be probed by anyone who merely holds a token.
		a.refuse(w, r, caller, fmt.Sprintf("not an administrator, nor the requester of review %q", id),
			"forbidden: "+caller.Subject+" is neither an administrator nor the requester of this review")
		return
	}
	if notFound {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no review %q", id))
		return
	}
	writeJSON(w, http.StatusOK, a.view(rv))
}

// view is rv as the API shows it.
func (a *API) view(rv *review.Review) ReviewView {
	return ReviewView{Review: rv, URL: a.cfg.Reviews.URL(rv.ID)}
}

// requestedBy reports whether p is the identity that requested rv. A
// subject is only unique within its issuer.
func requestedBy(rv *review.Review, p *identity.Principal) bool {
	return rv.Subject != "" && rv.Subject == p.Subject && rv.Issuer == p.Issuer
}

// decision is one of the two verbs on a review.
type decision struct {
	verb string // "approve" or "deny": the path's last segment
	path func(id string) string
	call func(Reviews, context.Context, string, *identity.Principal, string) (*review.Review, error)
}

var (
	approve = decision{"approve", ApprovePath, Reviews.Approve}
	deny    = decision{"deny", DenyPath, Reviews.Deny}
)

// handleDecision serves POST /api/v1/reviews/{id}/approve or /deny: audit
// the attempt, then let Reviews decide whether the caller may, and say
// what came of it.
func (a *API) handleDecision(d decision) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller := callerOf(r)
		if a.noReviews(w) {
			return
		}
		id := r.PathValue("id")
		if len(id) > maxParamBytes {
			badRequest(w, "id", fmt.Sprintf("review id longer than %d bytes", maxParamBytes))
			return
		}
		var body DecisionRequest
		if !readJSONBody(w, r, &body, `{"comment": "..."}`) {
			return
		}
		if len(body.Comment) > MaxCommentBytes {
			badRequest(w, "comment", fmt.Sprintf("comment longer than %d bytes", MaxCommentBytes))
			return
		}

		// What is being decided, for the record: whose request, on
		// which target, in which session. Reviews stays the authority on
		// whether the review exists and who may decide it; a failed read
		// here only makes the record terser.
		what := fmt.Sprintf("%s review %q", d.verb, id)
		request := "POST " + d.path(id)
		ev := a.event(r, caller, request, audit.Allow, "")
		if rv, err := a.cfg.Reviews.Get(r.Context(), id); err == nil && rv != nil {
			what += fmt.Sprintf(" (requested by %q, target %q, rule %q)", rv.Subject, rv.Target, rv.Rule)
			ev.Target = rv.Target
			// The held request's session, so its trail shows who decided.
			ev.SessionID = rv.SessionID
		} else if err != nil && !errors.Is(err, review.ErrNotFound) {
			a.log.Warn("admin: cannot read the review to record its decision", "review", id, "err", err)
		}
		ev.Reason = what + ": " + commentText(body.Comment)
		if !a.recordAction(w, r, ev) {
			return
		}

		// Recorded as attempted, so it runs to completion even if the
		// caller hangs up.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), actionTimeout)
		defer cancel()
		rv, err := d.call(a.cfg.Reviews, ctx, id, caller, body.Comment)
		if err == nil && rv == nil {
			err = fmt.Errorf("admin: Reviews.%s returned no review and no error", d.verb)
		}
		if err != nil {
			a.refusedDecision(w, r, caller, d, id, ev, what, err)
			return
		}
		a.log.Info("admin: review "+d.verb, "by", caller.Subject, "review", id, "state", rv.State, "comment", body.Comment)
		writeJSON(w, http.StatusOK, a.view(rv))
	}
}

// refusedDecision answers a decision Reviews did not carry out, and
// records why next to the attempt's record (best effort: the answer is a
// refusal either way).
func (a *API) refusedDecision(w http.ResponseWriter, r *http.Request, caller *identity.Principal, d decision, id string, attempt *audit.Event, what string, err error) {
	status, code, msg := decisionError(err, d, id)
	outcome := audit.Deny
	if status == http.StatusInternalServerError {
		outcome = audit.Error
	}
	ev := a.event(r, caller, attempt.Request, outcome, what+" refused: "+err.Error())
	ev.Target, ev.SessionID = attempt.Target, attempt.SessionID
	if outcome == audit.Error {
		ev.Reason = what + " failed"
		ev.Error = err.Error()
		a.log.Error("admin: review decision failed", "by", caller.Subject, "review", id, "verb", d.verb, "err", err)
	} else {
		a.log.Warn("admin: review decision refused", "by", caller.Subject, "issuer", caller.Issuer, "review", id, "verb", d.verb, "code", code, "err", err)
	}
	if rerr := a.record(r.Context(), ev); rerr != nil {
		a.log.Error("admin: cannot record a refused review decision", "review", id, "err", rerr)
	}
	writeError(w, status, code, msg)
}

// decisionError maps a Reviews refusal to the answer. The messages are
// the API's own: an unclassified error's text stays in the log.
func decisionError(err error, d decision, id string) (status int, code, msg string) {
	switch {
	case errors.Is(err, review.ErrNotFound):
		return http.StatusNotFound, CodeNotFound, fmt.Sprintf("no review %q", id)
	case errors.Is(err, review.ErrSelfApproval):
		return http.StatusForbidden, CodeSelfApproval, fmt.Sprintf("you requested review %q: someone else must %s it", id, d.verb)
	case errors.Is(err, review.ErrNotApprover):
		return http.StatusForbidden, CodeForbidden, fmt.Sprintf("forbidden: you are not an approver of review %q", id)
	case errors.Is(err, review.ErrNotPending), errors.Is(err, review.ErrConflict):
		return http.StatusConflict, CodeConflict, fmt.Sprintf("review %q is no longer pending: it was decided, expired or executed", id)
	case errors.Is(err, review.ErrDuplicate):
		return http.StatusConflict, CodeDuplicate, fmt.Sprintf("you have already approved review %q; it needs another approver", id)
	}
	return http.StatusInternalServerError, CodeInternal, "the decision failed and may not have been recorded; see the gateway log"
}

func commentText(c string) string {
	if c == "" {
		return "(no comment)"
	}
	return strconv.Quote(c)
}
