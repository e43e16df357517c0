package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// reviewConfig exercises review rules (issue 4). Line numbers matter to
// TestCompileReviewErrors.
const reviewConfig = `listen: { postgres: 127.0.0.1:6432 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
admins: '"sre" in groups'
targets:
  - { name: prod-db, type: postgres, address: "127.0.0.1:5432", database: app, user: warden, require_review: true }
  - { name: dev-db, type: postgres, address: "127.0.0.1:5433", database: dev, user: warden }
policies:
  - name: agents
    when: '"agents" in groups'
    allow:
      - target: prod-db
        sql: { select: ["public.*"], update: [public.orders], delete: ["public.*"], drop: [public.tmp_*] }
      - target: dev-db
        sql: { select: ["*.*"], delete: ["*.*"], truncate: ["*.*"] }
    review:
      - target: prod-db
        sql: { delete: [public.orders, public.secrets], insert: [public.payments] }
      - target: prod-db
        sql: { delete: [public.payments], update: [public.payments] }
        approvers: '"finance" in groups'
        min_approvals: 2
    deny:
      - target: prod-db
        sql: { delete: [public.audit, public.secrets] }
  - name: contractors
    when: '"contractors" in groups'
    review:
      - target: prod-db
        sql: { update: [public.orders] }
        approvers: claims.?team.orValue("") == "payments"
  - name: ops
    when: '"ops" in groups'
    allow:
      - target: prod-db
        sql: { delete: [public.orders] }
`

var (
	agent      = principal("agent-1", []string{"agents"}, nil)
	agentOps   = principal("agent-2", []string{"agents", "ops"}, nil)
	contractor = principal("contractor-1", []string{"contractors"}, nil)
	sre        = principal("sre-1", []string{"sre"}, nil)
	finance    = principal("fin-1", []string{"finance"}, nil)
	sreFinance = principal("sre-2", []string{"sre", "finance"}, nil)
	payments   = principal("lead-1", nil, map[string]any{"team": "payments"})
)

// risky marks a statement as the classifier marks UPDATE/DELETE without
// WHERE, DDL and TRUNCATE.
func risky(st *sqlfacts.Statement) *sqlfacts.Statement {
	st.HighRisk = true
	return st
}

func TestDecideReview(t *testing.T) {
	e := compileTest(t, reviewConfig)
	const (
		r0 = "agents/review[0]"
		r1 = "agents/review[1]"
	)
	cases := []struct {
		name      string
		who       *identity.Principal
		target    string
		st        *sqlfacts.Statement
		effect    Effect
		policy    string
		rule      string
		min       int
		approvers string
		reason    string // exact, if set
	}{
		// One access, every combination of matching kinds.
		{"allow only", agent, "prod-db", stmt("select", "select public.orders"),
			Allow, "agents", "agents/allow[0]", 0, "", "allowed by agents/allow[0]"},
		{"review only", agent, "prod-db", stmt("insert", "insert public.payments"),
			Review, "agents", r0, 1, "",
			`insert on public.payments is held for review by agents/review[0] for subject "agent-1" on target "prod-db"; needs 1 approval from the admins`},
		{"review beats allow", agent, "prod-db", stmt("delete", "delete public.orders"),
			Review, "agents", r0, 1, "", ""},
		{"review of one policy beats allow of another", agentOps, "prod-db", stmt("delete", "delete public.orders"),
			Review, "agents", r0, 1, "", ""},
		{"deny beats allow", agent, "prod-db", stmt("delete", "delete public.audit"),
			Deny, "agents", "agents/deny[0]", 0, "", ""},
		{"deny beats review and allow", agent, "prod-db", stmt("delete", "delete public.secrets"),
			Deny, "agents", "agents/deny[0]", 0, "", ""},
		{"nothing covers: default deny", agent, "prod-db", stmt("insert", "insert public.other"),
			Deny, "", RuleDefaultDeny, 0, "", ""},
		{"review rule with approvers and min_approvals", agent, "prod-db", stmt("delete", "delete public.payments"),
			Review, "agents", r1, 2, r1,
			`delete on public.payments is held for review by agents/review[1] for subject "agent-1" on target "prod-db"; needs 2 approvals from approvers of agents/review[1]`},

		// Several accesses: the worst decides.
		{"allowed and held: held", agent, "prod-db", stmt("insert", "select public.orders", "insert public.payments"),
			Review, "agents", r0, 1, "", ""},
		{"held and uncovered: default deny", agent, "prod-db", stmt("insert", "insert public.payments", "insert public.other"),
			Deny, "", RuleDefaultDeny, 0, "", ""},
		{"held and denied: deny", agent, "prod-db", stmt("delete", "delete public.orders", "delete public.audit"),
			Deny, "agents", "agents/deny[0]", 0, "", ""},
		{"held by two rules: both must be satisfied", agent, "prod-db", stmt("delete", "delete public.orders", "delete public.payments"),
			Review, "agents", r0, 2, r0 + "," + r1,
			`delete on public.orders is held for review by agents/review[0] for subject "agent-1" on target "prod-db"; needs 2 approvals from approvers of agents/review[0] and agents/review[1]`},
		{"same rule twice is named once", agent, "prod-db", stmt("delete", "delete public.orders", "insert public.payments"),
			Review, "agents", r0, 1, "", ""},

		// require_review on prod-db, not on dev-db.
		{"require_review holds an allowed high-risk statement", agent, "prod-db", risky(stmt("update", "select public.orders", "update public.orders")),
			Review, "", RuleRequireReview, 1, "",
			`update on public.orders is high-risk and target "prod-db" has require_review (policy allows it by agents/allow[0]) for subject "agent-1"; needs 1 approval from the admins`},
		{"require_review lets a statement that is not high-risk run", agent, "prod-db", stmt("update", "select public.orders", "update public.orders"),
			Allow, "agents", "agents/allow[0]", 0, "", ""},
		{"require_review: DDL", agent, "prod-db", risky(stmt("drop table", "drop public.tmp_1")),
			Review, "", RuleRequireReview, 1, "", ""},
		{"high-risk without require_review is allowed", agent, "dev-db", risky(stmt("truncate", "truncate public.orders")),
			Allow, "agents", "agents/allow[1]", 0, "", ""},
		{"a review rule decides a high-risk statement it holds", agent, "prod-db", risky(stmt("delete", "delete public.payments")),
			Review, "agents", r1, 2, r1, ""},
		{"require_review never turns a deny into a review", agent, "prod-db", risky(stmt("delete", "delete public.audit")),
			Deny, "agents", "agents/deny[0]", 0, "", ""},
		{"require_review never turns a default deny into a review", agent, "prod-db", risky(stmt("truncate", "truncate public.orders")),
			Deny, "", RuleDefaultDeny, 0, "", ""},
		{"require_review: high-risk statement touching no object", agent, "prod-db", risky(stmt("do")),
			Review, "", RuleRequireReview, 1, "",
			`do statement is high-risk and target "prod-db" has require_review (policy allows it by builtin: no object access) for subject "agent-1"; needs 1 approval from the admins`},
		{"refusals stay refusals", agent, "prod-db", risky(&sqlfacts.Statement{Kind: "set", Refusal: "SET ROLE is not allowed"}),
			Deny, "", RuleBuiltin, 0, "", ""},

		// A policy with only review rules: connecting is granted, and
		// only what it names can be held.
		{"review-only policy: held", contractor, "prod-db", stmt("update", "update public.orders"),
			Review, "contractors", "contractors/review[0]", 1, "contractors/review[0]", ""},
		{"review-only policy: nothing else", contractor, "prod-db", stmt("select", "select public.orders"),
			Deny, "", RuleDefaultDeny, 0, "", ""},
		{"review-only policy: no-object statements run", contractor, "prod-db", stmt("select"),
			Allow, "", RuleNoAccess, 0, "", ""},
		{"review-only policy: other targets", contractor, "dev-db", stmt("select"),
			Deny, "", RuleDefaultDeny, 0, "", `no policy grants subject "contractor-1" access to target "dev-db"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.Bind(c.who).DecideStatement(c.target, c.st)
			if d.Effect != c.effect || d.Policy != c.policy || d.Rule != c.rule {
				t.Fatalf("got %v %q %q (%s); want %v %q %q", d.Effect, d.Policy, d.Rule, d.Reason, c.effect, c.policy, c.rule)
			}
			if d.MinApprovals != c.min || d.Approvers != c.approvers {
				t.Errorf("min_approvals %d, approvers %q; want %d, %q", d.MinApprovals, d.Approvers, c.min, c.approvers)
			}
			if c.reason != "" && d.Reason != c.reason {
				t.Errorf("reason:\n got %q\nwant %q", d.Reason, c.reason)
			}
			if d.Allowed() != (c.effect == Allow) {
				t.Errorf("Allowed() = %v for %v", d.Allowed(), d.Effect)
			}
		})
	}
}

func TestCanConnectByReviewRule(t *testing.T) {
	e := compileTest(t, reviewConfig)
	d := e.Bind(contractor).CanConnect("prod-db")
	if d.Effect != Allow || d.Rule != "contractors/review[0]" || d.Reason != "connecting allowed by review rule contractors/review[0]" {
		t.Errorf("contractor CanConnect = %v %q (%s)", d.Effect, d.Rule, d.Reason)
	}
	// An allow rule names the decision when there is one, even if a
	// review rule comes first in the file.
	if d := e.Bind(agent).CanConnect("prod-db"); d.Rule != "agents/allow[0]" {
		t.Errorf("agent CanConnect rule = %q, want agents/allow[0]", d.Rule)
	}
}

func TestDecideFactsReview(t *testing.T) {
	e := compileTest(t, reviewConfig)
	s := e.Bind(agent)
	facts := func(sts ...*sqlfacts.Statement) *sqlfacts.Facts {
		f := &sqlfacts.Facts{}
		for _, st := range sts {
			f.Statements = append(f.Statements, *st)
		}
		return f
	}
	cases := []struct {
		name      string
		f         *sqlfacts.Facts
		effect    Effect
		rule      string
		index     int
		min       int
		approvers string
		reason    string
	}{
		{"review beats allow",
			facts(stmt("select", "select public.orders"), stmt("delete", "delete public.orders")),
			Review, "agents/review[0]", 1, 1, "",
			`statement 2 of 2 (delete): delete on public.orders is held for review by agents/review[0] for subject "agent-1" on target "prod-db"; needs 1 approval from the admins`},
		{"explicit deny beats an earlier review",
			facts(stmt("delete", "delete public.orders"), stmt("delete", "delete public.audit")),
			Deny, "agents/deny[0]", 1, 0, "", ""},
		{"default deny beats a later review",
			facts(stmt("insert", "insert public.other"), stmt("delete", "delete public.orders")),
			Deny, RuleDefaultDeny, 0, 0, "", ""},
		{"require_review in a later statement",
			facts(stmt("select", "select public.orders"), risky(stmt("update", "update public.orders"))),
			Review, RuleRequireReview, 1, 1, "", ""},
		{"held statements' rules are all required",
			facts(stmt("delete", "delete public.orders"), stmt("select", "select public.x"), stmt("delete", "delete public.payments")),
			Review, "agents/review[0]", 0, 2, "agents/review[0],agents/review[1]",
			`statement 1 of 3 (delete): delete on public.orders is held for review by agents/review[0] for subject "agent-1" on target "prod-db"; needs 2 approvals from approvers of agents/review[0] and agents/review[1]`},
		// A statement held for the admins bundled with one held by a
		// rule with its own approvers: an approver must be both.
		{"require_review and a rule with approvers",
			facts(risky(stmt("drop table", "drop public.tmp_1")), stmt("delete", "delete public.payments")),
			Review, RuleRequireReview, 0, 2, "require_review,agents/review[1]", ""},
		{"rules without approvers stay the admins'",
			facts(stmt("delete", "delete public.orders"), risky(stmt("drop table", "drop public.tmp_1"))),
			Review, "agents/review[0]", 0, 1, "",
			`statement 1 of 2 (delete): delete on public.orders is held for review by agents/review[0] for subject "agent-1" on target "prod-db"; needs 1 approval from the admins (agents/review[0], require_review)`},
		{"single held statement has no prefix",
			facts(stmt("delete", "delete public.orders")),
			Review, "agents/review[0]", 0, 1, "",
			`delete on public.orders is held for review by agents/review[0] for subject "agent-1" on target "prod-db"; needs 1 approval from the admins`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := s.DecideFacts("prod-db", c.f)
			if d.Effect != c.effect || d.Rule != c.rule || d.Statement != c.index {
				t.Fatalf("got %v %q statement %d (%s); want %v %q statement %d", d.Effect, d.Rule, d.Statement, d.Reason, c.effect, c.rule, c.index)
			}
			if d.MinApprovals != c.min || d.Approvers != c.approvers {
				t.Errorf("min_approvals %d, approvers %q; want %d, %q", d.MinApprovals, d.Approvers, c.min, c.approvers)
			}
			if c.reason != "" && d.Reason != c.reason {
				t.Errorf("reason:\n got %q\nwant %q", d.Reason, c.reason)
			}
		})
	}
}

// Real SQL through the real classifier: require_review follows HighRisk.
func TestRequireReviewWithParser(t *testing.T) {
	e := compileTest(t, reviewConfig)
	s := e.Bind(agent)
	cases := []struct {
		sql    string
		effect Effect
		rule   string
	}{
		{"UPDATE orders SET note = 'x' WHERE id = 1", Allow, "agents/allow[0]"},
		{"UPDATE orders SET note = 'x'", Review, RuleRequireReview},
		{"DELETE FROM customers WHERE id = 1", Allow, "agents/allow[0]"},
		{"DELETE FROM customers", Review, RuleRequireReview},
		{"DELETE FROM orders WHERE id = 1", Review, "agents/review[0]"},
		{"DROP TABLE tmp_1", Review, RuleRequireReview},
		{"DELETE FROM audit", Deny, "agents/deny[0]"},
		{"SELECT * FROM orders; DELETE FROM orders WHERE id = 1", Review, "agents/review[0]"},
	}
	for _, c := range cases {
		f, err := sqlfacts.Extract(c.sql, sqlfacts.Options{Schema: "public"})
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if d := s.DecideFacts("prod-db", f); d.Effect != c.effect || d.Rule != c.rule {
			t.Errorf("%s: got %v %q (%s); want %v %q", c.sql, d.Effect, d.Rule, d.Reason, c.effect, c.rule)
		}
		if d := s.DecideFacts("dev-db", f); d.Effect == Review {
			t.Errorf("%s on dev-db (no require_review, no review rules): held by %q", c.sql, d.Rule)
		}
	}
}

func TestReviewMessage(t *testing.T) {
	e := compileTest(t, reviewConfig)
	s := e.Bind(agent)
	cases := []struct {
		d    Decision
		want string
	}{
		{s.DecideStatement("prod-db", stmt("delete", "delete public.orders")),
			"warden: held for review: delete on public.orders needs approval [policy: agents, rule: agents/review[0]]"},
		{s.DecideStatement("prod-db", risky(stmt("update", "select public.orders", "update public.orders"))),
			"warden: held for review: update on public.orders needs approval (high-risk statement) [policy: -, rule: require_review]"},
		{s.DecideFacts("prod-db", &sqlfacts.Facts{Statements: []sqlfacts.Statement{*stmt("begin"), *stmt("delete", "delete public.orders")}}),
			"warden: held for review: statement 2 of 2 (delete): delete on public.orders needs approval [policy: agents, rule: agents/review[0]]"},
	}
	for _, c := range cases {
		if got := c.d.Message(); got != c.want {
			t.Errorf("Message:\n got %q\nwant %q", got, c.want)
		}
	}
	for e, want := range map[Effect]string{Deny: "deny", Allow: "allow", Review: "review", Effect(9): "unknown"} {
		if e.String() != want {
			t.Errorf("%d.String() = %q, want %q", e, e.String(), want)
		}
	}
}

func TestIsApprover(t *testing.T) {
	e := compileTest(t, reviewConfig)
	const (
		r0 = "agents/review[0]"
		r1 = "agents/review[1]"
		rc = "contractors/review[0]"
	)
	cases := []struct {
		who       *identity.Principal
		approvers string
		want      bool
	}{
		{sre, "", true},
		{finance, "", false},
		{nil, "", false},
		// No approvers expression: the admins.
		{sre, r0, true},
		{finance, r0, false},
		// Approvers expression, evaluated over the approver's token; the
		// admins are not approvers unless it says so.
		{finance, r1, true},
		{sre, r1, false},
		{sreFinance, r1, true},
		{payments, rc, true},
		{finance, rc, false}, // no team claim: orValue("") — false, no error
		{principal("lead-2", nil, map[string]any{"team": 7.0}), rc, false}, // evaluation error: no
		// require_review: the admins.
		{sre, RuleRequireReview, true},
		{finance, RuleRequireReview, false},
		// Several rules: all of them.
		{sre, r0 + "," + r1, false},
		{finance, r0 + "," + r1, false},
		{sreFinance, r0 + "," + r1, true},
		{sreFinance, RuleRequireReview + "," + r1, true},
		// Unknown ids fail closed: a reload removed the rule, or it is
		// not a review rule at all.
		{sre, "agents/review[9]", false},
		{sre, "agents/allow[0]", false},
		{sre, r0 + ",", false},
		{sre, ",", false},
		{nil, r0, false},
	}
	for _, c := range cases {
		if got := e.IsApprover(c.who, c.approvers); got != c.want {
			sub := "<nil>"
			if c.who != nil {
				sub = c.who.Subject
			}
			t.Errorf("IsApprover(%s, %q) = %v, want %v", sub, c.approvers, got, c.want)
		}
	}
	// The identifier a decision carries resolves to its rule's approvers.
	d := e.Bind(agent).DecideStatement("prod-db", stmt("delete", "delete public.payments"))
	if !e.IsApprover(finance, d.Approvers) || e.IsApprover(sre, d.Approvers) {
		t.Errorf("decision approvers %q not resolved to its rule", d.Approvers)
	}
}

func TestCompileReviewErrors(t *testing.T) {
	cases := []struct {
		name    string
		replace [2]string
		want    string
	}{
		{"approvers not boolean", [2]string{`approvers: '"finance" in groups'`, `approvers: groups`},
			`policy.Compile: warden.yaml:20: policies[0].review[1].approvers: policy "agents": must be a boolean expression, not list(string)`},
		{"approvers undeclared variable", [2]string{`approvers: '"finance" in groups'`, `approvers: requester == sub`},
			`policy.Compile: warden.yaml:20: policies[0].review[1].approvers: policy "agents": 1:1: undeclared reference to 'requester' (in container '')`},
		{"approvers syntax", [2]string{`approvers: claims.?team.orValue("") == "payments"`, `approvers: claims.team ==`},
			`policy.Compile: warden.yaml:30: policies[1].review[0].approvers: policy "contractors": 1:15: Syntax error: `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(reviewConfig, c.replace[0]) {
				t.Fatalf("test config lacks %q", c.replace[0])
			}
			cfg, err := config.Parse([]byte(strings.Replace(reviewConfig, c.replace[0], c.replace[1], 1)), "warden.yaml")
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			_, err = Compile(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), c.want) || (c.name != "approvers syntax" && err.Error() != c.want) {
				t.Errorf("error:\n got %s\nwant %s", err, c.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("error does not wrap a *config.Error")
			}
		})
	}
}

// A Config built in Go skips Parse's defaults and checks: Compile still
// applies the min_approvals default and refuses nonsense.
func TestCompileGoBuiltReviewRules(t *testing.T) {
	cfg := &config.Config{
		Admins:  `"sre" in groups`,
		Targets: []config.Target{{Name: "db", Type: "postgres"}},
		Policies: []config.Policy{{Name: "p", Review: []config.Rule{
			{Target: "db", SQL: &config.SQLRule{Delete: []string{"public.t"}}},
		}}},
	}
	e, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Bind(agent).DecideStatement("db", stmt("delete", "delete public.t"))
	if d.Effect != Review || d.MinApprovals != 1 {
		t.Errorf("got %v min %d; want review with the default 1", d.Effect, d.MinApprovals)
	}
	cfg.Policies[0].Review[0].MinApprovals = -1
	if _, err := Compile(cfg); err == nil || !strings.Contains(err.Error(), "policies[0].review[0].min_approvals: policy \"p\": must be at least 1") {
		t.Errorf("negative min_approvals: %v", err)
	}
}

func TestVersionReview(t *testing.T) {
	base := compileTest(t, reviewConfig)
	changes := map[string][2]string{
		"review glob":          {"insert: [public.payments]", "insert: [public.payment]"},
		"review rule removed":  {"      - target: prod-db\n        sql: { delete: [public.payments], update: [public.payments] }\n        approvers: '\"finance\" in groups'\n        min_approvals: 2\n", ""},
		"review rule added":    {"  - name: ops\n", "  - name: ops\n    review:\n      - target: dev-db\n        sql: { drop: [\"*.*\"] }\n"},
		"approvers":            {`approvers: '"finance" in groups'`, `approvers: '"fin" in groups'`},
		"min_approvals":        {"min_approvals: 2", "min_approvals: 3"},
		"require_review":       {"user: warden, require_review: true }", "user: warden }"},
		"require_review added": {`database: dev, user: warden }`, `database: dev, user: warden, require_review: true }`},
	}
	for name, r := range changes {
		if !strings.Contains(reviewConfig, r[0]) {
			t.Fatalf("%s: test config lacks %q", name, r[0])
		}
		if e := compileTest(t, strings.Replace(reviewConfig, r[0], r[1], 1)); e.Version() == base.Version() {
			t.Errorf("version unchanged by a change of %s", name)
		}
	}
	// How long reviews wait is not a decision.
	if e := compileTest(t, reviewConfig+"reviews: { wait: 1m, ttl: 2h }\n"); e.Version() != base.Version() {
		t.Error("version changed by reviews timing")
	}
}

// The allow path allocates nothing on a require_review target either.
func TestDecideStatementAllocsRequireReview(t *testing.T) {
	e := compileTest(t, reviewConfig)
	s := e.Bind(agentOps)
	st := stmt("update", "select public.orders", "update public.orders", "select public.customers")
	allocs := testing.AllocsPerRun(100, func() {
		if d := s.DecideStatement("prod-db", st); d.Effect != Allow {
			t.Fatal(d.Reason)
		}
	})
	if allocs != 0 {
		t.Errorf("allow path allocates %v times", allocs)
	}
}
