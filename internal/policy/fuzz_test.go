package policy

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
)

// FuzzPattern checks the wildcard matcher against a regular expression
// built from the same tokens: the matcher is hand-written for speed, the
// regexp package is the reference.
func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"order_*", "order_items"}, {"a*b*c", "abcabc"}, {"a?c", "aéc"}, {`a\*b`, "a*b"},
		{"*a*a*b", "aaaaaaaa"}, {"a*a", "a"}, {"?", "\xff"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		// Patterns come from YAML, which is UTF-8; objects may be anything.
		if len(pat) > 64 || len(s) > 256 || !utf8.ValidString(pat) {
			return
		}
		p := compilePattern(pat)
		var re strings.Builder
		re.WriteString(`^`)
		if !p.wild {
			re.WriteString(regexp.QuoteMeta(p.lit))
		}
		for _, tk := range p.toks {
			switch tk.kind {
			case tokLit:
				re.WriteString(regexp.QuoteMeta(tk.text))
			case tokStar:
				re.WriteString(`(?s:.*)`)
			case tokOne:
				re.WriteString(`(?s:.)`)
			}
		}
		re.WriteString(`$`)
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := p.match(s); got != want {
			t.Fatalf("pattern %q (regexp %s) on %q: got %v, want %v", pat, re.String(), s, got, want)
		}
	})
}

// FuzzParseObjectGlob checks that every glob config accepts compiles, and
// that a literal glob matches the object it names.
func FuzzParseObjectGlob(f *testing.F) {
	for _, s := range []string{"public.orders", "public.*", `public."Order Items"`, `"a""b".c\*`, "x.y.z", `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := config.ParseObjectGlob(s)
		if err != nil {
			return
		}
		var rs ruleSet
		ref := &ruleRef{id: "p/allow[0]"}
		if err := rs.add(g, "public", ref); err != nil {
			return
		}
		sp, np := compilePattern(g.Schema), compilePattern(g.Name)
		if !g.Qualified() {
			sp = compilePattern("public")
		}
		if !sp.wild && !np.wild {
			if got := rs.match(objKey{schema: sp.lit, name: np.lit}); got != ref {
				t.Fatalf("literal glob %q does not match %s.%s", s, sp.lit, np.lit)
			}
		}
	})
}

// Subjects are used by many sessions at once, and Bind fills a shared
// cache; run under -race.
func TestConcurrentBindAndDecide(t *testing.T) {
	e := compileTest(t, testConfig)
	whos := []*identity.Principal{analyst, writer, ops, opsAnal, nobody, quoted}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				s := e.Bind(whos[(i+j)%len(whos)])
				s.DecideStatement("prod-db", stmt("select", "select public.orders", "delete public.audit_1"))
				s.CanConnect("reports")
			}
		})
	}
	wg.Wait()
}

// FuzzColumnGlob checks that every column glob config accepts compiles
// into a mask set, and that a glob without wildcards masks the column it
// names, through the exact fast path and the set's Table alike.
func FuzzColumnGlob(f *testing.F) {
	for _, s := range []string{"public.customers.email", "*.ssn", `public."Orders"."To.tal"`, `t.a\*b`, "a.b.c.d", `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := config.ParseColumnGlob(s)
		if err != nil {
			return
		}
		r := &maskRule{cm: ColumnMask{Rule: "p/mask[0]", Style: "redact"}}
		schema := g.Schema
		if !g.Qualified() {
			schema = "*"
		}
		cg := colGlob{schema: compilePattern(schema), table: compilePattern(g.Table), column: compilePattern(g.Column), rule: r}
		r.columns = []colGlob{cg}
		ms := newMaskSet("db", []*maskRule{r})
		if !cg.literal() {
			return
		}
		cm, ok := ms.Column(cg.schema.lit, cg.table.lit, cg.column.lit)
		if !ok || cm.Rule != "p/mask[0]" || !ms.Table(cg.schema.lit, cg.table.lit) {
			t.Fatalf("literal glob %q does not mask %s.%s.%s", s, cg.schema.lit, cg.table.lit, cg.column.lit)
		}
	})
}
