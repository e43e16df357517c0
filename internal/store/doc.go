// Package store holds warden's own state: the durable audit log, the
// revoked subjects and the held reviews (review.Store). It owns the SQL
// schema, its migrations and the write path; it knows nothing about wire
// protocols, policy, identity or the review lifecycle, only the records
// they produce.
//
// # SQLite
//
// SQLite is the zero-set-up default (one file next to the config). The
// audit log is the part that must never lie, so the SQLite store is built
// around three guarantees:
//
//   - Durability. Record returns only after the transaction holding the
//     event has committed with PRAGMA synchronous=FULL in WAL mode, which
//     fsyncs the WAL on every commit. The event survives a crash of warden
//     (kill -9) and a crash of the machine. synchronous=NORMAL would survive
//     the first but can lose the last commits on power loss
//     (https://sqlite.org/pragma.html#pragma_synchronous), and the audit
//     contract is "no answer without a stored record", so FULL it is.
//
//   - Throughput despite fsync. A single writer goroutine owns the write
//     connection and commits group-wise: every event queued while the
//     previous commit was syncing goes into the next transaction, so one
//     fsync acknowledges up to Options.MaxBatch events. Many concurrent
//     sessions therefore cost few fsyncs, and a lone session pays one.
//
//   - Tamper evidence. Every row carries prev_hash and hash (audit.Hash),
//     forming a chain that Verify walks; a one-row table,
//     audit_chain_head, records the last id and hash in the same
//     transaction, so truncating the tail is detected too. Each row also
//     stores the hash_version it was hashed with: rows written before
//     schema version 2 are version 1 and keep verifying as such (see
//     audit.HashWithVersion).
//
// Everything that writes (event batches, Prune, Revoke, Unrevoke,
// CreateReview, UpdateReview) runs on the one writer goroutine, each in its
// own transaction, so the chain head has a single writer and a review
// write never lands inside an audit batch. Retention (Options.Retention, Prune) deletes only a
// prefix of the chain and leaves an anchor that Verify starts from; the
// prune itself is a record in the chain (audit.KindPrune). Export writes a
// stretch of the chain as JSON lines that audit.VerifyLines re-verifies
// without the database.
//
// The store fails closed: if the queue is full Record waits until its
// context ends and then returns an error; if a commit fails every waiter in
// that batch gets the error and Healthy reports it until a later commit
// succeeds. A caller that gets an error must refuse the request.
package store
