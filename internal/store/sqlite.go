package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gateway/warden/internal/audit"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrClosed is returned (wrapped) by Record, Submit's Pending, Healthy,
// Prune, Revoke, Unrevoke, CreateReview and UpdateReview once Close has
// been called.
var ErrClosed = errors.New("store: closed")

// Options tunes an SQLite store. The zero value is ready to use.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection (another process on the same file, a backup) before it
	// fails. Default 5s.
	BusyTimeout time.Duration

	// QueueSize bounds the number of events waiting for the writer. When
	// it is full, Record waits until its context ends. Default 4096.
	QueueSize int

	// MaxBatch is the most events appended to the journal in one group
	// (one write, one fdatasync). Default 512.
	MaxBatch int

	// ReadConns is the size of the read-only connection pool used by Query
	// and Verify; in WAL mode readers never block the writer. Default 4.
	ReadConns int

	// Logger receives commit and prune failures. Default: discard.
	Logger *slog.Logger

	// Retention is how long audit records are kept. When it is positive a
	// background pruner deletes, every PruneInterval, the oldest records
	// whose time is more than Retention ago (see Prune). Default 0: keep
	// forever.
	Retention time.Duration

	// ProcessCrashOnly trades power-loss durability for speed: journal
	// appends are written to the operating system but not fdatasynced (and
	// other writes run with synchronous=NORMAL), so a crash or kill -9 of
	// warden loses nothing acknowledged, while a power loss or kernel crash
	// can lose the last groups
	// (https://sqlite.org/pragma.html#pragma_synchronous). Default false:
	// every journal append is fdatasynced, and reviews, revocations and
	// prunes commit with synchronous=FULL.
	ProcessCrashOnly bool

	// PruneInterval is how often the pruner runs when Retention is set; it
	// also runs once right after OpenSQLite. Default 1h.
	PruneInterval time.Duration

	// OnCommit, if not nil, is called by the writer goroutine after each
	// attempt to append a group of events to the journal: how many events,
	// how long the append took (fdatasync included) and the error (nil if
	// durable). It runs before the batch's callers are
	// released, so it must be cheap and must not block or call into the
	// store; it is meant for metrics. Prune and revocation transactions are
	// not reported. Default nil.
	OnCommit func(events int, elapsed time.Duration, err error)

	// beforeAppend, if not nil (tests only), is called by the writer
	// before each journal append: a test holds the writer with it.
	beforeAppend func()
}

func (o *Options) setDefaults() {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Retention < 0 {
		o.Retention = 0 // deleting audit records needs a clear instruction
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Hour
	}
}

// SQLite is the SQLite-backed store. It implements audit.Sink. All methods
// are safe for concurrent use.
type SQLite struct {
	path string
	opts Options
	log  *slog.Logger

	wdb *sql.DB // one connection, used only by the writer goroutine after Open
	rdb *sql.DB // query_only pool for Query and Verify

	queue      chan *request
	jobs       chan *job     // chain jobs (Prune), unbuffered: handed to the writer or not at all
	closing    chan struct{} // closed by Close: stop accepting, drain, exit
	writerDone chan struct{} // closed by the writer goroutine when it exits
	closeOnce  sync.Once
	closeErr   error

	// jw is the audit journal, nil if another process owns it (a
	// follower). The writer goroutine alone appends to it and owns the
	// chain head (headID, headHash) and jbuf.
	jw       *journal
	headID   int64
	headHash []byte
	jbuf     []byte
	// acked is the highest id acknowledged to a caller (or attested by a
	// prune): what a reader must find in the index.
	acked atomic.Int64
	// later holds the events recorded with RecordLater that are written
	// to the journal but not synced yet (sync mode), in id order; syncedID
	// and syncedHash are the last durable record, where a failed write or
	// sync takes the head back to. Writer goroutine only; laterN is
	// len(later) for readers, who send on syncReq to have them synced.
	later      []*request
	syncedID   int64
	syncedHash []byte
	laterN     atomic.Int64
	syncReq    chan chan struct{}
	// expected counts the events announced with Expect and not yet
	// submitted.
	expected atomic.Int64
	// busy is set while the writer appends a group (see SyncIdle).
	busy atomic.Bool

	ix          *indexer
	rawIns      *rawInsert    // the indexer's prepared statements; indexer goroutine only
	indexerDone chan struct{} // closed by runIndexer when it exits

	stopPruner context.CancelFunc // ends a prune in progress at Close
	prunerDone chan struct{}      // closed by the pruner when it exits; nil without Retention

	cdb              *sql.DB       // the checkpointer's connection
	checkpointerDone chan struct{} // closed by runCheckpointer when it exits

	commits, events, failures atomic.Int64

	healthMu sync.Mutex
	lastErr  error // result of the last commit; nil before the first
}

// Stats are cumulative counters since Open, and the queue depth now.
type Stats struct {
	Commits  int64 // event transactions committed by the writer
	Events   int64 // events committed (Events/Commits is the mean batch size)
	Failures int64 // event transactions that failed; their events were not stored

	// QueueDepth is the number of events submitted and waiting for the
	// writer to take them (not counting the batch it is committing). Near
	// Options.QueueSize, Record is about to wait for space.
	QueueDepth int
}

// OpenSQLite opens (creating if needed) the SQLite database at path,
// migrates it to the current schema and starts the writer. The file is
// created with mode 0600: the audit log holds SQL text, which can hold
// personal data. Close must be called to stop the writer.
func OpenSQLite(ctx context.Context, path string, opts Options) (_ *SQLite, err error) {
	opts.setDefaults()
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		// An in-memory database would be a durable audit log in name only,
		// and a URI would bypass the pragmas set below.
		return nil, fmt.Errorf("store: open sqlite: %q is not a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}

	s := &SQLite{
		path:       abs,
		opts:       opts,
		log:        opts.Logger,
		queue:      make(chan *request, opts.QueueSize),
		jobs:       make(chan *job),
		syncReq:    make(chan chan struct{}),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			if s.jw != nil {
				s.jw.close()
			}
			s.closeDBs()
		}
	}()

	// _txlock=immediate makes BeginTx issue BEGIN IMMEDIATE: the writer
	// takes the write lock when the transaction starts, where the busy
	// timeout applies, instead of upgrading mid-transaction, where SQLite
	// may return SQLITE_BUSY at once to avoid deadlock
	// (https://sqlite.org/lang_transaction.html#deferred_immediate_and_exclusive_transactions).
	s.wdb, err = sql.Open("sqlite", s.dsn(
		"_txlock=immediate",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous("+s.syncMode()+")",
		"_pragma=foreign_keys(1)",
		// The writer never checkpoints: copying WAL pages into the
		// database file (and fsyncing it) inside a commit stalls every
		// statement waiting on that commit. runCheckpointer does it on a
		// connection of its own (https://sqlite.org/wal.html#ckpt).
		"_pragma=wal_autocheckpoint(0)",
		// Statement journals (of multi-row INSERTs) in memory, not in
		// a temporary file written page by page.
		"_pragma=temp_store(MEMORY)",
		// Big index transactions do not spill pages mid-transaction.
		"_pragma=cache_size(-16384)",
	))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// One writer connection: SQLite has one writer at a time anyway, and
	// owning it lets the writer goroutine hold it without contention.
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if err := s.checkPragmas(ctx); err != nil {
		return nil, err
	}
	if err := migrate(ctx, s.wdb, sqliteMigrations); err != nil {
		return nil, fmt.Errorf("store: open sqlite: migrate: %w", err)
	}

	s.rdb, err = sql.Open("sqlite", s.dsn("_pragma=query_only(1)", "_pragma=foreign_keys(1)"))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	if err := s.rdb.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("store: open sqlite: read pool: %w", err)
	}

	s.cdb, err = sql.Open("sqlite", s.dsn("_pragma=synchronous("+s.syncMode()+")"))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: checkpointer: %w", err)
	}
	s.cdb.SetMaxOpenConns(1)

	if err := s.openJournal(ctx); err != nil {
		return nil, err
	}

	s.checkpointerDone = make(chan struct{})
	s.indexerDone = make(chan struct{})
	go s.runWriter()
	go s.runIndexer()
	go s.runCheckpointer()
	if opts.Retention > 0 {
		var pctx context.Context
		pctx, s.stopPruner = context.WithCancel(context.Background())
		s.prunerDone = make(chan struct{})
		go s.runPruner(pctx)
	}
	return s, nil
}

// openJournal takes ownership of the audit journal, indexes what it holds
// beyond the index (the tail a crash left unindexed) and starts a fresh
// segment; or, if another process owns it, leaves s a follower. It sets
// the writer's chain head and the indexer.
func (s *SQLite) openJournal(ctx context.Context) error {
	if err := s.wdb.QueryRowContext(ctx, selectHead).Scan(&s.headID, &s.headHash); err != nil {
		return fmt.Errorf("store: open sqlite: read chain head: %w", err)
	}
	jw, err := openJournal(s.path, !s.opts.ProcessCrashOnly)
	if errors.Is(err, errJournalBusy) {
		s.log.Info("audit store opened read-only: another process owns its journal", "path", s.path)
		s.ix = newIndexer(s.headID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	s.jw = jw
	recs, maxSeq, err := jw.recover(s.headID, s.headHash)
	if err != nil {
		return fmt.Errorf("store: open sqlite: recover: %w", err)
	}
	if len(recs) > 0 {
		if err := s.writeIndex(recs); err != nil {
			return fmt.Errorf("store: open sqlite: recover: index %d journalled records: %w", len(recs), err)
		}
		last := recs[len(recs)-1]
		s.headID, s.headHash = last.ev.ID, last.hash
		s.log.Info("audit store: indexed the journal's tail after an unclean stop", "records", len(recs), "last_id", s.headID)
	}
	if err := jw.start(maxSeq); err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	s.acked.Store(s.headID)
	s.syncedID, s.syncedHash = s.headID, s.headHash
	s.ix = newIndexer(s.headID)
	return nil
}

// dsn builds the driver DSN for s.path. The path is passed as given (the
// driver splits the query at the first '?'), so paths containing '?' are
// rejected by createPrivate.
func (s *SQLite) dsn(params ...string) string {
	p := append([]string{"_busy_timeout=" + strconv.FormatInt(s.opts.BusyTimeout.Milliseconds(), 10)}, params...)
	return s.path + "?" + strings.Join(p, "&")
}

// createPrivate creates the database file with mode 0600 if it does not
// exist. SQLite creates its -wal and -shm files with the database file's
// permissions, so this covers them too. A new file's directory entry is
// fsynced: SQLite syncs the directory when it creates a journal or WAL,
// but not for a main database file someone else created.
func createPrivate(path string) error {
	if strings.Contains(path, "?") {
		return fmt.Errorf("path %q contains '?', which the driver reads as the start of its parameters", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// checkPragmas confirms the settings durability depends on actually took
// effect: journal_mode=WAL can silently stay "delete" (e.g. on file systems
// without shared memory), and a DSN typo would leave synchronous at its
// default. Better to refuse to start than to run with a weaker log.
func (s *SQLite) checkPragmas(ctx context.Context) error {
	var mode string
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("store: open sqlite: journal_mode is %q, want wal", mode)
	}
	var sync int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	if want := map[string]int{"FULL": 2, "NORMAL": 1}[s.syncMode()]; sync != want {
		return fmt.Errorf("store: open sqlite: synchronous is %d, want %d (%s)", sync, want, s.syncMode())
	}
	return nil
}

// Path returns the absolute path of the database file.
func (s *SQLite) Path() string { return s.path }

// Healthy returns nil if the last journal append succeeded (or none has
// been attempted yet) and so did the last index write, the error of the
// one that failed otherwise, and ErrClosed after Close. A /readyz handler
// should report not-ready while it is non-nil: a failing journal refuses
// requests, and a failing index would soon hold them up.
func (s *SQLite) Healthy() error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	s.healthMu.Lock()
	err := s.lastErr
	s.healthMu.Unlock()
	if err != nil {
		return err
	}
	return s.ix.err()
}

func (s *SQLite) setHealth(err error) {
	s.healthMu.Lock()
	s.lastErr = err
	s.healthMu.Unlock()
}

// Stats returns cumulative writer counters and the current queue depth.
func (s *SQLite) Stats() Stats {
	return Stats{
		Commits:    s.commits.Load(),
		Events:     s.events.Load(),
		Failures:   s.failures.Load(),
		QueueDepth: len(s.queue),
	}
}

// Close stops accepting events, commits every event already queued, stops
// the pruner (abandoning a prune in progress, which then deletes nothing),
// waits for the writer goroutine to exit and closes the database. Record,
// Prune and Revoke calls made after Close return ErrClosed. Close is
// idempotent. If the database keeps failing (a foreign lock), each
// remaining batch still waits up to BusyTimeout before its waiters get the
// error, so Close can take that long per MaxBatch queued events.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.prunerDone != nil {
			s.stopPruner()
			<-s.prunerDone
		}
		<-s.writerDone
		<-s.indexerDone
		<-s.checkpointerDone
		var jerr error
		if s.jw != nil {
			jerr = s.jw.close()
		}
		s.closeErr = errors.Join(s.closeDBs(), jerr)
	})
	return s.closeErr
}

func (s *SQLite) closeDBs() error {
	var errs []error
	for _, db := range []*sql.DB{s.wdb, s.rdb, s.cdb} {
		if db != nil {
			if err := db.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Compile-time check that SQLite is an audit sink.
var _ audit.Sink = (*SQLite)(nil)

// syncMode is the synchronous pragma the writer runs with.
func (s *SQLite) syncMode() string {
	if s.opts.ProcessCrashOnly {
		return "NORMAL"
	}
	return "FULL"
}

// checkpointInterval is how often runCheckpointer copies the WAL into the
// database file.
const checkpointInterval = 200 * time.Millisecond

// runCheckpointer checkpoints the WAL in the background, PASSIVE (it
// never waits for or blocks the writer), until Close. With the writer's
// autocheckpoint off, the WAL would otherwise grow without bound. A
// final TRUNCATE checkpoint at Close leaves a compact file behind.
func (s *SQLite) runCheckpointer() {
	defer close(s.checkpointerDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.checkpoint("PASSIVE")
		case <-s.indexerDone:
			s.checkpoint("TRUNCATE")
			return
		}
	}
}

// checkpoint runs one checkpoint and, if it copied the whole WAL into the
// database file (and so synced it), deletes the journal segments the
// index held before it began.
func (s *SQLite) checkpoint(mode string) {
	s.ix.mu.Lock()
	indexed := s.ix.indexed
	s.ix.mu.Unlock()
	var busy, logFrames, done int
	if err := s.cdb.QueryRow("PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &done); err != nil {
		s.log.Warn("audit store: checkpoint failed", "err", err)
		return
	}
	if busy != 0 || logFrames != done || s.jw == nil {
		return
	}
	if err := s.jw.deleteIndexed(indexed); err != nil {
		s.log.Warn("audit journal: removing an indexed segment failed", "err", err)
	}
}
