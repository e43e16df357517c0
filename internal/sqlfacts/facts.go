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

	// Session effects the proxy must track (SQL-level prepared statements
	// share one namespace with protocol-level named statements).
	PrepareName    string // PREPARE name AS ...; Accesses are those of the inner statement
	ExecuteName    string // EXECUTE name; the proxy decides with the prepared statement's facts
	DeallocateName string // DEALLOCATE name
	DeallocateAll  bool   // DEALLOCATE ALL / DISCARD ALL
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
