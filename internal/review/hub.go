package review

import (
	"context"
	"sync"
)

// hub wakes the waiters of a review in this process when it changes. A
// waiter takes the current channel of its id, reads the review, and
// selects on the channel; broadcast closes it, so every waiter wakes and
// re-reads. Taking the channel before reading means no change is missed.
// Entries are reference-counted so an id nobody waits for costs nothing.
type hub struct {
	mu      sync.Mutex
	waiters map[string]*waitSet
}

type waitSet struct {
	ch   chan struct{}
	refs int
}

// watch returns a channel closed at the next broadcast for id, and a
// release func that must be called once the caller stops waiting on it.
func (h *hub) watch(id string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiters == nil {
		h.waiters = make(map[string]*waitSet)
	}
	ws := h.waiters[id]
	if ws == nil {
		ws = &waitSet{ch: make(chan struct{})}
		h.waiters[id] = ws
	}
	ws.refs++
	return ws.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		ws.refs--
		if ws.refs == 0 && h.waiters[id] == ws {
			delete(h.waiters, id)
		}
	}
}

// broadcast wakes everyone waiting on id.
func (h *hub) broadcast(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ws := h.waiters[id]; ws != nil {
		close(ws.ch)
		delete(h.waiters, id)
	}
}

// keyedLocks serializes work on one key (a fingerprint, a review id)
// within this process. It turns check-then-write sequences against the
// Store (find a pending review or create one; read, append an approval,
// write back) into atomic ones here; the Store's compare-and-set still
// guards against other replicas.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters; the entry goes at zero
}

// lock takes the lock for key, or returns ctx's error if ctx ends first.
// The returned func releases it.
func (k *keyedLocks) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	select {
	case l.ch <- struct{}{}:
		return func() {
			<-l.ch
			k.release(key, l)
		}, nil
	case <-ctx.Done():
		k.release(key, l)
		return nil, ctx.Err()
	}
}

func (k *keyedLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(k.locks, key)
	}
}
