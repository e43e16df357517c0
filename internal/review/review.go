// Package review holds high-risk requests until a human approves them,
// then lets exactly that request through, once. It owns the review
// lifecycle (pending → approved/denied/expired → executed), the
// fingerprint that binds an approval to one identity, target, statement
// and set of parameters, single-use grants, and notifications. It knows
// nothing about wire protocols or policy syntax.
package review

import (
	"context"
	"time"

	"github.com/warden-gateway/warden/internal/identity"
)

// State is where a review is in its life.
type State string

const (
	Pending  State = "pending"  // waiting for approvers
	Approved State = "approved" // approved; the grant may be claimed once until GrantExpires
	Denied   State = "denied"   // an approver said no
	Expired  State = "expired"  // nobody decided before ExpiresAt, or the grant was never claimed
	Executed State = "executed" // the grant was claimed: the request ran (or was sent to run)
)

// Request is what a protocol asks to have reviewed.
type Request struct {
	Principal     *identity.Principal
	SessionID     string
	Protocol      string // "postgres", later "http", "kubernetes"
	Target        string
	Statement     string // the exact request text (SQL, "DELETE /v1/x", ...)
	Kind          string // e.g. "delete"
	ParamsHash    string // digest of bind parameters / body, "" if none
	PolicyVersion string // policy.Engine.Version(): a policy change voids approvals
	Policy, Rule  string // the review rule that held it
	Reason        string // the decision's explanation, for the approver
	MinApprovals  int    // distinct approvers needed; 0 or 1 means one
	// Approvers is the name of the rule's approvers expression, resolved by
	// the Manager's IsApprover hook ("" means the admins).
	Approvers string
}

// Service is what a protocol proxy needs of the approval service
// (*Manager implements it).
type Service interface {
	// Claim takes the single-use grant of an approved review with this
	// fingerprint, if there is one.
	Claim(ctx context.Context, fingerprint string) (*Review, bool, error)
	// Request finds or creates the pending review for req.
	Request(ctx context.Context, req Request) (*Review, error)
	// Wait blocks until the review is decided or ctx ends.
	Wait(ctx context.Context, id string) (*Review, error)
	// Executed records what the approved request did.
	Executed(ctx context.Context, id, result string)
	// URL links to the review for a human.
	URL(id string) string
}

var _ Service = (*Manager)(nil)

// Approval is one approver's yes.
type Approval struct {
	By      string    `json:"by"`     // approver's subject
	Issuer  string    `json:"issuer"` // approver's issuer
	Comment string    `json:"comment,omitempty"`
	Time    time.Time `json:"time"`
}

// Review is one held request and its decision.
type Review struct {
	ID          string `json:"id"`
	State       State  `json:"state"`
	Fingerprint string `json:"fingerprint"`

	Subject       string   `json:"subject"`
	Issuer        string   `json:"issuer"`
	Groups        []string `json:"groups,omitempty"`
	SessionID     string   `json:"session_id,omitempty"`
	Protocol      string   `json:"protocol"`
	Target        string   `json:"target"`
	Statement     string   `json:"statement"`
	Kind          string   `json:"kind,omitempty"`
	ParamsHash    string   `json:"params_hash,omitempty"`
	PolicyVersion string   `json:"policy_version"`
	Policy        string   `json:"policy,omitempty"`
	Rule          string   `json:"rule"`
	Reason        string   `json:"reason,omitempty"`
	MinApprovals  int      `json:"min_approvals"`
	Approvers     string   `json:"approvers,omitempty"`

	Approvals    []Approval `json:"approvals,omitempty"`
	DeniedBy     string     `json:"denied_by,omitempty"`
	DenyComment  string     `json:"deny_comment,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at"`             // a pending review must be decided by then
	DecidedAt    time.Time  `json:"decided_at,omitzero"`    // approved or denied
	GrantExpires time.Time  `json:"grant_expires,omitzero"` // an approved review must be claimed by then
	ExecutedAt   time.Time  `json:"executed_at,omitzero"`
	Result       string     `json:"result,omitempty"` // what the execution did (or its error)
}

// Filter selects reviews.
type Filter struct {
	State   State // "" = any
	Subject string
	Target  string
	Limit   int // default 100, max 1000
}

// Store persists reviews; it must survive restarts. Implementations must
// make UpdateReview a compare-and-set on State so two replicas (or two
// approvers) cannot both move a review out of the same state.
type Store interface {
	CreateReview(ctx context.Context, r *Review) error
	GetReview(ctx context.Context, id string) (*Review, error) // ErrNotFound
	// FindReview returns the newest review with this fingerprint in one
	// of the given states, or ErrNotFound.
	FindReview(ctx context.Context, fingerprint string, states ...State) (*Review, error)
	// UpdateReview replaces r if the stored state is still from;
	// otherwise it returns ErrConflict.
	UpdateReview(ctx context.Context, r *Review, from State) error
	ListReviews(ctx context.Context, f Filter) ([]*Review, error)
}
