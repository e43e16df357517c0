package identity

import (
	"errors"
	"fmt"
)

// Reasons a token is refused. They are stable strings meant for metrics
// labels and audit records: add new ones, never rename.
const (
	// ReasonMalformed: not a compact JWS with a JSON object payload, too
	// large, or not base64url (RFC 7515 §7.1, RFC 7519 §7.2).
	ReasonMalformed = "malformed"
	// ReasonUnknownIssuer: the "iss" claim names no configured issuer.
	ReasonUnknownIssuer = "unknown_issuer"
	// ReasonUnsupportedAlg: "alg" is not one of the asymmetric algorithms
	// warden accepts; this is how "none" and HS256 key confusion end
	// (RFC 8725 §2.1, §3.1).
	ReasonUnsupportedAlg = "unsupported_alg"
	// ReasonUnknownKey: no key in the issuer's JWKS has the token's "kid",
	// even after the (rate-limited) refresh.
	ReasonUnknownKey = "unknown_kid"
	// ReasonBadSignature: a key was found but the signature does not verify
	// with it.
	ReasonBadSignature = "bad_signature"
	// ReasonJWKSUnavailable: the issuer's JWKS could not be fetched when a
	// key was needed.
	ReasonJWKSUnavailable = "jwks_unavailable"
	// ReasonExpired: "exp" plus leeway is in the past (RFC 7519 §4.1.4).
	ReasonExpired = "expired"
	// ReasonMissingExpiry: no "exp" claim. RFC 7519 makes it optional;
	// warden does not accept tokens that never expire.
	ReasonMissingExpiry = "missing_expiry"
	// ReasonNotYetValid: "nbf" is further in the future than the leeway
	// (RFC 7519 §4.1.5).
	ReasonNotYetValid = "not_yet_valid"
	// ReasonIssuedInFuture: "iat" is further in the future than the leeway
	// (RFC 7519 §4.1.6): a clock or issuer problem, never trusted.
	ReasonIssuedInFuture = "issued_in_future"
	// ReasonBadAudience: "aud" does not contain the configured audience
	// (RFC 7519 §4.1.3, RFC 8725 §3.9).
	ReasonBadAudience = "bad_audience"
	// ReasonMissingSubject: "sub" is absent or empty (RFC 8725 §3.8).
	ReasonMissingSubject = "missing_subject"
	// ReasonInvalidClaim: a claim has the wrong JSON type (a numeric "sub",
	// a groups claim that is not a string or array of strings, ...).
	ReasonInvalidClaim = "invalid_claim"
)

// VerifyError is the error every rejected token produces. Count failures
// by Reason; Err says what exactly went wrong and never contains the token.
//
//	var ve *identity.VerifyError
//	if errors.As(err, &ve) { rejected.WithLabelValues(ve.Reason).Inc() }
type VerifyError struct {
	Reason string // one of the Reason* constants
	Err    error  // the underlying cause
}

func (e *VerifyError) Error() string {
	if e.Err == nil {
		return "identity: token rejected: " + e.Reason
	}
	return "identity: token rejected: " + e.Reason + ": " + e.Err.Error()
}

func (e *VerifyError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the VerifyError in err's chain, or "" if
// there is none.
func ReasonOf(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

// reject builds a *VerifyError with a formatted cause.
func reject(reason, format string, args ...any) *VerifyError {
	return &VerifyError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// quoteUntrusted renders an attacker-controlled string (an unverified "iss",
// a "kid") for an error message: quoted, and cut short so a hostile token
// cannot flood the logs.
func quoteUntrusted(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
