package sqlfacts

import (
	"fmt"
	"testing"

	"github.com/warden-gateway/warden/internal/sqlfacts/corpus"
)

// corpusGrant is what the corpus agent is allowed:
// sql: { select: [public.orders, public.customers] }.
var corpusGrant = map[Access]bool{
	{Select, "public.orders"}:    true,
	{Select, "public.customers"}: true,
}

// covered reports whether the agent's grant covers every statement of a
// query string, the way the proxy decides: a refused statement or an
// access outside the grant denies the query; EXECUTE is decided with the
// facts of the PREPARE it names, so it is covered only if that PREPARE
// (which was itself checked) came earlier in the same query.
func covered(f *Facts) (bool, string) {
	prepared := map[string]bool{}
	for _, st := range f.Statements {
		if st.Refusal != "" {
			return false, fmt.Sprintf("%q refused: %s", st.Text, st.Refusal)
		}
		for _, a := range st.Accesses {
			if !corpusGrant[a] {
				return false, fmt.Sprintf("%q needs %s %s", st.Text, a.Action, a.Object)
			}
		}
		if st.PrepareName != "" {
			prepared[st.PrepareName] = true
		}
		if st.ExecuteName != "" && !prepared[st.ExecuteName] {
			return false, fmt.Sprintf("%q executes unknown prepared statement %q", st.Text, st.ExecuteName)
		}
	}
	return true, ""
}

func TestCorpusSize(t *testing.T) {
	if len(corpus.Deny) < 70 || len(corpus.Allow) < 25 {
		t.Fatalf("corpus has %d deny and %d allow cases; want at least 70 and 25", len(corpus.Deny), len(corpus.Allow))
	}
	seen := map[string]bool{}
	for _, c := range append(append([]corpus.Case{}, corpus.Deny...), corpus.Allow...) {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
	}
}

func TestCorpusDeny(t *testing.T) {
	for _, c := range corpus.Deny {
		t.Run(c.Name, func(t *testing.T) {
			// Every Deny case must parse: a case that only fails to
			// parse would not prove that the analysis catches it.
			f, err := Extract(c.SQL, Options{})
			if err != nil {
				t.Fatalf("Extract(%q): %v", c.SQL, err)
			}
			if ok, _ := covered(f); ok {
				t.Errorf("%q would be allowed: %+v", c.SQL, f.Statements)
			}
		})
	}
}

func TestCorpusAllow(t *testing.T) {
	for _, c := range corpus.Allow {
		t.Run(c.Name, func(t *testing.T) {
			f, err := Extract(c.SQL, Options{})
			if err != nil {
				t.Fatalf("Extract(%q): %v", c.SQL, err)
			}
			if ok, why := covered(f); !ok {
				t.Errorf("%q would be denied: %s", c.SQL, why)
			}
		})
	}
}
