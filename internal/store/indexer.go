package store

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// ErrFollower is returned (wrapped) by Record, Submit's Pending and Prune
// on a store opened while another process owns its audit journal (see
// the comment at the top of journal.go): only the owner extends the chain.
var ErrFollower = errors.New("store: the audit journal is owned by another process; this store can only read")

// The indexer is the goroutine that owns the SQLite write connection. It
// inserts the events the writer has appended to the journal (and
// acknowledged) into audit_events, in large transactions that also move
// audit_chain_head, and runs the other writes (reviews, revocations, and
// Prune, which the writer hands over behind the batches before it), in
// order. Readers that must see every acknowledged event (Query, Verify,
// Export) first wait until the index has reached the last id acknowledged
// when they were called.

const (
	// maxBacklog bounds the events handed to the indexer and not yet
	// indexed. When it is reached the writer waits, so memory stays
	// bounded and a reader never waits for more than about this many
	// events to be indexed.
	maxBacklog = 1 << 15

	// maxIndexBatch bounds the events inserted in one transaction.
	maxIndexBatch = 8192

	// multiRows is the number of rows one multi-row INSERT carries.
	multiRows = 32

	// indexLinger is how long the indexer lets a small batch grow before
	// it writes it, unless a reader or a job is waiting for it. Every
	// index transaction rewrites the leaf pages it touches (the table's
	// and three indexes'), so ten events in one transaction cost little
	// more than one; a few milliseconds of lag, which no reader sees,
	// buys transactions of thousands of events under load.
	indexLinger = 25 * time.Millisecond

	// lingerBatch is the backlog at which the indexer stops lingering.
	lingerBatch = 4096
)

// indexItem is one unit of the indexer's work: a batch of journalled
// events, or a job.
type indexItem struct {
	reqs []*request
	job  *job
}

// indexer is the queue between the writer (and job callers) and the
// indexer goroutine.
type indexer struct {
	mu   sync.Mutex
	cond sync.Cond // on mu: items added, backlog freed, writer exited

	items       []indexItem
	backlog     int   // events in items or being indexed
	writerGone  bool  // the writer has exited: no more batches
	stopped     bool  // the indexer goroutine has exited: items are refused
	indexed     int64 // highest id known to be in the index
	indexErr    error // the last index transaction's error; nil after a success
	advanced    chan struct{}
	stoppedOnce bool

	waiters int  // readers in waitIndexed: write now
	jobs    int  // jobs in items: write now
	expired bool // the linger timer has fired
}

func newIndexer(indexed int64) *indexer {
	ix := &indexer{indexed: indexed, advanced: make(chan struct{})}
	ix.cond.L = &ix.mu
	return ix
}

// add queues it. A batch waits while the backlog is full. If the indexer
// has stopped, a batch is dropped (it is in the journal, and is indexed at
// the next open) and a job is answered with ErrClosed.
func (ix *indexer) add(it indexItem) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for it.reqs != nil && ix.backlog >= maxBacklog && !ix.stopped {
		ix.cond.Wait()
	}
	if ix.stopped {
		if it.job != nil {
			it.job.reply <- ErrClosed
		}
		return
	}
	ix.items = append(ix.items, it)
	ix.backlog += len(it.reqs)
	if it.job != nil {
		ix.jobs++
	}
	// Wake the indexer only when this can end its wait: the first item,
	// a job, or a backlog that stops the linger. Waking it for every
	// group it then lingers on costs a goroutine switch per commit.
	if len(ix.items) == 1 || it.job != nil || ix.backlog >= lingerBatch {
		ix.cond.Broadcast()
	}
}

func (ix *indexer) writerExited() {
	ix.mu.Lock()
	ix.writerGone = true
	ix.cond.Broadcast()
	ix.mu.Unlock()
}

// take waits for work and returns all of it; ok is false once the writer
// has exited and nothing is left.
// A small batch is left to grow for up to indexLinger, unless someone is
// waiting for it.
func (ix *indexer) take() (items []indexItem, ok bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for len(ix.items) == 0 && !ix.writerGone {
		ix.cond.Wait()
	}
	if ix.lingering() {
		ix.expired = false
		t := time.AfterFunc(indexLinger, func() {
			ix.mu.Lock()
			ix.expired = true
			ix.cond.Broadcast()
			ix.mu.Unlock()
		})
		for ix.lingering() && !ix.expired {
			ix.cond.Wait()
		}
		t.Stop()
	}
	// All the jobs that do not touch the chain (reviews, revocations):
	// they do not depend on the events, and an operator's revocation must
	// not wait behind a backlog of them. Batches and chain jobs in order,
	// up to about one transaction's worth, so a job queued meanwhile waits
	// for one transaction at most.
	var rest []indexItem
	n := 0
	ix.jobs = 0
	for _, it := range ix.items {
		switch {
		case it.job != nil && it.job.head == nil:
			items = append(items, it)
		case n < maxIndexBatch:
			items = append(items, it)
			n += len(it.reqs)
		default:
			rest = append(rest, it)
			if it.job != nil {
				ix.jobs++
			}
		}
	}
	ix.items = rest
	return items, len(items) > 0
}

// lingering reports whether the indexer may wait for more events.
func (ix *indexer) lingering() bool {
	return !ix.writerGone && ix.waiters == 0 && ix.jobs == 0 && ix.backlog < lingerBatch
}

// done records that the events of a batch, up to id, are in the index (or
// were given up on, with id 0).
func (ix *indexer) done(n int, id int64, err error) {
	ix.mu.Lock()
	ix.backlog -= n
	ix.indexErr = err
	if id > ix.indexed {
		ix.indexed = id
		close(ix.advanced)
		ix.advanced = make(chan struct{})
	}
	ix.cond.Broadcast()
	ix.mu.Unlock()
}

func (ix *indexer) setErr(err error) {
	ix.mu.Lock()
	ix.indexErr = err
	ix.mu.Unlock()
}

func (ix *indexer) err() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.indexErr
}

// stop marks the indexer gone: pending and future items are refused.
func (ix *indexer) stop() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.stopped = true
	for _, it := range ix.items {
		if it.job != nil {
			it.job.reply <- ErrClosed
		}
	}
	ix.items = nil
	if !ix.stoppedOnce {
		ix.stoppedOnce = true
		close(ix.advanced)
		ix.advanced = make(chan struct{})
	}
	ix.cond.Broadcast()
}

// waitIndexed returns once every event acknowledged before the call is in
// the index, so a read sees it. It fails if ctx ends first or the indexer
// has stopped short of it.
func (s *SQLite) waitIndexed(ctx context.Context) error {
	if s.laterN.Load() > 0 {
		// Events recorded with RecordLater before the call are to be seen
		// too: have the writer sync them now rather than by its timer.
		done := make(chan struct{})
		select {
		case s.syncReq <- done:
			select {
			case <-done:
			case <-s.writerDone:
			case <-ctx.Done():
				return fmt.Errorf("waiting for the audit journal's sync: %w", context.Cause(ctx))
			}
		case <-s.writerDone:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the audit journal's sync: %w", context.Cause(ctx))
		}
	}
	target := s.acked.Load()
	registered := false
	defer func() {
		if registered {
			s.ix.mu.Lock()
			s.ix.waiters--
			s.ix.mu.Unlock()
		}
	}()
	for {
		s.ix.mu.Lock()
		indexed, stopped, ch := s.ix.indexed, s.ix.stopped, s.ix.advanced
		if indexed < target && !registered {
			registered = true
			s.ix.waiters++
			s.ix.cond.Broadcast() // end the indexer's linger
		}
		s.ix.mu.Unlock()
		if indexed >= target {
			return nil
		}
		if stopped {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the audit index to reach record %d: %w", target, context.Cause(ctx))
		}
	}
}

// indexRetry bounds the wait between attempts at a failing index write.
const (
	indexRetryMin = 10 * time.Millisecond
	indexRetryMax = time.Second
)

// runIndexer is the indexer goroutine (see above). It is started by
// OpenSQLite and waited for by Close (via indexerDone). It exits once the
// writer has exited and everything queued is done; if an index write keeps
// failing after Close began, it gives up (the events stay in the journal).
func (s *SQLite) runIndexer() {
	defer close(s.indexerDone)
	defer s.ix.stop()
	for {
		items, ok := s.ix.take()
		if !ok {
			return
		}
		// Jobs that do not touch the chain go first (see take).
		rest := items[:0]
		for _, it := range items {
			if it.job != nil && it.job.head == nil {
				it.job.reply <- s.runJob(it.job)
				continue
			}
			rest = append(rest, it)
		}
		items = rest
		for i := 0; i < len(items); {
			if j := items[i].job; j != nil {
				j.reply <- s.runJob(j)
				i++
				continue
			}
			// Consecutive batches go into one transaction, up to
			// maxIndexBatch events.
			var reqs []*request
			for i < len(items) && items[i].job == nil && (len(reqs) == 0 || len(reqs)+len(items[i].reqs) <= maxIndexBatch) {
				reqs = append(reqs, items[i].reqs...)
				i++
			}
			if !s.indexWithRetry(reqs) {
				s.ix.stop()
				for _, it := range items[i:] {
					if it.job != nil {
						it.job.reply <- ErrClosed
					}
				}
				return
			}
		}
	}
}

// indexWithRetry writes reqs to the index, retrying with backoff until it
// succeeds; it returns false if it gives up because the store is closing.
func (s *SQLite) indexWithRetry(reqs []*request) bool {
	wait := indexRetryMin
	for {
		err := s.writeIndex(reqs)
		if err == nil {
			s.ix.done(len(reqs), reqs[len(reqs)-1].ev.ID, nil)
			return true
		}
		s.ix.setErr(fmt.Errorf("store: index: %w", err))
		s.log.Error("audit index write failed; events are in the journal, retrying", "events", len(reqs), "err", err)
		select {
		case <-s.closing:
			s.ix.done(len(reqs), 0, fmt.Errorf("store: index: %w", err))
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, indexRetryMax)
	}
}

// writeIndex inserts reqs (contiguous ids, chained) into audit_events in
// one transaction and moves audit_chain_head to the last of them. Events
// the index already holds (a retry after a commit whose outcome was
// unknown) are skipped if they are the same records.
func (s *SQLite) writeIndex(reqs []*request) (err error) {
	for len(reqs) > 0 {
		n := min(len(reqs), maxIndexBatch)
		if err := s.writeIndexTx(reqs[:n]); err != nil {
			return err
		}
		reqs = reqs[n:]
	}
	return nil
}

func (s *SQLite) writeIndexTx(reqs []*request) error {
	// The indexer talks to the driver directly: database/sql would
	// convert and copy every one of the 28 arguments of every row again.
	ctx := context.Background()
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error { return s.writeIndexRaw(ctx, dc, reqs) })
}

// rawConn is what the indexer needs of the driver's connection.
type rawConn interface {
	driver.ExecerContext
	driver.QueryerContext
	driver.ConnPrepareContext
}

// rawInsert is the indexer's prepared multi-row INSERT on one driver
// connection, with its reusable argument slice.
type rawInsert struct {
	conn      any
	one, many driver.StmtExecContext
	args      []driver.NamedValue
}

func (s *SQLite) writeIndexRaw(ctx context.Context, dc any, reqs []*request) (err error) {
	c, ok := dc.(rawConn)
	if !ok {
		return fmt.Errorf("driver connection %T lacks ExecerContext, QueryerContext or ConnPrepareContext", dc)
	}
	ins, err := s.rawInsertFor(ctx, c)
	if err != nil {
		return err
	}
	exec := func(q string, args ...driver.NamedValue) error {
		_, err := c.ExecContext(ctx, q, args)
		return err
	}
	// The index is not the durable record: the journal is, and keeps the
	// events until a checkpoint has synced the index past them. So index
	// transactions skip the fsync that jobs (reviews, revocations, Prune)
	// keep under synchronous=FULL.
	if s.syncMode() != "NORMAL" {
		if err := exec("PRAGMA synchronous=NORMAL"); err != nil {
			return fmt.Errorf("set synchronous: %w", err)
		}
		defer func() {
			if rerr := exec("PRAGMA synchronous=" + s.syncMode()); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restore synchronous: %w", rerr))
			}
		}()
	}
	if err := exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = exec("ROLLBACK") // the write error is the one worth reporting
		}
	}()
	headID, headHash, err := readHeadRaw(ctx, c)
	if err != nil {
		return err
	}
	for len(reqs) > 0 && reqs[0].ev.ID <= headID {
		if reqs[0].ev.ID == headID && !bytes.Equal(reqs[0].hash, headHash) {
			return fmt.Errorf("index holds a different record %d: %w", headID, audit.ErrChainBroken)
		}
		reqs = reqs[1:]
	}
	if len(reqs) == 0 {
		return nil // rolled back: nothing to add
	}
	if first := reqs[0]; first.ev.ID != headID+1 || !bytes.Equal(first.prev, headHash) {
		return fmt.Errorf("record %d does not continue the index's chain at %d: %w", first.ev.ID, headID, audit.ErrChainBroken)
	}
	last := reqs[len(reqs)-1]
	for len(reqs) > 0 {
		stmt, n := ins.one, 1
		if len(reqs) >= multiRows {
			stmt, n = ins.many, multiRows
		}
		args := ins.args[:n*insertArgs]
		for i, req := range reqs[:n] {
			setArgs(args[i*insertArgs:(i+1)*insertArgs], req)
		}
		_, err := stmt.ExecContext(ctx, args)
		for i := range args {
			args[i].Value = nil // do not pin the events
		}
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		reqs = reqs[n:]
	}
	if err := exec(updateHead, driver.NamedValue{Ordinal: 1, Value: last.ev.ID}, driver.NamedValue{Ordinal: 2, Value: last.hash}); err != nil {
		return fmt.Errorf("update chain head: %w", err)
	}
	if err := exec("COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

// rawInsertFor returns the indexer's INSERT statements prepared on c,
// preparing them when c is new (the pool replaced its connection).
func (s *SQLite) rawInsertFor(ctx context.Context, c rawConn) (*rawInsert, error) {
	if s.rawIns != nil && s.rawIns.conn == any(c) {
		return s.rawIns, nil
	}
	prep := func(q string) (driver.StmtExecContext, error) {
		st, err := c.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			st.Close()
			return nil, fmt.Errorf("prepare: driver statement %T lacks ExecContext", st)
		}
		return ex, nil
	}
	one, err := prep(insertColumns + insertPlaceholders)
	if err != nil {
		return nil, err
	}
	many, err := prep(insertColumns + insertPlaceholders + strings.Repeat(", "+insertPlaceholders, multiRows-1))
	if err != nil {
		one.(driver.Stmt).Close()
		return nil, err
	}
	ins := &rawInsert{conn: c, one: one, many: many, args: make([]driver.NamedValue, multiRows*insertArgs)}
	for i := range ins.args {
		ins.args[i].Ordinal = i + 1
	}
	s.rawIns = ins
	return ins, nil
}

func readHeadRaw(ctx context.Context, c rawConn) (id int64, hash []byte, err error) {
	rows, err := c.QueryContext(ctx, selectHead, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("read chain head: %w", err)
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	if err := rows.Next(dest); err != nil {
		return 0, nil, fmt.Errorf("read chain head: %w", err)
	}
	id, ok1 := dest[0].(int64)
	h, ok2 := dest[1].([]byte)
	if !ok1 || !ok2 {
		return 0, nil, fmt.Errorf("read chain head: unexpected types %T, %T", dest[0], dest[1])
	}
	return id, bytes.Clone(h), nil
}

// setArgs sets the values of one row's arguments, in insertColumns order.
func setArgs(a []driver.NamedValue, req *request) {
	ev := &req.ev
	for i, v := range [insertArgs]driver.Value{
		ev.ID, ev.Time.Format(timeLayout), ev.Kind, ev.SessionID, ev.Protocol, ev.Target, ev.Client,
		ev.Subject, ev.Issuer, req.groups, ev.TokenID,
		ev.Request, ev.RequestHash, ev.StmtKind, ev.Decision, ev.Policy, ev.Rule, ev.Reason, ev.Error,
		ev.Seq, ev.Fingerprint, ev.ParamsHash, ev.DurationUS, ev.Rows, ev.Bytes, ev.Status,
		int64(req.version), req.prev, req.hash,
	} {
		a[i].Value = v
	}
}

const insertColumns = `INSERT INTO audit_events (
	id, time, kind, session_id, protocol, target, client,
	subject, issuer, groups, token_id,
	request, request_hash, stmt_kind, decision, policy, rule, reason, error,
	seq, fingerprint, params_hash, duration_us, row_count, byte_count, http_status,
	hash_version, prev_hash, hash
) VALUES `

const insertPlaceholders = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertArgs = 29

const (
	selectHead = `SELECT last_id, last_hash FROM audit_chain_head WHERE singleton = 1`
	updateHead = `UPDATE audit_chain_head SET last_id = ?, last_hash = ? WHERE singleton = 1`
)

func appendArgs(args []any, req *request) []any {
	ev := &req.ev
	return append(args,
		ev.ID, ev.Time.Format(timeLayout), ev.Kind, ev.SessionID, ev.Protocol, ev.Target, ev.Client,
		ev.Subject, ev.Issuer, req.groups, ev.TokenID,
		ev.Request, ev.RequestHash, ev.StmtKind, ev.Decision, ev.Policy, ev.Rule, ev.Reason, ev.Error,
		ev.Seq, ev.Fingerprint, ev.ParamsHash, ev.DurationUS, ev.Rows, ev.Bytes, ev.Status,
		req.version, req.prev, req.hash,
	)
}

// appendEvents extends the index's hash chain by reqs inside tx, under
// audit.HashVersion, setting each event's ID and link, and moves the
// chain head. Prune uses it for its record, on the indexer goroutine,
// once the index has caught up with the journal; the writer then takes
// its head from the result.
func appendEvents(ctx context.Context, tx *sql.Tx, reqs []*request) error {
	var lastID int64
	var prev []byte
	if err := tx.QueryRowContext(ctx, selectHead).Scan(&lastID, &prev); err != nil {
		return fmt.Errorf("read chain head: %w", err)
	}
	for _, req := range reqs {
		lastID++
		req.ev.ID = lastID
		req.version = audit.HashVersion
		req.prev = prev
		req.hash = audit.Hash(prev, &req.ev)
		prev = req.hash
		if _, err := tx.ExecContext(ctx, insertColumns+insertPlaceholders, appendArgs(nil, req)...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, updateHead, lastID, prev); err != nil {
		return fmt.Errorf("update chain head: %w", err)
	}
	return nil
}

// job is a write other than an event batch (Prune, Revoke, Unrevoke,
// CreateReview, UpdateReview). The indexer goroutine runs it in a
// transaction of its own, so the write connection keeps a single user.
type job struct {
	ctx   context.Context
	run   func(ctx context.Context, tx *sql.Tx) error
	reply chan error // buffered (1), so the indexer never blocks on a caller

	// head, for a chain job (Prune), receives the chain head the job
	// left behind, for the writer to continue from.
	head *chainHead
}

type chainHead struct {
	id   int64
	hash []byte
}

// do hands run to the indexer and returns its outcome. Once taken, run
// reaches its outcome promptly after ctx ends because every statement it
// runs uses ctx. So a nil error means committed, and an error means not
// committed.
func (s *SQLite) do(ctx context.Context, run func(ctx context.Context, tx *sql.Tx) error) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	j := &job{ctx: ctx, run: run, reply: make(chan error, 1)}
	s.ix.add(indexItem{job: j})
	return <-j.reply
}

// doChain runs run like do, but through the writer, which hands it to the
// indexer behind every batch it has appended and holds further batches
// until it is done, so run sees the whole chain in the index and what it
// appends to the chain there is where the journal continues.
func (s *SQLite) doChain(ctx context.Context, run func(ctx context.Context, tx *sql.Tx) error) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	if s.jw == nil {
		return ErrFollower
	}
	j := &job{ctx: ctx, run: run, reply: make(chan error, 1), head: &chainHead{}}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-s.closing:
		return ErrClosed
	}
	return <-j.reply
}

// runChainJob runs a doChain job for the writer goroutine.
func (s *SQLite) runChainJob(j *job) error {
	inner := &job{ctx: j.ctx, run: j.run, reply: make(chan error, 1), head: j.head}
	s.ix.add(indexItem{job: inner})
	err := <-inner.reply
	if err == nil && j.head.id > 0 {
		s.headID, s.headHash = j.head.id, j.head.hash
		s.syncedID, s.syncedHash = j.head.id, j.head.hash
		// The job's records are in the index only: the journal's ids
		// jump past them, and recovery finds them in the index.
		s.acked.Store(j.head.id)
	}
	return err
}

// runJob runs j in one IMMEDIATE transaction on the write connection.
func (s *SQLite) runJob(j *job) (err error) {
	if err := j.ctx.Err(); err != nil {
		return context.Cause(j.ctx)
	}
	tx, err := s.wdb.BeginTx(j.ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the job's error is the one worth reporting
		}
	}()
	if err := j.run(j.ctx, tx); err != nil {
		return err
	}
	if j.head != nil {
		if err := tx.QueryRowContext(j.ctx, selectHead).Scan(&j.head.id, &j.head.hash); err != nil {
			return fmt.Errorf("read chain head: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		if j.head != nil {
			j.head.id = 0
		}
		return fmt.Errorf("commit: %w", err)
	}
	if j.head != nil {
		s.ix.done(0, j.head.id, nil) // the chain job's records are in the index
	}
	return nil
}
