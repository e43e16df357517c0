package main

// `warden policy explain --http/--kube` and `warden policy test` with http
// and kube cases, run as the real binary. The targets' upstreams are real
// listeners that fail the test if anything reaches them: explain and test
// decide without touching a backend.

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// untouchable is an upstream that must never be contacted.
func untouchable(t *testing.T) string {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "explain must not reach a backend", http.StatusTeapot)
	}))
	t.Cleanup(func() {
		srv.Close()
		if n := hits.Load(); n > 0 {
			t.Errorf("a backend was contacted %d times", n)
		}
	})
	return srv.URL
}

// writeRequestConfig writes a config with an http and a kubernetes target
// (both upstreams untouchable), a postgres target, and policies for them,
// trusting the given issuer.
func writeRequestConfig(t *testing.T, dir, issuer string) string {
	t.Helper()
	cfg := `listen: { http: 127.0.0.1:8080 }
identity: { oidc: [{ issuer: "` + issuer + `", audience: warden }] }
admins: '"sre" in groups'
targets:
  - { name: billing, type: http, url: "` + untouchable(t) + `", headers: { Authorization: "Bearer backend-key" } }
  - { name: cluster, type: kubernetes, url: "` + untouchable(t) + `", token_file: sa.token }
  - { name: prod-db, type: postgres, address: "127.0.0.1:1", database: app, user: app }
policies:
  - name: agents
    when: '"agents" in groups'
    allow:
      - target: billing
        http:
          - { methods: [GET], paths: ["/v1/invoices/**"] }
          - { methods: [POST], paths: ["/v1/search"], when: 'headers["content-type"] == "application/json" && query.limit[0] == "10"' }
      - target: cluster
        kubernetes:
          - { namespaces: [staging], resources: [pods, pods/log, secrets], verbs: [get, list, watch] }
          - { namespaces: [dev], resources: [secrets], verbs: [get], reveal_secret_data: true }
    review:
      - target: billing
        http: [{ methods: [POST], paths: ["/v1/refunds"] }]
      - target: cluster
        kubernetes: [{ resources: [pods], verbs: [delete, exec] }]
        min_approvals: 2
    deny:
      - target: cluster
        kubernetes: [{ namespaces: [prod], resources: [secrets], verbs: ["*"] }]
`
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyExplainHTTPAndKube(t *testing.T) {
	dir := t.TempDir()
	iss := startDevIssuer(t, filepath.Join(dir, "dev.pem"))
	cfg := writeRequestConfig(t, dir, iss.URL)
	tok := iss.mint(t, "--sub", "agent-1", "--claim", "groups=agents")
	sub := []string{"--sub", "agent-1", "--claim", "groups=agents"}
	withToken := []string{"--token", tok}

	for _, tc := range []struct {
		name     string
		identity []string
		args     []string
		code     int
		want     []string
		notWant  []string
	}{
		{
			name: "http allowed", identity: withToken, code: 0,
			args: []string{"--target", "billing", "--http", "GET /v1/invoices/7?x=1"},
			want: []string{`^subject:[ \t]+agent-1$`, `^policies:[ \t]+agents$`, `^request:[ \t]+GET /v1/invoices/7$`, `^  query:[ \t]+x=1$`,
				`^decision:[ \t]+allow$`, `^policy:[ \t]+agents$`, `^rule:[ \t]+agents/allow\[0\]$`},
		},
		{
			name: "http condition on headers and query", identity: sub, code: 0,
			args: []string{"--target", "billing", "--http", "POST /v1/search?limit=10", "--header", "Content-Type: application/json", "--header", "X-Trace: a"},
			want: []string{`^  header: Content-Type: application/json$`, `^  header: X-Trace: a$`, `^decision:[ \t]+allow$`},
		},
		{
			name: "http condition fails without the header", identity: sub, code: 2,
			args: []string{"--target", "billing", "--http", "POST /v1/search?limit=10"},
			want: []string{`^decision:[ \t]+deny$`, `^rule:[ \t]+default deny$`,
				`^client sees: HTTP 403: warden: permission denied: POST /v1/search is not allowed \(default deny\) \[policy: -, rule: default deny\]$`},
		},
		{
			name: "http review", identity: withToken, code: 3,
			args: []string{"--target", "billing", "--http", "POST /v1/refunds"},
			want: []string{`^decision:[ \t]+review$`, `^rule:[ \t]+agents/review\[0\]$`, `^approvals: 1 from admins$`,
				`^client sees: the request is held until approved, or HTTP 403: warden: held for review: POST /v1/refunds needs approval`},
		},
		{
			name: "kube list allowed", identity: withToken, code: 0,
			args: []string{"--target", "cluster", "--kube", "get pods -n staging"},
			want: []string{`^request:[ \t]+list pods in namespace "staging"$`, `^  verb:[ \t]+list$`, `^  group:[ \t]+"" \(core\)$`,
				`^  resource:[ \t]+pods$`, `^  subresource: -$`, `^  namespace:[ \t]+staging$`, `^  name:[ \t]+-$`,
				`^decision:[ \t]+allow$`, `^rule:[ \t]+agents/allow\[1\]$`},
			notWant: []string{`^secrets:`},
		},
		{
			name: "kube all namespaces denied", identity: sub, code: 2,
			args: []string{"--target", "cluster", "--kube", "kubectl get pods -A"},
			want: []string{`^request:[ \t]+list pods \(cluster-wide\)$`, `^  namespace:[ \t]+- \(cluster-scoped or all namespaces\)$`,
				`^decision:[ \t]+deny$`, `^client sees: HTTP 403 with a Kubernetes Status: warden: permission denied: `},
		},
		{
			name: "kube secrets masked", identity: sub, code: 0,
			args: []string{"--target", "cluster", "--kube", "get secret db -n staging -o yaml"},
			want: []string{`^  name:[ \t]+db$`, `^decision:[ \t]+allow$`, `^secrets:[ \t]+values masked`},
		},
		{
			name: "kube secrets revealed", identity: sub, code: 0,
			args: []string{"--target", "cluster", "--kube", "get secret db -n dev"},
			want: []string{`^decision:[ \t]+allow$`, `^rule:[ \t]+agents/allow\[1\]$`, `^secrets:[ \t]+values revealed`},
		},
		{
			name: "kube prod secrets denied", identity: sub, code: 2,
			args:    []string{"--target", "cluster", "--kube", "get secrets -n prod -w"},
			want:    []string{`^  verb:[ \t]+watch$`, `^decision:[ \t]+deny$`, `^rule:[ \t]+agents/deny\[0\]$`},
			notWant: []string{`^secrets:`},
		},
		{
			name: "kube exec held", identity: sub, code: 3,
			args: []string{"--target", "cluster", "--kube", "exec -it web-1 -n staging -- sh"},
			want: []string{`^request:[ \t]+create pods/exec "web-1" in namespace "staging"$`, `^  subresource: exec$`,
				`^decision:[ \t]+review$`, `^approvals: 2 from admins$`},
		},
		{
			name: "kube scale of a deployment", identity: sub, code: 2,
			args: []string{"--target", "cluster", "--kube", "scale deploy/web --replicas=3 -n staging"},
			want: []string{`^  verb:[ \t]+patch$`, `^  group:[ \t]+apps$`, `^  resource:[ \t]+deployments$`, `^  subresource: scale$`, `^decision:[ \t]+deny$`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"policy", "explain", "--config", cfg}, tc.identity...)
			r := warden(t, nil, append(args, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("want exit %d:\n%s", tc.code, r)
			}
			wantOutput(t, "stdout", r.stdout, tc.want...)
			for _, p := range tc.notWant {
				if regexp.MustCompile("(?m)" + p).MatchString(r.stdout) {
					t.Errorf("stdout matches %q:\n%s", p, r.stdout)
				}
			}
		})
	}

	// Usage mistakes: exit 1, a message saying what is wrong, no decision.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"http on a kubernetes target", []string{"--target", "cluster", "--http", "GET /api"}, `target "cluster" is a kubernetes target; --http needs an http target`},
		{"kube on an http target", []string{"--target", "billing", "--kube", "get pods"}, `target "billing" is an http target; --kube needs a kubernetes target`},
		{"sql on an http target", []string{"--target", "billing", "--sql", "SELECT 1"}, `target "billing" is an http target; --sql needs a postgres target`},
		{"kube on a postgres target", []string{"--target", "prod-db", "--kube", "get pods"}, `target "prod-db" is a postgres target; --kube needs a kubernetes target`},
		{"two requests", []string{"--target", "billing", "--http", "GET /", "--kube", "get pods"}, "none of the others can be"},
		{"no request", []string{"--target", "billing"}, "at least one of the flags in the group [sql http kube] is required"},
		{"header without http", []string{"--target", "cluster", "--kube", "get pods", "--header", "A: b"}, "--header goes with --http"},
		{"bad header", []string{"--target", "billing", "--http", "GET /", "--header", "no colon"}, `--header: header "no colon": want "Name: value"`},
		{"bad request line", []string{"--target", "billing", "--http", "/v1/invoices"}, `--http: http request "/v1/invoices": want "METHOD /path"`},
		{"dot segments", []string{"--target", "billing", "--http", "GET /v1/invoices/../admin"}, `'..' path segments are refused`},
		{"unknown kubectl command", []string{"--target", "cluster", "--kube", "apply -f x.yaml"}, `--kube: kube command "apply -f x.yaml": kubectl apply reads the objects from a file`},
		{"unknown resource", []string{"--target", "cluster", "--kube", "get widgets"}, `unknown resource "widgets"`},
		{"unknown target", []string{"--target", "nope", "--kube", "get pods"}, `unknown target "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"policy", "explain", "--config", cfg}, sub...)
			r := warden(t, nil, append(args, tc.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stdout, "decision:") {
				t.Errorf("want exit 1, %q on stderr and no decision:\n%s", tc.want, r)
			}
		})
	}
}

// TestPolicyTestHTTPAndKubeExample runs `warden policy test` on the http
// and kubernetes example, as its README comment says to.
func TestPolicyTestHTTPAndKubeExample(t *testing.T) {
	cfg := absPath(t, "../../examples/http-kubernetes/warden.yaml")
	tests := absPath(t, "../../examples/http-kubernetes/tests.yaml")
	r := warden(t, nil, "policy", "test", "--verbose", "--config", cfg, tests)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	wantOutput(t, "stdout", r.stdout,
		`^PASS a refund waits for a human$`,
		`^    request:  POST /v1/refunds$`,
		`^PASS deleting a pod waits for a human$`,
		`^    request:  delete pods "web-1" in namespace "staging"$`,
		`^    decision: review by deploy-agent/review\[0\] \(policy deploy-agent\)$`,
		`^\d+ passed, 0 failed$`)

	// A case with an expectation policy does not meet fails with exit 1.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`cases:
  - name: exec is not allowed outright
    identity: { sub: deploy-bot, claims: { groups: [deployers] } }
    target: cluster
    kube: "exec web-1 -n staging -- ls"
    expect: allow
  - name: kubectl flags warden does not model
    identity: { sub: deploy-bot, claims: { groups: [deployers] } }
    target: cluster
    kube: "--context prod get pods"
    expect: deny
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = warden(t, nil, "policy", "test", "--config", cfg, bad)
	if r.code != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	wantOutput(t, "stdout", r.stdout,
		`^FAIL exec is not allowed outright: want allow, got review \(rule deploy-agent/review\[0\]\)`,
		`^FAIL kubectl flags warden does not model: kube command "--context prod get pods": flag --context before the command`,
		`^0 passed, 2 failed$`)
}
