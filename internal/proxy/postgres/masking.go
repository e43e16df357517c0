package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/mask"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// Result masking (issue 5). A session whose subject has mask rules for its
// target gets a maskEngine; every other session pays nothing.
//
// Which column a result value came from is PostgreSQL's own answer: the
// table OID and attribute number in RowDescription, resolved through the
// catalog. A value the server cannot attribute (an expression, a
// function, a cast, an aggregate, a set operation) is masked whole if the
// statement could have carried a masked column into it — by the
// statement's parse tree — and, failing any way to know, masked anyway.
// In the extended protocol warden asks for the portal's RowDescription
// itself (an injected Describe, its answer not relayed) before each
// Execute, so the layout and the result formats are always the server's.
//
// The exception is an Execute of a mask-free statement (maskFree: no
// detectors, a statement warden knows, no computed column that could
// carry masked data, no relation read or written that has masked columns,
// directly or through a view) whose portal the client has just described
// itself, as libpq does before every Execute (pgx only when it has no
// description of the statement cached). The server's answer
// to the client's Describe is the portal's layout, as fresh as warden's
// own would be: warden checks it (layoutClear, which loads any relation
// it does not know, as plan does) instead of asking again, and relays the
// rows as they are, with no plan, unless the check finds a column to mask
// after all. Only the portal warden bound may be trusted that way: see
// session.execute.

// PostgreSQL type OIDs warden masks by kind (src/include/catalog/pg_type.dat).
const (
	oidBool    = 16
	oidChar    = 18
	oidName    = 19
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidJSON    = 114
	oidUnknown = 705
	oidBPChar  = 1042
	oidVarchar = 1043
	oidJSONB   = 3802
)

func textLike(oid uint32) bool {
	switch oid {
	case oidText, oidVarchar, oidBPChar, oidName, oidChar, oidUnknown:
		return true
	}
	return false
}

// maskEngine is a session's masking state: its rules, the target's
// catalog, and the maskers built from the rules.
type maskEngine struct {
	set     *policy.MaskSet
	cat     *catalog
	scanner *mask.Scanner // nil without detectors
	detect  mask.Masker   // how detector hits are masked
	hashKey []byte

	mu      sync.Mutex
	maskers map[policy.ColumnMask]mask.Masker

	// describes counts the Describes injected for this session's
	// Executes, and free the Executes relayed without one (tests read
	// both).
	describes, free atomic.Int64
}

// colAction is what to do with one result column.
type colAction struct {
	name   string // schema.table.column, or "?column?" for computed ones
	mask   bool
	masker mask.Masker
	detect bool // scan text values with the detectors
	typ    uint32
	format int16
}

// rowPlan is the masking plan of one result set.
type rowPlan struct {
	cols []colAction
	any  bool // some column needs work
}

func (e *maskEngine) masker(cm policy.ColumnMask) mask.Masker {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.maskers[cm]; ok {
		return m
	}
	m, err := mask.NewMasker(string(cm.Style), mask.Options{Replacement: cm.Replacement, Keep: cm.Keep, Key: e.hashKey})
	if err != nil {
		// Fail closed: a masker that cannot be built nulls the value.
		m, _ = mask.NewMasker("null", mask.Options{})
	}
	e.maskers[cm] = m
	return m
}

// nullMask is used when warden cannot tell what a column holds.
func (e *maskEngine) nullMask() mask.Masker {
	return e.masker(policy.ColumnMask{Style: "null", Rule: "builtin: unknown origin"})
}

// relMasked reports whether a relation has masked columns, directly or
// (for a view) through any relation it reads.
func (e *maskEngine) relMasked(ctx context.Context, schema, table string) (bool, error) {
	if e.set.Table(schema, table) {
		return true, nil
	}
	rel, err := e.cat.byQualifiedName(ctx, schema, table)
	if err != nil {
		return true, err
	}
	return e.readsMasked(rel), nil
}

// readsMasked reports whether rel (a view) reads a relation with masked
// columns; false for nil.
func (e *maskEngine) readsMasked(rel *relInfo) bool {
	if rel == nil {
		return false
	}
	for _, b := range rel.bases {
		s, t, _ := strings.Cut(b, ".")
		if e.set.Table(s, t) {
			return true
		}
	}
	return false
}

// maskFree reports whether no value in st's results can be one that
// masking would change, so that an Execute of it may be relayed as it is:
// no injected Describe, no plan, no per-row work. When in doubt it is
// not. It holds only if
//   - the session has no detectors (they scan every text value);
//   - st is known, and is not a FETCH or an EXECUTE (plan treats what
//     those return as unknown);
//   - leaks finds no computed column that could carry masked data (no
//     function outside the safe list, no output column of a masked
//     relation or of a view over one, every output reference placed);
//   - every relation st accesses, by any action (a SELECT's tables, an
//     INSERT ... RETURNING's target, ...), and every relation a column
//     reference names, exists and has no masked column, directly or
//     through the relations it reads.
//
// The answer is derived afresh for each portal from the catalog's cache,
// never kept beyond it. The catalog answers by name here, and a name
// may have come to mean another relation (a view dropped and created
// again) before its entry expires; plan would notice, by the new OID in
// the RowDescription. So maskFree alone never lets rows through: the
// portal's layout must also pass layoutClear.
func (e *maskEngine) maskFree(ctx context.Context, st *sqlfacts.Statement) bool {
	if e.scanner != nil || st == nil || st.Kind == "fetch" || st.ExecuteName != "" {
		return false
	}
	if _, leaks := e.leaks(ctx, st); leaks {
		return false
	}
	for _, a := range st.Accesses {
		if !e.relClear(ctx, a.Object) {
			return false
		}
	}
refs:
	for _, ref := range st.Columns {
		for _, a := range st.Accesses {
			if a.Object == ref.Table {
				continue refs // checked above
			}
		}
		if !e.relClear(ctx, ref.Table) {
			return false
		}
	}
	return true
}

// layoutClear reports whether plan would find nothing to do for a
// RowDescription of st (a mask-free statement), without building the
// plan: every column that names its table is a known column of a
// relation with no masked column, directly or through what it reads, and
// no computed column can carry masked data.
func (e *maskEngine) layoutClear(ctx context.Context, rd *pgproto3.RowDescription, st *sqlfacts.Statement) bool {
	if e.scanner != nil {
		return false
	}
	computedDone := false
	for _, f := range rd.Fields {
		if f.TableOID == 0 {
			if !computedDone {
				if _, leaks := e.leaks(ctx, st); leaks {
					return false
				}
				computedDone = true
			}
			continue
		}
		rel, err := e.cat.byOID(ctx, f.TableOID)
		if err != nil || rel == nil {
			return false
		}
		// Stricter than plan, which looks at the one column: any
		// masked column of the relation, and it is not clear.
		if _, ok := rel.cols[int16(f.TableAttributeNumber)]; !ok || e.set.Table(rel.schema, rel.name) || e.readsMasked(rel) {
			return false
		}
	}
	return true
}

// relClear reports whether the relation "schema.name" exists and has no
// masked column, directly or (a view) through any relation it reads:
// relMasked false, without error, for a relation the catalog knows.
// (MaskSet.Table holds for every table any column rule can match.)
func (e *maskEngine) relClear(ctx context.Context, qualified string) bool {
	schema, table, ok := strings.Cut(qualified, ".")
	if !ok || e.set.Table(schema, table) {
		return false
	}
	rel, err := e.cat.byQualifiedName(ctx, schema, table)
	return err == nil && rel != nil && !e.readsMasked(rel)
}

// leaks reports whether a computed output column of st could carry a
// masked value, and how to mask it.
func (e *maskEngine) leaks(ctx context.Context, st *sqlfacts.Statement) (policy.ColumnMask, bool) {
	strongest := policy.ColumnMask{Style: "null", Rule: "builtin: computed from masked data"}
	if st == nil {
		return strongest, true // warden does not know the statement: fail closed
	}
	for _, a := range st.Accesses {
		if a.Action == sqlfacts.Execute {
			// A function warden does not know may return anything.
			return strongest, true
		}
	}
	for _, ref := range st.Columns {
		if ref.Clause != sqlfacts.ClauseOutput {
			continue // only output references can reach a result column
		}
		schema, table, ok := strings.Cut(ref.Table, ".")
		if !ok {
			return strongest, true
		}
		if ref.Column == "*" {
			if m, _ := e.relMasked(ctx, schema, table); m {
				return strongest, true
			}
			continue
		}
		if cm, ok := e.set.Column(schema, table, ref.Column); ok {
			return cm, true
		}
		if m, _ := e.relMasked(ctx, schema, table); m && !e.set.Table(schema, table) {
			return strongest, true // a column of a view over masked data
		}
	}
	return policy.ColumnMask{}, false
}

// plan builds the masking plan for a RowDescription of statement st.
func (e *maskEngine) plan(ctx context.Context, rd *pgproto3.RowDescription, st *sqlfacts.Statement) *rowPlan {
	if st != nil && (st.Kind == "fetch" || st.ExecuteName != "") {
		st = nil // a cursor's or prepared statement's query: not known here
	}
	p := &rowPlan{cols: make([]colAction, len(rd.Fields))}
	computedDone := false
	var computedMask policy.ColumnMask
	var computedLeaks bool
	for i, f := range rd.Fields {
		c := &p.cols[i]
		c.typ, c.format = f.DataTypeOID, f.Format
		c.name = string(f.Name)
		if f.TableOID == 0 {
			if !computedDone {
				computedMask, computedLeaks = e.leaks(ctx, st)
				computedDone = true
			}
			if computedLeaks {
				c.mask, c.masker = true, e.masker(computedMask)
				c.name = "(computed) " + c.name
			}
		} else {
			rel, err := e.cat.byOID(ctx, f.TableOID)
			switch {
			case err != nil || rel == nil:
				c.mask, c.masker = true, e.nullMask()
			default:
				col := rel.cols[int16(f.TableAttributeNumber)]
				c.name = rel.schema + "." + rel.name + "." + col
				if cm, ok := e.set.Column(rel.schema, rel.name, col); ok {
					c.mask, c.masker = true, e.masker(cm)
				} else if len(rel.bases) > 0 {
					for _, b := range rel.bases {
						s, t, _ := strings.Cut(b, ".")
						if e.set.Table(s, t) {
							// A view column over masked data: warden
							// cannot tell which base column it is.
							c.mask, c.masker = true, e.masker(policy.ColumnMask{Style: "null", Rule: "builtin: view over masked data"})
							break
						}
					}
				}
			}
		}
		if !c.mask && e.scanner != nil && (textLike(c.typ) || c.typ == oidJSON || (c.typ == oidJSONB && c.format == 0)) {
			c.detect = true
		}
		p.any = p.any || c.mask || c.detect
	}
	return p
}

// maskCounts counts masked values per column for the audit record.
type maskCounts map[string]int64

func (m maskCounts) String() string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("masked:")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s×%d", k, m[k])
	}
	return b.String()
}

// row rewrites one DataRow body by the plan. It returns the body to send
// (out, reused) and whether anything changed. A malformed row is nulled
// whole rather than passed through.
func (e *maskEngine) row(body []byte, p *rowPlan, out []byte, counts maskCounts) ([]byte, bool) {
	if len(body) < 2 {
		return body, false
	}
	n := int(binary.BigEndian.Uint16(body))
	if n != len(p.cols) {
		// The layout is not the one planned for: fail closed.
		return nullRow(n, out), true
	}
	out = append(out[:0], body[:2]...)
	pos, changed := 2, false
	for i := 0; i < n; i++ {
		if pos+4 > len(body) {
			return nullRow(n, out), true
		}
		l := int(int32(binary.BigEndian.Uint32(body[pos:])))
		pos += 4
		var val []byte
		isNull := l < 0
		if !isNull {
			if pos+l > len(body) {
				return nullRow(n, out), true
			}
			val = body[pos : pos+l]
			pos += l
		}
		c := &p.cols[i]
		if isNull || (!c.mask && !c.detect) {
			out = appendValue(out, val, isNull)
			continue
		}
		if c.mask {
			nv, nnull := maskValue(c, val)
			out = appendValue(out, nv, nnull)
			counts[c.name]++
			changed = true
			continue
		}
		// Detectors over a text value not masked by a column rule.
		s := string(val)
		if c.typ == oidJSONB && c.format == 1 {
			out = appendValue(out, val, false)
			continue
		}
		red, hits := e.scanner.Redact(s, e.detect)
		if hits == 0 {
			out = appendValue(out, val, false)
			continue
		}
		out = appendValue(out, []byte(red), false)
		counts["detector:"+c.name] += int64(hits)
		changed = true
	}
	return out, changed
}

func appendValue(out, val []byte, isNull bool) []byte {
	if isNull {
		return binary.BigEndian.AppendUint32(out, 0xFFFFFFFF)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(val)))
	return append(out, val...)
}

func nullRow(n int, out []byte) []byte {
	out = binary.BigEndian.AppendUint16(out[:0], uint16(n))
	for i := 0; i < n; i++ {
		out = binary.BigEndian.AppendUint32(out, 0xFFFFFFFF)
	}
	return out
}

// maskValue masks one value so that it still decodes as its column's
// type, in the column's format: text types get the masked text, JSON a
// JSON string, integers a stable hash (style hash) or NULL, anything
// else NULL.
func maskValue(c *colAction, val []byte) ([]byte, bool) {
	m := c.masker
	if m.Null() {
		return nil, true
	}
	switch {
	case textLike(c.typ):
		return []byte(m.Mask(string(val))), false
	case c.typ == oidJSON || c.typ == oidJSONB:
		raw := val
		if c.typ == oidJSONB && c.format == 1 {
			if len(raw) == 0 {
				return nil, true
			}
			raw = raw[1:] // version byte
		}
		b, _ := json.Marshal(m.Mask(string(raw)))
		if c.typ == oidJSONB && c.format == 1 {
			b = append([]byte{1}, b...)
		}
		return b, false
	case c.typ == oidInt2 || c.typ == oidInt4 || c.typ == oidInt8:
		if !m.Numeric() {
			return nil, true
		}
		// Hash the canonical text form, so text and binary agree.
		text := val
		if c.format == 1 {
			var v int64
			switch len(val) {
			case 2:
				v = int64(int16(binary.BigEndian.Uint16(val)))
			case 4:
				v = int64(int32(binary.BigEndian.Uint32(val)))
			case 8:
				v = int64(binary.BigEndian.Uint64(val))
			default:
				return nil, true
			}
			text = strconv.AppendInt(nil, v, 10)
		}
		h := m.HashInt64(text)
		switch c.typ {
		case oidInt2:
			h = int64(int16(h))
		case oidInt4:
			h = int64(int32(h))
		}
		if c.format == 0 {
			return strconv.AppendInt(nil, h, 10), false
		}
		switch c.typ {
		case oidInt2:
			return binary.BigEndian.AppendUint16(nil, uint16(h)), false
		case oidInt4:
			return binary.BigEndian.AppendUint32(nil, uint32(h)), false
		default:
			return binary.BigEndian.AppendUint64(nil, uint64(h)), false
		}
	}
	return nil, true
}

// check returns why st must be refused while masking applies, or "": a
// masked column in a predicate (WHERE ssn LIKE '1%' reveals a digit at a
// time) unless its rule allows predicates, and COPY of masked data (COPY
// carries rows warden does not rewrite).
func (e *maskEngine) check(ctx context.Context, st *sqlfacts.Statement) (rule, why string) {
	if st.Kind == "copy" {
		if e.scanner != nil {
			return "builtin: masking", "COPY is not available while masking applies to this session; use SELECT"
		}
		for _, ref := range st.Columns {
			schema, table, _ := strings.Cut(ref.Table, ".")
			if m, _ := e.relMasked(ctx, schema, table); m || ref.Table == "" {
				return "builtin: masking", fmt.Sprintf("COPY of %s, which has masked columns, is not available; use SELECT", ref.Table)
			}
		}
	}
	for _, ref := range st.Columns {
		if ref.Clause != sqlfacts.ClausePredicate {
			continue
		}
		schema, table, ok := strings.Cut(ref.Table, ".")
		if !ok {
			continue
		}
		if ref.Column == "*" {
			if m, _ := e.relMasked(ctx, schema, table); m {
				return "builtin: masking", fmt.Sprintf("a whole row of %s, which has masked columns, is used in a predicate", ref.Table)
			}
			continue
		}
		if cm, ok := e.set.Column(schema, table, ref.Column); ok {
			if !cm.AllowPredicates {
				return cm.Rule, fmt.Sprintf("masked column %s.%s is used in a predicate (WHERE, JOIN, ORDER BY, GROUP BY, HAVING); its rule does not allow that", ref.Table, ref.Column)
			}
			continue
		}
		if !e.set.Table(schema, table) {
			if m, _ := e.relMasked(ctx, schema, table); m {
				return "builtin: masking", fmt.Sprintf("column %s.%s of a view over masked data is used in a predicate", ref.Table, ref.Column)
			}
		}
	}
	return "", ""
}
