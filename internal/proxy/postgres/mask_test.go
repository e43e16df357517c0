package postgres_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/store"
)

const maskSchema = `
DROP VIEW IF EXISTS people_v;
DROP TABLE IF EXISTS people, notes;
CREATE TABLE people (id int PRIMARY KEY, name text, email text, ssn text, card text, bal bigint, prefs jsonb);
CREATE TABLE notes (id int PRIMARY KEY, body text);
CREATE VIEW people_v AS SELECT id, name, email AS contact FROM people;
INSERT INTO people VALUES
  (1, 'Zed', 'zed.secret@example.com', '219-09-9999', '4111111111111111', 424242421, '{"tier": "gold"}'),
  (2, 'Amy', 'amy.hidden@example.org', '078-05-1120', '5500005555555559', 737373731, null);
INSERT INTO notes VALUES
  (1, 'call ann.private@corp.example about card 4012 8888 8888 1881'),
  (2, 'order #123456789 shipped'),
  (3, 'nothing to see');
`

// secrets are the clear values that must never reach the client.
var secrets = []string{"zed.secret", "amy.hidden", "219-09-9999", "078-05-1120", "4111111111111111", "5500005555555559",
	"424242421", "737373731", "ann.private", "4012 8888 8888 1881", "4012888888881881"}

const maskPolicy = `
policies:
  - name: analysts
    when: '"analysts" in groups'
    allow:
      - target: app
        sql: { select: [public.people, public.notes, public.people_v] }
    mask:
      - target: app
        columns: [public.people.email, "*.ssn"]
        detectors: [email, credit_card, us_ssn]
        style: redact
      - target: app
        columns: [public.people.card, public.people.bal]
        style: hash
`

const maskExtra = `masking: { hash_key: "0123456789abcdef0123456789abcdef" }
`

func maskEnv(t *testing.T) *env {
	t.Helper()
	if _, err := direct(t).Exec(context.Background(), maskSchema, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, maskPolicy, maskExtra)
}

// collect runs q and returns every value as text, decoding each one with
// pgx (a masked binary value must still decode as its type).
func collect(t *testing.T, c *pgx.Conn, mode pgx.QueryExecMode, q string) (string, error) {
	rows, err := c.Query(context.Background(), q, mode)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return "", fmt.Errorf("a masked value does not decode: %w", err)
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "%v|", v)
		}
		for _, raw := range rows.RawValues() {
			b.Write(raw)
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

func TestMaskingQueryShapes(t *testing.T) {
	e := maskEnv(t)
	shapes := []string{
		"SELECT email FROM people",
		"SELECT * FROM people",
		"SELECT p.email AS e, p.ssn AS s FROM people p",
		"SELECT upper(email) FROM people",
		"SELECT email || '' FROM people",
		"SELECT email::varchar(100) FROM people",
		"SELECT substr(email, 1, 10), left(ssn, 7) FROM people",
		"SELECT (SELECT email FROM people LIMIT 1)",
		"SELECT e FROM (SELECT email AS e FROM people) s",
		"SELECT * FROM (SELECT * FROM people) s",
		"WITH x AS (SELECT email, ssn FROM people) SELECT * FROM x",
		"WITH x AS (SELECT upper(email) AS u FROM people) SELECT u FROM x",
		"SELECT email FROM people UNION SELECT 'x'",
		"SELECT ssn FROM people UNION ALL SELECT ssn FROM people",
		"SELECT ROW(email, ssn) FROM people",
		"SELECT row_to_json(p) FROM people p",
		"SELECT to_jsonb(p.*) FROM people p",
		"SELECT json_agg(p) FROM people p",
		"SELECT json_build_object('e', email) FROM people",
		"SELECT string_agg(email, ',') FROM people",
		"SELECT min(ssn), max(card) FROM people",
		"SELECT card, bal FROM people",
		"SELECT bal + 0 FROM people",
		"SELECT contact FROM people_v",
		"SELECT * FROM people_v",
		"SELECT body FROM notes",
		"SELECT 'x' || body FROM notes",
		"SELECT format('%s', email) FROM people",
		"SELECT CASE WHEN id = 1 THEN email ELSE ssn END FROM people",
		"SELECT array_agg(email) FROM people",
		"SELECT coalesce(email, 'none') FROM people",
		"SELECT email FROM people LIMIT 1",
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		c := e.connect(e.token("analyst-1", "analysts"))
		for _, q := range shapes {
			out, err := collect(t, c, mode, q)
			if err != nil {
				// Refusing a shape is allowed; leaking is not.
				if !strings.Contains(err.Error(), "warden") {
					t.Errorf("%s: %s: %v", mode, q, err)
				}
				continue
			}
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s: %s: clear value %q reached the client:\n%s", mode, q, s, out)
				}
			}
		}
		// Unmasked columns are intact.
		out, err := collect(t, c, mode, "SELECT id, name, prefs FROM people ORDER BY id")
		if err != nil || !strings.Contains(out, "Zed") || !strings.Contains(out, "Amy") || !strings.Contains(out, "gold") {
			t.Errorf("%s: unmasked columns: %v\n%s", mode, err, out)
		}
		out, err = collect(t, c, mode, "SELECT count(*) FROM people")
		if err != nil || !strings.HasPrefix(out, "2|") {
			t.Errorf("%s: count(*): %v %q", mode, err, out)
		}
		// A 9-digit order number in free text is not an SSN.
		out, _ = collect(t, c, mode, "SELECT body FROM notes WHERE id = 2")
		if !strings.Contains(out, "#123456789") {
			t.Errorf("%s: detector false positive: %q", mode, out)
		}
	}
	// The masked forms are what the rules say.
	c := e.connect(e.token("analyst-1", "analysts"))
	for q, want := range map[string]string{
		"SELECT email FROM people WHERE id = 1":     "[REDACTED]",
		"SELECT card FROM people WHERE id = 1":      "h:",
		"SELECT body FROM notes WHERE id = 1":       "call [REDACTED] about card [REDACTED]",
		"SELECT upper(email) FROM people LIMIT 1":   "[REDACTED]",
		"SELECT contact FROM people_v WHERE id = 1": "<nil>",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			out, err := collect(t, c, mode, q)
			if err != nil || !strings.Contains(out, want) {
				t.Errorf("%s: %s: want %q in %q (%v)", mode, q, want, out, err)
			}
		}
	}
	// hash keeps joins and counts working: equal inputs, equal outputs.
	a, _ := collect(t, c, pgx.QueryExecModeSimpleProtocol, "SELECT card FROM people WHERE id = 1")
	b, _ := collect(t, c, pgx.QueryExecModeSimpleProtocol, "SELECT card FROM people WHERE id = 1")
	if a == "" || a != b {
		t.Errorf("hash masking is not stable: %q vs %q", a, b)
	}
}

func TestMaskingRefusals(t *testing.T) {
	e := maskEnv(t)
	c := e.connect(e.token("analyst-1", "analysts"))
	for _, q := range []string{
		"SELECT name FROM people WHERE email = 'zed.secret@example.com'",
		"SELECT name FROM people WHERE ssn LIKE '219%'",
		"SELECT name FROM people ORDER BY email",
		"SELECT count(*) FROM people GROUP BY ssn",
		"SELECT name FROM people p JOIN notes n ON n.body = p.email",
		"COPY people TO STDOUT",
		"COPY (SELECT email FROM people) TO STDOUT",
		"DECLARE cur CURSOR WITH HOLD FOR SELECT * FROM people WHERE email LIKE 'z%'",
	} {
		_, err := c.Exec(context.Background(), q, pgx.QueryExecModeSimpleProtocol)
		if err == nil || !strings.Contains(err.Error(), "warden") {
			t.Errorf("%s: want a warden refusal, got %v", q, err)
		}
	}
}

// A cursor or a prepared statement does not launder a computed value.
func TestMaskingCursorsAndPrepared(t *testing.T) {
	e := maskEnv(t)
	ctx := context.Background()
	c := e.connect(e.token("analyst-1", "analysts"))
	for _, qs := range [][]string{
		{"BEGIN", "DECLARE cur CURSOR FOR SELECT upper(email), ssn FROM people", "FETCH ALL FROM cur", "COMMIT"},
		{"PREPARE p1 AS SELECT lower(email) || ssn FROM people", "EXECUTE p1", "DEALLOCATE p1"},
	} {
		for _, q := range qs {
			out, err := collect(t, c, pgx.QueryExecModeSimpleProtocol, q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s: clear value %q:\n%s", q, s, out)
				}
			}
		}
	}
	// The audit log says what was masked, never the clear values.
	evs, err := e.gw.Store.Query(ctx, store.Query{Kind: audit.KindResult, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || strings.Contains(ev.Reason, "masked")
		for _, s := range secrets {
			if strings.Contains(ev.Reason+ev.Request+ev.Error, s) {
				t.Errorf("clear value %q in the audit log: %+v", s, ev)
			}
		}
	}
	if !found {
		t.Error("no result record says what was masked")
	}
}

// psql, unchanged: text results through a masked session.
func TestMaskingPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed (make deps installs it)")
	}
	e := maskEnv(t)
	tok := e.token("analyst-1", "analysts")
	for _, q := range []string{
		"SELECT * FROM people",
		"SELECT row_to_json(p) FROM people p",
		"SELECT upper(email), lower(ssn) FROM people",
		"SELECT body FROM notes",
		"WITH x AS (SELECT * FROM people) SELECT x.* FROM x",
	} {
		cmd := exec.Command(psql, "-X", "-A", "-t", "-h", "127.0.0.1", "-p", itoa(e.port()), "-U", "analyst-1", "-d", "app", "-c", q)
		cmd.Env = append(cmd.Environ(), "PGPASSWORD="+tok, "PGSSLMODE=disable")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql %s: %v\n%s", q, err, out)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("psql %s: clear value %q:\n%s", q, s, out)
			}
		}
		if q == "SELECT * FROM people" && (!strings.Contains(string(out), "Zed") || !strings.Contains(string(out), "[REDACTED]")) {
			t.Errorf("psql %s: want clear names and redacted emails:\n%s", q, out)
		}
	}
}
