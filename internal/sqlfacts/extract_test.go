package sqlfacts

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// accesses renders a statement's accesses as sorted "action object" lines
// joined by "; ", the format of the test tables.
func accesses(st Statement) string {
	out := make([]string, 0, len(st.Accesses))
	for _, a := range st.Accesses {
		out = append(out, string(a.Action)+" "+a.Object)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func sortedSpec(spec string) string {
	if spec == "" {
		return ""
	}
	parts := strings.Split(spec, "; ")
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func TestExtract(t *testing.T) {
	tests := []struct {
		sql    string
		schema string // Options.Schema; "" means the default
		kind   string
		acc    string // "action object; ..." in any order
		refuse string // substring of Refusal; "" means not refused
		high   bool
	}{
		// Queries.
		{sql: `SELECT 1`, kind: "select"},
		{sql: `SELECT * FROM orders`, kind: "select", acc: "select public.orders"},
		{sql: `select * from ORDERS`, kind: "select", acc: "select public.orders"},
		{sql: `SELECT * FROM "ORDERS"`, kind: "select", acc: "select public.ORDERS"},
		{sql: `SELECT * FROM U&"secr\0065ts"`, kind: "select", acc: "select public.secrets"},
		{sql: `SELECT * FROM orders`, schema: "app", kind: "select", acc: "select app.orders"},
		{sql: `SELECT * FROM other.orders`, schema: "app", kind: "select", acc: "select other.orders"},
		{sql: `SELECT * FROM db.s.t`, kind: "select", acc: "select s.t"},
		{sql: `TABLE orders`, kind: "select", acc: "select public.orders"},
		{sql: `SELECT * FROM pg_class`, kind: "select", acc: "select pg_catalog.pg_class"},
		{sql: `SELECT * FROM pg_stat_io`, kind: "select", acc: "select pg_catalog.pg_stat_io"},
		{sql: `SELECT * FROM information_schema.tables`, kind: "select", acc: "select information_schema.tables"},
		{sql: `SELECT * FROM tables`, kind: "select", acc: "select public.tables"},
		{sql: `SELECT * FROM pg_temp.scratch`, kind: "select", acc: "select pg_temp.scratch"},
		{sql: `SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id`, kind: "select", acc: "select public.orders; select public.customers"},
		{sql: `SELECT (SELECT value FROM secrets) FROM orders`, kind: "select", acc: "select public.orders; select public.secrets"},
		{sql: `SELECT * FROM orders WHERE id = ANY (SELECT id FROM secrets)`, kind: "select", acc: "select public.orders; select public.secrets"},
		{sql: `SELECT * FROM orders ORDER BY (SELECT 1 FROM secrets)`, kind: "select", acc: "select public.orders; select public.secrets"},
		{sql: `SELECT * FROM orders GROUP BY id HAVING count(*) > (SELECT 1 FROM secrets)`, kind: "select", acc: "select public.orders; select public.secrets"},
		{sql: `SELECT sum(amount) FILTER (WHERE id IN (SELECT id FROM secrets)) FROM orders`, kind: "select", acc: "select public.orders; select public.secrets"},
		{sql: `SELECT row_number() OVER (ORDER BY (SELECT 1 FROM secrets)) FROM orders`, kind: "select", acc: "select public.orders; select public.secrets"},
		{sql: `SELECT * FROM orders LIMIT (SELECT count(*) FROM secrets)`, kind: "select", acc: "select public.orders; select public.secrets"},
		{sql: `SELECT * FROM XMLTABLE('/a' PASSING ((SELECT value FROM secrets)::xml) COLUMNS x text)`, kind: "select", acc: "select public.secrets"},
		{sql: `SELECT * FROM JSON_TABLE((SELECT value FROM secrets)::jsonb, '$' COLUMNS (x text PATH '$'))`, kind: "select", acc: "select public.secrets"},
		{sql: `SELECT * FROM orders TABLESAMPLE SYSTEM (10)`, kind: "select", acc: "select public.orders"},
		{sql: `SELECT * FROM orders TABLESAMPLE bernoulli (10) REPEATABLE (1)`, kind: "select", acc: "select public.orders"},
		{sql: `SELECT * FROM orders TABLESAMPLE system_rows (10)`, kind: "select", acc: "select public.orders; execute public.system_rows"},

		// CTEs and their scope.
		{sql: `WITH x AS (SELECT * FROM orders) SELECT * FROM x`, kind: "select", acc: "select public.orders"},
		{sql: `WITH orders AS (SELECT * FROM secrets) SELECT * FROM orders`, kind: "select", acc: "select public.secrets"},
		{sql: `WITH orders AS (SELECT * FROM orders) SELECT * FROM orders`, kind: "select", acc: "select public.orders"},
		{sql: `WITH a AS (SELECT * FROM b), b AS (SELECT * FROM secrets) SELECT * FROM a, b`, kind: "select", acc: "select public.b; select public.secrets"},
		{sql: `WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a`, kind: "select"},
		{sql: `WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t`, kind: "select"},
		{sql: `SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) q, secrets`, kind: "select", acc: "select public.secrets"},
		{sql: `WITH s AS (SELECT 1) SELECT * FROM public.s`, kind: "select", acc: "select public.s"},
		{sql: `WITH x AS (SELECT 1) SELECT * FROM (SELECT * FROM x) y`, kind: "select"},
		{sql: `SELECT (WITH x AS (SELECT 1) SELECT * FROM x), (SELECT * FROM x)`, kind: "select", acc: "select public.x"},
		{sql: `WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x`, kind: "select", acc: "delete public.orders; select public.orders", high: true},
		{sql: `WITH x AS (UPDATE orders SET amount = 0 WHERE id = 1 RETURNING id) SELECT * FROM x`, kind: "select", acc: "update public.orders; select public.orders"},
		{sql: `WITH x AS (INSERT INTO audit_log (message) VALUES ('m') RETURNING id) SELECT * FROM x`, kind: "select", acc: "insert public.audit_log; select public.audit_log"},
		{sql: `WITH orders AS (SELECT 1) INSERT INTO orders (id) SELECT * FROM orders`, kind: "insert", acc: "insert public.orders"},

		// Locking.
		{sql: `SELECT * FROM orders FOR UPDATE`, kind: "select", acc: "select public.orders; lock public.orders"},
		{sql: `SELECT * FROM orders o, customers c FOR SHARE OF c`, kind: "select", acc: "select public.orders; lock public.orders; select public.customers; lock public.customers"},
		{sql: `SELECT * FROM orders WHERE id IN (SELECT id FROM secrets) FOR UPDATE`, kind: "select", acc: "select public.orders; lock public.orders; select public.secrets"},
		{sql: `LOCK TABLE orders, customers IN SHARE MODE`, kind: "lock", acc: "lock public.orders; lock public.customers"},

		// DML.
		{sql: `INSERT INTO orders (id) VALUES (1)`, kind: "insert", acc: "insert public.orders"},
		{sql: `INSERT INTO orders SELECT * FROM secrets`, kind: "insert", acc: "insert public.orders; select public.secrets"},
		{sql: `INSERT INTO orders (id) VALUES (1) RETURNING *`, kind: "insert", acc: "insert public.orders; select public.orders"},
		{sql: `INSERT INTO orders (id) VALUES (1) ON CONFLICT DO NOTHING`, kind: "insert", acc: "insert public.orders"},
		{sql: `INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET amount = excluded.amount`, kind: "insert", acc: "insert public.orders; update public.orders"},
		{sql: `INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET amount = orders.amount + 1`, kind: "insert", acc: "insert public.orders; update public.orders; select public.orders"},
		{sql: `INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET note = 'x' WHERE excluded.amount > 0`, kind: "insert", acc: "insert public.orders; update public.orders; select public.orders"},
		{sql: `INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET note = (SELECT value FROM secrets)`, kind: "insert", acc: "insert public.orders; update public.orders; select public.orders; select public.secrets"},
		{sql: `INSERT INTO orders (id, note) VALUES (1, pg_read_file('x'))`, kind: "insert", acc: "insert public.orders; execute pg_catalog.pg_read_file"},
		{sql: `UPDATE orders SET amount = 0`, kind: "update", acc: "update public.orders", high: true},
		{sql: `UPDATE orders SET amount = amount * 2`, kind: "update", acc: "update public.orders; select public.orders", high: true},
		{sql: `UPDATE orders SET amount = 0 WHERE id = 1`, kind: "update", acc: "update public.orders; select public.orders"},
		{sql: `UPDATE orders SET note = s.value FROM secrets s WHERE s.id = orders.id`, kind: "update", acc: "update public.orders; select public.orders; select public.secrets"},
		{sql: `UPDATE orders SET note = 'x' WHERE CURRENT OF c`, kind: "update", acc: "update public.orders"},
		{sql: `UPDATE orders SET note = 'x' RETURNING (SELECT value FROM secrets)`, kind: "update", acc: "update public.orders; select public.orders; select public.secrets", high: true},
		{sql: `DELETE FROM orders`, kind: "delete", acc: "delete public.orders", high: true},
		{sql: `DELETE FROM orders WHERE id = 1`, kind: "delete", acc: "delete public.orders; select public.orders"},
		{sql: `DELETE FROM orders RETURNING *`, kind: "delete", acc: "delete public.orders; select public.orders", high: true},
		{sql: `DELETE FROM orders USING secrets WHERE secrets.id = orders.id`, kind: "delete", acc: "delete public.orders; select public.orders; select public.secrets"},
		{sql: `MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN UPDATE SET note = 'x'`, kind: "merge", acc: "select public.orders; update public.orders; select public.customers"},
		{sql: `MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED AND c.id > 1 THEN DELETE WHEN MATCHED THEN DO NOTHING WHEN NOT MATCHED THEN INSERT (id) VALUES (c.id)`, kind: "merge", acc: "select public.orders; delete public.orders; insert public.orders; select public.customers", high: true},
		{sql: `MERGE INTO orders o USING (SELECT * FROM secrets) s ON o.id = s.id WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)`, kind: "merge", acc: "select public.orders; insert public.orders; select public.secrets"},

		// Functions and operators.
		{sql: `SELECT lower(name), count(*), now(), coalesce(email, ''), generate_series(1, 2) FROM customers GROUP BY 1, 3, 4`, kind: "select", acc: "select public.customers"},
		{sql: `SELECT EXTRACT(year FROM now()), substring('abc' FROM 1 FOR 2), trim(both FROM ' x '), 'a' LIKE 'b' ESCAPE 'x', now() AT TIME ZONE 'utc', position('a' IN 'b'), overlay('abc' PLACING 'x' FROM 1), (now(), now()) OVERLAPS (now(), now())`, kind: "select"},
		{sql: `SELECT pg_read_file('x')`, kind: "select", acc: "execute pg_catalog.pg_read_file"},
		{sql: `SELECT PG_CATALOG.PG_READ_FILE('x')`, kind: "select", acc: "execute pg_catalog.pg_read_file"},
		{sql: `SELECT pg_catalog.lower('X')`, kind: "select"},
		{sql: `SELECT public.lower('X')`, kind: "select", acc: "execute public.lower"},
		{sql: `SELECT "PG_READ_FILE"('x')`, kind: "select", acc: "execute public.PG_READ_FILE"},
		{sql: `SELECT wipe()`, kind: "select", acc: "execute public.wipe"},
		{sql: `SELECT wipe()`, schema: "app", kind: "select", acc: "execute app.wipe"},
		{sql: `SELECT nextval('s'), currval('s'), setval('s', 1)`, kind: "select", acc: "execute pg_catalog.nextval; execute pg_catalog.currval; execute pg_catalog.setval"},
		{sql: `SELECT * FROM dblink('x', 'y') AS t(a int)`, kind: "select", acc: "execute public.dblink"},
		{sql: `SELECT query_to_xml('delete from orders', true, false, '')`, kind: "select", acc: "execute pg_catalog.query_to_xml"},
		{sql: `SELECT lower((SELECT value FROM secrets))`, kind: "select", acc: "select public.secrets"},
		{sql: `SELECT * FROM ROWS FROM (pg_ls_dir('.')) t(n)`, kind: "select", acc: "execute pg_catalog.pg_ls_dir"},
		{sql: `SELECT any_value(id) FROM orders`, kind: "select", acc: "select public.orders"},
		{sql: `SELECT set_config('search_path', 'x', false)`, kind: "select", refuse: "set_config"},
		{sql: `SELECT pg_catalog.set_config('role', 'x', false)`, kind: "select", refuse: "set_config"},
		{sql: `SELECT 1 + 1, 'a' || 'b', ARRAY[1] @> ARRAY[1]`, kind: "select"},
		{sql: `SELECT 1 OPERATOR(pg_catalog.+) 1`, kind: "select"},
		{sql: `SELECT 1 OPERATOR(public.+) 1`, kind: "select", acc: "execute public.+"},
		{sql: `SELECT 1 === 1`, kind: "select", acc: "execute public.==="},
		{sql: `SELECT 1 WHERE 1 === ANY (SELECT 1)`, kind: "select", acc: "execute public.==="},
		{sql: `SELECT * FROM orders ORDER BY id USING ~<~`, kind: "select", acc: "select public.orders"},

		// EXPLAIN, PREPARE, EXECUTE, cursors.
		{sql: `EXPLAIN SELECT * FROM orders`, kind: "explain", acc: "select public.orders"},
		{sql: `EXPLAIN ANALYZE DELETE FROM orders`, kind: "explain", acc: "delete public.orders", high: true},
		{sql: `EXPLAIN (ANALYZE, FORMAT JSON) SELECT pg_sleep(1)`, kind: "explain", acc: "execute pg_catalog.pg_sleep"},
		{sql: `PREPARE p AS DELETE FROM orders WHERE id = $1`, kind: "prepare", acc: "delete public.orders; select public.orders"},
		{sql: `EXECUTE p(1)`, kind: "execute"},
		{sql: `EXECUTE p(nextval('s'))`, kind: "execute", acc: "execute pg_catalog.nextval"},
		{sql: `DECLARE c CURSOR WITH HOLD FOR SELECT * FROM secrets`, kind: "declare cursor", acc: "select public.secrets"},
		{sql: `FETCH 10 FROM c`, kind: "fetch"},
		{sql: `MOVE NEXT IN c`, kind: "move"},
		{sql: `CLOSE c`, kind: "close"},
		{sql: `DEALLOCATE p`, kind: "deallocate"},
		{sql: `CREATE TABLE t AS EXECUTE p`, kind: "create table as", acc: "create public.t", high: true},

		// COPY.
		{sql: `COPY orders FROM STDIN`, kind: "copy", acc: "insert public.orders"},
		{sql: `COPY orders (id, note) FROM STDIN WITH (FORMAT csv) WHERE id > pg_backend_pid()`, kind: "copy", acc: "insert public.orders"},
		{sql: `COPY orders TO STDOUT`, kind: "copy", acc: "select public.orders"},
		{sql: `COPY (SELECT * FROM secrets) TO STDOUT`, kind: "copy", acc: "select public.secrets"},
		{sql: `COPY (DELETE FROM orders RETURNING *) TO STDOUT`, kind: "copy", acc: "delete public.orders; select public.orders", high: true},
		{sql: `COPY orders TO PROGRAM 'cat'`, kind: "copy", acc: "select public.orders", refuse: "PROGRAM"},
		{sql: `COPY orders FROM '/etc/passwd'`, kind: "copy", acc: "insert public.orders", refuse: "file"},
		{sql: `COPY orders TO '/tmp/x'`, kind: "copy", acc: "select public.orders", refuse: "file"},

		// Procedures and code.
		{sql: `CALL purge_orders()`, kind: "call", acc: "execute public.purge_orders"},
		{sql: `CALL s.p(pg_sleep(1))`, kind: "call", acc: "execute s.p; execute pg_catalog.pg_sleep"},
		{sql: `DO $$ BEGIN END $$`, kind: "do", acc: "command do", high: true},

		// Transactions.
		{sql: `BEGIN`, kind: "begin"},
		{sql: `BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY`, kind: "begin"},
		{sql: `START TRANSACTION`, kind: "start transaction"},
		{sql: `COMMIT`, kind: "commit"},
		{sql: `END`, kind: "commit"},
		{sql: `ROLLBACK`, kind: "rollback"},
		{sql: `ABORT`, kind: "rollback"},
		{sql: `SAVEPOINT a`, kind: "savepoint"},
		{sql: `RELEASE a`, kind: "release savepoint"},
		{sql: `ROLLBACK TO a`, kind: "rollback to savepoint"},
		{sql: `PREPARE TRANSACTION 'x'`, kind: "prepare transaction", refuse: "two-phase"},
		{sql: `COMMIT PREPARED 'x'`, kind: "commit prepared", refuse: "two-phase"},
		{sql: `ROLLBACK PREPARED 'x'`, kind: "rollback prepared", refuse: "two-phase"},
		{sql: `SET CONSTRAINTS ALL DEFERRED`, kind: "set constraints"},

		// SET, RESET, SHOW.
		{sql: `SHOW search_path`, kind: "show"},
		{sql: `SHOW ALL`, kind: "show"},
		{sql: `SET statement_timeout = 1000`, kind: "set"},
		{sql: `SET LOCAL lock_timeout TO '1s'`, kind: "set"},
		{sql: `SET SESSION idle_in_transaction_session_timeout = 0`, kind: "set"},
		{sql: `SET application_name = 'agent'`, kind: "set"},
		{sql: `SET DateStyle = ISO, MDY`, kind: "set"},
		{sql: `SET TIME ZONE 'UTC'`, kind: "set"},
		{sql: `SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE`, kind: "set"},
		{sql: `SET enable_seqscan = off`, kind: "set"},
		{sql: `SET work_mem TO DEFAULT`, kind: "set"},
		{sql: `SET work_mem FROM CURRENT`, kind: "set"},
		{sql: `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`, kind: "set"},
		{sql: `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`, kind: "set"},
		{sql: `RESET ALL`, kind: "reset"},
		{sql: `RESET statement_timeout`, kind: "reset"},
		{sql: `SET client_encoding = 'UTF8'`, kind: "set"},
		{sql: `SET NAMES 'LATIN1'`, kind: "set"},
		{sql: `SET client_encoding TO DEFAULT`, kind: "set"},
		{sql: `SET standard_conforming_strings = on`, kind: "set"},
		{sql: `SET standard_conforming_strings = 'TRUE'`, kind: "set"},
		{sql: `SET escape_string_warning = on`, kind: "set"},
		{sql: `SET backslash_quote = safe_encoding`, kind: "set"},
		{sql: `RESET standard_conforming_strings`, kind: "reset"},
		{sql: `SET ROLE admin`, kind: "set", refuse: "ROLE"},
		{sql: `SET LOCAL ROLE admin`, kind: "set", refuse: "ROLE"},
		{sql: `SET ROLE NONE`, kind: "set", refuse: "ROLE"},
		{sql: `RESET ROLE`, kind: "reset", refuse: "ROLE"},
		{sql: `SET SESSION AUTHORIZATION admin`, kind: "set", refuse: "SESSION AUTHORIZATION"},
		{sql: `SET SESSION AUTHORIZATION DEFAULT`, kind: "set", refuse: "SESSION AUTHORIZATION"},
		{sql: `RESET SESSION AUTHORIZATION`, kind: "reset", refuse: "SESSION AUTHORIZATION"},
		{sql: `SET search_path = evil`, kind: "set", refuse: "search_path"},
		{sql: `SET LOCAL search_path TO DEFAULT`, kind: "set", refuse: "search_path"},
		{sql: `SET search_path FROM CURRENT`, kind: "set", refuse: "search_path"},
		{sql: `SET SCHEMA 'evil'`, kind: "set", refuse: "search_path"},
		{sql: `SET "SEARCH_PATH" = evil`, kind: "set", refuse: "search_path"},
		{sql: `RESET search_path`, kind: "reset", refuse: "search_path"},
		{sql: `SET client_encoding = 'SJIS'`, kind: "set", refuse: "client_encoding"},
		{sql: `SET client_encoding = 'Shift_JIS_2004'`, kind: "set", refuse: "client_encoding"},
		{sql: `SET NAMES 'big5'`, kind: "set", refuse: "client_encoding"},
		{sql: `SET client_encoding = gbk`, kind: "set", refuse: "client_encoding"},
		{sql: `SET client_encoding = 'GB-18030'`, kind: "set", refuse: "client_encoding"},
		{sql: `SET client_encoding = 'johab'`, kind: "set", refuse: "client_encoding"},
		{sql: `SET client_encoding = 'WIN932'`, kind: "set", refuse: "client_encoding"},
		{sql: `SET standard_conforming_strings = off`, kind: "set", refuse: "standard_conforming_strings"},
		{sql: `SET standard_conforming_strings = 0`, kind: "set", refuse: "standard_conforming_strings"},
		{sql: `SET escape_string_warning = false`, kind: "set", refuse: "escape_string_warning"},
		{sql: `SET backslash_quote = on`, kind: "set", refuse: "backslash_quote"},
		{sql: `SET session_replication_role = replica`, kind: "set", refuse: "session_replication_role"},
		{sql: `SET log_statement = 'none'`, kind: "set", refuse: "log_statement"},
		{sql: `SET myapp.tenant = '7'`, kind: "set", refuse: "myapp.tenant"},
		{sql: `SET TRANSACTION SNAPSHOT '00000003-0000001B-1'`, kind: "set"},

		// Session state.
		{sql: `DISCARD ALL`, kind: "discard"},
		{sql: `DISCARD PLANS`, kind: "discard"},
		{sql: `LISTEN ch`, kind: "listen", acc: "command listen"},
		{sql: `UNLISTEN *`, kind: "unlisten", acc: "command unlisten"},
		{sql: `NOTIFY ch, 'x'`, kind: "notify", acc: "command notify"},

		// Maintenance.
		{sql: `VACUUM orders`, kind: "vacuum", acc: "command vacuum"},
		{sql: `VACUUM (ANALYZE) orders`, kind: "vacuum", acc: "command vacuum"},
		{sql: `ANALYZE orders`, kind: "analyze", acc: "command analyze"},
		{sql: `CLUSTER orders USING orders_pkey`, kind: "cluster", acc: "command cluster"},
		{sql: `REINDEX TABLE orders`, kind: "reindex", acc: "command reindex"},
		{sql: `CHECKPOINT`, kind: "checkpoint", acc: "command checkpoint"},
		{sql: `REFRESH MATERIALIZED VIEW CONCURRENTLY stats`, kind: "refresh materialized view", acc: "alter public.stats"},
		{sql: `TRUNCATE orders, customers RESTART IDENTITY CASCADE`, kind: "truncate", acc: "truncate public.orders; truncate public.customers", high: true},

		// DDL.
		{sql: `SELECT * INTO t FROM orders`, kind: "select into", acc: "create public.t; select public.orders", high: true},
		{sql: `SELECT * INTO TEMP t FROM orders`, kind: "select into", acc: "create pg_temp.t; select public.orders", high: true},
		{sql: `CREATE TABLE t AS SELECT * FROM secrets`, kind: "create table as", acc: "create public.t; select public.secrets", high: true},
		{sql: `CREATE MATERIALIZED VIEW s.mv AS SELECT 1`, kind: "create materialized view", acc: "create s.mv", high: true},
		{sql: `CREATE TABLE t (id int DEFAULT nextval('s'), c text CHECK (c <> wipe()::text))`, kind: "create table", acc: "create public.t; execute pg_catalog.nextval; execute public.wipe", high: true},
		{sql: `CREATE TABLE t (id int REFERENCES customers (id))`, kind: "create table", acc: "create public.t; select public.customers", high: true},
		{sql: `CREATE TEMP TABLE orders (id int)`, kind: "create table", acc: "create pg_temp.orders", high: true},
		{sql: `CREATE TABLE pg_temp.orders (id int)`, kind: "create table", acc: "create pg_temp.orders", high: true},
		{sql: `CREATE TABLE p1 PARTITION OF orders FOR VALUES IN (1)`, kind: "create table", acc: "create public.p1; alter public.orders; select public.orders", high: true},
		{sql: `CREATE VIEW v AS SELECT * FROM secrets`, kind: "create view", acc: "create public.v; select public.secrets", high: true},
		{sql: `CREATE TEMP VIEW customers AS SELECT 1`, kind: "create view", acc: "create pg_temp.customers", high: true},
		{sql: `CREATE INDEX i ON orders (lower(note))`, kind: "create index", acc: "alter public.orders; create public.i", high: true},
		{sql: `CREATE INDEX ON s.orders (wipe())`, kind: "create index", acc: "alter s.orders; execute public.wipe", high: true},
		{sql: `CREATE SEQUENCE s2`, kind: "create sequence", acc: "create public.s2", high: true},
		{sql: `ALTER SEQUENCE s2 RESTART`, kind: "alter sequence", acc: "alter public.s2", high: true},
		{sql: `ALTER TABLE orders ADD COLUMN x int DEFAULT wipe()`, kind: "alter table", acc: "alter public.orders; execute public.wipe", high: true},
		{sql: `ALTER TABLE orders DISABLE ROW LEVEL SECURITY`, kind: "alter table", acc: "alter public.orders", high: true},
		{sql: `ALTER INDEX i RENAME TO j`, kind: "rename", acc: "alter public.i", high: true},
		{sql: `ALTER TABLE orders RENAME COLUMN note TO n`, kind: "rename", acc: "alter public.orders", high: true},
		{sql: `ALTER TABLE orders OWNER TO someone`, kind: "alter table", acc: "alter public.orders", high: true},
		{sql: `ALTER TABLE orders SET SCHEMA other`, kind: "alter set schema", acc: "alter public.orders", high: true},
		{sql: `ALTER FUNCTION wipe() OWNER TO someone`, kind: "alter owner", acc: "alter public.wipe", high: true},
		{sql: `ALTER FUNCTION wipe() SECURITY DEFINER`, kind: "alter function", acc: "alter public.wipe", high: true},
		{sql: `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`, kind: "create function", acc: "create public.f", high: true},
		{sql: `CREATE OR REPLACE PROCEDURE s.p() LANGUAGE sql BEGIN ATOMIC DELETE FROM orders; END`, kind: "create procedure", acc: "create s.p; delete public.orders", high: true},
		{sql: `CREATE TYPE mood AS ENUM ('a')`, kind: "create type", acc: "create public.mood", high: true},
		{sql: `CREATE TYPE pair AS (a int, b int)`, kind: "create type", acc: "create public.pair", high: true},
		{sql: `CREATE DOMAIN pos AS int CHECK (VALUE > 0)`, kind: "create domain", acc: "create public.pos", high: true},
		{sql: `CREATE AGGREGATE s.agg (int) (SFUNC = int4pl, STYPE = int)`, kind: "create aggregate", acc: "create s.agg", high: true},
		{sql: `CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION wipe()`, kind: "create trigger", acc: "alter public.orders; execute public.wipe", high: true},
		{sql: `CREATE POLICY p ON orders USING (id IN (SELECT id FROM secrets))`, kind: "create policy", acc: "alter public.orders; select public.secrets", high: true},
		{sql: `CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM customers`, kind: "create rule", acc: "alter public.orders; delete public.customers", high: true},
		{sql: `CREATE SCHEMA s CREATE TABLE t (id int) CREATE VIEW v AS SELECT * FROM t`, kind: "create schema", acc: "create s; create s.t; create s.v; select s.t", high: true},
		{sql: `COMMENT ON TABLE orders IS 'x'`, kind: "comment", acc: "alter public.orders", high: true},
		{sql: `COMMENT ON COLUMN orders.note IS 'x'`, kind: "comment", acc: "alter public.orders", high: true},
		{sql: `COMMENT ON FUNCTION wipe() IS 'x'`, kind: "comment", acc: "alter public.wipe", high: true},
		{sql: `COMMENT ON SCHEMA s IS 'x'`, kind: "comment", acc: "alter s", high: true},
		{sql: `SECURITY LABEL ON TABLE orders IS 'x'`, kind: "security label", acc: "alter public.orders", high: true},
		{sql: `DROP TABLE orders, s.secrets`, kind: "drop table", acc: "drop public.orders; drop s.secrets", high: true},
		{sql: `DROP TABLE IF EXISTS pg_class`, kind: "drop table", acc: "drop pg_catalog.pg_class", high: true},
		{sql: `DROP VIEW v CASCADE`, kind: "drop view", acc: "drop public.v", high: true},
		{sql: `DROP FUNCTION wipe(), s.f(int)`, kind: "drop function", acc: "drop public.wipe; drop s.f", high: true},
		{sql: `DROP TYPE mood`, kind: "drop type", acc: "drop public.mood", high: true},
		{sql: `DROP SCHEMA s CASCADE`, kind: "drop schema", acc: "drop s", high: true},
		{sql: `DROP TRIGGER t ON orders`, kind: "drop trigger", acc: "alter public.orders", high: true},
		{sql: `DROP INDEX CONCURRENTLY s.i`, kind: "drop index", acc: "drop s.i", high: true},
		{sql: `ALTER SCHEMA s RENAME TO t`, kind: "rename", acc: "alter s", high: true},

		// Refused outright.
		{sql: `GRANT SELECT ON secrets TO PUBLIC`, kind: "grant", refuse: "privileges"},
		{sql: `REVOKE ALL ON orders FROM PUBLIC`, kind: "grant", refuse: "privileges"},
		{sql: `GRANT admin TO agent`, kind: "grant", refuse: "privileges"},
		{sql: `CREATE ROLE evil SUPERUSER`, kind: "create role", refuse: "roles"},
		{sql: `ALTER ROLE agent SUPERUSER`, kind: "alter role", refuse: "roles"},
		{sql: `ALTER USER agent SET search_path = evil`, kind: "alter role", refuse: "roles"},
		{sql: `DROP ROLE agent`, kind: "drop role", refuse: "roles"},
		{sql: `ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC`, kind: "alter default privileges", refuse: "privileges"},
		{sql: `REASSIGN OWNED BY a TO b`, kind: "reassign owned", refuse: "privileges"},
		{sql: `DROP OWNED BY a`, kind: "drop owned", refuse: "privileges"},
		{sql: `LOAD 'plpgsql'`, kind: "load", refuse: "LOAD"},
		{sql: `ALTER SYSTEM SET work_mem = '1GB'`, kind: "alter system", refuse: "ALTER SYSTEM"},
		{sql: `CREATE EXTENSION dblink`, kind: "create extension", refuse: "not allowed"},
		{sql: `CREATE DATABASE d`, kind: "create database", refuse: "not allowed"},
		{sql: `CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw`, kind: "create foreign server", refuse: "not allowed"},
		{sql: `CREATE FOREIGN TABLE ft (a int) SERVER s`, kind: "create foreign table", refuse: "not allowed"},
		{sql: `CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()`, kind: "create event trigger", refuse: "not allowed"},
		{sql: `CREATE CAST (int AS text) WITH FUNCTION f(int)`, kind: "create cast", refuse: "not allowed"},
		{sql: `DROP EXTENSION plpgsql`, kind: "drop extension", refuse: "extension", high: true},
		{sql: `DROP DATABASE d`, kind: "drop database", refuse: "not allowed"},
		{sql: `COMMENT ON DATABASE d IS 'x'`, kind: "comment", refuse: "database", high: true},
		{sql: `ALTER DATABASE d RENAME TO e`, kind: "rename", refuse: "database", high: true},
		{sql: `COMMENT ON LARGE OBJECT 1 IS 'x'`, kind: "comment", refuse: "large object", high: true},
		{sql: `CREATE PUBLICATION p FOR ALL TABLES`, kind: "create publication", refuse: "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			f, err := Extract(tt.sql, Options{Schema: tt.schema})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if len(f.Statements) != 1 {
				t.Fatalf("got %d statements, want 1", len(f.Statements))
			}
			st := f.Statements[0]
			if st.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q", st.Kind, tt.kind)
			}
			if got, want := accesses(st), sortedSpec(tt.acc); got != want {
				t.Errorf("Accesses = %q\n                 want %q", got, want)
			}
			switch {
			case tt.refuse == "" && st.Refusal != "":
				t.Errorf("Refusal = %q, want none", st.Refusal)
			case tt.refuse != "" && !strings.Contains(st.Refusal, tt.refuse):
				t.Errorf("Refusal = %q, want it to mention %q", st.Refusal, tt.refuse)
			}
			if st.HighRisk != tt.high {
				t.Errorf("HighRisk = %v, want %v", st.HighRisk, tt.high)
			}
			if st.Text != strings.TrimSpace(tt.sql) {
				t.Errorf("Text = %q, want the whole query", st.Text)
			}
		})
	}
}

// TestExtractLargeFlatQueries: the nesting guard must not refuse long
// queries that are merely wide.
func TestExtractLargeFlatQueries(t *testing.T) {
	for name, q := range map[string]string{
		"values":          "INSERT INTO orders (id, note) VALUES " + strings.Repeat("(1, 'x'), ", 50000) + "(2, 'y')",
		"in list":         "SELECT * FROM orders WHERE id IN (" + strings.Repeat("1, ", 50000) + "2)",
		"many statements": strings.Repeat("SELECT 1; ", 5000),
		"or chain":        "SELECT * FROM orders WHERE " + strings.Repeat("id = 1 OR ", 2000) + "false",
		"long string":     "SELECT '" + strings.Repeat("x+", 100000) + "'",
	} {
		f, err := Extract(q, Options{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if n := len(f.Statements); n == 0 {
			t.Errorf("%s: no statements", name)
		}
	}
}

func TestExtractAccessesDeduplicated(t *testing.T) {
	f, err := Extract(`SELECT * FROM orders o1 JOIN orders o2 USING (id) WHERE o1.id IN (SELECT id FROM orders)`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Statements[0].Accesses; len(got) != 1 || got[0] != (Access{Select, "public.orders"}) {
		t.Fatalf("Accesses = %v, want exactly [select public.orders]", got)
	}
}

func TestExtractMultiStatement(t *testing.T) {
	q := "SELECT 1; /* ; */ DELETE FROM orders;\n  SELECT $$;$$ ;SELECT 'a'';b'"
	f, err := Extract(q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ text, kind string }{
		{"SELECT 1", "select"},
		{"/* ; */ DELETE FROM orders", "delete"},
		{"SELECT $$;$$", "select"},
		{"SELECT 'a'';b'", "select"},
	}
	if len(f.Statements) != len(want) {
		t.Fatalf("got %d statements, want %d: %+v", len(f.Statements), len(want), f.Statements)
	}
	for i, w := range want {
		if st := f.Statements[i]; st.Text != w.text || st.Kind != w.kind {
			t.Errorf("statement %d = %q (%s), want %q (%s)", i, st.Text, st.Kind, w.text, w.kind)
		}
	}
}

func TestExtractSessionFields(t *testing.T) {
	f, err := Extract(`PREPARE d AS DELETE FROM orders; EXECUTE d; DEALLOCATE d; DEALLOCATE ALL; DEALLOCATE PREPARE ALL; DISCARD ALL; EXPLAIN EXECUTE e`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := f.Statements
	if s[0].PrepareName != "d" || accesses(s[0]) != "delete public.orders" || !s[0].HighRisk {
		t.Errorf("PREPARE: %+v", s[0])
	}
	if s[1].ExecuteName != "d" || len(s[1].Accesses) != 0 {
		t.Errorf("EXECUTE: %+v", s[1])
	}
	if s[2].DeallocateName != "d" || s[2].DeallocateAll {
		t.Errorf("DEALLOCATE d: %+v", s[2])
	}
	for i := 3; i <= 5; i++ {
		if !s[i].DeallocateAll || s[i].DeallocateName != "" {
			t.Errorf("%s: DeallocateAll = false", s[i].Text)
		}
	}
	if s[6].ExecuteName != "e" || s[6].Kind != "explain" {
		t.Errorf("EXPLAIN EXECUTE: %+v", s[6])
	}
}

func TestExtractErrors(t *testing.T) {
	tests := []struct {
		name, sql string
		is        error // nil: any error
	}{
		{"empty", "", ErrEmpty},
		{"only whitespace", "  \n\t", ErrEmpty},
		{"only comments", "/* x */ -- y", ErrEmpty},
		{"only semicolons", ";;", ErrEmpty},
		{"syntax error", "SELEC 1", nil},
		{"unterminated string", "SELECT 'x", nil},
		{"unterminated comment", "SELECT 1 /* DELETE FROM orders", nil},
		{"unterminated dollar quote", "SELECT $$; DELETE FROM orders", nil},
		{"invalid utf8", "SELECT '\xff'", ErrInvalidUTF8},
		{"nul byte", "SELECT 1\x00; DELETE FROM orders", ErrNUL},
		{"second statement broken", "SELECT 1; DELET FROM orders", nil},
		// Deep left-recursive chains used to overflow libpg_query's C
		// stack (SIGSEGV) when it wrote the tree out.
		{"deep operator chain", "SELECT 1" + strings.Repeat("+1", 40000), ErrTooDeep},
		{"deep postfix chain", "SELECT 1" + strings.Repeat(" ISNULL", 40000), ErrTooDeep},
		{"deep cast chain", "SELECT 1" + strings.Repeat("::int", 40000), ErrTooDeep},
		{"deep chain in parens", "SELECT (((1" + strings.Repeat(" || 'x'", 30000) + ")))", ErrTooDeep},
		{"deep chain after comments", "SELECT 1" + strings.Repeat("/*,*/+1", 40000), ErrTooDeep},
		{"moderate chain", "SELECT 1" + strings.Repeat("+1", 8000), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Extract(tt.sql, Options{})
			if err == nil {
				t.Fatalf("Extract(%q) = %+v, want an error", tt.sql, f)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Extract(%q) error = %v, want %v", tt.sql, err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "sqlfacts.Extract: ") {
				t.Errorf("error %q lacks the operation prefix", err)
			}
		})
	}
}

// TestSafeFunctionsExist catches typos: every safe function must be a
// pg_catalog function, or it could never match.
func TestSafeFunctionsExist(t *testing.T) {
	for name := range safeFunctions {
		if !has(pgCatalogFunctions, name) {
			t.Errorf("safe function %q is not in pg_catalog", name)
		}
	}
	if n := len(safeFunctions); n < 200 {
		t.Errorf("only %d safe functions", n)
	}
	for _, bad := range []string{"set_config", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
		"lo_import", "lo_export", "lo_unlink", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
		"pg_rotate_logfile", "nextval", "setval", "currval", "lastval", "pg_advisory_lock", "pg_advisory_xact_lock",
		"pg_notify", "pg_sleep", "query_to_xml", "query_to_xml_and_xmlschema", "table_to_xml", "cursor_to_xml",
		"database_to_xml", "schema_to_xml", "ts_stat", "ts_rewrite", "pg_switch_wal", "pg_promote",
		"pg_create_restore_point", "pg_drop_replication_slot", "pg_logical_emit_message", "pg_replication_origin_create",
		"pg_backup_start", "pg_file_write", "dblink", "pg_stat_reset", "txid_current_snapshot_xxx"} {
		if has(safeFunctions, bad) {
			t.Errorf("%s must not be on the safe list", bad)
		}
	}
}
