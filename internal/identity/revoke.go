package identity

import (
	"context"
	"errors"
	"sync"
)

// ReasonRevoked is the VerifyError reason for a revoked subject.
const ReasonRevoked = "revoked"

// Revocations is the set of revoked subjects, shared by every protocol.
// A revoked subject is refused at its next request even with an otherwise
// valid token; the gateway also closes its open sessions at once.
// The zero value is an empty set, ready to use.
type Revocations struct {
	mu   sync.RWMutex
	subs map[string]struct{}
}

// Revoke adds sub to the set.
func (r *Revocations) Revoke(sub string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs == nil {
		r.subs = make(map[string]struct{})
	}
	r.subs[sub] = struct{}{}
}

// Restore removes sub from the set.
func (r *Revocations) Restore(sub string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subs, sub)
}

// Revoked reports whether sub is revoked.
func (r *Revocations) Revoked(sub string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.subs[sub]
	return ok
}

// WithRevocations wraps v so that principals whose subject is revoked are
// refused with reason "revoked".
func WithRevocations(v Verifier, r *Revocations) Verifier {
	return &revokingVerifier{v: v, r: r}
}

type revokingVerifier struct {
	v Verifier
	r *Revocations
}

func (rv *revokingVerifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	p, err := rv.v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if rv.r.Revoked(p.Subject) {
		return nil, &VerifyError{Reason: ReasonRevoked, Err: errRevoked}
	}
	return p, nil
}

var errRevoked = errors.New("identity: the subject's access has been revoked")
