package sqlfacts

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Literal shapes.
//
// Clients that interpolate values into the query text (the simple query
// protocol: pgbench -S, psql, ORMs quoting on the client side) send the
// same statement again and again with different constants, and a cache
// keyed by the exact text misses every time. A shape is a query with its
// constants replaced by $1, $2, ..., in the format of pg_query.Normalize
// (so it is also the Fingerprint), plus the lexical kind of each
// constant. Two queries of one shape hand the grammar the same tokens
// apart from the constants' values (the text between constants is the
// same, and so is each constant's token type), so they parse to the
// same tree apart from those values, and pg_query normalizes them alike;
// when no fact depends on a value (shapeConsts decides that on the
// tree), their facts differ only in Statement.Text. The Cache relies on
// that, so nothing here may depend on a value either: the scanner's
// choices that do (an integer too large for int32 is an FCONST, an E'...'
// escape may make the string invalid) are kinds or reasons to give up.
//
// lexShape finds the constants without parsing. It mirrors the
// PostgreSQL 17 scanner (src/backend/parser/scan.l) for the tokens it
// accepts and gives up on everything else. Where it does not give up it
// must be exact about where each constant starts and ends and what kind
// of token it is: a query it gets wrong could be given another query's
// facts. The Cache stores a shape only after checking, on the parse
// tree, that the lexer found exactly the tree's constants and that its
// normalized text is byte-identical to pg_query's Fingerprint.

// Literal kinds: the token the scanner hands to the grammar. They are
// part of the shape key because they decide how the query parses and
// which operators resolve (x = '1' compares as x's type, x = 1 as int4).
const (
	kindInt    = 'i' // ICONST: a decimal integer that fits in int32
	kindFloat  = 'd' // FCONST: a decimal with a point or exponent, or a larger integer
	kindString = 's' // SCONST: '...', E'...', $tag$...$tag$
	kindTrue   = 't' // TRUE
	kindFalse  = 'f' // FALSE
	kindNull   = 'n' // NULL
	// A number with its prefix minus: the grammar's A_Const is then
	// kindInt or kindFloat, located at the minus.
	kindNegInt   = 'I'
	kindNegFloat = 'D'
)

// literalShape is the result of lexShape.
type literalShape struct {
	norm  string // the query, constants replaced by $1, $2, ...
	kinds string // the kind of each constant, in order
	end   int    // end of the statement's text: its ';', or len(query)
	spans []span // where each constant is (only when asked for)
}

// span is where a constant is in the query: q[start:end].
type span struct{ start, end int }

// maxShapeLen bounds the queries lexShape looks at; longer ones are not
// cached at all (maxCachedQueryLen). Up to this length Extract always
// sets Fingerprint and never runs checkNesting, so a shape's facts do
// not depend on the query's length; the constant expressions below fail
// to compile should either limit drop beneath it.
const maxShapeLen = maxCachedQueryLen

const (
	_ = uint(maxNormalizeLen - maxShapeLen)
	_ = uint(nestingCheckMinLen - maxShapeLen)
)

// lexShape returns the shape of a query holding a single statement,
// optionally followed by one ';' and then only whitespace and comments.
// ok is false for anything it is not sure about, including every
// construct below that PostgreSQL accepts but this lexer does not
// handle: B'1', X'ff', N'x' and U&'x' strings, U&"x" identifiers, $n
// parameters, E'...' escapes that produce bytes or code points (\ddd, \x,
// \u, \U), numbers in hex, octal or binary or with underscores, and
// string constants continued on the next line.
//
// A number after a '-' that can only be a prefix minus (after an
// operator, '(' or ',' or a keyword such as WHERE), with only
// whitespace between them, is taken with the minus as one constant of
// a negative kind: the grammar folds -1 into the constant (doNegate in
// gram.y) and pg_query normalizes the two tokens as one. Whether that
// guess is right is checked on the tree like the rest; the kind keeps
// x = -1 and x = 1 apart, and -1::int (the minus of a cast) apart from
// both.
func lexShape(q string, wantSpans bool) (sh literalShape, ok bool) {
	if len(q) > maxShapeLen || strings.IndexByte(q, 0) >= 0 || !utf8.ValidString(q) {
		return sh, false
	}
	var (
		b      strings.Builder
		kbuf   [32]byte
		kinds  = kbuf[:0]
		copied int  // q[:copied] is in b
		semi   = -1 // offset of the ';'
		tokens int  // tokens seen before the ';'
		// afterIS is 1 after the keyword IS and 2 after IS NOT, where
		// TRUE, FALSE and NULL are part of a test (x IS NOT NULL), not
		// constants.
		afterIS int
		// prev is the class of the previous token; after a '-', before
		// is the class of the token before it and minus its offset.
		prev, before tokClass
		minus        int
	)
	b.Grow(len(q) + 8)
	constant := func(start, end int, kind byte) {
		b.WriteString(q[copied:start])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(len(kinds) + 1))
		copied = end
		kinds = append(kinds, kind)
		if wantSpans {
			sh.spans = append(sh.spans, span{start, end})
		}
	}
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case isSpace(c):
			i++
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			i = skipLineComment(q, i)
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if i = skipBlockComment(q, i); i < 0 {
				return sh, false
			}
			continue
		}
		if semi >= 0 {
			return sh, false // a second statement, or a second ';'
		}
		is, class := 0, tokValue
		switch {
		case c == ';':
			if tokens == 0 {
				return sh, false // an empty statement first
			}
			semi = i
			i++
			continue
		case c == '\'':
			end, ok := endQuoted(q, i+1, '\'')
			if !ok || continues(q, end) {
				return sh, false
			}
			constant(i, end, kindString)
			i = end
		case (c == 'e' || c == 'E') && i+1 < len(q) && q[i+1] == '\'':
			end, ok := endEscapeString(q, i+2)
			if !ok || continues(q, end) {
				return sh, false
			}
			constant(i, end, kindString)
			i = end
		case c == '"':
			end, ok := endQuoted(q, i+1, '"')
			if !ok || end == i+2 {
				return sh, false // unterminated, or a zero-length identifier
			}
			i = end
		case c == '$':
			end, ok := endDollarQuoted(q, i)
			if !ok {
				return sh, false // a parameter, or not a dollar quote
			}
			constant(i, end, kindString)
			i = end
		case isDigit(c) || c == '.' && i+1 < len(q) && isDigit(q[i+1]):
			end, kind, ok := endNumber(q, i)
			if !ok {
				return sh, false
			}
			start := i
			// Not across a comment: pg_query then takes the wrong
			// length for the constant.
			if prev == tokMinus && before != tokValue && strings.TrimLeft(q[minus+1:i], " \t\n\r\f\v") == "" {
				start, kind = minus, negative(kind)
			}
			constant(start, end, kind)
			i = end
		case isIdentStart(c):
			if i+1 < len(q) && (q[i+1] == '\'' && strings.IndexByte("bBxXnN", c) >= 0 ||
				q[i+1] == '&' && (c == 'u' || c == 'U')) {
				return sh, false // B'', X'', N'', U&'', U&""
			}
			end := i + 1
			for end < len(q) && isIdentCont(q[end]) {
				end++
			}
			switch kw := keyword(q[i:end]); {
			case kw == "":
			case kw == "is":
				is, class = 1, tokOther
			case kw == "not" && afterIS == 1:
				is, class = 2, tokOther
			case kw == "true" && afterIS == 0:
				constant(i, end, kindTrue)
			case kw == "false" && afterIS == 0:
				constant(i, end, kindFalse)
			case kw == "null" && afterIS == 0:
				constant(i, end, kindNull)
			case kw != "true" && kw != "false" && kw != "null":
				class = tokOther
			}
			i = end
		case strings.IndexByte(opChars, c) >= 0:
			end := endOperator(q, i)
			if class = tokOther; end == i+1 && c == '-' {
				class, before, minus = tokMinus, prev, i
			}
			i = end
		case c == '.' && i+1 < len(q) && q[i+1] == '.':
			// dot_dot: the second '.' does not start a number (..5).
			class = tokOther
			i += 2
		case strings.IndexByte(",()[].:", c) >= 0:
			if c != ')' && c != ']' {
				class = tokOther
			}
			i++
		default:
			return sh, false // \, {, }, a control character
		}
		afterIS, prev = is, class
		tokens++
	}
	if tokens == 0 {
		return sh, false
	}
	b.WriteString(q[copied:])
	sh.norm = b.String()
	sh.kinds = string(kinds)
	sh.end = len(q)
	if semi >= 0 {
		sh.end = semi
	}
	return sh, true
}

// tokClass is what lexShape needs to know of a token to tell a prefix
// minus from an infix one.
type tokClass uint8

const (
	tokOther tokClass = iota // an operator, punctuation or a keyword after which a value starts
	tokValue                 // a token that can end a value: a name, a constant, ')' or ']'
	tokMinus                 // a '-' operator of its own
)

// keyword returns, in lower case, the keyword w spells if it is one of
// those lexShape looks for: IS, NOT, TRUE, FALSE, NULL, and the reserved
// keywords after which a '-' can only be a prefix minus. Any other word
// is taken to end a value (it may be a column name); a wrong guess only
// costs caching.
func keyword(w string) string {
	if len(w) >= len(keywordsByLen) {
		return ""
	}
	for _, k := range keywordsByLen[len(w)] {
		if strings.EqualFold(k, w) {
			return k
		}
	}
	return ""
}

var keywordsByLen = [...][]string{
	2: {"is", "or", "on"},
	3: {"not", "and", "all"},
	4: {"true", "null", "when", "then", "else", "case", "from", "like"},
	5: {"false", "where", "limit", "ilike"},
	6: {"select", "offset", "having"},
	7: {"between"},
	8: {"distinct"},
	9: {"returning"},
}

// negative is the kind of a number taken with its prefix minus.
func negative(kind byte) byte {
	if kind == kindInt {
		return kindNegInt
	}
	return kindNegFloat
}

// opChars are scan.l's op_chars.
const opChars = "~!@#^&|`?+-*/%<>="

// endOperator returns the end of the operator token starting at i, as
// scan.l's {operator} rule cuts it: the longest run of op_chars, cut
// before a comment start inside it, then, unless it contains one of
// ~!@#^&|`?%, without trailing '+' and '-' (so that =-1 is = and -1).
func endOperator(q string, i int) int {
	j := i
	for j < len(q) && strings.IndexByte(opChars, q[j]) >= 0 {
		j++
	}
	run := q[i:j]
	cut := len(run)
	if k := strings.Index(run, "/*"); k >= 0 {
		cut = k
	}
	if k := strings.Index(run, "--"); k >= 0 && k < cut {
		cut = k
	}
	if cut == 0 {
		return i + 1 // a comment starts at i; lexShape skips those first
	}
	run = run[:cut]
	if len(run) > 1 && (run[len(run)-1] == '+' || run[len(run)-1] == '-') &&
		!strings.ContainsAny(run[:len(run)-1], "~!@#^&|`?%") {
		for len(run) > 1 && (run[len(run)-1] == '+' || run[len(run)-1] == '-') {
			run = run[:len(run)-1]
		}
	}
	return i + len(run)
}

// isSpace is scan.l's space: [ \t\n\r\f\v].
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentStart is scan.l's ident_start: [A-Za-z\200-\377_].
func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}

// isIdentCont is scan.l's ident_cont: [A-Za-z\200-\377_0-9\$].
func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// skipLineComment returns the offset of the newline ending the comment
// starting at i, or len(q).
func skipLineComment(q string, i int) int {
	for i < len(q) && q[i] != '\n' && q[i] != '\r' {
		i++
	}
	return i
}

// skipBlockComment returns the offset just past the /* */ comment
// starting at i, which may nest, or -1 if it does not end.
func skipBlockComment(q string, i int) int {
	depth := 0
	for i += 2; i+1 < len(q); {
		switch {
		case q[i] == '*' && q[i+1] == '/':
			i += 2
			if depth == 0 {
				return i
			}
			depth--
		case q[i] == '/' && q[i+1] == '*':
			i += 2
			depth++
		default:
			i++
		}
	}
	return -1
}

// endQuoted returns the offset just past the closing quote of a string
// or identifier whose text starts at i, a doubled quote standing for
// one.
func endQuoted(q string, i int, quote byte) (int, bool) {
	for {
		j := strings.IndexByte(q[i:], quote)
		if j < 0 {
			return 0, false
		}
		i += j + 1
		if i < len(q) && q[i] == quote {
			i++
			continue
		}
		return i, true
	}
}

// endEscapeString returns the offset just past an E'...' string whose text
// starts at i. An escape that builds a byte or a code point (\ddd, \xhh,
// \uXXXX, \UXXXXXXXX) can make the string invalid in UTF-8, which the
// scanner rejects, so the whole query is given up on; the others (\n,
// \', \\ and any other character standing for itself) cannot.
func endEscapeString(q string, i int) (int, bool) {
	for i < len(q) {
		switch q[i] {
		case '\\':
			if i+1 >= len(q) || strings.IndexByte("01234567xuU", q[i+1]) >= 0 {
				return 0, false
			}
			i += 2
		case '\'':
			if i+1 < len(q) && q[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1, true
		default:
			i++
		}
	}
	return 0, false
}

// continues reports whether a quoted string ending at i may go on: the
// scanner joins 'a' and 'b' separated by whitespace with a newline (and
// -- comments) into one constant (docs 4.1.2.1). Any quote after
// whitespace and comments is taken to continue it.
func continues(q string, i int) bool {
	for i < len(q) {
		switch c := q[i]; {
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			i = skipLineComment(q, i)
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if i = skipBlockComment(q, i); i < 0 {
				return true
			}
		default:
			return c == '\''
		}
	}
	return false
}

// endDollarQuoted returns the offset just past the dollar-quoted string
// starting at i ($$...$$ or $tag$...$tag$); false for anything else
// starting with $, such as a parameter $1.
func endDollarQuoted(q string, i int) (int, bool) {
	j := i + 1
	if j < len(q) && (isIdentStart(q[j])) {
		for j < len(q) && (isIdentStart(q[j]) || isDigit(q[j])) {
			j++
		}
	}
	if j >= len(q) || q[j] != '$' {
		return 0, false
	}
	tag := q[i : j+1]
	// The body ends at the first occurrence of the tag: a $ cannot be
	// part of a tag, so no occurrence can hide inside another
	// delimiter-like run (scan.l, <xdolq>).
	k := strings.Index(q[j+1:], tag)
	if k < 0 {
		return 0, false
	}
	return j + 1 + k + len(tag), true
}

// endNumber returns the end and kind of the numeric constant starting at
// i (scan.l decinteger, numeric, real). It gives up on 0x, 0o and 0b
// integers, underscores, 1..2 and trailing junk such as 1e or 1abc.
func endNumber(q string, i int) (end int, kind byte, ok bool) {
	j := i
	if q[j] == '0' && j+1 < len(q) && strings.IndexByte("xXoObB", q[j+1]) >= 0 {
		return 0, 0, false
	}
	for j < len(q) && isDigit(q[j]) {
		j++
	}
	intEnd := j
	float := false
	if j < len(q) && q[j] == '.' {
		if j+1 < len(q) && q[j+1] == '.' {
			return 0, 0, false // numericfail: 1..2
		}
		float = true
		j++
		for j < len(q) && isDigit(q[j]) {
			j++
		}
	}
	if j < len(q) && (q[j] == 'e' || q[j] == 'E') {
		k := j + 1
		if k < len(q) && (q[k] == '+' || q[k] == '-') {
			k++
		}
		if k >= len(q) || !isDigit(q[k]) {
			return 0, 0, false // realfail, or junk
		}
		float = true
		for j = k; j < len(q) && isDigit(q[j]); j++ {
		}
	}
	if j < len(q) && isIdentCont(q[j]) {
		return 0, 0, false // trailing junk
	}
	if float || !fitsInt32(q[i:intEnd]) {
		return j, kindFloat, true
	}
	return j, kindInt, true
}

// fitsInt32 reports whether a string of decimal digits is at most
// 2147483647; the scanner makes a larger integer an FCONST
// (process_integer_literal).
func fitsInt32(digits string) bool {
	digits = strings.TrimLeft(digits, "0")
	return len(digits) < 10 || len(digits) == 10 && digits <= "2147483647"
}

// Eligibility.

// treeShape is what extract found out about a statement's shape: ok if
// its facts cannot depend on a constant's value, and its constants in
// order of location.
type treeShape struct {
	consts []treeConst
	ok     bool
}

// treeConst is a constant of the parse tree: where it starts and its
// kind, as lexShape reports them.
type treeConst struct {
	loc  int
	kind byte
}

// shapeConsts decides whether the facts of a statement cannot depend on
// the value of any of its constants, and returns the constants. It is an
// allowlist: every node of the tree must be one of the types below, so
// function calls of any kind (nextval('s'), query_to_xml('...'),
// set_config), casts other than to the plain built-in types of
// safeCastTypes (never 't'::regclass), WITH, and every utility
// statement make a statement ineligible. Constants are also refused
// where their value means something to the analysis: an ORDER BY,
// GROUP BY or DISTINCT ON item that is a number names an output column,
// so those clauses may hold none.
func shapeConsts(stmt *pg_query.Node) ([]treeConst, bool) {
	switch stmt.GetNode().(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt:
	default:
		return nil, false
	}
	w := shapeWalker{ok: true}
	w.visit(stmt)
	if !w.ok {
		return nil, false
	}
	slices.SortFunc(w.consts, func(a, b treeConst) int { return cmp.Compare(a.loc, b.loc) })
	return w.consts, true
}

type shapeWalker struct {
	consts []treeConst
	ok     bool
}

func (w *shapeWalker) visit(m proto.Message) {
	if !w.ok || m == nil || !m.ProtoReflect().IsValid() {
		return
	}
	switch x := m.(type) {
	case *pg_query.A_Const:
		var kind byte
		switch v := x.GetVal().(type) {
		case nil:
			if !x.GetIsnull() {
				w.ok = false
				return
			}
			kind = kindNull
		case *pg_query.A_Const_Ival:
			kind = kindInt
		case *pg_query.A_Const_Fval:
			kind = kindFloat
		case *pg_query.A_Const_Sval:
			kind = kindString
		case *pg_query.A_Const_Boolval:
			kind = kindFalse
			if v.Boolval.GetBoolval() {
				kind = kindTrue
			}
		default: // bit strings
			w.ok = false
			return
		}
		w.consts = append(w.consts, treeConst{loc: int(x.GetLocation()), kind: kind})
		return
	case *pg_query.SelectStmt:
		for _, l := range [][]*pg_query.Node{x.GetSortClause(), x.GetGroupClause(), x.GetDistinctClause()} {
			if hasConst(l) {
				w.ok = false
				return
			}
		}
	case *pg_query.A_Expr:
		switch x.GetKind() {
		case pg_query.A_Expr_Kind_AEXPR_OP, pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL,
			pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NULLIF,
			pg_query.A_Expr_Kind_AEXPR_IN, pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE,
			pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
			pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		default:
			w.ok = false
			return
		}
	case *pg_query.TypeCast:
		if !safeCast(x.GetTypeName()) {
			w.ok = false
			return
		}
		w.visit(x.GetArg()) // not the TypeName, checked above
		return
	case *pg_query.Node, *pg_query.List, *pg_query.String, *pg_query.A_Star,
		*pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt,
		*pg_query.ResTarget, *pg_query.ColumnRef, *pg_query.RangeVar, *pg_query.Alias,
		*pg_query.JoinExpr, *pg_query.RangeSubselect, *pg_query.SubLink, *pg_query.SortBy,
		*pg_query.LockingClause, *pg_query.BoolExpr, *pg_query.NullTest, *pg_query.BooleanTest,
		*pg_query.CaseExpr, *pg_query.CaseWhen, *pg_query.CoalesceExpr, *pg_query.MinMaxExpr,
		*pg_query.RowExpr, *pg_query.A_ArrayExpr, *pg_query.A_Indirection, *pg_query.A_Indices,
		*pg_query.SQLValueFunction: // CURRENT_TIMESTAMP, CURRENT_USER, ...
	default:
		w.ok = false
		return
	}
	eachChild(m.ProtoReflect(), nil, w.visit)
}

// hasConst reports whether a constant occurs anywhere in nodes.
func hasConst(nodes []*pg_query.Node) bool {
	found := false
	var visit func(proto.Message)
	visit = func(m proto.Message) {
		if found || m == nil || !m.ProtoReflect().IsValid() {
			return
		}
		if _, ok := m.(*pg_query.A_Const); ok {
			found = true
			return
		}
		eachChild(m.ProtoReflect(), nil, visit)
	}
	for _, n := range nodes {
		visit(n)
	}
	return found
}

// safeCastTypes are the built-in types a constant may be cast to in a
// cacheable statement, as the grammar names them: their input functions
// look nothing up in the catalogs, unlike regclass, regproc and the
// other reg* types, whose value names an object. Warden pins pg_catalog
// first in the search path, so an unqualified name is the built-in.
var safeCastTypes = map[string]bool{
	"bool": true, "int2": true, "int4": true, "int8": true, "float4": true, "float8": true,
	"numeric": true, "text": true, "varchar": true, "bpchar": true, "date": true, "time": true,
	"timetz": true, "timestamp": true, "timestamptz": true, "interval": true, "uuid": true,
	"json": true, "jsonb": true, "bytea": true,
}

// safeCast reports whether a cast to t keeps a statement cacheable: a
// type of safeCastTypes with no typmods (varchar(10): pg_query leaves
// them in place, and float(10) is float4 or float8 by its value) and
// arrays without a size.
func safeCast(t *pg_query.TypeName) bool {
	if t == nil || t.GetSetof() || t.GetPctType() || len(t.GetTypmods()) > 0 || t.GetTypemod() != -1 {
		return false
	}
	for _, b := range t.GetArrayBounds() {
		if b.GetInteger() == nil || b.GetInteger().GetIval() != -1 {
			return false
		}
	}
	parts, ok := strs(t.GetNames())
	switch {
	case !ok:
		return false
	case len(parts) == 1:
		return safeCastTypes[parts[0]]
	case len(parts) == 2:
		return parts[0] == catalogSchema && safeCastTypes[parts[1]]
	}
	return false
}

// agrees reports whether the shape the lexer found for query is the one
// the parser found: the same constants at the same offsets with the same
// kinds, a normalized text byte-identical to pg_query's Fingerprint, and
// the same statement text. Only then may facts be shared by shape.
func (sh *literalShape) agrees(query string, f *Facts, ts treeShape) bool {
	consts := ts.consts
	if !ts.ok || f == nil || len(f.Statements) != 1 || f.Fingerprint != sh.norm ||
		len(consts) != len(sh.spans) || len(sh.kinds) != len(sh.spans) ||
		strings.TrimSpace(query[:sh.end]) != f.Statements[0].Text {
		return false
	}
	for i, c := range consts {
		k := sh.kinds[i]
		switch k {
		case kindNegInt:
			k = kindInt
		case kindNegFloat:
			k = kindFloat
		}
		if c.loc != sh.spans[i].start || c.kind != k {
			return false
		}
	}
	return true
}
