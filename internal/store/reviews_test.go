package store

import (
	"context"
	"database/sql"

	"errors"
	"fmt"
	"github.com/warden-gateway/warden/internal/audit"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/review"
)

var cest = time.FixedZone("CEST", 2*3600)

// testReview is a pending review created i seconds after a fixed instant,
// in a zone other than UTC, with every field that a pending review has.
func testReview(i int) *review.Review {
	created := time.Date(2025, 6, 7, 10, 0, i, 123456789, cest)
	return &review.Review{
		ID:            fmt.Sprintf("rev-%04d", i),
		State:         review.Pending,
		Fingerprint:   fmt.Sprintf("fp-%d", i%3),
		Subject:       fmt.Sprintf("agent-%d", i%2),
		Issuer:        "https://idp.example.com",
		Groups:        []string{"analysts", "b,c", `"quoted"`},
		SessionID:     fmt.Sprintf("sess-%d", i),
		Protocol:      "postgres",
		Target:        []string{"prod-db", "staging-db"}[i%2],
		Statement:     fmt.Sprintf("DELETE FROM orders WHERE id = %d", i),
		Kind:          "delete",
		ParamsHash:    "cafe",
		PolicyVersion: "v7",
		Policy:        "agents",
		Rule:          "review[0]",
		Reason:        "deletes need a human",
		MinApprovals:  2,
		Approvers:     "dbas",
		CreatedAt:     created,
		ExpiresAt:     created.Add(15 * time.Minute),
	}
}

// inUTC is r as the store returns it: a copy with every time in UTC.
func inUTC(r *review.Review) *review.Review {
	c := *r
	c.Groups = slices.Clone(r.Groups)
	c.Approvals = slices.Clone(r.Approvals)
	for i := range c.Approvals {
		c.Approvals[i].Time = c.Approvals[i].Time.UTC()
	}
	for _, t := range []*time.Time{&c.CreatedAt, &c.ExpiresAt, &c.DecidedAt, &c.GrantExpires, &c.ExecutedAt} {
		*t = t.UTC()
	}
	return &c
}

func mustCreate(t testing.TB, s *SQLite, rs ...*review.Review) {
	t.Helper()
	for _, r := range rs {
		if err := s.CreateReview(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func mustGet(t testing.TB, s *SQLite, id string) *review.Review {
	t.Helper()
	r, err := s.GetReview(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func reviewIDs(rs []*review.Review) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestReviewRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()

	full := testReview(1)
	full.Statement = "DELETE FROM t WHERE s = '\xff\xfe' -- invalid UTF-8 is stored byte for byte"
	full.Subject = "agent-ü"
	full.SessionID = "s\x00nul"
	minimal := &review.Review{ // nil lists, no optional times
		ID:        "rev-min",
		State:     review.Pending,
		CreatedAt: time.Date(2025, 6, 7, 8, 0, 0, 0, time.UTC),
		ExpiresAt: time.Date(2025, 6, 7, 9, 0, 0, 0, time.UTC),
	}
	mustCreate(t, s, full, minimal)
	for _, want := range []*review.Review{full, minimal} {
		got := mustGet(t, s, want.ID)
		if !reflect.DeepEqual(got, inUTC(want)) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", want.ID, got, inUTC(want))
		}
	}
	if full.CreatedAt.Location() != cest {
		t.Error("CreateReview modified its argument")
	}

	// Every field a decision and an execution set, including approvals
	// whose times carry a monotonic reading and a zone.
	now := time.Now()
	done := inUTC(full)
	done.State = review.Executed
	done.Approvals = []review.Approval{
		{By: "alice", Issuer: "https://idp.example.com", Comment: "ok, ünïcode \"quoted\"", Time: now},
		{By: "bob", Issuer: "https://other.example.com", Time: time.Date(2025, 6, 7, 10, 5, 0, 1, cest)},
	}
	done.DecidedAt = time.Date(2025, 6, 7, 10, 5, 0, 1, cest)
	done.GrantExpires = done.DecidedAt.Add(5 * time.Minute)
	done.ExecutedAt = done.DecidedAt.Add(time.Minute)
	done.Result = "DELETE 1"
	done.DeniedBy, done.DenyComment = "nobody", "a field an executed review would not have, stored all the same"
	if err := s.UpdateReview(ctx, done, review.Pending); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, full.ID)
	want := inUTC(done)
	want.Approvals[0].Time = now.Round(0).UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip after update:\n got %#v\nwant %#v", got, want)
	}
	if !got.Approvals[0].Time.Equal(now) {
		t.Errorf("approval time %v, want %v", got.Approvals[0].Time, now)
	}

	// Lists return the same values.
	list, err := s.ListReviews(ctx, review.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !reflect.DeepEqual(list[0], want) || !reflect.DeepEqual(list[1], inUTC(minimal)) {
		t.Errorf("ListReviews = %#v", list)
	}

	// Unset times are NULL, set ones UTC text in timeLayout.
	var decided sql.NullString
	var created string
	if err := indexedDB(t, s).QueryRow(`SELECT decided_at, created_at FROM reviews WHERE id = 'rev-min'`).Scan(&decided, &created); err != nil {
		t.Fatal(err)
	}
	if decided.Valid || created != "2025-06-07T08:00:00.000000000Z" {
		t.Errorf("stored decided_at %v, created_at %q", decided, created)
	}

	// Reviews are not audit records: the chain is untouched.
	mustVerify(t, s, 0)
}

func TestReviewInvalid(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	mustCreate(t, s, testReview(1))

	edit := func(f func(r *review.Review)) *review.Review {
		r := testReview(2)
		f(r)
		return r
	}
	for _, tc := range []struct {
		name string
		r    *review.Review
	}{
		{"nil", nil},
		{"no id", edit(func(r *review.Review) { r.ID = "" })},
		{"no state", edit(func(r *review.Review) { r.State = "" })},
		{"no created time", edit(func(r *review.Review) { r.CreatedAt = time.Time{} })},
		{"no expiry", edit(func(r *review.Review) { r.ExpiresAt = time.Time{} })},
		{"year 10000", edit(func(r *review.Review) { r.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"approval year 0", edit(func(r *review.Review) {
			r.Approvals = []review.Approval{{By: "alice", Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}}
		})},
		{"group not UTF-8", edit(func(r *review.Review) { r.Groups = []string{"\xff"} })},
		{"approval comment not UTF-8", edit(func(r *review.Review) { r.Approvals = []review.Approval{{By: "alice", Comment: "\xfe"}} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateReview(ctx, tc.r); err == nil {
				t.Error("CreateReview accepted it")
			}
			if tc.r != nil && tc.r.ID != "" {
				if err := s.UpdateReview(ctx, tc.r, review.Pending); err == nil {
					t.Error("UpdateReview accepted it")
				}
			}
		})
	}

	// A duplicate id is a conflict and leaves the first review alone.
	dup := testReview(1)
	dup.Statement = "DROP TABLE orders"
	if err := s.CreateReview(ctx, dup); !errors.Is(err, review.ErrConflict) {
		t.Fatalf("CreateReview(duplicate) = %v, want ErrConflict", err)
	}
	if got := mustGet(t, s, "rev-0001"); !reflect.DeepEqual(got, inUTC(testReview(1))) {
		t.Fatalf("duplicate create changed the review: %#v", got)
	}

	if err := s.UpdateReview(ctx, testReview(1), ""); err == nil {
		t.Error("UpdateReview accepted an empty from state")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CreateReview(cctx, testReview(3)); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateReview(cancelled) = %v", err)
	}
	if err := s.UpdateReview(cctx, testReview(1), review.Pending); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateReview(cancelled) = %v", err)
	}
	if list, err := s.ListReviews(ctx, review.Filter{}); err != nil || !slices.Equal(reviewIDs(list), []string{"rev-0001"}) {
		t.Fatalf("ListReviews = %v, %v; want only rev-0001", reviewIDs(list), err)
	}
	if _, err := s.GetReview(ctx, "rev-0002"); !errors.Is(err, review.ErrNotFound) {
		t.Fatalf("GetReview(never created) = %v, want ErrNotFound", err)
	}
}

// TestUpdateReviewCAS: of many updates from the same state exactly one
// wins, and the stored review is the winner's.
func TestUpdateReviewCAS(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	orig := testReview(1)
	mustCreate(t, s, orig)

	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r := inUTC(orig)
			r.State = review.Approved
			r.Approvals = []review.Approval{{By: fmt.Sprintf("approver-%d", i), Issuer: "iss", Time: orig.CreatedAt.Add(time.Minute)}}
			r.DecidedAt = orig.CreatedAt.Add(time.Minute)
			r.GrantExpires = r.DecidedAt.Add(5 * time.Minute)
			<-start
			errs[i] = s.UpdateReview(ctx, r, review.Pending)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("updates %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, review.ErrConflict):
			t.Errorf("update %d = %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no update won")
	}
	got := mustGet(t, s, orig.ID)
	if got.State != review.Approved || len(got.Approvals) != 1 || got.Approvals[0].By != fmt.Sprintf("approver-%d", winner) {
		t.Fatalf("stored %+v, want approver-%d's update", got, winner)
	}

	// The claim of the grant is the same compare-and-set, once.
	claim := *got
	claim.State, claim.ExecutedAt = review.Executed, got.DecidedAt.Add(time.Second)
	if err := s.UpdateReview(ctx, &claim, review.Approved); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateReview(ctx, &claim, review.Approved); !errors.Is(err, review.ErrConflict) {
		t.Fatalf("second claim = %v, want ErrConflict", err)
	}
	if err := s.UpdateReview(ctx, &claim, review.Pending); !errors.Is(err, review.ErrConflict) {
		t.Fatalf("update from a past state = %v, want ErrConflict", err)
	}
	ghost := testReview(99)
	if err := s.UpdateReview(ctx, ghost, review.Pending); !errors.Is(err, review.ErrNotFound) || errors.Is(err, review.ErrConflict) {
		t.Fatalf("UpdateReview(unknown id) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetReview(ctx, ghost.ID); !errors.Is(err, review.ErrNotFound) {
		t.Fatalf("UpdateReview created %s: %v", ghost.ID, err)
	}
}

func TestFindReview(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	at := func(id string, st review.State, fp string, sec int) *review.Review {
		r := testReview(sec)
		r.ID, r.State, r.Fingerprint = id, st, fp
		return r
	}
	mustCreate(t, s,
		at("old-pending", review.Pending, "fp", 1),
		at("approved", review.Approved, "fp", 2),
		at("new-pending", review.Pending, "fp", 3),
		at("executed", review.Executed, "fp", 4),
		at("other-fp", review.Pending, "fp-other", 5),
		// Same CreatedAt as new-pending, inserted later: newer.
		at("tie-later", review.Denied, "fp", 3),
		at("tie-earlier-insert", review.Expired, "fp", 6),
		at("tie-later-insert", review.Expired, "fp", 6),
	)
	for _, tc := range []struct {
		fp     string
		states []review.State
		want   string // "" = ErrNotFound
	}{
		{"fp", []review.State{review.Pending}, "new-pending"},
		{"fp", []review.State{review.Approved}, "approved"},
		{"fp", []review.State{review.Approved, review.Pending}, "new-pending"},
		{"fp", []review.State{review.Approved, review.Executed}, "executed"},
		{"fp", []review.State{review.Denied, review.Approved}, "tie-later"},
		{"fp", []review.State{review.Pending, review.Denied}, "tie-later"},
		{"fp", []review.State{review.Expired}, "tie-later-insert"},
		{"fp-other", []review.State{review.Pending}, "other-fp"},
		{"fp-other", []review.State{review.Approved}, ""},
		{"fp-none", []review.State{review.Pending}, ""},
		{"fp", []review.State{"no-such-state"}, ""},
	} {
		got, err := s.FindReview(ctx, tc.fp, tc.states...)
		if tc.want == "" {
			if !errors.Is(err, review.ErrNotFound) {
				t.Errorf("FindReview(%s, %v) = %v, %v; want ErrNotFound", tc.fp, tc.states, got, err)
			}
			continue
		}
		if err != nil || got.ID != tc.want {
			t.Errorf("FindReview(%s, %v) = %v, %v; want %s", tc.fp, tc.states, got, err, tc.want)
		}
	}
	// Lists break ties the same way.
	if list, err := s.ListReviews(ctx, review.Filter{State: review.Expired}); err != nil ||
		!slices.Equal(reviewIDs(list), []string{"tie-later-insert", "tie-earlier-insert"}) {
		t.Errorf("ListReviews(expired) = %v, %v", reviewIDs(list), err)
	}
	// No states is a caller's mistake, not "any state" and not "none".
	if _, err := s.FindReview(ctx, "fp"); err == nil || errors.Is(err, review.ErrNotFound) {
		t.Errorf("FindReview without states = %v, want an error other than ErrNotFound", err)
	}

	// A state change is seen at once: the grant has been claimed.
	r := mustGet(t, s, "approved")
	r.State = review.Executed
	r.ExecutedAt = r.CreatedAt.Add(time.Minute)
	if err := s.UpdateReview(ctx, r, review.Approved); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindReview(ctx, "fp", review.Approved); !errors.Is(err, review.ErrNotFound) {
		t.Errorf("FindReview(approved) after the claim = %v, %v; want ErrNotFound", got, err)
	}
}

func TestListReviews(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	// testReview(i): subject agent-(i%2), target prod-db for even i,
	// staging-db for odd; created i seconds in.
	for i := range 8 {
		r := testReview(i)
		if i%4 == 3 {
			r.State = review.Denied
		}
		mustCreate(t, s, r)
	}
	ids := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, fmt.Sprintf("rev-%04d", i))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    review.Filter
		want []string
	}{
		{"all, newest first", review.Filter{}, ids(7, 6, 5, 4, 3, 2, 1, 0)},
		{"state", review.Filter{State: review.Denied}, ids(7, 3)},
		{"subject", review.Filter{Subject: "agent-0"}, ids(6, 4, 2, 0)},
		{"target", review.Filter{Target: "staging-db"}, ids(7, 5, 3, 1)},
		{"state and subject", review.Filter{State: review.Pending, Subject: "agent-1"}, ids(5, 1)},
		{"all three", review.Filter{State: review.Pending, Subject: "agent-1", Target: "staging-db"}, ids(5, 1)},
		{"no match", review.Filter{Subject: "agent-0", Target: "staging-db"}, ids()},
		{"unknown state", review.Filter{State: review.Executed}, ids()},
		{"limit", review.Filter{Limit: 3}, ids(7, 6, 5)},
		{"limit with filter", review.Filter{State: review.Pending, Limit: 2}, ids(6, 5)},
		{"negative limit is the default", review.Filter{Limit: -1}, ids(7, 6, 5, 4, 3, 2, 1, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListReviews(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !slices.Equal(reviewIDs(got), tc.want) {
				t.Fatalf("ListReviews(%+v) = %v, want %v", tc.f, reviewIDs(got), tc.want)
			}
		})
	}
}

// TestListReviewsLimitBounds: the default and the cap, on more reviews
// than either. The rows are inserted behind the store's back in one
// transaction, with the store's own encoding, to avoid a thousand fsyncs.
func TestListReviewsLimitBounds(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	db := indexedDB(t, s)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	const n = maxReviewLimit + 5
	for i := range n {
		r := testReview(0)
		r.ID = fmt.Sprintf("rev-%05d", i)
		r.CreatedAt = r.CreatedAt.Add(time.Duration(i) * time.Millisecond)
		args, err := encodeReview(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(insertReview, args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{
		{0, defaultReviewLimit},
		{1, 1},
		{maxReviewLimit, maxReviewLimit},
		{maxReviewLimit + 1, maxReviewLimit},
		{1 << 40, maxReviewLimit},
	} {
		got, err := s.ListReviews(ctx, review.Filter{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || got[0].ID != fmt.Sprintf("rev-%05d", n-1) {
			t.Errorf("Limit %d: %d reviews starting at %s, want %d starting at the newest", tc.limit, len(got), got[0].ID, tc.want)
		}
	}
}

// TestReviewsSurviveRestart: a review the store acknowledged is there, as
// it was, after Close and a new OpenSQLite on the same file.
func TestReviewsSurviveRestart(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warden.db")
	s := openAt(t, path, Options{})

	pending, approved := testReview(1), testReview(2)
	mustCreate(t, s, pending, approved)
	approved.State = review.Approved
	approved.Approvals = []review.Approval{{By: "alice", Issuer: "iss", Comment: "fine", Time: approved.CreatedAt.Add(time.Minute)}}
	approved.DecidedAt = approved.CreatedAt.Add(time.Minute)
	approved.GrantExpires = approved.DecidedAt.Add(5 * time.Minute)
	if err := s.UpdateReview(ctx, approved, review.Pending); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, testEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateReview(ctx, testReview(3)); !errors.Is(err, ErrClosed) {
		t.Fatalf("CreateReview after Close = %v, want ErrClosed", err)
	}
	if err := s.UpdateReview(ctx, pending, review.Pending); !errors.Is(err, ErrClosed) {
		t.Fatalf("UpdateReview after Close = %v, want ErrClosed", err)
	}

	s2 := openAt(t, path, Options{})
	for _, want := range []*review.Review{pending, approved} {
		if got := mustGet(t, s2, want.ID); !reflect.DeepEqual(got, inUTC(want)) {
			t.Errorf("after restart %s:\n got %#v\nwant %#v", want.ID, got, inUTC(want))
		}
	}
	if got, err := s2.FindReview(ctx, approved.Fingerprint, review.Approved); err != nil || got.ID != approved.ID {
		t.Errorf("FindReview after restart = %v, %v", got, err)
	}
	// The grant is still single-use across the restart.
	claim := inUTC(approved)
	claim.State = review.Executed
	if err := s2.UpdateReview(ctx, claim, review.Approved); err != nil {
		t.Fatal(err)
	}
	if err := s2.UpdateReview(ctx, claim, review.Approved); !errors.Is(err, review.ErrConflict) {
		t.Fatalf("second claim after restart = %v, want ErrConflict", err)
	}
	mustVerify(t, s2, 1)
}

// TestReviewWritesWhileRecording: review writes share the writer with
// audit commits; neither disturbs the other, and the chain stays whole.
func TestReviewWritesWhileRecording(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	done := make(chan struct{})
	recorded := make(chan int, 1)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for i := 0; ; i++ {
			select {
			case <-done:
				recorded <- i
				return
			default:
			}
			if err := s.Record(ctx, testEvent(i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				r := testReview(g*100 + i)
				if err := s.CreateReview(ctx, r); err != nil {
					t.Error(err)
					return
				}
				r.State = review.Denied
				r.DeniedBy = "bob"
				if err := s.UpdateReview(ctx, r, review.Pending); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	n := <-recorded
	mustVerify(t, s, int64(n))
	if got, err := s.ListReviews(ctx, review.Filter{State: review.Denied}); err != nil || len(got) != 40 {
		t.Fatalf("ListReviews(denied) = %d, %v; want 40", len(got), err)
	}
}

// writeV2Database creates, at path, a database at schema version 2 as the
// version-2 store left it: hash-version-1 records from before (written
// through version 1), hash-version-2 records after, a revocation.
func writeV2Database(t *testing.T, path string, v1, v2 int) {
	t.Helper()
	ctx := context.Background()
	writeV1Database(t, path, v1)
	db := rawDB(t, path)
	if err := migrate(ctx, db, sqliteMigrations[:2]); err != nil {
		t.Fatal(err)
	}
	var reqs []*request
	for i := v1 + 1; i <= v1+v2; i++ {
		req, err := newRequest(ctx, testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	appendEventsV2(t, tx, reqs)
	if _, err := tx.Exec(`INSERT INTO revocations (subject, revoked_by, reason, revoked_at) VALUES ('agent-9', 'admin', 'leaked', ?)`,
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Format(timeLayout)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromV2: adding the reviews table keeps every existing audit
// record verifiable, keeps revocations, and the chain continues.
func TestMigrateFromV2(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warden.db")
	writeV2Database(t, path, 2, 3)

	s := openAt(t, path, Options{})
	mustVerify(t, s, 5)
	revs, err := s.Revocations(ctx)
	if err != nil || len(revs) != 1 || revs[0].Subject != "agent-9" {
		t.Fatalf("Revocations after migration = %+v, %v", revs, err)
	}
	if list, err := s.ListReviews(ctx, review.Filter{}); err != nil || len(list) != 0 {
		t.Fatalf("ListReviews on a migrated store = %v, %v", list, err)
	}
	mustCreate(t, s, testReview(1))
	if err := s.Record(ctx, testEvent(6)); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, 6)

	db := rawDB(t, path)
	var versions []int
	rows, err := db.Query(`SELECT version FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	rows.Close()
	if want := []int{1, 2, 3, 4}; !slices.Equal(versions, want) {
		t.Fatalf("schema versions = %v, want %v", versions, want)
	}
	if ids := storedIDs(t, db); !slices.Equal(ids, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("ids = %v", ids)
	}
}

// appendEventsV2 appends reqs as a warden of schema version 2 and hash
// version 2 wrote them: no http_status column.
func appendEventsV2(t *testing.T, tx *sql.Tx, reqs []*request) {
	t.Helper()
	var lastID int64
	var prev []byte
	if err := tx.QueryRow(selectHead).Scan(&lastID, &prev); err != nil {
		t.Fatal(err)
	}
	for _, req := range reqs {
		lastID++
		ev := &req.ev
		ev.ID = lastID
		h, err := audit.HashWithVersion(2, prev, ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO audit_events (
	id, time, kind, session_id, protocol, target, client, subject, issuer, groups, token_id,
	request, request_hash, stmt_kind, decision, policy, rule, reason, error,
	seq, fingerprint, params_hash, duration_us, row_count, byte_count, hash_version, prev_hash, hash
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 2, ?, ?)`,
			ev.ID, ev.Time.Format(timeLayout), ev.Kind, ev.SessionID, ev.Protocol, ev.Target, ev.Client, ev.Subject, ev.Issuer, req.groups, ev.TokenID,
			ev.Request, ev.RequestHash, ev.StmtKind, ev.Decision, ev.Policy, ev.Rule, ev.Reason, ev.Error,
			ev.Seq, ev.Fingerprint, ev.ParamsHash, ev.DurationUS, ev.Rows, ev.Bytes, prev, h); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	if _, err := tx.Exec(updateHead, lastID, prev); err != nil {
		t.Fatal(err)
	}
}
