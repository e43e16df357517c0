package sqlfacts

import (
	"fmt"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

const benchQuery = `SELECT c.name, sum(o.amount) AS total, count(*) FILTER (WHERE o.amount > 10)
FROM customers c JOIN orders o ON o.customer_id = c.id
WHERE o.created_at > now() - interval '30 days' AND c.email LIKE '%@example.com'
GROUP BY c.name ORDER BY total DESC LIMIT 10`

func BenchmarkExtract(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(benchQuery, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtractSimple(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract("SELECT * FROM orders WHERE id = 1", Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColumnRefs measures the column-reference walk alone on the
// parse tree of benchQuery, to set against BenchmarkExtract: it runs once
// per distinct query text, since facts are cached.
func BenchmarkColumnRefs(b *testing.B) {
	for name, q := range map[string]string{
		"bench": benchQuery,
		"nested": `WITH x AS (SELECT c.id, lower(c.email) AS e, row_to_json(c) AS j FROM customers c)
SELECT q.e, (SELECT count(*) FROM orders o WHERE o.customer_id = q.id), u.*
FROM (SELECT * FROM x) q, LATERAL (SELECT note FROM orders WHERE note = q.e UNION SELECT name FROM customers) u
WHERE q.j IS NOT NULL ORDER BY 1`,
	} {
		tree, err := pg_query.Parse(q)
		if err != nil {
			b.Fatal(err)
		}
		stmt := tree.GetStmts()[0].GetStmt()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a := analyzer{schema: DefaultSchema, st: &Statement{}}
				if cols := a.columnRefs(stmt); len(cols) == 0 {
					b.Fatal("no columns")
				}
			}
		})
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(1024)
	if _, err := c.Extract(benchQuery, Options{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Extract(benchQuery, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	c := NewCache(1024)
	if _, err := c.Extract(benchQuery, Options{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Extract(benchQuery, Options{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCachePgbenchSelect is pgbench -S through a Cache of the
// gateway's size: the same statement with a new aid every time, so the
// cache keyed by query text always misses. exact-miss is that path
// alone (the Cache before shapes: a full parse and normalization per
// query); shape-hit is the Cache as it is, answering from the shape
// stored for the first query.
func BenchmarkCachePgbenchSelect(b *testing.B) {
	const n = 100000 // pgbench_accounts rows at scale 1
	qs := make([]string, n)
	for i := range qs {
		qs[i] = fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", (i*7919)%n+1)
	}
	for _, bc := range []struct {
		name string
		c    *Cache
	}{
		{"exact-miss", &Cache{exact: newClock[cacheKey, cacheResult](10000)}},
		{"shape-hit", NewCache(10000)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := bc.c.Extract("SELECT abalance FROM pgbench_accounts WHERE aid = 0;", Options{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f, err := bc.c.Extract(qs[i%n], Options{})
				if err != nil || len(f.Statements) != 1 {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkLexShape is what a query missing the exact cache pays to look
// up its shape, whether or not the shape is cacheable.
func BenchmarkLexShape(b *testing.B) {
	for name, q := range map[string]string{"pgbench": "SELECT abalance FROM pgbench_accounts WHERE aid = 81723;", "bench": benchQuery} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := lexShape(q, false); !ok {
					b.Fatal("gave up")
				}
			}
		})
	}
}
