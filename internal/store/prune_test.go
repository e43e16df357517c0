package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

var pruneBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// recordAt records one event per time offset (in seconds after
// pruneBase); event i gets id i+1 in a fresh store.
func recordAt(t testing.TB, s *SQLite, secs ...int) {
	t.Helper()
	for i, sec := range secs {
		ev := testEvent(i)
		ev.Time = pruneBase.Add(time.Duration(sec) * time.Second)
		if err := s.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func seconds(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func storedAnchor(t testing.TB, s *SQLite) anchor {
	t.Helper()
	a, err := readAnchor(context.Background(), s.rdb)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPrune(t *testing.T) {
	const n = 20
	tests := []struct {
		name    string
		secs    []int
		before  time.Duration // after pruneBase
		limit   int64
		deleted int64
	}{
		{"nothing old enough", seconds(n), 0, 0, 0},
		{"prefix", seconds(n), 5 * time.Second, 0, 5},
		{"bound is exclusive", seconds(n), 5*time.Second + 1, 0, 6},
		{"everything", seconds(n), time.Hour, 0, n},
		// Record 3 is newer than the bound: the prefix ends before it even
		// though later records are older, so no hole is cut.
		{"stops at the first newer record", append([]int{0, 1, 3600}, seconds(n-3)...), 10 * time.Second, 0, 2},
		{"limit", seconds(n), 10 * time.Second, 3, 3},
		{"limit larger than the prefix", seconds(n), 4 * time.Second, 10, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, Options{})
			ctx := context.Background()
			recordAt(t, s, tt.secs...)
			before := pruneBase.Add(tt.before)
			deleted, err := s.prune(ctx, before, tt.limit)
			if err != nil || deleted != tt.deleted {
				t.Fatalf("prune = (%d, %v), want (%d, nil)", deleted, err, tt.deleted)
			}
			ids := storedIDs(t, indexedDB(t, s))
			a := storedAnchor(t, s)
			if tt.deleted == 0 {
				if len(ids) != n || a.present {
					t.Fatalf("nothing to prune, but %d records remain and anchor %+v", len(ids), a)
				}
				mustVerify(t, s, n)
				return
			}
			// The records after the deleted prefix, then the prune record.
			want := make([]int64, 0, n)
			for id := tt.deleted + 1; id <= n+1; id++ {
				want = append(want, id)
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("ids = %v, want %v", ids, want)
			}
			if !a.present || a.firstID != tt.deleted+1 {
				t.Fatalf("anchor = %+v, want first id %d", a, tt.deleted+1)
			}
			evs, err := s.Query(ctx, Query{Kind: audit.KindPrune})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].ID != n+1 {
				t.Fatalf("prune records = %+v", evs)
			}
			if got, ok := parseAnchor(evs[0].Request); !ok || got.firstID != a.firstID || string(got.prev) != string(a.prev) {
				t.Fatalf("prune record states %q, anchor is %+v", evs[0].Request, a)
			}
			t.Logf("prune record: %s / %s", evs[0].Request, evs[0].Reason)
			mustVerify(t, s, n-tt.deleted+1)

			// The chain continues, and prunes again from the anchor: the
			// old records, up to the prune record, which is recent and
			// so ends the prefix although the record after it is old.
			recordAt(t, s, 100)
			mustVerify(t, s, n-tt.deleted+2)
			more, err := s.Prune(ctx, pruneBase.Add(2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if want := n - tt.deleted; more != want {
				t.Fatalf("second prune deleted %d, want %d", more, want)
			}
			if more == 0 {
				mustVerify(t, s, 2)
			} else {
				mustVerify(t, s, 3) // prune record, the new event, prune record
			}
		})
	}
}

// TestPruneAll: a chain whose every record is old enough keeps only the
// prune record, and the head moves on from there.
func TestPruneAll(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	recordAt(t, s, 0, 1, 2)
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("Prune = (%d, %v), want 3", n, err)
	}
	// The prune record is newer than the bound but was written after the
	// deletion, so it stays: a chain is never left without its attestation.
	if ids := storedIDs(t, indexedDB(t, s)); !slices.Equal(ids, []int64{4}) {
		t.Fatalf("ids = %v", ids)
	}
	mustVerify(t, s, 1)
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("second Prune = (%d, %v), want 1 (the first prune record)", n, err)
	}
	if ids := storedIDs(t, indexedDB(t, s)); !slices.Equal(ids, []int64{5}) {
		t.Fatalf("ids = %v", ids)
	}
	mustVerify(t, s, 1)
	// An empty log has nothing to prune and no anchor to write.
	empty := openTest(t, Options{})
	if n, err := empty.Prune(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("Prune(empty) = (%d, %v)", n, err)
	}
	if a := storedAnchor(t, empty); a.present {
		t.Fatalf("anchor %+v in an empty log", a)
	}
}

// TestVerifyAfterPrune: the remaining chain is as tamper-evident as a
// whole one, and the anchor is too.
func TestVerifyAfterPrune(t *testing.T) {
	const n, pruned = 20, 5 // records 6..20 and the prune record 21 remain
	tests := []struct {
		name    string
		sql     string
		wantBad int64
	}{
		{"intact", ``, 0},
		{"delete the anchor row", `DELETE FROM audit_chain_anchor`, 1},
		{"delete the first remaining record", `DELETE FROM audit_events WHERE id = 6`, 6},
		{"delete more of the prefix", `DELETE FROM audit_events WHERE id <= 8`, 6},
		{"delete more of the prefix and move the anchor", `
			UPDATE audit_chain_anchor SET first_id = 9, prev_hash = (SELECT hash FROM audit_events WHERE id = 8);
			DELETE FROM audit_events WHERE id <= 8`, 6},
		{"move the anchor back", `UPDATE audit_chain_anchor SET first_id = 3`, 3},
		{"edit the anchor hash", `UPDATE audit_chain_anchor SET prev_hash = zeroblob(32)`, 6},
		{"edit the remaining chain", `UPDATE audit_events SET request = 'x' WHERE id = 12`, 12},
		{"delete the prune record", `DELETE FROM audit_events WHERE id = 21`, 21},
		{"edit the prune record", `UPDATE audit_events SET request = 'first_id=9 prev_hash=' || hex(zeroblob(32)) WHERE id = 21`, 21},
		{"a row below the anchor", `
			CREATE TEMP TABLE copy AS SELECT * FROM audit_events WHERE id = 6;
			UPDATE copy SET id = 3;
			INSERT INTO audit_events SELECT * FROM copy`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, Options{})
			ctx := context.Background()
			recordAt(t, s, seconds(n)...)
			if d, err := s.Prune(ctx, pruneBase.Add(pruned*time.Second)); err != nil || d != pruned {
				t.Fatalf("Prune = (%d, %v)", d, err)
			}
			if tt.sql == "" {
				mustVerify(t, s, n-pruned+1)
				return
			}
			if _, err := indexedDB(t, s).Exec(tt.sql); err != nil {
				t.Fatal(err)
			}
			checked, bad, err := s.Verify(ctx)
			var ce *audit.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, audit.ErrChainBroken) || bad != tt.wantBad || ce.ID != bad {
				t.Fatalf("Verify = (%d, %d, %v), want first bad %d", checked, bad, err, tt.wantBad)
			}
			t.Logf("Verify: %v", err)
		})
	}
}

// TestPruneRefusesBrokenChain: records that do not verify are evidence,
// and Prune does not delete evidence.
func TestPruneRefusesBrokenChain(t *testing.T) {
	const n = 10
	tests := []struct {
		name   string
		sql    string
		before time.Duration
		ok     bool // the damage is outside what is pruned
	}{
		{"edited record in the prefix", `UPDATE audit_events SET request = 'x' WHERE id = 3`, 5 * time.Second, false},
		{"undecodable record in the prefix", `UPDATE audit_events SET groups = 'x' WHERE id = 2`, 5 * time.Second, false},
		{"deleted record in the prefix", `DELETE FROM audit_events WHERE id = 4`, 5 * time.Second, false},
		{"edited first record kept", `UPDATE audit_events SET request = 'x' WHERE id = 6`, 5 * time.Second, false},
		{"truncated tail, pruning everything", `DELETE FROM audit_events WHERE id = 10`, time.Hour, false},
		{"edited record after the prefix", `UPDATE audit_events SET request = 'x' WHERE id = 8`, 5 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, Options{})
			recordAt(t, s, seconds(n)...)
			db := indexedDB(t, s)
			if _, err := db.Exec(tt.sql); err != nil {
				t.Fatal(err)
			}
			before := storedIDs(t, db)
			deleted, err := s.Prune(context.Background(), pruneBase.Add(tt.before))
			if tt.ok {
				if err != nil || deleted != 5 {
					t.Fatalf("Prune = (%d, %v), want 5", deleted, err)
				}
				return
			}
			if !errors.Is(err, audit.ErrChainBroken) || deleted != 0 {
				t.Fatalf("Prune = (%d, %v), want a chain error", deleted, err)
			}
			if after := storedIDs(t, db); !slices.Equal(after, before) {
				t.Fatalf("Prune deleted records of a broken chain: %v -> %v", before, after)
			}
			if a := storedAnchor(t, s); a.present {
				t.Fatalf("anchor written: %+v", a)
			}
		})
	}
}

func TestPruneKindReserved(t *testing.T) {
	s := openTest(t, Options{})
	ev := testEvent(0)
	ev.Kind = audit.KindPrune
	ev.Request = "first_id=2 prev_hash=00"
	if err := s.Record(context.Background(), ev); err == nil {
		t.Fatal("Record accepted a prune record")
	}
	if err := s.Submit(ev).Wait(); err == nil {
		t.Fatal("Submit accepted a prune record")
	}
	if ids := storedIDs(t, indexedDB(t, s)); len(ids) != 0 {
		t.Fatalf("stored %v", ids)
	}
}

func TestPruneContextAndClose(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	s, err := OpenSQLite(ctx, t.TempDir()+"/w.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	recordAt(t, s, 0, 1, 2)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := s.Prune(cctx, time.Now()); !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("Prune(cancelled) = (%d, %v)", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx, time.Now()); !errors.Is(err, ErrClosed) || n != 0 {
		t.Fatalf("Prune after Close = (%d, %v), want ErrClosed", n, err)
	}
}

// TestPruneConcurrentWithRecord: pruning shares the writer with Record;
// the chain stays whole and every acknowledged, unpruned event is there.
func TestPruneConcurrentWithRecord(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	const workers, each = 8, 50
	var wg, pruner sync.WaitGroup
	done := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := testEvent(w*each + i)
				ev.Time = time.Time{} // now, as the proxy records
				if err := s.Record(ctx, ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Prune everything so far, in small steps, while records arrive.
	var pruned, pruneRecords int64
	pruner.Go(func() {
		for {
			n, err := s.prune(ctx, time.Now(), 7)
			if err != nil {
				t.Error(err)
				return
			}
			pruned += n
			if n > 0 {
				pruneRecords++
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	wg.Wait()
	close(done)
	pruner.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if pruned == 0 {
		t.Fatal("nothing pruned")
	}
	checked, bad, err := s.Verify(ctx)
	if err != nil || bad != 0 {
		t.Fatalf("Verify = (%d, %d, %v)", checked, bad, err)
	}
	prunes, err := s.Query(ctx, Query{Kind: audit.KindPrune, Limit: MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	statements, err := s.Query(ctx, Query{Kind: audit.KindStatement, Limit: MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	// Every record written is either pruned or still there.
	if checked != int64(len(prunes)+len(statements)) || pruned+checked != workers*each+pruneRecords {
		t.Fatalf("%d records verify (%d statements, %d prune records); %d statements and %d prune records written, %d pruned",
			checked, len(statements), len(prunes), workers*each, pruneRecords, pruned)
	}
	t.Logf("pruned %d records (statements and prune records) of %d statements; %d statements and %d prune records remain",
		pruned, workers*each, len(statements), len(prunes))
}

// TestRetentionPruner: with Options.Retention the store prunes by itself,
// and Close stops the pruner (checkGoroutines).
func TestRetentionPruner(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	path := t.TempDir() + "/w.db"
	// A log written while retention was off (records with old times
	// written after a prune record would wait for it to age: prefixes only).
	s := openAt(t, path, Options{})
	now := time.Now()
	for i, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, 2 * time.Hour, time.Minute, 0} {
		ev := testEvent(i)
		ev.Time = now.Add(-age)
		if err := s.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, Options{Retention: time.Hour, PruneInterval: 10 * time.Millisecond})
	waitFor(t, func() bool {
		evs, err := s.Query(ctx, Query{Limit: 1})
		return err == nil && len(evs) == 1 && evs[0].ID == 4
	})
	mustVerify(t, s, 3) // records 4 and 5, and the prune record
	if a := storedAnchor(t, s); a.firstID != 4 {
		t.Fatalf("anchor = %+v", a)
	}
	// Later runs find nothing more to do and write nothing.
	time.Sleep(50 * time.Millisecond)
	mustVerify(t, s, 3)
}

// TestCloseDuringPrune: Close cancels a background prune in progress; the
// prune then deletes nothing or commits whole, and the chain verifies.
func TestCloseDuringPrune(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	path := t.TempDir() + "/w.db"
	s := openAt(t, path, Options{})
	const workers, each = 40, 100 // 4,000 records: two pruneChunks
	old := time.Now().Add(-48 * time.Hour)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := testEvent(w*each + i)
				ev.Time = old
				if err := s.Record(ctx, ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
		p := openAt(t, path, Options{Retention: time.Hour, PruneInterval: time.Millisecond})
		time.Sleep(wait)
		start := time.Now()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("after %v: Close took %v", wait, time.Since(start))
	}
	s = openAt(t, path, Options{})
	checked, bad, err := s.Verify(ctx)
	if err != nil || bad != 0 {
		t.Fatalf("Verify = (%d, %d, %v)", checked, bad, err)
	}
	// Whatever was pruned went in whole chunks, each with its record.
	prunes, err := s.Query(ctx, Query{Kind: audit.KindPrune})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(workers*each - len(prunes)*pruneChunk + len(prunes)); checked != want {
		t.Fatalf("%d records remain after %d prunes, want %d", checked, len(prunes), want)
	}
	t.Logf("%d records remain after %d prunes", checked, len(prunes))
}
