package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/store"
)

const foldPolicy = `
policies:
  - name: analysts
    when: '"analysts" in groups'
    allow:
      - target: app
        sql: { select: [public.orders, public.fold_big, public.fold_slow] }
`

// statementRecords returns the subject's statement and result records
// once want accepts them, bounded.
func statementRecords(t *testing.T, e *env, subject string, want func(evs []audit.Event) bool) []audit.Event {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := e.gw.Store.Query(ctx, store.Query{Subject: subject, Kinds: []string{audit.KindStatement, audit.KindResult}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if want(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records never got there: %+v", evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bySeq(evs []audit.Event, seq int64) (stmt, result []audit.Event) {
	for _, ev := range evs {
		if ev.Seq != seq {
			continue
		}
		switch ev.Kind {
		case audit.KindStatement:
			stmt = append(stmt, ev)
		case audit.KindResult:
			result = append(result, ev)
		}
	}
	return stmt, result
}

// A read answered at once is one record: the decision with what the
// statement did (rows, bytes, duration), in the simple and the extended
// protocol. (In os mode: with audit.sync fsync an idle writer takes a
// lone read's decision at once instead, TestIdleSyncNotFolded.) On a busy
// machine a read may take longer than foldDelay and get a result record
// of its own; every read has its result one way or the other, and of
// several quick ones at least one is folded.
func TestReadFoldedIntoOneRecord(t *testing.T) {
	e := newEnvWith(t, foldPolicy, "audit: { sync: os }")
	ctx := context.Background()
	c := e.connect(e.token("fold-1", "analysts"))
	const each = 5
	type read struct {
		request string
		rows    int64
	}
	var reads []read
	for i := 0; i < each; i++ {
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM orders", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
		reads = append(reads, read{"SELECT count(*) FROM orders", 1})
	}
	for i := 0; i < each; i++ {
		rows, err := c.Query(ctx, "SELECT id FROM orders WHERE id <= $1 ORDER BY id", 3)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) != 3 {
			t.Fatalf("ids %v, %v", ids, err)
		}
		reads = append(reads, read{"SELECT id FROM orders WHERE id <= $1 ORDER BY id", 3})
	}
	evs := statementRecords(t, e, "fold-1", func(evs []audit.Event) bool {
		for seq := range int64(len(reads)) {
			stmt, result := bySeq(evs, seq+1)
			if len(stmt) == 0 || stmt[0].Rows == 0 && len(result) == 0 {
				return false
			}
		}
		return true
	})
	folded := map[bool]int{}
	for i, want := range reads {
		seq := int64(i + 1)
		stmt, result := bySeq(evs, seq)
		if len(stmt) != 1 {
			t.Fatalf("seq %d: %d statement records: %+v", seq, len(stmt), evs)
		}
		ev := stmt[0]
		if ev.Request != want.request || ev.Decision != audit.Allow || ev.Rule != "analysts/allow[0]" {
			t.Errorf("seq %d: statement record %+v", seq, ev)
		}
		switch {
		case len(result) == 0:
			folded[i < each]++
			if ev.Rows != want.rows || ev.Bytes <= 0 || ev.DurationUS <= 0 || ev.Error != "" {
				t.Errorf("seq %d: folded record %+v", seq, ev)
			}
		case len(result) == 1:
			if ev.Rows != 0 || result[0].Rows != want.rows || result[0].ID < ev.ID {
				t.Errorf("seq %d: unfolded records %+v, %+v", seq, ev, result[0])
			}
		default:
			t.Errorf("seq %d: %d result records", seq, len(result))
		}
	}
	if folded[true] == 0 || folded[false] == 0 {
		t.Errorf("folded reads: %d of %d simple, %d of %d extended; want some of each", folded[true], each, folded[false], each)
	}
	if _, bad, err := e.gw.Store.Verify(ctx); err != nil || bad != 0 {
		t.Fatalf("chain: bad=%d err=%v", bad, err)
	}
}

// A read that runs long is on record while it runs, and its result is a
// record of its own when it ends. The statement is held by a lock, so
// "long" does not depend on the machine's speed.
func TestSlowReadOnRecordWhileItRuns(t *testing.T) {
	d := direct(t)
	ctx := context.Background()
	if _, err := d.Exec(ctx, "CREATE TABLE IF NOT EXISTS fold_slow (id int)"); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, foldPolicy)
	c := e.connect(e.token("fold-2", "analysts"))
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE fold_slow IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var n int64
		done <- c.QueryRow(ctx, "SELECT count(*) FROM fold_slow", pgx.QueryExecModeSimpleProtocol).Scan(&n)
	}()
	evs := statementRecords(t, e, "fold-2", func(evs []audit.Event) bool { return len(evs) >= 1 })
	select {
	case err := <-done:
		t.Fatalf("the statement finished while the lock was held: %v", err)
	default:
	}
	if evs[0].Kind != audit.KindStatement || evs[0].Request != "SELECT count(*) FROM fold_slow" || evs[0].DurationUS != 0 {
		t.Fatalf("record while running: %+v", evs[0])
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs = statementRecords(t, e, "fold-2", func(evs []audit.Event) bool { return len(evs) >= 2 })
	stmt, result := bySeq(evs, evs[0].Seq)
	if len(stmt) != 1 || len(result) != 1 || result[0].Rows != 1 || result[0].DurationUS <= 0 {
		t.Fatalf("records: %+v", evs)
	}
}

// An answer larger than warden's client buffer has to start reaching the
// client before it is complete: its decision is recorded (durably) first,
// and its result after.
func TestLargeReadRecordedBeforeItFlows(t *testing.T) {
	d := direct(t)
	ctx := context.Background()
	if _, err := d.Exec(ctx, "DROP TABLE IF EXISTS fold_big; CREATE TABLE fold_big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 2000) g"); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, foldPolicy)
	c := e.connect(e.token("fold-3", "analysts"))
	rows, err := c.Query(ctx, "SELECT id, pad FROM fold_big ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if rows.Err() != nil || n != 2000 {
		t.Fatalf("%d rows, %v", n, rows.Err())
	}
	evs := statementRecords(t, e, "fold-3", func(evs []audit.Event) bool { return len(evs) >= 2 })
	stmt, result := bySeq(evs, 1)
	if len(stmt) != 1 || len(result) != 1 || result[0].Rows != 2000 || result[0].Bytes < 2000*200 || stmt[0].Rows != 0 {
		t.Fatalf("records: %+v", evs)
	}
	if stmt[0].ID > result[0].ID {
		t.Fatalf("result recorded before its decision: %+v", evs)
	}
}

// With the audit log gone, a read returns nothing: its answer is held
// until its record is durable, and the record cannot be written.
func TestReadAnswerHeldWithoutAudit(t *testing.T) {
	e := newEnv(t, foldPolicy)
	ctx := context.Background()
	c := e.connect(e.token("fold-4", "analysts"))
	e.gw.Store.Close()
	var id int64
	err := c.QueryRow(ctx, "SELECT id FROM orders ORDER BY id LIMIT 1").Scan(&id)
	if err == nil {
		t.Fatalf("a read answered (id %d) although its audit record could not be written", id)
	}
	if !strings.Contains(err.Error(), "58000") && !strings.Contains(err.Error(), "audit") {
		t.Fatalf("error: %v", err)
	}
}

// With audit.sync fsync and nothing else for the writer to do, a read's
// decision is submitted as the statement is forwarded, so its fdatasync
// overlaps the statement; its result is a record of its own, after it.
// Whether the writer is idle is a matter of timing on a busy machine:
// of several reads, paced, every one has its result and some are not
// folded.
func TestIdleSyncNotFolded(t *testing.T) {
	e := newEnv(t, foldPolicy)
	ctx := context.Background()
	c := e.connect(e.token("fold-5", "analysts"))
	const reads = 5
	for i := 0; i < reads; i++ {
		time.Sleep(30 * time.Millisecond) // let the writer go idle
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM orders", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	evs := statementRecords(t, e, "fold-5", func(evs []audit.Event) bool {
		for seq := int64(1); seq <= reads; seq++ {
			stmt, result := bySeq(evs, seq)
			if len(stmt) == 0 || stmt[0].Rows == 0 && len(result) == 0 {
				return false
			}
		}
		return true
	})
	unfolded := 0
	for seq := int64(1); seq <= reads; seq++ {
		stmt, result := bySeq(evs, seq)
		if len(result) == 1 {
			unfolded++
			if stmt[0].Rows != 0 || result[0].Rows != 1 || result[0].ID < stmt[0].ID {
				t.Errorf("seq %d: %+v, %+v", seq, stmt[0], result[0])
			}
		}
	}
	if unfolded == 0 {
		t.Errorf("every read folded although the writer was idle before each: %+v", evs)
	}
}
