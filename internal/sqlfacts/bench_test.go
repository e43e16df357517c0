package sqlfacts

import (
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
