package review_test

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/review"
)

func TestNewManagerConfig(t *testing.T) {
	checkGoroutines(t)
	ok := review.Config{Store: newMemStore(), Audit: &switchSink{}, IsApprover: isApprover}
	tests := []struct {
		name   string
		mutate func(*review.Config)
		ok     bool
	}{
		{"minimal", func(*review.Config) {}, true},
		{"no store", func(c *review.Config) { c.Store = nil }, false},
		{"no audit", func(c *review.Config) { c.Audit = nil }, false},
		{"no approver hook", func(c *review.Config) { c.IsApprover = nil }, false},
		{"negative ttl", func(c *review.Config) { c.ReviewTTL = -time.Second }, false},
		{"relative console url", func(c *review.Config) { c.ConsoleURL = "127.0.0.1:8080" }, false},
		{"console url", func(c *review.Config) { c.ConsoleURL = "https://warden.example.com/" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			m, err := review.NewManager(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewManager error = %v, want ok = %v", err, tt.ok)
			}
			if m != nil {
				m.Close()
			}
		})
	}
}

func TestRequest(t *testing.T) {
	h := newHarness(t, nil)
	r := h.request(baseReq)

	if !regexp.MustCompile(`^rv_[a-z2-7]{16}$`).MatchString(r.ID) {
		t.Errorf("ID = %q, want rv_ and 16 base32 characters", r.ID)
	}
	want := review.Review{
		ID: r.ID, State: review.Pending, Fingerprint: review.Fingerprint(baseReq),
		Subject: "agent-1", Issuer: issuer, Groups: []string{"analysts"}, SessionID: "sess-1",
		Protocol: "postgres", Target: "prod-db", Statement: baseReq.Statement, Kind: "delete",
		PolicyVersion: "v1", Policy: "analyst-agents", Rule: "review[0]", Reason: baseReq.Reason,
		MinApprovals: 1, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
	}
	if !equalReview(r, &want) {
		t.Errorf("Request =\n%+v\nwant\n%+v", *r, want)
	}
	if got := h.m.URL(r.ID); got != "http://127.0.0.1:8080/reviews/"+r.ID {
		t.Errorf("URL = %q", got)
	}

	evs := h.events(review.KindReviewProposed)
	if len(evs) != 1 {
		t.Fatalf("%d proposed events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Decision != review.DecisionReview || ev.Subject != "agent-1" || ev.Issuer != issuer || ev.TokenID != "tok-agent" ||
		ev.SessionID != "sess-1" || ev.Target != "prod-db" || ev.Protocol != "postgres" || ev.Request != baseReq.Statement ||
		ev.RequestHash == "" || ev.StmtKind != "delete" || ev.Policy != "analyst-agents" || ev.Rule != "review[0]" ||
		!strings.HasPrefix(ev.Reason, "review "+r.ID+": proposed") || !ev.Time.Equal(t0) {
		t.Errorf("proposed event = %+v", ev)
	}
}

func TestRequestDedup(t *testing.T) {
	h := newHarness(t, nil)
	first := h.request(baseReq)

	// A retry from another connection while the first waits: same review.
	retry := baseReq
	retry.SessionID = "sess-2"
	if got := h.request(retry); got.ID != first.ID {
		t.Errorf("retry created %s, want the pending %s", got.ID, first.ID)
	}

	// Concurrent retries: still one review.
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Go(func() {
			r, err := h.m.Request(context.Background(), baseReq)
			if err != nil {
				t.Errorf("Request: %v", err)
				return
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != first.ID {
			t.Errorf("concurrent retry got %s, want %s", id, first.ID)
		}
	}

	// Anything bound by the fingerprint makes a new review.
	other := baseReq
	other.Statement = "DELETE FROM public.orders WHERE id = 8"
	if got := h.request(other); got.ID == first.ID {
		t.Errorf("a different statement rode on review %s", first.ID)
	}
	if n := h.store.count(); n != 2 {
		t.Errorf("%d reviews stored, want 2", n)
	}
	if evs := h.events(review.KindReviewProposed); len(evs) != 2 {
		t.Errorf("%d proposed events, want 2", len(evs))
	}

	// Once decided, the same statement needs a new review.
	if _, err := h.m.Deny(context.Background(), first.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	if got := h.request(baseReq); got.ID == first.ID {
		t.Errorf("a denied review was returned as pending")
	}
}

func TestRequestInvalid(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name   string
		mutate func(*review.Request)
	}{
		{"no principal", func(r *review.Request) { r.Principal = nil }},
		{"no subject", func(r *review.Request) { r.Principal = &identity.Principal{Issuer: issuer} }},
		{"no target", func(r *review.Request) { r.Target = "" }},
		{"no statement", func(r *review.Request) { r.Statement = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseReq
			tt.mutate(&req)
			if _, err := h.m.Request(context.Background(), req); err == nil {
				t.Error("Request succeeded")
			}
		})
	}
	if n := h.store.count(); n != 0 {
		t.Errorf("%d reviews stored", n)
	}
}

// An unaudited proposal must not be approvable: it is withdrawn.
func TestRequestAuditFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.sink.fail.Store(true)
	_, err := h.m.Request(context.Background(), baseReq)
	if !errors.Is(err, errAuditDown) {
		t.Fatalf("Request error = %v, want the audit failure", err)
	}
	rs, _ := h.store.ListReviews(context.Background(), review.Filter{})
	if len(rs) != 1 || rs[0].State != review.Expired {
		t.Fatalf("stored %+v, want one expired review", rs)
	}
	h.sink.fail.Store(false)
	if _, err := h.m.Approve(context.Background(), rs[0].ID, alice, ""); !errors.Is(err, review.ErrNotPending) {
		t.Errorf("Approve of the withdrawn review: %v, want ErrNotPending", err)
	}
}

func TestWaitWokenByDecision(t *testing.T) {
	tests := []struct {
		name   string
		decide func(m *review.Manager, id string) (*review.Review, error)
		want   review.State
	}{
		{"approve", func(m *review.Manager, id string) (*review.Review, error) {
			return m.Approve(context.Background(), id, alice, "ok")
		}, review.Approved},
		{"deny", func(m *review.Manager, id string) (*review.Review, error) {
			return m.Deny(context.Background(), id, alice, "no")
		}, review.Denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A poll that never fires: only the broadcast can wake it.
			h := newHarness(t, func(c *review.Config) { c.PollInterval = time.Hour })
			r := h.request(baseReq)

			const waiters = 5
			got := make(chan *review.Review, waiters)
			var wg sync.WaitGroup
			for range waiters {
				wg.Go(func() {
					w, err := h.m.Wait(context.Background(), r.ID)
					if err != nil {
						t.Errorf("Wait: %v", err)
					}
					got <- w
				})
			}
			// Let the waiters block first (not required for correctness:
			// a decision before the wait is seen by its first read).
			time.Sleep(50 * time.Millisecond)
			if _, err := tt.decide(h.m, r.ID); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("waiters not woken by the decision")
			}
			close(got)
			for w := range got {
				if w == nil || w.State != tt.want {
					t.Errorf("Wait returned %+v, want state %s", w, tt.want)
				}
			}
		})
	}
}

func TestWaitDeadline(t *testing.T) {
	h := newHarness(t, nil)
	r := h.request(baseReq)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := h.m.Wait(ctx, r.ID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait error = %v, want the deadline", err)
	}
	if got == nil || got.ID != r.ID || got.State != review.Pending {
		t.Errorf("Wait returned %+v, want the pending review", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Wait took %v past a 50ms deadline", d)
	}

	if _, err := h.m.Wait(context.Background(), "rv_nonexistent"); !errors.Is(err, review.ErrNotFound) {
		t.Errorf("Wait(unknown) error = %v, want ErrNotFound", err)
	}
}

// A decision made by another replica (or before a restart) reaches a
// waiter through the Store poll.
func TestWaitSeesOtherReplica(t *testing.T) {
	h := newHarness(t, func(c *review.Config) { c.PollInterval = 20 * time.Millisecond })
	other := h.manager()
	r := h.request(baseReq)

	done := make(chan *review.Review, 1)
	go func() {
		w, err := h.m.Wait(context.Background(), r.ID)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		done <- w
	}()
	time.Sleep(30 * time.Millisecond)
	if _, err := other.Approve(context.Background(), r.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-done:
		if w == nil || w.State != review.Approved {
			t.Errorf("Wait returned %+v, want approved", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other replica's approval was not seen")
	}
}

func TestDecideErrors(t *testing.T) {
	tests := []struct {
		name    string
		who     *identity.Principal
		deny    bool
		setup   func(h *harness, id string)
		id      string // default: the review's
		wantErr error
	}{
		{name: "requester approves", who: agent, wantErr: review.ErrSelfApproval},
		{name: "requester denies", who: agent, deny: true, wantErr: review.ErrSelfApproval},
		{name: "non-approver approves", who: carol, wantErr: review.ErrNotApprover},
		{name: "non-approver denies", who: carol, deny: true, wantErr: review.ErrNotApprover},
		{name: "no approver", who: nil, wantErr: review.ErrNotApprover},
		{name: "rule approver outside the rule", who: dana, wantErr: review.ErrNotApprover},
		{name: "unknown review", who: alice, id: "rv_aaaaaaaaaaaaaaaa", wantErr: review.ErrNotFound},
		{name: "already denied", who: bob, setup: func(h *harness, id string) {
			if _, err := h.m.Deny(context.Background(), id, alice, ""); err != nil {
				h.t.Fatal(err)
			}
		}, wantErr: review.ErrNotPending},
		{name: "deny after approval", who: bob, deny: true, setup: func(h *harness, id string) {
			if _, err := h.m.Approve(context.Background(), id, alice, ""); err != nil {
				h.t.Fatal(err)
			}
		}, wantErr: review.ErrNotPending},
		{name: "approve twice", who: alice, setup: func(h *harness, id string) {
			if _, err := h.m.Approve(context.Background(), id, alice, ""); err != nil {
				h.t.Fatal(err)
			}
		}, wantErr: review.ErrNotPending},
		// Same subject at another issuer is another identity.
		{name: "same subject, other issuer", who: twin, wantErr: nil},
		{name: "admin", who: alice, wantErr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.request(baseReq)
			if tt.setup != nil {
				tt.setup(h, r.ID)
			}
			before := h.get(r.ID)
			id := cmp.Or(tt.id, r.ID)
			var err error
			if tt.deny {
				_, err = h.m.Deny(context.Background(), id, tt.who, "")
			} else {
				_, err = h.m.Approve(context.Background(), id, tt.who, "")
			}
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if after := h.get(r.ID); !equalReview(after, before) {
					t.Errorf("a refused decision changed the review:\n%+v\n%+v", before, after)
				}
			}
		})
	}
}

func TestRuleApprovers(t *testing.T) {
	h := newHarness(t, nil)
	req := baseReq
	req.Approvers = "dba"
	r := h.request(req)
	got, err := h.m.Approve(context.Background(), r.ID, dana, "")
	if err != nil || got.State != review.Approved {
		t.Fatalf("Approve by the rule's approver: %+v, %v", got, err)
	}
}

func TestMinApprovals(t *testing.T) {
	h := newHarness(t, func(c *review.Config) { c.GrantTTL = 10 * time.Minute })
	req := baseReq
	req.MinApprovals = 2
	r := h.request(req)
	ctx := context.Background()

	got, err := h.m.Approve(ctx, r.ID, alice, "looks right")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != review.Pending || len(got.Approvals) != 1 || !got.GrantExpires.IsZero() {
		t.Fatalf("after one of two approvals: %+v", got)
	}
	if _, ok, _ := h.m.Claim(ctx, r.Fingerprint); ok {
		t.Fatal("claimed with one of two approvals")
	}
	if _, err := h.m.Approve(ctx, r.ID, alice, "again"); !errors.Is(err, review.ErrDuplicate) {
		t.Fatalf("second approval by alice: %v, want ErrDuplicate", err)
	}

	h.clock.Advance(time.Minute)
	got, err = h.m.Approve(ctx, r.ID, bob, "")
	if err != nil {
		t.Fatal(err)
	}
	wantApprovals := []review.Approval{
		{By: "alice", Issuer: issuer, Comment: "looks right", Time: t0},
		{By: "bob", Issuer: issuer, Time: t0.Add(time.Minute)},
	}
	if got.State != review.Approved || !slices.EqualFunc(got.Approvals, wantApprovals, equalApproval) ||
		!got.DecidedAt.Equal(t0.Add(time.Minute)) || !got.GrantExpires.Equal(t0.Add(11*time.Minute)) {
		t.Fatalf("after two approvals: %+v", got)
	}

	evs := h.events(review.KindReviewApproved)
	if len(evs) != 2 {
		t.Fatalf("%d approved events, want 2", len(evs))
	}
	for i, want := range []struct{ who, reason string }{
		{"alice", "review " + r.ID + ": approved by alice (1 of 2): looks right"},
		{"bob", "review " + r.ID + ": approved by bob (2 of 2); may run once until 2030-01-02T03:15:05Z"},
	} {
		if ev := evs[i]; ev.Subject != want.who || ev.Decision != audit.Allow || ev.Reason != want.reason || ev.Request != baseReq.Statement {
			t.Errorf("approved event %d = %+v, want by %s, reason %q", i, ev, want.who, want.reason)
		}
	}
}

// An approval that cannot be audited does not take effect.
func TestApproveAuditFailure(t *testing.T) {
	h := newHarness(t, nil)
	r := h.request(baseReq)
	h.sink.fail.Store(true)
	if _, err := h.m.Approve(context.Background(), r.ID, alice, ""); !errors.Is(err, errAuditDown) {
		t.Fatalf("Approve error = %v, want the audit failure", err)
	}
	if got := h.get(r.ID); got.State != review.Pending || len(got.Approvals) != 0 {
		t.Errorf("unaudited approval took effect: %+v", got)
	}

	// A denial that cannot be audited still stands (it takes away), but
	// the caller hears of it.
	if _, err := h.m.Deny(context.Background(), r.ID, alice, ""); !errors.Is(err, errAuditDown) {
		t.Fatalf("Deny error = %v, want the audit failure", err)
	}
	if got := h.get(r.ID); got.State != review.Denied {
		t.Errorf("state after an unaudited denial = %s, want denied", got.State)
	}
}

func TestClaimSingleUse(t *testing.T) {
	h := newHarness(t, nil)
	r := h.request(baseReq)
	ctx := context.Background()
	if _, err := h.m.Approve(ctx, r.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	// Another replica claims too.
	other := h.manager()

	const claimers = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		wins  []*review.Review
	)
	for i := range claimers {
		m := h.m
		if i%2 == 1 {
			m = other
		}
		wg.Go(func() {
			<-start
			got, ok, err := m.Claim(ctx, review.Fingerprint(baseReq))
			if err != nil {
				t.Errorf("Claim: %v", err)
			}
			if ok {
				mu.Lock()
				wins = append(wins, got)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d claims won, want exactly 1", len(wins))
	}
	if w := wins[0]; w.ID != r.ID || w.State != review.Executed || !w.ExecutedAt.Equal(t0) {
		t.Errorf("winning claim = %+v", w)
	}
	if _, ok, err := h.m.Claim(ctx, r.Fingerprint); ok || err != nil {
		t.Errorf("claim after use: ok=%v err=%v, want false, nil", ok, err)
	}

	h.m.Executed(ctx, r.ID, "DELETE 1")
	if got := h.get(r.ID); got.State != review.Executed || got.Result != "DELETE 1" {
		t.Errorf("after Executed: %+v", got)
	}
	evs := h.reviewEvents(r.ID)
	if got, want := kinds(evs), []string{review.KindReviewProposed, review.KindReviewApproved, review.KindReviewExecuted}; !slices.Equal(got, want) {
		t.Fatalf("review events = %v, want %v", got, want)
	}
	if ev := evs[2]; ev.Subject != "agent-1" || ev.Decision != audit.Allow || ev.Reason != "review "+r.ID+": executed: DELETE 1" {
		t.Errorf("executed event = %+v", ev)
	}
}

func TestClaimNothing(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if _, ok, err := h.m.Claim(ctx, review.Fingerprint(baseReq)); ok || err != nil {
		t.Errorf("claim with no review: ok=%v err=%v", ok, err)
	}
	r := h.request(baseReq)
	if _, ok, err := h.m.Claim(ctx, r.Fingerprint); ok || err != nil {
		t.Errorf("claim of a pending review: ok=%v err=%v", ok, err)
	}
	// An approval binds one fingerprint only.
	if _, err := h.m.Approve(ctx, r.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	other := baseReq
	other.Statement = "DELETE FROM public.orders"
	if _, ok, err := h.m.Claim(ctx, review.Fingerprint(other)); ok || err != nil {
		t.Errorf("a different statement claimed the approval: ok=%v err=%v", ok, err)
	}
	h.m.Executed(ctx, r.ID, "x")
	if got := h.get(r.ID); got.State != review.Approved || got.Result != "" {
		t.Errorf("Executed before the claim changed the review: %+v", got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "execution result not recorded") || !strings.Contains(logs, review.ErrNotClaimed.Error()) {
		t.Errorf("Executed before the claim not logged:\n%s", logs)
	}
	if evs := h.events(review.KindReviewExecuted); len(evs) != 0 {
		t.Errorf("executed events for an unclaimed review: %+v", evs)
	}
}

func TestClaimAfterGrantTTL(t *testing.T) {
	h := newHarness(t, func(c *review.Config) { c.GrantTTL = 5 * time.Minute })
	r := h.request(baseReq)
	ctx := context.Background()
	if _, err := h.m.Approve(ctx, r.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(5 * time.Minute)
	if _, ok, err := h.m.Claim(ctx, r.Fingerprint); ok || err != nil {
		t.Fatalf("claim after the grant expired: ok=%v err=%v", ok, err)
	}
	if got := h.get(r.ID); got.State != review.Expired {
		t.Errorf("state = %s, want expired", got.State)
	}
	evs := h.events(review.KindReviewExpired)
	if len(evs) != 1 || evs[0].Decision != audit.Deny || !strings.Contains(evs[0].Reason, "approved but not run") {
		t.Errorf("expired events = %+v", evs)
	}
}

func TestReviewExpiry(t *testing.T) {
	h := newHarness(t, func(c *review.Config) {
		c.ReviewTTL = 30 * time.Minute
		c.PollInterval = 10 * time.Millisecond
	})
	r := h.request(baseReq)
	ctx := context.Background()

	h.clock.Advance(29 * time.Minute)
	if got := h.get(r.ID); got.State != review.Pending {
		t.Fatalf("state before ExpiresAt = %s", got.State)
	}

	// A waiter sees the expiry when the clock passes ExpiresAt.
	done := make(chan *review.Review, 1)
	go func() {
		w, err := h.m.Wait(ctx, r.ID)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		done <- w
	}()
	time.Sleep(30 * time.Millisecond)
	h.clock.Advance(time.Minute)
	select {
	case w := <-done:
		if w == nil || w.State != review.Expired {
			t.Errorf("Wait returned %+v, want expired", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not see the expiry")
	}

	if _, err := h.m.Approve(ctx, r.ID, alice, ""); !errors.Is(err, review.ErrNotPending) {
		t.Errorf("Approve after expiry: %v, want ErrNotPending", err)
	}
	if evs := h.events(review.KindReviewExpired); len(evs) != 1 {
		t.Errorf("%d expired events, want exactly 1", len(evs))
	}
	// The same statement now gets a new review.
	if got := h.request(baseReq); got.ID == r.ID || got.State != review.Pending {
		t.Errorf("Request after expiry = %+v, want a new pending review", got)
	}
}

func TestList(t *testing.T) {
	h := newHarness(t, nil)
	old := h.request(baseReq)
	h.clock.Advance(50 * time.Minute)
	other := baseReq
	other.Target = "staging-db"
	fresh := h.request(other)
	h.clock.Advance(20 * time.Minute) // old expires, fresh does not

	got, err := h.m.List(context.Background(), review.Filter{State: review.Pending})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != fresh.ID {
		t.Errorf("pending = %+v, want only %s", got, fresh.ID)
	}
	all, err := h.m.List(context.Background(), review.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]review.State{}
	for _, r := range all {
		states[r.ID] = r.State
	}
	if states[old.ID] != review.Expired || states[fresh.ID] != review.Pending {
		t.Errorf("states = %v", states)
	}
}

func TestDeny(t *testing.T) {
	h := newHarness(t, nil)
	r := h.request(baseReq)
	ctx := context.Background()
	got, err := h.m.Deny(ctx, r.ID, alice, "not in prod")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != review.Denied || got.DeniedBy != "alice" || got.DenyComment != "not in prod" || !got.DecidedAt.Equal(t0) {
		t.Errorf("denied review = %+v", got)
	}
	if _, ok, err := h.m.Claim(ctx, r.Fingerprint); ok || err != nil {
		t.Errorf("claim of a denied review: ok=%v err=%v", ok, err)
	}
	evs := h.events(review.KindReviewDenied)
	if len(evs) != 1 {
		t.Fatalf("%d denied events", len(evs))
	}
	if ev := evs[0]; ev.Subject != "alice" || ev.TokenID != "tok-alice" || ev.Decision != audit.Deny ||
		ev.Reason != "review "+r.ID+": denied by alice: not in prod" {
		t.Errorf("denied event = %+v", ev)
	}
}

// A failed notification is logged and audited and changes nothing.
func TestNotifierFailure(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer srv.Close()

	h := newHarness(t, func(c *review.Config) {
		c.Notifier = &review.Webhook{URL: srv.URL, Secret: []byte("k")}
	})
	r := h.request(baseReq)
	if err := h.m.Shutdown(context.Background()); err != nil { // waits for the notification
		t.Fatal(err)
	}

	mu.Lock()
	if calls != 1 {
		t.Errorf("webhook called %d times, want 1", calls)
	}
	mu.Unlock()
	if got := h.get(r.ID); got.State != review.Pending || len(got.Approvals) != 0 {
		t.Errorf("a failed notification changed the review: %+v", got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "notification review.proposed failed") || !strings.Contains(logs, "500") {
		t.Errorf("failure not logged:\n%s", logs)
	}
	evs := h.events(review.KindReviewNote)
	if len(evs) != 1 || evs[0].Decision != audit.Error || !strings.Contains(evs[0].Error, "status 500") ||
		!strings.HasPrefix(evs[0].Reason, "review "+r.ID+": notification") {
		t.Errorf("note events = %+v", evs)
	}
}

func TestNotifierDecisions(t *testing.T) {
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(review.HeaderEvent)
	}))
	defer srv.Close()
	h := newHarness(t, func(c *review.Config) { c.Notifier = &review.Webhook{URL: srv.URL} })
	r := h.request(baseReq)
	if _, err := h.m.Approve(context.Background(), r.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(got)
	var events []string
	for e := range got {
		events = append(events, e)
	}
	slices.Sort(events)
	if want := []string{review.KindReviewApproved, review.KindReviewProposed}; !slices.Equal(events, want) {
		t.Errorf("notified %v, want %v", events, want)
	}
}

func equalReview(a, b *review.Review) bool {
	return a.ID == b.ID && a.State == b.State && a.Fingerprint == b.Fingerprint &&
		a.Subject == b.Subject && a.Issuer == b.Issuer && slices.Equal(a.Groups, b.Groups) &&
		a.SessionID == b.SessionID && a.Protocol == b.Protocol && a.Target == b.Target &&
		a.Statement == b.Statement && a.Kind == b.Kind && a.ParamsHash == b.ParamsHash &&
		a.PolicyVersion == b.PolicyVersion && a.Policy == b.Policy && a.Rule == b.Rule &&
		a.Reason == b.Reason && a.MinApprovals == b.MinApprovals && a.Approvers == b.Approvers &&
		slices.EqualFunc(a.Approvals, b.Approvals, equalApproval) &&
		a.DeniedBy == b.DeniedBy && a.DenyComment == b.DenyComment &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.DecidedAt.Equal(b.DecidedAt) &&
		a.GrantExpires.Equal(b.GrantExpires) && a.ExecutedAt.Equal(b.ExecutedAt) && a.Result == b.Result
}

func equalApproval(a, b review.Approval) bool {
	return a.By == b.By && a.Issuer == b.Issuer && a.Comment == b.Comment && a.Time.Equal(b.Time)
}

// Waiting costs no goroutine beyond the waiter's own.
func TestWaitNoExtraGoroutines(t *testing.T) {
	h := newHarness(t, nil)
	r := h.request(baseReq)
	base := runtime.NumGoroutine()
	const waiters = 20
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			if w, err := h.m.Wait(context.Background(), r.ID); err != nil || w.State != review.Approved {
				t.Errorf("Wait = %+v, %v", w, err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base+waiters {
		t.Errorf("%d goroutines while %d wait, %d before", n, waiters, base)
	}
	if _, err := h.m.Approve(context.Background(), r.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// Notifications are bounded: beyond MaxNotifications in flight one is
// dropped, and that is noted; Close cancels the one in flight.
func TestNotificationsBounded(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	defer srv.Close()
	defer close(hang)
	h := newHarness(t, func(c *review.Config) {
		c.Notifier = &review.Webhook{URL: srv.URL, Timeout: time.Minute}
		c.MaxNotifications = 1
	})
	first := h.request(baseReq)
	other := baseReq
	other.Statement = "DELETE FROM public.orders WHERE id = 8"
	second := h.request(other)

	start := time.Now()
	h.m.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	notes := map[string]string{}
	for _, ev := range h.events(review.KindReviewNote) {
		notes[ev.Reason] = ev.Error
	}
	if _, ok := notes["review "+second.ID+": notification review.proposed dropped"]; !ok {
		t.Errorf("no note of the dropped notification: %v", notes)
	}
	if _, ok := notes["review "+first.ID+": notification review.proposed failed"]; !ok {
		t.Errorf("no note of the cancelled notification: %v", notes)
	}
	for _, id := range []string{first.ID, second.ID} {
		if got := h.get(id); got.State != review.Pending {
			t.Errorf("%s: state %s", id, got.State)
		}
	}
}
