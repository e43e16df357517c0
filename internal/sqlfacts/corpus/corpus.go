// Package corpus is warden's adversarial SQL corpus: a fixed test schema
// and the statements that an agent allowed exactly
//
//	sql: { select: [public.orders, public.customers] }
//
// must be refused (Deny) or let through (Allow). Every case is valid SQL
// against Schema, so a test that forwards it to a real PostgreSQL proves
// the danger is real, not a parse error. The sqlfacts tests check the
// corpus against sqlfacts.Extract; end-to-end tests can run it through the
// proxy.
//
// The package only holds data; it depends on nothing.
package corpus

// Case is one corpus statement (possibly several statements in one query
// string, as a client could send them in one Query message).
type Case struct {
	Name string
	SQL  string
}

// Schema creates the corpus schema in `public`. It is idempotent (it drops
// what it creates first) and runs under `psql -v ON_ERROR_STOP=1` as a
// superuser. It needs no extension.
const Schema = `
DROP PROCEDURE IF EXISTS public.purge_orders();
DROP FUNCTION IF EXISTS public.wipe();
DROP FUNCTION IF EXISTS public.order_total(integer);
DROP MATERIALIZED VIEW IF EXISTS public.customer_stats;
DROP VIEW IF EXISTS public.order_totals;
DROP TABLE IF EXISTS public.audit_log, public.orders, public."ORDERS", public.secrets, public.customers CASCADE;
DROP SEQUENCE IF EXISTS public.invoice_seq;

CREATE TABLE public.customers (
    id    integer PRIMARY KEY,
    name  text NOT NULL,
    email text,
    ssn   text
);

CREATE TABLE public.orders (
    id          integer PRIMARY KEY,
    customer_id integer REFERENCES public.customers (id),
    amount      numeric(12,2) NOT NULL DEFAULT 0,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A look-alike: "ORDERS" (quoted) is a different table from orders.
CREATE TABLE public."ORDERS" (id integer, note text);

CREATE TABLE public.secrets (
    id    integer PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE public.audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text,
    message text
);

CREATE VIEW public.order_totals AS
    SELECT customer_id, sum(amount) AS total FROM public.orders GROUP BY customer_id;

CREATE MATERIALIZED VIEW public.customer_stats AS
    SELECT c.id, count(o.id) AS order_count
    FROM public.customers c LEFT JOIN public.orders o ON o.customer_id = c.id
    GROUP BY c.id;

CREATE SEQUENCE public.invoice_seq;

-- A user-defined function with a side effect, and a procedure.
CREATE FUNCTION public.wipe() RETURNS void LANGUAGE sql
    AS $$ DELETE FROM public.orders $$;
CREATE FUNCTION public.order_total(integer) RETURNS numeric LANGUAGE sql STABLE
    AS $$ SELECT sum(amount) FROM public.orders WHERE customer_id = $1 $$;
CREATE PROCEDURE public.purge_orders() LANGUAGE sql
    AS $$ DELETE FROM public.orders $$;

INSERT INTO public.customers (id, name, email, ssn) VALUES
    (1, 'Ada', 'ada@example.com', '123-45-6789'),
    (2, 'Grace', 'grace@example.com', '987-65-4321');
INSERT INTO public.orders (id, customer_id, amount, note) VALUES
    (1, 1, 10.50, 'first'),
    (2, 1, 20.00, 'second; DROP TABLE orders'),
    (3, 2, 99.99, NULL);
INSERT INTO public."ORDERS" VALUES (1, 'look-alike');
INSERT INTO public.secrets (id, value) VALUES
    (1, 'hunter2'),
    (2, 'correct horse battery staple');
INSERT INTO public.audit_log (actor, message) VALUES ('system', 'schema created');
REFRESH MATERIALIZED VIEW public.customer_stats;
`

// Deny are statements the read-only agent must not get past. Each one
// either writes, reads something other than public.orders and
// public.customers, runs code, or changes the session in a way warden
// refuses.
var Deny = []Case{
	// Plain writes, in every casing and disguise.
	{"delete", `DELETE FROM orders`},
	{"delete where", `DELETE FROM orders WHERE id = 1`},
	{"delete mixed case", `DeLeTe FrOm OrDeRs WhErE iD = 1`},
	{"delete comment prefix", `/* just a select */ DELETE FROM orders`},
	{"delete line comment prefix", "-- SELECT only\nDELETE FROM orders"},
	{"delete nested comment", `/* outer /* inner */ still a comment */ DELETE FROM orders`},
	{"delete comment as space", `DELETE/**/FROM/**/orders`},
	{"delete whitespace", "\n\tDELETE\n\tFROM\torders\r\n"},
	{"insert", `INSERT INTO orders (id, customer_id, amount) VALUES (100, 1, 1)`},
	{"update", `UPDATE orders SET amount = 0 WHERE id = 1`},
	{"update from secrets", `UPDATE orders SET note = s.value FROM secrets s WHERE s.id = orders.id`},
	{"delete using secrets", `DELETE FROM orders USING secrets s WHERE s.id = orders.id`},
	{"insert on conflict do update", `INSERT INTO orders (id, customer_id, amount) VALUES (1, 1, 1) ON CONFLICT (id) DO UPDATE SET amount = excluded.amount`},
	{"insert on conflict do nothing", `INSERT INTO orders (id, customer_id, amount) VALUES (1, 1, 1) ON CONFLICT DO NOTHING`},
	{"merge update", `MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN UPDATE SET note = 'merged'`},
	{"merge delete", `MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN DELETE`},

	// Multi-statement strings that fool naive splitters.
	{"multi select then delete", `SELECT 1; DELETE FROM orders`},
	{"multi no space", `SELECT 1;DELETE FROM orders`},
	{"multi comment semicolon", `SELECT 1; /* ; */ DELETE FROM orders`},
	{"multi dollar semicolon", `SELECT $$;$$; DELETE FROM orders`},
	{"multi tagged dollar", `SELECT $tag$ $$; $tag$; DELETE FROM orders`},
	{"multi string semicolon", `SELECT ';'; DELETE FROM orders`},
	{"multi quoted identifier semicolon", `SELECT 1 AS ";"; DELETE FROM orders`},
	{"multi escape string quote", `SELECT E'\';'; DELETE FROM orders`},
	{"multi backslash is not an escape", `SELECT 'a\'; DELETE FROM orders; --'`},
	{"multi unicode string", `SELECT U&'\0027;'; DELETE FROM orders`},
	{"multi allowed then secrets", `SELECT * FROM orders; SELECT * FROM secrets`},
	{"multi trailing drop", `SELECT * FROM orders WHERE note = 'x'; DROP TABLE secrets --'`},
	{"multi savepoint delete", `SAVEPOINT s1; DELETE FROM orders; ROLLBACK TO SAVEPOINT s1`},

	// Reading secrets through every syntactic position.
	{"select secrets", `SELECT * FROM secrets`},
	{"select secrets qualified", `SELECT value FROM public.secrets`},
	{"table secrets", `TABLE secrets`},
	{"subquery in where", `SELECT * FROM orders WHERE id IN (SELECT id FROM secrets)`},
	{"join", `SELECT o.id, s.value FROM orders o JOIN secrets s ON s.id = o.id`},
	{"lateral over secrets", `SELECT o.id, x.value FROM orders o, LATERAL (SELECT value FROM secrets s WHERE s.id = o.id) x`},
	{"union with secrets", `SELECT note FROM orders UNION ALL SELECT value FROM secrets`},
	{"exists over secrets", `SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM secrets WHERE value LIKE 'h%')`},
	{"scalar subquery in select list", `SELECT id, (SELECT value FROM secrets LIMIT 1) FROM orders`},
	{"subquery in function argument", `SELECT lower((SELECT value FROM secrets LIMIT 1))`},
	{"subquery in order by", `SELECT id FROM orders ORDER BY (SELECT max(value) FROM secrets)`},
	{"subquery in values", `VALUES ((SELECT value FROM secrets LIMIT 1))`},
	{"subquery in case", `SELECT CASE WHEN id = 1 THEN (SELECT value FROM secrets LIMIT 1) END FROM orders`},
	{"cte over secrets", `WITH s AS (SELECT * FROM secrets) SELECT * FROM s`},
	{"cte shadowing an allowed name", `WITH orders AS (SELECT * FROM secrets) SELECT * FROM orders`},
	{"nested cte", `WITH a AS (WITH b AS (SELECT * FROM secrets) SELECT * FROM b) SELECT * FROM a`},
	{"cte scope does not leak", `SELECT * FROM (WITH secrets AS (SELECT 1 AS id) SELECT * FROM secrets) inner_q, secrets`},
	{"unicode escaped identifier", `SELECT * FROM U&"secr\0065ts"`},
	{"quoted upper-case look-alike", `SELECT * FROM "ORDERS"`},
	{"view not granted", `SELECT * FROM order_totals`},
	{"sequence read", `SELECT last_value FROM invoice_seq`},
	{"pg_authid qualified", `SELECT rolname, rolpassword FROM pg_catalog.pg_authid`},
	{"pg_shadow unqualified", `SELECT * FROM pg_shadow`},
	{"pg_settings", `SELECT name, setting FROM pg_settings`},
	{"information_schema", `SELECT table_name FROM information_schema.tables`},
	{"declare cursor over secrets", `DECLARE c CURSOR FOR SELECT * FROM secrets`},
	{"explain analyze select secrets", `EXPLAIN ANALYZE SELECT * FROM secrets`},

	// Writable CTEs.
	{"writable cte delete", `WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone`},
	{"writable cte update", `WITH u AS (UPDATE orders SET amount = 0 RETURNING id) SELECT * FROM u`},
	{"writable cte insert", `WITH i AS (INSERT INTO orders (id, customer_id, amount) VALUES (101, 1, 5) RETURNING id) SELECT * FROM i`},

	// RETURNING tricks.
	{"update returning secrets", `UPDATE orders SET note = note WHERE id = 1 RETURNING (SELECT value FROM secrets LIMIT 1)`},
	{"insert select returning", `INSERT INTO audit_log (message) SELECT value FROM secrets RETURNING message`},
	{"delete returning", `DELETE FROM orders WHERE false RETURNING *`},

	// EXPLAIN, PREPARE/EXECUTE, cursors.
	{"explain analyze delete", `EXPLAIN ANALYZE DELETE FROM orders`},
	{"explain delete", `EXPLAIN DELETE FROM orders`},
	{"explain options analyze update", `EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET amount = 1`},
	{"prepare execute delete", `PREPARE d AS DELETE FROM orders; EXECUTE d`},
	{"prepare execute secrets", `PREPARE s AS SELECT * FROM secrets; EXECUTE s`},
	{"explain analyze execute delete", `PREPARE d2 AS DELETE FROM orders; EXPLAIN ANALYZE EXECUTE d2`},
	{"execute with side-effect parameter", `PREPARE q(bigint) AS SELECT * FROM orders WHERE id = $1; EXECUTE q(nextval('invoice_seq'))`},
	{"create table as execute", `PREPARE s2 AS SELECT * FROM orders; CREATE TABLE stolen2 AS EXECUTE s2`},

	// Code execution.
	{"do block", `DO $$ BEGIN DELETE FROM orders; END $$`},
	{"do language", `DO LANGUAGE plpgsql $body$ BEGIN PERFORM 1; END $body$`},
	{"call procedure", `CALL purge_orders()`},
	{"user function unqualified", `SELECT wipe()`},
	{"user function qualified", `SELECT public.wipe()`},
	{"user function in lateral", `SELECT * FROM orders, LATERAL (SELECT public.wipe()) w`},
	{"user function stable", `SELECT id, order_total(id) FROM customers`},

	// Side-effect and dangerous built-ins.
	{"nextval", `SELECT nextval('invoice_seq')`},
	{"nextval in where", `SELECT id FROM orders WHERE id < nextval('invoice_seq')`},
	{"nextval in order by", `SELECT id FROM orders ORDER BY nextval('invoice_seq')`},
	{"setval", `SELECT setval('invoice_seq', 1)`},
	{"pg_read_file", `SELECT pg_read_file('postgresql.conf')`},
	{"pg_read_file qualified upper", `SELECT PG_CATALOG.PG_READ_FILE('postgresql.conf', 0, 10)`},
	{"pg_read_file in values", `SELECT * FROM (VALUES (pg_read_file('postgresql.conf'))) v(x)`},
	{"pg_ls_dir", `SELECT * FROM pg_ls_dir('.')`},
	{"pg_ls_dir rows from", `SELECT * FROM ROWS FROM (pg_ls_dir('.')) AS t(name)`},
	{"pg_stat_file", `SELECT pg_stat_file('postgresql.conf')`},
	{"lo_import", `SELECT lo_import('/etc/passwd')`},
	{"query_to_xml delete", `SELECT query_to_xml('DELETE FROM orders RETURNING *', true, false, '')`},
	{"query_to_xml secrets", `SELECT query_to_xml('SELECT * FROM secrets', true, false, '')`},
	{"table_to_xml", `SELECT table_to_xml('secrets', true, false, '')`},
	{"ts_stat runs a query", `SELECT * FROM ts_stat('SELECT to_tsvector(value) FROM secrets')`},
	{"dblink", `SELECT * FROM dblink('dbname=postgres', 'DELETE FROM orders') AS t(r text)`},
	{"pg_sleep", `SELECT pg_sleep(0)`},
	{"pg_terminate_backend", `SELECT pg_terminate_backend(0)`},
	{"pg_cancel_backend", `SELECT pg_cancel_backend(0)`},
	{"pg_reload_conf", `SELECT pg_reload_conf()`},
	{"pg_notify", `SELECT pg_notify('orders_changed', 'x')`},
	{"advisory lock", `SELECT pg_advisory_xact_lock(42)`},

	// Session: identity, search_path, quoting rules, settings.
	{"set role", `SET ROLE pg_read_all_data`},
	{"set local role", `SET LOCAL ROLE pg_read_all_data`},
	{"reset role", `RESET ROLE`},
	{"set session authorization", `SET SESSION AUTHORIZATION DEFAULT`},
	{"set_config search_path", `SELECT set_config('search_path', 'evil, public', false)`},
	{"set_config role", `SELECT set_config('role', 'pg_read_all_data', true)`},
	{"set_config qualified", `SELECT pg_catalog.set_config('search_path', 'public', true)`},
	{"set search_path", `SET search_path = evil, public`},
	{"set local search_path", `SET LOCAL search_path TO pg_temp, public`},
	{"set schema", `SET SCHEMA 'public'`},
	{"set quoted search_path", `SET "search_path" = public`},
	{"set client_encoding sjis", `SET client_encoding = 'SJIS'`},
	{"set names big5", `SET NAMES 'BIG5'`},
	{"set standard_conforming_strings off", `SET standard_conforming_strings = off`},
	{"set backslash_quote on", `SET backslash_quote = on`},
	{"set session_replication_role", `SET session_replication_role = replica`},
	{"set unlisted setting", `SET log_statement = 'none'`},

	// Locks.
	{"lock table", `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`},
	{"select for update", `SELECT * FROM orders FOR UPDATE`},
	{"select for share of", `SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id FOR SHARE OF c`},
	{"select for no key update skip locked", `SELECT * FROM orders WHERE id = 1 FOR NO KEY UPDATE SKIP LOCKED`},

	// Creating, changing and dropping objects.
	{"select into", `SELECT * INTO stolen FROM orders`},
	{"create table as", `CREATE TABLE stolen AS SELECT * FROM orders`},
	{"create materialized view", `CREATE MATERIALIZED VIEW mv AS SELECT * FROM orders`},
	{"create temp table shadowing", `CREATE TEMP TABLE orders (id int)`},
	{"create temp view shadowing", `CREATE TEMP VIEW customers AS SELECT * FROM secrets`},
	{"create view over secrets", `CREATE VIEW leak AS SELECT * FROM secrets`},
	{"create function", `CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'`},
	{"create index", `CREATE INDEX ON orders (note)`},
	{"create schema", `CREATE SCHEMA evil`},
	{"alter table", `ALTER TABLE orders ADD COLUMN pwned boolean`},
	{"rename table", `ALTER TABLE orders RENAME TO orders_old`},
	{"comment on", `COMMENT ON TABLE orders IS 'pwned'`},
	{"drop table", `DROP TABLE secrets`},
	{"drop if exists", `DROP TABLE IF EXISTS nothing_here`},
	{"truncate", `TRUNCATE orders`},
	{"truncate cascade", `TRUNCATE customers CASCADE`},
	{"grant", `GRANT SELECT ON secrets TO PUBLIC`},
	{"revoke", `REVOKE SELECT ON orders FROM PUBLIC`},
	{"alter default privileges", `ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC`},
	{"create role", `CREATE ROLE warden_corpus_evil SUPERUSER`},
	{"alter role set", `ALTER ROLE CURRENT_USER SET work_mem = '64MB'`},
	{"create extension", `CREATE EXTENSION IF NOT EXISTS plpgsql`},

	// COPY.
	{"copy to program", `COPY orders TO PROGRAM 'cat > /dev/null'`},
	{"copy from program", `COPY orders FROM PROGRAM 'true'`},
	{"copy to file", `COPY secrets TO '/dev/null'`},
	{"copy from file", `COPY orders FROM '/dev/null'`},
	{"copy secrets to stdout", `COPY secrets TO STDOUT`},
	{"copy secrets query to stdout", `COPY (SELECT * FROM secrets) TO STDOUT`},
	{"copy from stdin", `COPY orders FROM STDIN`},

	// Utility commands.
	{"vacuum", `VACUUM orders`},
	{"analyze", `ANALYZE orders`},
	{"cluster", `CLUSTER orders USING orders_pkey`},
	{"reindex", `REINDEX TABLE orders`},
	{"refresh materialized view", `REFRESH MATERIALIZED VIEW customer_stats`},
	{"checkpoint", `CHECKPOINT`},
	{"listen", `LISTEN orders_changed`},
	{"notify", `NOTIFY orders_changed, 'x'`},
	{"load", `LOAD 'plpgsql'`},
	{"alter system", `ALTER SYSTEM SET work_mem = '1GB'`},
	{"prepare transaction", `PREPARE TRANSACTION 'warden-corpus'`},
}

// Allow are statements the read-only agent must be able to run.
var Allow = []Case{
	{"select orders", `SELECT * FROM orders`},
	{"select customers where", `SELECT id, name FROM customers WHERE id = 1`},
	{"upper-case unquoted name", `SELECT * FROM ORDERS`},
	{"quoted lower-case name", `SELECT * FROM "orders"`},
	{"schema-qualified", `SELECT * FROM public.orders`},
	{"join aggregate", `SELECT c.name, sum(o.amount) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY 2 DESC`},
	{"window functions", `SELECT id, amount, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC), sum(amount) OVER (ORDER BY created_at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM orders`},
	{"filter and ordered-set aggregates", `SELECT count(*) FILTER (WHERE amount > 10), percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM orders`},
	{"cte", `WITH big AS (SELECT * FROM orders WHERE amount > 10) SELECT b.id, c.email FROM big b JOIN customers c ON c.id = b.customer_id`},
	{"recursive cte", `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n`},
	{"cte named like a forbidden table", `WITH secrets AS (SELECT id FROM orders) SELECT * FROM secrets`},
	{"exists", `SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)`},
	{"lateral", `SELECT c.id, l.amount FROM customers c, LATERAL (SELECT amount FROM orders o WHERE o.customer_id = c.id ORDER BY amount DESC LIMIT 1) l`},
	{"union", `SELECT name FROM customers UNION SELECT note FROM orders`},
	{"case coalesce greatest nullif", `SELECT id, CASE WHEN amount > 50 THEN 'big' ELSE 'small' END, coalesce(note, '-'), greatest(amount, 1), nullif(note, '') FROM orders`},
	{"string functions", `SELECT upper(name), length(email), split_part(email, '@', 2), regexp_replace(name, 'a', 'b'), format('%s <%s>', name, email), md5(email) FROM customers`},
	{"date functions", `SELECT date_trunc('month', created_at), extract(year FROM created_at), to_char(amount, 'FM999.00'), round(amount), age(created_at) FROM orders`},
	{"json builders", `SELECT json_build_object('id', id, 'amount', amount), jsonb_agg(note) OVER (), row_to_json(o) FROM orders o`},
	{"json nested subquery", `SELECT jsonb_build_object('customer', c.name, 'orders', (SELECT json_agg(o.id) FROM orders o WHERE o.customer_id = c.id)) FROM customers c`},
	{"generate_series and now", `SELECT g, now(), current_date, gen_random_uuid() IS NOT NULL FROM generate_series(1, 3) AS g`},
	{"like escape", `SELECT * FROM customers WHERE email LIKE '%\_%' ESCAPE '\'`},
	{"values", `VALUES (1, 'a'), (2, 'b')`},
	{"select constant", `SELECT 1`},
	{"string literal with drop", `SELECT 'DROP TABLE orders' AS s FROM orders LIMIT 1`},
	{"string literal with doubled quote and delete", `SELECT 'a'';DELETE FROM orders--'`},
	{"comments containing delete", "SELECT id /* DELETE FROM orders; */ FROM orders -- DROP TABLE secrets"},
	{"line comment with semicolon", "SELECT 1 -- ; DELETE FROM orders"},
	{"dollar quote with delete", `SELECT $$; DELETE FROM orders; $$ AS text`},
	{"tagged dollar quote", `SELECT $q$ it's $$ fine; DROP TABLE secrets $q$`},
	{"escape string", `SELECT E'it\'s; DELETE FROM orders'`},
	{"multi two selects", `SELECT * FROM orders; SELECT * FROM customers`},
	{"transaction", `BEGIN; SELECT count(*) FROM orders; COMMIT`},
	{"transaction read only", `BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT * FROM orders; COMMIT`},
	{"savepoint", `BEGIN; SAVEPOINT a; SELECT 1; RELEASE SAVEPOINT a; ROLLBACK`},
	{"show", `SHOW statement_timeout`},
	{"set statement_timeout", `SET statement_timeout = '5s'`},
	{"set application_name", `SET application_name = 'agent'`},
	{"set time zone", `SET TIME ZONE 'UTC'`},
	{"set client_encoding utf8", `SET client_encoding = 'UTF8'`},
	{"reset all", `RESET ALL`},
	{"discard all", `DISCARD ALL`},
	{"explain select", `EXPLAIN SELECT * FROM orders WHERE id = 1`},
	{"prepare execute select", `PREPARE q AS SELECT * FROM orders WHERE id = $1; EXECUTE q(1); DEALLOCATE q`},
	{"cursor over orders", `BEGIN; DECLARE c CURSOR FOR SELECT * FROM orders; FETCH 2 FROM c; CLOSE c; COMMIT`},
	{"copy orders to stdout", `COPY orders TO STDOUT`},
	{"copy query to stdout", `COPY (SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id) TO STDOUT WITH (FORMAT csv)`},
}
