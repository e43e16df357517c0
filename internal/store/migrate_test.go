package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/warden-gateway/warden/internal/audit"
)

// writeV1Database creates, at path, a database at schema version 1 holding
// n records written the way the version-1 writer wrote them: hash version
// 1, no result columns.
func writeV1Database(t *testing.T, path string, n int) {
	t.Helper()
	ctx := context.Background()
	if err := createPrivate(path); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	if err := migrate(ctx, db, sqliteMigrations[:1]); err != nil {
		t.Fatal(err)
	}
	prev := audit.GenesisHash
	for i := 1; i <= n; i++ {
		ev := testEvent(i)
		ev.ID, ev.Seq, ev.Rows = int64(i), 0, 0 // version-1 events had no such fields
		h, err := audit.HashWithVersion(1, prev, ev)
		if err != nil {
			t.Fatal(err)
		}
		groups, _ := json.Marshal(ev.Groups)
		if _, err := db.Exec(`INSERT INTO audit_events (
	id, time, kind, session_id, protocol, target, client,
	subject, issuer, groups, token_id,
	request, request_hash, stmt_kind, decision, policy, rule, reason, error,
	prev_hash, hash
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ev.ID, ev.Time.Format(timeLayout), ev.Kind, ev.SessionID, ev.Protocol, ev.Target, ev.Client,
			ev.Subject, ev.Issuer, string(groups), ev.TokenID,
			ev.Request, ev.RequestHash, ev.StmtKind, ev.Decision, ev.Policy, ev.Rule, ev.Reason, ev.Error,
			prev, h); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	if _, err := db.Exec(`UPDATE audit_chain_head SET last_id = ?, last_hash = ?`, n, prev); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromV1: a log written before hash version 2 still verifies
// after the upgrade, continues under version 2, and its old records still
// cannot be edited, in the new columns either.
func TestMigrateFromV1(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warden.db")
	writeV1Database(t, path, 3)

	s := openAt(t, path, Options{})
	mustVerify(t, s, 3)
	old, err := s.Query(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 3 || old[1].Request != testEvent(2).Request || old[1].Seq != 0 || old[1].Rows != 0 {
		t.Fatalf("old records read back as %+v", old)
	}
	ev := testEvent(4)
	ev.Kind, ev.Seq, ev.DurationUS, ev.Rows, ev.Bytes, ev.Fingerprint = audit.KindResult, 9, 1234, 5, 678, "SELECT $1"
	if err := s.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, 4)
	got, err := s.Query(ctx, Query{AfterID: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 9 || got[0].DurationUS != 1234 || got[0].Rows != 5 || got[0].Bytes != 678 || got[0].Fingerprint != "SELECT $1" {
		t.Fatalf("new record read back as %+v", got)
	}

	db := rawDB(t, path)
	var versions []int
	rows, err := db.Query(`SELECT hash_version FROM audit_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	rows.Close()
	if want := []int{1, 1, 1, audit.HashVersion}; !slices.Equal(versions, want) {
		t.Fatalf("hash versions = %v, want %v", versions, want)
	}

	// Version 1 does not cover row_count, so a version-1 row must not have
	// one: setting it is caught although the hash is unchanged.
	if _, err := db.Exec(`UPDATE audit_events SET row_count = 1000 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	if checked, bad, err := s.Verify(ctx); bad != 2 || checked != 1 || !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("Verify = (%d, %d, %v), want (1, 2, chain error)", checked, bad, err)
	}
}
