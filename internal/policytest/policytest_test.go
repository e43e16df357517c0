package policytest_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/policytest"
)

// load loads a config and compiles it.
func load(t *testing.T, path string) (*config.Config, *policy.Engine) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	eng, err := policy.Compile(cfg)
	if err != nil {
		t.Fatalf("policy.Compile: %v", err)
	}
	return cfg, eng
}

// TestRun runs testdata/tests.yaml against testdata/warden.yaml. Every case
// is listed here with the outcome it must have: the "broken:" cases must be
// reported as failures with the message given, the others must pass.
func TestRun(t *testing.T) {
	cfg, eng := load(t, "testdata/warden.yaml")
	suite, err := policytest.Load("testdata/tests.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := suite.Validate(cfg); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	want := []struct {
		name    string
		pass    bool
		message string // for failures: the whole Message
	}{
		{name: "analysts read orders", pass: true},
		{name: "no deletes for analysts", pass: true},
		{name: "a multi-statement query is denied as a whole", pass: true},
		{name: "ops delete orders", pass: true},
		{name: "deny beats allow for ops", pass: true},
		{name: "ops may not drop", pass: true},
		{name: "unqualified names resolve to the target's schema", pass: true},
		{name: "a subject that cannot connect is denied", pass: true},
		{name: "the partner issuer reads groups from roles", pass: true},
		{name: "the partner issuer ignores a groups claim", pass: true},
		{name: "a numeric claim compares as a number", pass: true},
		{name: "unparseable SQL is denied", pass: true},
		{name: "SET ROLE is refused whatever the policy", pass: true},
		{name: "EXECUTE of a statement warden never saw is denied", pass: true},
		{name: "EXECUTE of a statement prepared in the same query", pass: true},
		{name: "broken: wrong effect",
			message: `want allow, got deny (rule default deny); reason: delete on public.orders is not allowed for subject "agent-1" on target "prod-db"`},
		{name: "broken: wrong rule",
			message: "want rule analyst-agents/allow[1], got rule analyst-agents/allow[0]; reason: allowed by analyst-agents/allow[0]"},
		{name: "broken: wrong policy",
			message: "want policy analyst-agents, got policy ops; reason: allowed by ops/allow[0]"},
		{name: "broken: wrong reason",
			message: `reason does not contain "truncate"; reason: drop on public.orders is denied by ops/deny[0] for subject "ops-1" on target "prod-db"`},
		{name: "broken: http on a postgres target",
			message: `target "prod-db" is a postgres target; http needs an http target`},
		{name: "broken: kube on a postgres target",
			message: `target "prod-db" is a postgres target; kube needs a kubernetes target`},
		{name: "broken: a kubectl command warden does not model",
			message: `kube command "apply -f app.yaml": kubectl apply reads the objects from a file (-f), which warden cannot see; write the request it makes instead: "create deployment web", "patch deployment web"`},
		{name: "broken: a lower-case method",
			message: `http request "get /v1/invoices/7": methods are case-sensitive; write GET`},
		{name: "billing reads an invoice", pass: true},
		{name: "billing may not read the internal view", pass: true},
		{name: "billing searches with JSON", pass: true},
		{name: "billing search needs the JSON header", pass: true},
		{name: "refunds wait for a human", pass: true},
		{name: "another identity gets nothing from billing", pass: true},
		{name: "deployers list pods in staging", pass: true},
		{name: "deployers follow logs in staging", pass: true},
		{name: "deployers may not list pods in every namespace", pass: true},
		{name: "the default namespace is not staging", pass: true},
		{name: "prod secrets are denied", pass: true},
		{name: "deleting a pod waits for a human", pass: true},
		{name: "exec waits for a human", pass: true},
		{name: "attach is not granted", pass: true},
	}

	results := suite.Run(eng, cfg)
	if len(results) != len(want) {
		t.Fatalf("got %d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		r := results[i]
		t.Run(w.name, func(t *testing.T) {
			if r.Case.Name != w.name {
				t.Fatalf("result %d is case %q, want %q", i, r.Case.Name, w.name)
			}
			if r.Passed != w.pass {
				t.Fatalf("Passed = %v, want %v (message %q, decision %+v)", r.Passed, w.pass, r.Message, r.Got)
			}
			if w.pass && r.Message != "" {
				t.Errorf("a passing case has Message %q", r.Message)
			}
			if !w.pass && r.Message != w.message {
				t.Errorf("Message =\n  %s\nwant\n  %s", r.Message, w.message)
			}
			// A case fails without a decision only when it cannot be
			// decided at all (wrong target type, unparseable request).
			if w.pass && !r.Decided() {
				t.Errorf("a passing %s case made no decision", r.Case.Kind)
			}
			// Decided failures end with the decision's reason.
			if !w.pass && strings.Contains(w.message, "; reason: ") != r.Decided() {
				t.Errorf("Decided = %v for message %q", r.Decided(), r.Message)
			}
			if r.Case.Kind != policytest.KindSQL && r.Decided() && r.Request == "" {
				t.Errorf("a decided %s case does not say what request it decided", r.Case.Kind)
			}
		})
	}
}

// TestRunWithoutValidate: problems Validate reports are failures in Run
// too, so that a caller who skips Validate cannot get a pass.
func TestRunWithoutValidate(t *testing.T) {
	cfg, eng := load(t, "testdata/warden.yaml")
	const tests = `
cases:
  - name: unknown target
    identity: { sub: agent-1 }
    target: staging-db
    sql: SELECT 1
    expect: deny
  - name: unknown issuer
    identity: { sub: agent-1, issuer: https://evil.example.com }
    target: prod-db
    sql: SELECT 1
    expect: deny
  - name: groups a token cannot carry
    identity: { sub: agent-1, claims: { groups: [analysts, 7] } }
    target: prod-db
    sql: SELECT 1
    expect: deny
`
	suite, err := policytest.Parse([]byte(tests), "tests.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wantRun := []string{
		`no target named "staging-db" in testdata/warden.yaml`,
		`identity: no OIDC issuer "https://evil.example.com" in the configuration's identity.oidc`,
		`identity: claim "groups" (the groups_claim of issuer "https://idp.example.com") element 1 is a number, want string; a token with it is rejected`,
	}
	for i, r := range suite.Run(eng, cfg) {
		if r.Passed || r.Message != wantRun[i] || r.Decided() {
			t.Errorf("case %q: Passed=%v Decided=%v Message=%q, want a failure with %q", r.Case.Name, r.Passed, r.Decided(), r.Message, wantRun[i])
		}
	}
	wantValidate := []string{
		`tests.yaml:5: cases[0].target: no target named "staging-db" in testdata/warden.yaml`,
		`tests.yaml:9: cases[1].identity.issuer: no OIDC issuer "https://evil.example.com" in the configuration's identity.oidc`,
		`tests.yaml:14: cases[2].identity.claims: claim "groups" (the groups_claim of issuer "https://idp.example.com") element 1 is a number, want string; a token with it is rejected`,
	}
	err = suite.Validate(cfg)
	if got := errorLines(err); !slices.Equal(got, wantValidate) {
		t.Errorf("Validate:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(wantValidate, "\n  "))
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Errorf("Validate error is not a *config.Error: %T", err)
	}
}

func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// TestParseErrors: every problem in a test file is reported, each with
// file, line and key path.
func TestParseErrors(t *testing.T) {
	const ok = `    identity: { sub: agent-1 }
    target: prod-db
    sql: SELECT 1
    expect: allow
`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown key with a suggestion",
			yaml: "cases:\n  - name: a\n" + ok + "    expct: deny\n",
			want: []string{`tests.yaml:7: cases[0].expct: unknown key (did you mean "expect"?)`},
		},
		{
			name: "unknown key in identity",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1, group: [analysts] }\n    target: prod-db\n    sql: SELECT 1\n    expect: allow\n",
			want: []string{`tests.yaml:3: cases[0].identity.group: unknown key`},
		},
		{
			name: "unknown top-level key",
			yaml: "version: 2\ncases:\n  - name: a\n" + ok,
			want: []string{`tests.yaml:1: version: unknown key`},
		},
		{
			name: "name required",
			yaml: "cases:\n  - " + strings.TrimLeft(ok, " "),
			want: []string{`tests.yaml:2: cases[0].name: required`},
		},
		{
			name: "names unique",
			yaml: "cases:\n  - name: a\n" + ok + "  - name: a\n" + ok,
			want: []string{`tests.yaml:7: cases[1].name: duplicate name "a" (first used on line 2)`},
		},
		{
			name: "expect required",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1 }\n    target: prod-db\n    sql: SELECT 1\n",
			want: []string{`tests.yaml:2: cases[0].expect: required: "allow", "review" or "deny"`},
		},
		{
			name: "expect allow or deny",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1 }\n    target: prod-db\n    sql: SELECT 1\n    expect: Allowed\n",
			want: []string{`tests.yaml:6: cases[0].expect: "Allowed" is not "allow", "review" or "deny"`},
		},
		{
			name: "no request",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1 }\n    target: prod-db\n    expect: allow\n",
			want: []string{`tests.yaml:2: cases[0]: no request: give one of sql, http or kube`},
		},
		{
			name: "two requests",
			yaml: "cases:\n  - name: a\n" + ok + "    http: GET /v1/x\n",
			want: []string{`tests.yaml:7: cases[0].http: a case has exactly one request, and this one also has sql`},
		},
		{
			name: "empty sql",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1 }\n    target: prod-db\n    sql: ''\n    expect: allow\n",
			want: []string{`tests.yaml:5: cases[0].sql: must not be empty`},
		},
		{
			name: "identity and target required",
			yaml: "cases:\n  - name: a\n    sql: SELECT 1\n    expect: deny\n",
			want: []string{
				`tests.yaml:2: cases[0].identity: required: { sub: ..., claims: {...} }`,
				`tests.yaml:2: cases[0].target: required`,
			},
		},
		{
			name: "sub required",
			yaml: "cases:\n  - name: a\n    identity: { claims: { groups: [x] } }\n    target: prod-db\n    sql: SELECT 1\n    expect: deny\n",
			want: []string{`tests.yaml:3: cases[0].identity.sub: required (a token without sub is rejected)`},
		},
		{
			name: "sub and iss are not claims",
			yaml: "cases:\n  - name: a\n    identity:\n      sub: agent-1\n      claims:\n        sub: agent-2\n        iss: https://idp.example.com\n    target: prod-db\n    sql: SELECT 1\n    expect: deny\n",
			want: []string{
				`tests.yaml:6: cases[0].identity.claims.sub: set by identity.sub, not in claims`,
				`tests.yaml:7: cases[0].identity.claims.iss: set by identity.issuer, not in claims`,
			},
		},
		{
			name: "claims must be a mapping",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1, claims: [analysts] }\n    target: prod-db\n    sql: SELECT 1\n    expect: deny\n",
			want: []string{`tests.yaml:3: cases[0].identity.claims: expected a mapping of claims, got a list`},
		},
		{
			name: "duplicate key",
			yaml: "cases:\n  - name: a\n" + ok + "    target: reports\n",
			want: []string{`tests.yaml:7: cases[0].target: duplicate key (first defined on line 4)`},
		},
		{
			name: "aliases refused",
			yaml: "cases:\n  - name: a\n    identity: &who { sub: agent-1 }\n    target: prod-db\n    sql: SELECT 1\n    expect: deny\n  - name: b\n    identity: *who\n    target: prod-db\n    sql: SELECT 1\n    expect: deny\n",
			want: []string{`tests.yaml:8: cases[1].identity: YAML aliases (*name) are not supported`},
		},
		{
			name: "several problems at once",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1 }\n    target: prod-db\n    sql: SELECT 1\n    expect: maybe\n  - name: b\n    identity: { sub: agent-1 }\n    sql: SELECT 1\n    kube: get pods\n    expect: deny\n",
			want: []string{
				`tests.yaml:6: cases[0].expect: "maybe" is not "allow", "review" or "deny"`,
				`tests.yaml:7: cases[1].target: required`,
				`tests.yaml:10: cases[1].kube: a case has exactly one request, and this one also has sql`,
			},
		},
		{
			name: "headers belong to http",
			yaml: "cases:\n  - name: a\n" + ok + "    headers: { X-A: b }\n",
			want: []string{`tests.yaml:7: cases[0].headers: headers belong to an http request; this case has sql`},
		},
		{
			name: "header names and values",
			yaml: "cases:\n  - name: a\n    identity: { sub: agent-1 }\n    target: billing\n    http: GET /x\n    headers:\n      bad name: x\n      X-A: { b: c }\n      x-b: 1\n      X-B: 2\n    expect: allow\n",
			want: []string{
				`tests.yaml:7: cases[0].headers.bad name: "bad name" is not a valid header name`,
				`tests.yaml:8: cases[0].headers.X-A: expected a value or a list of values, got a mapping`,
				`tests.yaml:10: cases[0].headers.X-B: duplicate header (first defined on line 9); give several values as a list`,
			},
		},
		{
			name: "cases must be a list",
			yaml: "cases:\n  name: a\n",
			want: []string{`tests.yaml:2: cases: expected a list of test cases, got a mapping`},
		},
		{
			name: "no cases",
			yaml: "cases: []\n",
			want: []string{`tests.yaml:1: cases: no test cases: a test file that tests nothing passes nothing`},
		},
		{
			name: "empty file",
			yaml: "# nothing here\n",
			want: []string{`tests.yaml: empty test file`},
		},
		{
			name: "two documents",
			yaml: "cases:\n  - name: a\n" + ok + "---\ncases: []\n",
			want: []string{`tests.yaml:7: more than one YAML document; a test file is a single document`},
		},
		{
			name: "not a mapping",
			yaml: "- name: a\n",
			want: []string{`tests.yaml:1: expected a mapping with a cases: list at the top level`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := policytest.Parse([]byte(tc.yaml), "tests.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded with %d cases, want errors", len(s.Cases))
			}
			if got := errorLines(err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestParse checks what a valid file decodes to, claims above all: they
// must have the types a token's JSON decodes to.
func TestParse(t *testing.T) {
	const tests = `
cases:
  - name: everything
    identity:
      sub: agent-1
      issuer: https://partner.example.com
      claims:
        groups: [a, b]
        tier: 2
        ratio: 0.5
        on: true
        off: null
        nested: { team: data, ids: [1, x] }
    target: prod-db
    sql: |
      SELECT 1;
      SELECT 2
    expect: deny
    rule: ops/deny[0]
    policy: ops
    reason_contains: drop
  - name: later kinds parse
    identity: { sub: agent-1 }
    target: cluster
    kube: delete pods -n staging
    expect: deny
`
	s, err := policytest.Parse([]byte(tests), "tests.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(s.Cases) != 2 {
		t.Fatalf("got %d cases, want 2", len(s.Cases))
	}
	c := s.Cases[0]
	wantClaims := map[string]any{
		"groups": []any{"a", "b"},
		"tier":   float64(2),
		"ratio":  0.5,
		"on":     true,
		"off":    nil,
		"nested": map[string]any{"team": "data", "ids": []any{float64(1), "x"}},
	}
	if !equalJSON(c.Identity.Claims, wantClaims) {
		t.Errorf("claims = %#v, want %#v", c.Identity.Claims, wantClaims)
	}
	if c.Name != "everything" || c.Line != 3 || c.Path != "cases[0]" || c.Kind != policytest.KindSQL ||
		c.SQL != "SELECT 1;\nSELECT 2\n" || c.Expect != policy.Deny || c.Rule != "ops/deny[0]" ||
		c.Policy != "ops" || c.ReasonContains != "drop" || c.Target != "prod-db" ||
		c.Identity.Sub != "agent-1" || c.Identity.Issuer != "https://partner.example.com" {
		t.Errorf("case 0 = %+v", c)
	}
	if c := s.Cases[1]; c.Kind != policytest.KindKube || c.Kube != "delete pods -n staging" || c.Line != 22 {
		t.Errorf("case 1 = %+v", c)
	}
}

func equalJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		return ok && maps.EqualFunc(a, b, equalJSON)
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, equalJSON)
	}
	return a == b
}

// TestPrincipalMatchesVerifiedToken: the Principal a case speaks for is
// the one the proxy gets when a real token with the same claims is
// verified by identity's OIDC verifier, against real issuers on loopback
// (one with the default groups claim, one with "roles").
func TestPrincipalMatchesVerifiedToken(t *testing.T) {
	first, second := identitytest.NewIssuer(t), identitytest.NewIssuer(t)
	secondCfg := second.Config
	secondCfg.GroupsClaim = "roles"
	cfg := &config.Config{Identity: config.Identity{OIDC: []config.OIDCIssuer{first.Config, secondCfg}}}
	v, err := identity.NewOIDC(context.Background(), cfg.Identity.OIDC, identity.Options{})
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}

	tests := []struct {
		name   string
		issuer *identitytest.Issuer
		claims string // the YAML of identity.claims
	}{
		{"no claims", first, `{}`},
		{"groups list", first, `{ groups: [analysts, sre] }`},
		{"groups string", first, `{ groups: analysts }`},
		{"other claims", first, `{ groups: [a], env: prod, tier: 2, ratio: 1.5, flags: { beta: true }, scope: "read write" }`},
		{"roles on the second issuer", second, `{ roles: [analysts], groups: [ignored] }`},
		{"no roles on the second issuer", second, `{ groups: [ignored] }`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			issuerLine := ""
			if tc.issuer == second {
				issuerLine = ", issuer: " + second.URL
			}
			doc := "cases:\n  - name: x\n    identity: { sub: agent-1" + issuerLine + ", claims: " + tc.claims +
				" }\n    target: prod-db\n    sql: SELECT 1\n    expect: deny\n"
			s, err := policytest.Parse([]byte(doc), "tests.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := s.Cases[0].Principal(cfg)
			if err != nil {
				t.Fatalf("Principal: %v", err)
			}

			tok := tc.issuer.Token(t, "agent-1", s.Cases[0].Identity.Claims, time.Minute)
			want, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != want.Subject || got.Issuer != want.Issuer || !slices.Equal(got.Groups, want.Groups) {
				t.Errorf("got {Subject %q Issuer %q Groups %q}, token gives {Subject %q Issuer %q Groups %q}",
					got.Subject, got.Issuer, got.Groups, want.Subject, want.Issuer, want.Groups)
			}
			// The token also carries the claims its issuer sets for every
			// token (aud, exp, iat, nbf, jti); apart from those the claim
			// sets must be equal, types included.
			wantClaims := maps.Clone(want.Claims)
			for _, k := range []string{"aud", "exp", "iat", "nbf", "jti"} {
				delete(wantClaims, k)
			}
			if !equalJSON(got.Claims, wantClaims) {
				t.Errorf("claims = %#v\ntoken gives %#v", got.Claims, wantClaims)
			}
		})
	}
}

// TestExample keeps examples/ honest: the example policy tests all pass
// against the example configurations, and show the format with allows,
// denies (and, for the http and kubernetes example, reviews) of each
// request kind the example is about.
func TestExample(t *testing.T) {
	for _, ex := range []struct {
		config, tests string
		kinds         []string
		review        bool
	}{
		{"../../examples/warden.yaml", "../../examples/policy-tests.yaml", []string{policytest.KindSQL}, false},
		{"../../examples/http-kubernetes/warden.yaml", "../../examples/http-kubernetes/tests.yaml", []string{policytest.KindHTTP, policytest.KindKube}, true},
	} {
		t.Run(ex.tests, func(t *testing.T) {
			cfg, eng := load(t, ex.config)
			suite, err := policytest.Load(ex.tests)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := suite.Validate(cfg); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			results := suite.Run(eng, cfg)
			if len(results) < 12 {
				t.Errorf("the example has %d cases; it is meant to show the format with about a dozen", len(results))
			}
			count := map[string]map[policy.Effect]int{}
			for _, r := range results {
				if !r.Passed {
					t.Errorf("FAIL %s: %s", r.Case.Name, r.Message)
				}
				if count[r.Case.Kind] == nil {
					count[r.Case.Kind] = map[policy.Effect]int{}
				}
				count[r.Case.Kind][r.Case.Expect]++
			}
			for _, k := range ex.kinds {
				c := count[k]
				if c[policy.Allow] == 0 || c[policy.Deny] == 0 || (ex.review && c[policy.Review] == 0) {
					t.Errorf("the example's %s cases expect %d allows, %d denies and %d reviews; it should show each", k, c[policy.Allow], c[policy.Deny], c[policy.Review])
				}
			}
		})
	}
}
