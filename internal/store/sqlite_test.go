package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/warden-gateway/warden/internal/audit"
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

// openTest opens a store in a fresh directory and closes it at cleanup.
func openTest(t testing.TB, opts Options) *SQLite {
	t.Helper()
	checkGoroutines(t)
	return openAt(t, filepath.Join(t.TempDir(), "warden.db"), opts)
}

func openAt(t testing.TB, path string, opts Options) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawDB opens a second, ordinary connection to the store's file: the
// "someone with shell access" whose edits Verify must catch, and the
// independent reader that proves events are really in the file.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// indexedDB is rawDB once the index holds every event s acknowledged.
func indexedDB(t testing.TB, s *SQLite) *sql.DB {
	t.Helper()
	if err := s.waitIndexed(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rawDB(t, s.Path())
}

// writerGate holds the writer before each journal append until opened:
// pass gate.wait as Options.beforeAppend.
type writerGate struct {
	open    chan struct{}
	entered chan struct{} // receives once each time the writer reaches the gate
	once    sync.Once
}

func newWriterGate(t testing.TB) *writerGate {
	g := &writerGate{open: make(chan struct{}), entered: make(chan struct{}, 1<<16)}
	t.Cleanup(g.release)
	return g
}

func (g *writerGate) wait() {
	g.entered <- struct{}{}
	<-g.open
}

func (g *writerGate) release() { g.once.Do(func() { close(g.open) }) }

// failJournal makes every journal append of s fail with err until the
// returned function is called.
func failJournal(t testing.TB, s *SQLite, err error) (restore func()) {
	t.Helper()
	s.jw.fault.Store(&err)
	restore = func() { s.jw.fault.Store(nil) }
	t.Cleanup(restore)
	return restore
}

func storedIDs(t testing.TB, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM audit_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func testEvent(i int) *audit.Event {
	return &audit.Event{
		Time:      time.Date(2025, 1, 2, 3, 4, 5, i, time.UTC),
		Kind:      audit.KindStatement,
		SessionID: fmt.Sprintf("sess-%d", i%7),
		Protocol:  "postgres",
		Target:    "prod-db",
		Client:    "127.0.0.1:40000",
		Subject:   fmt.Sprintf("agent-%d", i%3),
		Issuer:    "https://idp.example.com",
		Groups:    []string{"analysts"},
		Request:   fmt.Sprintf("SELECT %d FROM orders", i),
		StmtKind:  "select",
		Decision:  audit.Allow,
		Policy:    "analyst-agents",
		Rule:      "allow[0]",
		Seq:       int64(i),
		Rows:      int64(i % 5),
	}
}

func mustVerify(t testing.TB, s *SQLite, want int64) {
	t.Helper()
	checked, bad, err := s.Verify(context.Background())
	if err != nil || bad != 0 || checked != want {
		t.Fatalf("Verify = (%d, %d, %v), want (%d, 0, nil)", checked, bad, err, want)
	}
}

func TestOpenSettings(t *testing.T) {
	s := openTest(t, Options{})
	db := indexedDB(t, s)
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
	if err := s.Healthy(); err != nil {
		t.Errorf("Healthy = %v", err)
	}
	for _, bad := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(t.TempDir(), "a?b.db")} {
		if s2, err := OpenSQLite(context.Background(), bad, Options{}); err == nil {
			s2.Close()
			t.Errorf("OpenSQLite(%q) succeeded", bad)
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "warden.db")
	for range 3 {
		s, err := OpenSQLite(context.Background(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Record(context.Background(), testEvent(1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
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
	// The chain continues across reopenings.
	if ids := storedIDs(t, db); !slices.Equal(ids, []int64{1, 2, 3}) {
		t.Fatalf("ids = %v", ids)
	}

	// A database from a newer warden is refused, not guessed at.
	if _, err := db.Exec(`INSERT INTO schema_version VALUES (99, 'future')`); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenSQLite(context.Background(), path, Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	full := &audit.Event{
		Time:        time.Date(2025, 6, 7, 8, 9, 10, 120000000, time.FixedZone("CEST", 2*3600)),
		Kind:        audit.KindLoginFailed,
		SessionID:   "s\x00nul",
		Protocol:    "postgres",
		Target:      "prod-db",
		Client:      "[::1]:5432",
		Subject:     "agent-ü",
		Issuer:      "iss",
		Groups:      []string{"a", "b,c", `"quoted"`},
		TokenID:     "jti",
		Request:     "SELECT '\xff\xfe' -- invalid UTF-8 is still stored byte for byte",
		RequestHash: "deadbeef",
		StmtKind:    "select",
		Decision:    audit.Error,
		Policy:      "p",
		Rule:        "r",
		Reason:      "why",
		Error:       "boom",
		Seq:         12,
		Fingerprint: "SELECT $1",
		ParamsHash:  "cafe",
		DurationUS:  1 << 40,
		Rows:        -1, // stored as given, even if the proxy never sends it
		Bytes:       1<<62 + 1,
	}
	noTime := &audit.Event{Kind: audit.KindSessionEnd} // zero time, nil groups
	before := time.Now()
	for _, ev := range []*audit.Event{full, noTime} {
		if err := s.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if full.ID != 1 || noTime.ID != 2 {
		t.Fatalf("ids = %d, %d", full.ID, noTime.ID)
	}
	if full.Time.Location() != time.UTC {
		t.Errorf("Record did not normalise time to UTC: %v", full.Time)
	}
	if noTime.Time.Before(before.Add(-time.Second)) || noTime.Time.After(time.Now()) {
		t.Errorf("zero time filled with %v", noTime.Time)
	}
	got, err := s.Query(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events", len(got))
	}
	if !reflect.DeepEqual(&got[0], full) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got[0], *full)
	}
	if got[1].ID != 2 || !got[1].Time.Equal(noTime.Time) || len(got[1].Groups) != 0 {
		t.Errorf("round trip of minimal event: %#v", got[1])
	}
	mustVerify(t, s, 2)
}

func TestRecordConcurrent(t *testing.T) {
	const workers, each = 50, 100
	s := openTest(t, Options{})
	ctx := context.Background()

	ids := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := testEvent(w*each + i)
				if err := s.Record(ctx, ev); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				ids[w] = append(ids[w], ev.ID)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Each caller's ids increase strictly: an event acknowledged later was
	// committed later.
	var all []int64
	for w, got := range ids {
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("worker %d: ids not increasing: %d then %d", w, got[i-1], got[i])
			}
		}
		all = append(all, got...)
	}
	slices.Sort(all)
	stored := storedIDs(t, indexedDB(t, s))
	if !slices.Equal(all, stored) {
		t.Fatalf("acknowledged ids differ from stored ids (%d vs %d)", len(all), len(stored))
	}
	for i, id := range stored {
		if id != int64(i+1) {
			t.Fatalf("stored ids not contiguous at %d: %d", i, id)
		}
	}

	st := s.Stats()
	t.Logf("stats: %+v (%.1f events/commit)", st, float64(st.Events)/float64(st.Commits))
	if st.Events != workers*each || st.Failures != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if st.Commits >= st.Events {
		t.Fatalf("no group commit: %d commits for %d events", st.Commits, st.Events)
	}
	mustVerify(t, s, workers*each)
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 20
	tests := []struct {
		name    string
		sql     string
		args    []any
		wantBad int64
		checked int64
	}{
		{"edit request", `UPDATE audit_events SET request = 'x' WHERE id = 7`, nil, 7, 6},
		{"edit decision of first", `UPDATE audit_events SET decision = 'allow', rule = 'x' WHERE id = 1`, nil, 1, 0},
		{"edit time", `UPDATE audit_events SET time = '2030-01-01T00:00:00.000000000Z' WHERE id = 12`, nil, 12, 11},
		{"edit groups", `UPDATE audit_events SET groups = '["sre"]' WHERE id = 3`, nil, 3, 2},
		{"undecodable groups", `UPDATE audit_events SET groups = 'not json' WHERE id = 4`, nil, 4, 3},
		{"edit last", `UPDATE audit_events SET subject = 'someone-else' WHERE id = 20`, nil, 20, 19},
		{"replace hash", `UPDATE audit_events SET hash = zeroblob(32) WHERE id = 9`, nil, 9, 8},
		{"edit rows", `UPDATE audit_events SET row_count = row_count + 1 WHERE id = 8`, nil, 8, 7},
		{"edit seq", `UPDATE audit_events SET seq = 99 WHERE id = 2`, nil, 2, 1},
		{"edit fingerprint", `UPDATE audit_events SET fingerprint = 'x' WHERE id = 10`, nil, 10, 9},
		{"downgrade hash version", `UPDATE audit_events SET hash_version = 1 WHERE id = 5`, nil, 5, 4},
		{"unknown hash version", `UPDATE audit_events SET hash_version = 99 WHERE id = 6`, nil, 6, 5},
		{"delete middle", `DELETE FROM audit_events WHERE id = 11`, nil, 11, 10},
		{"delete first", `DELETE FROM audit_events WHERE id = 1`, nil, 1, 0},
		{"delete last", `DELETE FROM audit_events WHERE id = 20`, nil, 20, 19},
		{"truncate tail", `DELETE FROM audit_events WHERE id > 15`, nil, 16, 15},
		{"swap ids", `UPDATE audit_events SET id = -5 WHERE id = 5;
			UPDATE audit_events SET id = 5 WHERE id = 6;
			UPDATE audit_events SET id = 6 WHERE id = -5`, nil, 5, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, Options{})
			ctx := context.Background()
			for i := range n {
				if err := s.Record(ctx, testEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			mustVerify(t, s, n)
			if _, err := indexedDB(t, s).Exec(tt.sql, tt.args...); err != nil {
				t.Fatal(err)
			}
			checked, bad, err := s.Verify(ctx)
			var ce *audit.ChainError
			if !errors.Is(err, audit.ErrChainBroken) || !errors.As(err, &ce) {
				t.Fatalf("Verify err = %v, want a chain error", err)
			}
			if bad != tt.wantBad || ce.ID != tt.wantBad || checked != tt.checked {
				t.Fatalf("Verify = (%d, %d, %v), want (%d, %d, …)", checked, bad, err, tt.checked, tt.wantBad)
			}
		})
	}

	// An edit that recomputes the record's own hash is caught by the next
	// record's link.
	t.Run("edit and rehash", func(t *testing.T) {
		s := openTest(t, Options{})
		ctx := context.Background()
		for i := range n {
			if err := s.Record(ctx, testEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		evs, err := s.Query(ctx, Query{AfterID: 6, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		ev := evs[0]
		ev.Request = "SELECT harmless"
		db := indexedDB(t, s)
		var prev []byte
		if err := db.QueryRow(`SELECT prev_hash FROM audit_events WHERE id = 7`).Scan(&prev); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE audit_events SET request = ?, hash = ? WHERE id = 7`, ev.Request, audit.Hash(prev, &ev)); err != nil {
			t.Fatal(err)
		}
		if checked, bad, err := s.Verify(ctx); bad != 8 || checked != 7 || !errors.Is(err, audit.ErrChainBroken) {
			t.Fatalf("Verify = (%d, %d, %v), want (7, 8, chain error)", checked, bad, err)
		}
	})
}

// lockDB takes SQLite's write lock from another connection and holds it
// until the returned function is called, so the store's writer cannot
// begin a transaction: the way to make commits fail that works as root,
// where read-only files and directories do not stop writes.
func lockDB(t testing.TB, path string) (release func()) {
	t.Helper()
	db := rawDB(t, path)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
				t.Error(err)
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

func TestCommitFailureFailsClosed(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if err := s.Record(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}

	errDisk := errors.New("disk on fire")
	restore := failJournal(t, s, errDisk)
	ev := testEvent(1)
	if err := s.Record(ctx, ev); !errors.Is(err, errDisk) {
		t.Fatalf("Record with a failing journal = %v, want %v", err, errDisk)
	}
	if ev.ID != 0 {
		t.Errorf("failed Record set ID %d", ev.ID)
	}
	if herr := s.Healthy(); !errors.Is(herr, errDisk) {
		t.Fatalf("Healthy = %v after a failed append", herr)
	}
	if st := s.Stats(); st.Failures != 1 || st.Events != 1 {
		t.Fatalf("stats = %+v", st)
	}

	restore()
	if err := s.Record(ctx, testEvent(2)); err != nil {
		t.Fatalf("Record after the journal recovers: %v", err)
	}
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy = %v after a successful commit", err)
	}
	// The failed event left no trace and no gap in the chain.
	if ids := storedIDs(t, indexedDB(t, s)); !slices.Equal(ids, []int64{1, 2}) {
		t.Fatalf("ids = %v", ids)
	}
	mustVerify(t, s, 2)
}

// TestIndexFailureKeepsRecording: a foreign lock on the database stops the
// index, not the audit: Record still acknowledges (the events are in the
// journal), Healthy reports the index failure, readers wait, and once the
// lock is gone the index catches up with every acknowledged event.
func TestIndexFailureKeepsRecording(t *testing.T) {
	s := openTest(t, Options{BusyTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	if err := s.Record(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	release := lockDB(t, s.Path())
	for i := 1; i <= 10; i++ {
		if err := s.Record(ctx, testEvent(i)); err != nil {
			t.Fatalf("Record under a foreign lock on the index: %v", err)
		}
	}
	var serr *sqlite.Error
	waitFor(t, func() bool { return errors.As(s.Healthy(), &serr) })
	if serr.Code()&0xff != sqlite3.SQLITE_BUSY {
		t.Fatalf("Healthy = %v, want SQLITE_BUSY", s.Healthy())
	}
	qctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Query(qctx, Query{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Query while the index lags = %v, want to wait for it", err)
	}
	release()
	evs, err := s.Query(ctx, Query{Limit: 100})
	if err != nil || len(evs) != 11 {
		t.Fatalf("Query after the lock = %d events, %v; want 11", len(evs), err)
	}
	waitFor(t, func() bool { return s.Healthy() == nil })
	mustVerify(t, s, 11)
}

func TestQueueFullWaitsForContext(t *testing.T) {
	gate := newWriterGate(t)
	s := openTest(t, Options{QueueSize: 1, MaxBatch: 1, beforeAppend: gate.wait})
	release := gate.release

	// Two events: one held by the blocked writer, one filling the queue.
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { errs <- s.Record(context.Background(), testEvent(i)) })
	}
	waitFor(t, func() bool { return len(s.queue) == 1 })
	time.Sleep(50 * time.Millisecond) // let the writer take the first one, if it has not
	waitFor(t, func() bool { return len(s.queue) == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Record(ctx, testEvent(3))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record with a full queue = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("Record returned after %v, before its context ended", d)
	}

	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ids := storedIDs(t, indexedDB(t, s)); len(ids) != 2 {
		t.Fatalf("stored %v, want the two acknowledged events only", ids)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	const n = 200
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "warden.db")
	gate := newWriterGate(t)
	s, err := OpenSQLite(context.Background(), path, Options{MaxBatch: 16, beforeAppend: gate.wait})
	if err != nil {
		t.Fatal(err)
	}
	// Hold the writer so events pile up in the queue, then close while
	// they are pending.
	release := gate.release
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = s.Record(context.Background(), testEvent(i)) })
	}
	waitFor(t, func() bool { return len(s.queue) >= n/2 })
	pending := len(s.queue)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(20 * time.Millisecond)
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var ok int
	for i, err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrClosed):
			t.Errorf("event %d: %v", i, err)
		}
	}
	if ok < pending {
		t.Fatalf("%d events acknowledged, but %d were queued at Close", ok, pending)
	}
	if stored := storedIDs(t, rawDB(t, path)); len(stored) != ok {
		t.Fatalf("stored %d events, acknowledged %d", len(stored), ok)
	}
	t.Logf("%d queued at Close, %d acknowledged, %d refused", pending, ok, n-ok)

	if err := s.Record(context.Background(), testEvent(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close = %v, want ErrClosed", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Healthy after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	s2 := openAt(t, path, Options{})
	mustVerify(t, s2, int64(ok))
}

func TestRecordAfterClose(t *testing.T) {
	checkGoroutines(t)
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "w.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ev := testEvent(0)
	if err := s.Record(context.Background(), ev); !errors.Is(err, ErrClosed) || ev.ID != 0 {
		t.Fatalf("Record after Close = %v (id %d), want ErrClosed", err, ev.ID)
	}
}

func TestRecordCancelledContext(t *testing.T) {
	s := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Record(ctx, testEvent(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled context = %v", err)
	}
	if ids := storedIDs(t, indexedDB(t, s)); len(ids) != 0 {
		t.Fatalf("stored %v", ids)
	}
}

func TestQuery(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// 30 events, one second apart; a few with distinct values.
	for i := range 30 {
		ev := testEvent(i)
		ev.Time = base.Add(time.Duration(i) * time.Second)
		if i%10 == 0 {
			ev.Decision, ev.StmtKind, ev.Request = audit.Deny, "delete", fmt.Sprintf("DELETE FROM orders WHERE id = %d", i)
		}
		if i == 29 {
			ev.Kind, ev.Target = audit.KindSessionEnd, "billing"
		}
		if i == 28 {
			ev.Kind = audit.KindResult
		}
		if err := s.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(evs []audit.Event) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		name string
		q    Query
		want []int64
	}{
		{"decision", Query{Decision: audit.Deny}, []int64{1, 11, 21}},
		{"text", Query{Text: "DELETE FROM orders"}, []int64{1, 11, 21}},
		{"text is not a pattern", Query{Text: "SELECT %"}, []int64{}},
		{"subject and decision", Query{Subject: "agent-1", Decision: audit.Deny}, []int64{11}},
		{"kind", Query{Kind: audit.KindSessionEnd}, []int64{30}},
		{"kinds", Query{Kinds: []string{audit.KindSessionEnd, audit.KindResult}}, []int64{29, 30}},
		{"one of kinds", Query{Kinds: []string{audit.KindResult}}, []int64{29}},
		{"kind and kinds", Query{Kind: audit.KindResult, Kinds: []string{audit.KindSessionEnd, audit.KindResult}}, []int64{29}},
		{"kind and disjoint kinds", Query{Kind: audit.KindStatement, Kinds: []string{audit.KindSessionEnd}}, []int64{}},
		{"session", Query{SessionID: "sess-3"}, []int64{4, 11, 18, 25}},
		{"session and kinds", Query{SessionID: "sess-0", Kinds: []string{audit.KindResult, audit.KindStatement}}, []int64{1, 8, 15, 22, 29}},
		{"target", Query{Target: "billing"}, []int64{30}},
		// Since inclusive, Until exclusive; fraction-less and fractional
		// bounds compare as times, not as text.
		{"time range", Query{Since: base.Add(5 * time.Second), Until: base.Add(8 * time.Second)}, []int64{6, 7, 8}},
		{"sub-second bound", Query{Since: base.Add(4500 * time.Millisecond), Limit: 2}, []int64{6, 7}},
		{"cursor", Query{AfterID: 27}, []int64{28, 29, 30}},
		{"newest", Query{Newest: true, Limit: 3}, []int64{30, 29, 28}},
		{"newest before", Query{Newest: true, BeforeID: 3}, []int64{2, 1}},
		{"limit", Query{Subject: "agent-0", Limit: 2}, []int64{1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Query(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !slices.Equal(g, tt.want) {
				t.Fatalf("ids = %v, want %v", g, tt.want)
			}
		})
	}

	// Paging with the cursor visits every event once.
	var seen []int64
	q := Query{Limit: 7}
	for {
		page, err := s.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		seen = append(seen, ids(page)...)
		q.AfterID = page[len(page)-1].ID
	}
	if len(seen) != 30 || seen[0] != 1 || seen[29] != 30 {
		t.Fatalf("paging saw %v", seen)
	}

	// The planner uses the indexes for the common filters.
	var plan string
	row := indexedDB(t, s).QueryRow(`EXPLAIN QUERY PLAN SELECT id FROM audit_events WHERE subject = ? AND time >= ?`, "a", "b")
	var id, parent, notused int
	if err := row.Scan(&id, &parent, &notused, &plan); err != nil {
		t.Fatal(err)
	}
	if want := "audit_events_subject_time"; !strings.Contains(plan, want) {
		t.Errorf("plan %q does not use %s", plan, want)
	}
	row = indexedDB(t, s).QueryRow(`EXPLAIN QUERY PLAN SELECT id FROM audit_events WHERE session_id = ? AND id > ? ORDER BY id`, "a", 1)
	if err := row.Scan(&id, &parent, &notused, &plan); err != nil {
		t.Fatal(err)
	}
	if want := "audit_events_session"; !strings.Contains(plan, want) {
		t.Errorf("plan %q does not use %s", plan, want)
	}
}

// BenchmarkIndex measures the whole cost of an event: acknowledged by the
// journal from many concurrent sessions, then indexed (ns/op includes
// the wait for the index to catch up at the end).
func BenchmarkIndex(b *testing.B) {
	s := openTest(b, Options{ProcessCrashOnly: true})
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ev := testEvent(1)
		for pb.Next() {
			if err := s.Record(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := s.waitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRecordParallel measures acknowledged events per second with
// many concurrent sessions, each waiting for its own event to be durable.
func BenchmarkRecordParallel(b *testing.B) {
	s := openTest(b, Options{})
	ctx := context.Background()
	b.SetParallelism(32) // 32×GOMAXPROCS concurrent sessions
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ev := testEvent(1)
		for pb.Next() {
			if err := s.Record(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(st.Events)/float64(st.Commits), "events/commit")
}

// BenchmarkRecordSerial is one session alone: every event pays a full
// commit (fsync), the latency floor a single client sees.
func BenchmarkRecordSerial(b *testing.B) {
	s := openTest(b, Options{})
	ctx := context.Background()
	ev := testEvent(1)
	for b.Loop() {
		if err := s.Record(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
