package sqlfacts

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// statement analyses one statement node, top-level or the inner statement
// of EXPLAIN, PREPARE, DECLARE, CREATE TABLE AS and CREATE SCHEMA, and
// returns its kind. Statement types not handled here are refused: a new
// utility statement in a later PostgreSQL must be looked at before agents
// may use it.
func (a *analyzer) statement(n *pg_query.Node) string {
	var c ctx
	switch s := n.GetNode().(type) {
	case nil:
		a.refuse("empty statement")
		return "unknown"

	// Queries and DML.
	case *pg_query.Node_SelectStmt:
		a.walk(s.SelectStmt, c)
		if s.SelectStmt.GetIntoClause() != nil {
			return "select into"
		}
		return "select"
	case *pg_query.Node_InsertStmt:
		a.walk(s.InsertStmt, c)
		return "insert"
	case *pg_query.Node_UpdateStmt:
		a.walk(s.UpdateStmt, c)
		return "update"
	case *pg_query.Node_DeleteStmt:
		a.walk(s.DeleteStmt, c)
		return "delete"
	case *pg_query.Node_MergeStmt:
		a.walk(s.MergeStmt, c)
		return "merge"
	case *pg_query.Node_CopyStmt:
		a.copyStmt(s.CopyStmt)
		return "copy"
	case *pg_query.Node_CallStmt:
		a.callStmt(s.CallStmt)
		return "call"

	// Statements that wrap another statement. EXPLAIN ANALYZE executes
	// its statement and plain EXPLAIN plans it (which can evaluate
	// functions in constant folding), so both are decided as the
	// statement they explain.
	case *pg_query.Node_ExplainStmt:
		a.statement(s.ExplainStmt.GetQuery())
		a.walkFields(s.ExplainStmt.ProtoReflect(), c, "query")
		return "explain"
	case *pg_query.Node_PrepareStmt:
		a.st.PrepareName = s.PrepareStmt.GetName()
		a.statement(s.PrepareStmt.GetQuery())
		a.walkFields(s.PrepareStmt.ProtoReflect(), c, "query")
		return "prepare"
	case *pg_query.Node_ExecuteStmt:
		// The proxy decides with the prepared statement's facts; the
		// parameters are expressions evaluated here and now.
		a.st.ExecuteName = s.ExecuteStmt.GetName()
		a.walk(s.ExecuteStmt, c)
		return "execute"
	case *pg_query.Node_DeallocateStmt:
		if s.DeallocateStmt.GetIsall() || s.DeallocateStmt.GetName() == "" {
			a.st.DeallocateAll = true
		} else {
			a.st.DeallocateName = s.DeallocateStmt.GetName()
		}
		return "deallocate"
	case *pg_query.Node_DeclareCursorStmt:
		a.statement(s.DeclareCursorStmt.GetQuery())
		return "declare cursor"
	case *pg_query.Node_FetchStmt:
		if s.FetchStmt.GetIsmove() {
			return "move"
		}
		return "fetch"
	case *pg_query.Node_ClosePortalStmt:
		return "close"

	// Session and transaction control.
	case *pg_query.Node_TransactionStmt:
		return a.transactionStmt(s.TransactionStmt)
	case *pg_query.Node_VariableSetStmt:
		return a.setStmt(s.VariableSetStmt)
	case *pg_query.Node_VariableShowStmt:
		return "show"
	case *pg_query.Node_ConstraintsSetStmt:
		return "set constraints"
	case *pg_query.Node_DiscardStmt:
		// DISCARD ALL also deallocates every prepared statement
		// (docs "DISCARD").
		if s.DiscardStmt.GetTarget() == pg_query.DiscardMode_DISCARD_ALL {
			a.st.DeallocateAll = true
		}
		return "discard"

	// Utility commands that need an explicit `command` grant.
	case *pg_query.Node_ListenStmt:
		return a.command("listen")
	case *pg_query.Node_UnlistenStmt:
		return a.command("unlisten")
	case *pg_query.Node_NotifyStmt:
		return a.command("notify")
	case *pg_query.Node_VacuumStmt:
		if s.VacuumStmt.GetIsVacuumcmd() {
			return a.command("vacuum")
		}
		return a.command("analyze")
	case *pg_query.Node_ClusterStmt:
		return a.command("cluster")
	case *pg_query.Node_ReindexStmt:
		return a.command("reindex")
	case *pg_query.Node_CheckPointStmt:
		return a.command("checkpoint")
	case *pg_query.Node_DoStmt:
		// An anonymous PL/pgSQL block can do anything; its body is not
		// analysed.
		a.highRisk()
		return a.command("do")

	case *pg_query.Node_LockStmt:
		for _, r := range s.LockStmt.GetRelations() {
			if rv := r.GetRangeVar(); rv != nil {
				a.add(Lock, a.relName(rv))
			} else {
				a.refuse("LOCK of an unrecognised object")
			}
		}
		return "lock"
	case *pg_query.Node_TruncateStmt:
		a.highRisk()
		for _, r := range s.TruncateStmt.GetRelations() {
			if rv := r.GetRangeVar(); rv != nil {
				a.add(Truncate, a.relName(rv))
			} else {
				a.refuse("TRUNCATE of an unrecognised object")
			}
		}
		return "truncate"
	case *pg_query.Node_RefreshMatViewStmt:
		// REFRESH needs ownership of the view (or MAINTAIN in 17), like
		// ALTER; deciding it as Alter on the view lets a policy grant it
		// per view.
		a.add(Alter, a.relName(s.RefreshMatViewStmt.GetRelation()))
		return "refresh materialized view"

	// Refused outright: they reach outside the database, change roles or
	// privileges, or act on the whole cluster.
	case *pg_query.Node_LoadStmt:
		return a.refused("load", "LOAD loads a shared library into the server")
	case *pg_query.Node_AlterSystemStmt:
		return a.refused("alter system", "ALTER SYSTEM changes the server configuration")
	case *pg_query.Node_CreateRoleStmt, *pg_query.Node_AlterRoleStmt, *pg_query.Node_AlterRoleSetStmt,
		*pg_query.Node_DropRoleStmt, *pg_query.Node_GrantRoleStmt, *pg_query.Node_GrantStmt,
		*pg_query.Node_AlterDefaultPrivilegesStmt, *pg_query.Node_ReassignOwnedStmt, *pg_query.Node_DropOwnedStmt:
		return a.refused(kindOf(n), "roles and privileges are not managed through warden")
	case *pg_query.Node_CreatedbStmt, *pg_query.Node_AlterDatabaseStmt, *pg_query.Node_AlterDatabaseSetStmt,
		*pg_query.Node_AlterDatabaseRefreshCollStmt, *pg_query.Node_DropdbStmt,
		*pg_query.Node_CreateTableSpaceStmt, *pg_query.Node_DropTableSpaceStmt,
		*pg_query.Node_AlterTableSpaceOptionsStmt, *pg_query.Node_AlterTableMoveAllStmt,
		*pg_query.Node_CreateExtensionStmt, *pg_query.Node_AlterExtensionStmt, *pg_query.Node_AlterExtensionContentsStmt,
		*pg_query.Node_CreateFdwStmt, *pg_query.Node_AlterFdwStmt, *pg_query.Node_CreateForeignServerStmt,
		*pg_query.Node_AlterForeignServerStmt, *pg_query.Node_CreateForeignTableStmt,
		*pg_query.Node_CreateUserMappingStmt, *pg_query.Node_AlterUserMappingStmt, *pg_query.Node_DropUserMappingStmt,
		*pg_query.Node_ImportForeignSchemaStmt, *pg_query.Node_CreateEventTrigStmt, *pg_query.Node_AlterEventTrigStmt,
		*pg_query.Node_CreatePlangStmt, *pg_query.Node_CreateAmStmt, *pg_query.Node_CreateCastStmt,
		*pg_query.Node_CreateTransformStmt, *pg_query.Node_CreatePublicationStmt, *pg_query.Node_AlterPublicationStmt,
		*pg_query.Node_CreateSubscriptionStmt, *pg_query.Node_AlterSubscriptionStmt, *pg_query.Node_DropSubscriptionStmt:
		return a.refused(kindOf(n), kindOf(n)+" acts on the whole cluster or outside the database and is not allowed through warden")

	// DDL on schema objects: Create/Alter/Drop of schema.name.
	case *pg_query.Node_CreateStmt:
		cs := s.CreateStmt
		a.ddl(Create, a.createdRelName(cs.GetRelation()))
		if cs.GetPartbound() != nil {
			// CREATE TABLE ... PARTITION OF parent changes the parent.
			for _, p := range cs.GetInhRelations() {
				if rv := p.GetRangeVar(); rv != nil {
					a.add(Alter, a.relName(rv))
				}
			}
		}
		a.walkFields(cs.ProtoReflect(), c, "relation")
		return "create table"
	case *pg_query.Node_ViewStmt:
		a.ddl(Create, a.createdRelName(s.ViewStmt.GetView()))
		a.walkFields(s.ViewStmt.ProtoReflect(), c, "view")
		return "create view"
	case *pg_query.Node_CreateTableAsStmt:
		ct := s.CreateTableAsStmt
		a.ddl(Create, a.createdRelName(ct.GetInto().GetRel()))
		a.statement(ct.GetQuery())
		a.walkFields(ct.GetInto().ProtoReflect(), c, "rel")
		if ct.GetObjtype() == pg_query.ObjectType_OBJECT_MATVIEW {
			return "create materialized view"
		}
		return "create table as"
	case *pg_query.Node_IndexStmt:
		is := s.IndexStmt
		a.ddl(Alter, a.relName(is.GetRelation()))
		if is.GetIdxname() != "" {
			// An index lives in its table's schema.
			a.add(Create, a.relSchema(is.GetRelation())+"."+is.GetIdxname())
		}
		a.walkFields(is.ProtoReflect(), c, "relation")
		return "create index"
	case *pg_query.Node_CreateSeqStmt:
		a.ddl(Create, a.createdRelName(s.CreateSeqStmt.GetSequence()))
		a.walkFields(s.CreateSeqStmt.ProtoReflect(), c, "sequence")
		return "create sequence"
	case *pg_query.Node_AlterSeqStmt:
		a.ddl(Alter, a.relName(s.AlterSeqStmt.GetSequence()))
		a.walkFields(s.AlterSeqStmt.ProtoReflect(), c, "sequence")
		return "alter sequence"
	case *pg_query.Node_AlterTableStmt:
		at := s.AlterTableStmt
		a.ddl(Alter, a.relName(at.GetRelation()))
		a.walkFields(at.ProtoReflect(), c, "relation")
		return "alter " + objectTypeName(at.GetObjtype())
	case *pg_query.Node_CreateFunctionStmt:
		cf := s.CreateFunctionStmt
		if parts, ok := strs(cf.GetFuncname()); ok && len(parts) <= 3 {
			a.ddl(Create, a.qualify(parts, nil))
		} else {
			a.refuse("unrecognised function name")
		}
		// The body is not run now, but an SQL-standard body
		// (BEGIN ATOMIC / RETURN) is parsed; it is walked so that what
		// it touches shows up, conservatively, as accesses.
		a.walkFields(cf.ProtoReflect(), c, "funcname")
		if cf.GetIsProcedure() {
			return "create procedure"
		}
		return "create function"
	case *pg_query.Node_AlterFunctionStmt:
		af := s.AlterFunctionStmt
		a.ddlObject(Alter, af.GetObjtype(), nil, &pg_query.Node{Node: &pg_query.Node_ObjectWithArgs{ObjectWithArgs: af.GetFunc()}})
		return "alter " + objectTypeName(af.GetObjtype())
	case *pg_query.Node_DefineStmt:
		ds := s.DefineStmt
		a.ddlNames(Create, ds.GetKind(), ds.GetDefnames())
		a.walkFields(ds.ProtoReflect(), c, "defnames")
		return "create " + objectTypeName(ds.GetKind())
	case *pg_query.Node_CompositeTypeStmt:
		a.ddl(Create, a.createdRelName(s.CompositeTypeStmt.GetTypevar()))
		a.walkFields(s.CompositeTypeStmt.ProtoReflect(), c, "typevar")
		return "create type"
	case *pg_query.Node_CreateEnumStmt:
		a.ddlNames(Create, pg_query.ObjectType_OBJECT_TYPE, s.CreateEnumStmt.GetTypeName())
		return "create type"
	case *pg_query.Node_CreateRangeStmt:
		a.ddlNames(Create, pg_query.ObjectType_OBJECT_TYPE, s.CreateRangeStmt.GetTypeName())
		a.walkFields(s.CreateRangeStmt.ProtoReflect(), c, "type_name")
		return "create type"
	case *pg_query.Node_AlterEnumStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_TYPE, s.AlterEnumStmt.GetTypeName())
		return "alter type"
	case *pg_query.Node_AlterTypeStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_TYPE, s.AlterTypeStmt.GetTypeName())
		return "alter type"
	case *pg_query.Node_CreateDomainStmt:
		a.ddlNames(Create, pg_query.ObjectType_OBJECT_DOMAIN, s.CreateDomainStmt.GetDomainname())
		a.walkFields(s.CreateDomainStmt.ProtoReflect(), c, "domainname")
		return "create domain"
	case *pg_query.Node_AlterDomainStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_DOMAIN, s.AlterDomainStmt.GetTypeName())
		a.walkFields(s.AlterDomainStmt.ProtoReflect(), c, "type_name")
		return "alter domain"
	case *pg_query.Node_CreateTrigStmt:
		ts := s.CreateTrigStmt
		a.ddl(Alter, a.relName(ts.GetRelation()))
		if schema, name, ok := a.funcName(ts.GetFuncname()); ok {
			a.add(Execute, schema+"."+name)
		} else {
			a.refuse("unrecognised trigger function name")
		}
		a.walkFields(ts.ProtoReflect(), c, "relation", "funcname")
		return "create trigger"
	case *pg_query.Node_CreatePolicyStmt:
		a.ddl(Alter, a.relName(s.CreatePolicyStmt.GetTable()))
		a.walkFields(s.CreatePolicyStmt.ProtoReflect(), c, "table")
		return "create policy"
	case *pg_query.Node_AlterPolicyStmt:
		a.ddl(Alter, a.relName(s.AlterPolicyStmt.GetTable()))
		a.walkFields(s.AlterPolicyStmt.ProtoReflect(), c, "table")
		return "alter policy"
	case *pg_query.Node_RuleStmt:
		// The rule's actions run later, on every matching statement;
		// they are walked so that they show up as accesses.
		a.ddl(Alter, a.relName(s.RuleStmt.GetRelation()))
		a.walkFields(s.RuleStmt.ProtoReflect(), c, "relation")
		return "create rule"
	case *pg_query.Node_CreateStatsStmt:
		a.ddlNames(Create, pg_query.ObjectType_OBJECT_STATISTIC_EXT, s.CreateStatsStmt.GetDefnames())
		a.walkFields(s.CreateStatsStmt.ProtoReflect(), c, "defnames")
		return "create statistics"
	case *pg_query.Node_AlterStatsStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_STATISTIC_EXT, s.AlterStatsStmt.GetDefnames())
		return "alter statistics"
	case *pg_query.Node_CreateConversionStmt:
		a.ddlNames(Create, pg_query.ObjectType_OBJECT_CONVERSION, s.CreateConversionStmt.GetConversionName())
		if schema, name, ok := a.funcName(s.CreateConversionStmt.GetFuncName()); ok {
			a.add(Execute, schema+"."+name)
		}
		return "create conversion"
	case *pg_query.Node_AlterCollationStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_COLLATION, s.AlterCollationStmt.GetCollname())
		return "alter collation"
	case *pg_query.Node_CreateOpClassStmt:
		a.ddlNames(Create, pg_query.ObjectType_OBJECT_OPCLASS, s.CreateOpClassStmt.GetOpclassname())
		return "create operator class"
	case *pg_query.Node_CreateOpFamilyStmt:
		a.ddlNames(Create, pg_query.ObjectType_OBJECT_OPFAMILY, s.CreateOpFamilyStmt.GetOpfamilyname())
		return "create operator family"
	case *pg_query.Node_AlterOpFamilyStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_OPFAMILY, s.AlterOpFamilyStmt.GetOpfamilyname())
		return "alter operator family"
	case *pg_query.Node_AlterOperatorStmt:
		a.ddlObject(Alter, pg_query.ObjectType_OBJECT_OPERATOR, nil, &pg_query.Node{Node: &pg_query.Node_ObjectWithArgs{ObjectWithArgs: s.AlterOperatorStmt.GetOpername()}})
		return "alter operator"
	case *pg_query.Node_AlterTsdictionaryStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_TSDICTIONARY, s.AlterTsdictionaryStmt.GetDictname())
		return "alter text search dictionary"
	case *pg_query.Node_AlterTsconfigurationStmt:
		a.ddlNames(Alter, pg_query.ObjectType_OBJECT_TSCONFIGURATION, s.AlterTsconfigurationStmt.GetCfgname())
		return "alter text search configuration"
	case *pg_query.Node_CreateSchemaStmt:
		return a.createSchema(s.CreateSchemaStmt)

	// DDL naming an existing object of any type.
	case *pg_query.Node_DropStmt:
		ds := s.DropStmt
		for _, o := range ds.GetObjects() {
			a.ddlObject(Drop, ds.GetRemoveType(), nil, o)
		}
		return "drop " + objectTypeName(ds.GetRemoveType())
	case *pg_query.Node_RenameStmt:
		rs := s.RenameStmt
		a.ddlObject(Alter, rs.GetRenameType(), rs.GetRelation(), rs.GetObject(), rs.GetSubname())
		return "rename"
	case *pg_query.Node_AlterObjectSchemaStmt:
		as := s.AlterObjectSchemaStmt
		a.ddlObject(Alter, as.GetObjectType(), as.GetRelation(), as.GetObject())
		return "alter set schema"
	case *pg_query.Node_AlterOwnerStmt:
		as := s.AlterOwnerStmt
		a.ddlObject(Alter, as.GetObjectType(), as.GetRelation(), as.GetObject())
		return "alter owner"
	case *pg_query.Node_AlterObjectDependsStmt:
		as := s.AlterObjectDependsStmt
		a.ddlObject(Alter, as.GetObjectType(), as.GetRelation(), as.GetObject())
		return "alter depends on extension"
	case *pg_query.Node_CommentStmt:
		cs := s.CommentStmt
		a.ddlObject(Alter, cs.GetObjtype(), nil, cs.GetObject())
		return "comment"
	case *pg_query.Node_SecLabelStmt:
		ss := s.SecLabelStmt
		a.ddlObject(Alter, ss.GetObjtype(), nil, ss.GetObject())
		return "security label"
	}
	k := kindOf(n)
	return a.refused(k, k+" is not supported by warden")
}

// command records a utility command that needs a `command` grant.
func (a *analyzer) command(name string) string {
	a.add(Command, name)
	return name
}

func (a *analyzer) refused(kind, why string) string {
	a.refuse(why)
	return kind
}

// ddl records a DDL access; all DDL is high risk.
func (a *analyzer) ddl(act Action, obj string) {
	a.add(act, obj)
	a.highRisk()
}

func (a *analyzer) transactionStmt(s *pg_query.TransactionStmt) string {
	switch s.GetKind() {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "begin"
	case pg_query.TransactionStmtKind_TRANS_STMT_START:
		return "start transaction"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "commit"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "rollback"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "savepoint"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "release savepoint"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "rollback to savepoint"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		// Two-phase commit leaves a transaction behind that outlives the
		// session and that anyone may finish (docs "PREPARE TRANSACTION").
		return a.refused("prepare transaction", "two-phase commit is not allowed through warden")
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return a.refused("commit prepared", "two-phase commit is not allowed through warden")
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return a.refused("rollback prepared", "two-phase commit is not allowed through warden")
	}
	return a.refused("transaction", "unrecognised transaction statement")
}

// copyStmt: COPY FROM STDIN inserts, COPY TO STDOUT reads. A server file
// or PROGRAM is read or written by the server process with its OS
// privileges (docs "COPY": "COPY naming a file or command is only allowed
// to database superusers or users who are granted one of the roles
// pg_read_server_files, pg_write_server_files, or
// pg_execute_server_program"), so it is refused.
func (a *analyzer) copyStmt(s *pg_query.CopyStmt) {
	switch {
	case s.GetIsProgram():
		a.refuse("COPY ... PROGRAM runs a command on the database server")
	case s.GetFilename() != "":
		a.refuse("COPY to or from a file on the database server is not allowed; use STDIN/STDOUT")
	}
	if rv := s.GetRelation(); rv != nil {
		if s.GetIsFrom() {
			a.add(Insert, a.relName(rv))
		} else {
			a.add(Select, a.relName(rv))
		}
	}
	if q := s.GetQuery(); q != nil {
		// COPY (query) TO: SELECT, or DML with RETURNING.
		a.statement(q)
	}
	a.walkFields(s.ProtoReflect(), ctx{}, "relation", "query")
}

// callStmt: CALL always needs Execute on the procedure; pg_catalog has no
// procedures an agent needs.
func (a *analyzer) callStmt(s *pg_query.CallStmt) {
	fc := s.GetFunccall()
	schema, name, ok := a.funcName(fc.GetFuncname())
	if !ok {
		a.refuse("unrecognised procedure name")
	} else {
		a.add(Execute, schema+"."+name)
	}
	a.walkFields(fc.ProtoReflect(), ctx{}, "funcname")
	a.walkFields(s.ProtoReflect(), ctx{}, "funccall")
}

// createSchema: CREATE SCHEMA s CREATE TABLE t ... creates s.t; while the
// schema's elements run, PostgreSQL puts s first in the search path
// (CreateSchemaCommand), which is what setting a.schema models.
func (a *analyzer) createSchema(s *pg_query.CreateSchemaStmt) string {
	name := s.GetSchemaname()
	if name == "" {
		// CREATE SCHEMA AUTHORIZATION role names the schema after the role.
		name = s.GetAuthrole().GetRolename()
	}
	if name == "" {
		return a.refused("create schema", "CREATE SCHEMA without a name")
	}
	a.ddl(Create, name)
	saved := a.schema
	a.schema = name
	for _, e := range s.GetSchemaElts() {
		a.statement(e)
	}
	a.schema = saved
	return "create schema"
}

// relSchema is the schema a relation reference resolves to.
func (a *analyzer) relSchema(rv *pg_query.RangeVar) string {
	full := a.relName(rv)
	if rv.GetSchemaname() != "" {
		return rv.GetSchemaname()
	}
	return strings.TrimSuffix(full, "."+rv.GetRelname())
}

// refusedObjectTypes are object types an agent may not create, alter,
// drop or comment on: cluster-wide objects, objects that load code or
// reach outside the database, and privileges.
var refusedObjectTypes = map[pg_query.ObjectType]bool{
	pg_query.ObjectType_OBJECT_DATABASE:              true,
	pg_query.ObjectType_OBJECT_TABLESPACE:            true,
	pg_query.ObjectType_OBJECT_ROLE:                  true,
	pg_query.ObjectType_OBJECT_EXTENSION:             true,
	pg_query.ObjectType_OBJECT_LANGUAGE:              true,
	pg_query.ObjectType_OBJECT_EVENT_TRIGGER:         true,
	pg_query.ObjectType_OBJECT_FDW:                   true,
	pg_query.ObjectType_OBJECT_FOREIGN_SERVER:        true,
	pg_query.ObjectType_OBJECT_USER_MAPPING:          true,
	pg_query.ObjectType_OBJECT_SUBSCRIPTION:          true,
	pg_query.ObjectType_OBJECT_PUBLICATION:           true,
	pg_query.ObjectType_OBJECT_PUBLICATION_NAMESPACE: true,
	pg_query.ObjectType_OBJECT_PUBLICATION_REL:       true,
	pg_query.ObjectType_OBJECT_ACCESS_METHOD:         true,
	pg_query.ObjectType_OBJECT_PARAMETER_ACL:         true,
	pg_query.ObjectType_OBJECT_CAST:                  true,
	pg_query.ObjectType_OBJECT_TRANSFORM:             true,
	pg_query.ObjectType_OBJECT_LARGEOBJECT:           true,
	pg_query.ObjectType_OBJECT_DEFACL:                true,
	pg_query.ObjectType_OBJECT_AMOP:                  true,
	pg_query.ObjectType_OBJECT_AMPROC:                true,
	pg_query.ObjectType_OBJECT_TSPARSER:              true,
	pg_query.ObjectType_OBJECT_TSTEMPLATE:            true,
}

// ddlNames records act on an object given as a dotted name list.
func (a *analyzer) ddlNames(act Action, t pg_query.ObjectType, names []*pg_query.Node) {
	a.ddlObject(act, t, nil, &pg_query.Node{Node: &pg_query.Node_List{List: &pg_query.List{Items: names}}})
}

// ddlObject records act on the object a DDL statement names, given as a
// relation (rv), an object node (a name list, a String, an ObjectWithArgs
// or a TypeName) or a bare name (sub, for RENAME of schemas and the like).
// Objects that belong to a table (columns, triggers, policies, rules,
// table constraints) are decided as Alter on the table: PostgreSQL, too,
// requires ownership of the table for them.
func (a *analyzer) ddlObject(act Action, t pg_query.ObjectType, rv *pg_query.RangeVar, obj *pg_query.Node, sub ...string) {
	a.highRisk()
	if refusedObjectTypes[t] {
		a.refuse("DDL on " + objectTypeName(t) + " objects is not allowed through warden")
		return
	}
	if rv != nil {
		if isTablePart(t) {
			act = Alter
		}
		a.add(act, a.relName(rv))
		return
	}
	switch o := obj.GetNode().(type) {
	case *pg_query.Node_List:
		parts, ok := strs(o.List.GetItems())
		if !ok {
			break
		}
		switch {
		case isTablePart(t) && len(parts) >= 2:
			a.add(Alter, a.qualify(parts[:len(parts)-1], pgCatalogRelations))
		case isRelationType(t):
			a.add(act, a.qualify(parts, pgCatalogRelations))
		case t == pg_query.ObjectType_OBJECT_OPCLASS || t == pg_query.ObjectType_OBJECT_OPFAMILY:
			// The list starts with the access method's name.
			if len(parts) >= 2 {
				parts = parts[1:]
			}
			a.add(act, a.qualify(parts, nil))
		default:
			a.add(act, a.qualify(parts, nil))
		}
		return
	case *pg_query.Node_String_:
		// Schemas and other unqualified, database-level names.
		a.add(act, o.String_.GetSval())
		return
	case *pg_query.Node_ObjectWithArgs:
		parts, ok := strs(o.ObjectWithArgs.GetObjname())
		if !ok || len(parts) > 3 {
			break
		}
		switch t {
		case pg_query.ObjectType_OBJECT_OPERATOR:
			a.add(act, a.qualify(parts, pgCatalogOperators))
		default:
			a.add(act, a.qualify(parts, pgCatalogFunctions))
		}
		return
	case *pg_query.Node_TypeName:
		if parts, ok := strs(o.TypeName.GetNames()); ok {
			a.add(act, a.qualify(parts, nil))
			return
		}
	case nil:
		if len(sub) > 0 && sub[0] != "" {
			a.add(act, sub[0])
			return
		}
	}
	a.refuse("DDL on an unrecognised " + objectTypeName(t) + " object")
}

func isRelationType(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
		return true
	}
	return false
}

func isTablePart(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_COLUMN, pg_query.ObjectType_OBJECT_TRIGGER, pg_query.ObjectType_OBJECT_POLICY,
		pg_query.ObjectType_OBJECT_RULE, pg_query.ObjectType_OBJECT_TABCONSTRAINT, pg_query.ObjectType_OBJECT_ATTRIBUTE:
		return true
	}
	return false
}

// objectTypeName is "materialized view" for OBJECT_MATVIEW and so on.
func objectTypeName(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_MATVIEW:
		return "materialized view"
	case pg_query.ObjectType_OBJECT_FDW:
		return "foreign data wrapper"
	case pg_query.ObjectType_OBJECT_FOREIGN_SERVER:
		return "server"
	case pg_query.ObjectType_OBJECT_STATISTIC_EXT:
		return "statistics"
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT, pg_query.ObjectType_OBJECT_DOMCONSTRAINT:
		return "constraint"
	case pg_query.ObjectType_OBJECT_TSCONFIGURATION:
		return "text search configuration"
	case pg_query.ObjectType_OBJECT_TSDICTIONARY:
		return "text search dictionary"
	case pg_query.ObjectType_OBJECT_TSPARSER:
		return "text search parser"
	case pg_query.ObjectType_OBJECT_TSTEMPLATE:
		return "text search template"
	case pg_query.ObjectType_OBJECT_OPCLASS:
		return "operator class"
	case pg_query.ObjectType_OBJECT_OPFAMILY:
		return "operator family"
	case pg_query.ObjectType_OBJECT_LARGEOBJECT:
		return "large object"
	}
	name := strings.TrimPrefix(t.String(), "OBJECT_")
	return strings.ToLower(strings.ReplaceAll(name, "_", " "))
}

// kindOf names a statement node after its parse-tree type:
// "create_fdw_stmt" becomes "create fdw".
func kindOf(n *pg_query.Node) string {
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("node")
	if od == nil {
		return "unknown"
	}
	fd := m.WhichOneof(od)
	if fd == nil {
		return "unknown"
	}
	name := strings.ReplaceAll(strings.TrimSuffix(string(fd.Name()), "_stmt"), "_", " ")
	if k, ok := kindNames[name]; ok {
		return k
	}
	return name
}

// kindNames spell out the parse-tree names that are abbreviations.
var kindNames = map[string]string{
	"createdb":                  "create database",
	"dropdb":                    "drop database",
	"alter database set":        "alter database",
	"create table space":        "create tablespace",
	"drop table space":          "drop tablespace",
	"alter table space options": "alter tablespace",
	"alter table move all":      "alter table all in tablespace",
	"create fdw":                "create foreign data wrapper",
	"alter fdw":                 "alter foreign data wrapper",
	"create plang":              "create language",
	"create am":                 "create access method",
	"create event trig":         "create event trigger",
	"alter event trig":          "alter event trigger",
	"alter role set":            "alter role",
	"grant role":                "grant",
}
