package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/warden-gateway/warden/internal/audit"
)

// errExportFilter is returned by Export for a query it cannot honour
// without leaving holes in the chain.
var errExportFilter = errors.New("only Since, Until, AfterID, BeforeID and Limit apply to an export; filter the exported lines instead")

// Export writes a contiguous stretch of the audit chain to w as JSON
// lines, one audit.ExportLine per record (the event's fields plus
// hash_version, prev_hash and hash, hex), in id order, so that whoever
// receives it (a SIEM, an auditor) can re-verify it offline with
// audit.VerifyLines. It returns the number of records written.
//
// An export is a stretch of the chain, never a selection from it, since a
// hole would read as tampering. So q may set only range fields; any other
// filter, or Newest, is an error:
//
//   - Since: start at the first record whose time is not before Since;
//   - Until: end at the last record whose time is before Until;
//   - AfterID, BeforeID: narrow the range by id, as in Query;
//   - Limit: at most this many records, from the start of the range;
//     0 or less means no limit (MaxQueryLimit does not apply).
//
// Records inside the range are all written even if their own time lies
// outside it: times are only nearly in id order across concurrent
// sessions.
//
// The records come from one read snapshot, streamed row by row, so memory
// stays constant, the writer is never blocked, and a concurrent Prune
// cannot cut a hole in the export. (While the snapshot is open SQLite
// cannot checkpoint past it, so the WAL grows with what is written
// meanwhile.) A row that cannot be decoded (edited
// by hand) ends the export with an error matching audit.ErrChainBroken;
// other tampering is exported as stored, for VerifyLines to find. w is
// written through a buffer; on error, n counts the records handed to it,
// not necessarily delivered.
func (s *SQLite) Export(ctx context.Context, w io.Writer, q Query) (n int64, err error) {
	if q.Subject != "" || q.Target != "" || q.Decision != "" || q.Kind != "" || len(q.Kinds) > 0 ||
		q.SessionID != "" || q.Text != "" || q.Newest {
		return 0, fmt.Errorf("store: export: %w", errExportFilter)
	}
	if err := s.waitIndexed(ctx); err != nil {
		return 0, fmt.Errorf("store: export: %w", err)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("store: export: begin: %w", err)
	}
	defer tx.Rollback() // read-only; nothing to keep

	lo, hi := q.AfterID+1, int64(math.MaxInt64)
	if q.BeforeID > 0 {
		hi = q.BeforeID - 1
	}
	// Both bounds come from the time index; the stretch between them is
	// then read by primary key.
	if !q.Since.IsZero() {
		var id sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(id) FROM audit_events WHERE time >= ?`,
			q.Since.UTC().Format(timeLayout)).Scan(&id); err != nil {
			return 0, fmt.Errorf("store: export: %w", err)
		}
		if !id.Valid {
			return 0, nil // nothing that recent
		}
		lo = max(lo, id.Int64)
	}
	if !q.Until.IsZero() {
		var id sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(id) FROM audit_events WHERE time < ?`,
			q.Until.UTC().Format(timeLayout)).Scan(&id); err != nil {
			return 0, fmt.Errorf("store: export: %w", err)
		}
		if !id.Valid {
			return 0, nil // nothing that old
		}
		hi = min(hi, id.Int64)
	}
	if lo > hi {
		return 0, nil
	}
	query := selectEvent + selectLink + " FROM audit_events WHERE id >= ? AND id <= ? ORDER BY id"
	args := []any{lo, hi}
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("store: export: %w", err)
	}
	defer rows.Close()

	bw := bufio.NewWriterSize(w, 64<<10)
	for rows.Next() {
		var ev audit.Event
		var l link
		if err := scanEvent(rows, &ev, &l); err != nil {
			if errors.Is(err, errBadRow) { // edited by hand: the chain is broken here
				err = &audit.ChainError{ID: ev.ID, Reason: err.Error()}
			}
			return n, fmt.Errorf("store: export: %w", err)
		}
		line, err := audit.NewExportLine(l.version, &ev, l.prev, l.hash).MarshalLine()
		if err != nil {
			return n, fmt.Errorf("store: export: %w", err)
		}
		if _, err := bw.Write(line); err != nil {
			return n, fmt.Errorf("store: export: write: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("store: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("store: export: write: %w", err)
	}
	return n, nil
}
