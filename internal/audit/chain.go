package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
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
//
// # Versions
//
// The canonical encoding is versioned. Each version has its own domain
// string inside the hash, so a record hashed under one version can never
// verify under another, and a store keeps each record's version next to
// its hash. Version 1 covers the fields Event had before Seq; version 2
// (HashVersion, what Hash computes) adds Seq, Fingerprint, ParamsHash,
// DurationUS, Rows and Bytes; version 3 adds Status. Old records keep verifying under the version
// they were written with; a version-1 record with any version-2 field set
// does not verify, because version 1 cannot vouch for that field.
//
// # Pruned chains
//
// A chain need not start at record 1: a store that deletes its oldest
// records keeps an anchor, the id of the first remaining record and the
// prev_hash it must carry, and verification starts there
// (ChainVerifier.Start). So that a forged anchor (deleting a prefix and
// writing a matching anchor) is caught too, the store writes a record of
// kind KindPrune into the chain each time it prunes; its Request states
// the new anchor, and the hash chain vouches for it.

// HashSize is the length of a chain hash (SHA-256).
const HashSize = sha256.Size

// HashVersion is the version of the canonical encoding Hash computes, the
// one new records are written with.
const HashVersion = 3

// KindPrune is the kind of the record a store appends to the chain, in
// the transaction that deletes the chain's oldest records, to attest the
// new anchor. Only the store writes it; a Sink refuses it from callers.
const KindPrune = "audit.prune"

// GenesisHash is the prev_hash of the first record in a chain.
var GenesisHash = make([]byte, HashSize)

// chainDomains separate warden audit-chain hashes from any other SHA-256
// use and name the version of the canonical encoding. Add a version (and
// a domain) whenever the encoding changes; never edit a released one.
var chainDomains = [...]string{
	1: "warden.audit.chain.v1",
	2: "warden.audit.chain.v2",
	3: "warden.audit.chain.v3",
}

// Hash returns the chain hash of ev given the hash of the record before it
// (GenesisHash for the first record), under HashVersion:
//
//	SHA-256( enc(domain) || enc(prev) || enc(ev.ID) || enc(time) || enc(field)... )
//
// where strings and byte slices are encoded as an 8-byte big-endian length
// followed by the bytes, integers as 8 bytes big-endian, Time as UTC
// RFC 3339 with nanoseconds, and Groups as a count followed by each group.
// The fields follow in declaration order: Kind through Error (version 1),
// then Seq, Fingerprint, ParamsHash, DurationUS, Rows, Bytes (added in
// version 2), then Status (version 3). Length prefixes make the encoding unambiguous (no field can
// absorb its neighbour), and no map or JSON encoder is involved, so it is
// deterministic across Go versions and across store implementations.
//
// Every field of Event is covered; a test fails if Event gains a field that
// Hash does not know about.
func Hash(prev []byte, ev *Event) []byte {
	h, err := HashWithVersion(HashVersion, prev, ev)
	if err != nil {
		panic(err) // unreachable: the current version encodes every field
	}
	return h
}

// HashWithVersion returns the chain hash of ev under the given version of
// the canonical encoding (see Hash). It fails for an unknown version, and
// for a version that cannot represent a field ev has set: a version-1 hash
// says nothing about Seq, so a record claiming version 1 must not have one.
func HashWithVersion(version int, prev []byte, ev *Event) ([]byte, error) {
	if version < 1 || version >= len(chainDomains) {
		return nil, fmt.Errorf("unknown hash version %d", version)
	}
	if version < 3 && ev.Status != 0 {
		return nil, fmt.Errorf("field status is set, but hash version %d does not cover it", version)
	}
	if version < 2 {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"seq", ev.Seq != 0}, {"fingerprint", ev.Fingerprint != ""}, {"params_hash", ev.ParamsHash != ""},
			{"duration_us", ev.DurationUS != 0}, {"rows", ev.Rows != 0}, {"bytes", ev.Bytes != 0},
		} {
			if f.set {
				return nil, fmt.Errorf("field %s is set, but hash version %d does not cover it", f.name, version)
			}
		}
	}
	// The encoding is built in one buffer and hashed at once: writing
	// field by field through hash.Hash costs an allocation per string.
	// The buffers are pooled: the writer hashes every event.
	bp := encodeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			encodeBufs.Put(bp)
		}
	}()
	e := chainEncoder{b: (*bp)[:0]}
	e.str(chainDomains[version])
	e.bytes(prev)
	e.int(ev.ID)
	e.time(ev.Time)
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
	if version >= 2 {
		e.int(ev.Seq)
		e.str(ev.Fingerprint)
		e.str(ev.ParamsHash)
		e.int(ev.DurationUS)
		e.int(ev.Rows)
		e.int(ev.Bytes)
	}
	if version >= 3 {
		e.int(ev.Status)
	}
	*bp = e.b
	h := sha256.Sum256(e.b)
	return append(make([]byte, 0, sha256.Size), h[:]...), nil
}

// chainEncoder appends the length-prefixed canonical encoding to b.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

type chainEncoder struct {
	b []byte
}

func (e *chainEncoder) int(v int64) {
	e.b = binary.BigEndian.AppendUint64(e.b, uint64(v))
}

func (e *chainEncoder) str(s string) {
	e.int(int64(len(s)))
	e.b = append(e.b, s...)
}

func (e *chainEncoder) bytes(b []byte) {
	e.int(int64(len(b)))
	e.b = append(e.b, b...)
}

// time encodes t as UTC RFC 3339 with nanoseconds, like str of its
// Format, without the intermediate string.
func (e *chainEncoder) time(t time.Time) {
	at := len(e.b)
	e.int(0) // the length, filled in below
	e.b = t.UTC().AppendFormat(e.b, time.RFC3339Nano)
	binary.BigEndian.PutUint64(e.b[at:], uint64(len(e.b)-at-8))
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
// expected to be contiguous from the start (1, or the anchor given to
// Start), which is what lets a deleted record be named rather than merely
// noticed. The zero value verifies a chain from its genesis.
type ChainVerifier struct {
	started bool
	next    int64  // id the next record must have
	prev    []byte // stored hash of the last good record (the anchor's prev_hash at first)
	version int    // highest hash version seen; versions never go back
	checked int64
}

// Start makes the verifier expect the chain to begin at record firstID,
// whose prev_hash must be prevHash: the anchor a store keeps after deleting
// its oldest records, or the first line of a partial export. It must be
// called before the first Next; without it the chain starts at record 1
// with GenesisHash.
func (v *ChainVerifier) Start(firstID int64, prevHash []byte) {
	v.started, v.next, v.prev = true, firstID, bytes.Clone(prevHash)
}

func (v *ChainVerifier) init() {
	if !v.started {
		v.Start(1, GenesisHash)
	}
}

// Checked returns how many records have verified so far.
func (v *ChainVerifier) Checked() int64 { return v.checked }

// Next checks one stored record written under HashVersion: ev as read back
// (ev.ID set) and the prev_hash and hash stored with it. It is
// NextVersion(HashVersion, …).
func (v *ChainVerifier) Next(ev *Event, prevHash, hash []byte) error {
	return v.NextVersion(HashVersion, ev, prevHash, hash)
}

// NextVersion checks one stored record: its hash version, ev as read back
// (ev.ID set), and the prev_hash and hash stored with it. It returns a
// *ChainError naming the first bad record; after an error the verifier
// should not be used again.
func (v *ChainVerifier) NextVersion(version int, ev *Event, prevHash, hash []byte) error {
	v.init()
	switch {
	case ev.ID > v.next:
		return &ChainError{ID: v.next, Reason: fmt.Sprintf("record missing (next stored record is %d)", ev.ID)}
	case ev.ID < v.next:
		return &ChainError{ID: ev.ID, Reason: fmt.Sprintf("unexpected record id (expected %d)", v.next)}
	case !bytes.Equal(prevHash, v.prev):
		return &ChainError{ID: ev.ID, Reason: "prev_hash does not match the hash of the previous record"}
	case version < v.version:
		// No writer goes back to an older encoding (a store refuses a
		// schema newer than it knows), so this is an edited record.
		return &ChainError{ID: ev.ID, Reason: fmt.Sprintf("hash version %d after a record of version %d", version, v.version)}
	}
	want, err := HashWithVersion(version, v.prev, ev)
	if err != nil {
		return &ChainError{ID: ev.ID, Reason: err.Error()}
	}
	if !bytes.Equal(hash, want) {
		return &ChainError{ID: ev.ID, Reason: "hash does not match the record's contents"}
	}
	v.prev = hash
	v.version = version
	v.next++
	v.checked++
	return nil
}

// Finish compares the end of the walked chain with the head the store
// recorded alongside it (the id and hash of the last record it wrote), so
// that removing records from the end is detected too.
func (v *ChainVerifier) Finish(headID int64, headHash []byte) error {
	v.init()
	last := v.next - 1 // ids are contiguous from the start
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
