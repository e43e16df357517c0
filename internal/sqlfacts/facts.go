package sqlfacts

// Action is what a statement does to an object. The names are the keys of a
// policy's `sql:` rule.
type Action string

const (
	Select   Action = "select"   // read rows of a relation (table, view, sequence, matview)
	Insert   Action = "insert"   // add rows (INSERT, COPY FROM, SELECT INTO target)
	Update   Action = "update"   // change rows (UPDATE, INSERT ... ON CONFLICT DO UPDATE)
	Delete   Action = "delete"   // remove rows
	Truncate Action = "truncate" // TRUNCATE
	Lock     Action = "lock"     // LOCK TABLE, SELECT ... FOR UPDATE/SHARE
	Create   Action = "create"   // CREATE of the named object (schema-qualified)
	Alter    Action = "alter"    // ALTER/COMMENT/GRANT... of the named object
	Drop     Action = "drop"     // DROP of the named object
	Execute  Action = "execute"  // call a function/procedure that is not on the built-in safe list (object = schema.function)
	Command  Action = "command"  // a utility command needing an explicit grant (object = command name, e.g. "vacuum", "do", "listen", "notify")
)

// Access is one permission a statement needs: Action on Object.
// Object is schema-qualified ("public.orders", "pg_catalog.pg_read_file")
// for relations and functions, and a lower-case command name for Command.
type Access struct {
	Action Action
	Object string
}

// Statement is the facts of one top-level SQL statement.
type Statement struct {
	// Text is the statement's own source text (sliced out of a
	// multi-statement query string).
	Text string
	// Kind is a lower-case name for the statement, e.g. "select", "insert",
	// "create table", "set", "begin", "copy", "explain".
	Kind string
	// Accesses are all the permissions the statement needs, deduplicated.
	// A statement with no accesses (BEGIN, SELECT 1, SHOW x, harmless SET)
	// needs nothing beyond being connected.
	Accesses []Access
	// Refusal, when non-empty, means the statement is refused whatever the
	// policy says (SET ROLE, SET search_path, COPY ... PROGRAM, set_config,
	// ...). It says why, for the client's error message.
	Refusal string
	// HighRisk marks statements an operator may want to hold for review
	// without listing tables: UPDATE/DELETE without WHERE, DDL, TRUNCATE.
	HighRisk bool
	// Columns are the table columns the statement's values can come
	// from, with the clause each is used in, deduplicated; nil when it
	// uses none. They are resolved conservatively (see ColumnRef and the
	// package doc, "Columns"): a column may be listed that the statement
	// does not use, but a column it uses is never missing.
	Columns []ColumnRef

	// Session effects the proxy must track (SQL-level prepared statements
	// share one namespace with protocol-level named statements).
	PrepareName    string // PREPARE name AS ...; Accesses are those of the inner statement
	ExecuteName    string // EXECUTE name; the proxy decides with the prepared statement's facts
	DeallocateName string // DEALLOCATE name
	DeallocateAll  bool   // DEALLOCATE ALL / DISCARD ALL
}

// Clause says how a statement uses a column: whether its value can reach
// the client in a result column, decides which rows are returned, or
// neither.
type Clause string

const (
	// ClauseOutput: the value can flow into a result column, as is or
	// computed (select list, RETURNING, VALUES as a query, the inner
	// query of COPY, SELECT INTO and CREATE TABLE AS, INSERT ... SELECT).
	// A CASE condition or aggregate argument inside the select list is
	// output too: the result reveals it, so masking that result column
	// hides it.
	ClauseOutput Clause = "output"
	// ClausePredicate: the value decides which rows are returned, or in
	// what order or groups (WHERE, JOIN ON/USING/NATURAL, GROUP BY,
	// HAVING, ORDER BY, DISTINCT and DISTINCT ON, window PARTITION BY and
	// ORDER BY, an aggregate's FILTER and ORDER BY, LIMIT/OFFSET, the
	// outputs of UNION/INTERSECT/EXCEPT without ALL, which compare rows).
	// Masking the result cannot hide it: `WHERE ssn LIKE '1%'` leaks bits
	// of ssn through which rows come back.
	ClausePredicate Clause = "predicate"
	// ClauseOther: any other use, such as an UPDATE's SET expressions, an
	// INSERT's VALUES, the arguments of a function in FROM, DDL.
	ClauseOther Clause = "other"
)

// ColumnRef is a table column a statement uses.
type ColumnRef struct {
	// Table is the schema-qualified relation the reference resolves to,
	// by the same search-path rules as Accesses ("public.customers").
	// An unqualified column with several relations in scope is listed
	// once per candidate relation. Table is "" when the reference names
	// no relation in scope (a qualifier this package cannot place, a
	// column of a statement with no FROM); it then stands for a column
	// of that name in any table.
	Table string
	// Column is the column name as PostgreSQL stores it, or "*" for the
	// whole row (SELECT *, t.*, a row value such as row_to_json(t)):
	// every column of Table may be used.
	Column string
	Clause Clause
}

// Facts is the result of analysing one query string.
type Facts struct {
	Statements []Statement
	// Fingerprint is the query with its constants replaced by $n
	// parameters (pg_query's normalization), for grouping in the audit
	// log; empty for very long queries.
	Fingerprint string
}

// Options say how names resolve upstream.
type Options struct {
	// Schema is the schema unqualified relation names resolve to: warden
	// pins the upstream search_path to "pg_catalog, <Schema>, pg_temp", so
	// an unqualified name is a pg_catalog relation if PostgreSQL has one of
	// that name and <Schema>.<name> otherwise. Default "public".
	Schema string
}
