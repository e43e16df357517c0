package policy

import (
	"strings"
)

// Effect is what a decision does with a request.
type Effect uint8

// Effects. The zero value is Deny, so a Decision that was never filled in
// fails closed. Precedence (deny > review > allow) is not the numeric
// order: see kind and rank in subject.go for where it lives.
const (
	Deny   Effect = iota
	Allow         // may run now
	Review        // may run only after approval (issue 4); not Allowed
)

func (e Effect) String() string {
	switch e {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	case Review:
		return "review"
	}
	return "unknown"
}

// Rule names of decisions no configured rule made.
const (
	RuleDefaultDeny = "default deny"
	RuleBuiltin     = "builtin"
	RuleNoAccess    = "builtin: no object access"
	// RuleRequireReview names a Review decision made by a target's
	// require_review for a high-risk statement that policy allowed. Its
	// approvers are the admins.
	RuleRequireReview = "require_review"
)

// Decision is the outcome of one check, naming what made it.
type Decision struct {
	Effect Effect
	// Policy is the policy that decided; "" for builtin decisions and the
	// default deny.
	Policy string
	// Rule identifies the rule: "analyst-agents/allow[0]", "ops/deny[2]",
	// or one of RuleDefaultDeny, RuleBuiltin, RuleNoAccess.
	Rule string
	// Reason explains the decision to an operator (audit log, `warden
	// policy explain`): it names the request, the subject and the target.
	Reason string
	// Summary is the part of the explanation fit for the client: it names
	// the request but not who asked or where (the client knows both).
	// Message uses it; empty means "use Reason".
	Summary string
	// Statement is the 0-based index in Facts.Statements of the statement
	// that decided (DecideFacts); 0 otherwise.
	Statement int

	// Reveal is, for an allowed Kubernetes request for Secrets, whether an
	// allow rule with reveal_secret_data covers it: the response's Secret
	// values are then not masked. False otherwise.
	Reveal bool

	// Review decisions only (zero otherwise).

	// MinApprovals is how many distinct approvers must approve: the
	// largest min_approvals of the review rules that hold the request.
	MinApprovals int
	// Approvers identifies who may approve, for Engine.IsApprover: "" for
	// the admins, else the ids of the review rules holding the request,
	// joined by "," ("ops/review[0]"), each of which an approver must
	// satisfy. Several ids appear only when one request is held by
	// several rules of which at least one has its own approvers: an
	// approval then has to satisfy all of them, so that bundling a
	// statement with an easier one cannot lower the bar for either.
	Approvers string
}

// Allowed reports whether the request may proceed now.
func (d Decision) Allowed() bool { return d.Effect == Allow }

// Message is the client-facing text of the decision, one line, naming the
// rule, e.g.
//
//	warden: permission denied: delete on public.orders is not allowed (default deny) [policy: -, rule: default deny]
//	warden: held for review: delete on public.orders needs approval [policy: ops, rule: ops/review[0]]
//
// (for a review, the proxy appends the review id and the console URL).
// The PostgreSQL proxy sends it in an ErrorResponse (SQLSTATE 42501); the
// HTTP proxy in its 403 body.
func (d Decision) Message() string {
	var b strings.Builder
	switch d.Effect {
	case Deny:
		b.WriteString("warden: permission denied: ")
	case Allow:
		b.WriteString("warden: allowed: ")
	case Review:
		b.WriteString("warden: held for review: ")
	default:
		b.WriteString("warden: ")
	}
	text := d.Summary
	if text == "" {
		text = d.Reason
	}
	writeOneLine(&b, text)
	b.WriteString(" [policy: ")
	if d.Policy == "" {
		b.WriteString("-")
	} else {
		writeOneLine(&b, d.Policy)
	}
	b.WriteString(", rule: ")
	writeOneLine(&b, d.Rule)
	b.WriteString("]")
	return b.String()
}

// writeOneLine writes s with control characters replaced by spaces: object
// names and refusal texts can come from the client's SQL (a quoted
// identifier may hold a newline), and a client-facing message must not be
// able to forge extra lines in a terminal or a log.
func writeOneLine(b *strings.Builder, s string) {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			r = ' '
		}
		b.WriteRune(r)
	}
}
