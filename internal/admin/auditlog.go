package admin

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/store"
)

// auditParams are the query parameters GET /api/v1/audit accepts. Any
// other parameter is refused: a misspelt filter ("subjet=") must not
// silently widen the result to the whole log.
var auditParams = map[string]bool{
	"subject": true, "target": true, "decision": true, "kind": true, "session": true,
	"q": true, "since": true, "until": true, "limit": true, "after": true, "order": true,
}

// auditRequest is a parsed GET /api/v1/audit.
type auditRequest struct {
	q     store.Query // filters, order and the cursor; Limit unset
	limit int         // page size, 1..store.MaxQueryLimit
}

// paramError is a bad query parameter, answered with 400 naming it.
type paramError struct {
	param, msg string
}

func (e *paramError) Error() string { return e.param + ": " + e.msg }

// parseAuditRequest reads the query parameters of GET /api/v1/audit. An
// empty value counts as absent, so a client may always send every one.
//
//   - subject, target, decision, kind, session: exact match; decision is
//     one of allow, deny, error;
//   - q: substring of the request text (case-sensitive);
//   - since, until: RFC 3339 time, or a Go duration meaning that long ago
//     ("since=1h"); since is inclusive, until exclusive;
//   - limit: page size, default store.DefaultQueryLimit; larger than
//     store.MaxQueryLimit is lowered to it;
//   - order: "asc" (default, oldest first) or "desc" (newest first);
//   - after: the cursor (AuditPage.Next) of the previous page, continuing
//     in the same order.
func parseAuditRequest(vals url.Values, now time.Time) (*auditRequest, *paramError) {
	get := map[string]string{}
	// In name order, so a request with several bad parameters is always
	// refused naming the same one.
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		vs := vals[k]
		if !auditParams[k] {
			if k == "" {
				// "?=x": nameless, perhaps a mangled filter.
				return nil, &paramError{"(unnamed)", "a parameter has no name"}
			}
			return nil, &paramError{k, "unknown parameter"}
		}
		if len(vs) > 1 {
			return nil, &paramError{k, "given more than once"}
		}
		if len(vs[0]) > maxParamBytes {
			return nil, &paramError{k, fmt.Sprintf("longer than %d bytes", maxParamBytes)}
		}
		get[k] = vs[0]
	}

	ar := &auditRequest{
		q: store.Query{
			Subject:   get["subject"],
			Target:    get["target"],
			Decision:  get["decision"],
			Kind:      get["kind"],
			SessionID: get["session"],
			Text:      get["q"],
		},
		limit: store.DefaultQueryLimit,
	}
	switch ar.q.Decision {
	case "", audit.Allow, audit.Deny, audit.Error:
	default:
		return nil, &paramError{"decision", fmt.Sprintf("must be %s, %s or %s", audit.Allow, audit.Deny, audit.Error)}
	}

	var err error
	if ar.q.Since, err = parseTime(get["since"], now); err != nil {
		return nil, &paramError{"since", err.Error()}
	}
	if ar.q.Until, err = parseTime(get["until"], now); err != nil {
		return nil, &paramError{"until", err.Error()}
	}
	if !ar.q.Since.IsZero() && !ar.q.Until.IsZero() && !ar.q.Since.Before(ar.q.Until) {
		return nil, &paramError{"until", "must be later than since"}
	}

	if s := get["limit"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, &paramError{"limit", "must be a positive integer"}
		}
		ar.limit = min(n, store.MaxQueryLimit)
	}

	switch get["order"] {
	case "", "asc":
	case "desc":
		ar.q.Newest = true
	default:
		return nil, &paramError{"order", `must be "asc" or "desc"`}
	}

	if s := get["after"]; s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 0 {
			return nil, &paramError{"after", "must be a cursor from a previous page (an event id)"}
		}
		ar.q = withCursor(ar.q, id)
	}
	return ar, nil
}

// parseTime reads an RFC 3339 time, or a non-negative Go duration meaning
// that long before now. "" is the zero time (no bound).
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2006-01-02T15:04:05Z) nor a duration ago (1h30m)", s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("duration %q must not be negative (it means that long ago)", s)
	}
	return now.Add(-d), nil
}

// withCursor continues q after the event with the given id, in q's order.
// Cursors are ids, not offsets: ids only grow, so pages neither skip nor
// repeat events while the log grows underneath.
func withCursor(q store.Query, id int64) store.Query {
	if q.Newest {
		q.BeforeID = id
	} else {
		q.AfterID = id
	}
	return q
}

// handleAudit serves GET /api/v1/audit.
func (a *API) handleAudit(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Audit == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "this gateway has no audit reader configured")
		return
	}
	ar, perr := parseAuditRequest(r.URL.Query(), a.now())
	if perr != nil {
		badRequest(w, perr.param, "parameter "+perr.Error())
		return
	}
	events, next, err := a.readAudit(r.Context(), ar)
	if err != nil {
		a.log.Error("admin: audit query failed", "subject", callerOf(r).Subject, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "cannot read the audit log; see the gateway log")
		return
	}
	if events == nil {
		events = []audit.Event{}
	}
	page := AuditPage{Events: events}
	if next != 0 {
		page.Next = strconv.FormatInt(next, 10)
	}
	writeJSON(w, http.StatusOK, page)
}

// readAudit returns one page of ar and the cursor after it (0: no more).
func (a *API) readAudit(ctx context.Context, ar *auditRequest) ([]audit.Event, int64, error) {
	q := ar.q
	q.Limit = ar.limit
	evs, err := a.cfg.Audit.Query(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	if len(evs) < ar.limit {
		return evs, 0, nil
	}
	evs = evs[:ar.limit]
	last := evs[len(evs)-1].ID
	// A full page may be the last one. One indexed single-row probe
	// tells, so a client paging to the end does not need an extra round
	// trip for an empty page, and an empty Next reliably means "no more".
	probe := withCursor(q, last)
	probe.Limit = 1
	more, err := a.cfg.Audit.Query(ctx, probe)
	if err != nil {
		return nil, 0, err
	}
	if len(more) == 0 {
		return evs, 0, nil
	}
	return evs, last, nil
}
