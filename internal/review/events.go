package review

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"unicode/utf8"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
)

// Audit event kinds written by the Manager. The events of one review are
// linked by its id (see linkReview). They are also the event names passed
// to a Notifier.
const (
	KindReviewProposed = "review.proposed" // a request was held; Subject is the requester
	KindReviewApproved = "review.approved" // one approver said yes; Subject is the approver
	KindReviewDenied   = "review.denied"   // an approver said no; Subject is the approver
	KindReviewExpired  = "review.expired"  // nobody decided in time, or the grant was not claimed in time
	KindReviewExecuted = "review.executed" // the claimed request ran; Reason carries its result
	KindReviewNote     = "review.note"     // something went wrong around a review (a notification failed)
)

// DecisionReview is the audit Decision of a KindReviewProposed event: the
// request was neither allowed nor denied but held for a human. The other
// review events use audit.Allow (approved, executed), audit.Deny (denied,
// expired) and audit.Error (notes).
const DecisionReview = "review"

// linkReview ties ev to the review it is about. audit.Event has no field
// for it yet, so the id leads the Reason ("review rv_…: approved by …");
// once it has one this becomes `ev.ReviewID = id`. Call it last, after
// Reason is set.
func linkReview(ev *audit.Event, id string) {
	ev.Reason = "review " + id + ": " + ev.Reason
}

// event builds the audit record of something that happened to r. actor is
// who did it: the requester for proposed, expired, executed and notes, the
// approver for approved and denied.
func (m *Manager) event(kind, decision string, r *Review, actor *identity.Principal, reason string) *audit.Event {
	ev := &audit.Event{
		Time:       m.now(),
		Kind:       kind,
		Protocol:   r.Protocol,
		Target:     r.Target,
		StmtKind:   r.Kind,
		Decision:   decision,
		Policy:     r.Policy,
		Rule:       r.Rule,
		Reason:     reason,
		ParamsHash: r.ParamsHash,
	}
	ev.Request, ev.RequestHash = boundText(r.Statement, m.cfg.MaxAuditText)
	if actor != nil {
		ev.Subject, ev.Issuer = actor.Subject, actor.Issuer
		ev.Groups = slices.Clone(actor.Groups)
		ev.TokenID = actor.TokenID
	} else {
		ev.Subject, ev.Issuer = r.Subject, r.Issuer
		ev.Groups = slices.Clone(r.Groups)
	}
	linkReview(ev, r.ID)
	return ev
}

// boundText returns text cut to max bytes (at a rune boundary) and the
// sha256 hex of the whole of it, as the proxy records statements.
func boundText(text string, max int) (string, string) {
	sum := sha256.Sum256([]byte(text))
	return truncate(text, max), hex.EncodeToString(sum[:])
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Back up to the start of the rune that straddles n (at most 3 bytes).
	for i := 0; n > 0 && i < utf8.UTFMax-1 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}
