package sqlfacts

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// columnsSpec renders a statement's column references as sorted
// "clause table.column" entries joined by "; ", the format of the test
// tables; an unresolved table is written "?".
func columnsSpec(st Statement) string {
	out := make([]string, 0, len(st.Columns))
	for _, c := range st.Columns {
		t := c.Table
		if t == "" {
			t = "?"
		}
		out = append(out, string(c.Clause)+" "+t+"."+c.Column)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// columnCase is one statement and the column references it must yield.
// Every case with pg >= 0 is also run against corpus.Schema on a real
// server by TestColumnsOnPostgres, which checks that the SQL is valid and
// that every column PostgreSQL itself records the statement as using is
// listed.
type columnCase struct {
	sql  string
	cols string // "clause table.column; ..." in any order; "?" for an unresolved table
	// pg is the minimum server_version_num the statement needs (0: any);
	// -1 marks SQL the server rejects, kept to show how an unresolvable
	// reference is reported.
	pg int
}

// Candidates: a reference that could be several columns lists each
// (conservative, see the package doc "Columns"). Unqualified names in a
// subquery are also candidates of the enclosing queries' tables, since
// the tables' columns are not known here.
var columnCases = []columnCase{
	// Direct columns and aliases.
	{sql: `SELECT email FROM customers`, cols: "output public.customers.email"},
	{sql: `SELECT c.email AS contact FROM customers AS c`, cols: "output public.customers.email"},
	{sql: `SELECT public.customers.email FROM customers`, cols: "output public.customers.email"},
	{sql: `SELECT x.email FROM public.customers x`, cols: "output public.customers.email"},
	{sql: `SELECT email FROM customers c WHERE c.id = 1`, cols: "output public.customers.email; predicate public.customers.id"},

	// Stars.
	{sql: `SELECT * FROM customers`, cols: "output public.customers.*"},
	{sql: `TABLE customers`, cols: "output public.customers.*"},
	{sql: `SELECT c.* FROM customers c`, cols: "output public.customers.*"},
	{sql: `SELECT c.*, o.id FROM customers c JOIN orders o ON o.customer_id = c.id`,
		cols: "output public.customers.*; output public.orders.id; predicate public.customers.id; predicate public.orders.customer_id"},
	// A bare name in ORDER BY under * is that column, not the whole row.
	{sql: `SELECT * FROM customers ORDER BY id`, cols: "output public.customers.*; predicate public.customers.id"},

	// Unqualified names with several tables in scope: one candidate each.
	{sql: `SELECT name, amount FROM customers c JOIN orders o ON o.customer_id = c.id`,
		cols: "output public.customers.amount; output public.customers.name; output public.orders.amount; output public.orders.name; predicate public.customers.id; predicate public.orders.customer_id"},
	{sql: `SELECT email, note FROM customers c, orders o WHERE o.customer_id = c.id AND amount > 0`,
		cols: "output public.customers.email; output public.customers.note; output public.orders.email; output public.orders.note; predicate public.customers.amount; predicate public.customers.id; predicate public.orders.amount; predicate public.orders.customer_id"},

	// Subqueries in FROM: pass-through and expressions.
	{sql: `SELECT q.e FROM (SELECT email AS e, name FROM customers) q`, cols: "other public.customers.name; output public.customers.email"},
	{sql: `SELECT e FROM (SELECT email AS e, name FROM customers) q`, cols: "other public.customers.name; output public.customers.email"},
	{sql: `SELECT q.e FROM (SELECT lower(email) || name AS e, id FROM customers) q`, cols: "other public.customers.id; output public.customers.email; output public.customers.name"},
	{sql: `SELECT q.ssn FROM (SELECT * FROM customers) q`, cols: "other public.customers.*; output public.customers.ssn"},
	{sql: `SELECT q.name FROM (SELECT c.*, o.note FROM customers c, orders o) q`, cols: "other public.customers.*; other public.orders.note; output public.customers.name"},
	{sql: `SELECT q.lower FROM (SELECT lower(ssn), upper(name) FROM customers) q`, cols: "other public.customers.name; output public.customers.ssn"},
	{sql: `SELECT q."?column?" FROM (SELECT email || '' FROM customers) q`, cols: "output public.customers.email"},
	{sql: `SELECT q.text FROM (SELECT (email || '')::text FROM customers) q`, cols: "output public.customers.email"},
	{sql: `SELECT * FROM (SELECT ssn FROM customers WHERE name = 'Ada') q`, cols: "output public.customers.ssn; predicate public.customers.name"},
	// An output nothing uses is other: its value reaches neither the
	// result nor the choice of rows, but the server may compute it.
	{sql: `SELECT count(*) FROM (SELECT ssn FROM customers) q`, cols: "other public.customers.ssn"},
	// Column aliases rename by position; past a * the position is not
	// known, so the renamed column may be any column.
	{sql: `SELECT q.x FROM (SELECT id, ssn FROM customers) q(a, x)`, cols: "other public.customers.id; output public.customers.ssn"},
	{sql: `SELECT q.s FROM (SELECT * FROM customers) q(i, n, e, s)`, cols: "output public.customers.*"},
	{sql: `SELECT s FROM customers AS c(i, n, e, s)`, cols: "output public.customers.*"},
	// A name a subquery does not output may be a function on its row
	// (q.f is f(q)): the whole row.
	{sql: `SELECT q.f FROM (SELECT ssn FROM customers) q`, cols: "output public.customers.ssn", pg: -1},

	// Subqueries in expressions, correlated or not.
	{sql: `SELECT c.name, (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c`,
		cols: "output public.customers.name; output public.orders.amount; predicate public.customers.id; predicate public.orders.customer_id"},
	{sql: `SELECT (SELECT ssn) FROM customers`, cols: "output public.customers.ssn"},
	{sql: `SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.note = c.ssn)`,
		cols: "output public.customers.name; predicate public.customers.id; predicate public.customers.ssn; predicate public.orders.customer_id; predicate public.orders.note"},
	{sql: `SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE amount > 10)`,
		cols: "output public.customers.name; predicate public.customers.amount; predicate public.customers.customer_id; predicate public.customers.id; predicate public.orders.amount; predicate public.orders.customer_id"},
	{sql: `SELECT 1 FROM customers c WHERE EXISTS (SELECT 1 FROM orders c WHERE c.note = 'x')`, cols: "predicate public.orders.note"},
	{sql: `SELECT 'x' = ANY (SELECT ssn FROM customers)`, cols: "output public.customers.ssn"},
	{sql: `SELECT ARRAY(SELECT ssn FROM customers)`, cols: "output public.customers.ssn"},
	{sql: `SELECT EXISTS (SELECT ssn FROM customers WHERE email = 'x')`, cols: "other public.customers.ssn; predicate public.customers.email"},

	// CTEs.
	{sql: `WITH x AS (SELECT ssn AS s FROM customers) SELECT s FROM x`, cols: "output public.customers.ssn"},
	{sql: `WITH x(z) AS (SELECT ssn FROM customers) SELECT x.z FROM x`, cols: "output public.customers.ssn"},
	{sql: `WITH x AS (SELECT * FROM customers) SELECT email FROM x`, cols: "other public.customers.*; output public.customers.email"},
	{sql: `WITH x AS (SELECT ssn, name FROM customers) SELECT name FROM x WHERE ssn LIKE '1%'`, cols: "output public.customers.name; predicate public.customers.ssn"},
	{sql: `WITH a AS (SELECT ssn FROM customers), b AS (SELECT ssn AS y FROM a) SELECT y FROM b`, cols: "output public.customers.ssn"},
	{sql: `WITH a AS (WITH b AS (SELECT ssn FROM customers) SELECT ssn AS y FROM b) SELECT y FROM a`, cols: "output public.customers.ssn"},
	{sql: `WITH customers AS (SELECT 1 AS ssn) SELECT ssn FROM customers`},
	{sql: `WITH customers AS (SELECT ssn FROM customers) SELECT * FROM customers`, cols: "output public.customers.ssn"},
	// WITH RECURSIVE: every column referenced in the clause.
	{sql: `WITH RECURSIVE t(n) AS (SELECT id FROM customers UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT n FROM t`,
		cols: "output public.customers.id; predicate public.customers.id"},
	{sql: `WITH RECURSIVE t AS (SELECT id, ssn FROM customers), u AS (SELECT id FROM t) SELECT id FROM u`,
		cols: "output public.customers.id; output public.customers.ssn"},
	{sql: `WITH RECURSIVE t AS (SELECT ssn FROM customers) SELECT 1 FROM t`, cols: "other public.customers.ssn"},
	{sql: `WITH RECURSIVE t AS (SELECT) SELECT * FROM t`}, // found by FuzzExtract: a query with no output columns

	// Set operations: every branch; UNION without ALL, INTERSECT and
	// EXCEPT compare rows, so their outputs are predicates too.
	{sql: `SELECT email FROM customers UNION ALL SELECT note FROM orders`, cols: "output public.customers.email; output public.orders.note"},
	{sql: `SELECT email FROM customers UNION SELECT note FROM orders`,
		cols: "output public.customers.email; output public.orders.note; predicate public.customers.email; predicate public.orders.note"},
	{sql: `SELECT ssn FROM customers INTERSECT SELECT '123-45-6789'`, cols: "output public.customers.ssn; predicate public.customers.ssn"},
	{sql: `SELECT u.x FROM (SELECT email AS x FROM customers UNION ALL SELECT note FROM orders) u`, cols: "output public.customers.email; output public.orders.note"},
	{sql: `SELECT * FROM (SELECT id, email FROM customers UNION ALL SELECT * FROM secrets) u`,
		cols: "output public.customers.email; output public.customers.id; output public.secrets.*"},

	// VALUES.
	{sql: `VALUES ((SELECT ssn FROM customers LIMIT 1))`, cols: "output public.customers.ssn"},
	{sql: `SELECT column1 FROM (VALUES (1, 'a'), (2, (SELECT email FROM customers LIMIT 1))) v`, cols: "other public.customers.email"},
	{sql: `SELECT column2 FROM (VALUES (1, 'a'), (2, (SELECT email FROM customers LIMIT 1))) v`, cols: "output public.customers.email"},

	// Row values and whole rows.
	{sql: `SELECT ROW(name, email) FROM customers`, cols: "output public.customers.email; output public.customers.name"},
	{sql: `SELECT row_to_json(c) FROM customers c`, cols: "output public.customers.*; output public.customers.c"},
	{sql: `SELECT json_agg(c) FROM customers c`, cols: "output public.customers.*; output public.customers.c"},
	{sql: `SELECT to_jsonb(c.*) FROM customers c`, cols: "output public.customers.*"},
	{sql: `SELECT ROW(c.*) FROM customers c`, cols: "output public.customers.*"},
	{sql: `SELECT c::text FROM customers c`, cols: "output public.customers.*; output public.customers.c"},
	{sql: `SELECT row_to_json(q) FROM (SELECT ssn, name FROM customers) q`, cols: "output public.customers.name; output public.customers.ssn"},
	{sql: `SELECT (c).email, (c).* FROM customers c`, cols: "output public.customers.*; output public.customers.c; output public.customers.email"},

	// Computed outputs.
	{sql: `SELECT email::text FROM customers`, cols: "output public.customers.email"},
	{sql: `SELECT name || ' <' || email || '>' FROM customers`, cols: "output public.customers.email; output public.customers.name"},
	{sql: `SELECT lower(ssn), coalesce(email, name) FROM customers`, cols: "output public.customers.email; output public.customers.name; output public.customers.ssn"},
	{sql: `SELECT count(email) FROM customers`, cols: "output public.customers.email"},
	{sql: `SELECT count(*) FROM customers`},
	{sql: `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM orders`, cols: "output public.orders.amount"},
	{sql: `SELECT JSON_ARRAYAGG(name ORDER BY ssn) FILTER (WHERE email IS NOT NULL) FROM customers`,
		cols: "output public.customers.name; predicate public.customers.email; predicate public.customers.ssn", pg: 160000},
	// A CASE condition in the select list is output: the result
	// reveals it, and masking the result hides it.
	{sql: `SELECT CASE WHEN ssn LIKE '1%' THEN 'one' ELSE 'other' END FROM customers`, cols: "output public.customers.ssn"},

	// Predicates.
	{sql: `SELECT count(*) FROM customers WHERE ssn LIKE '1%'`, cols: "predicate public.customers.ssn"},
	{sql: `SELECT count(*) FILTER (WHERE ssn LIKE '1%') FROM customers`, cols: "predicate public.customers.ssn"},
	{sql: `SELECT string_agg(name, ',' ORDER BY ssn) FROM customers`, cols: "output public.customers.name; predicate public.customers.ssn"},
	{sql: `SELECT name FROM customers ORDER BY email DESC`, cols: "output public.customers.name; predicate public.customers.email"},
	{sql: `SELECT ssn AS x FROM customers ORDER BY x`, cols: "output public.customers.ssn; predicate public.customers.ssn; predicate public.customers.x"},
	{sql: `SELECT name, email FROM customers ORDER BY 2`, cols: "output public.customers.email; output public.customers.name; predicate public.customers.email"},
	{sql: `SELECT lower(email), count(*) FROM customers GROUP BY 1`, cols: "output public.customers.email; predicate public.customers.email"},
	{sql: `SELECT name FROM customers GROUP BY name, email HAVING max(ssn) > '5'`,
		cols: "output public.customers.name; predicate public.customers.email; predicate public.customers.name; predicate public.customers.ssn"},
	{sql: `SELECT count(*) FROM customers GROUP BY ROLLUP (email, (name, ssn))`,
		cols: "predicate public.customers.email; predicate public.customers.name; predicate public.customers.ssn"},
	{sql: `SELECT DISTINCT email FROM customers`, cols: "output public.customers.email; predicate public.customers.email"},
	{sql: `SELECT DISTINCT ON (email) name FROM customers`, cols: "output public.customers.name; predicate public.customers.email"},
	{sql: `SELECT row_number() OVER (PARTITION BY email ORDER BY ssn) FROM customers`, cols: "predicate public.customers.email; predicate public.customers.ssn"},
	{sql: `SELECT first_value(name) OVER w FROM customers WINDOW w AS (ORDER BY ssn)`, cols: "output public.customers.name; predicate public.customers.ssn"},
	{sql: `SELECT name FROM customers LIMIT (SELECT count(*) FROM orders WHERE note = 'x')`,
		cols: "output public.customers.name; predicate public.customers.note; predicate public.orders.note"},

	// Joins.
	{sql: `SELECT c.name FROM customers c JOIN orders o USING (id)`, cols: "output public.customers.name; predicate public.customers.id; predicate public.orders.id"},
	{sql: `SELECT * FROM customers NATURAL JOIN orders`,
		cols: "output public.customers.*; output public.orders.*; predicate public.customers.*; predicate public.orders.*"},
	{sql: `SELECT j.ssn FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j`,
		cols: "output public.customers.ssn; output public.orders.ssn; predicate public.customers.id; predicate public.orders.customer_id"},
	{sql: `SELECT x.id FROM customers JOIN orders USING (id) AS x`,
		cols: "output public.customers.id; output public.orders.id; predicate public.customers.id; predicate public.orders.id"},

	// LATERAL and functions in FROM.
	{sql: `SELECT c.name, l.total FROM customers c, LATERAL (SELECT sum(o.amount) AS total FROM orders o WHERE o.customer_id = c.id) l`,
		cols: "output public.customers.name; output public.orders.amount; predicate public.customers.id; predicate public.orders.customer_id"},
	{sql: `SELECT u FROM customers c, unnest(ARRAY[c.ssn]) u`, cols: "other public.customers.ssn; output public.customers.ssn; output public.customers.u"},
	{sql: `SELECT e.value FROM customers c, LATERAL jsonb_each_text(to_jsonb(c)) e`,
		cols: "other public.customers.*; other public.customers.c; output public.customers.*; output public.customers.c"},
	{sql: `SELECT jt.x FROM customers c, JSON_TABLE(to_jsonb(c.email), '$' COLUMNS (x text PATH '$')) jt`,
		cols: "other public.customers.email; output public.customers.email", pg: 170000},
	{sql: `SELECT * FROM generate_series(1, 3) g`},

	// DML and RETURNING.
	{sql: `UPDATE customers SET email = lower(email) WHERE ssn = '1' RETURNING name`,
		cols: "other public.customers.email; output public.customers.name; predicate public.customers.ssn"},
	{sql: `UPDATE orders o SET note = c.ssn FROM customers c WHERE c.id = o.customer_id RETURNING o.id, c.email`,
		cols: "other public.customers.ssn; output public.customers.email; output public.orders.id; predicate public.customers.id; predicate public.orders.customer_id"},
	{sql: `DELETE FROM customers WHERE email LIKE '%@example.com' RETURNING *`, cols: "output public.customers.*; predicate public.customers.email"},
	{sql: `DELETE FROM orders o USING customers c WHERE c.id = o.customer_id AND c.ssn = '1' RETURNING o.note`,
		cols: "output public.orders.note; predicate public.customers.id; predicate public.customers.ssn; predicate public.orders.customer_id"},
	{sql: `INSERT INTO orders (id, note) VALUES (10, 'x') RETURNING id, note`, cols: "output public.orders.id; output public.orders.note"},
	{sql: `INSERT INTO orders (id, note) SELECT id + 100, ssn FROM customers`, cols: "output public.customers.id; output public.customers.ssn"},
	{sql: `INSERT INTO orders (id, note) VALUES (11, (SELECT ssn FROM customers LIMIT 1))`, cols: "other public.customers.ssn"},
	{sql: `INSERT INTO orders AS o (id, note) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = excluded.note WHERE o.amount > 0 RETURNING o.amount`,
		cols: "other public.orders.note; output public.orders.amount; predicate public.orders.amount"},
	{sql: `MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED AND c.ssn = '1' THEN UPDATE SET note = c.email WHEN NOT MATCHED THEN INSERT (id, note) VALUES (c.id + 100, c.name)`,
		cols: "other public.customers.email; other public.customers.id; other public.customers.name; predicate public.customers.id; predicate public.customers.ssn; predicate public.orders.customer_id"},
	{sql: `MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN DELETE RETURNING c.ssn`,
		cols: "output public.customers.ssn; predicate public.customers.id; predicate public.orders.customer_id", pg: 170000},
	{sql: `WITH d AS (DELETE FROM audit_log RETURNING *) SELECT message FROM d`, cols: "other public.audit_log.*; output public.audit_log.message"},
	{sql: `WITH u AS (UPDATE customers SET name = name RETURNING ssn) SELECT * FROM u`, cols: "other public.customers.name; output public.customers.ssn"},

	// COPY.
	{sql: `COPY customers TO STDOUT`, cols: "output public.customers.*"},
	{sql: `COPY customers (id, email) TO STDOUT`, cols: "output public.customers.email; output public.customers.id"},
	{sql: `COPY (SELECT ssn FROM customers WHERE name = 'Ada') TO STDOUT`, cols: "output public.customers.ssn; predicate public.customers.name"},
	{sql: `COPY orders FROM STDIN`},

	// Statements that wrap a query.
	{sql: `SELECT * INTO TEMP t FROM customers`, cols: "output public.customers.*"},
	{sql: `CREATE TEMP TABLE t AS SELECT ssn FROM customers`, cols: "output public.customers.ssn"},
	{sql: `PREPARE p AS SELECT ssn FROM customers WHERE id = $1`, cols: "output public.customers.ssn; predicate public.customers.id"},
	{sql: `DECLARE cur CURSOR FOR SELECT email FROM customers`, cols: "output public.customers.email"},
	{sql: `EXPLAIN ANALYZE SELECT 1 FROM customers WHERE ssn = '1'`, cols: "predicate public.customers.ssn"},
	{sql: `CREATE INDEX ON customers (lower(email))`, cols: "other ?.email"},

	// Nothing in scope to resolve against: any table's column.
	{sql: `SELECT ssn`, cols: "output ?.ssn", pg: -1},
	{sql: `SELECT x.ssn FROM customers c`, cols: "output ?.ssn", pg: -1},
	{sql: `SELECT 1`},
}

func TestColumns(t *testing.T) {
	if n := len(columnCases); n < 60 {
		t.Fatalf("only %d cases", n)
	}
	for _, tt := range columnCases {
		t.Run(tt.sql, func(t *testing.T) {
			f, err := Extract(tt.sql, Options{})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if len(f.Statements) != 1 {
				t.Fatalf("got %d statements, want 1", len(f.Statements))
			}
			if got, want := columnsSpec(f.Statements[0]), sortedSpec(tt.cols); got != want {
				t.Errorf("Columns = %q\n          want %q", got, want)
			}
		})
	}
}

func TestColumnsSchema(t *testing.T) {
	for _, tt := range []struct{ sql, schema, cols string }{
		{`SELECT email FROM customers`, "app", "output app.customers.email"},
		{`SELECT c.email FROM other.customers c`, "app", "output other.customers.email"},
		{`SELECT other.customers.email FROM other.customers`, "app", "output other.customers.email"},
		{`SELECT relname FROM pg_class WHERE relnamespace = 11`, "", "output pg_catalog.pg_class.relname; predicate pg_catalog.pg_class.relnamespace"},
		{`CREATE SCHEMA s CREATE VIEW v AS SELECT ssn FROM t`, "", "output s.t.ssn"},
	} {
		f, err := Extract(tt.sql, Options{Schema: tt.schema})
		if err != nil {
			t.Fatalf("Extract(%q): %v", tt.sql, err)
		}
		if got, want := columnsSpec(f.Statements[0]), sortedSpec(tt.cols); got != want {
			t.Errorf("%s: Columns = %q, want %q", tt.sql, got, want)
		}
	}
}

func TestColumnsPerStatement(t *testing.T) {
	f, err := Extract(`SELECT email FROM customers; SELECT 1; DELETE FROM orders WHERE note = 'x'`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"output public.customers.email", "", "predicate public.orders.note"}
	for i, w := range want {
		if got := columnsSpec(f.Statements[i]); got != w {
			t.Errorf("statement %d: Columns = %q, want %q", i, got, w)
		}
	}
	if f.Statements[1].Columns != nil {
		t.Errorf("SELECT 1: Columns = %#v, want nil", f.Statements[1].Columns)
	}
}

func TestColumnsDeduplicated(t *testing.T) {
	f, err := Extract(`SELECT ssn, ssn, c.ssn, upper(ssn) FROM customers c WHERE ssn = 'a' OR c.ssn = 'b' ORDER BY ssn`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []ColumnRef{
		{Table: "public.customers", Column: "ssn", Clause: ClauseOutput},
		{Table: "public.customers", Column: "ssn", Clause: ClausePredicate},
	}
	got := slices.Clone(f.Statements[0].Columns)
	slices.SortFunc(got, func(a, b ColumnRef) int { return strings.Compare(string(a.Clause), string(b.Clause)) })
	if !slices.Equal(got, want) {
		t.Errorf("Columns = %v, want %v", got, want)
	}
}

// TestColumnsLargeQueries: the value graph is shared, not copied, so
// deep pass-through chains, whole rows of whole rows, and wide FROM lists
// stay cheap.
func TestColumnsLargeQueries(t *testing.T) {
	nested := "SELECT ssn FROM customers"
	for i := 0; i < 300; i++ {
		nested = fmt.Sprintf("SELECT q%d, q%d.*, q%d FROM (%s) q%d", i, i, i, nested, i)
	}
	var from, where []string
	for i := 0; i < 500; i++ {
		from = append(from, fmt.Sprintf("customers c%d", i))
		where = append(where, fmt.Sprintf("c%d = c%d", i, i))
	}
	wide := "SELECT ssn, email, name FROM " + strings.Join(from, ", ") + " WHERE " + strings.Join(where, " AND ")
	rec := "WITH RECURSIVE " + strings.Repeat("r AS (SELECT ssn FROM customers UNION ALL SELECT * FROM r), ", 1) + "s AS (SELECT 1) SELECT * FROM r"
	for name, tt := range map[string]struct {
		sql  string
		cols string
	}{
		"nested whole rows": {nested, "output public.customers.ssn"},
		"wide from":         {wide, "output public.customers.email; output public.customers.name; output public.customers.ssn; predicate public.customers.*; predicate public.customers.c0"},
		"recursive":         {rec, "output public.customers.ssn"},
	} {
		start := time.Now()
		f, err := Extract(tt.sql, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
		got := columnsSpec(f.Statements[0])
		if name == "wide from" {
			// Every cN is a candidate column of customers too.
			got = strings.Join(slices.DeleteFunc(strings.Split(got, "; "), func(s string) bool {
				return strings.HasPrefix(s, "predicate public.customers.c") && s != "predicate public.customers.c0"
			}), "; ")
		}
		if got != sortedSpec(tt.cols) {
			t.Errorf("%s: Columns = %q, want %q", name, got, tt.cols)
		}
	}
}
