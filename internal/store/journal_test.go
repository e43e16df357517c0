package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// crashCopy copies the store's files (database, WAL, journal) to a fresh
// directory while the index is held by a foreign lock: what a kill -9
// leaves behind with acknowledged events in the journal and not yet in
// the index. It returns the database path of the copy.
func crashCopy(t *testing.T, s *SQLite) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, s.Path(), dst)
	if _, err := os.Stat(s.Path() + "-wal"); err == nil {
		copyFile(t, s.Path()+"-wal", dst+"-wal")
	}
	ents, err := os.ReadDir(journalDir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(journalDir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "LOCK" {
			copyFile(t, filepath.Join(journalDir(s.Path()), e.Name()), filepath.Join(journalDir(dst), e.Name()))
		}
	}
	return dst
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// lastSegment returns the path of the newest journal segment of db.
func lastSegment(t *testing.T, db string) string {
	t.Helper()
	j := &journal{dir: journalDir(db)}
	seqs, err := j.segments()
	if err != nil || len(seqs) == 0 {
		t.Fatalf("segments = %v, %v", seqs, err)
	}
	return filepath.Join(j.dir, segmentName(seqs[len(seqs)-1]))
}

// recordUnindexed records n events (ids from+1 …) while a foreign lock
// keeps them out of the index, and returns a crash copy of the store.
func recordUnindexed(t *testing.T, s *SQLite, from, n int) string {
	t.Helper()
	release := lockDB(t, s.Path())
	for i := from; i < from+n; i++ {
		if err := s.Record(context.Background(), testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	dst := crashCopy(t, s)
	release()
	return dst
}

// TestJournalRecovery: events acknowledged but not indexed when warden
// died are indexed at the next open; a torn tail (an append cut short,
// never acknowledged) is dropped, whatever the tear looks like; the chain
// verifies across what was indexed before and what recovery indexed, and
// continues.
func TestJournalRecovery(t *testing.T) {
	tears := []struct {
		name string
		tear func(seg []byte) []byte
		kept int // of the 20 unindexed events
	}{
		{"clean", func(b []byte) []byte { return b }, 20},
		{"partial frame header", func(b []byte) []byte { return append(b, 0x40, 0x01, 0, 0, 7) }, 20},
		{"partial payload", func(b []byte) []byte {
			rec := appendRecord(nil, mustChained(t, 99))
			return append(b, rec[:len(rec)/2]...)
		}, 20},
		{"last record's checksum", func(b []byte) []byte {
			b = slices.Clone(b)
			b[len(b)-1] ^= 0xff
			return b
		}, 19},
		{"zeros after the records", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, 20},
	}
	for _, tt := range tears {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			s := openAt(t, filepath.Join(t.TempDir(), "w.db"), Options{BusyTimeout: 20 * time.Millisecond})
			for i := range 5 {
				if err := s.Record(context.Background(), testEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.waitIndexed(context.Background()); err != nil {
				t.Fatal(err)
			}
			crashed := recordUnindexed(t, s, 5, 20)
			if ids := storedIDs(t, rawDB(t, crashed)); len(ids) != 5 {
				t.Fatalf("the crash copy's index holds %v, want the 5 indexed before the lock", ids)
			}
			seg := lastSegment(t, crashed)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seg, tt.tear(data), 0o600); err != nil {
				t.Fatal(err)
			}

			r := openAt(t, crashed, Options{})
			want := 5 + int64(tt.kept)
			if ids := storedIDs(t, rawDB(t, crashed)); int64(len(ids)) != want || ids[len(ids)-1] != want {
				t.Fatalf("after recovery the index holds %d ids (last %v), want 1..%d", len(ids), ids[len(ids)-1:], want)
			}
			mustVerify(t, r, want)
			ev := testEvent(1000)
			if err := r.Record(context.Background(), ev); err != nil || ev.ID != want+1 {
				t.Fatalf("Record after recovery = id %d, %v; want %d", ev.ID, err, want+1)
			}
			mustVerify(t, r, want+1)
			evs, err := r.Query(context.Background(), Query{AfterID: 5, Limit: 1})
			if err != nil || len(evs) != 1 || evs[0].Request != testEvent(5).Request {
				t.Fatalf("recovered event 6 = %+v, %v", evs, err)
			}
		})
	}
}

// mustChained returns a request for testEvent(i) with id i+1 and some
// chain link, as the writer would journal it.
func mustChained(t testing.TB, i int) *request {
	t.Helper()
	req, err := newRequest(context.Background(), testEvent(i))
	if err != nil {
		t.Fatal(err)
	}
	req.ev.ID = int64(i) + 1
	req.version = audit.HashVersion
	req.prev = audit.GenesisHash
	req.hash = audit.Hash(req.prev, &req.ev)
	return req
}

// chain returns requests for testEvent(from) … testEvent(from+n-1) with
// ids and links continuing (id, prev).
func chain(t testing.TB, id int64, prev []byte, from, n int) []*request {
	t.Helper()
	var out []*request
	for i := from; i < from+n; i++ {
		req, err := newRequest(context.Background(), testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		id++
		req.ev.ID, req.version, req.prev = id, audit.HashVersion, prev
		req.hash = audit.Hash(prev, &req.ev)
		prev = req.hash
		out = append(out, req)
	}
	return out
}

func writeSegment(t *testing.T, db string, seq uint64, reqs []*request) {
	t.Helper()
	b := []byte(journalMagic)
	for _, r := range reqs {
		b = appendRecord(b, r)
	}
	if err := os.WriteFile(filepath.Join(journalDir(db), segmentName(seq)), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// emptyStore creates a store at a fresh path, closes it and removes its
// journal segments, for a test to write its own.
func emptyStore(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "w.db")
	s, err := OpenSQLite(context.Background(), db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	j := &journal{dir: journalDir(db)}
	seqs, _ := j.segments()
	for _, seq := range seqs {
		os.Remove(filepath.Join(j.dir, segmentName(seq)))
	}
	return db
}

// TestJournalLaterSegmentWins: after a failed append the writer starts a
// new segment and reuses the failed group's ids; if the failed group's
// bytes did reach the old segment, recovery takes the new segment's
// records, which are the acknowledged ones.
func TestJournalLaterSegmentWins(t *testing.T) {
	db := emptyStore(t)
	first := chain(t, 0, audit.GenesisHash, 0, 3)
	failed := chain(t, 3, first[2].hash, 100, 2) // ids 4, 5: written, never acknowledged
	retried := chain(t, 3, first[2].hash, 200, 3)
	writeSegment(t, db, 7, append(slices.Clone(first), failed...))
	writeSegment(t, db, 8, retried)

	s := openAt(t, db, Options{})
	mustVerify(t, s, 6)
	evs, err := s.Query(context.Background(), Query{AfterID: 3})
	if err != nil || len(evs) != 3 {
		t.Fatalf("Query = %d, %v", len(evs), err)
	}
	for i, ev := range evs {
		if ev.Request != testEvent(200+i).Request {
			t.Fatalf("record %d = %q, want the later segment's", ev.ID, ev.Request)
		}
	}
	// The segments recovery read go once a checkpoint has made the index
	// durable; a fresh one replaces them.
	j := &journal{dir: journalDir(db)}
	waitFor(t, func() bool {
		seqs, _ := j.segments()
		return slices.Equal(seqs, []uint64{9})
	})
}

// TestJournalRefusesBrokenChain: a journal whose records do not continue
// the index's chain (edited, or from another database) is not indexed: the
// store refuses to open rather than fork the chain.
func TestJournalRefusesBrokenChain(t *testing.T) {
	for _, tt := range []struct {
		name string
		recs func() []*request
	}{
		{"wrong link", func() []*request { return chain(t, 0, bytes.Repeat([]byte{1}, audit.HashSize), 0, 3) }},
		{"gap", func() []*request { return chain(t, 1, audit.GenesisHash, 0, 3) }},
		{"edited record", func() []*request {
			r := chain(t, 0, audit.GenesisHash, 0, 3)
			r[1].ev.Request = "SELECT harmless" // hash no longer matches; the frame's checksum does
			return r
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := emptyStore(t)
			writeSegment(t, db, 1, tt.recs())
			s, err := OpenSQLite(context.Background(), db, Options{})
			if err == nil {
				s.Close()
				t.Fatal("OpenSQLite accepted a journal that breaks the chain")
			}
			if !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("OpenSQLite = %v, want a chain error", err)
			}
		})
	}
}

// TestJournalFollower: a second store on the same database while the
// first owns the journal (a CLI next to a running gateway) reads what is
// indexed and refuses to extend the chain; once the owner is closed, it
// can open as the owner.
func TestJournalFollower(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	for i := range 3 {
		if err := s.Record(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.waitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	f := openAt(t, s.Path(), Options{})
	if err := f.Record(ctx, testEvent(9)); !errors.Is(err, ErrFollower) {
		t.Fatalf("follower Record = %v, want ErrFollower", err)
	}
	if _, err := f.Prune(ctx, time.Now()); !errors.Is(err, ErrFollower) {
		t.Fatalf("follower Prune = %v, want ErrFollower", err)
	}
	mustVerify(t, f, 3)
	if err := f.Revoke(ctx, "agent-7", "admin", "test"); err != nil {
		t.Fatalf("follower Revoke = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	o := openAt(t, s.Path(), Options{})
	if err := o.Record(ctx, testEvent(10)); err != nil {
		t.Fatalf("Record after the owner closed = %v", err)
	}
	mustVerify(t, o, 4)
}

// TestQueriesSeeAcknowledged: whatever the index's lag, a read started
// after Record returned finds the event.
func TestQueriesSeeAcknowledged(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				ev := testEvent(g*1000 + i)
				ev.SessionID = "q-" + string(rune('a'+g))
				if err := s.Record(ctx, ev); err != nil {
					errs <- err
					return
				}
				evs, err := s.Query(ctx, Query{SessionID: ev.SessionID, Newest: true, Limit: 1})
				if err != nil {
					errs <- err
					return
				}
				if len(evs) != 1 || evs[0].ID != ev.ID {
					errs <- errors.New("Query after Record does not return the event")
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(t, s, 400)
}

// TestPruneWithJournal: a prune record lives in the index only; records
// journalled after it continue its chain, and recovery of a journal that
// straddles it (ids jump past the prune record) verifies.
func TestPruneWithJournal(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "w.db"), Options{BusyTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	for i := range 10 {
		if err := s.Record(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Prune(ctx, testEvent(5).Time)
	if err != nil || n != 5 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	crashed := recordUnindexed(t, s, 20, 5) // ids 12..16, after prune record 11
	mustVerify(t, s, 5+1+5)

	r := openAt(t, crashed, Options{})
	mustVerify(t, r, 11)
	ev := testEvent(30)
	if err := r.Record(ctx, ev); err != nil || ev.ID != 17 {
		t.Fatalf("Record after recovery = id %d, %v; want 17", ev.ID, err)
	}
	mustVerify(t, r, 12)
}

// TestJournalSegments: the writer moves to a new segment as each fills;
// indexed segments are deleted; a crash with several unindexed segments
// recovers all of them.
func TestJournalSegments(t *testing.T) {
	old := segmentSize
	t.Cleanup(func() { segmentSize = old }) // after the store's Close
	segmentSize = 4 << 10
	s := openAt(t, filepath.Join(t.TempDir(), "w.db"), Options{BusyTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	for i := range 100 {
		if err := s.Record(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every filled segment goes once indexed (the current one stays, and
	// perhaps the next one, prepared).
	j := &journal{dir: journalDir(s.Path())}
	waitFor(t, func() bool {
		s.jw.mu.Lock()
		closed := len(s.jw.closed)
		s.jw.mu.Unlock()
		seqs, _ := j.segments()
		return closed == 0 && len(seqs) <= 2
	})
	crashed := recordUnindexed(t, s, 100, 100)
	cj := &journal{dir: journalDir(crashed)}
	if seqs, _ := cj.segments(); len(seqs) < 3 {
		t.Fatalf("crash copy has segments %v, want several", seqs)
	}
	r := openAt(t, crashed, Options{})
	mustVerify(t, r, 200)
	if ids := storedIDs(t, rawDB(t, crashed)); len(ids) != 200 {
		t.Fatalf("recovered %d records, want 200", len(ids))
	}
}

// FuzzDecodeRecord: the journal decoder takes any bytes (a torn or
// damaged segment) without panicking, and what it accepts re-encodes to a
// record that decodes to the same thing.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, mustChained(f, 1)))
	r := mustChained(f, 2)
	r.ev.Groups, r.groups = nil, "[]"
	f.Add(appendRecord(nil, r))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errTorn) {
				t.Fatalf("error %v is not errTorn", err)
			}
			return
		}
		if n < frameHeaderSize || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		again, m, err := decodeRecord(appendRecord(nil, req))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if m == 0 || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip differs:\n%+v\n%+v", req, again)
		}
	})
}

// BenchmarkWriteIndex measures the index alone: inserting journalled
// events in transactions of 4096, as the indexer does under load.
func BenchmarkWriteIndex(b *testing.B) {
	s := openTest(b, Options{})
	reqs := chain(b, 0, audit.GenesisHash, 0, b.N)
	b.ResetTimer()
	// The indexer goroutine is idle (nothing recorded), so the benchmark
	// may use its connection.
	for len(reqs) > 0 {
		n := min(len(reqs), 4096)
		if err := s.writeIndex(reqs[:n]); err != nil {
			b.Fatal(err)
		}
		reqs = reqs[n:]
	}
}
