// Package admintest holds test doubles for admin's interfaces that
// belong to other packages, so the admin API and its clients (the CLI)
// can be tested without them. It must not be imported outside tests.
package admintest

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/review"
)

// Reviews is an in-memory admin.Reviews standing in for review.Manager:
// it keeps reviews in a map and decides approvals with the rules the
// Manager follows (issue #4): the requester (same subject and issuer) may
// never decide its own review, only an approver may decide, only a
// pending review can be decided, an approver approves once, and a review
// is approved once MinApprovals distinct approvers said yes. It does not
// hold requests, expire reviews or record audit events.
type Reviews struct {
	// IsApprover says whether p may decide rv (the admins, or the rule's
	// approvers). Nil: nobody may.
	IsApprover func(rv *review.Review, p *identity.Principal) bool
	// ConsoleURL prefixes URL's answers; "" makes URL return "".
	ConsoleURL string
	// Now is the clock of decisions. Default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	reviews map[string]*review.Review
	calls   []Call
	err     error // returned by every method while set
}

// Call is one decision the API asked for.
type Call struct {
	Verb    string // "approve" or "deny"
	ID      string
	By      string // the approver's subject
	Comment string
}

// Add stores a copy of rv (a pending review unless rv.State says
// otherwise).
func (f *Reviews) Add(rv *review.Review) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reviews == nil {
		f.reviews = map[string]*review.Review{}
	}
	c := clone(rv)
	if c.State == "" {
		c.State = review.Pending
	}
	f.reviews[c.ID] = c
}

// Calls returns the Approve and Deny calls so far, in order.
func (f *Reviews) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// SetErr makes every method fail with err (nil: work again), as a
// broken store would.
func (f *Reviews) SetErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Get implements admin.Reviews.
func (f *Reviews) Get(_ context.Context, id string) (*review.Review, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	rv, ok := f.reviews[id]
	if !ok {
		return nil, fmt.Errorf("review %q: %w", id, review.ErrNotFound)
	}
	return clone(rv), nil
}

// List implements admin.Reviews: oldest first, then by id.
func (f *Reviews) List(_ context.Context, flt review.Filter) ([]*review.Review, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []*review.Review
	for _, rv := range f.reviews {
		if (flt.State == "" || rv.State == flt.State) &&
			(flt.Subject == "" || rv.Subject == flt.Subject) &&
			(flt.Target == "" || rv.Target == flt.Target) {
			out = append(out, clone(rv))
		}
	}
	slices.SortFunc(out, func(a, b *review.Review) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	limit := flt.Limit
	if limit <= 0 {
		limit = 100
	}
	return out[:min(len(out), limit)], nil
}

// Approve implements admin.Reviews.
func (f *Reviews) Approve(_ context.Context, id string, p *identity.Principal, comment string) (*review.Review, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv, err := f.decideLocked("approve", id, p, comment)
	if err != nil {
		return nil, err
	}
	for _, a := range rv.Approvals {
		if a.By == p.Subject && a.Issuer == p.Issuer {
			return nil, fmt.Errorf("review %q: %w", id, review.ErrDuplicate)
		}
	}
	now := f.now()
	rv.Approvals = append(rv.Approvals, review.Approval{By: p.Subject, Issuer: p.Issuer, Comment: comment, Time: now})
	if len(rv.Approvals) >= max(rv.MinApprovals, 1) {
		rv.State = review.Approved
		rv.DecidedAt = now
		rv.GrantExpires = now.Add(10 * time.Minute)
	}
	return clone(rv), nil
}

// Deny implements admin.Reviews.
func (f *Reviews) Deny(_ context.Context, id string, p *identity.Principal, comment string) (*review.Review, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv, err := f.decideLocked("deny", id, p, comment)
	if err != nil {
		return nil, err
	}
	rv.State = review.Denied
	rv.DeniedBy = p.Subject
	rv.DenyComment = comment
	rv.DecidedAt = f.now()
	return clone(rv), nil
}

// decideLocked records the call and returns the stored review if p may
// decide it now.
func (f *Reviews) decideLocked(verb, id string, p *identity.Principal, comment string) (*review.Review, error) {
	f.calls = append(f.calls, Call{Verb: verb, ID: id, By: p.Subject, Comment: comment})
	if f.err != nil {
		return nil, f.err
	}
	rv, ok := f.reviews[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("review %q: %w", id, review.ErrNotFound)
	case rv.Subject == p.Subject && rv.Issuer == p.Issuer:
		return nil, fmt.Errorf("review %q: %w", id, review.ErrSelfApproval)
	case f.IsApprover == nil || !f.IsApprover(clone(rv), p):
		return nil, fmt.Errorf("review %q: %s: %w", id, p.Subject, review.ErrNotApprover)
	case rv.State != review.Pending:
		return nil, fmt.Errorf("review %q is %s: %w", id, rv.State, review.ErrNotPending)
	}
	return rv, nil
}

// URL implements admin.Reviews.
func (f *Reviews) URL(id string) string {
	if f.ConsoleURL == "" {
		return ""
	}
	return f.ConsoleURL + "/reviews/" + url.PathEscape(id)
}

func (f *Reviews) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func clone(rv *review.Review) *review.Review {
	c := *rv
	c.Groups = slices.Clone(rv.Groups)
	c.Approvals = slices.Clone(rv.Approvals)
	return &c
}

var _ admin.Reviews = (*Reviews)(nil)
