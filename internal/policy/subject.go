package policy

import (
	"slices"
	"strconv"
	"strings"

	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// kind is a list of rules in a policy. Kinds are numbered in order of
// precedence: for one access, the first kind with a matching rule decides
// (deny > review > allow), whichever matching policies the rules come
// from. So a review rule holds an access that an allow rule also covers:
// "allow delete on public.*, review delete on public.orders" holds
// deletes on orders, which is what anyone writing it means.
type kind uint8

const (
	kindDeny kind = iota
	kindReview
	kindAllow
	numKinds
)

// rank orders outcomes of whole requests: a request touching several
// objects, or a query of several statements, gets the outcome of the
// worst of them. Lower is worse.
type rank uint8

const (
	rankExplicitDeny rank = iota // a deny rule, or a builtin refusal
	rankDefaultDeny              // nothing covers the access
	rankReview                   // held for approval
	rankAllow
)

func kindRank(k kind) rank {
	switch k {
	case kindAllow:
		return rankAllow
	case kindReview:
		return rankReview
	default:
		return rankExplicitDeny
	}
}

// Action indexes: actionTables is an array, not a map, so the per-access
// lookup is a switch and an index.
const (
	selectIndex = iota
	insertIndex
	updateIndex
	deleteIndex
	truncateIndex
	lockIndex
	createIndex
	alterIndex
	dropIndex
	executeIndex
	commandIndex
	numActions
)

// actionIndex maps a sqlfacts action to its index, or -1 for an action
// this package does not know (a newer sqlfacts): no rule can match it, so
// it is denied.
func actionIndex(a sqlfacts.Action) int {
	switch a {
	case sqlfacts.Select:
		return selectIndex
	case sqlfacts.Insert:
		return insertIndex
	case sqlfacts.Update:
		return updateIndex
	case sqlfacts.Delete:
		return deleteIndex
	case sqlfacts.Truncate:
		return truncateIndex
	case sqlfacts.Lock:
		return lockIndex
	case sqlfacts.Create:
		return createIndex
	case sqlfacts.Alter:
		return alterIndex
	case sqlfacts.Drop:
		return dropIndex
	case sqlfacts.Execute:
		return executeIndex
	case sqlfacts.Command:
		return commandIndex
	}
	return -1
}

// targetTable is every rule, of every kind, that applies to one target,
// arranged for lookup: [action][kind] → entries.
type targetTable struct {
	name          string
	schema        string   // unqualified entries and the default deny message
	requireReview bool     // the target's require_review
	connect       *ruleRef // earliest allow rule for the target
	// reviewConnect is the earliest review rule for the target: a review
	// rule lets its subject connect too (else it could never be used),
	// but an allow rule names the decision when there is one.
	reviewConnect *ruleRef
	rules         [numActions][numKinds]*ruleSet
	// maskRules are the mask rules for the target, in config order; masks
	// is their union, compiled once per merged table (nil when there are
	// none, and in a single policy's table).
	maskRules []*maskRule
	masks     *MaskSet
	// req are the http and kubernetes rules for the target, by kind, in
	// config order.
	req [numKinds][]*reqRule
}

func newTargetTable(name string, ti targetInfo) *targetTable {
	return &targetTable{name: name, schema: ti.schema, requireReview: ti.requireReview}
}

// connectRef is the rule that lets a subject connect; nil: it may not.
func (t *targetTable) connectRef() *ruleRef {
	if t.connect != nil {
		return t.connect
	}
	return t.reviewConnect
}

func (t *targetTable) set(action int, k kind) *ruleSet {
	if t.rules[action][k] == nil {
		t.rules[action][k] = &ruleSet{}
	}
	return t.rules[action][k]
}

// merge adds other's rules (a later policy's) to t.
func (t *targetTable) merge(other *targetTable) {
	if other.connect != nil && (t.connect == nil || other.connect.order < t.connect.order) {
		t.connect = other.connect
	}
	if other.reviewConnect != nil && (t.reviewConnect == nil || other.reviewConnect.order < t.reviewConnect.order) {
		t.reviewConnect = other.reviewConnect
	}
	t.maskRules = append(t.maskRules, other.maskRules...)
	for k := range other.req {
		t.req[k] = append(t.req[k], other.req[k]...)
		slices.SortStableFunc(t.req[k], func(a, b *reqRule) int { return a.ref.order - b.ref.order })
	}
	for a := range other.rules {
		for k, rs := range other.rules[a] {
			if rs != nil && !rs.empty() {
				t.set(a, kind(k)).merge(rs)
			}
		}
	}
}

// decide finds the rule that decides one access: the first kind, in
// precedence order, with a matching entry. ok is false when nothing
// matches (default deny).
func (t *targetTable) decide(a sqlfacts.Access) (k kind, ref *ruleRef, ok bool) {
	idx := actionIndex(a.Action)
	if idx < 0 {
		return 0, nil, false
	}
	var key objKey
	if idx == commandIndex {
		key = objKey{name: a.Object}
	} else if key, ok = splitObject(a.Object); !ok {
		return 0, nil, false
	}
	for k := range numKinds {
		if rs := t.rules[idx][k]; rs != nil {
			if ref := rs.match(key); ref != nil {
				return k, ref, true
			}
		}
	}
	return 0, nil, false
}

// Subject is a principal bound to the policies that match it: what a
// session holds. It is immutable and safe for concurrent use. A Subject
// does not expire by itself; the session must drop it when the
// principal's token expires or is revoked.
type Subject struct {
	engine    *Engine
	principal *identity.Principal
	subject   string                  // principal.Subject, for messages
	policies  []string                // names of matching policies, in config order
	tables    map[string]*targetTable // shared with the engine's cache: read only
	notes     []string
}

// Principal returns the principal the subject was bound for.
func (s *Subject) Principal() *identity.Principal { return s.principal }

// Policies returns the names of the policies whose `when` holds for the
// principal, in configuration order.
func (s *Subject) Policies() []string { return append([]string(nil), s.policies...) }

// Notes returns problems met while binding: `when` conditions that failed
// to evaluate and were treated as not matching. The caller logs them.
func (s *Subject) Notes() []string { return append([]string(nil), s.notes...) }

// Version is the Version of the Engine that bound the subject.
func (s *Subject) Version() string { return s.engine.Version() }

// CanConnect decides whether the subject may open a session to target:
// some matching policy has an allow or a review rule for it.
func (s *Subject) CanConnect(target string) Decision {
	if t := s.tables[target]; t != nil {
		if ref := t.connectRef(); ref != nil {
			return Decision{Effect: Allow, Policy: ref.policy, Rule: ref.id, Reason: ref.allowReason}
		}
	}
	return s.noConnect(target)
}

func (s *Subject) noConnect(target string) Decision {
	// The same text for unknown targets and forbidden ones: a client must
	// not learn which target names exist.
	return Decision{
		Effect:  Deny,
		Rule:    RuleDefaultDeny,
		Reason:  "no policy grants subject " + strconv.Quote(s.subject) + " access to target " + strconv.Quote(target),
		Summary: "no policy grants access to target " + strconv.Quote(target),
	}
}

// DecideStatement decides one statement on target:
//   - a statement sqlfacts refuses is denied whatever the policy says;
//   - on a target the subject may not connect to, everything is denied;
//   - if any access matches a deny rule, or no rule at all, it is denied;
//   - else if any access matches a review rule (and no deny rule), it is
//     held for review (Effect Review) by that rule;
//   - else (every access allowed, or none touched) it is allowed — but
//     held by RuleRequireReview if the target has require_review and
//     the statement is high-risk.
//
// The allow path evaluates no CEL and allocates nothing.
func (s *Subject) DecideStatement(target string, st *sqlfacts.Statement) Decision {
	d, r, held := s.decideStatement(target, st)
	if r == rankReview {
		finishReview(&d, held)
	}
	return d
}

// DecideFacts decides a whole query string: if any statement is denied,
// the whole query is (PostgreSQL runs a multi-statement simple query as
// one transaction, and half of it must not run); else if any is held for
// review, the whole query is, and an approval must satisfy the review
// rules of every held statement (one approval runs the query string, so
// it must not carry a statement past rules nobody checked). The decision
// is that of the first statement with the worst outcome, and names it;
// for an allowed query it is that of the first statement that touches
// objects.
func (s *Subject) DecideFacts(target string, f *sqlfacts.Facts) Decision {
	if f == nil || len(f.Statements) == 0 {
		// An empty query string: PostgreSQL answers EmptyQueryResponse.
		return s.noAccess(target)
	}
	var worst Decision // first statement with the worst rank
	worstRank := rankAllow + 1
	allow := -1 // first allowed statement that touches objects
	var allowD Decision
	var held []*ruleRef // review rules of all held statements
	for i := range f.Statements {
		d, r, refs := s.decideStatement(target, &f.Statements[i])
		d.Statement = i
		if r == rankReview {
			held = appendNew(held, refs...)
		}
		if r < worstRank {
			worst, worstRank = d, r
			if r == rankExplicitDeny {
				break
			}
		}
		if r == rankAllow && allow < 0 && d.Rule != RuleNoAccess {
			allow, allowD = i, d
		}
	}
	best := worst
	switch {
	case worstRank == rankAllow && allow >= 0:
		best = allowD
	case worstRank == rankReview:
		finishReview(&best, held)
	}
	if len(f.Statements) > 1 && best.Effect != Allow {
		st := &f.Statements[best.Statement]
		prefix := "statement " + strconv.Itoa(best.Statement+1) + " of " + strconv.Itoa(len(f.Statements))
		if st.Kind != "" {
			prefix += " (" + st.Kind + ")"
		}
		prefix += ": "
		best.Reason = prefix + best.Reason
		if best.Summary != "" {
			best.Summary = prefix + best.Summary
		}
	}
	return best
}

// decideStatement decides one statement. For a held statement it also
// returns the review rules that hold it, distinct, in access order (the
// deciding one first); the caller completes the Decision with
// finishReview once it knows every held statement.
func (s *Subject) decideStatement(target string, st *sqlfacts.Statement) (Decision, rank, []*ruleRef) {
	if st == nil {
		return Decision{Effect: Deny, Rule: RuleBuiltin, Reason: "no statement facts"}, rankExplicitDeny, nil
	}
	if st.Refusal != "" {
		return Decision{Effect: Deny, Rule: RuleBuiltin, Reason: st.Refusal}, rankExplicitDeny, nil
	}
	t := s.tables[target]
	if t == nil || t.connectRef() == nil {
		return s.noConnect(target), rankDefaultDeny, nil
	}
	if len(st.Accesses) == 0 {
		if t.requireReview && st.HighRisk {
			return s.highRisk(t, st, nil)
		}
		return s.noAccess(target), rankAllow, nil
	}

	// Find the worst outcome over all accesses, and the first access that
	// has it. An explicit deny cannot be beaten, so it ends the search;
	// review rules are collected as they are met (nil, and no allocation,
	// on the allow path).
	worst := rankAllow
	var worstRef *ruleRef
	worstAt := 0
	var firstAllow *ruleRef
	var held []*ruleRef
	for i, a := range st.Accesses {
		k, ref, ok := t.decide(a)
		r := rankDefaultDeny
		if ok {
			r = kindRank(k)
		}
		switch r {
		case rankAllow:
			if firstAllow == nil {
				firstAllow = ref
			}
		case rankReview:
			held = appendNew(held, ref)
		}
		if r < worst {
			worst, worstRef, worstAt = r, ref, i
			if r == rankExplicitDeny {
				break
			}
		}
	}

	switch worst {
	case rankAllow:
		if t.requireReview && st.HighRisk {
			return s.highRisk(t, st, firstAllow)
		}
		return Decision{Effect: Allow, Policy: firstAllow.policy, Rule: firstAllow.id, Reason: firstAllow.allowReason}, rankAllow, nil
	case rankReview:
		what := describe(st.Accesses[worstAt])
		return Decision{
			Effect:  Review,
			Policy:  worstRef.policy,
			Rule:    worstRef.id,
			Reason:  what + " is held for review by " + worstRef.id + " for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
			Summary: what + " needs approval",
		}, rankReview, held
	case rankDefaultDeny:
		what := describe(st.Accesses[worstAt])
		return Decision{
			Effect:  Deny,
			Rule:    RuleDefaultDeny,
			Reason:  what + " is not allowed for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
			Summary: what + " is not allowed (default deny)",
		}, rankDefaultDeny, nil
	}
	what := describe(st.Accesses[worstAt])
	return Decision{
		Effect:  Deny,
		Policy:  worstRef.policy,
		Rule:    worstRef.id,
		Reason:  what + " is denied by " + worstRef.id + " for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
		Summary: what + " is denied",
	}, rankExplicitDeny, nil
}

// highRisk holds a statement that policy allowed (by allowedBy; nil for
// one touching no object) because its target has require_review and the
// classifier marked it high-risk.
func (s *Subject) highRisk(t *targetTable, st *sqlfacts.Statement, allowedBy *ruleRef) (Decision, rank, []*ruleRef) {
	what := riskiest(st)
	by := RuleNoAccess
	if allowedBy != nil {
		by = allowedBy.id
	}
	return Decision{
		Effect: Review,
		Rule:   RuleRequireReview,
		Reason: what + " is high-risk and target " + strconv.Quote(t.name) + " has require_review (policy allows it by " + by +
			") for subject " + strconv.Quote(s.subject),
		Summary: what + " needs approval (high-risk statement)",
	}, rankReview, []*ruleRef{requireReviewRef}
}

// riskiest names what makes a high-risk statement risky for messages: its
// first access that is not a read ("update on public.orders"), else its
// first access, else its kind.
func riskiest(st *sqlfacts.Statement) string {
	for _, a := range st.Accesses {
		if a.Action != sqlfacts.Select {
			return describe(a)
		}
	}
	if len(st.Accesses) > 0 {
		return describe(st.Accesses[0])
	}
	if st.Kind != "" {
		return st.Kind + " statement"
	}
	return "statement"
}

// finishReview completes a Review decision held by the review rules held
// (the deciding one first): the most approvals any of them asks for, by
// approvers who satisfy all of them (Decision.Approvers).
func finishReview(d *Decision, held []*ruleRef) {
	d.MinApprovals = 1
	own := false // some rule has its own approvers expression
	for _, r := range held {
		d.MinApprovals = max(d.MinApprovals, r.minApprovals)
		own = own || r.approvers != nil
	}
	ids := make([]string, len(held))
	for i, r := range held {
		ids[i] = r.id
	}
	who := "the admins"
	if own {
		d.Approvers = strings.Join(ids, ",")
		who = "approvers of " + strings.Join(ids, " and ")
	} else if len(held) > 1 {
		who = "the admins (" + strings.Join(ids, ", ") + ")"
	}
	n := "1 approval"
	if d.MinApprovals > 1 {
		n = strconv.Itoa(d.MinApprovals) + " approvals"
	}
	d.Reason += "; needs " + n + " from " + who
}

// appendNew appends the refs not yet in list.
func appendNew(list []*ruleRef, refs ...*ruleRef) []*ruleRef {
	for _, r := range refs {
		if !slices.Contains(list, r) {
			list = append(list, r)
		}
	}
	return list
}

func (s *Subject) noAccess(target string) Decision {
	if t := s.tables[target]; t == nil || t.connectRef() == nil {
		return s.noConnect(target)
	}
	return Decision{Effect: Allow, Rule: RuleNoAccess, Reason: "statement touches no object"}
}

// describe names an access for messages: "delete on public.orders",
// "command do".
func describe(a sqlfacts.Access) string {
	if a.Action == sqlfacts.Command {
		return "command " + a.Object
	}
	return string(a.Action) + " on " + a.Object
}
