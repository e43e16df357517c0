package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"
)

// The audit log is a hash chain: every stored record carries the hash of
// the record before it (prev_hash) and its own hash, computed by Hash over
// prev_hash and every field of the record. Editing, deleting, reordering or
// inserting a record therefore breaks the chain at that point, and a
// ChainVerifier walking the records in id order names the first record that
// does not verify. The chain is tamper-evident, not tamper-proof: someone
// who can rewrite the whole table can recompute every hash. Anchoring the
// head hash elsewhere (a log shipper, a signed checkpoint) closes that gap
// and needs nothing more than HashSize bytes per anchor.

// HashSize is the length of a chain hash (SHA-256).
const HashSize = sha256.Size

// GenesisHash is the prev_hash of the first record in a chain.
var GenesisHash = make([]byte, HashSize)

// chainDomain separates warden audit-chain hashes from any other SHA-256
// use, and versions the canonical encoding: change it whenever the
// encoding below changes, so old and new records can never be confused.
const chainDomain = "warden.audit.chain.v1"

// Hash returns the chain hash of ev given the hash of the record before it
// (GenesisHash for the first record):
//
//	SHA-256( enc(domain) || enc(prev) || enc(ev.ID) || enc(time) || enc(field)... )
//
// where strings and byte slices are encoded as an 8-byte big-endian length
// followed by the bytes, integers as 8 bytes big-endian, Time as UTC
// RFC 3339 with nanoseconds, and Groups as a count followed by each group.
// Length prefixes make the encoding unambiguous (no field can absorb its
// neighbour), and no map or JSON encoder is involved, so it is
// deterministic across Go versions and across store implementations.
//
// Every field of Event is covered; a test fails if Event gains a field that
// Hash does not know about.
func Hash(prev []byte, ev *Event) []byte {
	e := chainEncoder{h: sha256.New()}
	e.str(chainDomain)
	e.bytes(prev)
	e.int(ev.ID)
	e.str(ev.Time.UTC().Format(time.RFC3339Nano))
	e.str(ev.Kind)
	e.str(ev.SessionID)
	e.str(ev.Protocol)
	e.str(ev.Target)
	e.str(ev.Client)
	e.str(ev.Subject)
	e.str(ev.Issuer)
	e.int(int64(len(ev.Groups)))
	for _, g := range ev.Groups {
		e.str(g)
	}
	e.str(ev.TokenID)
	e.str(ev.Request)
	e.str(ev.RequestHash)
	e.str(ev.StmtKind)
	e.str(ev.Decision)
	e.str(ev.Policy)
	e.str(ev.Rule)
	e.str(ev.Reason)
	e.str(ev.Error)
	return e.h.Sum(nil)
}

// chainEncoder writes the length-prefixed canonical encoding into a hash.
// hash.Hash.Write never returns an error, so none is checked.
type chainEncoder struct {
	h   hash.Hash
	buf [8]byte
}

func (e *chainEncoder) int(v int64) {
	binary.BigEndian.PutUint64(e.buf[:], uint64(v))
	e.h.Write(e.buf[:])
}

func (e *chainEncoder) str(s string) {
	e.int(int64(len(s)))
	e.h.Write([]byte(s))
}

func (e *chainEncoder) bytes(b []byte) {
	e.int(int64(len(b)))
	e.h.Write(b)
}

// ErrChainBroken is matched (errors.Is) by every *ChainError.
var ErrChainBroken = errors.New("audit chain broken")

// ChainError names the first record at which a chain fails to verify.
type ChainError struct {
	ID     int64  // the first bad record: altered, out of place, or missing
	Reason string // what did not match
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at record %d: %s", e.ID, e.Reason)
}

// Is makes errors.Is(err, ErrChainBroken) true.
func (e *ChainError) Is(target error) bool { return target == ErrChainBroken }

// ChainVerifier checks stored records one at a time, in id order, so a
// store can verify a chain of any length while streaming it. Ids are
// expected to be contiguous from 1, which is what lets a deleted record be
// named rather than merely noticed. The zero value is ready to use.
type ChainVerifier struct {
	next    int64  // id the next record must have (0 means 1)
	prev    []byte // stored hash of the last good record
	checked int64
}

// Checked returns how many records have verified so far.
func (v *ChainVerifier) Checked() int64 { return v.checked }

// Next checks one stored record: ev as read back (ev.ID set) and the
// prev_hash and hash stored with it. It returns a *ChainError naming the
// first bad record; after an error the verifier should not be used again.
func (v *ChainVerifier) Next(ev *Event, prevHash, hash []byte) error {
	if v.next == 0 {
		v.next, v.prev = 1, GenesisHash
	}
	switch {
	case ev.ID > v.next:
		return &ChainError{ID: v.next, Reason: fmt.Sprintf("record missing (next stored record is %d)", ev.ID)}
	case ev.ID < v.next:
		return &ChainError{ID: ev.ID, Reason: fmt.Sprintf("unexpected record id (expected %d)", v.next)}
	case !bytes.Equal(prevHash, v.prev):
		return &ChainError{ID: ev.ID, Reason: "prev_hash does not match the hash of the previous record"}
	case !bytes.Equal(hash, Hash(v.prev, ev)):
		return &ChainError{ID: ev.ID, Reason: "hash does not match the record's contents"}
	}
	v.prev = hash
	v.next++
	v.checked++
	return nil
}

// Finish compares the end of the walked chain with the head the store
// recorded alongside it (the id and hash of the last record it wrote), so
// that removing records from the end is detected too.
func (v *ChainVerifier) Finish(headID int64, headHash []byte) error {
	last := v.checked // ids are contiguous from 1, so the last id is the count
	switch {
	case headID > last:
		return &ChainError{ID: last + 1, Reason: fmt.Sprintf("record missing (chain head says the last record is %d)", headID)}
	case headID < last:
		return &ChainError{ID: headID + 1, Reason: "record beyond the recorded chain head"}
	case headID == 0:
		return nil // empty chain
	case !bytes.Equal(headHash, v.prev):
		return &ChainError{ID: headID, Reason: "hash does not match the recorded chain head"}
	}
	return nil
}
