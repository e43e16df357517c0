package sqlfacts

import (
	"fmt"
	"sync"
	"testing"
)

func TestCacheHitReturnsSameFacts(t *testing.T) {
	c := NewCache(8)
	f1, err := c.Extract("SELECT * FROM orders", Options{})
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := c.Extract("SELECT * FROM orders", Options{Schema: "public"})
	if f1 != f2 {
		t.Error("a repeated query (default schema spelled out) was analysed again")
	}
	f3, _ := c.Extract("SELECT * FROM orders", Options{Schema: "app"})
	if f3 == f1 || f3.Statements[0].Accesses[0].Object != "app.orders" {
		t.Errorf("the schema is not part of the key: %+v", f3.Statements[0].Accesses)
	}
}

func TestCacheCachesErrors(t *testing.T) {
	c := NewCache(8)
	_, err1 := c.Extract("SELEC 1", Options{})
	_, err2 := c.Extract("SELEC 1", Options{})
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors not cached: %v, %v", err1, err2)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
}

func TestCacheBounded(t *testing.T) {
	c := NewCache(16)
	hot := "SELECT * FROM customers"
	for i := 0; i < 1000; i++ {
		if _, err := c.Extract(fmt.Sprintf("SELECT %d", i), Options{}); err != nil {
			t.Fatal(err)
		}
		c.Extract(hot, Options{}) // keep one entry in use
		if n := c.Len(); n > 16 {
			t.Fatalf("cache grew to %d entries", n)
		}
	}
	c.exact.mu.RLock()
	_, kept := c.exact.entries[cacheKey{DefaultSchema, hot}]
	c.exact.mu.RUnlock()
	if !kept {
		t.Error("CLOCK evicted the entry that was used on every round")
	}
}

func TestCacheSkipsLongQueries(t *testing.T) {
	c := NewCache(8)
	long := "SELECT '" + string(make([]byte, 0, 1)) + fmt.Sprintf("%0*d", maxCachedQueryLen, 0) + "'"
	if _, err := c.Extract(long, Options{}); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Error("a query longer than maxCachedQueryLen was cached")
	}
}

func TestNilCache(t *testing.T) {
	var c *Cache
	if f, err := c.Extract("SELECT 1", Options{}); err != nil || len(f.Statements) != 1 {
		t.Fatalf("nil cache: %v, %v", f, err)
	}
}

// TestCacheConcurrent is for -race.
func TestCacheConcurrent(t *testing.T) {
	c := NewCache(32)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				q := fmt.Sprintf("SELECT * FROM orders WHERE id = %d", (i*7+g)%64)
				f, err := c.Extract(q, Options{})
				if err != nil || len(f.Statements) != 1 {
					t.Errorf("%q: %v", q, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
