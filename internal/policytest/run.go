package policytest

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// defaultMaxQueryBytes is the proxy's own default, used when a Config
// built in Go leaves the limit at zero (config.Parse fills it in).
const defaultMaxQueryBytes = config.DefaultMaxQueryBytes

// Result is the outcome of one case.
type Result struct {
	Case   Case
	Passed bool
	// Got is the decision policy reached. It is the zero Decision (Rule
	// "") when none was made: an unsupported request kind, a target or
	// issuer the configuration does not have. See Decided.
	Got policy.Decision
	// Message says why the case failed; "" when it passed.
	Message string
	// Policies are the policies whose `when` held for the identity, and
	// Notes the conditions that failed to evaluate (treated as not
	// matching): what an operator needs to see why a case went wrong.
	Policies []string
	Notes    []string
	// Request describes the http or kube request as decided ("delete
	// pods \"web\" in namespace \"staging\""); "" for sql and when the
	// request could not be parsed.
	Request string
}

// Decided reports whether a decision was made for the case (every
// decision names a rule, builtin ones included).
func (r Result) Decided() bool { return r.Got.Rule != "" }

// Validate checks the suite against the configuration it is meant for:
// every case's target and issuer exist, and its groups claim is one a
// token could carry. Problems are *config.Error values positioned in the
// test file, joined. Run reports the same problems as failing cases, so
// that skipping Validate never makes a case pass.
func (s *Suite) Validate(cfg *config.Config) error {
	var errs []error
	for i := range s.Cases {
		c := &s.Cases[i]
		if findTarget(cfg, c.Target) == nil {
			errs = append(errs, s.errorAt(c, "target", fmt.Sprintf("no target named %q in %s", c.Target, cfgName(cfg))))
		}
		if _, err := c.Principal(cfg); err != nil {
			key := "identity.claims"
			var ie *issuerError
			if errors.As(err, &ie) {
				key = "identity.issuer"
			}
			errs = append(errs, s.errorAt(c, key, err.Error()))
		}
	}
	return errors.Join(errs...)
}

func (s *Suite) errorAt(c *Case, key, msg string) *config.Error {
	return &config.Error{File: s.file, Line: c.line(key), Path: c.Path + "." + key, Msg: msg}
}

// Run decides every case with eng, compiled from cfg, and compares the
// decision with the expectation. It never stops early: a case that cannot
// be decided is a failed Result, with a Message saying why.
func (s *Suite) Run(eng *policy.Engine, cfg *config.Config) []Result {
	out := make([]Result, 0, len(s.Cases))
	for _, c := range s.Cases {
		out = append(out, runCase(c, eng, cfg))
	}
	return out
}

func runCase(c Case, eng *policy.Engine, cfg *config.Config) Result {
	r := Result{Case: c}
	fail := func(format string, args ...any) Result {
		r.Message = fmt.Sprintf(format, args...)
		return r
	}
	if c.Kind != KindSQL && c.Kind != KindHTTP && c.Kind != KindKube {
		return fail("no request to decide")
	}
	t := findTarget(cfg, c.Target)
	if t == nil {
		return fail("no target named %q in %s", c.Target, cfgName(cfg))
	}
	if want := targetTypeFor(c.Kind); t.Type != want {
		return fail("target %q is %s %s target; %s needs %s %s target", t.Name, article(t.Type), t.Type, c.Kind, article(want), want)
	}
	p, err := c.Principal(cfg)
	if err != nil {
		return fail("identity: %v", err)
	}

	subject := eng.Bind(p)
	r.Policies, r.Notes = subject.Policies(), subject.Notes()
	var d policy.Decision
	switch c.Kind {
	case KindSQL:
		// The proxy checks the target at login, before any statement: a
		// subject that may not connect is refused whatever the SQL.
		d = subject.CanConnect(t.Name)
		if d.Effect == policy.Allow {
			d = decideSQL(subject, t, c.SQL, cfg.Limits.MaxQueryBytes)
		}
	case KindHTTP:
		req, err := ParseHTTPRequest(c.HTTP, c.Headers)
		if err != nil {
			return fail("%v", err)
		}
		r.Request = req.Method + " " + req.Path
		d = subject.DecideHTTP(t.Name, req)
	case KindKube:
		req, err := ParseKubeCommand(c.Kube)
		if err != nil {
			return fail("%v", err)
		}
		r.Request = policy.DescribeKube(req)
		d = subject.DecideKube(t.Name, req)
	}
	r.Got = d

	var problems []string
	if d.Effect != c.Expect {
		problems = append(problems, fmt.Sprintf("want %s, got %s (rule %s)", c.Expect, d.Effect, d.Rule))
	}
	if c.Rule != "" && d.Rule != c.Rule {
		problems = append(problems, fmt.Sprintf("want rule %s, got rule %s", c.Rule, d.Rule))
	}
	if c.Policy != "" && d.Policy != c.Policy {
		problems = append(problems, fmt.Sprintf("want policy %s, got policy %s", c.Policy, orDash(d.Policy)))
	}
	if c.ReasonContains != "" && !strings.Contains(d.Reason, c.ReasonContains) {
		problems = append(problems, fmt.Sprintf("reason does not contain %q", c.ReasonContains))
	}
	if len(problems) > 0 {
		return fail("%s; reason: %s", strings.Join(problems, "; "), d.Reason)
	}
	r.Passed = true
	return r
}

// decideSQL decides a query string as the PostgreSQL proxy's session does:
// the size limit, then the parser, then the subject's rules. Any refusal
// before the rules is a builtin deny, worded as the proxy words it.
func decideSQL(s *policy.Subject, t *config.Target, q string, maxBytes int) policy.Decision {
	if maxBytes <= 0 {
		maxBytes = defaultMaxQueryBytes
	}
	if len(q) > maxBytes {
		return policy.Decision{Effect: policy.Deny, Rule: policy.RuleBuiltin,
			Reason: fmt.Sprintf("statement of %d bytes exceeds the limit of %d bytes", len(q), maxBytes)}
	}
	facts, err := sqlfacts.Extract(q, sqlfacts.Options{Schema: t.Schema})
	if err != nil {
		return policy.Decision{Effect: policy.Deny, Rule: policy.RuleBuiltin,
			Reason: "warden could not parse the statement: " + err.Error()}
	}
	d := s.DecideFacts(t.Name, facts)
	if d.Effect != policy.Allow {
		return d
	}
	// Each case is a fresh session, so an EXECUTE can only run a statement
	// PREPAREd earlier in the same query string (whose accesses DecideFacts
	// has decided); the proxy refuses any other name (session.go, decide).
	prepared := map[string]bool{}
	for _, st := range facts.Statements {
		if st.ExecuteName != "" && !prepared[st.ExecuteName] {
			msg := fmt.Sprintf("prepared statement %q is not known to warden", st.ExecuteName)
			return policy.Decision{Effect: policy.Deny, Rule: policy.RuleBuiltin, Reason: msg, Summary: msg}
		}
		if st.PrepareName != "" {
			prepared[st.PrepareName] = true
		}
	}
	return d
}

// issuerError is an identity.issuer that names no configured issuer.
type issuerError struct{ issuer string }

func (e *issuerError) Error() string {
	return fmt.Sprintf("no OIDC issuer %q in the configuration's identity.oidc", e.issuer)
}

// Principal returns the Principal the proxy would get from a verified
// token carrying the case's claims (see identity's OIDC verifier): Subject
// is sub, Issuer the chosen issuer (the first configured one unless
// identity.issuer names another), Groups read from that issuer's
// groups_claim by the verifier's rules, and Claims every claim, sub and
// iss included. A groups claim a real token could not carry (a number, a
// list with a non-string) is an error, as it is at login.
func (c *Case) Principal(cfg *config.Config) (*identity.Principal, error) {
	var iss *config.OIDCIssuer
	for i := range cfg.Identity.OIDC {
		o := &cfg.Identity.OIDC[i]
		if c.Identity.Issuer == "" || o.Issuer == c.Identity.Issuer {
			iss = o
			break
		}
	}
	if iss == nil && c.Identity.Issuer != "" {
		return nil, &issuerError{c.Identity.Issuer}
	}
	groupsClaim, issuer := config.DefaultGroupsClaim, ""
	if iss != nil {
		issuer = iss.Issuer
		if iss.GroupsClaim != "" {
			groupsClaim = iss.GroupsClaim
		}
	}
	claims := make(map[string]any, len(c.Identity.Claims)+2)
	maps.Copy(claims, c.Identity.Claims)
	claims["sub"] = c.Identity.Sub
	if issuer != "" {
		claims["iss"] = issuer
	}
	groups, err := groupsFrom(claims[groupsClaim])
	if err != nil {
		return nil, fmt.Errorf("claim %q (the groups_claim of issuer %q) %v; a token with it is rejected", groupsClaim, issuer, err)
	}
	return &identity.Principal{
		Subject: c.Identity.Sub,
		Issuer:  issuer,
		Groups:  groups,
		Claims:  claims,
	}, nil
}

// groupsFrom reads a groups claim by the rules of identity's verifier
// (oidc.go, groupsFrom): absent or null is no groups, a string is one
// group, an array of strings the groups; anything else is an error.
func groupsFrom(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
		return []string{v}, nil
	case []any:
		groups := make([]string, 0, len(v))
		for i, g := range v {
			s, ok := g.(string)
			if !ok {
				return nil, fmt.Errorf("element %d is %s, want string", i, jsonType(g))
			}
			groups = append(groups, s)
		}
		return groups, nil
	}
	return nil, fmt.Errorf("is %s, want string or array of strings", jsonType(v))
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// targetTypeFor is the target type a request kind is decided on.
func targetTypeFor(kind string) string {
	switch kind {
	case KindHTTP:
		return "http"
	case KindKube:
		return "kubernetes"
	}
	return "postgres"
}

func article(s string) string {
	if s == "http" || (s != "" && strings.ContainsRune("aeiou", rune(s[0]))) {
		return "an"
	}
	return "a"
}

func findTarget(cfg *config.Config, name string) *config.Target {
	for i := range cfg.Targets {
		if cfg.Targets[i].Name == name {
			return &cfg.Targets[i]
		}
	}
	return nil
}

func cfgName(cfg *config.Config) string {
	if cfg.Path != "" {
		return cfg.Path
	}
	return "the configuration"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
