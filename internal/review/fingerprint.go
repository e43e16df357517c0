package review

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
)

// fingerprintDomain separates review fingerprints from every other
// sha256 warden computes, and versions the encoding: a change to the
// bound fields must change this string, which voids older approvals.
const fingerprintDomain = "warden/review/fingerprint/v1"

// Fingerprint binds an approval to exactly one request: the requester's
// identity (issuer and subject), the protocol, the target, the exact
// statement text, the digest of its parameters and the policy version.
// It returns the sha256, in hex, of those fields in that order, each
// prefixed by its length as a big-endian uint64, after a domain string;
// the length prefixes make the encoding unambiguous (("ab","c") and
// ("a","bc") hash differently).
//
// It deliberately leaves out the session id, the groups and the token
// id: a client whose wait expired retries on a new connection, often with
// a fresh token, and that retry must find the approval. A policy change
// (a new PolicyVersion) or any change to the statement or its parameters
// voids it.
func Fingerprint(r Request) string {
	var iss, sub string
	if r.Principal != nil {
		iss, sub = r.Principal.Issuer, r.Principal.Subject
	}
	h := sha256.New()
	writeField(h, fingerprintDomain)
	for _, f := range [...]string{iss, sub, r.Protocol, r.Target, r.Statement, r.ParamsHash, r.PolicyVersion} {
		writeField(h, f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	io.WriteString(h, s)
}
