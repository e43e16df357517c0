package policy

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/warden-gateway/warden/internal/identity"
)

const requestConfig = `listen: { http: 127.0.0.1:8080 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
admins: '"sre" in groups'
targets:
  - { name: billing, type: http, url: "http://127.0.0.1:9000", headers: { Authorization: "Bearer x" } }
  - { name: cluster, type: kubernetes, url: "https://127.0.0.1:6443", token_file: sa.token }
policies:
  - name: agents
    when: '"agents" in groups'
    allow:
      - target: billing
        http:
          - { methods: [GET], paths: ["/v1/invoices/**", "/v1/customers/*/summary"] }
          - { methods: [POST], paths: ["/v1/search"], when: 'headers["content-type"] == "application/json"' }
      - target: cluster
        kubernetes:
          - { namespaces: [staging], resources: [pods, pods/log], verbs: [get, list, watch] }
          - { namespaces: [staging], resources: [secrets], verbs: [get, list, watch] }
          - { namespaces: [staging], resources: [deployments], api_groups: [apps], verbs: [get, list] }
          - { namespaces: [staging], resources: [pods], verbs: [delete, exec] }
          - { namespaces: [prod], resources: [configmaps], names: ["app-*"], verbs: [get] }
      - target: cluster
        kubernetes:
          - { namespaces: [dev], resources: [secrets], verbs: [get], reveal_secret_data: true }
    deny:
      - target: billing
        http: [{ methods: ["*"], paths: ["/v1/invoices/*/internal"] }]
      - target: cluster
        kubernetes: [{ namespaces: [prod], resources: [secrets], verbs: ["*"] }]
    review:
      - target: billing
        http: [{ methods: [POST], paths: ["/v1/refunds"] }]
      - target: cluster
        kubernetes: [{ resources: [pods], verbs: [delete, exec] }]
`

func TestDecideHTTP(t *testing.T) {
	e := compileTest(t, requestConfig)
	s := e.Bind(&identity.Principal{Subject: "agent-1", Groups: []string{"agents"}})
	other := e.Bind(&identity.Principal{Subject: "nobody"})
	json := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		method, path string
		header       http.Header
		want         Effect
		rule         string
	}{
		{"GET", "/v1/invoices", nil, Allow, "agents/allow[0]"},
		{"GET", "/v1/invoices/7", nil, Allow, "agents/allow[0]"},
		{"GET", "/v1/invoices/7/lines/2", nil, Allow, "agents/allow[0]"},
		{"HEAD", "/v1/invoices/7", nil, Allow, "agents/allow[0]"}, // HEAD is covered by GET
		{"HEAD", "/v1/invoices/7/internal", nil, Deny, "agents/deny[0]"},
		{"OPTIONS", "/v1/invoices/7", nil, Deny, RuleDefaultDeny},
		{"DELETE", "/v1/invoices/7", nil, Deny, RuleDefaultDeny},
		{"GET", "/v1/invoices/7/internal", nil, Deny, "agents/deny[0]"},
		{"GET", "/v1/invoicesX", nil, Deny, RuleDefaultDeny},
		{"GET", "/v1/customers/42/summary", nil, Allow, "agents/allow[0]"},
		{"GET", "/v1/customers/42/43/summary", nil, Deny, RuleDefaultDeny},
		{"POST", "/v1/search", json, Allow, "agents/allow[0]"},
		{"POST", "/v1/search", http.Header{"Content-Type": {"text/plain"}}, Deny, RuleDefaultDeny},
		{"POST", "/v1/refunds", nil, Review, "agents/review[0]"},
		{"GET", "/", nil, Deny, RuleDefaultDeny},
	}
	for _, c := range cases {
		d := s.DecideHTTP("billing", &HTTPRequest{Method: c.method, Path: c.path, Header: c.header, Query: url.Values{}})
		if d.Effect != c.want || d.Rule != c.rule {
			t.Errorf("%s %s: got %v by %q (%s), want %v by %q", c.method, c.path, d.Effect, d.Rule, d.Reason, c.want, c.rule)
		}
	}
	if d := other.DecideHTTP("billing", &HTTPRequest{Method: "GET", Path: "/v1/invoices/7"}); d.Effect != Deny {
		t.Errorf("subject without policy: got %v", d.Effect)
	}
	if d := s.DecideHTTP("nope", &HTTPRequest{Method: "GET", Path: "/"}); d.Effect != Deny {
		t.Errorf("unknown target: got %v", d.Effect)
	}
	d := s.DecideHTTP("billing", &HTTPRequest{Method: "POST", Path: "/v1/refunds"})
	if d.MinApprovals != 1 || d.Summary != "POST /v1/refunds needs approval" {
		t.Errorf("review decision: %+v", d)
	}
}

func TestDecideKube(t *testing.T) {
	e := compileTest(t, requestConfig)
	s := e.Bind(&identity.Principal{Subject: "agent-1", Groups: []string{"agents"}})
	res := func(verb, group, ns, resource, sub, name string) *KubeRequest {
		return &KubeRequest{IsResourceRequest: true, Verb: verb, APIGroup: group, Namespace: ns, Resource: resource, Subresource: sub, Name: name}
	}
	cases := []struct {
		name   string
		r      *KubeRequest
		want   Effect
		rule   string
		reveal bool
	}{
		{"list pods staging", res("list", "", "staging", "pods", "", ""), Allow, "agents/allow[1]", false},
		{"watch pods staging", res("watch", "", "staging", "pods", "", ""), Allow, "agents/allow[1]", false},
		{"list pods prod", res("list", "", "prod", "pods", "", ""), Deny, RuleDefaultDeny, false},
		{"list pods all namespaces", res("list", "", "", "pods", "", ""), Deny, RuleDefaultDeny, false},
		{"logs staging", res("get", "", "staging", "pods", "log", "web"), Allow, "agents/allow[1]", false},
		{"pod status not granted", res("get", "", "staging", "pods", "status", "web"), Deny, RuleDefaultDeny, false},
		{"deployments apps", res("list", "apps", "staging", "deployments", "", ""), Allow, "agents/allow[1]", false},
		{"deployments other group", res("list", "extensions", "staging", "deployments", "", ""), Deny, RuleDefaultDeny, false},
		{"create pod", res("create", "", "staging", "pods", "", ""), Deny, RuleDefaultDeny, false},
		{"delete pod held", res("delete", "", "staging", "pods", "", "web"), Review, "agents/review[1]", false},
		{"exec held", res("create", "", "staging", "pods", "exec", "web"), Review, "agents/review[1]", false},
		{"attach not granted", res("create", "", "staging", "pods", "attach", "web"), Deny, RuleDefaultDeny, false},
		{"secrets prod denied", res("get", "", "prod", "secrets", "", "db"), Deny, "agents/deny[1]", false},
		{"secrets staging masked", res("get", "", "staging", "secrets", "", "db"), Allow, "agents/allow[1]", false},
		{"secrets dev revealed", res("get", "", "dev", "secrets", "", "db"), Allow, "agents/allow[2]", true},
		{"secrets dev list not granted", res("list", "", "dev", "secrets", "", ""), Deny, RuleDefaultDeny, false},
		{"configmap by name", res("get", "", "prod", "configmaps", "", "app-settings"), Allow, "agents/allow[1]", false},
		{"configmap other name", res("get", "", "prod", "configmaps", "", "db-settings"), Deny, RuleDefaultDeny, false},
		{"configmap list needs name", res("list", "", "prod", "configmaps", "", ""), Deny, RuleDefaultDeny, false},
		{"nodes cluster-scoped", res("list", "", "", "nodes", "", ""), Deny, RuleDefaultDeny, false},
		{"discovery", &KubeRequest{Verb: "get", Path: "/apis", Discovery: true}, Allow, RuleDiscovery, false},
		{"non-resource", &KubeRequest{Verb: "get", Path: "/metrics"}, Deny, RuleDefaultDeny, false},
	}
	for _, c := range cases {
		d := s.DecideKube("cluster", c.r)
		if d.Effect != c.want || d.Rule != c.rule || d.Reveal != c.reveal {
			t.Errorf("%s: got %v by %q reveal=%v (%s), want %v by %q reveal=%v", c.name, d.Effect, d.Rule, d.Reveal, d.Reason, c.want, c.rule, c.reveal)
		}
	}
	nobody := e.Bind(&identity.Principal{Subject: "x"})
	if d := nobody.DecideKube("cluster", &KubeRequest{Verb: "get", Path: "/api", Discovery: true}); d.Effect != Deny {
		t.Errorf("discovery without any rule for the target: %v", d.Effect)
	}
	if got := DescribeKube(res("delete", "", "staging", "pods", "", "web")); got != `delete pods "web" in namespace "staging"` {
		t.Errorf("DescribeKube = %q", got)
	}
}

func TestMaskFields(t *testing.T) {
	e := compileTest(t, requestConfig+`  - name: maskers
    mask:
      - { target: billing, fields: [customer.email, "**.ssn", "items.*.card"], style: partial }
      - { target: billing, fields: [customer.email], style: redact, non_json: pass }
`)
	s := e.Bind(&identity.Principal{Subject: "a"})
	m := s.Masks("billing")
	for _, c := range []struct {
		path  []string
		ok    bool
		style string
	}{
		{[]string{"customer", "email"}, true, "redact"},
		{[]string{"a", "b", "ssn"}, true, "partial"},
		{[]string{"ssn"}, true, "partial"},
		{[]string{"items", "x", "card"}, true, "partial"},
		{[]string{"items", "card"}, false, ""},
		{[]string{"customer", "name"}, false, ""},
	} {
		cm, ok := m.Field(c.path)
		if ok != c.ok || string(cm.Style) != c.style {
			t.Errorf("Field(%v) = %v %q, want %v %q", c.path, ok, cm.Style, c.ok, c.style)
		}
	}
	if m.PassNonJSON() {
		t.Error("one rule refuses non-JSON bodies: PassNonJSON must be false")
	}
}

// TestSegGlob checks the backtracking matcher against a plain recursive
// definition of "**" on every glob and path built from a small alphabet.
func TestSegGlob(t *testing.T) {
	var ref func(g, p []string) bool
	ref = func(g, p []string) bool {
		switch {
		case len(g) == 0:
			return len(p) == 0
		case g[0] == "**":
			return ref(g[1:], p) || (len(p) > 0 && ref(g, p[1:]))
		default:
			pat := compilePattern(g[0])
			return len(p) > 0 && pat.match(p[0]) && ref(g[1:], p[1:])
		}
	}
	parts := []string{"a", "b", "*", "**", "a*"}
	var globs [][]string
	var gen func(prefix []string, n int)
	gen = func(prefix []string, n int) {
		globs = append(globs, append([]string(nil), prefix...))
		if n == 0 {
			return
		}
		for _, p := range parts {
			gen(append(prefix, p), n-1)
		}
	}
	gen(nil, 4)
	paths := [][]string{nil, {"a"}, {"b"}, {"a", "b"}, {"ab", "a", "b"}, {"b", "a", "a", "b"}, {"a", "x", "b", "a"}}
	for _, g := range globs {
		sg := compileSegGlob(g)
		for _, p := range paths {
			if got, want := sg.match(p), ref(g, p); got != want {
				t.Fatalf("glob %q on %q: %v, want %v", g, p, got, want)
			}
		}
	}
}
