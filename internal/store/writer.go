package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/warden-gateway/warden/internal/audit"
)

// timeLayout is RFC 3339 with a fixed nine-digit fraction. time.RFC3339Nano
// drops trailing zeros, which makes "…:05Z" sort after "…:05.5Z" as text;
// a fixed width keeps text order equal to time order for the time index.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// request is one Record call waiting for the writer.
type request struct {
	ctx    context.Context
	ev     audit.Event // a private copy; the writer sets ID
	groups string      // ev.Groups as JSON, encoded by the caller's goroutine
	reply  chan error  // buffered (1), so the writer never blocks on a waiter
	later  bool        // RecordLater: nobody waits, it needs no sync of its own

	// The chain link, set by the writer (or read back from the journal):
	// the hash version, the previous record's hash and this one's.
	version    int
	prev, hash []byte
}

// waited reports whether somebody waits for the request's record to be
// durable (everything but RecordLater).
func (r *request) waited() bool { return !r.later }

// Record stores ev and returns once the transaction holding it has
// committed durably; it then sets ev.ID to the assigned id, and ev.Time to
// the stored time (the current time if ev.Time was zero, in UTC). It
// returns an error, and leaves ev unchanged, if the event is not known to
// be stored: the queue stayed full until ctx ended, the commit failed, ctx
// ended while waiting, or the store is closed. In the last two cases the
// event may still be committed; the caller must refuse the request either
// way, and an audit record of a refused request is harmless. Events of
// kind audit.KindPrune are refused: only Prune writes them.
func (s *SQLite) Record(ctx context.Context, ev *audit.Event) error {
	p, err := s.submit(ctx, ev, submitWait)
	if err != nil {
		return err
	}
	return p.wait(ctx, ev)
}

// Pending is an event handed to the writer whose commit has not been
// waited for yet.
type Pending struct {
	s   *SQLite
	req *request
	err error
}

// Wait returns once the event's transaction has committed, or with the
// reason it is not known to be stored (see Record). It waits at most
// pendingTimeout.
func (p *Pending) Wait() error {
	if p.err != nil {
		return p.err
	}
	// Usually the commit is already done: no timer then.
	select {
	case err := <-p.req.reply:
		p.req.reply <- err // leave it for wait, which reads it again
		return p.wait(context.Background(), nil)
	default:
	}
	// A timer rather than a context: this is every statement's path.
	t := time.NewTimer(pendingTimeout)
	defer t.Stop()
	select {
	case err := <-p.req.reply:
		p.req.reply <- err
	case <-p.s.writerDone:
	case <-t.C:
		return fmt.Errorf("store: record: waiting for commit: %w", context.DeadlineExceeded)
	}
	return p.wait(context.Background(), nil)
}

// pendingTimeout bounds Pending.Wait: a writer stuck that long is a failed
// store, and the caller fails closed.
const pendingTimeout = 30 * time.Second

// Submit hands ev to the writer and returns at once, so the caller can
// overlap the commit with other work; Pending.Wait reports the outcome.
// The caller must not release anything that depends on the record being
// durable before Wait returns nil. Submit waits only while the queue is
// full (up to pendingTimeout). ev is copied; its ID is not set.
func (s *SQLite) Submit(ev *audit.Event) audit.Pending {
	p, err := s.submit(context.Background(), ev, submitAsync)
	if err != nil {
		return &Pending{err: err}
	}
	return p
}

// RecordLater implements audit.LaterSink: it hands ev to the writer and
// returns without waiting. The writer appends it to the journal in order
// with every other event; in sync mode it becomes durable with the next
// group that somebody waits for, or by laterSyncDelay. A failure is
// logged and reported through Healthy.
func (s *SQLite) RecordLater(ev *audit.Event) {
	if _, err := s.submit(context.Background(), ev, submitLater); err != nil {
		s.log.Warn("audit event not recorded", "kind", ev.Kind, "err", err)
	}
}

// SyncIdle implements audit.IdleSyncer: in sync mode, true when the
// writer has nothing queued and no group under way, so a waited-for
// record submitted now gets an fdatasync of its own at once.
func (s *SQLite) SyncIdle() bool {
	return s.jw != nil && s.jw.sync && !s.busy.Load() && len(s.queue) == 0
}

// Expect implements audit.Expecter: n events (negative: fewer) are about
// to be submitted and waited for. In sync mode the writer waits up to
// commitDelay for expected events before it syncs a group, so one
// fdatasync covers them.
func (s *SQLite) Expect(n int) { s.expected.Add(int64(n)) }

// commitDelay (a variable for tests) bounds how long the writer holds a group for expected
// events. An fdatasync costs about 100 µs here, much of it CPU: a group
// of eight for the price of one is worth a wait shorter than that.
var commitDelay = 100 * time.Microsecond

// gather adds to batch, in sync mode and for at most commitDelay, the
// events announced with Expect, as they are submitted.
func (s *SQLite) gather(batch []*request) []*request {
	if !s.jw.sync || s.expected.Load() <= 0 || !slices.ContainsFunc(batch, (*request).waited) {
		return batch
	}
	t := time.NewTimer(commitDelay)
	defer t.Stop()
	for len(batch) < s.opts.MaxBatch && s.expected.Load() > 0 {
		select {
		case req := <-s.queue:
			batch = s.fillBatch(append(batch, req))
		case <-t.C:
			return batch
		case <-s.closing:
			return batch
		}
	}
	return batch
}

// laterSyncDelay (a variable for tests) bounds how long an event recorded with RecordLater stays
// written but not synced when no waited-for event comes to carry it.
var laterSyncDelay = 10 * time.Millisecond

// How submit waits for queue space: Record's until its ctx ends, the
// others' up to pendingTimeout. submitLater also marks the event as one
// nobody waits for (RecordLater).
type submitMode int

const (
	submitWait submitMode = iota
	submitAsync
	submitLater
)

// submit enqueues ev. ctx governs the request (a request whose ctx has
// ended when the writer reaches it is skipped).
func (s *SQLite) submit(ctx context.Context, ev *audit.Event, mode submitMode) (*Pending, error) {
	if ev == nil {
		return nil, errors.New("store: record: nil event")
	}
	if ev.Kind == audit.KindPrune {
		// Verify trusts a prune record to attest the chain's anchor, so
		// only Prune may write one.
		return nil, fmt.Errorf("store: record: kind %q is reserved for the store", ev.Kind)
	}
	select {
	case <-s.closing:
		return nil, fmt.Errorf("store: record: %w", ErrClosed)
	default:
	}
	if s.jw == nil {
		return nil, fmt.Errorf("store: record: %w", ErrFollower)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: record: %w", context.Cause(ctx))
	}

	req, err := newRequest(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("store: record: %w", err)
	}
	req.later = mode == submitLater

	select {
	case s.queue <- req:
		return &Pending{s: s, req: req}, nil
	default: // full: wait for space
	}
	qctx := ctx
	if mode != submitWait {
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(context.Background(), pendingTimeout)
		defer cancel()
	}
	select {
	case s.queue <- req:
	case <-qctx.Done():
		return nil, fmt.Errorf("store: record: queue full: %w", context.Cause(qctx))
	case <-s.closing:
		return nil, fmt.Errorf("store: record: %w", ErrClosed)
	}
	return &Pending{s: s, req: req}, nil
}

// newRequest prepares a private copy of ev for the writer. It copies what
// the caller could mutate while waiting (the writer reads the copy, and a
// caller whose ctx ends returns while it may still do so) and does the
// encoding work on the caller's goroutine rather than the writer's.
func newRequest(ctx context.Context, ev *audit.Event) (*request, error) {
	req := &request{ctx: ctx, ev: *ev, reply: make(chan error, 1)}
	req.ev.ID = 0
	if req.ev.Time.IsZero() {
		req.ev.Time = time.Now()
	}
	req.ev.Time = req.ev.Time.Round(0).UTC() // drop the monotonic reading
	if y := req.ev.Time.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("time %v outside years 1-9999", req.ev.Time)
	}
	// A session's events all carry its groups: reuse the last encoding
	// (and its private copy of the groups) when they are the same.
	if g := lastGroups.Load(); g != nil && slices.Equal(g.groups, ev.Groups) && (g.groups == nil) == (ev.Groups == nil) {
		req.ev.Groups, req.groups = g.groups, g.json
		return req, nil
	}
	req.ev.Groups = slices.Clone(ev.Groups)
	groups := req.ev.Groups
	if groups == nil {
		groups = []string{} // "[]", not "null"
	}
	b, err := json.Marshal(groups)
	if err != nil {
		return nil, fmt.Errorf("encode groups: %w", err)
	}
	req.groups = string(b)
	if !allValidUTF8(groups) {
		// encoding/json stored each byte that is not UTF-8 as U+FFFD;
		// hash what is stored, or the record would never verify. Groups
		// come from JSON tokens, so this does not happen in practice.
		if err := json.Unmarshal(b, &req.ev.Groups); err != nil {
			return nil, fmt.Errorf("encode groups: %w", err)
		}
		return req, nil
	}
	lastGroups.Store(&encodedGroups{groups: req.ev.Groups, json: req.groups})
	return req, nil
}

// encodedGroups is a private, never modified copy of a groups list and
// its JSON encoding.
type encodedGroups struct {
	groups []string
	json   string
}

var lastGroups atomic.Pointer[encodedGroups]

func allValidUTF8(ss []string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// wait waits for the request's commit; on success it copies the assigned
// id and stored time into ev (if not nil).
func (p *Pending) wait(ctx context.Context, ev *audit.Event) error {
	s, req := p.s, p.req
	var err error
	select {
	case err = <-req.reply:
	case <-ctx.Done():
		return fmt.Errorf("store: record: waiting for commit: %w", context.Cause(ctx))
	case <-s.writerDone:
		// The writer has exited; it answered everything it dequeued before
		// closing writerDone, so either our reply is there or our request
		// arrived after the final drain and will never be written.
		select {
		case err = <-req.reply:
		default:
			return fmt.Errorf("store: record: %w", ErrClosed)
		}
	}
	if err != nil {
		return err
	}
	if ev != nil {
		ev.ID, ev.Time = req.ev.ID, req.ev.Time
	}
	return nil
}

// runWriter is the single goroutine that appends to the audit journal
// and so owns the chain's head: event batches, and chain jobs (Prune),
// which it hands to the indexer behind every batch before them and waits
// for. It is started by OpenSQLite and waited for by Close (via
// writerDone); on its way out it tells the indexer that nothing more is
// coming.
func (s *SQLite) runWriter() {
	defer close(s.writerDone)
	defer s.ix.writerExited()
	batch := make([]*request, 0, s.opts.MaxBatch)
	// Events nobody waits for, written but not synced, are synced by this
	// timer if no waited-for event comes first.
	laterTimer := time.NewTimer(time.Hour)
	laterTimer.Stop()
	armed := false
	for {
		if !armed && len(s.later) > 0 {
			laterTimer.Reset(laterSyncDelay)
			armed = true
		}
		select {
		case req := <-s.queue:
			s.busy.Store(true)
			batch = s.gather(s.fillBatch(append(batch[:0], req)))
			s.commitBatch(batch)
			s.busy.Store(false)
			clear(batch) // do not pin finished requests until the next batch
		case <-laterTimer.C:
			armed = false
			s.syncLater()
		case done := <-s.syncReq:
			s.syncLater()
			close(done)
		case j := <-s.jobs:
			s.syncLater() // a chain job follows every event in the index
			j.reply <- s.runChainJob(j)
		case <-s.closing:
			// Commit whatever is queued. Record refuses new events once
			// closing is closed, but one may slip in between its check and
			// its send; those find writerDone closed and report ErrClosed.
			// Jobs are handed over unbuffered, so none is pending here:
			// their callers see closing and return ErrClosed.
			for {
				batch = s.fillBatch(batch[:0])
				if len(batch) == 0 {
					s.syncLater()
					return
				}
				s.commitBatch(batch)
				clear(batch)
			}
		}
		if armed && len(s.later) == 0 {
			laterTimer.Stop()
			armed = false
		}
	}
}

// fillBatch appends queued requests to batch, without waiting, up to
// MaxBatch. Not waiting is what makes the commit "group": the batch is
// whatever accumulated while the previous commit was syncing.
func (s *SQLite) fillBatch(batch []*request) []*request {
	for len(batch) < s.opts.MaxBatch {
		select {
		case req := <-s.queue:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch appends batch to the journal with one write (and, in sync
// mode, one fdatasync), answers every request, and hands the events to the
// indexer.
func (s *SQLite) commitBatch(batch []*request) {
	// A waiter that has already given up was told its event is not stored;
	// skip it rather than store a record its caller cannot know about.
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.reply <- fmt.Errorf("store: record: %w", context.Cause(req.ctx))
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}

	// Sync if anybody waits: a group of events recorded with RecordLater
	// alone is written and left for the next sync (in sync mode).
	waited := slices.ContainsFunc(live, (*request).waited)
	start := time.Now()
	err := s.appendJournal(live, waited)
	elapsed := time.Since(start)
	durable := err == nil && (waited || !s.jw.sync)
	if err != nil {
		// The journal is cut back to its last durable record: the head
		// goes back there too, and unsynced events are lost with it.
		s.failures.Add(1)
		s.log.Error("audit journal write failed; events not stored", "events", len(live)+len(s.later), "err", err)
		err = fmt.Errorf("store: record: %w", err)
		s.headID, s.headHash = s.syncedID, s.syncedHash
		s.dropLater()
	} else if durable {
		s.commits.Add(1)
		s.events.Add(int64(len(live) + len(s.later)))
		s.syncedID, s.syncedHash = s.headID, s.headHash
		s.acked.Store(s.headID)
	}
	if err != nil || durable {
		s.setHealth(err)
		if s.opts.OnCommit != nil {
			// Before the replies, so that a caller whose Record returned sees
			// metrics that include its commit.
			s.opts.OnCommit(len(live)+len(s.later), elapsed, err)
		}
	}
	// Done with the group before the waiters run on: one that submits at
	// once finds the writer idle (SyncIdle).
	s.busy.Store(false)
	for _, req := range live {
		req.reply <- err
	}
	switch {
	case durable:
		items := live
		if len(s.later) > 0 {
			items = append(s.later, live...)
			s.later = nil
			s.laterN.Store(0)
		}
		s.ix.add(indexItem{reqs: items})
		if rerr := s.jw.maybeRotate(); rerr != nil {
			s.log.Warn("audit journal: starting a new segment failed", "err", rerr)
		}
	case err == nil:
		s.later = append(s.later, live...)
		s.laterN.Store(int64(len(s.later)))
	}
}

// syncLater makes durable the events written without a sync (see
// RecordLater) and hands them to the indexer.
func (s *SQLite) syncLater() {
	if len(s.later) == 0 {
		return
	}
	n := len(s.later)
	start := time.Now()
	err := s.jw.syncNow()
	elapsed := time.Since(start)
	if err != nil {
		s.failures.Add(1)
		s.log.Error("audit journal sync failed; events not stored", "events", n, "err", err)
		s.headID, s.headHash = s.syncedID, s.syncedHash
		s.dropLater()
	} else {
		s.commits.Add(1)
		s.events.Add(int64(n))
		s.syncedID, s.syncedHash = s.headID, s.headHash
		s.acked.Store(s.headID)
		s.ix.add(indexItem{reqs: s.later})
		s.later = nil
		s.laterN.Store(0)
	}
	s.setHealth(err)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(n, elapsed, err)
	}
	if err == nil {
		if rerr := s.jw.maybeRotate(); rerr != nil {
			s.log.Warn("audit journal: starting a new segment failed", "err", rerr)
		}
	}
}

// dropLater forgets the unsynced events a failed write or sync cut from
// the journal: their ids will be taken again.
func (s *SQLite) dropLater() {
	for _, req := range s.later {
		req.ev.ID = 0
	}
	s.later = nil
	s.laterN.Store(0)
}

// appendJournal extends the hash chain by reqs from the writer's head,
// setting each event's ID, and appends them to the journal. On failure
// the ids are reset and the head stays where it was.
func (s *SQLite) appendJournal(reqs []*request, sync bool) error {
	if s.opts.beforeAppend != nil {
		s.opts.beforeAppend()
	}
	buf := s.jbuf[:0]
	id, prev := s.headID, s.headHash
	for _, req := range reqs {
		id++
		req.ev.ID = id
		req.version = audit.HashVersion
		req.prev = prev
		req.hash = audit.Hash(prev, &req.ev)
		buf = appendRecord(buf, req)
		prev = req.hash
	}
	if cap(buf) <= 1<<20 {
		s.jbuf = buf // reuse, unless one huge group grew it
	}
	if err := s.jw.append(buf, id, sync); err != nil {
		for _, req := range reqs {
			req.ev.ID = 0
		}
		return err
	}
	s.headID, s.headHash = id, prev
	return nil
}
