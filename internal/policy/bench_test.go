package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// benchConfig is a configuration of realistic size: 20 policies that all
// match, each with exact names and globs for several actions, and deny
// rules, so that a decision has many entries to look through.
func benchConfig() string {
	var b strings.Builder
	b.WriteString(`listen: { postgres: 127.0.0.1:6432 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
targets:
  - { name: prod-db, type: postgres, address: "127.0.0.1:5432", database: app, user: warden }
policies:
`)
	for i := range 20 {
		fmt.Fprintf(&b, `  - name: p%d
    when: '"analysts" in groups'
    allow:
      - target: prod-db
        sql:
          select: [public.t%d_a, public.t%d_b, "public.v%d_*", "s%d.*"]
          insert: [public.t%d_a]
          execute: [public.f%d]
    deny:
      - target: prod-db
        sql: { select: ["public.secret_%d_*"], delete: ["*.*"] }
`, i, i, i, i, i, i, i, i)
	}
	return b.String()
}

func BenchmarkDecideStatement(b *testing.B) {
	e := compileTest(b, benchConfig())
	s := e.Bind(analyst)
	if len(s.Policies()) != 20 {
		b.Fatalf("policies = %d", len(s.Policies()))
	}
	cases := []struct {
		name   string
		st     *sqlfacts.Statement
		effect Effect
	}{
		{"exact/1", stmt("select", "select public.t7_a"), Allow},
		{"exact/4", stmt("select", "select public.t1_a", "select public.t2_b", "insert public.t3_a", "execute public.f4"), Allow},
		{"glob", stmt("select", "select s19.anything"), Allow},
		{"no-access", stmt("begin"), Allow},
		{"default-deny", stmt("select", "select public.nothing"), Deny},
		{"explicit-deny", stmt("delete", "delete public.t1_a"), Deny},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := s.DecideStatement("prod-db", c.st); d.Effect != c.effect {
					b.Fatal(d.Reason)
				}
			}
		})
	}
}

func BenchmarkBind(b *testing.B) {
	e := compileTest(b, benchConfig())
	b.ReportAllocs()
	for b.Loop() {
		e.Bind(analyst)
	}
}
