package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// committed lists the event counts of the successful commits in log.
func committed(log *commitLog) []int {
	var n []int
	for _, c := range log.snapshot() {
		if c.err == nil {
			n = append(n, c.events)
		}
	}
	return n
}

// holdLaterSync keeps events recorded with RecordLater unsynced until a
// waited-for event or a reader comes, for the length of the test.
func holdLaterSync(t *testing.T) {
	old := laterSyncDelay
	laterSyncDelay = time.Hour
	t.Cleanup(func() { laterSyncDelay = old })
}

// written waits until the writer has written n events recorded with
// RecordLater without syncing them.
func written(t *testing.T, s *SQLite, n int64) {
	t.Helper()
	waitFor(t, func() bool { return s.laterN.Load() == n })
}

// TestRecordLaterRidesTheNextSync: events nobody waits for are written at
// once but cost no sync of their own; the next waited-for event's sync
// makes them durable with it, in order, in one commit.
func TestRecordLaterRidesTheNextSync(t *testing.T) {
	holdLaterSync(t)
	var commits commitLog
	s := openTest(t, Options{OnCommit: commits.onCommit})
	s.RecordLater(testEvent(0))
	s.RecordLater(testEvent(1))
	written(t, s, 2)
	if got := committed(&commits); len(got) != 0 {
		t.Fatalf("commits before any waited-for event = %v, want none", got)
	}
	if st := s.Stats(); st.Events != 0 {
		t.Fatalf("stats count unsynced events as stored: %+v", st)
	}
	ev := testEvent(2)
	if err := s.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != 3 {
		t.Fatalf("waited-for event got id %d, want 3 (after the two written before it)", ev.ID)
	}
	if got := committed(&commits); !slices.Equal(got, []int{3}) {
		t.Fatalf("commits = %v, want one of 3 events", got)
	}
	if ids := storedIDs(t, indexedDB(t, s)); !slices.Equal(ids, []int64{1, 2, 3}) {
		t.Fatalf("ids = %v", ids)
	}
	mustVerify(t, s, 3)
}

// TestRecordLaterSyncsAlone: with nothing else coming, an event recorded
// with RecordLater is synced and indexed within laterSyncDelay.
func TestRecordLaterSyncsAlone(t *testing.T) {
	var commits commitLog
	s := openTest(t, Options{OnCommit: commits.onCommit})
	s.RecordLater(testEvent(0))
	waitFor(t, func() bool { return s.Stats().Events == 1 })
	if got := committed(&commits); !slices.Equal(got, []int{1}) {
		t.Fatalf("commits = %v", got)
	}
	if ids := storedIDs(t, indexedDB(t, s)); !slices.Equal(ids, []int64{1}) {
		t.Fatalf("ids = %v", ids)
	}
}

// TestRecordLaterReadersSeeIt: a reader sees the events recorded with
// RecordLater before its call without waiting for the timer.
func TestRecordLaterReadersSeeIt(t *testing.T) {
	holdLaterSync(t)
	s := openTest(t, Options{})
	s.RecordLater(testEvent(0))
	written(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := s.Query(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != 1 {
		t.Fatalf("Query = %+v, want the event recorded with RecordLater", evs)
	}
	if n := s.laterN.Load(); n != 0 {
		t.Fatalf("%d events still unsynced after a read", n)
	}
}

// TestRecordLaterLostWithAFailedSync: if the sync that should make them
// durable fails, the unsynced events are cut from the journal with the
// failed group; the chain goes on from the last durable record, in the
// index and after a reopen.
func TestRecordLaterLostWithAFailedSync(t *testing.T) {
	holdLaterSync(t)
	path := filepath.Join(t.TempDir(), "warden.db")
	s, err := OpenSQLite(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Record(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	s.RecordLater(testEvent(1))
	written(t, s, 1)
	errDisk := errors.New("disk on fire")
	restore := failJournal(t, s, errDisk)
	if err := s.Record(ctx, testEvent(2)); !errors.Is(err, errDisk) {
		t.Fatalf("Record with a failing journal = %v", err)
	}
	if n := s.laterN.Load(); n != 0 {
		t.Fatalf("%d unsynced events kept after a failed append", n)
	}
	if herr := s.Healthy(); !errors.Is(herr, errDisk) {
		t.Fatalf("Healthy = %v", herr)
	}
	restore()

	// A failing sync of its own (a reader forces it) loses them the same way.
	s.RecordLater(testEvent(3))
	written(t, s, 1)
	failJournal(t, s, errDisk)
	if _, err := s.Query(ctx, Query{}); err != nil {
		t.Fatal(err)
	}
	if n := s.laterN.Load(); n != 0 {
		t.Fatalf("%d unsynced events kept after a failed sync", n)
	}
	s.jw.fault.Store(nil)

	last := testEvent(4)
	if err := s.Record(ctx, last); err != nil {
		t.Fatal(err)
	}
	if last.ID != 2 {
		t.Fatalf("next durable event got id %d, want 2", last.ID)
	}
	want := []string{testEvent(0).Request, testEvent(4).Request}
	check := func(s *SQLite) {
		t.Helper()
		evs, err := s.Query(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Request)
		}
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("stored %q, want %q", got, w)
		}
		mustVerify(t, s, 2)
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path, Options{})
	check(s2)
	if err := s2.Record(ctx, testEvent(5)); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s2, 3)
}

// TestRecordLaterCrash: events written with RecordLater and never synced
// are in the journal after the process dies (they survive a process
// crash, like everything written in os mode) and recovery indexes them.
func TestRecordLaterSurvivesReopen(t *testing.T) {
	holdLaterSync(t)
	path := filepath.Join(t.TempDir(), "warden.db")
	s, err := OpenSQLite(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.RecordLater(testEvent(0))
	written(t, s, 1)
	// Close syncs them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path, Options{})
	mustVerify(t, s2, 1)
	var _ audit.LaterSink = s2
}

// TestExpectGathersOneSync: while events are expected (audit.Expecter),
// the writer holds a waited-for group for them, so one sync covers all.
func TestExpectGathersOneSync(t *testing.T) {
	old := commitDelay
	commitDelay = time.Minute
	t.Cleanup(func() { commitDelay = old })
	var commits commitLog
	s := openTest(t, Options{OnCommit: commits.onCommit})
	ctx := context.Background()
	s.Expect(1)
	done := make(chan error, 1)
	go func() { done <- s.Record(ctx, testEvent(0)) }()
	// The writer holds the group for the expected event.
	waitFor(t, func() bool { return len(s.queue) == 0 })
	select {
	case err := <-done:
		t.Fatalf("Record returned (%v) while an expected event was still to come", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.Expect(-1)
	p := s.Submit(testEvent(1))
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := committed(&commits); !slices.Equal(got, []int{2}) {
		t.Fatalf("commits = %v, want one group of both", got)
	}
}

// TestExpectWaitIsBounded: an expected event that does not come holds a
// group for commitDelay at most; in os mode nothing waits for it.
func TestExpectWaitIsBounded(t *testing.T) {
	old := commitDelay
	t.Cleanup(func() { commitDelay = old })
	for _, osMode := range []bool{false, true} {
		commitDelay = 30 * time.Millisecond
		if osMode {
			commitDelay = time.Hour // would hang the test if os mode waited
		}
		s := openTest(t, Options{ProcessCrashOnly: osMode})
		s.Expect(1)
		start := time.Now()
		if err := s.Record(context.Background(), testEvent(0)); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); !osMode && took < commitDelay {
			t.Errorf("sync mode: Record returned after %v, before commitDelay", took)
		}
		s.Expect(-1)
	}
}

// TestSyncIdle: in sync mode the store reports idle while nothing is
// queued or being appended, and not while a group is under way; in os
// mode it never does (an append there costs no sync to overlap).
func TestSyncIdle(t *testing.T) {
	gate := newWriterGate(t)
	s := openTest(t, Options{beforeAppend: gate.wait})
	if !s.SyncIdle() {
		t.Fatal("an idle sync-mode store is not SyncIdle")
	}
	done := make(chan error, 1)
	go func() { done <- s.Record(context.Background(), testEvent(0)) }()
	<-gate.entered
	if s.SyncIdle() {
		t.Fatal("SyncIdle while a group is being appended")
	}
	gate.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, s.SyncIdle)

	o := openTest(t, Options{ProcessCrashOnly: true})
	if o.SyncIdle() {
		t.Fatal("an os-mode store reports SyncIdle")
	}
}
