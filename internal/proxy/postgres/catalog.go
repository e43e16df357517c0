package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// catalog answers "which column is this?" for result masking: it maps
// the table OID and attribute number that RowDescription carries
// ("55.7 Message Formats", RowDescription) to schema, table and column
// names, and tells views (whose columns hide their base tables) apart. It
// uses one metadata connection per target, opened on first use and
// reused, and caches answers for a while: OIDs are stable, names change
// only by DDL.
type catalog struct {
	cfg *pgconn.Config
	ttl time.Duration

	mu      sync.Mutex
	conn    *pgconn.PgConn // guarded by mu; nil until first use or after an error
	rels    map[uint32]*relInfo
	byName  map[string]*relInfo  // "schema.table"
	missing map[string]time.Time // "schema.table" found not to exist, and when
}

// relInfo is one relation as the catalog describes it.
type relInfo struct {
	oid    uint32
	schema string
	name   string
	kind   byte             // pg_class.relkind: r, v, m, p, f, ...
	cols   map[int16]string // attnum → name
	bases  []string         // for views and materialized views: every relation they read, transitively ("schema.table")
	loaded time.Time
}

func newCatalog(cfg *pgconn.Config) *catalog {
	return &catalog{cfg: cfg, ttl: catalogTTL, rels: make(map[uint32]*relInfo), byName: make(map[string]*relInfo), missing: make(map[string]time.Time)}
}

// catalogTTL is how long an answer is reused. DDL in another session (a
// view redefined in place over a masked table keeps its OID) is seen once
// the cached answer expires, so this is the window in which masking can
// go by a relation's old definition; each refresh is one small catalog
// query per relation in use.
const catalogTTL = 5 * time.Second

func (c *catalog) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close(context.Background())
		c.conn = nil
	}
}

// byOID returns the relation with this OID.
func (c *catalog) byOID(ctx context.Context, oid uint32) (*relInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rels[oid]; r != nil && time.Since(r.loaded) < c.ttl {
		return r, nil
	}
	r, err := c.loadLocked(ctx, "c.oid = $1::oid", fmt.Sprint(oid))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// byQualifiedName returns the relation "schema.table", or nil if there is
// none.
func (c *catalog) byQualifiedName(ctx context.Context, schema, table string) (*relInfo, error) {
	key := schema + "." + table
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.byName[key]; r != nil && time.Since(r.loaded) < c.ttl {
		return r, nil
	}
	if at, ok := c.missing[key]; ok && time.Since(at) < c.ttl {
		return nil, nil // a relation created since is seen once this expires
	}
	r, err := c.loadLocked(ctx, "n.nspname = $1 AND c.relname = $2", schema, table)
	if err != nil {
		return nil, err
	}
	if r == nil {
		delete(c.byName, key)
		if len(c.missing) >= maxMissing {
			clear(c.missing)
		}
		c.missing[key] = time.Now()
	} else {
		delete(c.missing, key)
	}
	return r, nil
}

// maxMissing bounds the negative answers kept: names come from clients.
const maxMissing = 4096

// loadLocked reads one relation (by a WHERE condition over parameters)
// and, for a view, the relations it reads.
func (c *catalog) loadLocked(ctx context.Context, where string, args ...string) (*relInfo, error) {
	if c.conn == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgconn.ConnectConfig(ctx, c.cfg)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("catalog: connect: %w", err)
		}
		c.conn = conn
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q := `SELECT c.oid, n.nspname, c.relname, c.relkind::text, coalesce(a.attnum, 0), coalesce(a.attname::text, '')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE ` + where
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := c.conn.ExecParams(ctx, q, params, nil, nil, nil).Read()
	if res.Err != nil {
		c.conn.Close(context.Background())
		c.conn = nil
		return nil, fmt.Errorf("catalog: %w", res.Err)
	}
	if len(res.Rows) == 0 {
		return nil, nil
	}
	r := &relInfo{cols: make(map[int16]string), loaded: time.Now()}
	for _, row := range res.Rows {
		var oid uint64
		fmt.Sscan(string(row[0]), &oid)
		r.oid = uint32(oid)
		r.schema, r.name = string(row[1]), string(row[2])
		if len(row[3]) > 0 {
			r.kind = row[3][0]
		}
		var attnum int16
		fmt.Sscan(string(row[4]), &attnum)
		if attnum > 0 {
			r.cols[attnum] = string(row[5])
		}
	}
	if r.kind == 'v' || r.kind == 'm' {
		// Every relation the view's rewrite rule depends on, followed
		// through views of views.
		dq := fmt.Sprintf(`WITH RECURSIVE deps(oid) AS (
  SELECT %d::oid
  UNION
  SELECT d.refobjid FROM deps
  JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = deps.oid
  JOIN pg_catalog.pg_depend d ON d.objid = rw.oid AND d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
)
SELECT DISTINCT n.nspname, c.relname FROM deps JOIN pg_catalog.pg_class c ON c.oid = deps.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE deps.oid <> %d`, r.oid, r.oid)
		dres := c.conn.ExecParams(ctx, dq, nil, nil, nil, nil).Read()
		if dres.Err != nil {
			c.conn.Close(context.Background())
			c.conn = nil
			return nil, fmt.Errorf("catalog: view dependencies: %w", dres.Err)
		}
		for _, row := range dres.Rows {
			r.bases = append(r.bases, string(row[0])+"."+string(row[1]))
		}
	}
	c.rels[r.oid] = r
	c.byName[r.schema+"."+r.name] = r
	return r, nil
}
