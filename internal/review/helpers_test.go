// The tests are an external package: internal/store (whose SQLite is the
// real audit sink here) will implement review.Store and so import review.
package review_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/review"
	"github.com/warden-gateway/warden/internal/store"
)

// checkGoroutines fails the test if goroutines started during it are still
// running when it ends. Register it before anything whose cleanup stops
// goroutines: cleanups run last-registered first.
func checkGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: %d running, %d before the test\n%s", runtime.NumGoroutine(), base, buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// memStore is an in-memory review.Store: the Manager's dependency, not the
// thing under test. UpdateReview is a compare-and-set on State, as the
// interface requires.
type memStore struct {
	mu      sync.Mutex
	reviews map[string]*review.Review
	order   map[string]int // creation order, to find the newest
	n       int
}

func newMemStore() *memStore {
	return &memStore{reviews: map[string]*review.Review{}, order: map[string]int{}}
}

func cloneReview(r *review.Review) *review.Review {
	c := *r
	c.Groups = slices.Clone(r.Groups)
	c.Approvals = slices.Clone(r.Approvals)
	return &c
}

func (s *memStore) CreateReview(_ context.Context, r *review.Review) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.reviews[r.ID]; ok {
		return fmt.Errorf("memstore: duplicate id %s", r.ID)
	}
	s.n++
	s.reviews[r.ID], s.order[r.ID] = cloneReview(r), s.n
	return nil
}

func (s *memStore) GetReview(_ context.Context, id string) (*review.Review, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reviews[id]
	if !ok {
		return nil, review.ErrNotFound
	}
	return cloneReview(r), nil
}

func (s *memStore) FindReview(_ context.Context, fp string, states ...review.State) (*review.Review, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *review.Review
	for id, r := range s.reviews {
		if r.Fingerprint == fp && slices.Contains(states, r.State) && (best == nil || s.order[id] > s.order[best.ID]) {
			best = r
		}
	}
	if best == nil {
		return nil, review.ErrNotFound
	}
	return cloneReview(best), nil
}

func (s *memStore) UpdateReview(_ context.Context, r *review.Review, from review.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.reviews[r.ID]
	if !ok {
		return review.ErrNotFound
	}
	if cur.State != from {
		return review.ErrConflict
	}
	s.reviews[r.ID] = cloneReview(r)
	return nil
}

func (s *memStore) ListReviews(_ context.Context, f review.Filter) ([]*review.Review, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*review.Review
	for _, r := range s.reviews {
		if (f.State == "" || r.State == f.State) && (f.Subject == "" || r.Subject == f.Subject) && (f.Target == "" || r.Target == f.Target) {
			out = append(out, cloneReview(r))
		}
	}
	slices.SortFunc(out, func(a, b *review.Review) int { return cmp.Compare(s.order[b.ID], s.order[a.ID]) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reviews)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// switchSink is the real audit store that a test can make fail, to see
// what the Manager does when the audit log cannot be written.
type switchSink struct {
	audit.Sink
	fail atomic.Bool
}

var errAuditDown = errors.New("audit log unavailable")

func (s *switchSink) Record(ctx context.Context, ev *audit.Event) error {
	if s.fail.Load() {
		return errAuditDown
	}
	return s.Sink.Record(ctx, ev)
}

const issuer = "https://idp.example.com"

var (
	agent   = &identity.Principal{Subject: "agent-1", Issuer: issuer, Groups: []string{"analysts"}, TokenID: "tok-agent"}
	alice   = &identity.Principal{Subject: "alice", Issuer: issuer, Groups: []string{"sre"}, TokenID: "tok-alice"}
	bob     = &identity.Principal{Subject: "bob", Issuer: issuer, Groups: []string{"sre"}}
	carol   = &identity.Principal{Subject: "carol", Issuer: issuer, Groups: []string{"analysts"}}
	dana    = &identity.Principal{Subject: "dana", Issuer: issuer, Groups: []string{"dba"}}
	twin    = &identity.Principal{Subject: "agent-1", Issuer: "https://other-idp.example.com", Groups: []string{"sre"}}
	t0      = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	baseReq = review.Request{
		Principal:     agent,
		SessionID:     "sess-1",
		Protocol:      "postgres",
		Target:        "prod-db",
		Statement:     "DELETE FROM public.orders WHERE id = 7",
		Kind:          "delete",
		PolicyVersion: "v1",
		Policy:        "analyst-agents",
		Rule:          "review[0]",
		Reason:        "delete on public.orders needs review",
	}
)

// isApprover: admins are the "sre" group; a rule naming the "dba"
// approvers also accepts that group.
func isApprover(p *identity.Principal, r *review.Review) bool {
	return slices.Contains(p.Groups, "sre") || (r.Approvers == "dba" && slices.Contains(p.Groups, "dba"))
}

type harness struct {
	t     *testing.T
	m     *review.Manager
	store *memStore
	audit *store.SQLite
	sink  *switchSink
	clock *fakeClock
	logs  *syncBuffer
	cfg   review.Config
}

// newHarness returns a Manager over a fresh in-memory review store, a
// real SQLite audit store and a fake clock; opt adjusts its Config.
func newHarness(t *testing.T, opt func(*review.Config)) *harness {
	t.Helper()
	checkGoroutines(t)
	a, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "warden.db"), store.Options{})
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("audit Close: %v", err)
		}
	})
	h := &harness{t: t, store: newMemStore(), audit: a, sink: &switchSink{Sink: a}, clock: &fakeClock{t: t0}, logs: &syncBuffer{}}
	h.cfg = review.Config{
		Store:      h.store,
		Audit:      h.sink,
		ConsoleURL: "http://127.0.0.1:8080",
		IsApprover: isApprover,
		Logger:     slog.New(slog.NewTextHandler(h.logs, nil)),
		Now:        h.clock.Now,
	}
	if opt != nil {
		opt(&h.cfg)
	}
	h.m = h.manager()
	return h
}

// manager returns another Manager on the harness's stores: a second
// replica.
func (h *harness) manager() *review.Manager {
	h.t.Helper()
	m, err := review.NewManager(h.cfg)
	if err != nil {
		h.t.Fatalf("NewManager: %v", err)
	}
	h.t.Cleanup(func() { m.Close() })
	return m
}

func (h *harness) request(req review.Request) *review.Review {
	h.t.Helper()
	r, err := h.m.Request(context.Background(), req)
	if err != nil {
		h.t.Fatalf("Request: %v", err)
	}
	return r
}

func (h *harness) get(id string) *review.Review {
	h.t.Helper()
	r, err := h.m.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

// events returns the audit events of the given kinds, oldest first.
func (h *harness) events(kinds ...string) []audit.Event {
	h.t.Helper()
	evs, err := h.audit.Query(context.Background(), store.Query{Kinds: kinds, Limit: store.MaxQueryLimit})
	if err != nil {
		h.t.Fatalf("audit Query: %v", err)
	}
	return evs
}

// reviewEvents returns the audit events linked to review id.
func (h *harness) reviewEvents(id string) []audit.Event {
	h.t.Helper()
	var out []audit.Event
	for _, ev := range h.events() {
		if strings.HasPrefix(ev.Reason, "review "+id+": ") {
			out = append(out, ev)
		}
	}
	return out
}

func kinds(evs []audit.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}
