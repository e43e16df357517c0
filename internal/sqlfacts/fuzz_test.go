package sqlfacts

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/sqlfacts/corpus"
)

// FuzzExtract checks that Extract never panics (its recover turns a panic
// into errInternal, which fails here), that its facts are deterministic,
// that each statement's Text is a piece of the query, and that its
// Columns are well-formed and deduplicated. Seeds: the
// committed testdata/fuzz/FuzzExtract files plus the whole corpus.
func FuzzExtract(f *testing.F) {
	for _, c := range corpus.Deny {
		f.Add(c.SQL)
	}
	for _, c := range corpus.Allow {
		f.Add(c.SQL)
	}
	f.Fuzz(func(t *testing.T, q string) {
		f1, err1 := Extract(q, Options{})
		if errors.Is(err1, errInternal) {
			t.Fatalf("Extract(%q) panicked: %v", q, err1)
		}
		f2, err2 := Extract(q, Options{})
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(f1, f2) {
			t.Fatalf("Extract(%q) is not deterministic:\n%+v %v\n%+v %v", q, f1, err1, f2, err2)
		}
		if err1 != nil {
			return
		}
		if len(f1.Statements) == 0 {
			t.Fatalf("Extract(%q) returned no statements and no error", q)
		}
		for _, st := range f1.Statements {
			if !strings.Contains(q, st.Text) || st.Text == "" {
				t.Errorf("statement text %q is not part of %q", st.Text, q)
			}
			if st.Kind == "" {
				t.Errorf("statement %q has no kind", st.Text)
			}
			for _, a := range st.Accesses {
				if a.Action == "" || a.Object == "" {
					t.Errorf("statement %q has an empty access %+v", st.Text, a)
				}
			}
			seen := make(map[ColumnRef]bool, len(st.Columns))
			for _, c := range st.Columns {
				switch {
				case c.Column == "":
					t.Errorf("statement %q has a column reference without a column: %+v", st.Text, c)
				case c.Clause != ClauseOutput && c.Clause != ClausePredicate && c.Clause != ClauseOther:
					t.Errorf("statement %q has a column reference with clause %q", st.Text, c.Clause)
				case seen[c]:
					t.Errorf("statement %q lists %+v twice", st.Text, c)
				}
				seen[c] = true
			}
		}
	})
}

// FuzzShapeCache checks the Cache's shape entries: after the Cache has
// seen q, it must answer every other query exactly as Extract does
// (reflect.DeepEqual facts, the same error). The other queries are
// variants of q with each constant the lexer found replaced by lit
// (verbatim, which may not even be a constant; as a string literal; as
// a number), and lit itself. Seeds: the corpus, shapeQueries and
// notShaped, with a few literals.
func FuzzShapeCache(f *testing.F) {
	lits := []string{"42", "'x'", "1e5", "$$a$$", `E'\x41'`, "true", "NULL", "-1", "0x10", "1_000",
		"'a'\n'b'", "U&'x'", "$1", "'it''s'", "2147483648", "1.", "x", "1; DELETE FROM orders", "'--'"}
	var qs []string
	for _, c := range append(append([]corpus.Case{}, corpus.Deny...), corpus.Allow...) {
		qs = append(qs, c.SQL)
	}
	qs = append(append(qs, shapeQueries...), notShaped...)
	for i, q := range qs {
		f.Add(q, lits[i%len(lits)])
	}
	f.Fuzz(func(t *testing.T, q, lit string) {
		c := NewCache(8)
		sameAsExtract(t, c, q)
		sh, ok := lexShape(q, true)
		if !ok || len(sh.spans) == 0 {
			sameAsExtract(t, c, lit)
			return
		}
		asString := "'" + strings.ReplaceAll(lit, "'", "''") + "'"
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' || r == '.' || r == 'e' {
				return r
			}
			return -1
		}, lit)
		for _, l := range []string{lit, asString, digits} {
			for j := -1; j < len(sh.spans); j++ { // j < 0: every constant
				v := replaceConsts(q, sh.spans, func(i int) string {
					if j < 0 || i == j {
						return l
					}
					return q[sh.spans[i].start:sh.spans[i].end]
				})
				sameAsExtract(t, c, v)
			}
		}
		sameAsExtract(t, c, lit)
	})
}
