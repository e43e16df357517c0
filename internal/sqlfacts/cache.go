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

// Cache memoises Extract. It holds two bounded maps, each evicting with
// the CLOCK (second-chance) algorithm:
//
//   - by (Options.Schema, query text): every query that was analysed,
//     errors included;
//   - by (Options.Schema, literal shape): the facts of a query whose
//     facts cannot depend on the value of any of its constants, for the
//     other queries that differ from it only in those values (see
//     lexShape and shapeConsts). A shape is stored only when the lexer
//     that computes it for a new query and the parser agree on where the
//     constants are, what kind each is, and on the normalized text.
//
// It is safe for concurrent use; a hit takes a read lock, one map lookup
// and an atomic flag, so concurrent hits do not serialise on a list
// update as they would with a strict LRU. A query missing from the first
// map is lexed (no parse) to look it up in the second.
//
// The *Facts a Cache returns is shared by every caller that asks for the
// same query, and its Accesses and Columns by every query of one shape:
// callers must treat it, its Statements and their Accesses and Columns
// as read-only. A nil *Cache is valid and calls Extract every time.
type Cache struct {
	exact  *clock[cacheKey, cacheResult]
	shapes *clock[shapeKey, *Facts] // nil: no shape cache (benchmarks)
}

type cacheKey struct {
	schema string
	query  string
}

type cacheResult struct {
	facts *Facts
	err   error
}

// shapeKey is a literal shape: its normalized text (which is also the
// Fingerprint) and the kinds of its constants, so that x = '1' and
// x = 1 are different shapes.
type shapeKey struct {
	schema string
	norm   string
	kinds  string
}

// NewCache returns a cache of at most size entries (DefaultCacheSize if
// size <= 0) in each of its two maps.
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{exact: newClock[cacheKey, cacheResult](size), shapes: newClock[shapeKey, *Facts](size)}
}

// Extract returns Extract(query, opts), from the cache when the same
// query, or one that differs from it only in the values of constants
// that the facts do not depend on, was analysed before with the same
// schema. The result is shared: do not modify it.
func (c *Cache) Extract(query string, opts Options) (*Facts, error) {
	if c == nil {
		return Extract(query, opts)
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	k := cacheKey{schema: schema, query: query}
	if r, ok := c.exact.get(k); ok {
		return r.facts, r.err
	}
	if len(query) > maxCachedQueryLen {
		return Extract(query, opts)
	}
	var (
		sh     literalShape
		shaped bool
	)
	if c.shapes != nil {
		sh, shaped = lexShape(query, false)
	}
	if shaped {
		if f, ok := c.shapes.get(shapeKey{schema: schema, norm: sh.norm, kinds: sh.kinds}); ok {
			return f.withText(query[:sh.end]), nil
		}
	}
	// The query may be a slice of a larger protocol buffer; the entry
	// (and the statement texts sliced from it) must not pin that buffer.
	k.query = strings.Clone(query)
	facts, ts, err := extract(k.query, Options{Schema: schema}, shaped)
	c.exact.put(k, cacheResult{facts: facts, err: err})
	if shaped && err == nil && ts.ok {
		// Lexed again for the constants' offsets, which a lookup does
		// not need; this is the slow path anyway.
		if sh, ok := lexShape(k.query, true); ok && sh.agrees(k.query, facts, ts) {
			c.shapes.put(shapeKey{schema: schema, norm: sh.norm, kinds: sh.kinds}, facts)
		}
	}
	return facts, err
}

// withText returns a copy of the facts of a one-statement query, for
// another query of the same shape whose statement is text (up to its
// ';'), trimmed as Extract's stmtText trims it. f is shared and is not
// modified; the copy shares its Accesses and Columns.
func (f *Facts) withText(text string) *Facts {
	c := &struct {
		f  Facts
		st [1]Statement
	}{f: *f, st: [1]Statement{f.Statements[0]}}
	c.st[0].Text = strings.TrimSpace(text)
	c.f.Statements = c.st[:]
	return &c.f
}

// Len reports the number of queries cached by their text.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	return c.exact.len()
}

// clock is a map of at most size entries that evicts with the CLOCK
// algorithm.
type clock[K comparable, V any] struct {
	size int

	mu      sync.RWMutex
	entries map[K]*clockEntry[K, V]
	ring    []*clockEntry[K, V] // len(ring) <= size
	hand    int                 // next ring slot to consider for eviction
}

type clockEntry[K comparable, V any] struct {
	key  K
	val  V
	used atomic.Bool // referenced since the hand last passed
}

func newClock[K comparable, V any](size int) *clock[K, V] {
	return &clock[K, V]{
		size:    size,
		entries: make(map[K]*clockEntry[K, V], size),
		ring:    make([]*clockEntry[K, V], 0, size),
	}
}

func (c *clock[K, V]) get(k K) (v V, ok bool) {
	c.mu.RLock()
	e := c.entries[k]
	c.mu.RUnlock()
	if e == nil {
		return v, false
	}
	if !e.used.Load() { // avoid writing a shared cache line on every hit
		e.used.Store(true)
	}
	return e.val, true
}

func (c *clock[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (c *clock[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.entries[k]; dup {
		return // another goroutine analysed the same query meanwhile
	}
	e := &clockEntry[K, V]{key: k, val: v}
	c.entries[k] = e
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
