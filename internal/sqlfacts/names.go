package sqlfacts

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Name resolution.
//
// Warden pins the upstream search_path to "pg_catalog, <Schema>, pg_temp".
// PostgreSQL looks an unqualified relation, function or operator name up in
// that order (docs 5.9.3 "The Schema Search Path"), so an unqualified name
// means the pg_catalog object when one of that name exists, and
// <Schema>.<name> otherwise. pg_temp comes last, so a temporary table can
// never shadow a <Schema> table; and functions and operators are never
// looked up in pg_temp at all (docs, "SET search_path": "the temporary
// schema is never searched for functions or operators").
//
// Objects are rendered as "schema.name" with the identifiers exactly as
// PostgreSQL stores them (the parser has already folded unquoted
// identifiers to lower case and decoded U&"..." escapes); no quoting is
// added.

//go:generate sh gencatalog.sh

const (
	catalogSchema = "pg_catalog"
	tempSchema    = "pg_temp"
)

var (
	pgCatalogRelations = setOf(pgCatalogRelationNames, pgCatalogRelationNamesExtra)
	pgCatalogFunctions = setOf(pgCatalogFunctionNames, pgCatalogFunctionNamesExtra)
	pgCatalogOperators = setOf(pgCatalogOperatorNames)
)

func setOf(lists ...[]string) map[string]struct{} {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	m := make(map[string]struct{}, n)
	for _, l := range lists {
		for _, s := range l {
			m[s] = struct{}{}
		}
	}
	return m
}

func has(m map[string]struct{}, k string) bool {
	_, ok := m[k]
	return ok
}

// relName resolves a relation reference by the search path.
func (a *analyzer) relName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return a.schema + ".?"
	}
	if rv.Schemaname != "" {
		return rv.Schemaname + "." + rv.Relname
	}
	if has(pgCatalogRelations, rv.Relname) {
		return catalogSchema + "." + rv.Relname
	}
	return a.schema + "." + rv.Relname
}

// createdRelName is the name a CREATE gives a new relation. CREATE TEMP
// puts it in pg_temp whatever the path says; an unqualified name is taken
// to mean <Schema> (see the package doc about the creation schema).
func (a *analyzer) createdRelName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return a.schema + ".?"
	}
	if rv.Relpersistence == "t" {
		return tempSchema + "." + rv.Relname
	}
	if rv.Schemaname != "" {
		return rv.Schemaname + "." + rv.Relname
	}
	return a.schema + "." + rv.Relname
}

// strs returns the String values of a name list (as in FuncCall.funcname
// or DropStmt objects); ok is false if any element is not a String.
func strs(nodes []*pg_query.Node) (out []string, ok bool) {
	out = make([]string, 0, len(nodes))
	for _, n := range nodes {
		s, isStr := n.GetNode().(*pg_query.Node_String_)
		if !isStr || s.String_ == nil {
			return nil, false
		}
		out = append(out, s.String_.Sval)
	}
	return out, len(out) > 0
}

// qualify turns a dotted name list into "schema.name". A single name is
// resolved with inCatalog: if it names a pg_catalog object the result is
// pg_catalog.name, else <Schema>.name. A three-part name
// (database.schema.name) keeps its last two parts: PostgreSQL rejects a
// database other than the current one.
func (a *analyzer) qualify(parts []string, inCatalog map[string]struct{}) string {
	switch len(parts) {
	case 0:
		return a.schema + ".?"
	case 1:
		if inCatalog != nil && has(inCatalog, parts[0]) {
			return catalogSchema + "." + parts[0]
		}
		return a.schema + "." + parts[0]
	default:
		return parts[len(parts)-2] + "." + parts[len(parts)-1]
	}
}

// funcName resolves a function name list to its schema and name.
func (a *analyzer) funcName(nodes []*pg_query.Node) (schema, name string, ok bool) {
	parts, ok := strs(nodes)
	switch {
	case !ok || len(parts) > 3:
		return "", "", false
	case len(parts) == 1:
		if has(pgCatalogFunctions, parts[0]) {
			return catalogSchema, parts[0], true
		}
		return a.schema, parts[0], true
	default:
		return parts[len(parts)-2], parts[len(parts)-1], true
	}
}
