package sqlfacts

import (
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Column references.
//
// The proxy masks result columns. PostgreSQL names the origin of a plain
// column in RowDescription (table OID and attribute number), but not of a
// computed one, and not of a value used to choose rows; Statement.Columns
// fills that gap from the parse tree. The rules follow PostgreSQL's own
// name resolution (docs 7.2 "Table Expressions", 7.3 "Select Lists";
// transformColumnRef in src/backend/parser/parse_expr.c), made
// conservative wherever the answer depends on table definitions this
// package does not know: a reference that could mean several columns
// lists them all. A column listed but not used only masks or refuses more;
// a column used but not listed would leak.
//
// Values are tracked as a graph (val): a reference resolves to the
// columns it can come from; a subquery's output column, a CTE's, a whole
// row, is a union of those. The graph is expanded once, when the
// statement is done, so a value used many times is never copied, and
// recursive WITH, which makes it cyclic, needs no fixpoint.

// val is a set of columns a value can come from: a leaf names one column
// (column != ""), any other val is the union of its kids.
type val struct {
	table, column string
	kids          []*val
	done          uint8 // the clauses it has been expanded for (finish)
}

// union returns a val for the union of vs, skipping nils; nil if empty.
func union(vs ...*val) *val {
	n, last := 0, (*val)(nil)
	for _, v := range vs {
		if v != nil {
			n, last = n+1, v
		}
	}
	switch n {
	case 0:
		return nil
	case 1:
		return last
	}
	u := &val{kids: make([]*val, 0, n)}
	for _, v := range vs {
		if v != nil {
			u.kids = append(u.kids, v)
		}
	}
	return u
}

// colCtx is what the enclosing clauses say about a column reference:
// the names in scope, and where its value goes.
type colCtx struct {
	sc *scope
	// into, when set, collects the references whose values flow into an
	// output column being defined (of a subquery, a CTE, a function in
	// FROM); they are reported when, and as, that column is used.
	into *val
	// clause reports the references directly when into is nil.
	clause Clause
}

// pred is the context of a predicate in the same scope: a predicate is
// reported as one whatever value it is part of (`count(*) FILTER (WHERE
// ssn LIKE '1%')` chooses rows even inside a subquery's output column).
func (c colCtx) pred() colCtx { return colCtx{sc: c.sc, clause: ClausePredicate} }

// outCol is one output column of a query.
type outCol struct {
	name string // PostgreSQL's name for it, when sure is set
	sure bool
	v    *val    // the columns it is computed from
	star []*item // * or t.*: every column of these items
	// multi: it expands to a number of columns not known here (*, t.*,
	// (x).*), so the positions after it are unknown.
	multi bool
}

// item is a FROM item (docs 7.2.1 "The FROM Clause") or DML target.
type item struct {
	// name qualifies its columns: the alias, else the relation, CTE or
	// function name; "" if it has none.
	name string
	// table: a relation, schema-qualified.
	table string
	// aliased: a relation with an alias, which cannot be named as
	// schema.table (scanNameSpaceForRelid, parse_relation.c).
	aliased bool
	// renamed are alias column names (t AS a(x, y)) whose position in
	// the underlying row is not known here; a reference to one of them
	// may be any column.
	renamed []string
	// cols: a subquery, non-recursive CTE or VALUES list.
	cols []outCol
	// any: a function, table function or recursive CTE; any column may
	// come from any of these values.
	any *val
	// kids: a join's two sides. hides: the join has an alias, which
	// hides the names of its sides (docs 7.2.1.1); usingAlias is the
	// JOIN ... USING (...) AS name.
	kids       []*item
	hides      bool
	usingAlias string

	whole *val
	memo  map[string]lookup
}

// lookup is the memoised result of resolving a column name in an item.
type lookup struct {
	v       *val
	has     bool // the item certainly has a column of that name
	matched bool // the name may be a column of the item
}

// scope is one query level's names: its FROM items and WITH queries.
type scope struct {
	parent *scope
	items  []*item
	ctes   map[string]*cte
	memo   map[string]*val // unqualified names; reset when items change
}

// cte is a WITH query in scope.
type cte struct {
	cols    []outCol
	renamed []string // see item.renamed
	any     *val     // recursive: every column referenced in the WITH clause
}

type emission struct {
	v      *val
	clause Clause
}

// colWalker collects the column references of one statement.
type colWalker struct {
	a      *analyzer
	emits  []emission
	leaves map[[2]string]*val
	// unused are the output columns of every query; finish reports
	// those that nothing reported as other.
	unused []*val
	// tap, while a WITH RECURSIVE clause is walked, collects every
	// column referenced in it.
	tap *val
}

// columnRefs returns the column references of one statement.
func (a *analyzer) columnRefs(n *pg_query.Node) []ColumnRef {
	w := colWalker{a: a}
	w.statement(n, &scope{})
	return w.finish()
}

func (w *colWalker) leaf(table, column string) *val {
	k := [2]string{table, column}
	if v, ok := w.leaves[k]; ok {
		return v
	}
	if w.leaves == nil {
		w.leaves = make(map[[2]string]*val)
	}
	v := &val{table: table, column: column}
	w.leaves[k] = v
	return v
}

// emit reports every column v can come from as used in clause.
func (w *colWalker) emit(v *val, clause Clause) {
	if v != nil {
		w.emits = append(w.emits, emission{v, clause})
	}
}

// send passes a value to its context: into an output column being
// defined, or reported.
func (w *colWalker) send(c colCtx, v *val) {
	switch {
	case v == nil:
	case c.into != nil:
		c.into.kids = append(c.into.kids, v)
	default:
		w.emit(v, c.clause)
	}
}

// resolved records a resolved reference in the WITH RECURSIVE clause
// being walked, if any, and returns it.
func (w *colWalker) resolved(v *val) *val {
	if w.tap != nil && v != nil {
		w.tap.kids = append(w.tap.kids, v)
	}
	return v
}

func clauseBit(c Clause) uint8 {
	switch c {
	case ClauseOutput:
		return 1
	case ClausePredicate:
		return 2
	}
	return 4
}

// reportedBits are the clause bits; unusedBit marks a val visited by the
// last pass of finish.
const (
	reportedBits = 1 | 2 | 4
	unusedBit    = 8
)

// finish expands the reported values into ColumnRefs, in a deterministic
// order. Leaves are interned and each val is expanded at most once per
// clause, so the result is deduplicated and the work linear in the graph.
//
// A last pass reports as other the columns of query outputs that nothing
// reported: an output of a subquery or CTE that the query around it does
// not use. Its value reaches neither the client nor the choice of rows,
// but the server may still compute it (a materialized CTE, a
// set-returning function changing the row count, an error such as
// division by zero), so the column is listed all the same.
func (w *colWalker) finish() []ColumnRef {
	var out []ColumnRef
	var stack []*val
	expand := func(root *val, bit uint8, clause Clause) {
		stack = append(stack[:0], root)
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if v == nil || v.done&bit != 0 {
				continue // nil: an output with no columns (SELECT with no select list)
			}
			leafDone := v.done & reportedBits
			v.done |= bit
			if v.column != "" && (bit != unusedBit || leafDone == 0) {
				out = append(out, ColumnRef{Table: v.table, Column: v.column, Clause: clause})
				v.done |= clauseBit(clause)
			}
			for i := len(v.kids) - 1; i >= 0; i-- {
				stack = append(stack, v.kids[i])
			}
		}
	}
	for _, e := range w.emits {
		expand(e.v, clauseBit(e.clause), e.clause)
	}
	for _, v := range w.unused {
		expand(v, unusedBit, ClauseOther)
	}
	return out
}

// Statements.

// statement walks one statement. Queries report their output columns as
// output; statements that wrap a query report its references; anything
// else is walked generically, its references reported as other.
func (w *colWalker) statement(n *pg_query.Node, sc *scope) {
	other := colCtx{sc: sc, clause: ClauseOther}
	switch s := n.GetNode().(type) {
	case nil:
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt,
		*pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt:
		w.emit(w.wholeCols(w.query(n, sc)), ClauseOutput)
	case *pg_query.Node_ExplainStmt:
		// EXPLAIN ANALYZE runs the statement and shows row counts,
		// which its predicates decide.
		w.statement(s.ExplainStmt.GetQuery(), sc)
		w.exprFields(s.ExplainStmt.ProtoReflect(), other, "query")
	case *pg_query.Node_PrepareStmt:
		// EXECUTE returns what the prepared statement does.
		w.statement(s.PrepareStmt.GetQuery(), sc)
		w.exprFields(s.PrepareStmt.ProtoReflect(), other, "query")
	case *pg_query.Node_DeclareCursorStmt:
		// FETCH returns the cursor's rows.
		w.statement(s.DeclareCursorStmt.GetQuery(), sc)
		w.exprFields(s.DeclareCursorStmt.ProtoReflect(), other, "query")
	case *pg_query.Node_CreateTableAsStmt:
		w.statement(s.CreateTableAsStmt.GetQuery(), sc)
		w.exprFields(s.CreateTableAsStmt.ProtoReflect(), other, "query")
	case *pg_query.Node_ViewStmt:
		w.statement(s.ViewStmt.GetQuery(), sc)
		w.exprFields(s.ViewStmt.ProtoReflect(), other, "query")
	case *pg_query.Node_CopyStmt:
		w.copyStmt(s.CopyStmt, sc)
	case *pg_query.Node_CreateSchemaStmt:
		// The elements resolve names in the new schema, as in
		// analyzer.createSchema.
		cs := s.CreateSchemaStmt
		name := cs.GetSchemaname()
		if name == "" {
			name = cs.GetAuthrole().GetRolename()
		}
		saved := w.a.schema
		if name != "" {
			w.a.schema = name
		}
		for _, e := range cs.GetSchemaElts() {
			w.statement(e, sc)
		}
		w.a.schema = saved
	default:
		w.expr(n, other)
	}
}

// copyStmt: COPY t TO STDOUT outputs the listed columns, or all of them;
// COPY (query) TO outputs the query's. COPY t FROM only writes.
func (w *colWalker) copyStmt(s *pg_query.CopyStmt, sc *scope) {
	if rv := s.GetRelation(); rv != nil {
		t := w.relItem(rv)
		clause := ClauseOutput
		if s.GetIsFrom() {
			clause = ClauseOther
		}
		if len(s.GetAttlist()) == 0 && !s.GetIsFrom() {
			w.emit(w.leaf(t.table, "*"), clause)
		}
		for _, a := range s.GetAttlist() {
			if name := a.GetString_().GetSval(); name != "" {
				w.emit(w.leaf(t.table, name), clause)
			} else {
				w.emit(w.leaf(t.table, "*"), clause)
			}
		}
		tsc := &scope{parent: sc, items: []*item{t}}
		w.expr(s.GetWhereClause(), colCtx{sc: tsc, clause: ClausePredicate})
	}
	if q := s.GetQuery(); q != nil {
		w.statement(q, sc)
	}
	w.exprFields(s.ProtoReflect(), colCtx{sc: sc, clause: ClauseOther}, "relation", "query", "attlist", "where_clause")
}

// Queries.

// query walks a query (SELECT, VALUES, set operation, or DML with
// RETURNING) whose enclosing scope is parent, reports the references of
// its predicates, and returns its output columns.
func (w *colWalker) query(n *pg_query.Node, parent *scope) []outCol {
	switch q := n.GetNode().(type) {
	case nil:
		return nil
	case *pg_query.Node_SelectStmt:
		return w.selectStmt(q.SelectStmt, parent)
	case *pg_query.Node_InsertStmt:
		return w.insertStmt(q.InsertStmt, parent)
	case *pg_query.Node_UpdateStmt:
		return w.updateStmt(q.UpdateStmt, parent)
	case *pg_query.Node_DeleteStmt:
		return w.deleteStmt(q.DeleteStmt, parent)
	case *pg_query.Node_MergeStmt:
		return w.mergeStmt(q.MergeStmt, parent)
	}
	return w.unknownQuery(n, parent)
}

// unknownQuery: a query this file does not know the shape of has one
// output of unknown width made of every reference in it.
func (w *colWalker) unknownQuery(m proto.Message, parent *scope) []outCol {
	v := &val{}
	w.expr(m, colCtx{sc: parent, into: v})
	w.unused = append(w.unused, v)
	return []outCol{{v: v, multi: true}}
}

func (w *colWalker) selectStmt(s *pg_query.SelectStmt, parent *scope) []outCol {
	if s == nil {
		return nil
	}
	sc := &scope{parent: parent}
	w.with(s.GetWithClause(), sc)
	var cols []outCol
	// outputsOnly: ORDER BY of a set operation or VALUES names output
	// columns only (docs 7.5 "Sorting Rows").
	outputsOnly := false
	switch {
	case s.GetOp() != pg_query.SetOperation_SETOP_NONE && s.GetOp() != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
		l := w.selectStmt(s.GetLarg(), sc)
		r := w.selectStmt(s.GetRarg(), sc)
		cols = w.setOpCols(l, r)
		if s.GetOp() != pg_query.SetOperation_SETOP_UNION || !s.GetAll() {
			// UNION, INTERSECT and EXCEPT compare whole rows: which
			// rows survive depends on every output value.
			w.emit(w.wholeCols(cols), ClausePredicate)
		}
		outputsOnly = true
	case len(s.GetValuesLists()) > 0:
		cols = w.values(s.GetValuesLists(), sc)
		outputsOnly = true
	default:
		for _, n := range s.GetFromClause() {
			w.addItem(sc, w.fromItem(n, sc))
		}
		cols = w.targets(s.GetTargetList(), sc)
	}
	pred := colCtx{sc: sc, clause: ClausePredicate}
	w.expr(s.GetWhereClause(), pred)
	for _, n := range s.GetGroupClause() {
		w.groupItem(n, sc, cols)
	}
	w.expr(s.GetHavingClause(), pred)
	w.walkNodes(s.GetWindowClause(), pred)
	if d := s.GetDistinctClause(); len(d) == 1 && d[0].GetNode() == nil {
		// Plain DISTINCT groups by every output column, as GROUP BY.
		w.emit(w.wholeCols(cols), ClausePredicate)
	} else {
		for _, n := range d {
			w.sortItem(n, sc, cols, false)
		}
	}
	for _, n := range s.GetSortClause() {
		w.sortItem(n, sc, cols, outputsOnly)
	}
	w.expr(s.GetLimitOffset(), pred)
	w.expr(s.GetLimitCount(), pred)
	// SELECT INTO's target and FOR UPDATE OF hold names only; anything
	// not handled above is still searched.
	w.exprFields(s.ProtoReflect(), pred, "with_clause", "larg", "rarg", "values_lists", "from_clause",
		"target_list", "where_clause", "group_clause", "having_clause", "window_clause", "distinct_clause",
		"sort_clause", "limit_offset", "limit_count", "into_clause", "locking_clause")
	return cols
}

// setOpCols: column i of a set operation comes from column i of each
// branch, named after the left one (docs 7.4 "Combining Queries").
func (w *colWalker) setOpCols(l, r []outCol) []outCol {
	if len(l) == len(r) && !anyMulti(l) && !anyMulti(r) {
		out := make([]outCol, len(l))
		for i := range l {
			out[i] = outCol{name: l[i].name, sure: l[i].sure, v: union(l[i].v, r[i].v)}
		}
		return out
	}
	return []outCol{{v: union(w.wholeCols(l), w.wholeCols(r)), multi: true}}
}

func anyMulti(cols []outCol) bool {
	for _, c := range cols {
		if c.multi {
			return true
		}
	}
	return false
}

// values: VALUES names its columns column1, column2, ... (docs 7.7).
func (w *colWalker) values(rows []*pg_query.Node, sc *scope) []outCol {
	var cols []outCol
	for _, row := range rows {
		l := row.GetList()
		if l == nil {
			cols = append(cols, w.unknownQuery(row, sc)...)
			continue
		}
		for i, e := range l.GetItems() {
			for len(cols) <= i {
				cols = append(cols, outCol{name: "column" + strconv.Itoa(len(cols)+1), sure: true, v: &val{}})
			}
			w.expr(e, colCtx{sc: sc, into: cols[i].v})
		}
	}
	for _, c := range cols {
		w.unused = append(w.unused, c.v)
	}
	return cols
}

// targets turns a select or RETURNING list into output columns.
func (w *colWalker) targets(list []*pg_query.Node, sc *scope) []outCol {
	cols := make([]outCol, 0, len(list))
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			cols = append(cols, w.unknownQuery(n, sc)...)
			continue
		}
		if cr := rt.GetVal().GetColumnRef(); cr != nil {
			if names, star, ok := refFields(cr.GetFields()); ok && star {
				its, found := w.starItems(sc, names)
				if !found {
					cols = append(cols, outCol{v: w.leaf("", "*"), multi: true})
					continue
				}
				w.resolved(w.wholes(its))
				cols = append(cols, outCol{star: its, multi: true})
				continue
			}
		}
		v := &val{}
		c := colCtx{sc: sc, into: v}
		w.expr(rt.GetVal(), c)
		w.walkNodes(rt.GetIndirection(), c)
		oc := outCol{name: rt.GetName(), sure: rt.GetName() != "", v: v}
		if !oc.sure {
			oc.name, oc.sure = figureColname(rt.GetVal())
		}
		if ind := rt.GetVal().GetAIndirection(); ind != nil {
			if l := ind.GetIndirection(); len(l) > 0 && l[len(l)-1].GetAStar() != nil {
				oc.multi, oc.sure = true, false // (x).* expands to its fields
			}
		}
		cols = append(cols, oc)
	}
	for _, c := range cols {
		w.unused = append(w.unused, w.colVal(c))
	}
	return cols
}

// wholeCols is every column the outputs come from.
func (w *colWalker) wholeCols(cols []outCol) *val {
	vs := make([]*val, 0, len(cols))
	for _, c := range cols {
		vs = append(vs, w.colVal(c))
	}
	return union(vs...)
}

func (w *colWalker) colVal(c outCol) *val {
	if c.star != nil {
		return w.wholes(c.star)
	}
	return c.v
}

// sortItem reports an ORDER BY or DISTINCT ON item (or, through
// groupItem, a GROUP BY item) as a predicate. A bare name may be an
// output column name or an input column, a number an output position
// (docs "SELECT", ORDER BY and GROUP BY clauses); both readings are
// reported.
func (w *colWalker) sortItem(n *pg_query.Node, sc *scope, cols []outCol, outputsOnly bool) {
	e := n
	if sb := n.GetSortBy(); sb != nil {
		e = sb.GetNode()
	}
	pred := colCtx{sc: sc, clause: ClausePredicate}
	if k := e.GetAConst().GetIval(); k != nil {
		w.emit(w.position(cols, int(k.GetIval())), ClausePredicate)
		return
	}
	if cr := e.GetColumnRef(); cr != nil {
		if names, star, ok := refFields(cr.GetFields()); ok && !star && len(names) == 1 {
			for _, c := range cols {
				switch {
				case c.star != nil:
					// Under * an output column has its input
					// column's name.
					for _, it := range c.star {
						if r := w.lookupItem(it, names[0]); r.matched {
							w.emit(r.v, ClausePredicate)
						}
					}
				case c.multi || !c.sure || c.name == names[0]:
					w.emit(c.v, ClausePredicate)
				}
			}
			if outputsOnly {
				return
			}
		}
	}
	w.expr(e, pred)
}

// position is the value of output column k (1-based); every output if
// the position is not known.
func (w *colWalker) position(cols []outCol, k int) *val {
	if k < 1 || k > len(cols) || anyMulti(cols[:k]) {
		return w.wholeCols(cols)
	}
	return w.colVal(cols[k-1])
}

func (w *colWalker) groupItem(n *pg_query.Node, sc *scope, cols []outCol) {
	if gs := n.GetGroupingSet(); gs != nil {
		for _, e := range gs.GetContent() {
			if r := e.GetRowExpr(); r != nil {
				for _, a := range r.GetArgs() {
					w.groupItem(a, sc, cols)
				}
				continue
			}
			w.groupItem(e, sc, cols)
		}
		return
	}
	w.sortItem(n, sc, cols, false)
}

// with brings a WITH clause's queries into scope. In a plain WITH each
// query sees the ones before it (docs 7.8), and its output columns are
// known. In WITH RECURSIVE, every query may see every other and itself;
// all of them are taken to output every column referenced anywhere in
// the clause.
func (w *colWalker) with(wc *pg_query.WithClause, sc *scope) {
	if wc == nil {
		return
	}
	sc.ctes = make(map[string]*cte, len(wc.GetCtes()))
	if wc.GetRecursive() {
		all := &val{}
		for _, n := range wc.GetCtes() {
			if c := n.GetCommonTableExpr(); c != nil {
				sc.ctes[c.GetCtename()] = &cte{any: all}
			}
		}
		saved := w.tap
		w.tap = all
		for _, n := range wc.GetCtes() {
			c := n.GetCommonTableExpr()
			if c == nil {
				w.expr(n, colCtx{sc: sc, into: all})
				continue
			}
			if v := w.wholeCols(w.query(c.GetCtequery(), sc)); v != nil {
				all.kids = append(all.kids, v)
			}
			w.exprFields(c.ProtoReflect(), colCtx{sc: sc, into: all}, "ctequery")
		}
		w.tap = saved
		w.resolved(all)
		w.unused = append(w.unused, all)
		return
	}
	for _, n := range wc.GetCtes() {
		c := n.GetCommonTableExpr()
		if c == nil {
			w.expr(n, colCtx{sc: sc, clause: ClauseOther})
			continue
		}
		cols, renamed := applyColnames(w.query(c.GetCtequery(), sc), strList(c.GetAliascolnames()))
		w.exprFields(c.ProtoReflect(), colCtx{sc: sc, clause: ClauseOther}, "ctequery")
		sc.ctes[c.GetCtename()] = &cte{cols: cols, renamed: renamed}
	}
}

// applyColnames renames output columns by position (t AS a(x, y), WITH
// t(x, y)). Past a column of unknown width the positions are unknown:
// those names are returned as renamed, and the columns after it are no
// longer sure of their names.
func applyColnames(cols []outCol, names []string) (out []outCol, renamed []string) {
	if len(names) == 0 {
		return cols, nil
	}
	out = append([]outCol(nil), cols...)
	for i := range out {
		if i >= len(names) {
			break
		}
		if out[i].multi {
			renamed = names[i:]
			for j := i + 1; j < len(out); j++ {
				out[j].sure = false
			}
			break
		}
		out[i].name, out[i].sure = names[i], true
	}
	return out, renamed
}

// DML. The target is in scope for RETURNING, WHERE and SET; it is always
// a relation, never a CTE (see analyzer.insertStmt).

func (w *colWalker) relItem(rv *pg_query.RangeVar) *item {
	it := &item{name: rv.GetRelname(), table: w.a.relName(rv)}
	if al := rv.GetAlias(); al != nil {
		it.name, it.aliased, it.renamed = al.GetAliasname(), true, strList(al.GetColnames())
	}
	return it
}

func (w *colWalker) insertStmt(s *pg_query.InsertStmt, parent *scope) []outCol {
	sc := &scope{parent: parent}
	w.with(s.GetWithClause(), sc)
	if sel := s.GetSelectStmt(); sel != nil {
		// INSERT ... SELECT is reported like the SELECT; the rows of
		// INSERT ... VALUES are written, not returned.
		clause := ClauseOutput
		if len(sel.GetSelectStmt().GetValuesLists()) > 0 {
			clause = ClauseOther
		}
		w.emit(w.wholeCols(w.query(sel, sc)), clause)
	}
	other := colCtx{sc: sc, clause: ClauseOther}
	w.walkNodes(s.GetCols(), other)
	target := w.relItem(s.GetRelation())
	if oc := s.GetOnConflictClause(); oc != nil {
		// EXCLUDED is the row proposed for insertion, with the
		// target's columns (docs "INSERT", ON CONFLICT).
		osc := &scope{parent: sc, items: []*item{target, {name: "excluded", table: target.table}}}
		w.expr(oc.GetInfer(), colCtx{sc: osc, clause: ClauseOther})
		w.walkNodes(oc.GetTargetList(), colCtx{sc: osc, clause: ClauseOther})
		w.expr(oc.GetWhereClause(), colCtx{sc: osc, clause: ClausePredicate})
		w.exprFields(oc.ProtoReflect(), colCtx{sc: osc, clause: ClauseOther}, "infer", "target_list", "where_clause")
	}
	tsc := &scope{parent: sc, items: []*item{target}}
	cols := w.targets(s.GetReturningList(), tsc)
	w.exprFields(s.ProtoReflect(), other, "with_clause", "relation", "select_stmt", "cols", "on_conflict_clause", "returning_list")
	return cols
}

func (w *colWalker) updateStmt(s *pg_query.UpdateStmt, parent *scope) []outCol {
	sc := &scope{parent: parent}
	w.with(s.GetWithClause(), sc)
	w.addItem(sc, w.relItem(s.GetRelation()))
	for _, n := range s.GetFromClause() {
		w.addItem(sc, w.fromItem(n, sc))
	}
	w.walkNodes(s.GetTargetList(), colCtx{sc: sc, clause: ClauseOther})
	w.expr(s.GetWhereClause(), colCtx{sc: sc, clause: ClausePredicate})
	cols := w.targets(s.GetReturningList(), sc)
	w.exprFields(s.ProtoReflect(), colCtx{sc: sc, clause: ClauseOther}, "with_clause", "relation", "from_clause",
		"target_list", "where_clause", "returning_list")
	return cols
}

func (w *colWalker) deleteStmt(s *pg_query.DeleteStmt, parent *scope) []outCol {
	sc := &scope{parent: parent}
	w.with(s.GetWithClause(), sc)
	w.addItem(sc, w.relItem(s.GetRelation()))
	for _, n := range s.GetUsingClause() {
		w.addItem(sc, w.fromItem(n, sc))
	}
	w.expr(s.GetWhereClause(), colCtx{sc: sc, clause: ClausePredicate})
	cols := w.targets(s.GetReturningList(), sc)
	w.exprFields(s.ProtoReflect(), colCtx{sc: sc, clause: ClauseOther}, "with_clause", "relation", "using_clause",
		"where_clause", "returning_list")
	return cols
}

func (w *colWalker) mergeStmt(s *pg_query.MergeStmt, parent *scope) []outCol {
	sc := &scope{parent: parent}
	w.with(s.GetWithClause(), sc)
	w.addItem(sc, w.relItem(s.GetRelation()))
	if src := s.GetSourceRelation(); src != nil {
		w.addItem(sc, w.fromItem(src, sc))
	}
	pred := colCtx{sc: sc, clause: ClausePredicate}
	other := colCtx{sc: sc, clause: ClauseOther}
	w.expr(s.GetJoinCondition(), pred)
	for _, n := range s.GetMergeWhenClauses() {
		mw := n.GetMergeWhenClause()
		if mw == nil {
			w.expr(n, other)
			continue
		}
		w.expr(mw.GetCondition(), pred)
		w.walkNodes(mw.GetTargetList(), other)
		w.walkNodes(mw.GetValues(), other)
		w.exprFields(mw.ProtoReflect(), other, "condition", "target_list", "values")
	}
	cols := w.targets(s.GetReturningList(), sc)
	w.exprFields(s.ProtoReflect(), other, "with_clause", "relation", "source_relation", "join_condition",
		"merge_when_clauses", "returning_list")
	return cols
}

// FROM items.

func (w *colWalker) addItem(sc *scope, it *item) {
	sc.items = append(sc.items, it)
	sc.memo = nil
}

// fromItem turns a FROM item into an item, reporting the references in
// it. Every item sees the items before it, as a LATERAL one does; a
// non-LATERAL item that names one fails in PostgreSQL, so this only ever
// adds candidates.
func (w *colWalker) fromItem(n *pg_query.Node, sc *scope) *item {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		return w.rangeVar(x.RangeVar, sc)
	case *pg_query.Node_RangeSubselect:
		rs := x.RangeSubselect
		cols := w.query(rs.GetSubquery(), sc)
		cols, renamed := applyColnames(cols, strList(rs.GetAlias().GetColnames()))
		return &item{name: rs.GetAlias().GetAliasname(), cols: cols, renamed: renamed}
	case *pg_query.Node_RangeFunction:
		rf := x.RangeFunction
		name := rf.GetAlias().GetAliasname()
		if name == "" && len(rf.GetFunctions()) > 0 {
			// An unaliased function is named after itself.
			if items := rf.GetFunctions()[0].GetList().GetItems(); len(items) > 0 {
				if parts, ok := strs(items[0].GetFuncCall().GetFuncname()); ok {
					name = parts[len(parts)-1]
				}
			}
		}
		return w.opaqueItem(rf, name, sc, "alias")
	case *pg_query.Node_RangeTableFunc:
		name := x.RangeTableFunc.GetAlias().GetAliasname()
		if name == "" {
			name = "xmltable"
		}
		return w.opaqueItem(x.RangeTableFunc, name, sc, "alias")
	case *pg_query.Node_JsonTable:
		name := x.JsonTable.GetAlias().GetAliasname()
		if name == "" {
			name = "json_table"
		}
		return w.opaqueItem(x.JsonTable, name, sc, "alias")
	case *pg_query.Node_RangeTableSample:
		ts := x.RangeTableSample
		it := w.fromItem(ts.GetRelation(), sc)
		w.exprFields(ts.ProtoReflect(), colCtx{sc: sc, clause: ClauseOther}, "relation", "method")
		return it
	case *pg_query.Node_JoinExpr:
		return w.join(x.JoinExpr, sc)
	}
	return w.opaqueItem(n, "", sc)
}

// opaqueItem is a function or table function in FROM: its arguments are
// reported as other, and every column it returns may come from any of
// them.
func (w *colWalker) opaqueItem(m proto.Message, name string, sc *scope, skip ...protoreflect.Name) *item {
	v := &val{}
	w.exprFields(m.ProtoReflect(), colCtx{sc: sc, into: v}, skip...)
	w.emit(v, ClauseOther)
	return &item{name: name, any: v}
}

func (w *colWalker) rangeVar(rv *pg_query.RangeVar, sc *scope) *item {
	al := rv.GetAlias()
	if rv.GetSchemaname() == "" && rv.GetCatalogname() == "" {
		if c := findCTE(sc, rv.GetRelname()); c != nil {
			it := &item{name: rv.GetRelname(), any: c.any}
			if al != nil {
				it.name = al.GetAliasname()
			}
			if c.any == nil {
				var renamed []string
				it.cols, renamed = applyColnames(c.cols, strList(al.GetColnames()))
				it.renamed = append(append([]string(nil), c.renamed...), renamed...)
			}
			return it
		}
	}
	return w.relItem(rv)
}

func findCTE(sc *scope, name string) *cte {
	for s := sc; s != nil; s = s.parent {
		if c, ok := s.ctes[name]; ok {
			return c
		}
	}
	return nil
}

// join: the ON condition, USING columns and NATURAL comparison are
// predicates. NATURAL compares the columns the two sides have in common,
// which are not known here: both whole rows are reported.
func (w *colWalker) join(j *pg_query.JoinExpr, sc *scope) *item {
	n := len(sc.items)
	l := w.fromItem(j.GetLarg(), sc)
	w.addItem(sc, l) // seen by a LATERAL right side and by ON
	r := w.fromItem(j.GetRarg(), sc)
	w.addItem(sc, r)
	for _, u := range strList(j.GetUsingClause()) {
		w.emit(w.resolved(w.column(l, u)), ClausePredicate)
		w.emit(w.resolved(w.column(r, u)), ClausePredicate)
	}
	if j.GetIsNatural() {
		w.emit(w.resolved(w.whole(l)), ClausePredicate)
		w.emit(w.resolved(w.whole(r)), ClausePredicate)
	}
	pred := colCtx{sc: sc, clause: ClausePredicate}
	w.expr(j.GetQuals(), pred)
	w.exprFields(j.ProtoReflect(), pred, "larg", "rarg", "using_clause", "quals", "alias", "join_using_alias")
	sc.items = sc.items[:n]
	sc.memo = nil
	it := &item{kids: []*item{l, r}, usingAlias: j.GetJoinUsingAlias().GetAliasname()}
	if al := j.GetAlias(); al != nil {
		it.name, it.hides, it.renamed = al.GetAliasname(), true, strList(al.GetColnames())
	}
	return it
}

// Name resolution.

// lookupItem resolves a column name in an item.
func (w *colWalker) lookupItem(it *item, col string) lookup {
	if r, ok := it.memo[col]; ok {
		return r
	}
	var r lookup
	switch {
	case contains(it.renamed, col):
		r = lookup{v: w.whole(it), has: true, matched: true}
	case it.table != "":
		r = lookup{v: w.leaf(it.table, col), matched: true}
	case it.any != nil:
		r = lookup{v: it.any, matched: true}
	case it.kids != nil:
		var vs []*val
		for _, k := range it.kids {
			kr := w.lookupItem(k, col)
			if kr.matched {
				vs = append(vs, kr.v)
				r.matched = true
			}
			r.has = r.has || kr.has
		}
		r.v = union(vs...)
	default:
		var vs []*val
		for _, c := range it.cols {
			switch {
			case c.star != nil:
				for _, s := range c.star {
					sr := w.lookupItem(s, col)
					if sr.matched {
						vs = append(vs, sr.v)
						r.matched = true
					}
					r.has = r.has || sr.has
				}
			case c.multi || !c.sure:
				vs = append(vs, c.v)
				r.matched = true
			case c.name == col:
				vs = append(vs, c.v)
				r.matched, r.has = true, true
			}
		}
		r.v = union(vs...)
	}
	if it.memo == nil {
		it.memo = make(map[string]lookup)
	}
	it.memo[col] = r
	return r
}

// column resolves t.col for an item t. A name that is not one of a
// subquery's columns can still be a function taking its row, t.f meaning
// f(t) (docs 8.16.5): that reads the whole row.
func (w *colWalker) column(it *item, col string) *val {
	if r := w.lookupItem(it, col); r.matched {
		return r.v
	}
	return w.whole(it)
}

// whole is every column of an item: its whole row.
func (w *colWalker) whole(it *item) *val {
	if it.whole != nil {
		return it.whole
	}
	var v *val
	switch {
	case it.table != "":
		v = w.leaf(it.table, "*")
	case it.any != nil:
		v = it.any
	case it.kids != nil:
		vs := make([]*val, 0, len(it.kids))
		for _, k := range it.kids {
			vs = append(vs, w.whole(k))
		}
		v = union(vs...)
	default:
		v = w.wholeCols(it.cols)
	}
	if v == nil {
		v = &val{} // a row of constants; memoised all the same
	}
	it.whole = v
	return v
}

func (w *colWalker) wholes(its []*item) *val {
	vs := make([]*val, 0, len(its))
	for _, it := range its {
		vs = append(vs, w.whole(it))
	}
	return union(vs...)
}

// unqualified resolves a column name without a qualifier: a column of
// any item of the innermost query level with FROM items, or, since the
// tables' columns are not known here, of any item of the levels around
// it (a correlated reference), up to a level with an item known to have
// such a column.
func (w *colWalker) unqualified(sc *scope, col string) *val {
	if v, ok := sc.memo[col]; ok {
		return v
	}
	var vs []*val
	inScope := false
	for s := sc; s != nil; s = s.parent {
		has := false
		eachLeaf(s.items, func(it *item) {
			inScope = true
			if r := w.lookupItem(it, col); r.matched {
				vs = append(vs, r.v)
				has = has || r.has
			}
		})
		if has {
			break
		}
	}
	// With no item in scope at all, the name can be placed nowhere: a
	// column of that name in any table. With items that all lack it, it
	// is no column (a whole-row reference, see columnRef, or an error).
	v := union(vs...)
	if !inScope {
		v = w.leaf("", col)
	}
	if sc.memo == nil {
		sc.memo = make(map[string]*val)
	}
	sc.memo[col] = v
	return v
}

// eachLeaf calls fn for every item that has columns of its own,
// including the sides of joins (an alias hides their names, not their
// columns).
func eachLeaf(items []*item, fn func(*item)) {
	for _, it := range items {
		if it.kids != nil && it.table == "" && it.any == nil {
			eachLeaf(it.kids, fn)
			continue
		}
		fn(it)
	}
}

// findItems returns the items a qualifier names at the innermost query
// level that has one (refnameNamespaceItem, parse_relation.c).
func findItems(sc *scope, name string) []*item {
	if name == "" {
		return nil
	}
	for s := sc; s != nil; s = s.parent {
		var found []*item
		for _, it := range s.items {
			found = named(it, name, found)
		}
		if len(found) > 0 {
			return found
		}
	}
	return nil
}

func named(it *item, name string, found []*item) []*item {
	if it.name == name || it.usingAlias == name {
		found = append(found, it)
	}
	if it.kids != nil && !it.hides {
		for _, k := range it.kids {
			found = named(k, name, found)
		}
	}
	return found
}

// findRel returns the unaliased relation items named schema.table.
func findRel(sc *scope, table string) []*item {
	for s := sc; s != nil; s = s.parent {
		var found []*item
		eachVisible(s.items, func(it *item) {
			if it.table == table && !it.aliased {
				found = append(found, it)
			}
		})
		if len(found) > 0 {
			return found
		}
	}
	return nil
}

func eachVisible(items []*item, fn func(*item)) {
	for _, it := range items {
		fn(it)
		if it.kids != nil && !it.hides {
			eachVisible(it.kids, fn)
		}
	}
}

// starItems returns what *, t.* or s.t.* expands to; found is false if
// the qualifier names nothing in scope.
func (w *colWalker) starItems(sc *scope, names []string) (its []*item, found bool) {
	switch len(names) {
	case 0:
		// * is the current level's FROM items (an error without one).
		its = append([]*item(nil), sc.items...)
	case 1:
		its = findItems(sc, names[0])
	default:
		its = findRel(sc, names[len(names)-2]+"."+names[len(names)-1])
	}
	return its, len(its) > 0
}

// refFields splits a ColumnRef's fields into names and a trailing star.
func refFields(fields []*pg_query.Node) (names []string, star, ok bool) {
	for i, f := range fields {
		switch {
		case f.GetString_() != nil:
			names = append(names, f.GetString_().GetSval())
		case f.GetAStar() != nil && i == len(fields)-1:
			star = true
		default:
			return nil, false, false
		}
	}
	return names, star, true
}

// columnRef resolves a column reference (transformColumnRef,
// parse_expr.c): col, t.col, s.t.col, db.s.t.col, *, t.*, s.t.*. A bare
// name that is also a FROM item's name may be that item's whole row
// (row_to_json(c)); both readings are returned.
func (w *colWalker) columnRef(cr *pg_query.ColumnRef, sc *scope) *val {
	names, star, ok := refFields(cr.GetFields())
	if !ok || len(names) > 4 {
		return w.resolved(w.leaf("", "*"))
	}
	if star {
		if len(names) == 3 {
			names = names[1:]
		}
		its, found := w.starItems(sc, names)
		if !found {
			return w.resolved(w.leaf("", "*"))
		}
		return w.resolved(w.wholes(its))
	}
	col := names[len(names)-1]
	var v *val
	switch len(names) {
	case 1:
		v = union(w.unqualified(sc, col), w.wholes(findItems(sc, col)))
	case 2:
		its := findItems(sc, names[0])
		vs := make([]*val, 0, len(its))
		for _, it := range its {
			vs = append(vs, w.column(it, col))
		}
		v = union(vs...)
		if len(its) == 0 {
			v = w.leaf("", col)
		}
	default:
		its := findRel(sc, names[len(names)-3]+"."+names[len(names)-2])
		vs := make([]*val, 0, len(its))
		for _, it := range its {
			vs = append(vs, w.column(it, col))
		}
		v = union(vs...)
		if len(its) == 0 {
			v = w.leaf("", col)
		}
	}
	return w.resolved(v)
}

// indirection: (c).col and (c).* with c a FROM item are a column and the
// whole row of c; c may also be a composite column of that name.
func (w *colWalker) indirection(x *pg_query.A_Indirection, c colCtx) {
	ind := x.GetIndirection()
	if cr := x.GetArg().GetColumnRef(); cr != nil && len(ind) > 0 {
		if names, star, ok := refFields(cr.GetFields()); ok && !star && len(names) == 1 {
			if its := findItems(c.sc, names[0]); len(its) > 0 {
				vs := make([]*val, 0, len(its)+1)
				for _, it := range its {
					if f := ind[0].GetString_(); f != nil {
						vs = append(vs, w.column(it, f.GetSval()))
					} else {
						vs = append(vs, w.whole(it))
					}
				}
				vs = append(vs, w.unqualified(c.sc, names[0]))
				w.send(c, w.resolved(union(vs...)))
				w.walkNodes(ind, c)
				return
			}
		}
	}
	w.exprFields(x.ProtoReflect(), c)
}

// Expressions.

// expr walks an expression (or any other part of the tree): references
// in it go to c, those in its predicates (an aggregate's FILTER and
// ORDER BY, a window definition, a subquery's WHERE) are reported as
// such, and subqueries are walked as queries.
func (w *colWalker) expr(m proto.Message, c colCtx) {
	if m == nil || !m.ProtoReflect().IsValid() {
		return
	}
	switch x := m.(type) {
	case *pg_query.Node:
		// The commonest nodes skip the reflection: constants and
		// names hold no reference.
		switch n := x.GetNode().(type) {
		case *pg_query.Node_ColumnRef:
			w.send(c, w.columnRef(n.ColumnRef, c.sc))
		case *pg_query.Node_AConst, *pg_query.Node_String_, *pg_query.Node_Integer, *pg_query.Node_Float,
			*pg_query.Node_Boolean, *pg_query.Node_ParamRef, *pg_query.Node_AStar:
		default:
			w.exprFields(x.ProtoReflect(), c)
		}
	case *pg_query.ColumnRef:
		w.send(c, w.columnRef(x, c.sc))
	case *pg_query.A_Indirection:
		w.indirection(x, c)
	case *pg_query.FuncCall:
		w.walkNodes(x.GetArgs(), c)
		if x.GetAggWithinGroup() {
			// percentile_cont(0.5) WITHIN GROUP (ORDER BY salary)
			// aggregates the ordered values.
			w.walkNodes(x.GetAggOrder(), c)
		} else {
			w.walkNodes(x.GetAggOrder(), c.pred())
		}
		w.expr(x.GetAggFilter(), c.pred())
		w.expr(x.GetOver(), c.pred())
		w.exprFields(x.ProtoReflect(), c, "funcname", "args", "agg_order", "agg_filter", "over")
	case *pg_query.JsonAggConstructor:
		// JSON_ARRAYAGG and JSON_OBJECTAGG keep their FILTER, ORDER BY
		// and OVER here; the aggregated value is in the enclosing node.
		w.expr(x.GetAggFilter(), c.pred())
		w.walkNodes(x.GetAggOrder(), c.pred())
		w.expr(x.GetOver(), c.pred())
		w.exprFields(x.ProtoReflect(), c, "agg_filter", "agg_order", "over")
	case *pg_query.WindowDef:
		w.exprFields(x.ProtoReflect(), c.pred())
	case *pg_query.SubLink:
		w.expr(x.GetTestexpr(), c)
		cols := w.query(x.GetSubselect(), c.sc)
		if x.GetSubLinkType() != pg_query.SubLinkType_EXISTS_SUBLINK {
			// EXISTS ignores its select list; every other kind
			// compares or returns its values.
			w.send(c, w.wholeCols(cols))
		}
		w.exprFields(x.ProtoReflect(), c, "testexpr", "subselect")
	case *pg_query.SelectStmt:
		w.send(c, w.wholeCols(w.selectStmt(x, c.sc)))
	case *pg_query.InsertStmt:
		w.send(c, w.wholeCols(w.insertStmt(x, c.sc)))
	case *pg_query.UpdateStmt:
		w.send(c, w.wholeCols(w.updateStmt(x, c.sc)))
	case *pg_query.DeleteStmt:
		w.send(c, w.wholeCols(w.deleteStmt(x, c.sc)))
	case *pg_query.MergeStmt:
		w.send(c, w.wholeCols(w.mergeStmt(x, c.sc)))
	default:
		w.exprFields(m.ProtoReflect(), c)
	}
}

// exprFields visits every populated message field of m except those
// named in skip, like analyzer.walkFields.
func (w *colWalker) exprFields(m protoreflect.Message, c colCtx, skip ...protoreflect.Name) {
	eachChild(m, skip, func(child proto.Message) { w.expr(child, c) })
}

func (w *colWalker) walkNodes(nodes []*pg_query.Node, c colCtx) {
	for _, n := range nodes {
		w.expr(n, c)
	}
}

// Output column names.

// figureColname is the name PostgreSQL gives an unnamed select-list
// entry (FigureColname, src/backend/parser/parse_target.c); sure is false
// for expressions whose naming is not modelled here, which are then
// taken to match any name.
func figureColname(n *pg_query.Node) (name string, sure bool) {
	name, strength, ok := colname(n)
	if !ok {
		return "", false
	}
	if strength == 0 {
		return "?column?", true
	}
	return name, true
}

// colname mirrors FigureColnameInternal: strength 2 is a real name, 1 a
// fallback (a type name, "case"), 0 none.
func colname(n *pg_query.Node) (name string, strength int, ok bool) {
	switch x := n.GetNode().(type) {
	case nil:
		return "", 0, true
	case *pg_query.Node_ColumnRef:
		for _, f := range x.ColumnRef.GetFields() {
			if s := f.GetString_(); s != nil {
				name = s.GetSval()
			}
		}
		if name != "" {
			return name, 2, true
		}
		return "", 0, true
	case *pg_query.Node_AIndirection:
		for _, f := range x.AIndirection.GetIndirection() {
			if s := f.GetString_(); s != nil {
				name = s.GetSval()
			}
		}
		if name != "" {
			return name, 2, true
		}
		return colname(x.AIndirection.GetArg())
	case *pg_query.Node_FuncCall:
		parts, ok := strs(x.FuncCall.GetFuncname())
		if !ok {
			return "", 0, false
		}
		return parts[len(parts)-1], 2, true
	case *pg_query.Node_AExpr:
		if x.AExpr.GetKind() == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2, true
		}
		return "", 0, true
	case *pg_query.Node_TypeCast:
		name, strength, ok = colname(x.TypeCast.GetArg())
		if !ok {
			return "", 0, false
		}
		if strength <= 1 {
			if parts, isStr := strs(x.TypeCast.GetTypeName().GetNames()); isStr {
				return parts[len(parts)-1], 1, true
			}
		}
		return name, strength, true
	case *pg_query.Node_CollateClause:
		return colname(x.CollateClause.GetArg())
	case *pg_query.Node_GroupingFunc:
		return "grouping", 2, true
	case *pg_query.Node_MergeSupportFunc:
		return "merge_action", 2, true
	case *pg_query.Node_SubLink:
		switch x.SubLink.GetSubLinkType() {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2, true
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return "array", 2, true
		case pg_query.SubLinkType_EXPR_SUBLINK:
			return "", 0, false // the subquery's column name
		}
		return "", 0, true
	case *pg_query.Node_CaseExpr:
		name, strength, ok = colname(x.CaseExpr.GetDefresult())
		if !ok {
			return "", 0, false
		}
		if strength <= 1 {
			return "case", 1, true
		}
		return name, strength, true
	case *pg_query.Node_AArrayExpr:
		return "array", 2, true
	case *pg_query.Node_RowExpr:
		return "row", 2, true
	case *pg_query.Node_CoalesceExpr:
		return "coalesce", 2, true
	case *pg_query.Node_MinMaxExpr:
		if x.MinMaxExpr.GetOp() == pg_query.MinMaxOp_IS_GREATEST {
			return "greatest", 2, true
		}
		return "least", 2, true
	case *pg_query.Node_AConst, *pg_query.Node_BoolExpr, *pg_query.Node_NullTest,
		*pg_query.Node_BooleanTest, *pg_query.Node_ParamRef:
		return "", 0, true
	}
	return "", 0, false
}

// strList returns the String values of a name list, skipping others.
func strList(nodes []*pg_query.Node) []string {
	if len(nodes) == 0 {
		return nil
	}
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.GetSval())
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
