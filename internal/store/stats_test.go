package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// commitLog collects OnCommit calls.
type commitLog struct {
	mu    sync.Mutex
	calls []commitCall
}

type commitCall struct {
	events  int
	elapsed time.Duration
	err     error
}

func (c *commitLog) onCommit(events int, elapsed time.Duration, err error) {
	c.mu.Lock()
	c.calls = append(c.calls, commitCall{events, elapsed, err})
	c.mu.Unlock()
}

func (c *commitLog) snapshot() []commitCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]commitCall(nil), c.calls...)
}

func TestOnCommit(t *testing.T) {
	var log commitLog
	s := openTest(t, Options{OnCommit: log.onCommit, BusyTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	const workers, each = 10, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := s.Record(ctx, testEvent(w*each+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// Prune and revocations are not event commits and are not reported.
	if _, err := s.Prune(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, "agent-1", "admin", ""); err != nil {
		t.Fatal(err)
	}
	calls := log.snapshot()
	var events int
	for _, c := range calls {
		if c.err != nil || c.events < 1 || c.elapsed <= 0 {
			t.Fatalf("OnCommit(%d, %v, %v)", c.events, c.elapsed, c.err)
		}
		events += c.events
	}
	st := s.Stats()
	if events != workers*each || int64(len(calls)) != st.Commits || int64(events) != st.Events {
		t.Fatalf("OnCommit saw %d events in %d commits; stats %+v", events, len(calls), st)
	}

	// A failed commit is reported with its error, before Record returns.
	restore := failJournal(t, s, errors.New("disk on fire"))
	if err := s.Record(ctx, testEvent(0)); err == nil {
		t.Fatal("Record with a failing journal succeeded")
	}
	restore()
	calls = log.snapshot()
	if last := calls[len(calls)-1]; last.err == nil || last.events != 1 {
		t.Fatalf("last OnCommit = %+v, want the failure", last)
	}
}

func TestStatsQueueDepth(t *testing.T) {
	gate := newWriterGate(t)
	s := openTest(t, Options{MaxBatch: 1, beforeAppend: gate.wait})
	if d := s.Stats().QueueDepth; d != 0 {
		t.Fatalf("QueueDepth = %d on an idle store", d)
	}
	release := gate.release
	const n = 5
	var pending []audit.Pending
	for i := range n {
		pending = append(pending, s.Submit(testEvent(i)))
	}
	// The writer holds one event, blocked on the lock; the rest wait.
	waitFor(t, func() bool { return s.Stats().QueueDepth == n-1 })
	release()
	for _, p := range pending {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.QueueDepth != 0 || st.Events != n {
		t.Fatalf("stats after the queue drained: %+v", st)
	}
}

// TestOnCommitNotCalledForSkipped: events whose callers gave up before the
// writer reached them are not written, and not a commit attempt.
func TestOnCommitNotCalledForSkipped(t *testing.T) {
	var log commitLog
	gate := newWriterGate(t)
	s := openTest(t, Options{OnCommit: log.onCommit, MaxBatch: 1, beforeAppend: gate.wait})
	release := gate.release
	a := s.Submit(testEvent(0))
	waitFor(t, func() bool { return s.Stats().QueueDepth == 0 }) // the writer holds a, blocked
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Record(ctx, testEvent(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record = %v, want DeadlineExceeded", err)
	}
	release()
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(context.Background(), testEvent(2)); err != nil { // queued after the skipped one
		t.Fatal(err)
	}
	calls := log.snapshot()
	if len(calls) != 2 || calls[0].events != 1 || calls[1].events != 1 {
		t.Fatalf("OnCommit calls = %+v, want two single-event commits", calls)
	}
	if st := s.Stats(); st.Events != 2 || st.Commits != 2 {
		t.Fatalf("stats = %+v", st)
	}
}
