package sqlfacts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-gateway/warden/internal/sqlfacts/corpus"
)

// TestColumnsOnPostgres checks columnCases against a real server loaded
// with corpus.Schema. Every case must be valid SQL there, and every
// column PostgreSQL itself records the statement as using must be in its
// Columns:
//
//   - a query that can be made a view: the columns the view's rewrite
//     rule depends on (pg_depend), in any clause;
//   - a query the server can describe: the origin (table OID, attribute
//     number) RowDescription gives a result column, as output.
//
// Neither source knows about clauses of computed columns, so the test
// table itself is the check for those; this one catches a column the
// parse-tree analysis missed.
func TestColumnsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	pg := startPostgres(t)
	pg.psql(t, corpus.Schema)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, pg.connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	version, err := strconv.Atoi(conn.ParameterStatus("server_version_num"))
	if err != nil {
		rows := query(ctx, t, conn, "SHOW server_version_num")
		version, _ = strconv.Atoi(rows[0][0])
	}

	var o oracle
	for _, tt := range columnCases {
		if tt.pg < 0 || tt.pg > version {
			continue
		}
		t.Run(tt.sql, func(t *testing.T) {
			o.check(ctx, t, conn, tt.sql, true)
		})
	}
	// The corpus adds shapes written for other reasons; a case the
	// server rejects (it calls a missing extension, say) is skipped.
	for _, c := range append(append([]corpus.Case{}, corpus.Allow...), corpus.Deny...) {
		t.Run("corpus/"+c.Name, func(t *testing.T) {
			o.check(ctx, t, conn, c.SQL, false)
		})
	}
	// The oracle must have had something to say.
	t.Logf("checked %d view dependencies and %d result origins", o.deps, o.origins)
	if o.deps < 100 || o.origins < 20 {
		t.Errorf("only %d view dependencies and %d result origins checked", o.deps, o.origins)
	}
}

// oracle counts what TestColumnsOnPostgres checked.
type oracle struct{ deps, origins int }

// check compares the Columns of a one-statement query with what the
// server records; strict says the query must be valid there.
func (o *oracle) check(ctx context.Context, t *testing.T, conn *pgconn.PgConn, sql string, strict bool) {
	f, err := Extract(sql, Options{})
	if err != nil || len(f.Statements) != 1 {
		if strict {
			t.Fatalf("Extract: %v", err)
		}
		t.Skip("not one statement")
	}
	fail := t.Fatalf
	if !strict {
		fail = t.Skipf
	}
	st := f.Statements[0]
	if err := exec1(ctx, conn, "BEGIN"); err != nil {
		t.Fatalf("BEGIN: %v", err)
	}
	defer func() {
		_ = exec1(ctx, conn, "ROLLBACK")
		reset(ctx, t, conn)
	}()

	switch st.Kind {
	case "select", "insert", "update", "delete", "merge":
		// Describe without running: the statement is valid, and
		// RowDescription names the origin of plain columns.
		sd, err := conn.Prepare(ctx, "", sql, nil)
		if err != nil {
			fail("prepare: %v", err)
		}
		for _, fd := range sd.Fields {
			if fd.TableOID == 0 {
				continue
			}
			rows := query(ctx, t, conn, fmt.Sprintf(`SELECT n.nspname || '.' || c.relname, a.attname
				FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				JOIN pg_attribute a ON a.attrelid = c.oid
				WHERE c.oid = %d AND a.attnum = %d`, fd.TableOID, fd.TableAttributeNumber))
			for _, r := range rows {
				o.origins++
				if !covers(st, r[0], r[1], ClauseOutput) {
					t.Errorf("result column %q comes from %s.%s, not in Columns %q", fd.Name, r[0], r[1], columnsSpec(st))
				}
			}
		}
	default:
		if !strict {
			t.Skip("not a query")
		}
		if err := run(ctx, conn, sql); err != nil {
			t.Fatalf("run: %v", err)
		}
	}

	if st.Kind != "select" || strings.Contains(sql, "$") {
		return
	}
	if err := exec1(ctx, conn, "SAVEPOINT v"); err != nil {
		t.Fatalf("SAVEPOINT: %v", err)
	}
	// As a subquery, the query may repeat output names or output
	// records, which a view's own columns may not.
	if err := exec1(ctx, conn, "CREATE TEMP VIEW colcheck AS SELECT 1 FROM ("+sql+") q"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "0A000" {
			// Views cannot hold data-modifying WITH queries.
			_ = exec1(ctx, conn, "ROLLBACK TO SAVEPOINT v")
			return
		}
		fail("create view: %v", err)
	}
	rows := query(ctx, t, conn, `SELECT DISTINCT n.nspname || '.' || c.relname, a.attname
		FROM pg_depend d
		JOIN pg_rewrite r ON r.oid = d.objid
		JOIN pg_class c ON c.oid = d.refobjid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
		WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
		  AND r.ev_class = 'colcheck'::regclass AND d.refobjid <> 'colcheck'::regclass
		  AND d.refobjsubid > 0`)
	for _, r := range rows {
		o.deps++
		if !covers(st, r[0], r[1], "") {
			t.Errorf("PostgreSQL records a use of %s.%s, not in Columns %q", r[0], r[1], columnsSpec(st))
		}
	}
}

// covers reports whether st lists table.column (or the whole row, or an
// unresolved reference to that column) in clause ("" for any).
func covers(st Statement, table, column string, clause Clause) bool {
	for _, c := range st.Columns {
		if (c.Table == table || c.Table == "") && (c.Column == column || c.Column == "*") &&
			(clause == "" || c.Clause == clause) {
			return true
		}
	}
	return false
}

// query runs one statement and returns its rows as text.
func query(ctx context.Context, t *testing.T, conn *pgconn.PgConn, sql string) [][]string {
	t.Helper()
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out [][]string
	for _, r := range res {
		for _, row := range r.Rows {
			s := make([]string, len(row))
			for i, v := range row {
				s[i] = string(v)
			}
			out = append(out, s)
		}
	}
	return out
}
