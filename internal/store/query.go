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
	Subject  string // exact match
	Target   string // exact match
	Decision string // exact match (audit.Allow, audit.Deny, audit.Error)
	Kind     string // exact match (audit.Kind*)

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
	request, request_hash, stmt_kind, decision, policy, rule, reason, error`

// Query returns the events matching q, in id order (descending if
// q.Newest). It reads from a snapshot and never blocks the writer.
func (s *SQLite) Query(ctx context.Context, q Query) ([]audit.Event, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	for _, f := range []struct{ col, val string }{
		{"subject", q.Subject}, {"target", q.Target}, {"decision", q.Decision}, {"kind", q.Kind},
	} {
		if f.val != "" {
			add(f.col+" = ?", f.val)
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
		if err := scanEvent(rows, &ev, nil, nil); err != nil {
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

// scanEvent reads one row of selectEvent (plus prev_hash and hash when
// prev is non-nil) into ev.
func scanEvent(rows *sql.Rows, ev *audit.Event, prev, hash *[]byte) error {
	var ts, groups string
	dest := []any{
		&ev.ID, &ts, &ev.Kind, &ev.SessionID, &ev.Protocol, &ev.Target, &ev.Client,
		&ev.Subject, &ev.Issuer, &groups, &ev.TokenID,
		&ev.Request, &ev.RequestHash, &ev.StmtKind, &ev.Decision, &ev.Policy, &ev.Rule, &ev.Reason, &ev.Error,
	}
	if prev != nil {
		dest = append(dest, prev, hash)
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
// checks every record's hash, its link to the record before it, that ids
// are contiguous, and that the last record matches audit_chain_head.
//
// It returns the number of records that verified. If the chain is broken,
// firstBad is the id of the first bad record (altered, or missing) and err
// is an *audit.ChainError (errors.Is(err, audit.ErrChainBroken)). For any
// other failure firstBad is 0 and err says what went wrong. A nil error
// means the whole chain verified.
func (s *SQLite) Verify(ctx context.Context) (checked, firstBad int64, err error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, 0, fmt.Errorf("store: verify: begin: %w", err)
	}
	defer tx.Rollback() // read-only; nothing to keep

	// The head is read first: SQLite takes the read snapshot at the first
	// SELECT of the transaction, so head and rows are from the same one.
	var headID int64
	var headHash []byte
	if err := tx.QueryRowContext(ctx, `SELECT last_id, last_hash FROM audit_chain_head WHERE singleton = 1`).Scan(&headID, &headHash); err != nil {
		return 0, 0, fmt.Errorf("store: verify: read chain head: %w", err)
	}
	rows, err := tx.QueryContext(ctx, selectEvent+", prev_hash, hash FROM audit_events ORDER BY id")
	if err != nil {
		return 0, 0, fmt.Errorf("store: verify: %w", err)
	}
	defer rows.Close()

	var v audit.ChainVerifier
	broken := func(err error) (int64, int64, error) {
		var ce *audit.ChainError
		if errors.As(err, &ce) {
			return v.Checked(), ce.ID, fmt.Errorf("store: verify: %w", err)
		}
		return v.Checked(), 0, fmt.Errorf("store: verify: %w", err)
	}
	for rows.Next() {
		var ev audit.Event
		var prev, hash []byte
		if err := scanEvent(rows, &ev, &prev, &hash); err != nil {
			if !errors.Is(err, errBadRow) {
				return broken(err)
			}
			// A row edited into something undecodable: let the verifier
			// report a missing predecessor first, as it would for any row.
			if cerr := v.Next(&ev, prev, hash); cerr != nil {
				return broken(cerr)
			}
			return broken(&audit.ChainError{ID: ev.ID, Reason: err.Error()})
		}
		if err := v.Next(&ev, prev, hash); err != nil {
			return broken(err)
		}
	}
	if err := rows.Err(); err != nil {
		return broken(err)
	}
	if err := v.Finish(headID, headHash); err != nil {
		return broken(err)
	}
	return v.Checked(), 0, nil
}
