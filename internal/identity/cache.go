package identity

import (
	"container/list"
	"sync"
	"time"
)

// tokenCache remembers verified tokens so that a client presenting the same
// token on every request (an HTTP agent, a pool of PostgreSQL connections)
// costs one signature check, not one per request.
//
// Entries are keyed by SHA-256 of the raw token, so the cache never holds
// a usable credential, and are bounded in number (least recently used
// goes first) and in time: an entry lives until min(exp, insertion + ttl),
// and every hit checks "exp" again, so an expired token is never served.
type tokenCache struct {
	max int
	ttl time.Duration

	mu      sync.Mutex
	entries map[[32]byte]*list.Element // of *cacheEntry
	lru     *list.List                 // front = most recently used
}

type cacheEntry struct {
	key   [32]byte
	p     *Principal
	until time.Time
}

func newTokenCache(max int, ttl time.Duration) *tokenCache {
	return &tokenCache{
		max:     max,
		ttl:     ttl,
		entries: make(map[[32]byte]*list.Element),
		lru:     list.New(),
	}
}

// get returns the principal cached under key if it is still valid at now.
func (c *tokenCache) get(key [32]byte, now time.Time) *Principal {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	// Both bounds, every time: until already respects exp, but the hit
	// must stand on its own should either ever change.
	if !now.Before(e.until) || !now.Before(e.p.Expiry) {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return e.p
}

// put caches p under key until min(p.Expiry, now+ttl).
func (c *tokenCache) put(key [32]byte, p *Principal, now time.Time) {
	if c == nil {
		return
	}
	until := now.Add(c.ttl)
	if p.Expiry.Before(until) {
		until = p.Expiry
	}
	if !now.Before(until) {
		return // accepted only thanks to the leeway; not worth keeping
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.p, e.until = p, until
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.max {
		c.removeLocked(c.lru.Back())
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, p: p, until: until})
}

func (c *tokenCache) removeLocked(el *list.Element) {
	c.lru.Remove(el)
	delete(c.entries, el.Value.(*cacheEntry).key)
}

// len reports the number of entries, expired ones included.
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
