package identity

import (
	"context"
	"time"
)

// Principal is a verified identity. It is immutable once returned.
type Principal struct {
	Subject string         // "sub"
	Issuer  string         // "iss"
	Groups  []string       // from the configured groups claim
	TokenID string         // "jti", if present
	Expiry  time.Time      // "exp"
	Claims  map[string]any // every claim of the token, as decoded JSON
}

// Verifier checks a raw bearer token and returns who it belongs to.
// Implementations must fail closed: any doubt is an error.
type Verifier interface {
	Verify(ctx context.Context, rawToken string) (*Principal, error)
}
