package sqlfacts

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Errors Extract returns for a query it will not analyse. Any error means
// the caller must refuse the whole query; a parse error from the
// PostgreSQL grammar is returned wrapped as well.
var (
	ErrEmpty       = errors.New("query contains no statement")
	ErrInvalidUTF8 = errors.New("query is not valid UTF-8")
	ErrNUL         = errors.New("query contains a NUL byte")
	ErrTooDeep     = errors.New("query nests too deeply")

	errInternal = errors.New("internal error")
)

// maxNormalizeLen bounds the queries Extract normalizes for Fingerprint.
const maxNormalizeLen = 8 << 10

// DefaultSchema is the schema unqualified names resolve to when
// Options.Schema is empty.
const DefaultSchema = "public"

// Extract parses query, which may hold several statements separated by
// semicolons, with the PostgreSQL grammar and returns the facts of each
// statement, in order. It never panics; an error means the query must be
// refused as a whole.
//
// A NUL byte is refused because libpg_query reads a C string and would
// stop there while the server reads the protocol message's full length;
// invalid UTF-8 is refused because warden's upstream sessions use UTF8
// client encoding and a byte sequence the two sides decode differently
// could hide a quote.
func Extract(query string, opts Options) (*Facts, error) {
	facts, _, err := extract(query, opts, false)
	return facts, err
}

// extract is Extract. With shape set it also decides, on the parse tree,
// whether the facts could be shared with every query of the same
// literal shape: a single statement, not refused, whose facts cannot
// depend on any constant's value (shapeConsts).
func extract(query string, opts Options, shape bool) (facts *Facts, ts treeShape, err error) {
	// The analysis indexes into parse trees from a C parser; should a
	// tree ever break an assumption made here, refuse the query rather
	// than take the proxy down. FuzzExtract looks for such inputs.
	defer func() {
		if r := recover(); r != nil {
			facts, ts, err = nil, treeShape{}, fmt.Errorf("sqlfacts.Extract: %w: %v", errInternal, r)
		}
	}()
	if strings.IndexByte(query, 0) >= 0 {
		return nil, ts, fmt.Errorf("sqlfacts.Extract: %w", ErrNUL)
	}
	if !utf8.ValidString(query) {
		return nil, ts, fmt.Errorf("sqlfacts.Extract: %w", ErrInvalidUTF8)
	}
	if len(query) > nestingCheckMinLen {
		if err := checkNesting(query); err != nil {
			return nil, ts, fmt.Errorf("sqlfacts.Extract: %w", err)
		}
	}
	tree, err := pg_query.Parse(query)
	if err != nil {
		return nil, ts, fmt.Errorf("sqlfacts.Extract: %w", err)
	}
	if len(tree.GetStmts()) == 0 {
		return nil, ts, fmt.Errorf("sqlfacts.Extract: %w", ErrEmpty)
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	facts = &Facts{Statements: make([]Statement, len(tree.Stmts))}
	for i, raw := range tree.Stmts {
		st := &facts.Statements[i]
		text, ok := stmtText(query, raw)
		if !ok {
			return nil, ts, fmt.Errorf("sqlfacts.Extract: statement %d has location %d+%d outside the query", i+1, raw.GetStmtLocation(), raw.GetStmtLen())
		}
		st.Text = text
		a := analyzer{schema: schema, st: st}
		st.Kind = a.statement(raw.GetStmt())
		st.Columns = a.columnRefs(raw.GetStmt())
	}
	// The normalized text (constants replaced by $n) groups an audit log's
	// statements by shape; it is computed once per distinct query text,
	// since facts are cached.
	if len(query) <= maxNormalizeLen {
		if n, err := pg_query.Normalize(query); err == nil {
			facts.Fingerprint = n
		}
	}
	if shape && len(tree.Stmts) == 1 {
		st := &facts.Statements[0]
		if st.Refusal == "" && st.PrepareName == "" && st.ExecuteName == "" && st.DeallocateName == "" && !st.DeallocateAll {
			ts.consts, ts.ok = shapeConsts(tree.Stmts[0].GetStmt())
		}
	}
	return facts, ts, nil
}

// stmtText slices a statement's own text out of the query using the
// parser's byte offsets. A length of 0 means "to the end of the input"
// (src/include/nodes/parsenodes.h, RawStmt).
func stmtText(query string, raw *pg_query.RawStmt) (string, bool) {
	start, n := int(raw.GetStmtLocation()), int(raw.GetStmtLen())
	end := len(query)
	if n > 0 {
		end = start + n
	}
	if start < 0 || n < 0 || end > len(query) || start > end {
		return "", false
	}
	return strings.TrimSpace(query[start:end]), true
}

// analyzer collects the facts of one top-level statement.
type analyzer struct {
	schema string     // <Schema> of the pinned search path
	st     *Statement // being filled
	seen   map[Access]struct{}
	// ctes are the names of the common table expressions in scope,
	// innermost WITH last. An unqualified name found here is not a
	// relation (docs 7.8 "WITH Queries").
	ctes []map[string]struct{}
}

// add records that the statement needs act on obj, once.
func (a *analyzer) add(act Action, obj string) {
	k := Access{Action: act, Object: obj}
	if a.seen == nil {
		a.seen = make(map[Access]struct{})
	}
	if _, dup := a.seen[k]; dup {
		return
	}
	a.seen[k] = struct{}{}
	a.st.Accesses = append(a.st.Accesses, k)
}

// refuse marks the statement as refused; the first reason is kept.
func (a *analyzer) refuse(why string) {
	if a.st.Refusal == "" {
		a.st.Refusal = why
	}
}

func (a *analyzer) highRisk() { a.st.HighRisk = true }

// isCTE reports whether an unqualified relation name refers to a CTE in
// scope.
func (a *analyzer) isCTE(name string) bool {
	for i := len(a.ctes) - 1; i >= 0; i-- {
		if _, ok := a.ctes[i][name]; ok {
			return true
		}
	}
	return false
}

// Deeply nested parse trees.
//
// Bison builds left-recursive chains such as 1+1+1+... or x ISNULL ISNULL
// ... without growing its own stack, so the raw parser accepts them at any
// length; but libpg_query then writes the tree out recursively and, past
// roughly 20,000 levels on an 8 MiB thread stack, overflows the C stack
// and kills the process (a signal Go cannot recover from). Trees deeper
// than about 5,000 levels are refused anyway, by the protobuf decoder's
// recursion limit, so nothing usable is lost by refusing, before parsing,
// every query whose token structure could nest deeper than
// maxNestingEstimate.
const (
	// nestingCheckMinLen: a shorter query cannot come near the crash
	// depth (every level costs at least one byte), so the extra scan is
	// skipped for it.
	nestingCheckMinLen = 8 << 10
	// maxNestingEstimate bounds nestingEstimate; half the smallest depth
	// seen to crash.
	maxNestingEstimate = 10000
	// parenCost is what one level of parentheses or brackets may add to
	// the tree beyond its tokens (SubLink, SelectStmt, ResTarget, ...).
	parenCost = 8
)

// checkNesting scans query (the scanner is flat and cannot overflow) and
// refuses it if nestingEstimate exceeds maxNestingEstimate. The estimate
// is an upper bound on the tree depth: within one comma-separated element
// every token can add at most one level, and every enclosing parenthesis
// adds its own element's tokens plus parenCost. Long flat lists (VALUES
// rows, IN lists) stay cheap because commas reset the count.
func checkNesting(query string) error {
	sr, err := pg_query.Scan(query)
	if err != nil {
		return err
	}
	counts := make([]int, 1, 16) // tokens in the current element, per open paren
	total := 0                   // sum(counts) + parenCost*(len(counts)-1)
	for _, tok := range sr.GetTokens() {
		top := len(counts) - 1
		switch tok.GetToken() {
		case pg_query.Token_ASCII_40, pg_query.Token_ASCII_91: // ( [
			counts = append(counts, 0)
			total += parenCost
		case pg_query.Token_ASCII_41, pg_query.Token_ASCII_93: // ) ]
			if top > 0 {
				total -= counts[top] + parenCost
				counts = counts[:top]
			}
		case pg_query.Token_ASCII_44, pg_query.Token_ASCII_59: // , ;
			total -= counts[top]
			counts[top] = 0
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
		default:
			counts[top]++
			total++
		}
		if total > maxNestingEstimate {
			return ErrTooDeep
		}
	}
	return nil
}
