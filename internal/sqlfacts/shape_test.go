package sqlfacts

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/warden-gateway/warden/internal/sqlfacts/corpus"
)

const pgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = 81723;"

// shapeQueries are statements whose shape the Cache should store, in
// the styles of pgbench, ORMs and psql.
var shapeQueries = []string{
	pgbenchSelect,
	`SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."email" = 'a@b.c' AND "users"."active" = TRUE LIMIT 1`,
	`SELECT * FROM orders WHERE id IN (1, 2, 3) AND note LIKE 'x%' ORDER BY created_at DESC LIMIT 10`,
	`SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email = 'x' AND o.amount BETWEEN 1.5 AND 100`,
	`SELECT * FROM orders WHERE note IS NULL AND amount > 0.5 OR customer_id = 3 AND note IS NOT TRUE`,
	`SELECT CASE WHEN amount > 10 THEN 'big' ELSE 'small' END FROM orders WHERE id = 1`,
	`SELECT * FROM orders WHERE created_at > '2024-01-01'::timestamptz AND created_at < DATE '2025-01-01' AND note <> 'x'::text`,
	`SELECT * FROM orders WHERE id = ANY('{1,2,3}'::int[])`,
	`SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM customers WHERE customers.id = orders.customer_id AND name = 'x')`,
	`SELECT * FROM (SELECT id, amount FROM orders WHERE amount > 5) s WHERE s.id < 100`,
	`SELECT * FROM orders WHERE id = 1 FOR UPDATE`,
	`SELECT 'a', 2, 3.0, true, false, null`,
	`SELECT * FROM orders WHERE (id, customer_id) = (1, 2) AND note IS NOT DISTINCT FROM NULL`,
	"/* leading */ SELECT * FROM orders WHERE id = 1 ;  -- after\n",
	"SELECT * FROM orders WHERE id = 1 -- trailing comment",
	"  \n\tSELECT * FROM orders WHERE id = 1\n\t ",
	`SELECT E'it\'s', $q$x$q$, $$y$$ FROM orders`,
	`SELECT * FROM "ORDERS" WHERE note = 'a' UNION ALL SELECT * FROM "ORDERS" WHERE id = 2`,
	`SELECT (ARRAY[1, 2])[1], COALESCE(note, 'n'), NULLIF(note, ''), GREATEST(id, 3) FROM orders WHERE id = 1`,
	`SELECT * FROM orders WHERE id = 1 AND note = 'semi;colon' AND note = '--' AND note = '/*'`,
	`UPDATE orders SET note = 'x', amount = 12.5 WHERE id = 7`,
	`UPDATE orders SET note = 'x'`,
	`INSERT INTO orders (id, customer_id, amount, note) VALUES (1, 2, 3.5, 'n')`,
	`INSERT INTO orders VALUES (1, 2, 3.5, 'n'), (4, 5, 6, 'm') RETURNING id`,
	`DELETE FROM orders WHERE id = 5 RETURNING note`,
	`SELECT * FROM t WHERE a = 2147483647 AND b = 2147483648 AND c = 1e5 AND d = .5 AND e = 1.`,
	"SELECT * FROM t WHERE a = 'x' /* nested /* comment */ with 'quote' */ AND b = 2",
	`SELECT "a""b", "x" FROM t WHERE "a""b" = 'it''s'`,
	"SELECT * FROM t WHERE a = 'é漢字🙂' AND b = 1",
	`SELECT * FROM orders WHERE created_at > CURRENT_TIMESTAMP - interval '1 day'`,
	// pgbench's TPC-B-like script.
	`UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 77;`,
	`SELECT abalance FROM pgbench_accounts WHERE aid = 77;`,
	`INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 77, -4321, CURRENT_TIMESTAMP);`,
	// Negative numbers: the minus is part of the constant where the
	// grammar folds it, not where it is an infix operator.
	`SELECT * FROM orders WHERE id = -1 AND amount > - 2.5 AND amount <>-3 AND id BETWEEN -5 AND -2147483648`,
	`SELECT id - 1, id -1, (id)-1, 2-1 FROM orders WHERE id IN (-1, -2)`,
}

// notShaped are statements whose shape the Cache must not store: their
// facts can depend on a constant, or the lexer gives up, or pg_query
// normalizes them differently from the lexer.
var notShaped = []string{
	`SELECT nextval('a')`,
	`SELECT 'a'::regclass`,
	`SELECT regclass 'a'`,
	`SELECT set_config('search_path', 'x', false)`,
	`SELECT query_to_xml('select * from secrets', true, true, '')`,
	`SELECT current_setting('work_mem')`,
	`SELECT dblink('host=x', 'select 1')`,
	`SELECT count(*) FROM orders WHERE id = 1`,
	`SELECT '1'::varchar(10)`,
	`SELECT '1'::float(10)`,
	`SELECT '1'::public.mytype`,
	`SELECT 1::int[3]`,
	`COPY orders TO '/tmp/a'`,
	`COPY orders FROM STDIN`,
	`SET work_mem = '1MB'`,
	`SET statement_timeout = 1`,
	`SHOW work_mem`,
	`PREPARE p AS SELECT 1`,
	`EXECUTE p(1)`,
	`DEALLOCATE p`,
	`EXPLAIN SELECT * FROM orders WHERE id = 1`,
	`DO 'begin end'`,
	`NOTIFY c, 'a'`,
	`CREATE TABLE t (a int DEFAULT 1)`,
	`BEGIN`,
	`SELECT * FROM orders ORDER BY 1`,
	`SELECT id FROM orders GROUP BY 1`,
	`SELECT DISTINCT ON (1) id FROM orders`,
	`SELECT id FROM orders ORDER BY id + 1`,
	`WITH x AS (SELECT 1) SELECT * FROM x`,
	`SELECT * FROM orders LIMIT 5 OFFSET 10`,  // pg_query numbers OFFSET first
	`SELECT * FROM orders WHERE id = -1::int`, // -(1::int): no constant to fold the minus into
	`SELECT * FROM orders WHERE id = - -1`,
	`SELECT * FROM orders WHERE id = -/* pg_query's constant length goes wrong */1`,
	`SELECT * FROM orders WHERE id = -(1)`,
	`SELECT CURRENT_TIME(3)`,
	`SELECT * FROM orders WHERE id = $1`,
	`SELECT * FROM orders WHERE note = U&'\0061'`,
	`SELECT * FROM orders WHERE note = B'101'`,
	`SELECT * FROM orders WHERE note = X'ff'`,
	`SELECT * FROM orders WHERE note = N'x'`,
	`SELECT * FROM orders WHERE note = E'\x41'`,
	`SELECT * FROM orders WHERE note = E'\101'`,
	`SELECT * FROM orders WHERE note = E'\u0041'`,
	"SELECT * FROM orders WHERE note = 'a'\n'b'",
	`SELECT * FROM orders WHERE id = 0x1F`,
	`SELECT * FROM orders WHERE id = 1_000`,
	`SELECT 1; SELECT 2`,
	`;SELECT 1`,
	`SELECT 1;;`,
	`SELECT 1 AS null`,
	`SELECT note COLLATE "C" FROM orders WHERE id = 1`,
	`SELECT * FROM orders WHERE note SIMILAR TO 'a%'`,
	`SELECT * FROM orders WHERE note LIKE 'a%' ESCAPE '!'`,
	`SELECT * FROM orders o TABLESAMPLE SYSTEM (10)`,
	`SELECT * FROM orders WHERE id = (SELECT max(id) FROM orders)`,
	`INSERT INTO orders VALUES (1) ON CONFLICT DO NOTHING`,
	`INSERT INTO orders VALUES (1, DEFAULT)`,
	`UPDATE orders SET (note, amount) = ('x', 1) WHERE id = 1`,
	`DELETE FROM orders WHERE CURRENT OF c`,
	`SELECT * INTO t2 FROM orders WHERE id = 1`,
	`SELEC 1`,
}

// literalOptions are replacements of the same kind for a constant.
var literalOptions = map[byte][]string{
	kindInt:      {"0", "7", "2147483647", "000042", "123456"},
	kindFloat:    {"1.5", "2147483648", ".25", "1e10", "6.02E+23", "99999999999999999999999", "0.0"},
	kindString:   {"''", "'it''s'", "'é漢字🙂'", "'" + strings.Repeat("x''y", 500) + "'", `E'a\nb\'c\\'`, "$$dollar 'q' $$", "$tag$x$$y$tag$", "'--not a comment /*'", "';DROP TABLE secrets'", "'$1'", "e''''"},
	kindTrue:     {"true", "TRUE", "True"},
	kindFalse:    {"false", "FALSE"},
	kindNull:     {"null", "NULL", "Null"},
	kindNegInt:   {"-0", "-7", "- 2147483647", "-\n42"},
	kindNegFloat: {"-1.5", "- 2147483648", "-.25", "-1e10"},
}

// otherKind are replacements that change a constant's kind.
var otherKind = map[byte]string{
	kindInt:      "'1'",
	kindFloat:    "1",
	kindString:   "1",
	kindTrue:     "false",
	kindFalse:    "true",
	kindNull:     "'x'",
	kindNegInt:   "1",
	kindNegFloat: "-1",
}

// oddLiterals are put in place of a constant to see that the lexer
// either gives up, finds another shape, or is right: near-constants,
// tokens that run into their neighbours, statements in disguise.
var oddLiterals = []string{
	"1e5x", "1.", ".5", "1..2", "..5", "1e", "1e+", "0x1", "0b1", "1_0", "00", "-0", "- 1", "-/**/1", "--1\n1",
	"/**/1", "1/**/", "+1", "-(1)", "-1::int", "2147483647", "2147483648", "-2147483648", ".5e5", "1E-5",
	"'a' 'b'", "'a'\n'b'", "'a' -- c\n'b'", `E'\''`, `E'\\'`, `E'\x41'`, `E'\101'`, `E'\u0041'`, "e'x'",
	`'\'`, "''''", "'é'", "$a$x$a$", "$a$x$b$", "$$", "$1", "$", "U&'x'", `U&"x"`, "B'1'", "X'1'", "N'x'",
	"'x'::regclass", "nextval('s')", "1; SELECT 2", "1;", "TRUE", "NULL", "x", `"x"`, `""`, "(1)", "1 1",
	"'x'AND", "1AND", "a1", `\\`, "{1}", "\x00", "\xff",
}

// shapeStored reports whether c holds a shape entry for q.
func shapeStored(c *Cache, q string) bool {
	sh, ok := lexShape(q, false)
	if !ok {
		return false
	}
	_, ok = c.shapes.get(shapeKey{schema: DefaultSchema, norm: sh.norm, kinds: sh.kinds})
	return ok
}

// sameAsExtract checks that c.Extract(q) is what Extract(q) returns.
func sameAsExtract(t testing.TB, c *Cache, q string) {
	t.Helper()
	got, gotErr := c.Extract(q, Options{})
	want, wantErr := Extract(q, Options{})
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("Cache.Extract(%q) error %v, Extract %v", q, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Cache.Extract(%q) =\n%+v\nExtract =\n%+v", q, got, want)
	}
}

// replaceConsts returns q with its i-th constant replaced by lit(i).
func replaceConsts(q string, spans []span, lit func(i int) string) string {
	var b strings.Builder
	last := 0
	for i, s := range spans {
		b.WriteString(q[last:s.start])
		b.WriteString(lit(i))
		last = s.end
	}
	b.WriteString(q[last:])
	return b.String()
}

func TestLexShape(t *testing.T) {
	for _, tc := range []struct {
		q, norm, kinds string
		end            int // -1: len(q)
	}{
		{pgbenchSelect, "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", "i", len(pgbenchSelect) - 1},
		{"select 'a''b', E'c\\'d''e', $$f'$$, $x$ $$ $x$, 12, 1.5, 1e-3, 4294967296, TRUE, false, Null FROM t",
			"select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM t", "ssssidddtfn", -1},
		{"SELECT a IS NULL, b IS NOT TRUE, c IS /* x */ NOT\n-- y\n FALSE, d IS DISTINCT FROM NULL",
			"SELECT a IS NULL, b IS NOT TRUE, c IS /* x */ NOT\n-- y\n FALSE, d IS DISTINCT FROM $1", "n", -1},
		{`SELECT "it's", "a""b", a$b, x FROM t WHERE x = '"'`, `SELECT "it's", "a""b", a$b, x FROM t WHERE x = $1`, "s", -1},
		{"SELECT 1 -- x 'y'\n, 2 /* '3' /* 4 */ 5 */", "SELECT $1 -- x 'y'\n, $2 /* '3' /* 4 */ 5 */", "ii", -1},
		{"SELECT 2*/*c*/3", "SELECT $1*/*c*/$2", "ii", -1},
		{"SELECT t.5, 1.5.5", "SELECT t$1, $2$3", "ddd", -1},
		{"SELECT 1 ; ", "SELECT $1 ; ", "i", 9},
		{"SELECT -1, - 1.5, -/**/2, a -3, a - 4, (5)-6, 7-8, x =-9, x @-10, x <>-11, x*-12, -- c\n-13",
			"SELECT $1, $2, -/**/$3, a -$4, a - $5, ($6)-$7, $8-$9, x =$10, x @-$11, x <>$12, x*$13, -- c\n$14", "IDiiiiiiiIiIII", -1},
		{"SELECT x WHERE -1 > ALL (SELECT -2) AND NOT -3 = -4 OR y = ' ' IS NOT -5",
			"SELECT x WHERE $1 > ALL (SELECT $2) AND NOT $3 = $4 OR y = $5 IS NOT $6", "IIIIsI", -1},
	} {
		sh, ok := lexShape(tc.q, false)
		if !ok {
			t.Errorf("lexShape(%q) gave up", tc.q)
			continue
		}
		end := tc.end
		if end < 0 {
			end = len(tc.q)
		}
		if sh.norm != tc.norm || sh.kinds != tc.kinds || sh.end != end {
			t.Errorf("lexShape(%q) = %q %q %d, want %q %q %d", tc.q, sh.norm, sh.kinds, sh.end, tc.norm, tc.kinds, end)
		}
	}
	for _, q := range []string{
		"", " -- only a comment", "SELECT 'unterminated", "SELECT E'unterminated\\'", `SELECT "unterminated`,
		"SELECT /* unterminated", "SELECT $$unterminated", "SELECT $a$x$b$", "SELECT $1", "SELECT $", "SELECT 1e",
		"SELECT 1e+", "SELECT 1abc", "SELECT 1..2", "SELECT 0x10", "SELECT 0b1", "SELECT 0o7", "SELECT 1_0",
		"SELECT 1.5x", "SELECT \\x", "SELECT {}", "SELECT \x01", "SELECT 'a\x00'", "SELECT '\xff'", `SELECT ""`,
		"SELECT 1; SELECT 2", "SELECT 1;;", "; SELECT 1", "SELECT 'a'\n'b'", "SELECT 'a' -- c\n 'b'",
		"SELECT u&'x'", `SELECT U&"x"`, "SELECT b'1'", "SELECT X'1'", "SELECT n'x'", `SELECT E'\7'`,
		`SELECT E'\xff'`, `SELECT E'\u00e9'`, `SELECT E'\U000000e9'`, "SELECT '" + strings.Repeat("x", maxShapeLen) + "'",
	} {
		if sh, ok := lexShape(q, false); ok {
			t.Errorf("lexShape(%q) = %q %q, want it to give up", q, sh.norm, sh.kinds)
		}
	}
}

// TestLexShapeMatchesNormalize checks the lexer against pg_query on
// every query, of the corpus and the lists above, where both find the
// same constants.
func TestLexShapeMatchesNormalize(t *testing.T) {
	qs := append(append([]string{}, shapeQueries...), notShaped...)
	for _, c := range append(append([]corpus.Case{}, corpus.Deny...), corpus.Allow...) {
		qs = append(qs, c.SQL)
	}
	agreed := 0
	for _, q := range qs {
		sh, ok := lexShape(q, true)
		if !ok {
			continue
		}
		f, ts, err := extract(q, Options{}, true)
		if err != nil || !ts.ok || len(f.Statements) != 1 {
			continue
		}
		if sh.agrees(q, f, ts) {
			agreed++
			continue
		}
		// A disagreement is allowed only where pg_query's normalization
		// differs from replacing tokens (a sign, OFFSET before LIMIT):
		// the constants the tree holds must still be lexed right.
		n, _ := pg_query.Normalize(q)
		t.Logf("lexer and pg_query differ on %q:\n  lexer    %q %q\n  pg_query %q %v", q, sh.norm, sh.kinds, n, ts.consts)
	}
	if agreed < len(shapeQueries) {
		t.Errorf("lexer and parser agree on %d queries, want at least %d", agreed, len(shapeQueries))
	}
}

func TestShapeStored(t *testing.T) {
	for _, q := range shapeQueries {
		c := NewCache(8)
		sameAsExtract(t, c, q)
		if !shapeStored(c, q) {
			sh, _ := lexShape(q, false)
			n, _ := pg_query.Normalize(q)
			t.Errorf("shape of %q not stored\n  lexer    %q %q\n  pg_query %q", q, sh.norm, sh.kinds, n)
		}
	}
	for _, q := range notShaped {
		c := NewCache(8)
		sameAsExtract(t, c, q)
		if n := c.shapes.len(); n != 0 {
			t.Errorf("shape of %q stored", q)
		}
	}
}

// TestShapeNeverShared checks that queries whose facts may depend on a
// constant, or whose constants differ in kind, never get each other's
// facts.
func TestShapeNeverShared(t *testing.T) {
	for _, p := range [][2]string{
		{`SELECT nextval('a')`, `SELECT nextval('b')`},
		{`SELECT 'orders'::regclass`, `SELECT 'secrets'::regclass`},
		{`SELECT * FROM orders WHERE id = 'orders'::regclass::oid::int`, `SELECT * FROM orders WHERE id = 'secrets'::regclass::oid::int`},
		{`SELECT set_config('work_mem', '1MB', false)`, `SELECT set_config('search_path', 'x', false)`},
		{`SELECT query_to_xml('select 1', true, true, '')`, `SELECT query_to_xml('select * from secrets', true, true, '')`},
		{`SELECT current_setting('a')`, `SELECT current_setting('b')`},
		{`COPY orders TO '/tmp/a'`, `COPY orders TO '/tmp/b'`},
		{`COPY (SELECT 1) TO STDOUT`, `COPY (SELECT 2) TO STDOUT`},
		{`SET work_mem = '1MB'`, `SET work_mem = '2MB'`},
		{`SET statement_timeout = 1`, `SET statement_timeout = 2`},
		{`SET search_path = 'public'`, `SET search_path = 'evil'`},
		{`PREPARE p AS SELECT 1`, `PREPARE p AS SELECT 2`},
		{`EXECUTE p(1)`, `EXECUTE p(2)`},
		{`EXPLAIN SELECT 1`, `EXPLAIN SELECT 2`},
		{`DO 'begin end'`, `DO 'begin perform 1; end'`},
		{`NOTIFY c, 'a'`, `NOTIFY c, 'b'`},
		{`SELECT * FROM orders ORDER BY 1`, `SELECT * FROM orders ORDER BY 2`},
		{`SELECT id, note FROM orders GROUP BY 1, 2`, `SELECT id, note FROM orders GROUP BY 2, 1`},
		{`SELECT DISTINCT ON (1) id, note FROM orders`, `SELECT DISTINCT ON (2) id, note FROM orders`},
		{`SELECT * FROM orders WHERE note = '1'`, `SELECT * FROM orders WHERE note = 1`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = '1'`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = 1.0`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = 2147483648`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = NULL`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = $1`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = -1`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = 0x1`},
		{`SELECT * FROM orders WHERE id = 1`, `SELECT * FROM orders WHERE id = 1; SELECT 2`},
		{`SELECT * FROM orders WHERE x = true`, `SELECT * FROM orders WHERE x = false`},
		{`SELECT * FROM orders WHERE note = 'a'`, `SELECT * FROM orders WHERE note = B'1'`},
		{`SELECT * FROM orders WHERE note = 'a'`, `SELECT * FROM orders WHERE note = E'\x41'`},
		{`SELECT * FROM orders WHERE note = 'a'`, "SELECT * FROM orders WHERE note = 'a'\n'b'"},
		{`SELECT * FROM orders WHERE note = 'a'`, `SELECT * FROM orders WHERE note = U&'a'`},
		{`SELECT 'a' FROM orders`, `SELECT 'a' FROM secrets`},
	} {
		c := NewCache(8)
		sameAsExtract(t, c, p[0])
		if shapeStored(c, p[1]) {
			t.Errorf("%q would get the facts of %q", p[1], p[0])
		}
		sameAsExtract(t, c, p[1])
	}
	// The schema is part of the key.
	c := NewCache(8)
	c.Extract("SELECT * FROM orders WHERE id = 1", Options{Schema: "app"})
	f, _ := c.Extract("SELECT * FROM orders WHERE id = 2", Options{})
	if got := f.Statements[0].Accesses[0].Object; got != "public.orders" {
		t.Errorf("schema app's shape used for schema public: %s", got)
	}
}

// TestShapeDifferential varies the constants of every query whose shape
// is stored, among the corpus and shapeQueries, and checks that the
// Cache answers each variant exactly as Extract does: same-kind
// variants from the shape entry, others not.
func TestShapeDifferential(t *testing.T) {
	qs := append([]string{}, shapeQueries...)
	for _, c := range append(append([]corpus.Case{}, corpus.Deny...), corpus.Allow...) {
		qs = append(qs, c.SQL)
	}
	stored, hits := 0, 0
	for _, q := range qs {
		c := NewCache(64)
		sameAsExtract(t, c, q)
		if !shapeStored(c, q) {
			continue
		}
		stored++
		sh, _ := lexShape(q, true)
		var variants []string
		for k := 0; k < 8; k++ { // every constant at once
			variants = append(variants, replaceConsts(q, sh.spans, func(i int) string {
				opts := literalOptions[sh.kinds[i]]
				return opts[(i+k)%len(opts)]
			}))
		}
		for j := range sh.spans { // one constant at a time
			for _, lit := range literalOptions[sh.kinds[j]] {
				variants = append(variants, replaceConsts(q, sh.spans, func(i int) string {
					if i == j {
						return lit
					}
					return q[sh.spans[i].start:sh.spans[i].end]
				}))
			}
		}
		for _, v := range variants {
			hit := shapeStored(c, v)
			if !hit && len(v) <= maxShapeLen {
				t.Errorf("variant %q of %q missed the shape", v, q)
			}
			if hit {
				hits++
			}
			sameAsExtract(t, c, v)
		}
		for j := range sh.spans { // one constant of another kind
			v := replaceConsts(q, sh.spans, func(i int) string {
				if i == j {
					return otherKind[sh.kinds[i]]
				}
				return q[sh.spans[i].start:sh.spans[i].end]
			})
			if shapeStored(c, v) {
				t.Errorf("%q would get the facts of %q", v, q)
			}
			sameAsExtract(t, c, v)
		}
	}
	t.Logf("%d queries with a stored shape, %d variants answered from it", stored, hits)
	for _, q := range qs { // odd literals, one constant at a time
		c := NewCache(64)
		sameAsExtract(t, c, q)
		if !shapeStored(c, q) {
			continue
		}
		sh, _ := lexShape(q, true)
		for j := range sh.spans {
			for _, lit := range oddLiterals {
				sameAsExtract(t, c, replaceConsts(q, sh.spans, func(i int) string {
					if i == j {
						return lit
					}
					return q[sh.spans[i].start:sh.spans[i].end]
				}))
			}
		}
	}
	if stored < len(shapeQueries) || hits == 0 {
		t.Errorf("%d shapes stored, %d hits", stored, hits)
	}
}

// TestShapeHitIsACopy checks that a shape hit does not modify, or hand
// out, the facts stored for the shape.
func TestShapeHitIsACopy(t *testing.T) {
	c := NewCache(8)
	f1, _ := c.Extract("SELECT * FROM orders WHERE id = 1", Options{})
	f2, _ := c.Extract("SELECT * FROM orders WHERE id = 2", Options{})
	if f1 == f2 || &f1.Statements[0] == &f2.Statements[0] {
		t.Fatal("a shape hit returned the stored facts")
	}
	for i, tc := range []struct {
		f    *Facts
		text string
	}{{f1, "SELECT * FROM orders WHERE id = 1"}, {f2, "SELECT * FROM orders WHERE id = 2"}} {
		if tc.f.Statements[0].Text != tc.text || tc.f.Fingerprint != "SELECT * FROM orders WHERE id = $1" {
			t.Errorf("%d: text %q fingerprint %q", i, tc.f.Statements[0].Text, tc.f.Fingerprint)
		}
	}
	if c.Len() != 1 || c.shapes.len() != 1 {
		t.Errorf("Len %d, shapes %d; want 1, 1", c.Len(), c.shapes.len())
	}
}

func TestShapeCacheBounded(t *testing.T) {
	c := NewCache(16)
	for i := 0; i < 200; i++ {
		q := fmt.Sprintf("SELECT * FROM t%d WHERE id = %d", i, i)
		sameAsExtract(t, c, q)
		if n := c.shapes.len(); n > 16 {
			t.Fatalf("shape cache grew to %d entries", n)
		}
	}
}
