package policy

import (
	"strconv"

	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// kind is a list of rules in a policy. Kinds are numbered in order of
// precedence: for one access, the first kind with a matching rule decides.
// Issue 4 inserts kindReview between kindDeny and kindAllow, plus its
// rank below; nothing else in the decision loop changes.
type kind uint8

const (
	kindDeny kind = iota
	kindAllow
	numKinds
)

// rank orders outcomes of whole requests: a request touching several
// objects gets the outcome of the worst of them. Lower is worse.
type rank uint8

const (
	rankExplicitDeny rank = iota // a deny rule, or a builtin refusal
	rankDefaultDeny              // nothing covers the access
	rankAllow
)

func kindRank(k kind) rank {
	switch k {
	case kindAllow:
		return rankAllow
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
	name    string
	schema  string   // unqualified entries and the default deny message
	connect *ruleRef // earliest allow rule for the target; nil: may not connect
	rules   [numActions][numKinds]*ruleSet
}

func newTargetTable(name, schema string) *targetTable {
	return &targetTable{name: name, schema: schema}
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
// some matching policy has an allow rule for it.
func (s *Subject) CanConnect(target string) Decision {
	if t := s.tables[target]; t != nil && t.connect != nil {
		return Decision{Effect: Allow, Policy: t.connect.policy, Rule: t.connect.id, Reason: t.connect.allowReason}
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
//   - a statement touching no object is allowed;
//   - otherwise every access must be covered by an allow rule, and none
//     may match a deny rule (deny wins over allow).
//
// The allow path evaluates no CEL and allocates nothing.
func (s *Subject) DecideStatement(target string, st *sqlfacts.Statement) Decision {
	d, _ := s.decideStatement(target, st)
	return d
}

// DecideFacts decides a whole query string: if any statement is denied,
// the whole query is (PostgreSQL runs a multi-statement simple query as
// one transaction, and half of it must not run). The decision is that of
// the first statement with the worst outcome, and names it; for an
// allowed query it is that of the first statement that touches objects.
func (s *Subject) DecideFacts(target string, f *sqlfacts.Facts) Decision {
	if f == nil || len(f.Statements) == 0 {
		// An empty query string: PostgreSQL answers EmptyQueryResponse.
		return s.noAccess(target)
	}
	var worst Decision // first statement with the worst rank
	worstRank := rankAllow + 1
	allow := -1 // first allowed statement that touches objects
	var allowD Decision
	for i := range f.Statements {
		d, r := s.decideStatement(target, &f.Statements[i])
		d.Statement = i
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
	if worstRank == rankAllow && allow >= 0 {
		best = allowD
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

func (s *Subject) decideStatement(target string, st *sqlfacts.Statement) (Decision, rank) {
	if st == nil {
		return Decision{Effect: Deny, Rule: RuleBuiltin, Reason: "no statement facts"}, rankExplicitDeny
	}
	if st.Refusal != "" {
		return Decision{Effect: Deny, Rule: RuleBuiltin, Reason: st.Refusal}, rankExplicitDeny
	}
	t := s.tables[target]
	if t == nil || t.connect == nil {
		return s.noConnect(target), rankDefaultDeny
	}
	if len(st.Accesses) == 0 {
		return s.noAccess(target), rankAllow
	}

	// Find the worst outcome over all accesses, and the first access that
	// has it. An explicit deny cannot be beaten, so it ends the search.
	worst := rankAllow
	var worstRef *ruleRef
	worstAt := 0
	var firstAllow *ruleRef
	for i, a := range st.Accesses {
		k, ref, ok := t.decide(a)
		r := rankDefaultDeny
		if ok {
			r = kindRank(k)
		}
		if r == rankAllow && firstAllow == nil {
			firstAllow = ref
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
		return Decision{Effect: Allow, Policy: firstAllow.policy, Rule: firstAllow.id, Reason: firstAllow.allowReason}, rankAllow
	case rankDefaultDeny:
		what := describe(st.Accesses[worstAt])
		return Decision{
			Effect:  Deny,
			Rule:    RuleDefaultDeny,
			Reason:  what + " is not allowed for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
			Summary: what + " is not allowed (default deny)",
		}, rankDefaultDeny
	}
	// rankExplicitDeny. Issue 4: rankReview returns Effect Review here.
	what := describe(st.Accesses[worstAt])
	return Decision{
		Effect:  Deny,
		Policy:  worstRef.policy,
		Rule:    worstRef.id,
		Reason:  what + " is denied by " + worstRef.id + " for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
		Summary: what + " is denied",
	}, rankExplicitDeny
}

func (s *Subject) noAccess(target string) Decision {
	if t := s.tables[target]; t == nil || t.connect == nil {
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
