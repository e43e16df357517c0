package sqlfacts

import "testing"

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
