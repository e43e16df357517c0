// Package policy decides what an identity may do on a target.
//
// It owns the meaning of a configuration's admins expression and policies:
// it compiles every CEL condition and sql glob once, when the
// configuration is loaded (Compile), evaluates the conditions once per
// session for the session's Principal (Engine.Bind), and then decides
// each statement with map lookups and glob matches only — no CEL, no
// parsing, no allocation on the allow path (Subject.DecideStatement).
//
// Decisions are deny by default. For each object a request touches, the
// rules of the policies whose `when` holds are consulted in precedence
// order, deny > review > allow: a matching deny rule denies it, else a
// matching review rule holds it for approval, else a matching allow rule
// allows it, else it is denied. The request gets the worst outcome over
// its objects (and over its statements): any deny denies; else any hold
// holds; else it is allowed — unless its target has require_review and
// the statement is high-risk, when it is held too (issue 4). Every
// Decision names the policy and rule that made it; a held one also says
// who may approve it (Decision.Approvers, Engine.IsApprover) and how many
// must.
//
// Mask rules (issue 5) follow identity the same way: a Subject gets the
// mask rules of every matching policy for a target, merged into a MaskSet
// (Subject.Masks) that says which columns are masked and how; when two
// rules mask one column, the stronger style wins (null > redact > hash >
// partial). Masking values is package mask's business, finding where a
// result column came from the proxy's.
//
// It knows statement facts (package sqlfacts) but not SQL text or the
// parser, identities (package identity) but not tokens, and nothing about
// sockets, wire protocols or the audit log.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/mask"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// compilerVersion is folded into Engine.Version: bump it when the meaning
// of an unchanged configuration changes (matching rules, precedence), so
// caches keyed by Version are invalidated.
const compilerVersion = "policy/4" // 2: review rules, require_review; 3: mask rules; 4: http and kubernetes rules

// Engine is a compiled configuration. It is immutable and safe for
// concurrent use; reload by compiling a new one.
type Engine struct {
	version  string
	admins   *condition // nil: nobody is an admin
	policies []*compiledPolicy
	targets  map[string]targetInfo
	// reviewRules are the review rules by id, for IsApprover.
	reviewRules map[string]*ruleRef
	// maskKey is masking.hash_key; customDetectors masking.detectors,
	// name → regular expression (MaskConfig).
	maskKey         []byte
	customDetectors map[string]string

	// tables caches the merged rule tables of a set of matching policies.
	// Sessions of the same kind of agent match the same policies, so Bind
	// usually finds its tables here instead of merging again.
	mu     sync.Mutex
	tables map[string]map[string]*targetTable // key: matchKey(matched)
}

// maxCachedTableSets bounds Engine.tables. Each distinct combination of
// matching policies is one entry; a configuration rarely has more than a
// handful in use, and beyond the bound Bind just merges without caching.
const maxCachedTableSets = 256

// targetInfo is what decisions need to know about a configured target.
type targetInfo struct {
	schema        string // default schema
	requireReview bool   // hold high-risk statements that policy allows
}

type compiledPolicy struct {
	name   string
	when   *condition
	tables map[string]*targetTable // this policy's rules, by target
}

// ruleRef identifies a configured rule in decisions.
type ruleRef struct {
	order  int    // position in the file, for "the earliest rule wins" naming
	policy string // "analyst-agents"
	id     string // "analyst-agents/allow[0]"
	// allowReason is Decision.Reason for an allow by this rule (or, for a
	// review rule, for connecting), built at compile time so that allowing
	// allocates nothing.
	allowReason string

	// Review rules only.
	approvers    *condition // nil: the admins
	minApprovals int        // ≥ 1
}

// requireReviewRef stands for a target's require_review in the rule lists
// of review decisions: approved by the admins, once.
var requireReviewRef = &ruleRef{id: RuleRequireReview, minApprovals: 1}

// Compile compiles cfg's admins expression and policies. Errors name the
// file, line, key path and policy, e.g.
//
//	policy.Compile: warden.yaml:31: policies[1].when: policy "ops": must be a boolean expression, not string
//
// All problems are reported (errors.Join of *config.Error), not just the
// first.
func Compile(cfg *config.Config) (*Engine, error) {
	if cfg == nil {
		return nil, errors.New("policy.Compile: nil config")
	}
	env, err := newCELEnv()
	if err != nil {
		return nil, fmt.Errorf("policy.Compile: CEL environment: %w", err)
	}
	reqEnv, err := newRequestCELEnv()
	if err != nil {
		return nil, fmt.Errorf("policy.Compile: CEL environment: %w", err)
	}
	e := &Engine{
		targets:         map[string]targetInfo{},
		reviewRules:     map[string]*ruleRef{},
		tables:          map[string]map[string]*targetTable{},
		customDetectors: map[string]string{},
	}
	var errs []error
	fail := func(path, msg string) { errs = append(errs, cfg.ErrorAt(path, msg)) }

	if cfg.Masking.HashKey != "" {
		e.maskKey = []byte(cfg.Masking.HashKey)
	}
	for i, d := range cfg.Masking.Detectors {
		// Compiled here to be checked (a Config built in Go skipped
		// Parse); the proxy compiles the ones it uses from MaskConfig.
		p := fmt.Sprintf("masking.detectors[%d]", i)
		_, builtin := mask.Builtin(d.Name)
		_, dup := e.customDetectors[d.Name]
		switch {
		case builtin || dup:
			fail(p+".name", fmt.Sprintf("detector name %q is already taken", d.Name))
		default:
			if _, err := mask.Regex(d.Name, d.Regex); err != nil {
				msg := err.Error()
				if errors.Is(err, mask.ErrEmptyMatch) {
					msg = "can match the empty string"
				}
				fail(p+".regex", fmt.Sprintf("detector %q: %s", d.Name, msg))
				continue
			}
			e.customDetectors[d.Name] = d.Regex
		}
	}

	for _, t := range cfg.Targets {
		schema := t.Schema
		if schema == "" {
			schema = config.DefaultSchema
		}
		e.targets[t.Name] = targetInfo{schema: schema, requireReview: t.RequireReview}
	}
	if e.admins, err = compileCondition(env, cfg.Admins); err != nil {
		fail("admins", err.Error())
	}

	order := 0
	for i, pol := range cfg.Policies {
		p := fmt.Sprintf("policies[%d]", i)
		cp := &compiledPolicy{name: pol.Name, tables: map[string]*targetTable{}}
		if cp.when, err = compileCondition(env, pol.When); err != nil {
			fail(p+".when", fmt.Sprintf("policy %q: %v", pol.Name, err))
		}
		lists := []struct {
			kind  kind
			key   string
			rules []config.Rule
		}{{kindDeny, "deny", pol.Deny}, {kindReview, "review", pol.Review}, {kindAllow, "allow", pol.Allow}}
		for _, l := range lists {
			for j, r := range l.rules {
				rp := fmt.Sprintf("%s.%s[%d]", p, l.key, j)
				ti, ok := e.targets[r.Target]
				if !ok {
					fail(rp+".target", fmt.Sprintf("policy %q: no target named %q", pol.Name, r.Target))
					continue
				}
				schema := ti.schema
				id := fmt.Sprintf("%s/%s[%d]", pol.Name, l.key, j)
				ref := &ruleRef{order: order, policy: pol.Name, id: id, allowReason: "allowed by " + id}
				order++
				if l.kind == kindReview {
					ref.allowReason = "connecting allowed by review rule " + id
					if ref.approvers, err = compileCondition(env, r.Approvers); err != nil {
						fail(rp+".approvers", fmt.Sprintf("policy %q: %v", pol.Name, err))
					}
					// 0 is the default of a Config built in Go; Parse
					// has already filled it in and refused values < 1.
					switch ref.minApprovals = r.MinApprovals; {
					case ref.minApprovals == 0:
						ref.minApprovals = config.DefaultMinApprovals
					case ref.minApprovals < 0:
						fail(rp+".min_approvals", fmt.Sprintf("policy %q: must be at least 1", pol.Name))
					}
					e.reviewRules[id] = ref
				}
				tt := cp.tables[r.Target]
				if tt == nil {
					tt = newTargetTable(r.Target, ti)
					cp.tables[r.Target] = tt
				}
				switch {
				case l.kind == kindAllow && tt.connect == nil:
					tt.connect = ref
				case l.kind == kindReview && tt.reviewConnect == nil:
					tt.reviewConnect = ref
				}
				if rr := e.compileRequestRules(reqEnv, rp, pol.Name, r, ref, l.kind, fail); rr != nil {
					tt.req[l.kind] = append(tt.req[l.kind], rr)
				}
				for _, a := range r.SQL.Actions() {
					idx := actionIndex(sqlfacts.Action(a.Action))
					if idx < 0 {
						fail(rp+".sql."+a.Action, fmt.Sprintf("policy %q: unknown action %q", pol.Name, a.Action))
						continue
					}
					rs := tt.set(idx, l.kind)
					for k, g := range a.Globs {
						if idx == commandIndex {
							rs.addExact(objKey{name: g}, ref)
							continue
						}
						og, err := config.ParseObjectGlob(g)
						if err == nil {
							err = rs.add(og, schema, ref)
						}
						if err != nil {
							fail(fmt.Sprintf("%s.sql.%s[%d]", rp, a.Action, k), fmt.Sprintf("policy %q: invalid glob %q: %v", pol.Name, g, err))
						}
					}
				}
			}
		}
		for j, r := range pol.Mask {
			rp := fmt.Sprintf("%s.mask[%d]", p, j)
			ti, ok := e.targets[r.Target]
			if !ok {
				fail(rp+".target", fmt.Sprintf("policy %q: no target named %q", pol.Name, r.Target))
				continue
			}
			mr := e.compileMaskRule(pol.Name, j, rp, r, order, fail)
			order++
			if mr == nil {
				continue
			}
			tt := cp.tables[r.Target]
			if tt == nil {
				tt = newTargetTable(r.Target, ti)
				cp.tables[r.Target] = tt
			}
			tt.maskRules = append(tt.maskRules, mr)
		}
		e.policies = append(e.policies, cp)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("policy.Compile: %w", errors.Join(errs...))
	}
	e.version = version(cfg)
	return e, nil
}

// version hashes everything a decision depends on, masking included.
// Passwords and addresses are left out: they change no decision. So is
// masking.hash_key: it changes how a hashed value looks, not whether it
// is masked, and a hash of a secret published as a version would let
// anyone test guesses of it.
func version(cfg *config.Config) string {
	type target struct {
		Name, Type, Schema string
		RequireReview      bool
	}
	// Target URLs and credentials change no decision and are left out.
	in := struct {
		Compiler  string
		Admins    string
		Targets   []target
		Policies  []config.Policy // with their mask rules
		Detectors []config.CustomDetector
	}{Compiler: compilerVersion, Admins: cfg.Admins, Policies: cfg.Policies, Detectors: cfg.Masking.Detectors}
	for _, t := range cfg.Targets {
		in.Targets = append(in.Targets, target{t.Name, t.Type, t.Schema, t.RequireReview})
	}
	b, err := json.Marshal(in)
	if err != nil {
		// Only strings, slices and structs: cannot fail.
		panic("policy: version: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Version identifies the compiled policy inputs (policies with their
// allow, deny, review and mask rules and approvers, custom detectors,
// admins, target names, schemas and require_review). Two engines with the same Version decide alike;
// caches of decisions key on it.
func (e *Engine) Version() string { return e.version }

// IsAdmin reports whether p may use the admin API (approve reviews, read
// the audit log). An empty admins expression makes nobody an admin, and
// an evaluation error means "no": both fail closed.
func (e *Engine) IsAdmin(p *identity.Principal) bool {
	if p == nil || e.admins == nil {
		return false
	}
	ok, err := e.admins.eval(newActivation(p))
	return err == nil && ok
}

// IsApprover reports whether p may approve (or deny) a request held for
// review. approvers is the held Decision's Approvers (as stored with the
// review): "" means the admins (IsAdmin); otherwise it lists review rule
// ids, joined by ",", and p must satisfy every one of them — the rule's
// approvers expression, evaluated over p's token, or IsAdmin for a rule
// without one and for RuleRequireReview. A single rule id (Decision.Rule
// of a request held by one rule) works as well.
//
// It fails closed: a nil principal, an evaluation error or an id this
// engine does not know (a rule removed by a policy reload) mean "no".
// Whether p is the requester is not its business: package review refuses
// self-approval whatever this says.
func (e *Engine) IsApprover(p *identity.Principal, approvers string) bool {
	if p == nil {
		return false
	}
	if approvers == "" {
		return e.IsAdmin(p)
	}
	var act *activation // built once, on first use
	for id := range strings.SplitSeq(approvers, ",") {
		ref := requireReviewRef
		if id != RuleRequireReview {
			var ok bool
			if ref, ok = e.reviewRules[id]; !ok {
				return false
			}
		}
		if ref.approvers == nil {
			if !e.IsAdmin(p) {
				return false
			}
			continue
		}
		if act == nil {
			a := newActivation(p)
			act = &a
		}
		if ok, err := ref.approvers.eval(*act); err != nil || !ok {
			return false
		}
	}
	return true
}

// Bind evaluates every policy's `when` for p, once, and returns what a
// session holds to decide its requests. A condition that fails to
// evaluate (a missing claim, a non-boolean result, the cost limit) counts
// as not matching, and is recorded in Subject.Notes for the caller to log.
func (e *Engine) Bind(p *identity.Principal) *Subject {
	s := &Subject{engine: e, principal: p}
	if p == nil {
		s.notes = append(s.notes, "no principal: no policy matches")
		return s
	}
	s.subject = p.Subject
	act := newActivation(p)
	var matched []int
	for i, cp := range e.policies {
		ok, err := cp.when.eval(act)
		if err != nil {
			s.notes = append(s.notes, fmt.Sprintf("policy %q: when: %v (treated as not matching)", cp.name, err))
			continue
		}
		if ok {
			matched = append(matched, i)
			s.policies = append(s.policies, cp.name)
		}
	}
	s.tables = e.tablesFor(matched)
	return s
}

// tablesFor returns the merged rule tables of the matched policies.
func (e *Engine) tablesFor(matched []int) map[string]*targetTable {
	key := matchKey(matched)
	e.mu.Lock()
	t, ok := e.tables[key]
	e.mu.Unlock()
	if ok {
		return t
	}
	t = map[string]*targetTable{}
	for _, i := range matched {
		for name, pt := range e.policies[i].tables {
			tt := t[name]
			if tt == nil {
				tt = newTargetTable(name, targetInfo{schema: pt.schema, requireReview: pt.requireReview})
				t[name] = tt
			}
			tt.merge(pt)
		}
	}
	for name, tt := range t {
		if len(tt.maskRules) > 0 {
			tt.masks = newMaskSet(name, tt.maskRules)
		}
	}
	e.mu.Lock()
	if len(e.tables) < maxCachedTableSets {
		e.tables[key] = t
	}
	e.mu.Unlock()
	return t
}

func matchKey(matched []int) string {
	b := make([]byte, 0, len(matched)*3)
	for _, i := range matched {
		b = fmt.Appendf(b, "%d,", i)
	}
	return string(b)
}
