// Package store holds warden's own state: the durable audit log, the
// revoked subjects and the held reviews (review.Store). It owns the SQL
// schema, its migrations and the write path; it knows nothing about wire
// protocols, policy, identity or the review lifecycle, only the records
// they produce.
//
// # SQLite and the audit journal
//
// SQLite is the zero-set-up default (one file next to the config). The
// audit log is the part that must never lie, so the SQLite store is built
// around three guarantees:
//
//   - Durability. The durable record of the audit log is an append-only
//     journal next to the database (see journal.go); the SQLite tables are
//     its index. Record returns only after the group holding the event has
//     been appended to the journal with one write and, unless
//     Options.ProcessCrashOnly, fdatasynced. The event survives a crash of
//     warden (kill -9) and, with fdatasync, of the machine. At open, what
//     the journal holds beyond the index is indexed (a torn tail, never
//     acknowledged, is dropped), so an acknowledged event is always in the
//     journal, the index, or both; journal segments are deleted only once a
//     checkpoint has made the index durable past them.
//
//   - Throughput despite fsync. A single writer goroutine appends
//     group-wise: every event queued while the previous append was syncing
//     goes into the next group, so one fdatasync acknowledges up to
//     Options.MaxBatch events. An indexer goroutine inserts the events into
//     SQLite off the acknowledgement path, in transactions of thousands;
//     Query, Verify and Export wait until the index holds every event
//     acknowledged before they were called.
//
//   - Tamper evidence. Every record carries prev_hash and hash (audit.Hash),
//     forming a chain that Verify walks; a one-row table,
//     audit_chain_head, records the last id and hash in the same
//     transaction as the rows, so truncating the tail is detected too. Each
//     row also stores the hash_version it was hashed with: rows written
//     before schema version 2 are version 1 and keep verifying as such (see
//     audit.HashWithVersion). Journal records carry the same links and are
//     checked against them when recovered.
//
// Everything that writes to SQLite (index batches, Prune, Revoke,
// Unrevoke, CreateReview, UpdateReview) runs on the indexer goroutine, each
// in its own transaction; the chain head has a single writer (the journal
// writer, which holds new groups while a Prune appends its record), and a
// review write never lands inside an audit batch. Retention (Options.Retention, Prune) deletes only a
// prefix of the chain and leaves an anchor that Verify starts from; the
// prune itself is a record in the chain (audit.KindPrune). Export writes a
// stretch of the chain as JSON lines that audit.VerifyLines re-verifies
// without the database.
//
// The store fails closed: if the queue is full Record waits until its
// context ends and then returns an error; if a journal append fails every
// waiter in that group gets the error and Healthy reports it until a later
// append succeeds (Healthy also reports a failing index). A caller that
// gets an error must refuse the request.
package store
