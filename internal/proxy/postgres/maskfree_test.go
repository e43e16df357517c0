package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/proxy/postgres"
)

// Mask-free Executes: a statement that cannot return a masked value,
// whose portal the client has described itself (libpq always does, pgx in
// QueryExecModeExec and ExecPrepared), is relayed without warden's own
// Describe and without a masking plan. These tests check that values are
// masked exactly where they must be whatever runs before or after such a
// statement, and that the Describe is skipped only where it may be.

const maskFreeSchema = `
DROP VIEW IF EXISTS mf_view;
DROP TABLE IF EXISTS mf_plain, mf_secret, mf_log;
CREATE TABLE mf_plain (id int PRIMARY KEY, label text, n bigint);
CREATE TABLE mf_secret (id int PRIMARY KEY, email text, card text);
CREATE TABLE mf_log (id int, note text);
CREATE VIEW mf_view AS SELECT id, label AS v FROM mf_plain;
INSERT INTO mf_plain VALUES (1, 'plain-one', 11), (2, 'plain-two', 22), (3, 'mail bob.visible@example.net', 33);
INSERT INTO mf_secret VALUES (1, 'one.secret@example.com', '4111111111111111'), (2, 'two.secret@example.com', '5500005555555559');
`

// mfSecrets are the masked values that must never reach the client.
var mfSecrets = []string{"one.secret", "two.secret", "ONE.SECRET", "TWO.SECRET"}

const maskFreePolicy = `
policies:
  - name: analysts
    when: '"analysts" in groups'
    allow:
      - target: app
        sql:
          select: [public.mf_plain, public.mf_secret, public.mf_view, public.mf_log]
          insert: [public.mf_log]
    mask:
      - target: app
        columns: [public.mf_secret.email]
        style: redact
`

// maskFreeDetectorPolicy is maskFreePolicy with a detector: then every
// text value is scanned, and no Execute is mask-free.
const maskFreeDetectorPolicy = maskFreePolicy + `        detectors: [email]
`

func maskFreeEnv(t *testing.T, policyYAML string) *env {
	t.Helper()
	if _, err := direct(t).Exec(context.Background(), maskFreeSchema, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, policyYAML, maskExtra)
}

// maskCounter reads how many Describes warden injected and how many
// Executes it relayed as mask-free since the last call.
type maskCounter struct {
	e                *env
	describes, frees int64
}

func (c *maskCounter) delta() (describes, free int64) {
	d, f := postgres.MaskCounts(c.e.gw.PG)
	describes, free = d-c.describes, f-c.frees
	c.describes, c.frees = d, f
	return describes, free
}

func noSecrets(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range mfSecrets {
		if strings.Contains(out, s) {
			t.Errorf("%s: masked value %q reached the client: %q", what, s, out)
		}
	}
}

// Which statements are mask-free, and that their values are what they
// are while the others' are masked.
func TestMaskFreeStatements(t *testing.T) {
	e := maskFreeEnv(t, maskFreePolicy)
	c := e.connect(e.token("analyst-1", "analysts"))
	mc := &maskCounter{e: e}
	mc.delta()
	cases := []struct {
		sql  string
		free bool
		want string // in the result
	}{
		{"SELECT label FROM mf_plain WHERE id = 1", true, "plain-one"},
		{"SELECT upper(label), n + 1 FROM mf_plain WHERE id = 1", true, "PLAIN-ONE|12"},
		{"SELECT * FROM mf_plain WHERE id = 2", true, "plain-two"},
		{"SELECT v FROM mf_view WHERE id = 1", true, "plain-one"},
		{"SELECT 41::int + 1", true, "42"},
		{"INSERT INTO mf_log VALUES (1, 'logged') RETURNING note", true, "logged"},
		// The masked column itself.
		{"SELECT email FROM mf_secret WHERE id = 1", false, "[REDACTED]"},
		{"SELECT upper(email) FROM mf_secret WHERE id = 1", false, "[REDACTED]"},
		// No masked column in the result, but a relation with masked
		// columns is read: not mask-free (the plan decides).
		{"SELECT id FROM mf_secret WHERE id = 1", false, "1"},
		{"SELECT p.label FROM mf_plain p JOIN mf_secret s ON s.id = p.id WHERE p.id = 1", false, "plain-one"},
		{"SELECT label FROM mf_plain WHERE id IN (SELECT id FROM mf_secret) AND id = 1", false, "plain-one"},
		{"INSERT INTO mf_log SELECT id, 'copied' FROM mf_secret WHERE id = 1 RETURNING note", false, "copied"},
	}
	// QueryExecModeExec describes the portal before each Execute;
	// QueryExecModeCacheStatement does not, so warden always does.
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		for _, tc := range cases {
			out, err := collect(t, c, mode, tc.sql)
			if err != nil {
				t.Errorf("%s: %s: %v", mode, tc.sql, err)
				continue
			}
			noSecrets(t, tc.sql, out)
			if !strings.Contains(out, tc.want) {
				t.Errorf("%s: %s: want %q in %q", mode, tc.sql, tc.want, out)
			}
			describes, free := mc.delta()
			switch {
			case tc.free && mode == pgx.QueryExecModeExec && (describes != 0 || free != 1):
				t.Errorf("%s: %s: want mask-free (no Describe injected), got %d Describes, %d mask-free", mode, tc.sql, describes, free)
			case (!tc.free || mode != pgx.QueryExecModeExec) && (describes != 1 || free != 0):
				t.Errorf("%s: %s: want one injected Describe, got %d Describes, %d mask-free", mode, tc.sql, describes, free)
			}
		}
	}
}

// Mask-free and masked Executes in one pipelined batch (pgx sends the
// Bind and Execute of each query, and but for QueryExecModeCacheStatement
// a Parse and a Describe too, then one Sync): each result masked exactly where it must be, and
// warden's Describe skipped only for the mask-free ones the client
// described.
func TestMaskFreePipelinedBatch(t *testing.T) {
	e := maskFreeEnv(t, maskFreePolicy)
	ctx := context.Background()
	const plain = "SELECT id, label FROM mf_plain WHERE id = $1"
	const secret = "SELECT id, email FROM mf_secret WHERE id = $1"
	steps := []struct {
		sql  string
		id   int
		want string
	}{
		{plain, 1, "plain-one"}, {secret, 1, "[REDACTED]"}, {plain, 2, "plain-two"},
		{secret, 2, "[REDACTED]"}, {plain, 1, "plain-one"},
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec} {
		cfg, err := pgx.ParseConfig(e.connString(e.token("analyst-1", "analysts")))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mc := &maskCounter{e: e}
		mc.delta()
		for round := 0; round < 2; round++ { // the second with pgx's caches warm
			b := &pgx.Batch{}
			got := make([]string, len(steps))
			for i, s := range steps {
				b.Queue(s.sql, s.id).QueryRow(func(r pgx.Row) error {
					var id int
					var v *string
					if err := r.Scan(&id, &v); err != nil {
						return err
					}
					got[i] = fmt.Sprint(id, "|", deref(v))
					return nil
				})
			}
			if err := c.SendBatch(ctx, b).Close(); err != nil {
				t.Fatalf("%s: batch: %v", mode, err)
			}
			for i, s := range steps {
				if want := fmt.Sprint(s.id, "|", s.want); got[i] != want {
					t.Errorf("%s, round %d: step %d (%s): got %q, want %q", mode, round, i, s.sql, got[i], want)
				}
			}
			// Only QueryExecModeCacheStatement leaves the Describe out
			// (pgx has the statement's description).
			wantDescribes, wantFree := int64(2), int64(3)
			if mode == pgx.QueryExecModeCacheStatement {
				wantDescribes, wantFree = 5, 0
			}
			if describes, free := mc.delta(); describes != wantDescribes || free != wantFree {
				t.Errorf("%s, round %d: want %d injected Describes and %d mask-free Executes, got %d and %d", mode, round, wantDescribes, wantFree, describes, free)
			}
		}
		c.Close(ctx)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// rawConn is a connection through warden driven message by message, for
// what pgx never sends: Executes with no Describe of the client's, row
// limits, named portals, SQL cursors reached by Execute.
type rawConn struct {
	t  *testing.T
	pc *pgconn.PgConn
}

func (e *env) raw(token string) *rawConn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, e.connString(token))
	if err != nil {
		e.t.Fatalf("connect through warden: %v", err)
	}
	e.t.Cleanup(func() { pc.Close(context.Background()) })
	return &rawConn{t: e.t, pc: pc}
}

// run sends msgs and returns a transcript of the answers up to the last
// ReadyForQuery they cause: "D:v1|v2" for a DataRow (NULL as <nil>),
// "C:tag", "s" (PortalSuspended), "E:code", "T" (RowDescription), "Z";
// ParseComplete, BindComplete and the like are left out.
func (r *rawConn) run(msgs ...pgproto3.FrontendMessage) []string {
	r.t.Helper()
	fe := r.pc.Frontend()
	ends := 0
	for _, m := range msgs {
		fe.Send(m)
		switch m.(type) {
		case *pgproto3.Sync, *pgproto3.Query:
			ends++
		}
	}
	if err := fe.Flush(); err != nil {
		r.t.Fatal(err)
	}
	r.pc.Conn().SetReadDeadline(time.Now().Add(30 * time.Second))
	defer r.pc.Conn().SetReadDeadline(time.Time{})
	var out []string
	for ends > 0 {
		m, err := fe.Receive()
		if err != nil {
			r.t.Fatalf("receive: %v (so far %q)", err, out)
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			vals := make([]string, len(m.Values))
			for i, v := range m.Values {
				if v == nil {
					vals[i] = "<nil>"
				} else {
					vals[i] = string(v)
				}
			}
			out = append(out, "D:"+strings.Join(vals, "|"))
		case *pgproto3.CommandComplete:
			out = append(out, "C:"+string(m.CommandTag))
		case *pgproto3.PortalSuspended:
			out = append(out, "s")
		case *pgproto3.ErrorResponse:
			out = append(out, "E:"+m.Code)
		case *pgproto3.RowDescription:
			out = append(out, "T")
		case *pgproto3.ReadyForQuery:
			out = append(out, "Z")
			ends--
		}
	}
	return out
}

func (r *rawConn) expect(what string, got []string, want ...string) {
	r.t.Helper()
	if !slices.Equal(got, want) {
		r.t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
	noSecrets(r.t, what, strings.Join(got, "\n"))
}

func bind(portal, stmt string) *pgproto3.Bind {
	return &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
}

func execute(portal string, maxRows uint32) *pgproto3.Execute {
	return &pgproto3.Execute{Portal: portal, MaxRows: maxRows}
}

func describe(portal string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'P', Name: portal}
}

// Raw extended-protocol batches: the only RowDescriptions are the
// client's own Describes and warden's. A mask-free Execute's rows must not
// be planned by a masked statement's leftover plan (which would mangle
// them), nor a masked Execute's rows go unplanned, across row limits,
// Executes the client did not describe, and errors in the middle of a
// batch.
func TestMaskFreeRawPipeline(t *testing.T) {
	e := maskFreeEnv(t, maskFreePolicy)
	r := e.raw(e.token("analyst-1", "analysts"))
	mc := &maskCounter{e: e}
	r.expect("prepare", r.run(
		&pgproto3.Parse{Name: "plain", Query: "SELECT id, label FROM mf_plain ORDER BY id"},
		&pgproto3.Parse{Name: "secret", Query: "SELECT id, email FROM mf_secret ORDER BY id"},
		&pgproto3.Parse{Name: "plain_div", Query: "SELECT id, label, 10 / (2 - id) FROM mf_plain ORDER BY id"},
		&pgproto3.Parse{Name: "secret_div", Query: "SELECT id, email, 10 / (2 - id) FROM mf_secret ORDER BY id"},
		&pgproto3.Sync{},
	), "Z")
	mc.delta()

	// One batch: a portal read a row at a time, interleaved with masked
	// Executes, then whole results back to back.
	r.expect("row limits", r.run(
		bind("pp", "plain"),
		describe("pp"),
		execute("pp", 1), // mask-free
		execute("pp", 1), // still: nothing else ran
		bind("", "secret"),
		describe(""),
		execute("", 1), // masked (the client's Describe notwithstanding)
		execute("pp", 1),
		bind("", "plain"),
		describe(""),
		execute("", 0), // mask-free, right after a masked result
		bind("", "secret"),
		execute("", 0), // masked, right after a mask-free one
		bind("", "plain"),
		execute("", 0), // not described by the client: warden does
		&pgproto3.Sync{},
	),
		"T", "D:1|plain-one", "s",
		"D:2|plain-two", "s",
		"T", "D:1|[REDACTED]", "s",
		"D:3|mail bob.visible@example.net", "s",
		"T", "D:1|plain-one", "D:2|plain-two", "D:3|mail bob.visible@example.net", "C:SELECT 3",
		"D:1|[REDACTED]", "D:2|[REDACTED]", "C:SELECT 2",
		"D:1|plain-one", "D:2|plain-two", "D:3|mail bob.visible@example.net", "C:SELECT 3",
		"Z")
	// pp after the masked Execute is described by warden: another
	// statement ran since its Bind, so warden no longer vouches for it.
	if d, f := mc.delta(); d != 4 || f != 3 {
		t.Errorf("row limits: want 4 injected Describes and 3 mask-free Executes, got %d and %d", d, f)
	}

	// An error in the middle of a mask-free result, then of a masked
	// one; what follows each is skipped, and the next batch starts clean.
	r.expect("error in a mask-free result", r.run(
		bind("", "secret"),
		execute("", 0),
		bind("", "plain_div"),
		describe(""),
		execute("", 0),
		bind("", "secret"),
		execute("", 0), // skipped
		&pgproto3.Sync{},
		bind("", "plain"),
		describe(""),
		execute("", 2),
		&pgproto3.Sync{},
	),
		"D:1|[REDACTED]", "D:2|[REDACTED]", "C:SELECT 2",
		"T", "D:1|plain-one|10", "E:22012",
		"Z",
		"T", "D:1|plain-one", "D:2|plain-two", "s",
		"Z")
	r.expect("error in a masked result", r.run(
		bind("", "secret_div"),
		execute("", 0),
		bind("", "plain"),
		describe(""),
		execute("", 0), // skipped
		&pgproto3.Sync{},
		bind("", "plain"),
		describe(""),
		execute("", 1),
		bind("", "secret"),
		execute("", 1),
		&pgproto3.Sync{},
	),
		"D:1|[REDACTED]|<nil>", "E:22012",
		"Z",
		"T", "D:1|plain-one", "s",
		"D:1|[REDACTED]", "s",
		"Z")
	// (Executes skipped after an error are counted too: warden decides
	// before the server skips them.)
	if d, f := mc.delta(); d != 4 || f != 4 {
		t.Errorf("errors: want 4 injected Describes and 4 mask-free Executes, got %d and %d", d, f)
	}

	// Simple-protocol queries are unchanged: planned from their own
	// RowDescription, one statement at a time.
	r.expect("simple Query", r.run(
		&pgproto3.Query{String: "SELECT id, email FROM mf_secret WHERE id = 1; SELECT id, label FROM mf_plain WHERE id = 1"},
	),
		"T", "D:1|[REDACTED]", "C:SELECT 1",
		"T", "D:1|plain-one", "C:SELECT 1",
		"Z")
}

// A view dropped and created again over a masked table, under the same
// name, between two Executes of the same prepared statement (Bind,
// Describe, Execute, as libpq and pgconn.ExecPrepared send them): the
// catalog still has the old view by name, but the layout the client's
// Describe gets names the new one, and its column comes back masked.
// Redefined in place (CREATE OR REPLACE VIEW, the same OID), the view is
// seen anew once the catalog reloads it (its TTL, forced here): nothing
// about a statement's being mask-free outlives the catalog's answers.
func TestMaskFreeViewRedefined(t *testing.T) {
	e := maskFreeEnv(t, maskFreePolicy)
	ctx := context.Background()
	pc := e.raw(e.token("analyst-1", "analysts")).pc
	if _, err := pc.Prepare(ctx, "mfv", "SELECT v FROM mf_view WHERE id = $1", nil); err != nil {
		t.Fatal(err)
	}
	mc := &maskCounter{e: e}
	read := func() string {
		res := pc.ExecPrepared(ctx, "mfv", [][]byte{[]byte("1")}, nil, nil).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if len(res.Rows) != 1 || res.Rows[0][0] == nil {
			return "<nil>"
		}
		return string(res.Rows[0][0])
	}
	mc.delta()
	if v := read(); v != "plain-one" {
		t.Fatalf("before: got %q", v)
	}
	if d, f := mc.delta(); d != 0 || f != 1 {
		t.Errorf("before: want mask-free, got %d Describes, %d mask-free", d, f)
	}
	for _, tc := range []struct {
		ddl    string
		expire bool
	}{
		{"DROP VIEW mf_view; CREATE VIEW mf_view AS SELECT id, email AS v FROM mf_secret", false},
		{"CREATE OR REPLACE VIEW mf_view AS SELECT id, label AS v FROM mf_plain", true},
		{"CREATE OR REPLACE VIEW mf_view AS SELECT id, email AS v FROM mf_secret", true},
	} {
		if _, err := direct(t).Exec(ctx, tc.ddl, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
		if tc.expire {
			postgres.ExpireCatalog(e.gw.PG, "app")
		}
		v := read()
		mc.delta()
		masked := strings.Contains(tc.ddl, "mf_secret")
		if masked && v != "<nil>" {
			t.Errorf("%s: got %q, want the column of a view over masked data nulled", tc.ddl, v)
		}
		if !masked && v != "plain-one" {
			t.Errorf("%s: got %q", tc.ddl, v)
		}
	}
}

// With detectors every text value is scanned: no Execute is mask-free.
func TestMaskFreeNotWithDetectors(t *testing.T) {
	e := maskFreeEnv(t, maskFreeDetectorPolicy)
	c := e.connect(e.token("analyst-1", "analysts"))
	mc := &maskCounter{e: e}
	mc.delta()
	out, err := collect(t, c, pgx.QueryExecModeExec, "SELECT id, label FROM mf_plain ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "bob.visible") || !strings.Contains(out, "mail [REDACTED]") || !strings.Contains(out, "plain-one") {
		t.Errorf("detectors: %q", out)
	}
	if d, f := mc.delta(); d != 1 || f != 0 {
		t.Errorf("detectors: want one injected Describe, got %d Describes, %d mask-free", d, f)
	}
}

// A portal name warden tracks may come to mean a SQL cursor: the named
// portal dies with its transaction (or is closed by SQL CLOSE) and
// DECLARE makes a cursor of the same name, which Execute then reads.
// Warden must not take that cursor for the statement it bound, neither to
// skip masking (mask-free) nor to judge its computed columns. And a
// cursor warden never saw bound is masked as unknown.
func TestMaskingPortalNameReused(t *testing.T) {
	e := maskFreeEnv(t, maskFreePolicy)
	r := e.raw(e.token("analyst-1", "analysts"))
	r.expect("prepare", r.run(
		&pgproto3.Parse{Name: "plain", Query: "SELECT id, label FROM mf_plain ORDER BY id"},
		&pgproto3.Parse{Name: "plain_upper", Query: "SELECT id, upper(label) FROM mf_plain ORDER BY id"},
		&pgproto3.Sync{},
	), "Z")

	for _, tc := range []struct{ stmt, cursor, want string }{
		// The bound statement is mask-free; the cursor reads the masked column.
		{"plain", "SELECT id, email FROM mf_secret ORDER BY id", "D:1|[REDACTED]"},
		// The bound statement computes from unmasked data; the cursor
		// computes from masked data.
		{"plain_upper", "SELECT id, upper(email) FROM mf_secret ORDER BY id", "D:1|<nil>"},
	} {
		// Outside a transaction block the portal dies at Sync.
		r.expect(tc.stmt+": bind", r.run(bind("p1", tc.stmt), &pgproto3.Sync{}), "Z")
		r.expect(tc.stmt+": declare", r.run(&pgproto3.Query{String: "BEGIN; DECLARE p1 CURSOR FOR " + tc.cursor}), "C:BEGIN", "C:DECLARE CURSOR", "Z")
		r.expect(tc.stmt+": execute after transaction end", r.run(describe("p1"), execute("p1", 1), &pgproto3.Sync{}), "T", tc.want, "s", "Z")
		r.expect(tc.stmt+": commit", r.run(&pgproto3.Query{String: "COMMIT"}), "C:COMMIT", "Z")

		// Inside one: SQL CLOSE, then DECLARE.
		r.expect(tc.stmt+": begin", r.run(&pgproto3.Query{String: "BEGIN"}), "C:BEGIN", "Z")
		r.expect(tc.stmt+": bind in transaction", r.run(bind("p2", tc.stmt), &pgproto3.Sync{}), "Z")
		r.expect(tc.stmt+": close and declare", r.run(&pgproto3.Query{String: "CLOSE p2; DECLARE p2 CURSOR FOR " + tc.cursor}), "C:CLOSE CURSOR", "C:DECLARE CURSOR", "Z")
		r.expect(tc.stmt+": execute after CLOSE", r.run(describe("p2"), execute("p2", 1), &pgproto3.Sync{}), "T", tc.want, "s", "Z")
		r.expect(tc.stmt+": commit", r.run(&pgproto3.Query{String: "COMMIT"}), "C:COMMIT", "Z")
	}

	// A cursor warden never saw bound, read by Execute.
	r.expect("declare", r.run(&pgproto3.Query{String: "BEGIN; DECLARE c3 CURSOR FOR SELECT id, email, upper(email) FROM mf_secret ORDER BY id"}), "C:BEGIN", "C:DECLARE CURSOR", "Z")
	r.expect("execute a SQL cursor", r.run(execute("c3", 0), &pgproto3.Sync{}),
		"D:1|[REDACTED]|<nil>", "D:2|[REDACTED]|<nil>", "C:SELECT 2", "Z")
	r.expect("commit", r.run(&pgproto3.Query{String: "COMMIT"}), "C:COMMIT", "Z")
}

// A relation looked up before it existed is not "missing" for good: once
// the catalog's answer expires (forced here), a view created since over a
// masked table masks what it computes from it.
func TestMaskingRelationCreatedAfterLookup(t *testing.T) {
	policy := strings.Replace(maskFreePolicy, "public.mf_log]", "public.mf_log, public.mf_new]", 1)
	e := maskFreeEnv(t, policy)
	ctx := context.Background()
	if _, err := direct(t).Exec(ctx, "DROP VIEW IF EXISTS mf_new", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct(t).Exec(context.Background(), "DROP VIEW IF EXISTS mf_new", pgx.QueryExecModeSimpleProtocol)
	})
	c := e.connect(e.token("analyst-1", "analysts"))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		if _, err := c.Exec(ctx, "SELECT upper(v) FROM mf_new WHERE id = 1", mode); err == nil {
			t.Fatal("a query of a relation that does not exist succeeded")
		}
	}
	if _, err := direct(t).Exec(ctx, "CREATE VIEW mf_new AS SELECT id, email AS v FROM mf_secret", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	postgres.ExpireCatalog(e.gw.PG, "app")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		rows, err := c.Query(ctx, "SELECT upper(v) FROM mf_new", mode)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := pgx.CollectRows(rows, pgx.RowTo[*string])
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		for _, v := range vals {
			if v != nil {
				out.WriteString(*v + "\n")
			}
		}
		noSecrets(t, mode.String(), strings.ToLower(out.String()))
	}
}
