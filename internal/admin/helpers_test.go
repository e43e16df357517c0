package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/admin/admintest"
	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/review"
	"github.com/warden-gateway/warden/internal/store"
)

// TestMain fails the run if a test leaves goroutines running in this
// package's code behind (house rule: every goroutine has an owner).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitForLeaks(within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for i, g := range strings.Split(string(buf), "\n\n") {
			if i == 0 { // this goroutine
				continue
			}
			if strings.Contains(g, "warden/internal/admin") && !strings.Contains(g, "testing.(*M)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminsRule is the `admins` expression of the test config, compiled by
// the real policy package.
const adminsRule = `"sre" in claims.groups`

// liveSessions is a small session registry standing in for the protocol
// servers (which belong to other packages). It records what the API asked
// of it.
type liveSessions struct {
	mu          sync.Mutex
	live        map[string]admin.Session
	terminated  []terminateCall
	panicOnList bool
}

type terminateCall struct{ ID, Reason string }

func newLiveSessions() *liveSessions {
	return &liveSessions{live: map[string]admin.Session{}}
}

func (s *liveSessions) add(ss admin.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[ss.ID] = ss
}

func (s *liveSessions) List() []admin.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panicOnList {
		panic("liveSessions: List exploded")
	}
	out := make([]admin.Session, 0, len(s.live))
	for _, ss := range s.live {
		out = append(out, ss)
	}
	return out
}

func (s *liveSessions) Terminate(id, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminated = append(s.terminated, terminateCall{id, reason})
	_, ok := s.live[id]
	delete(s.live, id)
	return ok
}

func (s *liveSessions) TerminateSubject(sub, reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, ss := range s.live {
		if ss.Subject == sub {
			s.terminated = append(s.terminated, terminateCall{id, reason})
			delete(s.live, id)
			n++
		}
	}
	return n
}

func (s *liveSessions) calls() []terminateCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.terminated)
}

func (s *liveSessions) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live[id]
	return ok
}

// revoker is what the wiring does on revocation: add the subject to the
// revocation set the Verifier consults, then close its sessions.
type revoker struct {
	revs     *identity.Revocations
	sessions *liveSessions

	mu    sync.Mutex
	calls []revokeCall
	err   error // returned (after recording the call) when set
}

type revokeCall struct{ Subject, By, Reason string }

func (r *revoker) Revoke(ctx context.Context, subject, by, reason string) (int, error) {
	r.mu.Lock()
	r.calls = append(r.calls, revokeCall{subject, by, reason})
	err := r.err
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	r.revs.Revoke(subject)
	return r.sessions.TerminateSubject(subject, "access revoked: "+reason), nil
}

func (r *revoker) got() []revokeCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *revoker) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// harness is an admin API on a loopback httptest server, with a real
// OIDC issuer and authenticator, the real policy engine's admins rule and
// a real SQLite audit store.
type harness struct {
	t        *testing.T
	iss      *identitytest.Issuer
	auth     *identity.Authenticator
	revs     *identity.Revocations
	store    *store.SQLite
	sessions *liveSessions
	revoker  *revoker
	reviews  *admintest.Reviews
	api      *admin.API
	srv      *httptest.Server
	now      time.Time // the API's clock

	adminTok string // subject "admin-1", groups [sre]
	userTok  string // subject "agent-1", groups [analysts]
	dbaTok   string // subject "dba-1", groups [dba]: approves reviews whose rule names "dba", not an admin
}

// approversDBA is the Approvers name of review rules the dba group may
// decide; the harness's IsApprover resolves it as the wiring would
// resolve a rule's `approvers` expression.
const approversDBA = "dba"

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{
		t:        t,
		iss:      identitytest.NewIssuer(t),
		revs:     &identity.Revocations{},
		sessions: newLiveSessions(),
		now:      time.Now().UTC().Truncate(time.Second),
	}
	h.revoker = &revoker{revs: h.revs, sessions: h.sessions}

	var err error
	h.auth, err = identity.NewOIDC(ctx, []config.OIDCIssuer{h.iss.Config}, identity.Options{})
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	engine, err := policy.Compile(&config.Config{Admins: adminsRule})
	if err != nil {
		t.Fatalf("policy.Compile: %v", err)
	}
	h.store, err = store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "warden.db"), store.Options{})
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := h.store.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})

	// Reviews' approvers: the admins, or for a rule naming "dba" the dba
	// group too, as review.Manager's IsApprover hook would decide.
	h.reviews = &admintest.Reviews{
		IsApprover: func(rv *review.Review, p *identity.Principal) bool {
			return engine.IsAdmin(p) || (rv.Approvers == approversDBA && slices.Contains(p.Groups, "dba"))
		},
		ConsoleURL: "https://warden.example.com/console",
		Now:        func() time.Time { return h.now },
	}

	api, err := admin.New(admin.Config{
		Verifier: identity.WithRevocations(h.auth, h.revs),
		IsAdmin:  engine.IsAdmin,
		Audit:    h.store,
		Sessions: h.sessions,
		Revoker:  h.revoker,
		Reviews:  h.reviews,
		Record:   h.store,
		Now:      func() time.Time { return h.now },
	})
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	h.api = api
	h.srv = httptest.NewServer(api)
	t.Cleanup(h.srv.Close)

	h.adminTok = h.token("admin-1", "sre")
	h.userTok = h.token("agent-1", "analysts")
	h.dbaTok = h.token("dba-1", "dba")
	return h
}

// token mints a token for sub with the given groups, valid for an hour.
func (h *harness) token(sub string, groups ...string) string {
	h.t.Helper()
	return h.iss.Token(h.t, sub, map[string]any{"groups": groups}, time.Hour)
}

// principal verifies tok as the API would, for expected audit fields.
func (h *harness) principal(tok string) *identity.Principal {
	h.t.Helper()
	p, err := h.auth.Verify(context.Background(), tok)
	if err != nil {
		h.t.Fatalf("Verify: %v", err)
	}
	return p
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// errorBody decodes an error response, failing the test if it is not one.
func (r response) errorBody(t *testing.T) admin.ErrorBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json (%s)", ct, r)
	}
	var eb admin.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Code == "" || eb.Error == "" {
		t.Fatalf("not an error body: %s (%v)", r, err)
	}
	return eb
}

// do sends a request to the API. path is sent as written (escapes
// included); token "" sends no Authorization header.
func (h *harness) do(method, path, token string, body []byte) response {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatalf("NewRequest %s %s: %v", method, path, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) response {
	h.t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// auditPage GETs one page of the audit log.
func (h *harness) auditPage(query string) admin.AuditPage {
	h.t.Helper()
	r := h.do("GET", "/api/v1/audit?"+query, h.adminTok, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET /api/v1/audit?%s: %s", query, r)
	}
	var page admin.AuditPage
	if err := json.Unmarshal(r.body, &page); err != nil {
		h.t.Fatalf("GET /api/v1/audit?%s: %v: %s", query, err, r.body)
	}
	return page
}

// adminEvents reads the admin events straight from the store.
func (h *harness) adminEvents() []audit.Event {
	h.t.Helper()
	evs, err := h.store.Query(context.Background(), store.Query{Kind: audit.KindAdmin, Limit: store.MaxQueryLimit})
	if err != nil {
		h.t.Fatalf("store.Query: %v", err)
	}
	return evs
}

// record stores events in order (ids ascending) and returns them with
// their ids.
func (h *harness) record(evs ...audit.Event) []audit.Event {
	h.t.Helper()
	out := make([]audit.Event, len(evs))
	for i, ev := range evs {
		if err := h.store.Record(context.Background(), &ev); err != nil {
			h.t.Fatalf("store.Record: %v", err)
		}
		out[i] = ev
	}
	return out
}

// recordMany stores n events built by mk, submitted without waiting for
// each commit, and returns every event in the store in id order.
func (h *harness) recordMany(n int, mk func(i int) audit.Event) []audit.Event {
	h.t.Helper()
	pending := make([]audit.Pending, n)
	for i := range n {
		ev := mk(i)
		pending[i] = h.store.Submit(&ev)
	}
	for _, p := range pending {
		if err := p.Wait(); err != nil {
			h.t.Fatalf("store submit: %v", err)
		}
	}
	var all []audit.Event
	q := store.Query{Limit: store.MaxQueryLimit}
	for {
		evs, err := h.store.Query(context.Background(), q)
		if err != nil {
			h.t.Fatalf("store.Query: %v", err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		q.AfterID = evs[len(evs)-1].ID
	}
}

func ids(evs []audit.Event) []int64 {
	out := []int64{}
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

var errBackend = errors.New("revocation backend unreachable")
