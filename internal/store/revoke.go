package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrNotRevoked is returned (wrapped) by Unrevoke for a subject that is not
// revoked.
var ErrNotRevoked = errors.New("store: subject is not revoked")

// Revocation is a subject whose access is revoked: identity refuses its
// tokens until the revocation is lifted.
type Revocation struct {
	Subject string    `json:"subject"`
	By      string    `json:"by"`     // who revoked it (the operator's subject)
	Reason  string    `json:"reason"` // why, for the operator who lifts it
	Time    time.Time `json:"time"`   // when it was revoked, UTC
}

// Revoke records that subject is revoked, by whom and why. It is
// persisted before Revoke returns and survives restarts. Revoking a
// subject that is already revoked changes nothing (the first revocation's
// by, reason and time are kept) and returns nil.
//
// Revocations are written by the writer goroutine in a transaction of
// their own, like every write; they do not touch the audit chain. The
// caller audits the operator's action (audit.KindAdmin) as for any other.
func (s *SQLite) Revoke(ctx context.Context, subject, by, reason string) error {
	if subject == "" {
		return errors.New("store: revoke: empty subject")
	}
	err := s.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO revocations (subject, revoked_by, reason, revoked_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (subject) WHERE lifted_at IS NULL DO NOTHING`,
			subject, by, reason, time.Now().UTC().Format(timeLayout))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: revoke: %w", err)
	}
	return nil
}

// Unrevoke lifts subject's revocation, recording who lifted it and when
// (the history stays in the database). It returns an error matching
// ErrNotRevoked if subject is not revoked.
func (s *SQLite) Unrevoke(ctx context.Context, subject, by string) error {
	err := s.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE revocations SET lifted_by = ?, lifted_at = ? WHERE subject = ? AND lifted_at IS NULL`,
			by, time.Now().UTC().Format(timeLayout), subject)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotRevoked
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: unrevoke %q: %w", subject, err)
	}
	return nil
}

// Revocations returns the subjects revoked now, oldest revocation first.
// The gateway loads them at start into the identity layer's revocation set.
func (s *SQLite) Revocations(ctx context.Context) ([]Revocation, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT subject, revoked_by, reason, revoked_at FROM revocations
		WHERE lifted_at IS NULL ORDER BY revoked_at, subject`)
	if err != nil {
		return nil, fmt.Errorf("store: revocations: %w", err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var ts string
		if err := rows.Scan(&r.Subject, &r.By, &r.Reason, &ts); err != nil {
			return nil, fmt.Errorf("store: revocations: %w", err)
		}
		if r.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return nil, fmt.Errorf("store: revocations: %s: time: %w", r.Subject, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: revocations: %w", err)
	}
	return out, nil
}
