package sqlfacts

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The query walker.
//
// Every node of the parse tree is visited through protobuf reflection, so
// a node type this file does not mention (a new expression kind, a
// subquery in an unusual clause) is still searched for relations and
// function calls. Only the nodes that give a reference its meaning are
// handled by name: SELECT (FROM, WITH, INTO, FOR UPDATE), the DML
// statements (their target relation), RangeVar (a relation reference),
// FuncCall, and operator names.

// ctx is what the enclosing clauses say about a relation reference.
type ctx struct {
	// lock: the reference is in the FROM clause of a SELECT with a
	// locking clause. "If a locking clause is applied to a view or
	// sub-query, it affects all tables used in the view or sub-query"
	// (docs SELECT, "The Locking Clause"), so it is inherited downwards;
	// FOR UPDATE OF a subset is treated as locking all of FROM.
	lock bool
}

// walk visits one message of the parse tree.
func (a *analyzer) walk(m proto.Message, c ctx) {
	if m == nil || !m.ProtoReflect().IsValid() {
		return // an absent optional child (a typed nil pointer)
	}
	switch x := m.(type) {
	case *pg_query.Node:
		a.walkFields(x.ProtoReflect(), c)
	case *pg_query.RangeVar:
		a.relationRef(x, c)
	case *pg_query.FuncCall:
		a.funcCall(x, c)
	case *pg_query.A_Expr:
		switch x.Kind {
		case pg_query.A_Expr_Kind_AEXPR_OP, pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
			a.operator(x.Name)
		default:
			// LIKE, IN, BETWEEN, ...: the grammar fills in built-in
			// names; only an explicit OPERATOR(schema.op) can differ.
			if len(x.Name) > 1 {
				a.operator(x.Name)
			}
		}
		a.walkFields(x.ProtoReflect(), c, "name")
	case *pg_query.SubLink:
		if len(x.OperName) > 0 {
			a.operator(x.OperName)
		}
		a.walkFields(x.ProtoReflect(), c, "oper_name")
	case *pg_query.SortBy:
		if len(x.UseOp) > 0 {
			a.operator(x.UseOp)
		}
		a.walkFields(x.ProtoReflect(), c, "use_op")
	case *pg_query.RangeTableSample:
		// TABLESAMPLE method(...) calls the method's handler function,
		// looked up by name like any function (docs "SELECT",
		// "TABLESAMPLE"); only the built-in SYSTEM and BERNOULLI are known.
		if schema, name, ok := a.funcName(x.Method); !ok {
			a.refuse("unrecognised TABLESAMPLE method")
		} else if schema != catalogSchema || (name != "system" && name != "bernoulli") {
			a.add(Execute, schema+"."+name)
		}
		a.walkFields(x.ProtoReflect(), c, "method")
	case *pg_query.SelectStmt:
		a.selectStmt(x, c)
	case *pg_query.InsertStmt:
		a.insertStmt(x, c)
	case *pg_query.UpdateStmt:
		a.updateStmt(x, c)
	case *pg_query.DeleteStmt:
		a.deleteStmt(x, c)
	case *pg_query.MergeStmt:
		a.mergeStmt(x, c)
	default:
		a.walkFields(m.ProtoReflect(), c)
	}
}

// walkFields visits every populated message field of m except those
// named in skip (protobuf field names, e.g. "from_clause").
func (a *analyzer) walkFields(m protoreflect.Message, c ctx, skip ...protoreflect.Name) {
	eachChild(m, skip, func(child proto.Message) { a.walk(child, c) })
}

// eachChild calls visit for every message held by a populated message
// field of m (list elements and map values included) except the fields
// named in skip. Both the access walk and the column walk go through it,
// so no node type is forgotten by either.
func eachChild(m protoreflect.Message, skip []protoreflect.Name, visit func(proto.Message)) {
	if m == nil || !m.IsValid() {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		for _, s := range skip {
			if fd.Name() == s {
				return true
			}
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message().Interface())
			}
		case fd.IsMap():
			// The pg_query protobuf has no maps; visit values anyway.
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					visit(mv.Message().Interface())
				}
				return true
			})
		default:
			visit(v.Message().Interface())
		}
		return true
	})
}

func (a *analyzer) walkNodes(nodes []*pg_query.Node, c ctx) {
	for _, n := range nodes {
		a.walk(n, c)
	}
}

// relationRef is a relation read in a query: a FROM item, a USING item, a
// relation in a subquery anywhere.
func (a *analyzer) relationRef(rv *pg_query.RangeVar, c ctx) {
	if rv.Schemaname == "" && rv.Catalogname == "" && a.isCTE(rv.Relname) {
		return
	}
	obj := a.relName(rv)
	a.add(Select, obj)
	if c.lock {
		a.add(Lock, obj)
	}
}

// with brings the CTEs of a WITH clause into scope and walks their
// queries; the returned function ends the scope. In a plain WITH each CTE
// sees the ones before it; in WITH RECURSIVE every CTE sees all of them
// (docs 7.8). A CTE's own name inside a plain CTE's body is therefore the
// table of that name, not the CTE.
func (a *analyzer) with(w *pg_query.WithClause, c ctx) func() {
	if w == nil {
		return func() {}
	}
	scope := make(map[string]struct{}, len(w.Ctes))
	a.ctes = append(a.ctes, scope)
	depth := len(a.ctes)
	if w.Recursive {
		for _, n := range w.Ctes {
			if cte := n.GetCommonTableExpr(); cte != nil {
				scope[cte.Ctename] = struct{}{}
			}
		}
	}
	for _, n := range w.Ctes {
		a.walk(n, c)
		if cte := n.GetCommonTableExpr(); cte != nil {
			scope[cte.Ctename] = struct{}{}
		}
	}
	return func() { a.ctes = a.ctes[:depth-1] }
}

func (a *analyzer) selectStmt(s *pg_query.SelectStmt, c ctx) {
	end := a.with(s.WithClause, c)
	defer end()
	if into := s.IntoClause; into != nil {
		// SELECT INTO creates a table (docs "SELECT INTO").
		a.add(Create, a.createdRelName(into.Rel))
		a.highRisk()
		a.walkFields(into.ProtoReflect(), c, "rel")
	}
	fc := c
	if len(s.LockingClause) > 0 {
		fc.lock = true
	}
	a.walkNodes(s.FromClause, fc)
	// locking_clause holds only the names (or aliases) in FOR UPDATE OF.
	a.walkFields(s.ProtoReflect(), c, "with_clause", "into_clause", "from_clause", "locking_clause")
}

// The target of INSERT, UPDATE, DELETE and MERGE is always a relation,
// never a CTE of the same name (the parser opens it with
// parserOpenTable, which does not look at CTEs).

func (a *analyzer) insertStmt(s *pg_query.InsertStmt, c ctx) {
	end := a.with(s.WithClause, c)
	defer end()
	target := a.relName(s.Relation)
	a.add(Insert, target)
	if oc := s.OnConflictClause; oc != nil && oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
		// "If ON CONFLICT DO UPDATE is present, UPDATE privilege on the
		// table is also required ... ON CONFLICT DO UPDATE also requires
		// SELECT privilege on any column whose values are read in the ON
		// CONFLICT DO UPDATE expressions or condition" (docs INSERT).
		a.add(Update, target)
		if oc.WhereClause != nil || readsTarget(oc.ProtoReflect(), "excluded") {
			a.add(Select, target)
		}
	}
	if len(s.ReturningList) > 0 {
		// "Use of the RETURNING clause requires SELECT privilege on all
		// columns mentioned in RETURNING" (docs INSERT).
		a.add(Select, target)
	}
	a.walkFields(s.ProtoReflect(), c, "with_clause", "relation")
}

func (a *analyzer) updateStmt(s *pg_query.UpdateStmt, c ctx) {
	end := a.with(s.WithClause, c)
	defer end()
	target := a.relName(s.Relation)
	a.add(Update, target)
	// "You must also have the SELECT privilege on any column whose values
	// are read in the expressions or condition" (docs UPDATE).
	if whereReads(s.WhereClause) || len(s.ReturningList) > 0 || readsTarget(listMsg(s.TargetList), "") {
		a.add(Select, target)
	}
	if s.WhereClause == nil {
		a.highRisk()
	}
	a.walkFields(s.ProtoReflect(), c, "with_clause", "relation")
}

func (a *analyzer) deleteStmt(s *pg_query.DeleteStmt, c ctx) {
	end := a.with(s.WithClause, c)
	defer end()
	target := a.relName(s.Relation)
	a.add(Delete, target)
	// "You need the SELECT privilege on any table in the USING clause or
	// whose values are read in the condition" (docs DELETE).
	if whereReads(s.WhereClause) || len(s.ReturningList) > 0 {
		a.add(Select, target)
	}
	if s.WhereClause == nil {
		a.highRisk()
	}
	a.walkFields(s.ProtoReflect(), c, "with_clause", "relation")
}

func (a *analyzer) mergeStmt(s *pg_query.MergeStmt, c ctx) {
	end := a.with(s.WithClause, c)
	defer end()
	target := a.relName(s.Relation)
	// The join condition reads the target (docs MERGE: "SELECT privilege
	// on any column(s) of the data_source and target_table_name referred
	// to in any condition or expression").
	a.add(Select, target)
	for _, n := range s.MergeWhenClauses {
		w := n.GetMergeWhenClause()
		if w == nil {
			continue
		}
		switch w.CommandType {
		case pg_query.CmdType_CMD_INSERT:
			a.add(Insert, target)
		case pg_query.CmdType_CMD_UPDATE:
			a.add(Update, target)
		case pg_query.CmdType_CMD_DELETE:
			a.add(Delete, target)
			a.highRisk()
		case pg_query.CmdType_CMD_NOTHING:
		default:
			a.refuse("MERGE with an unrecognised action")
		}
	}
	a.walkFields(s.ProtoReflect(), c, "with_clause", "relation")
}

// whereReads reports whether a WHERE clause reads the target's rows; WHERE
// CURRENT OF names a cursor position instead.
func whereReads(n *pg_query.Node) bool {
	return n != nil && n.GetCurrentOfExpr() == nil
}

// readsTarget reports whether m contains a column reference, other than
// one qualified by skipQualifier (ON CONFLICT's EXCLUDED row), that can
// read the target's columns. It is conservative: with UPDATE ... FROM a
// reference to another table counts too.
func readsTarget(m protoreflect.Message, skipQualifier string) bool {
	found := false
	var visit func(protoreflect.Message)
	visit = func(m protoreflect.Message) {
		if found || !m.IsValid() {
			return
		}
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok {
			excluded := skipQualifier != "" && len(cr.Fields) >= 2 &&
				cr.Fields[0].GetString_().GetSval() == skipQualifier
			if !excluded {
				found = true
			}
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind {
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len() && !found; i++ {
					visit(l.Get(i).Message())
				}
			} else if !fd.IsMap() {
				visit(v.Message())
			}
			return !found
		})
	}
	visit(m)
	return found
}

// listMsg wraps a node list as a message so readsTarget can search it.
func listMsg(nodes []*pg_query.Node) protoreflect.Message {
	return (&pg_query.List{Items: nodes}).ProtoReflect()
}

// funcCall checks one function call: a safe pg_catalog built-in needs
// nothing, set_config is refused, anything else needs Execute.
func (a *analyzer) funcCall(f *pg_query.FuncCall, c ctx) {
	schema, name, ok := a.funcName(f.Funcname)
	if !ok {
		a.refuse("unrecognised function name")
	} else {
		a.checkFunction(schema, name)
	}
	a.walkFields(f.ProtoReflect(), c, "funcname")
}

func (a *analyzer) checkFunction(schema, name string) {
	if schema == catalogSchema {
		if name == "set_config" {
			// set_config('search_path'|'role'|..., ..., ...) is SET by
			// another name, with the value computed at run time.
			a.refuse("set_config() is not allowed: it can change search_path, role and other settings")
			return
		}
		if has(safeFunctions, name) {
			return
		}
	}
	a.add(Execute, schema+"."+name)
}

// operator checks an operator name. Built-in operators are fine; an
// operator pg_catalog does not have, or one qualified with another
// schema, runs a user-defined function and needs Execute on it.
func (a *analyzer) operator(nodes []*pg_query.Node) {
	parts, ok := strs(nodes)
	if !ok || len(parts) > 2 {
		a.refuse("unrecognised operator name")
		return
	}
	if len(parts) == 1 {
		if has(pgCatalogOperators, parts[0]) {
			return
		}
		a.add(Execute, a.schema+"."+parts[0])
		return
	}
	if parts[0] == catalogSchema && has(pgCatalogOperators, parts[1]) {
		return
	}
	a.add(Execute, parts[0]+"."+parts[1])
}
