package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// Retention deletes only a prefix of the chain, never a record in the
// middle: a hole would be indistinguishable from tampering. After a prune
// the chain starts at an anchor (audit_chain_anchor: the id of the first
// remaining record and the prev_hash it carries), and Verify starts there.
// In the same transaction Prune appends a record of kind audit.KindPrune
// stating the new anchor, so the anchor is itself covered by the hash
// chain: rewriting the anchor row to hide a deleted stretch breaks the
// match with the last prune record, and deleting the anchor row makes the
// chain start at record 1 again, which is missing.

// pruneChunk bounds the records one background prune transaction deletes,
// so the writer goroutine, which the audit path shares, is never busy with
// retention for long: about 20ms per chunk on a laptop SSD, against 100ms
// for 10,000. Each chunk is a complete prune with its own prune record,
// one per 2,000 records deleted.
const pruneChunk = 2_000

// anchor is where a pruned chain starts.
type anchor struct {
	present bool // false: no row, the chain starts at genesis
	firstID int64
	prev    []byte
}

func readAnchor(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (anchor, error) {
	a := anchor{present: true}
	err := q.QueryRowContext(ctx, `SELECT first_id, prev_hash FROM audit_chain_anchor WHERE singleton = 1`).Scan(&a.firstID, &a.prev)
	if errors.Is(err, sql.ErrNoRows) {
		return anchor{firstID: 1, prev: audit.GenesisHash}, nil
	}
	if err != nil {
		return anchor{}, fmt.Errorf("read chain anchor: %w", err)
	}
	return a, nil
}

// formatAnchor is the Request of a prune record.
func formatAnchor(a anchor) string {
	return "first_id=" + strconv.FormatInt(a.firstID, 10) + " prev_hash=" + hex.EncodeToString(a.prev)
}

func parseAnchor(s string) (anchor, bool) {
	id, prev, ok := strings.Cut(s, " ")
	if !ok {
		return anchor{}, false
	}
	id, ok1 := strings.CutPrefix(id, "first_id=")
	prev, ok2 := strings.CutPrefix(prev, "prev_hash=")
	if !ok1 || !ok2 {
		return anchor{}, false
	}
	a := anchor{present: true}
	var err error
	if a.firstID, err = strconv.ParseInt(id, 10, 64); err != nil || a.firstID < 2 {
		return anchor{}, false
	}
	if a.prev, err = hex.DecodeString(prev); err != nil || len(a.prev) != audit.HashSize {
		return anchor{}, false
	}
	return a, true
}

// checkAttested compares the stored anchor with the one the last prune
// record in the chain states (nil if there is none).
func checkAttested(stored anchor, attested *anchor) error {
	switch {
	case attested == nil:
		// The newest prune record always has an id at or after the anchor
		// it states, so it cannot have been pruned legitimately.
		return &audit.ChainError{ID: 1, Reason: fmt.Sprintf(
			"the chain starts at record %d, but no prune record in it says records before it were pruned", stored.firstID)}
	case attested.firstID < stored.firstID:
		return &audit.ChainError{ID: attested.firstID, Reason: fmt.Sprintf(
			"record missing (the last prune record puts the chain's start at %d, the anchor at %d)", attested.firstID, stored.firstID)}
	case attested.firstID > stored.firstID || !bytes.Equal(attested.prev, stored.prev):
		return &audit.ChainError{ID: stored.firstID, Reason: "the chain anchor differs from the one the last prune record states"}
	}
	return nil
}

// Prune deletes, in one transaction, the oldest audit records whose time
// is before the given time: the records from the start of the chain up to,
// not including, the first record that is not older, so that only a prefix
// is ever deleted (records are in id order, and times are almost but not
// strictly in id order across concurrent sessions). It records the new
// anchor and appends a record of kind audit.KindPrune stating it (see the
// comment at the top of this file), and returns how many records it
// deleted.
//
// Prune first verifies every record it is about to delete and the link to
// the first one it keeps, and deletes nothing if they do not verify: the
// records are the evidence of the tampering. The error then matches
// audit.ErrChainBroken. Like Record, it runs on the writer goroutine, so a
// large prune delays audit commits while it runs (about 10ms per 1,000
// records); Options.Retention prunes in chunks of at most 2,000 records
// instead. Run from a second process on the file of a running gateway (a
// CLI), a long prune holds SQLite's write lock, and the gateway's commits
// fail once they have waited BusyTimeout: prefer Options.Retention in the
// gateway.
func (s *SQLite) Prune(ctx context.Context, before time.Time) (deleted int64, err error) {
	return s.prune(ctx, before, 0)
}

// prune deletes at most limit records (0: no limit); see Prune.
func (s *SQLite) prune(ctx context.Context, before time.Time, limit int64) (deleted int64, err error) {
	err = s.doChain(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.pruneTx(ctx, tx, before, limit)
		deleted = n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	return deleted, nil
}

func (s *SQLite) pruneTx(ctx context.Context, tx *sql.Tx, before time.Time, limit int64) (int64, error) {
	start, err := readAnchor(ctx, tx)
	if err != nil {
		return 0, err
	}
	var headID int64
	var headHash []byte
	if err := tx.QueryRowContext(ctx, `SELECT last_id, last_hash FROM audit_chain_head WHERE singleton = 1`).Scan(&headID, &headHash); err != nil {
		return 0, fmt.Errorf("read chain head: %w", err)
	}

	// Walk from the start of the chain, verifying, to the first record to
	// keep. Rows are read in id order by primary key, so this costs what
	// is deleted, not the size of the log.
	q := selectEvent + selectLink + " FROM audit_events WHERE id >= ? ORDER BY id"
	args := []any{start.firstID}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit+1) // and the first record kept
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	var v audit.ChainVerifier
	v.Start(start.firstID, start.prev)
	last, lastHash := start.firstID-1, start.prev // the last record to delete
	exhausted := true
	for rows.Next() {
		var ev audit.Event
		var l link
		if err := scanEvent(rows, &ev, &l); err != nil {
			if !errors.Is(err, errBadRow) {
				return 0, err
			}
			err = &audit.ChainError{ID: ev.ID, Reason: err.Error()}
			return 0, fmt.Errorf("refusing to delete records that do not verify: %w", err)
		}
		if err := v.NextVersion(l.version, &ev, l.prev, l.hash); err != nil {
			return 0, fmt.Errorf("refusing to delete records that do not verify: %w", err)
		}
		if !ev.Time.Before(before) || (limit > 0 && last-start.firstID+1 == limit) {
			exhausted = false // ev is the first record kept, and its link verified
			break
		}
		last, lastHash = ev.ID, l.hash
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read records: %w", err)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("read records: %w", err)
	}
	if exhausted {
		// Everything is old enough: the last record must be the head, or
		// the tail is missing and deleting would hide it.
		if err := v.Finish(headID, headHash); err != nil {
			return 0, fmt.Errorf("refusing to delete records that do not verify: %w", err)
		}
	}
	if last < start.firstID {
		return 0, nil // nothing old enough
	}

	res, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE id >= ? AND id <= ?`, start.firstID, last)
	if err != nil {
		return 0, fmt.Errorf("delete: %w", err)
	}
	deleted, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete: %w", err)
	}
	if want := last - start.firstID + 1; deleted != want {
		return 0, fmt.Errorf("delete: %d rows deleted, expected %d", deleted, want) // unreachable: verified above
	}

	next := anchor{present: true, firstID: last + 1, prev: lastHash}
	req, err := newRequest(ctx, &audit.Event{
		Kind:    audit.KindPrune,
		Request: formatAnchor(next),
		Reason: fmt.Sprintf("retention: deleted %d records (%d to %d), the oldest with time before %s",
			deleted, start.firstID, last, before.UTC().Format(time.RFC3339Nano)),
	})
	if err != nil {
		return 0, err
	}
	if err := appendEvents(ctx, tx, []*request{req}); err != nil {
		return 0, fmt.Errorf("record prune: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_chain_anchor (singleton, first_id, prev_hash) VALUES (1, ?, ?)
		ON CONFLICT (singleton) DO UPDATE SET first_id = excluded.first_id, prev_hash = excluded.prev_hash`,
		next.firstID, next.prev); err != nil {
		return 0, fmt.Errorf("update chain anchor: %w", err)
	}
	return deleted, nil
}

// runPruner applies Options.Retention: once at start, then every
// PruneInterval, until Close. It is started by OpenSQLite and waited for
// by Close (via prunerDone); ctx is cancelled by Close.
func (s *SQLite) runPruner(ctx context.Context) {
	defer close(s.prunerDone)
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	for {
		s.pruneExpired(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneExpired deletes the records older than the retention period, a
// chunk per transaction so audit commits interleave.
func (s *SQLite) pruneExpired(ctx context.Context) {
	cutoff := time.Now().Add(-s.opts.Retention)
	var total int64
	for ctx.Err() == nil {
		n, err := s.prune(ctx, cutoff, pruneChunk)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("audit retention: prune failed; records kept", "before", cutoff, "err", err)
			}
			break
		}
		if n < pruneChunk {
			break
		}
	}
	if total > 0 {
		s.log.Info("audit retention: pruned", "records", total, "before", cutoff)
	}
}
