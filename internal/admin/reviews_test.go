package admin_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/admin/admintest"
	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/review"
)

// held adds a pending review of statement on prod-db, requested by sub
// (issued by the harness's issuer), and returns it.
func (h *harness) held(id, sub string, mutate ...func(*review.Review)) *review.Review {
	h.t.Helper()
	rv := &review.Review{
		ID: id, State: review.Pending, Fingerprint: "fp-" + id,
		Subject: sub, Issuer: h.iss.URL, Groups: []string{"analysts"}, SessionID: "sess-" + id,
		Protocol: "postgres", Target: "prod-db", Statement: "DELETE FROM orders WHERE id = 7", Kind: "delete",
		PolicyVersion: "v1", Policy: "analyst-agents", Rule: "analyst-agents/review[0]",
		CreatedAt: h.now.Add(-5 * time.Minute), ExpiresAt: h.now.Add(10 * time.Minute),
	}
	for _, m := range mutate {
		m(rv)
	}
	h.reviews.Add(rv)
	return rv
}

// reviewOf decodes a review answer.
func reviewOf(t *testing.T, r response) admin.ReviewView {
	t.Helper()
	var v admin.ReviewView
	if err := json.Unmarshal(r.body, &v); err != nil || v.Review == nil || v.ID == "" {
		t.Fatalf("not a review: %s (%v)", r, err)
	}
	return v
}

// reviewIDs GETs the review list with query as the admin and returns the
// ids in the answer's order.
func (h *harness) reviewIDs(query string) []string {
	h.t.Helper()
	r := h.do("GET", admin.ReviewsPath+"?"+query, h.adminTok, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET reviews?%s: %s", query, r)
	}
	var list admin.ReviewList
	if err := json.Unmarshal(r.body, &list); err != nil || list.Reviews == nil {
		h.t.Fatalf("GET reviews?%s: %v: %s", query, err, r.body)
	}
	ids := []string{}
	for _, v := range list.Reviews {
		ids = append(ids, v.ID)
	}
	return ids
}

func TestReviewList(t *testing.T) {
	h := newHarness(t)
	if got := h.reviewIDs(""); len(got) != 0 {
		t.Fatalf("no reviews: got %v", got)
	}
	at := func(min int) func(*review.Review) {
		return func(rv *review.Review) { rv.CreatedAt = h.now.Add(-time.Duration(min) * time.Minute) }
	}
	state := func(s review.State) func(*review.Review) { return func(rv *review.Review) { rv.State = s } }
	target := func(tg string) func(*review.Review) { return func(rv *review.Review) { rv.Target = tg } }
	h.held("r1", "agent-1", at(60))
	h.held("r2", "agent-2", at(50), target("billing-db"))
	h.held("r3", "agent-1", at(40), state(review.Approved))
	h.held("r4", "agent-1", at(30), state(review.Denied))
	h.held("r5", "agent-2", at(20), state(review.Expired), target("billing-db"))
	h.held("r6", "agent-1", at(10), state(review.Executed))
	h.held("r7", "ci/reviewer@example.com", at(5))

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"r1", "r2", "r7"}}, // pending by default
		{"state=", []string{"r1", "r2", "r7"}},
		{"state=pending", []string{"r1", "r2", "r7"}},
		{"state=any", []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7"}},
		{"state=approved", []string{"r3"}},
		{"state=denied", []string{"r4"}},
		{"state=expired", []string{"r5"}},
		{"state=executed", []string{"r6"}},
		{"subject=agent-1", []string{"r1"}},
		{"subject=agent-1&state=any", []string{"r1", "r3", "r4", "r6"}},
		{"subject=" + url.QueryEscape("ci/reviewer@example.com"), []string{"r7"}},
		{"target=billing-db&state=any", []string{"r2", "r5"}},
		{"target=billing-db&subject=agent-2&state=expired", []string{"r5"}},
		{"state=any&limit=2", []string{"r1", "r2"}},
		{"state=any&limit=5000", []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7"}}, // lowered, not refused
		{"subject=nobody", []string{}},
		{"state=&subject=&target=&limit=", []string{"r1", "r2", "r7"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := h.reviewIDs(tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("reviews are complete", func(t *testing.T) {
		r := h.do("GET", admin.ReviewsPath+"?subject=agent-2", h.adminTok, nil)
		var raw struct{ Reviews []map[string]any }
		if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Reviews) != 1 {
			t.Fatalf("%s (%v)", r, err)
		}
		got := raw.Reviews[0]
		for k, want := range map[string]any{
			"id": "r2", "state": "pending", "subject": "agent-2", "issuer": h.iss.URL, "target": "billing-db",
			"statement": "DELETE FROM orders WHERE id = 7", "rule": "analyst-agents/review[0]", "session_id": "sess-r2",
			"url": "https://warden.example.com/console/reviews/r2",
		} {
			if got[k] != want {
				t.Errorf("%s = %#v, want %#v", k, got[k], want)
			}
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, tt := range []struct{ query, param string }{
			{"state=open", "state"},
			{"state=Pending", "state"},
			{"limit=0", "limit"},
			{"limit=x", "limit"},
			{"subjet=agent-1", "subjet"},
			{"state=any&state=pending", "state"},
			{"access_token=x", "access_token"},
			{"target=" + strings.Repeat("t", 5000), "target"},
		} {
			r := h.do("GET", admin.ReviewsPath+"?"+tt.query, h.adminTok, nil)
			if r.status != http.StatusBadRequest {
				t.Errorf("%.40s: %s, want 400", tt.query, r)
				continue
			}
			if eb := r.errorBody(t); eb.Code != admin.CodeBadRequest || eb.Param != tt.param {
				t.Errorf("%.40s: %+v, want bad_request naming %q", tt.query, eb, tt.param)
			}
		}
	})
	t.Run("admins only", func(t *testing.T) {
		// An approver of some reviews is not thereby an admin, and the
		// requester of some is not allowed the list.
		for _, tok := range []string{h.dbaTok, h.userTok} {
			r := h.do("GET", admin.ReviewsPath+"?state=any", tok, nil)
			if r.status != http.StatusForbidden || r.errorBody(t).Code != admin.CodeForbidden {
				t.Errorf("non-admin listing: %s, want 403", r)
			}
		}
	})
	t.Run("reads are not recorded, refusals are", func(t *testing.T) {
		evs := h.adminEvents()
		if len(evs) != 2 {
			t.Fatalf("%d admin events, want the 2 refused listings: %+v", len(evs), evs)
		}
		for _, ev := range evs {
			if ev.Decision != audit.Deny || ev.Request != "GET /api/v1/reviews" {
				t.Errorf("recorded %+v", ev)
			}
		}
	})
	t.Run("backend failure", func(t *testing.T) {
		h.reviews.SetErr(errors.New("reviews table is locked"))
		defer h.reviews.SetErr(nil)
		r := h.do("GET", admin.ReviewsPath, h.adminTok, nil)
		if r.status != http.StatusInternalServerError || r.errorBody(t).Code != admin.CodeInternal || strings.Contains(string(r.body), "locked") {
			t.Errorf("got %s, want 500 without the internal error", r)
		}
	})
}

func TestReviewGet(t *testing.T) {
	h := newHarness(t)
	h.held("r1", "agent-1")
	h.held("r2", "agent-2")
	// Same subject, another issuer: a different identity.
	h.held("r3", "agent-1", func(rv *review.Review) { rv.Issuer = "https://other-issuer.example.com" })
	h.held("ci/7", "ci/reviewer@example.com")

	tests := []struct {
		name     string
		token    string
		id       string
		want     int
		wantCode string
	}{
		{"admin reads any", h.adminTok, "r2", http.StatusOK, ""},
		{"admin, escaped id", h.adminTok, "ci/7", http.StatusOK, ""},
		{"admin, unknown", h.adminTok, "nope", http.StatusNotFound, admin.CodeNotFound},
		{"requester reads its own", h.userTok, "r1", http.StatusOK, ""},
		{"requester, another's", h.userTok, "r2", http.StatusForbidden, admin.CodeForbidden},
		{"same subject, other issuer", h.userTok, "r3", http.StatusForbidden, admin.CodeForbidden},
		{"non-admin, unknown: same answer as another's", h.userTok, "nope", http.StatusForbidden, admin.CodeForbidden},
		{"approver is not an admin", h.dbaTok, "r1", http.StatusForbidden, admin.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.adminEvents())
			r := h.do("GET", admin.ReviewPath(tt.id), tt.token, nil)
			if r.status != tt.want {
				t.Fatalf("GET %s: %s, want %d", admin.ReviewPath(tt.id), r, tt.want)
			}
			evs := h.adminEvents()
			if tt.want != http.StatusOK {
				if eb := r.errorBody(t); eb.Code != tt.wantCode {
					t.Errorf("code %q, want %q", eb.Code, tt.wantCode)
				}
				if strings.Contains(string(r.body), "DELETE FROM") {
					t.Errorf("a refusal shows the statement: %s", r.body)
				}
				if tt.want == http.StatusForbidden {
					if len(evs) != before+1 || evs[len(evs)-1].Decision != audit.Deny || evs[len(evs)-1].Request != "GET "+admin.ReviewPath(tt.id) {
						t.Errorf("refusal not recorded: %+v", evs[before:])
					}
				}
				return
			}
			if len(evs) != before {
				t.Errorf("a read was recorded: %+v", evs[before:])
			}
			v := reviewOf(t, r)
			if v.ID != tt.id || v.Statement != "DELETE FROM orders WHERE id = 7" || v.URL != "https://warden.example.com/console/reviews/"+url.PathEscape(tt.id) {
				t.Errorf("got %+v, url %q", v.Review, v.URL)
			}
		})
	}
}

// TestRequesterPollsItsReview is the agent's side of the story: it sees
// its held request pending, then approved, while the admin decides.
func TestRequesterPollsItsReview(t *testing.T) {
	h := newHarness(t)
	h.held("r1", "agent-1")
	poll := func() review.State {
		t.Helper()
		r := h.do("GET", admin.ReviewPath("r1"), h.userTok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("requester polling: %s", r)
		}
		return reviewOf(t, r).State
	}
	if s := poll(); s != review.Pending {
		t.Fatalf("state %q, want pending", s)
	}
	if r := h.do("POST", admin.ApprovePath("r1"), h.adminTok, []byte(`{"comment":"one row, fine"}`)); r.status != http.StatusOK {
		t.Fatalf("approve: %s", r)
	}
	r := h.do("GET", admin.ReviewPath("r1"), h.userTok, nil)
	v := reviewOf(t, r)
	if v.State != review.Approved || len(v.Approvals) != 1 || v.Approvals[0].By != "admin-1" || v.Approvals[0].Comment != "one row, fine" {
		t.Errorf("after approval the requester sees %+v", v.Review)
	}
}

func TestReviewDecisions(t *testing.T) {
	h := newHarness(t)
	dba := func(rv *review.Review) { rv.Approvers = approversDBA }
	two := func(rv *review.Review) { rv.MinApprovals = 2 }
	state := func(s review.State) func(*review.Review) { return func(rv *review.Review) { rv.State = s } }
	h.held("approve-me", "agent-1")
	h.held("dba-rule", "agent-1", dba)
	h.held("admins-rule", "agent-1")
	h.held("mine", "agent-1", dba)
	h.held("admin-requested", "admin-1")
	h.held("done", "agent-1", state(review.Approved))
	h.held("expired", "agent-1", state(review.Expired))
	h.held("deny-me", "agent-1", dba)
	h.held("two", "agent-1", two)
	admin2Tok := h.token("admin-2", "sre")

	tests := []struct {
		name      string
		token     string
		verb, id  string
		body      string
		want      int
		wantCode  string
		wantState review.State // on success
	}{
		{"admin approves", h.adminTok, "approve", "approve-me", `{"comment":"checked: one row"}`, http.StatusOK, "", review.Approved},
		{"rule's approver approves", h.dbaTok, "approve", "dba-rule", ``, http.StatusOK, "", review.Approved},
		{"approver of another rule", h.dbaTok, "approve", "admins-rule", `{"comment":"x"}`, http.StatusForbidden, admin.CodeForbidden, ""},
		{"neither admin nor approver", h.token("agent-9", "analysts"), "approve", "dba-rule", ``, http.StatusForbidden, admin.CodeForbidden, ""},
		{"requester approves its own", h.userTok, "approve", "mine", `{"comment":"trust me"}`, http.StatusForbidden, admin.CodeSelfApproval, ""},
		{"requester denies its own", h.userTok, "deny", "mine", ``, http.StatusForbidden, admin.CodeSelfApproval, ""},
		{"an admin's own request", h.adminTok, "approve", "admin-requested", ``, http.StatusForbidden, admin.CodeSelfApproval, ""},
		{"already approved", admin2Tok, "approve", "done", ``, http.StatusConflict, admin.CodeConflict, ""},
		{"deny an approved one", admin2Tok, "deny", "done", ``, http.StatusConflict, admin.CodeConflict, ""},
		{"expired", h.adminTok, "approve", "expired", ``, http.StatusConflict, admin.CodeConflict, ""},
		{"unknown", h.adminTok, "approve", "no-such", ``, http.StatusNotFound, admin.CodeNotFound, ""},
		{"unknown, non-admin", h.dbaTok, "deny", "no-such", ``, http.StatusNotFound, admin.CodeNotFound, ""},
		{"approver denies", h.dbaTok, "deny", "deny-me", `{"comment":"use a WHERE clause"}`, http.StatusOK, "", review.Denied},
		{"first of two", h.adminTok, "approve", "two", ``, http.StatusOK, "", review.Pending},
		{"same approver twice", h.adminTok, "approve", "two", ``, http.StatusConflict, admin.CodeDuplicate, ""},
		{"second of two", admin2Tok, "approve", "two", `{"comment":"agreed"}`, http.StatusOK, "", review.Approved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller := h.principal(tt.token)
			path := admin.ApprovePath(tt.id)
			if tt.verb == "deny" {
				path = admin.DenyPath(tt.id)
			}
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			var comment string
			if body != nil {
				var dr admin.DecisionRequest
				if err := json.Unmarshal(body, &dr); err != nil {
					t.Fatal(err)
				}
				comment = dr.Comment
			}
			before, calls := len(h.adminEvents()), len(h.reviews.Calls())

			r := h.do("POST", path, tt.token, body)
			if r.status != tt.want {
				t.Fatalf("POST %s as %s: %s, want %d", path, caller.Subject, r, tt.want)
			}
			if tt.want == http.StatusOK {
				v := reviewOf(t, r)
				if v.ID != tt.id || v.State != tt.wantState {
					t.Errorf("answer: review %q state %q, want %q %q", v.ID, v.State, tt.id, tt.wantState)
				}
				if tt.verb == "approve" {
					last := v.Approvals[len(v.Approvals)-1]
					if last.By != caller.Subject || last.Issuer != caller.Issuer || last.Comment != comment {
						t.Errorf("last approval %+v, want by %s with %q", last, caller.Subject, comment)
					}
				} else if v.DeniedBy != caller.Subject || v.DenyComment != comment {
					t.Errorf("denied by %q (%q), want %s (%q)", v.DeniedBy, v.DenyComment, caller.Subject, comment)
				}
			} else if eb := r.errorBody(t); eb.Code != tt.wantCode {
				t.Errorf("code %q, want %q (%s)", eb.Code, tt.wantCode, r)
			}

			// Reviews decided, with the verified caller and the comment.
			got := h.reviews.Calls()
			if want := (admintest.Call{Verb: tt.verb, ID: tt.id, By: caller.Subject, Comment: comment}); len(got) != calls+1 || got[calls] != want {
				t.Errorf("Reviews calls %+v, want one more: %+v", got[calls:], want)
			}

			// The attempt was recorded, and a refusal after it.
			evs := h.adminEvents()[before:]
			wantN := 1
			if tt.want != http.StatusOK {
				wantN = 2
			}
			if len(evs) != wantN {
				t.Fatalf("%d admin events, want %d: %+v", len(evs), wantN, evs)
			}
			attempt := evs[0]
			wantAttempt := audit.Event{
				ID: attempt.ID, Time: h.now, Kind: audit.KindAdmin, Client: attempt.Client,
				Subject: caller.Subject, Issuer: caller.Issuer, Groups: caller.Groups, TokenID: caller.TokenID,
				Request: "POST " + path, Decision: audit.Allow, Reason: attempt.Reason,
			}
			if tt.id != "no-such" {
				wantAttempt.Target, wantAttempt.SessionID = "prod-db", "sess-"+tt.id
			}
			if !equalEvents(attempt, wantAttempt) {
				t.Errorf("attempt recorded\n%+v\nwant\n%+v", attempt, wantAttempt)
			}
			if !strings.Contains(attempt.Reason, tt.verb+" review "+strconv.Quote(tt.id)) {
				t.Errorf("attempt reason %q does not name the review", attempt.Reason)
			}
			if comment != "" && !strings.Contains(attempt.Reason, strconv.Quote(comment)) {
				t.Errorf("attempt reason %q lacks the comment %q", attempt.Reason, comment)
			}
			if tt.id != "no-such" && !strings.Contains(attempt.Reason, `requested by "`) {
				t.Errorf("attempt reason %q does not name the requester", attempt.Reason)
			}
			if wantN == 2 {
				refusal := evs[1]
				if refusal.Decision != audit.Deny || refusal.Request != "POST "+path || refusal.Subject != caller.Subject ||
					!strings.Contains(refusal.Reason, "refused: ") || refusal.Error != "" ||
					refusal.Target != attempt.Target || refusal.SessionID != attempt.SessionID {
					t.Errorf("refusal recorded %+v", refusal)
				}
			}
		})
	}

	t.Run("the review's trail shows who decided", func(t *testing.T) {
		page := h.auditPage("session=sess-two&kind=admin")
		var who []string
		for _, ev := range page.Events {
			who = append(who, ev.Subject+" "+ev.Decision)
		}
		if want := []string{"admin-1 allow", "admin-1 allow", "admin-1 deny", "admin-2 allow"}; !slices.Equal(who, want) {
			t.Errorf("trail of review two: %v, want %v", who, want)
		}
		page = h.auditPage("q=" + url.QueryEscape("/api/v1/reviews/two/approve"))
		if len(page.Events) != 4 {
			t.Errorf("searching the request finds %d events, want 4", len(page.Events))
		}
	})
}

func TestReviewDecisionBadRequests(t *testing.T) {
	h := newHarness(t)
	h.held("r1", "agent-2")
	for _, tt := range []struct {
		name, body string
		want       int
		param      string
	}{
		{"reason instead of comment", `{"reason":"x"}`, http.StatusBadRequest, "body"},
		{"not an object", `"ok"`, http.StatusBadRequest, "body"},
		{"comment not a string", `{"comment": 1}`, http.StatusBadRequest, "body"},
		{"two objects", `{"comment":"a"} {}`, http.StatusBadRequest, "body"},
		{"long comment", `{"comment":"` + strings.Repeat("c", admin.MaxCommentBytes+1) + `"}`, http.StatusBadRequest, "comment"},
		{"huge body", `{"comment":"` + strings.Repeat("c", admin.MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", admin.ApprovePath("r1"), h.adminTok, []byte(tt.body))
			if r.status != tt.want {
				t.Fatalf("%s, want %d", r, tt.want)
			}
			if eb := r.errorBody(t); eb.Param != tt.param {
				t.Errorf("param %q, want %q", eb.Param, tt.param)
			}
		})
	}
	r := h.do("POST", admin.ApprovePath(strings.Repeat("i", 5000)), h.adminTok, nil)
	if r.status != http.StatusBadRequest || r.errorBody(t).Param != "id" {
		t.Errorf("long id: %s, want 400 naming id", r)
	}
	if calls := h.reviews.Calls(); len(calls) != 0 {
		t.Errorf("a bad request reached Reviews: %+v", calls)
	}
	if evs := h.adminEvents(); len(evs) != 0 {
		t.Errorf("a bad request was recorded: %+v", evs)
	}
}

func TestReviewDecisionBackendFails(t *testing.T) {
	h := newHarness(t)
	h.held("r1", "agent-2")
	errStore := errors.New("reviews store: disk I/O error")
	h.reviews.SetErr(errStore)
	r := h.do("POST", admin.DenyPath("r1"), h.adminTok, []byte(`{"comment":"no"}`))
	if r.status != http.StatusInternalServerError || r.errorBody(t).Code != admin.CodeInternal {
		t.Fatalf("got %s, want 500", r)
	}
	if strings.Contains(string(r.body), "disk") {
		t.Errorf("internal error text in the answer: %s", r.body)
	}
	evs := h.adminEvents()
	if len(evs) != 2 {
		t.Fatalf("%d events, want the attempt and its failure: %+v", len(evs), evs)
	}
	if attempt, failure := evs[0], evs[1]; attempt.Decision != audit.Allow || failure.Decision != audit.Error ||
		failure.Error != errStore.Error() || failure.Request != "POST "+admin.DenyPath("r1") {
		t.Errorf("records %+v then %+v, want the attempt then its failure", attempt, failure)
	}
}
