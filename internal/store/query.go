package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// Query selects audit events. Empty fields do not filter; set fields are
// combined with AND.
type Query struct {
	Subject   string   // exact match
	Target    string   // exact match
	Decision  string   // exact match (audit.Allow, audit.Deny, audit.Error)
	Kind      string   // exact match (audit.Kind*)
	Kinds     []string // any of these kinds; with Kind, both must match
	SessionID string   // exact match: one client connection's records

	Since time.Time // Time >= Since; zero: unbounded
	Until time.Time // Time < Until; zero: unbounded

	Text string // substring of Request, case-sensitive, no wildcards

	// AfterID returns only events with ID > AfterID: pass the last ID of
	// one page to get the next (ids only grow, so pages never skip or
	// repeat an event, unlike offsets).
	AfterID int64
	// BeforeID, if non-zero, returns only events with ID < BeforeID; with
	// Newest it pages backwards.
	BeforeID int64
	// Newest orders results by descending ID (the tail of the log) instead
	// of ascending.
	Newest bool

	// Limit bounds the result; 0 or less means DefaultQueryLimit, and it is capped
	// at MaxQueryLimit so one request cannot read the whole log into memory.
	Limit int
}

// Query result bounds.
const (
	DefaultQueryLimit = 100
	MaxQueryLimit     = 1000
)

const selectEvent = `SELECT id, time, kind, session_id, protocol, target, client,
	subject, issuer, groups, token_id,
	request, request_hash, stmt_kind, decision, policy, rule, reason, error,
	seq, fingerprint, params_hash, duration_us, row_count, byte_count, http_status`

// selectLink follows selectEvent when the chain link is wanted too.
const selectLink = `, hash_version, prev_hash, hash`

// link is a record's place in the hash chain, as stored.
type link struct {
	version    int
	prev, hash []byte
}

// Query returns the events matching q, in id order (descending if
// q.Newest). It reads from a snapshot and never blocks the writer.
func (s *SQLite) Query(ctx context.Context, q Query) ([]audit.Event, error) {
	if err := s.waitIndexed(ctx); err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	for _, f := range []struct{ col, val string }{
		{"subject", q.Subject}, {"target", q.Target}, {"decision", q.Decision}, {"kind", q.Kind},
		{"session_id", q.SessionID},
	} {
		if f.val != "" {
			add(f.col+" = ?", f.val)
		}
	}
	if len(q.Kinds) > 0 {
		where = append(where, "kind IN (?"+strings.Repeat(", ?", len(q.Kinds)-1)+")")
		for _, k := range q.Kinds {
			args = append(args, k)
		}
	}
	if !q.Since.IsZero() {
		add("time >= ?", q.Since.UTC().Format(timeLayout))
	}
	if !q.Until.IsZero() {
		add("time < ?", q.Until.UTC().Format(timeLayout))
	}
	if q.Text != "" {
		// instr, not LIKE: no wildcard escaping to get wrong, and
		// case-sensitive like the SQL it searches.
		add("instr(request, ?) > 0", q.Text)
	}
	if q.AfterID > 0 {
		add("id > ?", q.AfterID)
	}
	if q.BeforeID > 0 {
		add("id < ?", q.BeforeID)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	limit = min(limit, MaxQueryLimit)

	var sb strings.Builder
	sb.WriteString(selectEvent)
	sb.WriteString(" FROM audit_events")
	if len(where) > 0 {
		sb.WriteString(" WHERE ")
		sb.WriteString(strings.Join(where, " AND "))
	}
	if q.Newest {
		sb.WriteString(" ORDER BY id DESC")
	} else {
		sb.WriteString(" ORDER BY id")
	}
	sb.WriteString(" LIMIT ?")
	args = append(args, limit)

	rows, err := s.rdb.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var ev audit.Event
		if err := scanEvent(rows, &ev, nil); err != nil {
			return nil, fmt.Errorf("store: query: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	return out, nil
}

// errBadRow marks a stored row that cannot be decoded (edited by hand):
// Verify reports it as a broken record rather than as an I/O failure.
var errBadRow = errors.New("undecodable row")

// scanEvent reads one row of selectEvent (plus selectLink when l is not
// nil) into ev.
func scanEvent(rows *sql.Rows, ev *audit.Event, l *link) error {
	var ts, groups string
	dest := []any{
		&ev.ID, &ts, &ev.Kind, &ev.SessionID, &ev.Protocol, &ev.Target, &ev.Client,
		&ev.Subject, &ev.Issuer, &groups, &ev.TokenID,
		&ev.Request, &ev.RequestHash, &ev.StmtKind, &ev.Decision, &ev.Policy, &ev.Rule, &ev.Reason, &ev.Error,
		&ev.Seq, &ev.Fingerprint, &ev.ParamsHash, &ev.DurationUS, &ev.Rows, &ev.Bytes, &ev.Status,
	}
	if l != nil {
		dest = append(dest, &l.version, &l.prev, &l.hash)
	}
	if err := rows.Scan(dest...); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return fmt.Errorf("%w: record %d: time: %w", errBadRow, ev.ID, err)
	}
	ev.Time = t.UTC()
	if err := json.Unmarshal([]byte(groups), &ev.Groups); err != nil {
		return fmt.Errorf("%w: record %d: groups: %w", errBadRow, ev.ID, err)
	}
	return nil
}

// Verify walks the whole audit chain in id order inside one read
// transaction (a consistent snapshot; the writer is not blocked) and
// checks every record's hash under the version stored with it, its link
// to the record before it, that ids are contiguous from the chain's start,
// and that the last record matches audit_chain_head.
//
// The chain starts at record 1, or, once Prune has deleted a prefix, at
// the anchor Prune recorded (audit_chain_anchor). An anchor must be the
// one stated by the last KindPrune record in the chain, so that deleting
// more of the prefix and rewriting the anchor to match is detected as
// well as deleting the anchor row (the chain then no longer starts at 1).
//
// It returns the number of records that verified. If the chain is broken,
// firstBad is the id of the first bad record (altered, or missing) and err
// is an *audit.ChainError (errors.Is(err, audit.ErrChainBroken)). For any
// other failure firstBad is 0 and err says what went wrong. A nil error
// means the whole chain verified.
func (s *SQLite) Verify(ctx context.Context) (checked, firstBad int64, err error) {
	if err := s.waitIndexed(ctx); err != nil {
		return 0, 0, fmt.Errorf("store: verify: %w", err)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, 0, fmt.Errorf("store: verify: begin: %w", err)
	}
	defer tx.Rollback() // read-only; nothing to keep

	// The head is read first: SQLite takes the read snapshot at the first
	// SELECT of the transaction, so head, anchor and rows are from the
	// same one.
	var headID int64
	var headHash []byte
	if err := tx.QueryRowContext(ctx, `SELECT last_id, last_hash FROM audit_chain_head WHERE singleton = 1`).Scan(&headID, &headHash); err != nil {
		return 0, 0, fmt.Errorf("store: verify: read chain head: %w", err)
	}
	anc, err := readAnchor(ctx, tx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: verify: %w", err)
	}
	// Every row, not only those from the anchor on: a row below the
	// anchor is out of place and reported as such.
	rows, err := tx.QueryContext(ctx, selectEvent+selectLink+" FROM audit_events ORDER BY id")
	if err != nil {
		return 0, 0, fmt.Errorf("store: verify: %w", err)
	}
	defer rows.Close()

	var v audit.ChainVerifier
	if anc.present {
		v.Start(anc.firstID, anc.prev)
	}
	broken := func(err error) (int64, int64, error) {
		var ce *audit.ChainError
		if errors.As(err, &ce) {
			return v.Checked(), ce.ID, fmt.Errorf("store: verify: %w", err)
		}
		return v.Checked(), 0, fmt.Errorf("store: verify: %w", err)
	}
	var attested *anchor // stated by the last prune record seen
	for rows.Next() {
		var ev audit.Event
		var l link
		if err := scanEvent(rows, &ev, &l); err != nil {
			if !errors.Is(err, errBadRow) {
				return broken(err)
			}
			// A row edited into something undecodable: let the verifier
			// report a missing predecessor first, as it would for any row.
			if cerr := v.NextVersion(l.version, &ev, l.prev, l.hash); cerr != nil {
				return broken(cerr)
			}
			return broken(&audit.ChainError{ID: ev.ID, Reason: err.Error()})
		}
		if err := v.NextVersion(l.version, &ev, l.prev, l.hash); err != nil {
			return broken(err)
		}
		if ev.Kind == audit.KindPrune {
			a, ok := parseAnchor(ev.Request)
			if !ok { // only Prune writes this kind, and the hash vouches for it
				return broken(&audit.ChainError{ID: ev.ID, Reason: "prune record does not state an anchor"})
			}
			attested = &a
		}
	}
	if err := rows.Err(); err != nil {
		return broken(err)
	}
	if err := v.Finish(headID, headHash); err != nil {
		return broken(err)
	}
	if anc.present {
		if err := checkAttested(anc, attested); err != nil {
			return broken(err)
		}
	}
	return v.Checked(), 0, nil
}
