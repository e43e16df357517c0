package sqlfacts

import (
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultCacheSize is the number of entries NewCache uses for a size <= 0.
const DefaultCacheSize = 4096

// maxCachedQueryLen bounds what one cache entry can hold: longer query
// strings are analysed every time. Agents repeat short statements; a
// bulk INSERT with megabytes of VALUES is rarely repeated, and caching it
// would let a client pin size × its length of memory.
const maxCachedQueryLen = 8 << 10

// Cache memoises Extract. It is keyed by (Options.Schema, query text),
// holds at most a fixed number of entries, evicts with the CLOCK
// (second-chance) algorithm, and caches errors as well as facts. It is
// safe for concurrent use; a hit takes a read lock, one map lookup and an
// atomic flag, so concurrent hits do not serialise on a list update as
// they would with a strict LRU.
//
// The *Facts a Cache returns is shared by every caller that asks for the
// same query: callers must treat it, its Statements and their Accesses as
// read-only. A nil *Cache is valid and calls Extract every time.
type Cache struct {
	size int

	mu      sync.RWMutex
	entries map[cacheKey]*cacheEntry
	ring    []*cacheEntry // CLOCK ring; len(ring) <= size
	hand    int           // next ring slot to consider for eviction
}

type cacheKey struct {
	schema string
	query  string
}

type cacheEntry struct {
	key   cacheKey
	facts *Facts
	err   error
	used  atomic.Bool // referenced since the hand last passed
}

// NewCache returns a cache of at most size entries (DefaultCacheSize if
// size <= 0).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{
		size:    size,
		entries: make(map[cacheKey]*cacheEntry, size),
		ring:    make([]*cacheEntry, 0, size),
	}
}

// Extract returns Extract(query, opts), from the cache when the same
// query was analysed before with the same schema. The result is shared:
// do not modify it.
func (c *Cache) Extract(query string, opts Options) (*Facts, error) {
	if c == nil {
		return Extract(query, opts)
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	k := cacheKey{schema: schema, query: query}
	c.mu.RLock()
	e := c.entries[k]
	c.mu.RUnlock()
	if e != nil {
		if !e.used.Load() { // avoid writing a shared cache line on every hit
			e.used.Store(true)
		}
		return e.facts, e.err
	}
	if len(query) > maxCachedQueryLen {
		return Extract(query, opts)
	}
	// The query may be a slice of a larger protocol buffer; the entry
	// (and the statement texts sliced from it) must not pin that buffer.
	k.query = strings.Clone(query)
	facts, err := Extract(k.query, Options{Schema: schema})
	c.mu.Lock()
	c.insertLocked(&cacheEntry{key: k, facts: facts, err: err})
	c.mu.Unlock()
	return facts, err
}

// Len reports the number of cached entries.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (c *Cache) insertLocked(e *cacheEntry) {
	if _, dup := c.entries[e.key]; dup {
		return // another goroutine analysed the same query meanwhile
	}
	c.entries[e.key] = e
	if len(c.ring) < c.size {
		c.ring = append(c.ring, e)
		return
	}
	// CLOCK: clear the used flag of entries the hand passes; replace the
	// first one found unused. Terminates within two turns of the ring.
	for {
		old := c.ring[c.hand]
		if old.used.Load() {
			old.used.Store(false)
			c.hand = (c.hand + 1) % len(c.ring)
			continue
		}
		delete(c.entries, old.key)
		c.ring[c.hand] = e
		c.hand = (c.hand + 1) % len(c.ring)
		return
	}
}
