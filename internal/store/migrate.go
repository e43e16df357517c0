package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema. Steps are applied in order, each in
// its own transaction together with its schema_version row, so a crash
// mid-migration leaves the database at the previous version, never between.
// Never edit a released step: append a new one.
type migration struct {
	version int
	sql     string
}

var sqliteMigrations = []migration{
	{1, `
CREATE TABLE audit_events (
	id           INTEGER PRIMARY KEY, -- assigned by the writer, contiguous from 1
	time         TEXT NOT NULL,       -- UTC, RFC 3339 with 9 fixed fraction digits, so text order is time order
	kind         TEXT NOT NULL,
	session_id   TEXT NOT NULL,
	protocol     TEXT NOT NULL,
	target       TEXT NOT NULL,
	client       TEXT NOT NULL,
	subject      TEXT NOT NULL,
	issuer       TEXT NOT NULL,
	groups       TEXT NOT NULL,       -- JSON array of strings
	token_id     TEXT NOT NULL,
	request      TEXT NOT NULL,
	request_hash TEXT NOT NULL,
	stmt_kind    TEXT NOT NULL,
	decision     TEXT NOT NULL,
	policy       TEXT NOT NULL,
	rule         TEXT NOT NULL,
	reason       TEXT NOT NULL,
	error        TEXT NOT NULL,
	prev_hash    BLOB NOT NULL,
	hash         BLOB NOT NULL
) STRICT;
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_subject_time ON audit_events (subject, time);

-- The last record written, updated in the same transaction as the records,
-- so Verify can tell a truncated chain from a short one.
CREATE TABLE audit_chain_head (
	singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
	last_id   INTEGER NOT NULL,
	last_hash BLOB NOT NULL
) STRICT;
INSERT INTO audit_chain_head (singleton, last_id, last_hash) VALUES (1, 0, zeroblob(32));
`},
	{2, `
-- Result and statement-identity fields (audit.Event gained them with hash
-- version 2). Rows written before this step keep zeros, which is what
-- hash version 1 requires of them.
ALTER TABLE audit_events ADD COLUMN seq         INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN fingerprint TEXT    NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN params_hash TEXT    NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN duration_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN row_count   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN byte_count  INTEGER NOT NULL DEFAULT 0;
-- The canonical encoding each row's hash was computed with
-- (audit.HashWithVersion). Every row before this step is version 1.
ALTER TABLE audit_events ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX audit_events_session ON audit_events (session_id, id);

-- Where the chain starts once its oldest records have been pruned: the
-- id of the first remaining record and the prev_hash it must carry. No
-- row means the chain starts at record 1 with the genesis hash.
CREATE TABLE audit_chain_anchor (
	singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
	first_id  INTEGER NOT NULL,
	prev_hash BLOB NOT NULL
) STRICT;

-- Revoked subjects. A row is one revocation; lifting it fills lifted_*,
-- so who revoked and who restored whom is kept.
CREATE TABLE revocations (
	id         INTEGER PRIMARY KEY,
	subject    TEXT NOT NULL,
	revoked_by TEXT NOT NULL,
	reason     TEXT NOT NULL,
	revoked_at TEXT NOT NULL, -- timeLayout, UTC
	lifted_by  TEXT,          -- NULL while in force
	lifted_at  TEXT
) STRICT;
CREATE UNIQUE INDEX revocations_in_force ON revocations (subject) WHERE lifted_at IS NULL;
`},
	{3, `
-- Held requests waiting for, or decided by, a human (review.Review). One
-- row per review, every scalar field a column of its own so the schema,
-- not review's JSON tags, defines what is stored; the two lists (groups,
-- approvals) are JSON arrays with keys this package owns (see
-- storedApproval). Times are timeLayout, UTC, so text order is time
-- order; an unset optional time is NULL. The table has a rowid, which
-- breaks ties between reviews created in the same nanosecond: the later
-- insert is the newer review.
CREATE TABLE reviews (
	id             TEXT NOT NULL PRIMARY KEY,
	state          TEXT NOT NULL,    -- review.State; UpdateReview compares and sets it
	fingerprint    TEXT NOT NULL,
	subject        TEXT NOT NULL,
	issuer         TEXT NOT NULL,
	groups         TEXT NOT NULL,    -- JSON array of strings
	session_id     TEXT NOT NULL,
	protocol       TEXT NOT NULL,
	target         TEXT NOT NULL,
	statement      TEXT NOT NULL,
	kind           TEXT NOT NULL,
	params_hash    TEXT NOT NULL,
	policy_version TEXT NOT NULL,
	policy         TEXT NOT NULL,
	rule           TEXT NOT NULL,
	reason         TEXT NOT NULL,
	min_approvals  INTEGER NOT NULL,
	approvers      TEXT NOT NULL,
	approvals      TEXT NOT NULL,    -- JSON array of {"by","issuer","comment","time"}
	denied_by      TEXT NOT NULL,
	deny_comment   TEXT NOT NULL,
	created_at     TEXT NOT NULL,
	expires_at     TEXT NOT NULL,
	decided_at     TEXT,
	grant_expires  TEXT,
	executed_at    TEXT,
	result         TEXT NOT NULL
) STRICT;
-- FindReview: the newest review of a fingerprint in some states.
CREATE INDEX reviews_fingerprint_state ON reviews (fingerprint, state, created_at);
-- ListReviews: newest first, overall and per state (the pending queue).
CREATE INDEX reviews_created ON reviews (created_at);
CREATE INDEX reviews_state_created ON reviews (state, created_at);
`},
	{4, `
-- The HTTP status answered to an http or kubernetes request (audit.Event
-- gained it with hash version 3). Rows written before this step keep 0,
-- which is what hash versions 1 and 2 require of them.
ALTER TABLE audit_events ADD COLUMN http_status INTEGER NOT NULL DEFAULT 0;
`},
}

// migrate brings db to the newest schema version. It is idempotent and
// safe against another process migrating the same file at the same time:
// the version is read and written inside one IMMEDIATE transaction per step.
// A database newer than this binary is refused rather than used with a
// schema the code does not understand.
func migrate(ctx context.Context, db *sql.DB, steps []migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER PRIMARY KEY,
	applied_at TEXT NOT NULL
) STRICT`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	latest := steps[len(steps)-1].version
	for _, m := range steps {
		if err := migrateStep(ctx, db, m, latest); err != nil {
			return err
		}
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, m migration, latest int) (err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE via _txlock
	if err != nil {
		return fmt.Errorf("migration %d: begin: %w", m.version, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the step's error is the one worth reporting
		}
	}()
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("migration %d: read version: %w", m.version, err)
	}
	if current > latest {
		return fmt.Errorf("schema version %d is newer than this binary supports (%d)", current, latest)
	}
	if current >= m.version {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %d: %w", m.version, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`,
		m.version, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("migration %d: record version: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: commit: %w", m.version, err)
	}
	return nil
}
