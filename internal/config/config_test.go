package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/warden-gateway/warden/internal/mask"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// testEnv is the environment the tests parse with; the real one is not
// consulted, so results do not depend on the machine.
var testEnv = map[string]string{
	"WARDEN_TEST_PASSWORD":       "s3cr3t-Pa$$word",
	"WARDEN_TEST_WEBHOOK_SECRET": "hmac-k3y-s3cr3t",
	"EMPTY":                      "",
	"MAX":                        "2048",
	"STRUCTURE":                  "x\n  injected: true",
	"NULLISH":                    "null",
	"WARDEN_TEST_MASK_KEY":       "m4sk-k3y-0123456789abcdef",
	"SHORT_KEY":                  "sh0rt-k3y",
}

func lookup(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

func TestGoodConfig(t *testing.T) {
	path := filepath.Join("testdata", "good.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parse(data, path, lookup)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}

	// Expansion and defaults.
	if got := cfg.Targets[0].Password; got != testEnv["WARDEN_TEST_PASSWORD"] {
		t.Errorf("password not expanded: %q", got)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"reports database default", cfg.Targets[1].Database, "reports"},
		{"reports sslmode default", cfg.Targets[1].SSLMode, "prefer"},
		{"prod-db schema default", cfg.Targets[0].Schema, "public"},
		{"reports schema", cfg.Targets[1].Schema, "analytics"},
		{"groups_claim default", cfg.Identity.OIDC[0].GroupsClaim, "groups"},
		{"groups_claim set", cfg.Identity.OIDC[1].GroupsClaim, "roles"},
		{"leeway default", cfg.Identity.OIDC[0].Leeway, 30 * time.Second},
		{"leeway set", cfg.Identity.OIDC[1].Leeway, time.Minute},
		{"max_query_bytes from default", cfg.Limits.MaxQueryBytes, 65536},
		{"max_message_bytes default", cfg.Limits.MaxMessageBytes, 1 << 20},
		{"handshake_timeout", cfg.Limits.HandshakeTimeout, 5 * time.Second},
		{"line of a key", cfg.Line("targets[1].schema"), 33},
		{"line of an absent key falls back to its block", cfg.Line("targets[1].password"), 28},
		{"line of a list item", cfg.Line("policies[1].deny[0]"), 61},
		{"require_review", cfg.Targets[1].RequireReview, true},
		{"require_review default", cfg.Targets[0].RequireReview, false},
		{"min_approvals set", cfg.Policies[1].Review[0].MinApprovals, 2},
		{"min_approvals default", cfg.Policies[1].Review[1].MinApprovals, 1},
		{"approvers", cfg.Policies[1].Review[0].Approvers, `"dba" in groups`},
		{"approvers default", cfg.Policies[1].Review[1].Approvers, ""},
		{"allow rules get no min_approvals", cfg.Policies[1].Allow[0].MinApprovals, 0},
		{"line of a review rule key", cfg.Line("policies[1].review[0].min_approvals"), 67},
		{"reviews.wait", cfg.Reviews.Wait, time.Minute},
		{"reviews.ttl default", cfg.Reviews.TTL, time.Hour},
		{"reviews.grant_ttl default", cfg.Reviews.GrantTTL, 15 * time.Minute},
		{"webhook secret expanded", cfg.Reviews.Webhook.Secret, testEnv["WARDEN_TEST_WEBHOOK_SECRET"]},
		{"webhook url expanded", cfg.Reviews.Webhook.URL, "https://hooks.example.com/services/T0/B0/k3y-in-url"},
		{"webhook format", cfg.Reviews.Webhook.Format, "slack"},
		{"console_url from listen.http (https: the config has tls)", cfg.Reviews.ConsoleURL, "https://127.0.0.1:8080"},
		{"hash_key expanded", cfg.Masking.HashKey, testEnv["WARDEN_TEST_MASK_KEY"]},
		{"custom detector", cfg.Masking.Detectors, []CustomDetector{{Name: "employee_id", Regex: "EMP-[0-9]{6}"}}},
		{"mask columns", cfg.Policies[0].Mask[0].Columns, []string{"public.customers.email", "*.ssn", `public.*."Card Number"`}},
		{"mask style default", cfg.Policies[0].Mask[0].Style, StyleRedact},
		{"mask replacement default", cfg.Policies[0].Mask[0].Replacement, "[REDACTED]"},
		{"mask keep only for partial", cfg.Policies[0].Mask[0].Keep, (*int)(nil)},
		{"allow_predicates default", cfg.Policies[0].Mask[0].AllowPredicates, false},
		{"partial keep default", *cfg.Policies[0].Mask[1].Keep, 4},
		{"partial replacement none", cfg.Policies[0].Mask[1].Replacement, ""},
		{"allow_predicates", cfg.Policies[0].Mask[1].AllowPredicates, true},
		{"hash style", cfg.Policies[0].Mask[2].Style, StyleHash},
		{"style: null is the style null", cfg.Policies[1].Mask[0].Style, StyleNull},
		{"null replacement kept", cfg.Policies[1].Mask[0].Replacement, "<hidden>"},
		{"explicit keep 0", *cfg.Policies[1].Mask[1].Keep, 0},
		{"line of a mask rule key", cfg.Line("policies[0].mask[1].style"), 50},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}

	// Golden: the normalised config (defaults filled in) is stable, and
	// the printable form holds no secret.
	out, err := yaml.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "good.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(out) != string(want) {
		t.Errorf("normalised config differs from %s (run with -update if intended):\n%s", golden, out)
	}
	for _, secret := range []string{testEnv["WARDEN_TEST_PASSWORD"], testEnv["WARDEN_TEST_WEBHOOK_SECRET"], "k3y-in-url", testEnv["WARDEN_TEST_MASK_KEY"]} {
		if strings.Contains(string(out), secret) {
			t.Errorf("Redacted config contains the secret %q", secret)
		}
	}
	if cfg.Reviews.Webhook.Secret == RedactedText || !strings.HasSuffix(cfg.Reviews.Webhook.URL, "k3y-in-url") {
		t.Error("Redacted modified the original's webhook")
	}
	if cfg.Targets[0].Password == RedactedText || cfg.Masking.HashKey == RedactedText {
		t.Error("Redacted modified the original")
	}

	// Round trip: the normalised form parses back to the same Config.
	out, err = yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}

	again, err := parse(out, path, lookup)
	if err != nil {
		t.Fatalf("re-parse normalised config: %v", err)
	}
	cfg.lines, again.lines = nil, nil
	if !reflect.DeepEqual(cfg, again) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v", again, cfg)
	}
}

func TestResolve(t *testing.T) {
	cfg := &Config{Path: "/etc/warden/warden.yaml", Store: "sqlite://state/warden.db?_pragma=foo"}
	for in, want := range map[string]string{
		"server.crt":       "/etc/warden/server.crt",
		"certs/server.crt": "/etc/warden/certs/server.crt",
		"../ca.pem":        "/etc/ca.pem",
		"/abs/key.pem":     "/abs/key.pem",
		"":                 "",
	} {
		if got := cfg.Resolve(in); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
	if p, ok := cfg.SQLitePath(); !ok || p != "/etc/warden/state/warden.db" {
		t.Errorf("SQLitePath = %q, %v", p, ok)
	}
	cfg.Store = "sqlite:///var/lib/warden/warden.db"
	if p, _ := cfg.SQLitePath(); p != "/var/lib/warden/warden.db" {
		t.Errorf("absolute SQLitePath = %q", p)
	}
	cfg.Store = "postgres://warden@db/warden"
	if _, ok := cfg.SQLitePath(); ok {
		t.Error("SQLitePath ok for a postgres store")
	}
	// Without a file, paths stay relative to the working directory.
	if got := (&Config{}).Resolve("x.pem"); got != "x.pem" {
		t.Errorf("Resolve without Path = %q", got)
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("WARDEN_TEST_PASSWORD", "pw")
	t.Setenv("WARDEN_TEST_WEBHOOK_SECRET", "hook")
	t.Setenv("WARDEN_TEST_MASK_KEY", "0123456789abcdef")
	cfg, err := Load(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := filepath.Join("testdata", "certs", "server.crt"); cfg.Resolve(cfg.TLS.Cert) != want {
		t.Errorf("cert resolves to %q, want %q", cfg.Resolve(cfg.TLS.Cert), want)
	}
	_, err = Load(filepath.Join("testdata", "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config.Load: ") {
		t.Errorf("Load(missing) = %v; want a wrapped ErrNotExist", err)
	}
}

// base is the smallest valid configuration; error cases below are written
// out in full so that their line numbers are visible in the test.
const base = `listen:
  postgres: 127.0.0.1:6432
identity:
  oidc:
    - issuer: https://idp.example.com
      audience: warden
targets:
  - name: prod-db
    type: postgres
    address: 127.0.0.1:5432
    database: app
    user: warden_app
    password: ${WARDEN_TEST_PASSWORD}
policies:
  - name: analysts
    allow:
      - target: prod-db
        sql: { select: [public.orders] }
`

func TestBaseIsValid(t *testing.T) {
	if _, err := parse([]byte(base), "warden.yaml", lookup); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	// replace returns base with old replaced by new (which must occur).
	replace := func(old, new string) string {
		if !strings.Contains(base, old) {
			panic("base does not contain " + old)
		}
		return strings.Replace(base, old, new, 1)
	}
	cases := []struct {
		name string
		yaml string
		want []string // every error, in order
	}{
		{"empty", "", []string{"warden.yaml: empty configuration"}},
		{"syntax", "listen: [\n", []string{"warden.yaml: invalid YAML: line 1: did not find expected node content"}},
		{"not a mapping", "- a\n", []string{"warden.yaml:1: expected a mapping at the top level"}},
		{"two documents", base + "---\nstore: x\n", []string{"warden.yaml:19: more than one YAML document; warden.yaml is a single document"}},
		{"unknown key with suggestion",
			replace("    password:", "    pasword:"),
			[]string{`warden.yaml:13: targets[0].pasword: unknown key (did you mean "password"?)`}},
		{"unknown top-level key", base + "extra: 1\n",
			[]string{"warden.yaml:19: extra: unknown key"}},
		{"duplicate key",
			replace("    database: app\n", "    database: app\n    database: other\n"),
			[]string{"warden.yaml:12: targets[0].database: duplicate key (first defined on line 11)"}},
		{"wrong shape",
			replace("  postgres: 127.0.0.1:6432", "  postgres: [a, b]"),
			[]string{"warden.yaml:2: listen.postgres: expected a string, got a list"}},
		{"list expected",
			replace("    - issuer: https://idp.example.com\n      audience: warden\n", "    issuer: x\n"),
			[]string{"warden.yaml:5: identity.oidc: expected a list, got a mapping"}},
		{"bad integer", base + "limits:\n  max_query_bytes: lots\n",
			[]string{"warden.yaml:20: limits.max_query_bytes: expected an integer"}},
		{"bad duration", base + "limits:\n  handshake_timeout: 10\n",
			[]string{"warden.yaml:20: limits.handshake_timeout: expected a duration like 30s or 5m"}},
		{"alias", base + "x: &a 1\nstore: *a\n",
			[]string{"warden.yaml:19: x: unknown key", "warden.yaml:20: store: YAML aliases (*name) are not supported"}},
		{"merge key",
			replace("  - name: prod-db\n", "  - <<: {}\n    name: prod-db\n"),
			[]string{"warden.yaml:8: targets[0].<<: YAML merge keys are not supported"}},

		// ${ENV}
		{"unset env", replace("${WARDEN_TEST_PASSWORD}", "${NOT_SET_ANYWHERE}"),
			[]string{"warden.yaml:13: targets[0].password: environment variable NOT_SET_ANYWHERE is not set (use ${NOT_SET_ANYWHERE:-default} for an optional value)"}},
		{"bad env name", replace("${WARDEN_TEST_PASSWORD}", "${1X}"),
			[]string{"warden.yaml:13: targets[0].password: invalid environment variable reference ${1X}"}},
		{"unterminated env", replace("${WARDEN_TEST_PASSWORD}", "${X"),
			[]string{"warden.yaml:13: targets[0].password: unterminated ${ (write $${ for a literal ${)"}},
		{"env expands into an integer field", base + "limits:\n  max_query_bytes: \"${MAX}\"\n  max_message_bytes: ${EMPTY:-x}\n",
			[]string{"warden.yaml:21: limits.max_message_bytes: expected an integer"}},

		// listeners and TLS
		{"listener not host:port", replace("127.0.0.1:6432", "6432"),
			[]string{`warden.yaml:2: listen.postgres: "6432" is not host:port`}},
		{"listener bad port", replace("127.0.0.1:6432", "127.0.0.1:99999"),
			[]string{`warden.yaml:2: listen.postgres: "127.0.0.1:99999" has an invalid port`}},
		{"public listener without tls", replace("127.0.0.1:6432", "0.0.0.0:6432"),
			[]string{"warden.yaml:2: listen.postgres: 0.0.0.0:6432 is not a loopback address, so a tls: block is required (clients send their token as the password)"}},
		{"all-interfaces listener without tls", replace("127.0.0.1:6432", ":6432"),
			[]string{"warden.yaml:2: listen.postgres: :6432 is not a loopback address, so a tls: block is required (clients send their token as the password)"}},
		{"tls without key", replace("127.0.0.1:6432", "'[::]:6432'") + "tls: { cert: a.crt }\n",
			[]string{"warden.yaml:19: tls.key: required"}},
		{"store scheme", base + "store: mysql://x\n",
			[]string{"warden.yaml:19: store: must start with sqlite:// or postgres://"}},

		// identity
		{"no issuer", replace("  oidc:\n    - issuer: https://idp.example.com\n      audience: warden\n", "  oidc: []\n"),
			[]string{"warden.yaml:4: identity.oidc: at least one OIDC issuer is required"}},
		{"http issuer", replace("https://idp.example.com", "http://idp.example.com"),
			[]string{`warden.yaml:5: identity.oidc[0].issuer: "http://idp.example.com" must use https:// (http:// is allowed only for loopback hosts)`}},
		{"missing audience", replace("      audience: warden\n", ""),
			[]string{"warden.yaml:5: identity.oidc[0].audience: required"}},
		{"leeway too large", replace("      audience: warden\n", "      audience: warden\n      leeway: 1h\n"),
			[]string{"warden.yaml:7: identity.oidc[0].leeway: must be between 0s and 5m0s"}},

		// targets
		{"missing address and user",
			strings.Replace(replace("    address: 127.0.0.1:5432\n", ""), "    user: warden_app\n", "", 1),
			[]string{"warden.yaml:8: targets[0].address: required", "warden.yaml:8: targets[0].user: required"}},
		{"bad target name", strings.ReplaceAll(base, "prod-db", "Prod_DB"),
			[]string{`warden.yaml:8: targets[0].name: "Prod_DB" must be a DNS label: lower-case letters, digits and '-', at most 63`,
				`warden.yaml:17: policies[0].allow[0].target: no target named "Prod_DB"`}},
		{"duplicate target",
			replace("policies:\n", "  - { name: prod-db, type: postgres, address: 'h:1', database: d, user: u }\npolicies:\n"),
			[]string{`warden.yaml:14: targets[1].name: duplicate target name "prod-db" (also targets[0])`}},
		{"postgres keys on an http target", replace("    type: postgres\n", "    type: http\n"),
			[]string{"warden.yaml:9: targets[0].type: http targets are served on the http listener: set listen.http",
				"warden.yaml:10: targets[0].address: only postgres targets have address",
				"warden.yaml:11: targets[0].database: only postgres targets have database",
				"warden.yaml:12: targets[0].user: only postgres targets have user",
				"warden.yaml:13: targets[0].password: only postgres targets have password",
				"warden.yaml:8: targets[0].url: required",
				`warden.yaml:18: policies[0].allow[0].sql: target "prod-db" is an http target: sql rules apply to postgres targets`}},
		{"unknown target type", replace("    type: postgres\n", "    type: mysql\n"),
			[]string{`warden.yaml:9: targets[0].type: unknown type "mysql" (want postgres, http or kubernetes)`}},
		{"bad sslmode", replace("    user: warden_app\n", "    user: warden_app\n    sslmode: on\n"),
			[]string{`warden.yaml:13: targets[0].sslmode: "on" is not one of disable, allow, prefer, require, verify-ca, verify-full`}},

		// policies
		{"duplicate policy", base + "  - name: analysts\n",
			[]string{`warden.yaml:19: policies[1].name: duplicate policy name "analysts" (also policies[0])`}},
		{"rule names unknown target", replace("      - target: prod-db", "      - target: staging"),
			[]string{`warden.yaml:17: policies[0].allow[0].target: no target named "staging"`}},
		{"bad globs", replace("[public.orders]", `[public.Orders, "a.b.c", "public.", 'x."y', public.order-items]`),
			[]string{
				`warden.yaml:18: policies[0].allow[0].sql.select[0]: invalid glob "public.Orders": unquoted names are lower case in PostgreSQL: write the name in lower case, or quote it to match case exactly`,
				`warden.yaml:18: policies[0].allow[0].sql.select[1]: invalid glob "a.b.c": expected schema.name or name (quote names that contain dots)`,
				`warden.yaml:18: policies[0].allow[0].sql.select[2]: invalid glob "public.": empty name after "."`,
				`warden.yaml:18: policies[0].allow[0].sql.select[3]: invalid glob "x.\"y": unterminated quoted name`,
				`warden.yaml:18: policies[0].allow[0].sql.select[4]: invalid glob "public.order-items": unquoted names may contain only letters, digits, _, $ and the wildcards * and ?; quote other names`,
			}},
		{"bad command", replace("{ select: [public.orders] }", "{ command: [VACUUM] }"),
			[]string{`warden.yaml:18: policies[0].allow[0].sql.command[0]: "VACUUM" is not a command name (lower case, e.g. vacuum, listen)`}},
		{"empty deny rule", base + "    deny:\n      - target: prod-db\n",
			[]string{"warden.yaml:20: policies[0].deny[0]: a deny rule must name something to deny (sql: {delete: [...]})"}},

		// review rules
		{"review rule names nothing", base + "    review:\n      - target: prod-db\n",
			[]string{"warden.yaml:20: policies[0].review[0]: a review rule must name something to review (sql: {delete: [...]})"}},
		{"review rule names unknown target", base + "    review:\n      - target: staging\n        sql: { delete: [public.orders] }\n",
			[]string{`warden.yaml:20: policies[0].review[0].target: no target named "staging"`}},
		{"review rule bad glob", base + "    review:\n      - target: prod-db\n        sql: { delete: [Public.orders] }\n",
			[]string{`warden.yaml:21: policies[0].review[0].sql.delete[0]: invalid glob "Public.orders": unquoted names are lower case in PostgreSQL: write the name in lower case, or quote it to match case exactly`}},
		{"min_approvals zero", base + "    review:\n      - target: prod-db\n        sql: { delete: [public.orders] }\n        min_approvals: 0\n",
			[]string{"warden.yaml:22: policies[0].review[0].min_approvals: must be at least 1"}},
		{"min_approvals negative", base + "    review:\n      - target: prod-db\n        sql: { delete: [public.orders] }\n        min_approvals: -2\n",
			[]string{"warden.yaml:22: policies[0].review[0].min_approvals: must be at least 1"}},
		{"min_approvals not an integer", base + "    review:\n      - target: prod-db\n        sql: { delete: [public.orders] }\n        min_approvals: two\n",
			[]string{"warden.yaml:22: policies[0].review[0].min_approvals: expected an integer"}},
		{"approvers on an allow rule", replace("        sql: { select: [public.orders] }\n", "        sql: { select: [public.orders] }\n        approvers: 'true'\n        min_approvals: 0\n"),
			[]string{"warden.yaml:19: policies[0].allow[0].approvers: only review rules have approvers",
				"warden.yaml:20: policies[0].allow[0].min_approvals: only review rules have min_approvals"}},
		{"min_approvals on a deny rule", base + "    deny:\n      - target: prod-db\n        sql: { delete: [public.orders] }\n        min_approvals: 2\n",
			[]string{"warden.yaml:22: policies[0].deny[0].min_approvals: only review rules have min_approvals"}},
		{"unknown key in a review rule", base + "    review:\n      - target: prod-db\n        sql: { delete: [public.orders] }\n        approver: 'true'\n",
			[]string{`warden.yaml:22: policies[0].review[0].approver: unknown key (did you mean "approvers"?)`}},
		{"require_review not a bool", replace("    user: warden_app\n", "    user: warden_app\n    require_review: yes please\n"),
			[]string{"warden.yaml:13: targets[0].require_review: expected true or false"}},

		// reviews
		{"reviews wait too long", base + "reviews:\n  wait: 11m\n",
			[]string{"warden.yaml:20: reviews.wait: must be between 0s and 10m0s (a held statement keeps its connection open)"}},
		{"reviews negative durations", base + "reviews:\n  wait: -1s\n  ttl: -1s\n  grant_ttl: -1s\n",
			[]string{"warden.yaml:20: reviews.wait: must be between 0s and 10m0s (a held statement keeps its connection open)",
				"warden.yaml:21: reviews.ttl: must not be negative",
				"warden.yaml:22: reviews.grant_ttl: must not be negative"}},
		{"reviews ttl shorter than wait", base + "reviews:\n  wait: 5m\n  ttl: 1m\n",
			[]string{"warden.yaml:21: reviews.ttl: 1m0s is shorter than reviews.wait (5m0s)"}},
		{"reviews ttl shorter than default wait", base + "reviews:\n  ttl: 10s\n",
			[]string{"warden.yaml:20: reviews.ttl: 10s is shorter than reviews.wait (30s)"}},
		{"reviews unknown key", base + "reviews:\n  timeout: 1m\n",
			[]string{"warden.yaml:20: reviews.timeout: unknown key"}},
		{"webhook without secret", base + "reviews:\n  webhook:\n    url: https://hooks.example.com/x\n",
			[]string{"warden.yaml:20: reviews.webhook.secret: required with a webhook url (the HMAC key notifications are signed with; use ${ENV})"}},
		{"webhook secret without url", base + "reviews:\n  webhook:\n    secret: ${WARDEN_TEST_PASSWORD}\n",
			[]string{"warden.yaml:20: reviews.webhook.url: required when reviews.webhook has other keys"}},
		// The URL's path may be its credential: the message names the host only.
		{"webhook plain http", base + "reviews:\n  webhook:\n    url: http://hooks.example.com/services/s3cr3tpath\n    secret: x\n",
			[]string{"warden.yaml:21: reviews.webhook.url: http://hooks.example.com/... must use https:// (http:// is allowed only for loopback hosts)"}},
		{"webhook other scheme", base + "reviews:\n  webhook:\n    url: ftp://hooks.example.com/s3cr3tpath\n    secret: x\n",
			[]string{"warden.yaml:21: reviews.webhook.url: must use https://"}},
		{"webhook relative url", base + "reviews:\n  webhook:\n    url: hooks.example.com/s3cr3tpath\n    secret: x\n",
			[]string{"warden.yaml:21: reviews.webhook.url: not an absolute URL"}},
		{"webhook format", base + "reviews:\n  webhook:\n    url: https://hooks.example.com/x\n    secret: x\n    format: teams\n",
			[]string{`warden.yaml:23: reviews.webhook.format: "teams" is not one of json, slack`}},
		{"console_url not absolute", base + "reviews:\n  console_url: warden.example.com\n",
			[]string{`warden.yaml:20: reviews.console_url: "warden.example.com" is not an absolute http:// or https:// URL`}},
		{"console_url with query", base + "reviews:\n  console_url: https://warden.example.com/?x=1\n",
			[]string{`warden.yaml:20: reviews.console_url: "https://warden.example.com/?x=1" must be a base URL, without user, query or fragment`}},

		// limits
		{"query limit above message limit", base + "limits: { max_message_bytes: 1024, max_query_bytes: 2048 }\n",
			[]string{"warden.yaml:19: limits.max_query_bytes: 2048 exceeds limits.max_message_bytes (1024)"}},

		// masking (issue 5)
		{"mask unknown style", base + "    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        style: blur\n",
			[]string{`warden.yaml:22: policies[0].mask[0].style: "blur" is not one of null, redact, hash, partial`}},
		{"mask negative keep", base + "    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        style: partial\n        keep: -1\n",
			[]string{"warden.yaml:23: policies[0].mask[0].keep: must be 0 or more"}},
		{"mask keep on redact", base + "    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        keep: 2\n",
			[]string{"warden.yaml:22: policies[0].mask[0].keep: only style partial keeps characters (this rule's style is redact)"}},
		{"mask keep not an integer", base + "    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        style: partial\n        keep: all\n",
			[]string{"warden.yaml:23: policies[0].mask[0].keep: expected an integer"}},
		{"mask replacement on partial", base + "    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        style: partial\n        replacement: x\n",
			[]string{"warden.yaml:23: policies[0].mask[0].replacement: only styles redact and null write a replacement (this rule's style is partial)"}},
		{"mask bad column globs", base + "    mask:\n      - target: prod-db\n        columns: [ssn, a.b.c.d, Public.t.c, 'public.t.', '*.\"x']\n",
			[]string{
				`warden.yaml:21: policies[0].mask[0].columns[0]: invalid column glob "ssn": expected schema.table.column or table.column (quote names that contain dots)`,
				`warden.yaml:21: policies[0].mask[0].columns[1]: invalid column glob "a.b.c.d": expected schema.table.column or table.column (quote names that contain dots)`,
				`warden.yaml:21: policies[0].mask[0].columns[2]: invalid column glob "Public.t.c": unquoted names are lower case in PostgreSQL: write the name in lower case, or quote it to match case exactly`,
				`warden.yaml:21: policies[0].mask[0].columns[3]: invalid column glob "public.t.": empty name after "."`,
				`warden.yaml:21: policies[0].mask[0].columns[4]: invalid column glob "*.\"x": unterminated quoted name`,
			}},
		{"mask unknown detector", base + "    mask:\n      - target: prod-db\n        detectors: [email, ssn]\n",
			[]string{`warden.yaml:21: policies[0].mask[0].detectors[1]: unknown detector "ssn" (built-in: email, phone, credit_card, us_ssn, iban, ip, jwt, api_key, private_key; or define it under masking.detectors)`}},
		{"mask unknown target", base + "    mask:\n      - target: staging\n        columns: [public.t.c]\n",
			[]string{`warden.yaml:20: policies[0].mask[0].target: no target named "staging"`}},
		{"mask rule names nothing", base + "    mask:\n      - target: prod-db\n",
			[]string{"warden.yaml:20: policies[0].mask[0]: a mask rule must name columns or detectors to mask"}},
		{"mask rule unknown key", base + "    mask:\n      - target: prod-db\n        colums: [public.t.c]\n",
			[]string{`warden.yaml:21: policies[0].mask[0].colums: unknown key (did you mean "columns"?)`}},
		{"mask allow_predicates not a bool", base + "    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        allow_predicates: sometimes\n",
			[]string{"warden.yaml:22: policies[0].mask[0].allow_predicates: expected true or false"}},
		{"mask hash without key", base + "    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        style: hash\n",
			[]string{"warden.yaml:22: policies[0].mask[0].style: style hash needs masking.hash_key (an HMAC key of at least 16 bytes; use ${ENV})"}},
		{"mask short hash key", base + "masking:\n  hash_key: ${SHORT_KEY}\n",
			[]string{"warden.yaml:20: masking.hash_key: must be at least 16 bytes"}},
		{"masking unknown key", base + "masking:\n  key: x\n",
			[]string{`warden.yaml:20: masking.key: unknown key`}},
		{"custom detector invalid regex", base + "masking:\n  detectors:\n    - { name: emp, regex: '(EMP' }\n",
			[]string{"warden.yaml:21: masking.detectors[0].regex: invalid regular expression: missing closing ): `(EMP`"}},
		{"custom detector matches empty", base + "masking:\n  detectors:\n    - { name: emp, regex: 'EMP-[0-9]*|x?' }\n    - { name: word, regex: '\\b' }\n",
			[]string{"warden.yaml:21: masking.detectors[0].regex: can match the empty string, so it would find zero-width values everywhere; make it match at least one character",
				"warden.yaml:22: masking.detectors[1].regex: can match the empty string, so it would find zero-width values everywhere; make it match at least one character"}},
		{"custom detector names", base + "masking:\n  detectors:\n    - { name: email, regex: x }\n    - { name: Emp-ID, regex: x }\n    - { name: emp, regex: x }\n    - { name: emp, regex: y }\n    - { regex: x }\n    - { name: nore }\n",
			[]string{
				`warden.yaml:21: masking.detectors[0].name: "email" is a built-in detector; give the custom one another name`,
				`warden.yaml:22: masking.detectors[1].name: "Emp-ID" may contain only lower-case letters, digits and '_', starting with a letter, at most 63`,
				`warden.yaml:24: masking.detectors[3].name: duplicate detector name "emp" (also masking.detectors[2])`,
				`warden.yaml:25: masking.detectors[4].name: required`,
				`warden.yaml:26: masking.detectors[5].regex: required`,
			}},
		// A custom detector is usable by name, whatever the order of the blocks.
		{"custom detector used but broken", base + "    mask:\n      - target: prod-db\n        detectors: [emp]\n        style: partial\n        keep: -2\nmasking:\n  detectors:\n    - { name: emp, regex: '+' }\n",
			[]string{"warden.yaml:23: policies[0].mask[0].keep: must be 0 or more",
				"warden.yaml:26: masking.detectors[0].regex: invalid regular expression: missing argument to repetition operator: `+`"}},

		// several at once: all are reported
		{"collects all errors",
			strings.Replace(replace("      audience: warden\n", ""), "    database: app\n", "", 1),
			[]string{"warden.yaml:5: identity.oidc[0].audience: required", "warden.yaml:7: targets[0].database: required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse([]byte(c.yaml), "warden.yaml", lookup)
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, c.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, c.want)
			}
			// Every error is an *Error, and none leaks the password.
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is not a *config.Error: %T", err)
			}
			for _, secret := range []string{testEnv["WARDEN_TEST_PASSWORD"], testEnv["SHORT_KEY"]} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

// An environment variable is expanded after YAML parsing: its value stays
// one scalar, whatever it contains.
func TestEnvCannotInjectStructure(t *testing.T) {
	y := strings.Replace(base, "${WARDEN_TEST_PASSWORD}", "${STRUCTURE}", 1)
	y = strings.Replace(y, "    database: app\n", "    database: ${NULLISH}\n", 1)
	cfg, err := parse([]byte(y), "warden.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Targets[0].Password; got != testEnv["STRUCTURE"] {
		t.Errorf("password = %q, want the variable's text verbatim", got)
	}
	if got := cfg.Targets[0].Database; got != "null" {
		t.Errorf(`database = %q; a variable holding "null" must stay a string`, got)
	}
}

func TestExpand(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${MAX}", "2048", ""},
		{"a${MAX}b${MAX}", "a2048b2048", ""},
		{"${UNSET:-dflt}", "dflt", ""},
		{"${EMPTY:-dflt}", "dflt", ""}, // shell semantics: empty uses the default
		{"${EMPTY}", "", ""},
		{"${UNSET:-}", "", ""},
		{"pa$$word $x", "pa$$word $x", ""}, // a lone $ is literal
		{"$${MAX}", "${MAX}", ""},
		{"${UNSET}", "", "environment variable UNSET is not set (use ${UNSET:-default} for an optional value)"},
	}
	for _, c := range cases {
		got, errs := expandWith(c.in, lookup)
		if c.err != "" {
			if len(errs) != 1 || errs[0] != c.err {
				t.Errorf("expand(%q) errors = %q, want %q", c.in, errs, c.err)
			}
			continue
		}
		if len(errs) > 0 || got != c.want {
			t.Errorf("expand(%q) = %q, %q; want %q", c.in, got, errs, c.want)
		}
	}
}

func TestParseObjectGlob(t *testing.T) {
	cases := []struct {
		in   string
		want ObjectGlob
		err  string
	}{
		{in: "orders", want: ObjectGlob{Name: "orders"}},
		{in: "public.orders", want: ObjectGlob{Schema: "public", Name: "orders"}},
		{in: "public.*", want: ObjectGlob{Schema: "public", Name: "*"}},
		{in: "*.audit_?", want: ObjectGlob{Schema: "*", Name: "audit_?"}},
		{in: `public."Order Items"`, want: ObjectGlob{Schema: "public", Name: "Order Items"}},
		{in: `"my.schema".t`, want: ObjectGlob{Schema: "my.schema", Name: "t"}},
		{in: `public."a""b"`, want: ObjectGlob{Schema: "public", Name: `a"b`}},
		{in: `public.a\*b`, want: ObjectGlob{Schema: "public", Name: `a\*b`}},
		{in: `données.clé`, want: ObjectGlob{Schema: "données", Name: "clé"}},
		{in: "", err: "empty glob"},
		{in: ".orders", err: `empty name before "."`},
		{in: `""`, err: "zero-length quoted name"},
		{in: `"a"b`, err: `a quoted name must be followed by "." or the end`},
		{in: `a"b"`, err: `a quote may only open a name ("Name")`},
		{in: `a\b`, err: `"\" must be followed by "*", "?" or "\"`},
		{in: `Public.orders`, err: "unquoted names are lower case in PostgreSQL: write the name in lower case, or quote it to match case exactly"},
	}
	for _, c := range cases {
		got, err := ParseObjectGlob(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("ParseObjectGlob(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseObjectGlob(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestErrorAt(t *testing.T) {
	cfg, err := parse([]byte(base), "warden.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.ErrorAt("policies[0].when", "bad").Error()
	if want := "warden.yaml:15: policies[0].when: bad"; got != want {
		t.Errorf("ErrorAt = %q, want %q", got, want)
	}
	if got := (&Config{}).ErrorAt("x", "y").Error(); got != "config: x: y" {
		t.Errorf("ErrorAt on a Go-built config = %q", got)
	}
}

func TestReviewsDefaults(t *testing.T) {
	cfg, err := parse([]byte(base+"    review:\n      - target: prod-db\n        sql: { delete: [public.orders] }\n"), "warden.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := Reviews{Wait: 30 * time.Second, TTL: time.Hour, GrantTTL: 15 * time.Minute}
	if cfg.Reviews != want {
		t.Errorf("reviews = %+v, want %+v (no http listener: no console URL)", cfg.Reviews, want)
	}
	if got := cfg.Policies[0].Review[0].MinApprovals; got != 1 {
		t.Errorf("min_approvals = %d, want the default 1", got)
	}
	cfg, err = parse([]byte(base+"reviews:\n  console_url: https://warden.example.com/console/\n  webhook: { url: 'http://127.0.0.1:9/hook', secret: x }\n"), "warden.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Reviews.ConsoleURL; got != "https://warden.example.com/console" {
		t.Errorf("console_url = %q; want it without the trailing slash", got)
	}
	if got := cfg.Reviews.Webhook.Format; got != "json" {
		t.Errorf("webhook format = %q, want the default json", got)
	}
}

func TestConsoleURLFor(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":     "http://127.0.0.1:8080",
		"localhost:8080":     "http://localhost:8080",
		"warden.internal:80": "http://warden.internal:80",
		"[::1]:8080":         "http://[::1]:8080",
		":8080":              "http://localhost:8080",
		"0.0.0.0:8080":       "http://localhost:8080",
		"[::]:8080":          "http://localhost:8080",
		"8080":               "",
	} {
		if got := consoleURLFor(in); got != want {
			t.Errorf("consoleURLFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactWebhookURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                       "",
		"https://hooks.example.com":              "https://hooks.example.com",
		"https://hooks.example.com/":             "https://hooks.example.com/",
		"https://hooks.slack.com/services/T/B/k": "https://hooks.slack.com/REDACTED",
		"https://h.example.com/?token=k":         "https://h.example.com/REDACTED",
		"https://user:pw@h.example.com":          "https://h.example.com/REDACTED",
		"::not a url":                            "REDACTED",
	} {
		if got := redactWebhookURL(in); got != want {
			t.Errorf("redactWebhookURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseColumnGlob(t *testing.T) {
	cases := []struct {
		in   string
		want ColumnGlob
		err  string
	}{
		{in: "public.customers.email", want: ColumnGlob{Schema: "public", Table: "customers", Column: "email"}},
		{in: "customers.email", want: ColumnGlob{Table: "customers", Column: "email"}},
		{in: "*.ssn", want: ColumnGlob{Table: "*", Column: "ssn"}},
		{in: "public.*.card_number", want: ColumnGlob{Schema: "public", Table: "*", Column: "card_number"}},
		{in: "*.*.*", want: ColumnGlob{Schema: "*", Table: "*", Column: "*"}},
		{in: `public."Customers"."E-Mail"`, want: ColumnGlob{Schema: "public", Table: "Customers", Column: "E-Mail"}},
		{in: `"my.schema".t.c`, want: ColumnGlob{Schema: "my.schema", Table: "t", Column: "c"}},
		{in: `t.card_\*`, want: ColumnGlob{Table: "t", Column: `card_\*`}},
		{in: "ssn", err: "expected schema.table.column or table.column (quote names that contain dots)"},
		{in: "a.b.c.d", err: "expected schema.table.column or table.column (quote names that contain dots)"},
		{in: "", err: "empty glob"},
		{in: "t..c", err: `empty name before "."`},
		{in: "t.Email", err: "unquoted names are lower case in PostgreSQL: write the name in lower case, or quote it to match case exactly"},
	}
	for _, c := range cases {
		got, err := ParseColumnGlob(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("ParseColumnGlob(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseColumnGlob(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// "style: null" is YAML's null; in a mask rule it must mean the style
// null, never the default (redact, which is weaker).
func TestMaskStyleNull(t *testing.T) {
	for _, spelling := range []string{"null", "Null", "NULL", "~", `"null"`, "${NULLISH}"} {
		cfg, err := parse([]byte(base+"    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        style: "+spelling+"\n"), "warden.yaml", lookup)
		if err != nil {
			t.Fatalf("style: %s: %v", spelling, err)
		}
		if got := cfg.Policies[0].Mask[0].Style; got != StyleNull {
			t.Errorf("style: %s gave %q, want null", spelling, got)
		}
	}
	// Only an empty value means the default.
	cfg, err := parse([]byte(base+"    mask:\n      - target: prod-db\n        columns: [public.t.c]\n        style:\n"), "warden.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Policies[0].Mask[0].Style; got != StyleRedact {
		t.Errorf("empty style gave %q, want the default redact", got)
	}
}

// Every style and built-in detector the file format accepts is one that
// package mask builds: the two lists must not drift apart.
func TestMaskNamesAgreeWithPackageMask(t *testing.T) {
	for _, st := range maskStyles {
		if _, err := mask.NewMasker(st, mask.Options{Key: []byte("0123456789abcdef")}); err != nil {
			t.Errorf("style %q: %v", st, err)
		}
	}
	for _, n := range mask.BuiltinNames() {
		if !detectorNameRe.MatchString(n) {
			t.Errorf("built-in detector %q does not have the shape custom names must have", n)
		}
	}
}

func TestHTTPAndKubernetesErrors(t *testing.T) {
	head := `listen: { http: 127.0.0.1:8080 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
targets:
  - { name: billing, type: http, url: "http://127.0.0.1:9000" }
  - { name: cluster, type: kubernetes, url: "https://127.0.0.1:6443", token_file: t, headers: { Authorization: x } }
policies:
  - name: p
`
	cases := []struct {
		name, body string
		want       []string
	}{
		{"credential twice", "", []string{"warden.yaml:5: targets[1]: give the upstream credential once: headers.Authorization, basic_auth and token_file each set the Authorization header"}},
		{"sql on http", "    allow: [{ target: billing, sql: { select: [t] } }]\n",
			[]string{`warden.yaml:8: policies[0].allow[0].sql: target "billing" is an http target: sql rules apply to postgres targets`}},
		{"kubernetes rule on http", "    deny: [{ target: billing, kubernetes: [{ resources: [pods], verbs: [get] }] }]\n",
			[]string{`warden.yaml:8: policies[0].deny[0]: a deny rule must name something to deny (http: [{methods: [DELETE], paths: [/v1/**]}])`,
				`warden.yaml:8: policies[0].deny[0].kubernetes: target "billing" is an http target: kubernetes rules apply to kubernetes targets`}},
		{"bad method and path", "    allow: [{ target: billing, http: [{ methods: [get], paths: [v1/x, /a**] }] }]\n",
			[]string{`warden.yaml:8: policies[0].allow[0].http[0].methods[0]: "get" is not an upper-case HTTP method (GET, POST, ...) or *`,
				`warden.yaml:8: policies[0].allow[0].http[0].paths[0]: invalid path glob "v1/x": must start with /`,
				`warden.yaml:8: policies[0].allow[0].http[0].paths[1]: invalid path glob "/a**": "**" must be a whole segment ("/v1/**", not "/v1/a**")`}},
		{"kube rule needs verbs", "    allow: [{ target: cluster, kubernetes: [{ resources: [pods], verbs: [fly] }, { verbs: [get] }] }]\n",
			[]string{`warden.yaml:8: policies[0].allow[0].kubernetes[0].verbs[0]: unknown verb "fly" (want one of get, list, watch, create, update, patch, delete, deletecollection, proxy, exec, attach, port-forward, *)`,
				`warden.yaml:8: policies[0].allow[0].kubernetes[1].resources: required (e.g. [pods], ["*"])`}},
		{"mask columns on http", "    mask: [{ target: billing, columns: [t.c] }]\n",
			[]string{`warden.yaml:8: policies[0].mask[0]: a mask rule must name fields or detectors to mask`,
				`warden.yaml:8: policies[0].mask[0].columns: columns apply to postgres targets; target "billing" is an http target (use fields)`}},
		{"mask on kubernetes", "    mask: [{ target: cluster, detectors: [email] }]\n",
			[]string{`warden.yaml:8: policies[0].mask[0].target: target "cluster" is a kubernetes target: Secret values are masked there without mask rules (reveal them with reveal_secret_data)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := head
			if c.name != "credential twice" {
				y = strings.Replace(head, ", headers: { Authorization: x }", "", 1)
			}
			_, err := Parse([]byte(y+c.body), "warden.yaml")
			var got []string
			if err != nil {
				for _, e := range strings.Split(err.Error(), "\n") {
					got = append(got, e)
				}
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}
