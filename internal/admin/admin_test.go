package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/review"
)

func TestNewRequiresConfig(t *testing.T) {
	h := newHarness(t)
	full := admin.Config{
		Verifier: h.auth,
		IsAdmin:  func(*identity.Principal) bool { return false },
		Record:   h.store,
	}
	if _, err := admin.New(full); err != nil {
		t.Fatalf("New with the required fields: %v", err)
	}
	for name, mutate := range map[string]func(*admin.Config){
		"Verifier": func(c *admin.Config) { c.Verifier = nil },
		"IsAdmin":  func(c *admin.Config) { c.IsAdmin = nil },
		"Record":   func(c *admin.Config) { c.Record = nil },
	} {
		c := full
		mutate(&c)
		if _, err := admin.New(c); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("New without %s: err = %v, want one naming it", name, err)
		}
	}
}

func TestUnauthenticated(t *testing.T) {
	h := newHarness(t)
	h.sessions.add(admin.Session{ID: "s1", Subject: "agent-1"})

	now := time.Now()
	expired, err := h.iss.Dev.Sign(map[string]any{
		"iss": h.iss.URL, "aud": "warden", "sub": "admin-1", "groups": []string{"sre"},
		"iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(),
		"exp": now.Add(-time.Hour).Unix(), "jti": "expired-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, err := h.iss.Dev.Mint(h.iss.URL, "someone-else", "admin-1", map[string]any{"groups": []string{"sre"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	revokedTok := h.token("fired-admin", "sre")
	h.revs.Revoke("fired-admin")

	tests := []struct {
		name       string
		header     []string // Authorization header values
		token      string   // must not appear in the answer
		wantReason string
	}{
		{name: "no token"},
		{name: "empty bearer", header: []string{"Bearer "}},
		{name: "basic auth", header: []string{"Basic YWRtaW46cGFzcw=="}},
		{name: "garbage", header: []string{"Bearer not-a-jwt"}, token: "not-a-jwt", wantReason: identity.ReasonMalformed},
		{name: "expired", header: []string{"Bearer " + expired}, token: expired, wantReason: identity.ReasonExpired},
		{name: "wrong audience", header: []string{"Bearer " + wrongAud}, token: wrongAud, wantReason: identity.ReasonBadAudience},
		{name: "revoked admin", header: []string{"Bearer " + revokedTok}, token: revokedTok, wantReason: identity.ReasonRevoked},
		{name: "two headers", header: []string{"Bearer " + h.adminTok, "Bearer " + h.adminTok}, token: h.adminTok},
		{name: "lower-case scheme, bad token", header: []string{"bearer " + expired}, token: expired, wantReason: identity.ReasonExpired},
	}
	endpoints := []struct{ method, path string }{
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/sessions"},
		{"DELETE", "/api/v1/sessions/s1"},
		{"POST", admin.RevokePath("agent-1")},
		{"GET", "/api/v1/no-such-endpoint"},
		{"GET", admin.ReviewsPath},
		{"GET", admin.ReviewPath("r1")},
		{"POST", admin.ApprovePath("r1")},
		{"POST", admin.DenyPath("r1")},
	}
	h.reviews.Add(&review.Review{ID: "r1", Subject: "agent-1", Issuer: h.iss.URL})
	for _, tt := range tests {
		for _, ep := range endpoints {
			t.Run(tt.name+"/"+ep.method+" "+ep.path, func(t *testing.T) {
				req, err := http.NewRequest(ep.method, h.srv.URL+ep.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range tt.header {
					req.Header.Add("Authorization", v)
				}
				r := h.send(req)
				if r.status != http.StatusUnauthorized {
					t.Fatalf("status = %s, want 401", r)
				}
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
				}
				eb := r.errorBody(t)
				if eb.Code != admin.CodeUnauthenticated {
					t.Errorf("code = %q, want %q", eb.Code, admin.CodeUnauthenticated)
				}
				if eb.Reason != tt.wantReason {
					t.Errorf("reason = %q, want %q (%s)", eb.Reason, tt.wantReason, r)
				}
				if tt.wantReason != "" && !strings.Contains(eb.Error, tt.wantReason) {
					t.Errorf("error %q does not name the reason %q", eb.Error, tt.wantReason)
				}
				if tt.token != "" && strings.Contains(string(r.body), tt.token) {
					t.Errorf("the answer contains the token: %s", r.body)
				}
			})
		}
	}
	if calls := h.sessions.calls(); len(calls) != 0 {
		t.Errorf("unauthenticated requests terminated sessions: %v", calls)
	}
	if calls := h.revoker.got(); len(calls) != 0 {
		t.Errorf("unauthenticated requests revoked: %v", calls)
	}
	if calls := h.reviews.Calls(); len(calls) != 0 {
		t.Errorf("unauthenticated requests decided reviews: %v", calls)
	}
	// Unauthenticated callers cannot write to the audit log.
	if evs := h.adminEvents(); len(evs) != 0 {
		t.Errorf("unauthenticated requests were recorded: %+v", evs)
	}
}

func TestForbiddenIsAudited(t *testing.T) {
	h := newHarness(t)
	h.sessions.add(admin.Session{ID: "s1", Subject: "agent-2", Target: "prod-db"})
	user := h.principal(h.userTok)

	tests := []struct {
		method, path string
		body         []byte
		wantRequest  string
	}{
		{"GET", "/api/v1/audit?subject=agent-2&access_token=secret", nil, "GET /api/v1/audit"},
		{"GET", "/api/v1/sessions", nil, "GET /api/v1/sessions"},
		{"DELETE", "/api/v1/sessions/s1", nil, "DELETE /api/v1/sessions/s1"},
		{"POST", "/api/v1/identities/agent-2/revoke", []byte(`{"reason":"x"}`), "POST /api/v1/identities/agent-2/revoke"},
		{"GET", "/api/v1/nothing-here", nil, "GET /api/v1/nothing-here"},
		{"GET", "/api/v1/reviews?state=any", nil, "GET /api/v1/reviews"},
		{"GET", "/api/v1/reviews/r-of-agent-2", nil, "GET /api/v1/reviews/r-of-agent-2"},
		{"GET", "/api/v1/reviews/no-such-review", nil, "GET /api/v1/reviews/no-such-review"},
		{"GET", "/api/v1/reviews/", nil, "GET /api/v1/reviews/"},
	}
	h.reviews.Add(&review.Review{ID: "r-of-agent-2", Subject: "agent-2", Issuer: h.iss.URL})
	for i, tt := range tests {
		t.Run(tt.wantRequest, func(t *testing.T) {
			r := h.do(tt.method, tt.path, h.userTok, tt.body)
			if r.status != http.StatusForbidden {
				t.Fatalf("status = %s, want 403", r)
			}
			if eb := r.errorBody(t); eb.Code != admin.CodeForbidden {
				t.Errorf("code = %q, want %q", eb.Code, admin.CodeForbidden)
			}
			evs := h.adminEvents()
			if len(evs) != i+1 {
				t.Fatalf("%d admin events after %d refusals, want one each: %+v", len(evs), i+1, evs)
			}
			ev := evs[len(evs)-1]
			want := audit.Event{
				ID: ev.ID, Time: h.now, Kind: audit.KindAdmin, Client: ev.Client,
				Subject: "agent-1", Issuer: h.iss.URL, Groups: []string{"analysts"}, TokenID: user.TokenID,
				Request: tt.wantRequest, Decision: audit.Deny, Reason: ev.Reason,
			}
			if !equalEvents(ev, want) {
				t.Errorf("recorded\n%+v\nwant\n%+v", ev, want)
			}
			if !strings.HasPrefix(ev.Client, "127.0.0.1:") {
				t.Errorf("Client = %q, want the loopback peer address", ev.Client)
			}
			if ev.TokenID == "" || ev.Reason == "" {
				t.Errorf("TokenID %q and Reason %q must be set", ev.TokenID, ev.Reason)
			}
		})
	}
	if !h.sessions.has("s1") || len(h.sessions.calls()) != 0 {
		t.Errorf("a non-admin terminated a session: %v", h.sessions.calls())
	}
	if calls := h.revoker.got(); len(calls) != 0 {
		t.Errorf("a non-admin revoked: %v", calls)
	}
}

// equalEvents compares the fields the admin API sets.
func equalEvents(a, b audit.Event) bool {
	return a.ID == b.ID && a.Time.Equal(b.Time) && a.Kind == b.Kind && a.SessionID == b.SessionID &&
		a.Protocol == b.Protocol && a.Target == b.Target && a.Client == b.Client &&
		a.Subject == b.Subject && a.Issuer == b.Issuer && slices.Equal(a.Groups, b.Groups) &&
		a.TokenID == b.TokenID && a.Request == b.Request && a.Decision == b.Decision &&
		a.Reason == b.Reason && a.Error == b.Error
}

// seed stores a small, varied audit log, oldest first, the newest an
// hour before h.now at most.
func seed(h *harness) []audit.Event {
	at := func(minAgo int) time.Time { return h.now.Add(-time.Duration(minAgo) * time.Minute) }
	return h.record(
		audit.Event{Time: at(120), Kind: audit.KindLoginFailed, Client: "10.0.0.9:5000", Decision: audit.Error, Reason: "expired"},
		audit.Event{Time: at(110), Kind: audit.KindSessionStart, SessionID: "s1", Protocol: "postgres", Target: "prod-db", Subject: "agent-1", Groups: []string{"analysts"}, Decision: audit.Allow},
		audit.Event{Time: at(100), Kind: audit.KindStatement, SessionID: "s1", Protocol: "postgres", Target: "prod-db", Subject: "agent-1", Request: "SELECT * FROM orders", StmtKind: "select", Decision: audit.Allow},
		audit.Event{Time: at(90), Kind: audit.KindStatement, SessionID: "s1", Protocol: "postgres", Target: "prod-db", Subject: "agent-1", Request: "DELETE FROM orders", StmtKind: "delete", Decision: audit.Deny, Policy: "analyst-agents", Reason: "no rule allows delete"},
		audit.Event{Time: at(80), Kind: audit.KindSessionStart, SessionID: "s2", Protocol: "postgres", Target: "billing-db", Subject: "agent-2", Decision: audit.Allow},
		audit.Event{Time: at(70), Kind: audit.KindStatement, SessionID: "s2", Protocol: "postgres", Target: "billing-db", Subject: "agent-2", Request: "select * from invoices", StmtKind: "select", Decision: audit.Allow},
		audit.Event{Time: at(50), Kind: audit.KindStatement, SessionID: "s2", Protocol: "postgres", Target: "billing-db", Subject: "agent-2", Request: "DROP TABLE invoices", StmtKind: "drop", Decision: audit.Deny},
		audit.Event{Time: at(40), Kind: audit.KindSessionEnd, SessionID: "s1", Protocol: "postgres", Target: "prod-db", Subject: "agent-1", Decision: audit.Allow},
		audit.Event{Time: at(30), Kind: audit.KindStatement, SessionID: "s3", Protocol: "postgres", Target: "prod-db", Subject: "ci/reviewer@example.com", Request: "SELECT 'DELETE FROM orders'", StmtKind: "select", Decision: audit.Allow},
		audit.Event{Time: at(20), Kind: audit.KindStatement, SessionID: "s3", Protocol: "postgres", Target: "prod-db", Subject: "ci/reviewer@example.com", Request: "DELETE FROM orders WHERE id = 7", StmtKind: "delete", Decision: audit.Deny},
		audit.Event{Time: at(10), Kind: audit.KindSessionEnd, SessionID: "s2", Protocol: "postgres", Target: "billing-db", Subject: "agent-2", Decision: audit.Allow},
	)
}

func TestAuditFilters(t *testing.T) {
	h := newHarness(t)
	all := seed(h)
	rfc := func(minAgo int) string {
		return url.QueryEscape(h.now.Add(-time.Duration(minAgo) * time.Minute).Format(time.RFC3339))
	}
	sel := func(keep func(audit.Event) bool) []int64 {
		out := []int64{}
		for _, ev := range all {
			if keep(ev) {
				out = append(out, ev.ID)
			}
		}
		return out
	}
	minutesAgo := func(ev audit.Event) time.Duration { return h.now.Sub(ev.Time) }

	tests := []struct {
		query string
		want  []int64
	}{
		{"", ids(all)},
		{"subject=agent-1", sel(func(e audit.Event) bool { return e.Subject == "agent-1" })},
		{"subject=" + url.QueryEscape("ci/reviewer@example.com"), sel(func(e audit.Event) bool { return e.Subject == "ci/reviewer@example.com" })},
		{"target=billing-db", sel(func(e audit.Event) bool { return e.Target == "billing-db" })},
		{"decision=deny", sel(func(e audit.Event) bool { return e.Decision == audit.Deny })},
		{"decision=error", sel(func(e audit.Event) bool { return e.Decision == audit.Error })},
		{"kind=session.start", sel(func(e audit.Event) bool { return e.Kind == audit.KindSessionStart })},
		{"session=s2", sel(func(e audit.Event) bool { return e.SessionID == "s2" })},
		{"q=DELETE", sel(func(e audit.Event) bool { return strings.Contains(e.Request, "DELETE") })},
		{"q=" + url.QueryEscape("DELETE FROM orders WHERE"), sel(func(e audit.Event) bool { return strings.Contains(e.Request, "DELETE FROM orders WHERE") })},
		{"since=" + rfc(50), sel(func(e audit.Event) bool { return minutesAgo(e) <= 50*time.Minute })},
		{"until=" + rfc(50), sel(func(e audit.Event) bool { return minutesAgo(e) > 50*time.Minute })},
		{"since=" + rfc(100) + "&until=" + rfc(40), sel(func(e audit.Event) bool {
			return minutesAgo(e) <= 100*time.Minute && minutesAgo(e) > 40*time.Minute
		})},
		{"since=45m", sel(func(e audit.Event) bool { return minutesAgo(e) <= 45*time.Minute })},
		{"since=1h30m&until=1h", sel(func(e audit.Event) bool {
			return minutesAgo(e) <= 90*time.Minute && minutesAgo(e) > 60*time.Minute
		})},
		{"subject=agent-1&decision=deny", sel(func(e audit.Event) bool { return e.Subject == "agent-1" && e.Decision == audit.Deny })},
		{"session=s1&kind=statement", sel(func(e audit.Event) bool { return e.SessionID == "s1" && e.Kind == audit.KindStatement })},
		{"target=prod-db&q=orders&decision=allow", sel(func(e audit.Event) bool {
			return e.Target == "prod-db" && strings.Contains(e.Request, "orders") && e.Decision == audit.Allow
		})},
		{"limit=3", ids(all)[:3]},
		{"order=desc&limit=3", rev(ids(all))[:3]},
		{"order=asc", ids(all)},
		{"subject=nobody", []int64{}},
		{"limit=5000", ids(all)}, // lowered to the maximum, not refused
		{"subject=&target=&decision=&kind=&session=&q=&since=&until=&limit=&after=&order=", ids(all)},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			page := h.auditPage(tt.query)
			if got := ids(page.Events); !slices.Equal(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("events are complete", func(t *testing.T) {
		page := h.auditPage("session=s1&decision=deny")
		if len(page.Events) != 1 {
			t.Fatalf("got %d events, want 1", len(page.Events))
		}
		got, want := page.Events[0], all[3]
		if !equalEvents(got, want) || got.StmtKind != "delete" || got.Policy != "analyst-agents" {
			t.Errorf("event = %+v, want %+v", got, want)
		}
	})
	t.Run("empty result is an array", func(t *testing.T) {
		r := h.do("GET", "/api/v1/audit?subject=nobody", h.adminTok, nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"events":[]`) || !strings.Contains(string(r.body), `"next":""`) {
			t.Errorf("got %s, want an empty events array and next", r)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
	})
	t.Run("reads are not recorded", func(t *testing.T) {
		if evs := h.adminEvents(); len(evs) != 0 {
			t.Errorf("reads were recorded: %+v", evs)
		}
	})
}

// walk pages through the audit log with the cursor, from after, and
// returns every id seen and the number of pages.
func walk(t *testing.T, h *harness, query, after string) (seen []int64, pages int) {
	t.Helper()
	for pages = 1; pages < 1000; pages++ {
		q := query
		if after != "" {
			q += "&after=" + after
		}
		page := h.auditPage(q)
		seen = append(seen, ids(page.Events)...)
		if page.Next == "" {
			return seen, pages
		}
		if page.Next == after {
			t.Fatalf("cursor did not move: %q", after)
		}
		after = page.Next
	}
	t.Fatalf("more than 1000 pages for %q", query)
	return nil, 0
}

func TestAuditPagination(t *testing.T) {
	h := newHarness(t)
	const n = 23
	all := h.recordMany(n, func(i int) audit.Event {
		ev := audit.Event{Kind: audit.KindStatement, Subject: "agent-" + strconv.Itoa(i%3), Decision: audit.Allow, Request: "SELECT " + strconv.Itoa(i)}
		if i%4 == 0 {
			ev.Decision = audit.Deny
		}
		return ev
	})
	sel := func(keep func(audit.Event) bool) []int64 {
		out := []int64{}
		for _, ev := range all {
			if keep(ev) {
				out = append(out, ev.ID)
			}
		}
		return out
	}
	tests := []struct {
		query     string
		want      []int64
		wantPages int
	}{
		{"limit=5", ids(all), 5},
		{"limit=5&order=desc", rev(ids(all)), 5},
		{"limit=1", ids(all), n},
		{"limit=1&order=desc", rev(ids(all)), n},
		// A full last page has no cursor: the API looks ahead.
		{"limit=23", ids(all), 1},
		{"limit=23&order=desc", rev(ids(all)), 1},
		{"limit=100", ids(all), 1},
		{"limit=2&subject=agent-1", sel(func(e audit.Event) bool { return e.Subject == "agent-1" }), 4},
		{"limit=2&subject=agent-1&order=desc", rev(sel(func(e audit.Event) bool { return e.Subject == "agent-1" })), 4},
		{"limit=4&decision=deny&order=desc", rev(sel(func(e audit.Event) bool { return e.Decision == audit.Deny })), 2},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			seen, pages := walk(t, h, tt.query, "")
			if !slices.Equal(seen, tt.want) {
				t.Errorf("walked %v\nwant   %v", seen, tt.want)
			}
			if pages != tt.wantPages {
				t.Errorf("%d pages, want %d", pages, tt.wantPages)
			}
		})
	}

	t.Run("cursor is an event id", func(t *testing.T) {
		// A client tailing the log resumes after the last id it saw.
		page := h.auditPage("after=" + strconv.FormatInt(all[19].ID, 10))
		if got, want := ids(page.Events), ids(all[20:]); !slices.Equal(got, want) {
			t.Errorf("after an id: %v, want %v", got, want)
		}
		page = h.auditPage("order=desc&limit=2&after=" + strconv.FormatInt(all[3].ID, 10))
		if got, want := ids(page.Events), []int64{all[2].ID, all[1].ID}; !slices.Equal(got, want) || page.Next != strconv.FormatInt(all[1].ID, 10) {
			t.Errorf("desc after an id: %v next %q, want %v next %d", got, page.Next, want, all[1].ID)
		}
	})

	t.Run("events appended while paging", func(t *testing.T) {
		first := h.auditPage("limit=20")
		added := h.record(audit.Event{Kind: audit.KindStatement, Subject: "late", Decision: audit.Allow})
		rest, _ := walk(t, h, "limit=20", first.Next)
		got := append(ids(first.Events), rest...)
		if want := append(ids(all), added[0].ID); !slices.Equal(got, want) {
			t.Errorf("walked %v, want %v", got, want)
		}
	})
}

func TestAuditSessionFilterPaging(t *testing.T) {
	h := newHarness(t)
	// One session's records among many others', sparse and in a dense
	// run, paged through in both directions.
	const n = 130
	marked := map[int]bool{0: true, 9: true, 10: true, 11: true, 29: true, 129: true}
	for i := 60; i < 70; i++ {
		marked[i] = true
	}
	all := h.recordMany(n, func(i int) audit.Event {
		ev := audit.Event{Kind: audit.KindStatement, SessionID: "busy", Decision: audit.Allow}
		if marked[i] {
			ev.SessionID = "rare"
		}
		return ev
	})
	if len(all) != n {
		t.Fatalf("stored %d events, want %d", len(all), n)
	}
	var want []int64
	for _, ev := range all {
		if ev.SessionID == "rare" {
			want = append(want, ev.ID)
		}
	}
	for _, tt := range []struct {
		query     string
		want      []int64
		wantPages int
	}{
		{"session=rare&limit=3", want, 6},
		{"session=rare&limit=1000", want, 1},
		{"session=rare&limit=2&subject=&kind=statement", want, 8},
		{"session=rare&limit=4&order=desc", rev(want), 4},
		{"session=nothing", nil, 1},
	} {
		t.Run(tt.query, func(t *testing.T) {
			seen, pages := walk(t, h, tt.query, "")
			if !slices.Equal(seen, tt.want) {
				t.Errorf("walked %v\nwant   %v", seen, tt.want)
			}
			if pages != tt.wantPages {
				t.Errorf("%d pages, want %d", pages, tt.wantPages)
			}
		})
	}
}

func TestAuditBadParameters(t *testing.T) {
	h := newHarness(t)
	tests := []struct{ query, param string }{
		{"since=yesterday", "since"},
		{"since=-1h", "since"},
		{"until=2024-13-45T00:00:00Z", "until"},
		{"since=1h&until=2h", "until"},
		{"limit=0", "limit"},
		{"limit=-5", "limit"},
		{"limit=ten", "limit"},
		{"after=abc", "after"},
		{"after=-1", "after"},
		{"order=sideways", "order"},
		{"decision=maybe", "decision"},
		{"subjet=agent-1", "subjet"},
		{"access_token=x", "access_token"},
		{"subject=a&subject=b", "subject"},
		{"q=" + strings.Repeat("x", 5000), "q"},
	}
	for _, tt := range tests {
		name := tt.query
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			r := h.do("GET", "/api/v1/audit?"+tt.query, h.adminTok, nil)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %s, want 400", r)
			}
			eb := r.errorBody(t)
			if eb.Code != admin.CodeBadRequest || eb.Param != tt.param || !strings.Contains(eb.Error, tt.param) {
				t.Errorf("got %+v, want code %q naming %q", eb, admin.CodeBadRequest, tt.param)
			}
		})
	}
}

func TestSessionsList(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/api/v1/sessions", h.adminTok, nil)
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"sessions":[]}` {
		t.Errorf("no sessions: got %s, want an empty array", r)
	}

	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	sessions := []admin.Session{
		{ID: "s2", Protocol: "postgres", Target: "billing-db", Subject: "agent-2", Issuer: h.iss.URL, Client: "10.0.0.2:4000", Started: t0.Add(time.Minute), Expires: t0.Add(time.Hour)},
		{ID: "s1", Protocol: "postgres", Target: "prod-db", Subject: "agent-1", Issuer: h.iss.URL, Groups: []string{"analysts"}, TokenID: "jti-1", Client: "10.0.0.1:4000", Started: t0, Expires: t0.Add(time.Hour)},
	}
	for _, s := range sessions {
		h.sessions.add(s)
	}
	r = h.do("GET", "/api/v1/sessions", h.adminTok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/sessions: %s", r)
	}
	var list admin.SessionList
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	wantIDs := []string{"s1", "s2"} // oldest first
	var gotIDs []string
	for _, s := range list.Sessions {
		gotIDs = append(gotIDs, s.ID)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("sessions %v, want %v", gotIDs, wantIDs)
	}
	got := list.Sessions[0]
	if want := sessions[1]; got.Subject != want.Subject || got.Target != want.Target || got.TokenID != want.TokenID ||
		!got.Started.Equal(want.Started) || !got.Expires.Equal(want.Expires) || !slices.Equal(got.Groups, want.Groups) ||
		got.Client != want.Client || got.Issuer != want.Issuer || got.Protocol != want.Protocol {
		t.Errorf("session = %+v, want %+v", got, want)
	}

	// The wire names are a contract with the CLI.
	var raw struct{ Sessions []map[string]any }
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw.Sessions[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"client", "groups", "id", "issuer", "protocol", "started", "subject", "target", "token_expires", "token_id"}; !slices.Equal(keys, want) {
		t.Errorf("session JSON keys %v, want %v", keys, want)
	}
	if g, ok := raw.Sessions[1]["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("groups of a session without groups = %#v, want []", raw.Sessions[1]["groups"])
	}
}

func TestTerminate(t *testing.T) {
	h := newHarness(t)
	adminP := h.principal(h.adminTok)
	h.sessions.add(admin.Session{ID: "s1", Protocol: "postgres", Target: "prod-db", Subject: "agent-1"})
	h.sessions.add(admin.Session{ID: "s2", Protocol: "postgres", Target: "prod-db", Subject: "agent-2"})
	h.sessions.add(admin.Session{ID: "pg/7 x", Protocol: "postgres", Target: "billing-db", Subject: "agent-3"})

	tests := []struct {
		name       string
		id         string
		body       []byte
		wantReason string
	}{
		{"with reason", "s1", []byte(`{"reason": "runaway query"}`), "runaway query"},
		{"without body", "s2", nil, "terminated by an administrator"},
		{"escaped id", "pg/7 x", []byte(`{}`), "terminated by an administrator"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("DELETE", admin.SessionPath(tt.id), h.adminTok, tt.body)
			if r.status != http.StatusOK {
				t.Fatalf("DELETE: %s", r)
			}
			var res admin.TerminateResult
			if err := json.Unmarshal(r.body, &res); err != nil || res != (admin.TerminateResult{Terminated: true, ID: tt.id}) {
				t.Errorf("body %s, want terminated %q (%v)", r.body, tt.id, err)
			}
			if calls := h.sessions.calls(); len(calls) != i+1 || calls[i] != (terminateCall{tt.id, tt.wantReason}) {
				t.Errorf("Terminate calls %v, want the last to be (%q, %q)", calls, tt.id, tt.wantReason)
			}
			if h.sessions.has(tt.id) {
				t.Errorf("session %q still live", tt.id)
			}
			evs := h.adminEvents()
			if len(evs) != i+1 {
				t.Fatalf("%d admin events, want %d", len(evs), i+1)
			}
			ev := evs[i]
			if ev.Decision != audit.Allow || ev.Subject != "admin-1" || ev.TokenID != adminP.TokenID ||
				!slices.Equal(ev.Groups, []string{"sre"}) || ev.Issuer != h.iss.URL ||
				ev.Request != "DELETE "+admin.SessionPath(tt.id) || ev.SessionID != tt.id ||
				!strings.Contains(ev.Reason, tt.wantReason) || !strings.HasPrefix(ev.Client, "127.0.0.1:") {
				t.Errorf("recorded %+v", ev)
			}
			// The session's trail shows who ended it.
			if page := h.auditPage("session=" + url.QueryEscape(tt.id)); len(page.Events) != 1 || page.Events[0].ID != ev.ID {
				t.Errorf("session=%s: %+v", tt.id, page.Events)
			}
		})
	}
	if ev := h.adminEvents()[0]; ev.Target != "prod-db" || !strings.Contains(ev.Reason, `"agent-1"`) {
		t.Errorf("the record of a kill names neither the target nor the subject: %+v", ev)
	}

	t.Run("unknown", func(t *testing.T) {
		r := h.do("DELETE", "/api/v1/sessions/no-such", h.adminTok, nil)
		if r.status != http.StatusNotFound {
			t.Fatalf("status %s, want 404", r)
		}
		if eb := r.errorBody(t); eb.Code != admin.CodeNotFound {
			t.Errorf("code %q", eb.Code)
		}
	})
	t.Run("bad body", func(t *testing.T) {
		h.sessions.add(admin.Session{ID: "s9", Subject: "agent-9"})
		before := len(h.adminEvents())
		for _, body := range []string{`{"reason": 7}`, `{"why": "x"}`, `{"reason":"a"}}`, `{"reason":"a"} {}`, `nope`, `{"reason":"` + strings.Repeat("r", admin.MaxReasonBytes+1) + `"}`} {
			r := h.do("DELETE", "/api/v1/sessions/s9", h.adminTok, []byte(body))
			if r.status != http.StatusBadRequest || r.errorBody(t).Code != admin.CodeBadRequest {
				t.Errorf("body %.40q: %s, want 400", body, r)
			}
		}
		r := h.do("DELETE", "/api/v1/sessions/s9", h.adminTok, []byte(`{"reason":"`+strings.Repeat("r", admin.MaxBodyBytes)+`"}`))
		if r.status != http.StatusRequestEntityTooLarge || r.errorBody(t).Code != admin.CodeTooLarge {
			t.Errorf("oversized body: %s, want 413", r)
		}
		if !h.sessions.has("s9") || len(h.adminEvents()) != before {
			t.Errorf("a refused request terminated or recorded")
		}
	})
}

func TestRevoke(t *testing.T) {
	h := newHarness(t)
	subjects := []struct {
		name, sub string
		path      string // as the client sends it; "" means admin.RevokePath(sub)
	}{
		{"slash and at", "ci/reviewer@example.com", ""},
		{"hand-escaped, lower-case hex", "ci/bot@example.com", "/api/v1/identities/ci%2fbot%40example.com/revoke"},
		{"colons", "system:serviceaccount:ci:reviewer", ""},
		{"percent, space, query and fragment characters", "100% a?b#c", ""},
		{"dot-dot", "..", ""},
		{"unicode", "agent-ü-漢", ""},
		{"plain", "agent-1", ""},
	}
	for i, tt := range subjects {
		t.Run(tt.name, func(t *testing.T) {
			tok := h.token(tt.sub, "analysts")
			if r := h.do("GET", "/api/v1/sessions", tok, nil); r.status != http.StatusForbidden {
				t.Fatalf("before revocation, the subject's token gets %s, want 403", r)
			}
			id := "sess-" + strconv.Itoa(i)
			h.sessions.add(admin.Session{ID: id + "a", Subject: tt.sub})
			h.sessions.add(admin.Session{ID: id + "b", Subject: tt.sub})
			h.sessions.add(admin.Session{ID: id + "-other", Subject: tt.sub + "-other"})

			p := tt.path
			if p == "" {
				p = admin.RevokePath(tt.sub)
			}
			r := h.do("POST", p, h.adminTok, []byte(`{"reason":"offboarded"}`))
			if r.status != http.StatusOK {
				t.Fatalf("POST %s: %s", p, r)
			}
			var res admin.RevokeResult
			if err := json.Unmarshal(r.body, &res); err != nil || res != (admin.RevokeResult{Subject: tt.sub, Revoked: true, SessionsTerminated: 2}) {
				t.Errorf("body %s (%v), want subject %q revoked with 2 sessions", r.body, err, tt.sub)
			}
			calls := h.revoker.got()
			if len(calls) != i+1 || calls[i] != (revokeCall{tt.sub, "admin-1", "offboarded"}) {
				t.Errorf("Revoke calls %v, want the last (%q, admin-1, offboarded)", calls, tt.sub)
			}
			if h.sessions.has(id+"a") || h.sessions.has(id+"b") || !h.sessions.has(id+"-other") {
				t.Errorf("the wrong sessions were closed")
			}
			evs := h.adminEvents()
			ev := evs[len(evs)-1]
			if ev.Decision != audit.Allow || ev.Subject != "admin-1" || ev.Request != "POST "+admin.RevokePath(tt.sub) ||
				!strings.Contains(ev.Reason, strconv.Quote(tt.sub)) || !strings.Contains(ev.Reason, "offboarded") {
				t.Errorf("recorded %+v", ev)
			}
			// Revocation takes effect through the same Verifier.
			r = h.do("GET", "/api/v1/sessions", tok, nil)
			if r.status != http.StatusUnauthorized || r.errorBody(t).Reason != identity.ReasonRevoked {
				t.Errorf("after revocation the subject's token gets %s, want 401 revoked", r)
			}
		})
	}

	t.Run("no body", func(t *testing.T) {
		r := h.do("POST", admin.RevokePath("agent-quiet"), h.adminTok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s", r)
		}
		calls := h.revoker.got()
		if last := calls[len(calls)-1]; last.Subject != "agent-quiet" || last.By != "admin-1" || last.Reason == "" {
			t.Errorf("Revoke call %+v, want a default reason", last)
		}
	})
	t.Run("unescaped slash", func(t *testing.T) {
		before := len(h.revoker.got())
		r := h.do("POST", "/api/v1/identities/ci/reviewer/revoke", h.adminTok, nil)
		if r.status != http.StatusNotFound || !strings.Contains(r.errorBody(t).Error, "%2F") {
			t.Errorf("got %s, want 404 explaining %%2F", r)
		}
		if len(h.revoker.got()) != before {
			t.Errorf("revoked anyway")
		}
	})
	t.Run("revoker fails", func(t *testing.T) {
		h.revoker.setErr(errBackend)
		defer h.revoker.setErr(nil)
		r := h.do("POST", admin.RevokePath("agent-x"), h.adminTok, nil)
		if r.status != http.StatusInternalServerError || r.errorBody(t).Code != admin.CodeInternal {
			t.Fatalf("got %s, want 500", r)
		}
		if strings.Contains(string(r.body), errBackend.Error()) {
			t.Errorf("internal error text in the answer: %s", r.body)
		}
		evs := h.adminEvents()
		attempt, failure := evs[len(evs)-2], evs[len(evs)-1]
		if attempt.Decision != audit.Allow || failure.Decision != audit.Error || failure.Error != errBackend.Error() ||
			failure.Request != "POST "+admin.RevokePath("agent-x") {
			t.Errorf("records %+v then %+v, want the attempt then its failure", attempt, failure)
		}
	})
}

func TestActionsFailClosed(t *testing.T) {
	h := newHarness(t)
	h.sessions.add(admin.Session{ID: "s1", Subject: "agent-1"})
	// A closed store refuses every record, like a full disk.
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	h.reviews.Add(&review.Review{ID: "r1", Subject: "agent-2", Issuer: h.iss.URL, Approvers: approversDBA})
	for _, req := range []struct{ method, path, token string }{
		{"DELETE", "/api/v1/sessions/s1", h.adminTok},
		{"POST", admin.RevokePath("agent-1"), h.adminTok},
		{"POST", admin.ApprovePath("r1"), h.adminTok},
		{"POST", admin.DenyPath("r1"), h.adminTok},
		{"POST", admin.ApprovePath("r1"), h.dbaTok},
		// Even an attempt Reviews would refuse is not made unrecorded.
		{"POST", admin.ApprovePath("r1"), h.userTok},
	} {
		r := h.do(req.method, req.path, req.token, nil)
		if r.status != http.StatusServiceUnavailable || r.errorBody(t).Code != admin.CodeUnavailable {
			t.Errorf("%s %s with no audit log: %s, want 503", req.method, req.path, r)
		}
	}
	if calls := h.reviews.Calls(); len(calls) != 0 {
		t.Errorf("reviews decided without an audit record: %v", calls)
	}
	if !h.sessions.has("s1") || len(h.sessions.calls()) != 0 {
		t.Errorf("a session was terminated without an audit record")
	}
	if calls := h.revoker.got(); len(calls) != 0 {
		t.Errorf("revoked without an audit record: %v", calls)
	}
	// A refused caller is still refused when its refusal cannot be
	// recorded.
	if r := h.do("GET", "/api/v1/sessions", h.userTok, nil); r.status != http.StatusForbidden {
		t.Errorf("non-admin with no audit log: %s, want 403", r)
	}
}

func TestRouting(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method, path string
		token        string
		want         int
		wantAllow    string
	}{
		{"GET", "/", "", http.StatusNotFound, ""},
		{"GET", "/healthz", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1/", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1/reviews/", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1/reviews/r1/approve/now", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1/reviews/r1/escalate", h.adminTok, http.StatusNotFound, ""},
		{"POST", "/api/v1/reviews", h.adminTok, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/api/v1/reviews/r1", h.adminTok, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/api/v1/reviews/r1", h.adminTok, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/api/v1/reviews/r1/approve", h.adminTok, http.StatusMethodNotAllowed, "POST"},
		{"PUT", "/api/v1/reviews/r1/deny", h.adminTok, http.StatusMethodNotAllowed, "POST"},
		// The methods of the open review endpoints are the same for
		// everyone: a wrong one is answered, not refused.
		{"GET", "/api/v1/reviews/r1/approve", h.userTok, http.StatusMethodNotAllowed, "POST"},
		{"HEAD", "/api/v1/reviews", h.adminTok, http.StatusOK, ""},
		{"GET", "/api/v1/audit/", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1/sessions/../audit", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1//sessions", h.adminTok, http.StatusNotFound, ""},
		{"GET", "/api/v1/identities/x", h.adminTok, http.StatusNotFound, ""},
		{"POST", "/api/v1/audit", h.adminTok, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/api/v1/sessions", h.adminTok, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/api/v1/sessions/s1", h.adminTok, http.StatusMethodNotAllowed, "DELETE"},
		{"POST", "/api/v1/sessions/s1", h.adminTok, http.StatusMethodNotAllowed, "DELETE"},
		{"GET", "/api/v1/identities/a%2Fb/revoke", h.adminTok, http.StatusMethodNotAllowed, "POST"},
		{"PUT", "/api/v1/identities/a/revoke", h.adminTok, http.StatusMethodNotAllowed, "POST"},
		{"OPTIONS", "/api/v1/audit", h.adminTok, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"HEAD", "/api/v1/sessions", h.adminTok, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.token, nil)
			if r.status != tt.want {
				t.Fatalf("status %s, want %d", r, tt.want)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if tt.method == "HEAD" {
				return
			}
			eb := r.errorBody(t)
			want := map[int]string{http.StatusNotFound: admin.CodeNotFound, http.StatusMethodNotAllowed: admin.CodeMethodNotAllowed}[tt.want]
			if eb.Code != want {
				t.Errorf("code %q, want %q", eb.Code, want)
			}
		})
	}
}

func TestPanicIsContained(t *testing.T) {
	h := newHarness(t)
	h.sessions.mu.Lock()
	h.sessions.panicOnList = true
	h.sessions.mu.Unlock()
	r := h.do("GET", "/api/v1/sessions", h.adminTok, nil)
	if r.status != http.StatusInternalServerError || r.errorBody(t).Code != admin.CodeInternal {
		t.Fatalf("panicking handler: %s, want 500 internal", r)
	}
	if strings.Contains(string(r.body), "exploded") {
		t.Errorf("the panic value reached the client: %s", r.body)
	}
	h.sessions.mu.Lock()
	h.sessions.panicOnList = false
	h.sessions.mu.Unlock()
	if r := h.do("GET", "/api/v1/sessions", h.adminTok, nil); r.status != http.StatusOK {
		t.Errorf("after a panic: %s", r)
	}
}

func TestOptionalParts(t *testing.T) {
	h := newHarness(t)
	api, err := admin.New(admin.Config{
		Verifier: h.auth,
		IsAdmin:  func(p *identity.Principal) bool { return slices.Contains(p.Groups, "sre") },
		Record:   h.store,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	h.srv = srv
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/sessions"},
		{"DELETE", "/api/v1/sessions/s1"},
		{"POST", admin.RevokePath("x")},
		{"GET", admin.ReviewsPath},
		{"GET", admin.ReviewPath("r1")},
		{"POST", admin.ApprovePath("r1")},
		{"POST", admin.DenyPath("r1")},
	} {
		r := h.do(req.method, req.path, h.adminTok, nil)
		if r.status != http.StatusNotImplemented || r.errorBody(t).Code != admin.CodeNotImplemented {
			t.Errorf("%s %s without the part: %s, want 501", req.method, req.path, r)
		}
	}
}

func TestEscapeSegment(t *testing.T) {
	for in, want := range map[string]string{
		"agent-1":                 "agent-1",
		"ci/reviewer@example.com": "ci%2Freviewer@example.com",
		".":                       "%2E",
		"..":                      "%2E%2E",
		"a b?c#d%":                "a%20b%3Fc%23d%25",
	} {
		if got := admin.EscapeSegment(in); got != want {
			t.Errorf("EscapeSegment(%q) = %q, want %q", in, got, want)
		}
		if got, err := url.PathUnescape(admin.EscapeSegment(in)); err != nil || got != in {
			t.Errorf("EscapeSegment(%q) does not round-trip: %q, %v", in, got, err)
		}
	}
}

func rev(s []int64) []int64 {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
