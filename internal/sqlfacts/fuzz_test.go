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
