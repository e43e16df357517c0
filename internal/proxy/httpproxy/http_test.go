package httpproxy_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/gorilla/websocket"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/proxy/httpproxy"
	"github.com/warden-gateway/warden/internal/store"
)

// upstream is a real HTTP server standing for an internal billing API.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request // what reached it
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.got...)
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	r := u.requests()
	if len(r) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return r[len(r)-1]
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/invoices/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"total":120.5,"customer":{"name":"Ada","email":"ada@example.com","ssn":"078-05-1120"},"lines":[{"sku":"a","card":"4111 1111 1111 1111"}],"note":"call +1 415 555 0100"}`,
			strings.TrimPrefix(r.URL.Path, "/v1/invoices/"))
	})
	mux.HandleFunc("/v1/report.csv", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, "email\nada@example.com\n")
	})
	mux.HandleFunc("/v1/refunds", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"refunded":%s}`, b)
	})
	mux.HandleFunc("/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	up := websocket.Upgrader{}
	mux.HandleFunc("/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, append([]byte("echo: "), msg...))
		}
	})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.got = append(u.got, r.Clone(context.Background()))
		u.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

type fixture struct {
	gw   *gateway.Gateway
	iss  *identitytest.Issuer
	up   *upstream
	base string // http://127.0.0.1:port
}

func start(t *testing.T) *fixture {
	t.Helper()
	iss := identitytest.NewIssuer(t)
	up := startUpstream(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
listen: { http: 127.0.0.1:0 }
store: sqlite://audit.db
identity:
  oidc: [{ issuer: %[1]s, audience: warden }]
admins: '"sre" in groups'
http: { domain: warden.test }
reviews: { wait: 1s }
targets:
  - name: billing
    type: http
    url: %[2]s
    headers: { Authorization: "Bearer service-key-123", X-Api-Version: "2" }
  - name: live                # the same API, without mask rules: streams and WebSockets
    type: http
    url: %[2]s
    headers: { Authorization: "Bearer service-key-123" }
policies:
  - name: agents
    when: '"agents" in groups'
    allow:
      - target: billing
        http:
          - { methods: [GET], paths: ["/v1/invoices/**", "/v1/report.csv", "/v1/stream", "/v1/ws"] }
      - target: live
        http:
          - { methods: [GET], paths: ["/v1/stream", "/v1/ws"] }
    deny:
      - target: billing
        http: [{ methods: [DELETE], paths: ["/**"] }]
    review:
      - target: billing
        http: [{ methods: [POST], paths: ["/v1/refunds"] }]
    mask:
      - target: billing
        fields: [customer.email, "**.ssn", lines.card]
        detectors: [phone]
`, iss.URL, up.srv.URL)
	gw := runGateway(t, dir, yaml)
	return &fixture{gw: gw, iss: iss, up: up, base: "http://" + gw.HTTPAddr().String()}
}

func (f *fixture) token(t *testing.T, sub string, groups ...string) string {
	return f.iss.Token(t, sub, map[string]any{"groups": groups}, 10*time.Minute)
}

// curl runs the real curl and returns the status and body.
func curl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "-w", "\n%{http_code}"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	var code int
	fmt.Sscan(s[i+1:], &code)
	return code, s[:max(i, 0)]
}

func TestCurlAllowedWithInjectedCredential(t *testing.T) {
	f := start(t)
	tok := f.token(t, "agent-1", "agents")
	code, body := curl(t, "-H", "Authorization: Bearer "+tok,
		"-H", "X-Forwarded-For: 10.9.9.9", "-H", "X-Warden-Identity: forged", "-H", "Impersonate-User: admin",
		"-H", "X-Remote-User: root", "-H", "Forwarded: for=1.2.3.4",
		f.base+"/t/billing/v1/invoices/7")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	r := f.up.last(t)
	if got := r.Header.Get("Authorization"); got != "Bearer service-key-123" {
		t.Errorf("upstream Authorization = %q, want the target's own credential", got)
	}
	if r.Header.Get("X-Api-Version") != "2" {
		t.Errorf("configured header not injected: %v", r.Header)
	}
	for name, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, tok) {
				t.Errorf("the agent's token reached the upstream in %s", name)
			}
		}
	}
	for _, h := range []string{"X-Forwarded-For", "Impersonate-User", "X-Remote-User", "Forwarded"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("client-supplied %s reached the upstream: %q", h, v)
		}
	}
	if r.URL.Path != "/v1/invoices/7" {
		t.Errorf("upstream path %q", r.URL.Path)
	}
	// The identity assertion: a JWT signed by warden's key, naming the agent.
	assertion := r.Header.Get("X-Warden-Identity")
	if assertion == "" || assertion == "forged" {
		t.Fatalf("identity assertion = %q", assertion)
	}
	resp, err := http.Get(f.base + httpproxy.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	var jwks jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	parsed, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims httpproxy.Assertion
	if err := parsed.Claims(jwks.Keys[0].Key, &claims); err != nil {
		t.Fatalf("assertion does not verify against %s: %v", httpproxy.JWKSPath, err)
	}
	if claims.Subject != "agent-1" || claims.Target != "billing" || len(claims.Groups) != 1 || claims.Groups[0] != "agents" ||
		claims.Validate(jwt.Expected{Issuer: "warden", AnyAudience: []string{"billing"}, Time: time.Now()}) != nil {
		t.Errorf("assertion claims: %+v", claims)
	}

	// Host routing reaches the same target with the path unchanged.
	code, _ = curl(t, "-H", "Authorization: Bearer "+tok, "-H", "Host: billing.warden.test", f.base+"/v1/invoices/8")
	if code != 200 || f.up.last(t).URL.Path != "/v1/invoices/8" {
		t.Errorf("host routing: status %d, upstream path %q", code, f.up.last(t).URL.Path)
	}
}

func TestCurlRefusals(t *testing.T) {
	f := start(t)
	tok := f.token(t, "agent-1", "agents")
	before := len(f.up.requests())
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no token", []string{f.base + "/t/billing/v1/invoices/7"}, 401, "bearer token is required"},
		{"bad token", []string{"-H", "Authorization: Bearer not.a.jwt", f.base + "/t/billing/v1/invoices/7"}, 401, "invalid token"},
		{"default deny", []string{"-H", "Authorization: Bearer " + tok, "-X", "PUT", f.base + "/t/billing/v1/invoices/7"}, 403, `"rule":"default deny"`},
		{"explicit deny", []string{"-H", "Authorization: Bearer " + tok, "-X", "DELETE", f.base + "/t/billing/v1/invoices/7"}, 403, `"rule":"agents/deny[0]"`},
		{"unknown target", []string{"-H", "Authorization: Bearer " + tok, f.base + "/t/nope/x"}, 403, "no policy grants access"},
		{"dot segments", []string{"--path-as-is", "-H", "Authorization: Bearer " + tok, f.base + "/t/billing/v1/invoices/../refunds"}, 403, "dot segment"},
		{"encoded slash", []string{"-H", "Authorization: Bearer " + tok, f.base + "/t/billing/v1/invoices%2F..%2Frefunds"}, 403, "encoded"},
		{"other agent", []string{"-H", "Authorization: Bearer " + f.token(t, "x", "visitors"), f.base + "/t/billing/v1/invoices/7"}, 403, "no policy grants access"},
	}
	for _, c := range cases {
		code, body := curl(t, c.args...)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: got %d %s, want %d containing %q", c.name, code, body, c.code, c.want)
		}
		if code == 403 && !json.Valid([]byte(body)) {
			t.Errorf("%s: 403 body is not JSON: %s", c.name, body)
		}
	}
	if n := len(f.up.requests()); n != before {
		t.Errorf("%d refused requests reached the upstream", n-before)
	}
}

func TestJSONMasking(t *testing.T) {
	f := start(t)
	tok := f.token(t, "agent-1", "agents")
	resp := f.get(t, tok, "/t/billing/v1/invoices/9")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, clear := range []string{"ada@example.com", "078-05-1120", "4111 1111 1111 1111", "415 555 0100"} {
		if strings.Contains(string(body), clear) {
			t.Errorf("clear value %q in masked response %s", clear, body)
		}
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("masked body is not JSON: %v: %s", err, body)
	}
	if v["customer"].(map[string]any)["name"] != "Ada" || v["total"].(float64) != 120.5 {
		t.Errorf("unmasked fields changed: %s", body)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
	}
	// A non-JSON body under a mask rule is refused, never passed.
	resp = f.get(t, tok, "/t/billing/v1/report.csv")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "ada@example.com") {
		t.Errorf("csv under mask: %d %s", resp.StatusCode, body)
	}
}

func (f *fixture) get(t *testing.T, tok, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestReviewThenRetryOnce(t *testing.T) {
	f := start(t)
	tok := f.token(t, "agent-1", "agents")
	post := func() (int, map[string]any) {
		code, body := curl(t, "-H", "Authorization: Bearer "+tok, "-H", "Content-Type: application/json",
			"-d", `{"invoice":7,"amount":10}`, f.base+"/t/billing/v1/refunds")
		var v map[string]any
		json.Unmarshal([]byte(body), &v)
		return code, v
	}
	code, v := post()
	id, _ := v["review_id"].(string)
	if code != 403 || id == "" || v["state"] != "pending" {
		t.Fatalf("held request: %d %v", code, v)
	}
	if n := len(f.up.requests()); n != 0 {
		t.Fatalf("held request reached the upstream")
	}
	approver := &identity.Principal{Subject: "sre-1", Issuer: f.iss.URL, Groups: []string{"sre"}}
	if _, err := f.gw.Reviews.Approve(context.Background(), id, approver, "ok"); err != nil {
		t.Fatal(err)
	}
	// A different body is a different request: not approved.
	code, body := curl(t, "-H", "Authorization: Bearer "+tok, "-d", `{"invoice":7,"amount":9999}`, f.base+"/t/billing/v1/refunds")
	if code != 403 || !strings.Contains(body, "review") {
		t.Errorf("changed body after approval: %d %s", code, body)
	}
	code, v = post()
	if code != 201 || v["refunded"] == nil {
		t.Fatalf("approved retry: %d %v", code, v)
	}
	code, v = post()
	if code != 403 || v["review_id"] == id {
		t.Errorf("second retry must be held anew: %d %v", code, v)
	}
	if n := len(f.up.requests()); n != 1 {
		t.Errorf("upstream saw %d refunds, want exactly 1", n)
	}
}

func TestStreamingAndWebSocket(t *testing.T) {
	f := start(t)
	tok := f.token(t, "agent-1", "agents")
	d := websocket.Dialer{}
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	// Under a mask rule a WebSocket cannot be inspected: refused.
	if _, resp, err := d.Dial("ws://"+f.gw.HTTPAddr().String()+"/t/billing/v1/ws", hdr); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("websocket under a mask rule: %v %v", err, resp)
	}
	// Without one it is relayed.
	c, resp, err := d.Dial("ws://"+f.gw.HTTPAddr().String()+"/t/live/v1/ws", hdr)
	if err != nil {
		t.Fatalf("websocket dial: %v (%v)", err, resp)
	}
	defer c.Close()
	for _, m := range []string{"hello", "world"} {
		c.NetConn().SetDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != "echo: "+m {
			t.Fatalf("websocket echo: %q %v", got, err)
		}
	}
	if r := f.up.last(t); r.Header.Get("Authorization") != "Bearer service-key-123" {
		t.Errorf("websocket upgrade carried %q upstream", r.Header.Get("Authorization"))
	}
	// Without a token the upgrade is refused.
	if _, resp, err := d.Dial("ws://"+f.gw.HTTPAddr().String()+"/t/live/v1/ws", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("websocket without token: %v %v", err, resp)
	}
}

func TestAuditOfRequests(t *testing.T) {
	f := start(t)
	tok := f.token(t, "agent-audit", "agents")
	curl(t, "-H", "Authorization: Bearer "+tok, f.base+"/t/billing/v1/invoices/3?b=2&a=1")
	curl(t, "-H", "Authorization: Bearer "+tok, "-X", "DELETE", f.base+"/t/billing/v1/invoices/3")
	evs, err := f.gw.Store.Query(context.Background(), store.Query{Subject: "agent-audit"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range evs {
		lines = append(lines, fmt.Sprintf("%s %s %s %s %s", e.Kind, e.Protocol, e.Decision, e.Request, e.Reason))
	}
	want := []string{
		"statement http allow GET /v1/invoices/3?b=2&a=1",
		"statement.result http allow GET /v1/invoices/3?b=2&a=1 status 200",
		"statement http deny DELETE /v1/invoices/3",
	}
	got := strings.Join(lines, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("audit lacks %q; have:\n%s", w, got)
		}
	}
	var statuses []int64
	for _, e := range evs {
		if e.Kind == audit.KindResult && e.Bytes == 0 {
			t.Errorf("result without bytes: %+v", e)
		}
		if e.Status != 0 {
			statuses = append(statuses, e.Status)
		}
	}
	if !slices.Equal(statuses, []int64{200, 403}) {
		t.Errorf("audited statuses = %v, want [200 403] (the result of the GET, the refused DELETE)", statuses)
	}
}

// runGateway writes yaml as dir/warden.yaml and runs a gateway on it
// until the test ends.
func runGateway(t testing.TB, dir, yaml string) *gateway.Gateway {
	t.Helper()
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

// startGateway runs warden with the given targets and policies (YAML
// fragments) and returns its base URL.
func startGateway(t testing.TB, iss *identitytest.Issuer, targets, policies string) (*gateway.Gateway, string) {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf("listen: { http: 127.0.0.1:0 }\nstore: sqlite://audit.db\nidentity:\n  oidc: [{ issuer: %s, audience: warden }]\ntargets:\n%spolicies:\n%s",
		iss.URL, targets, policies)
	gw := runGateway(t, dir, yaml)
	return gw, "http://" + gw.HTTPAddr().String()
}

// An upstream that demands a client certificate and basic auth gets both
// from warden's target configuration; server-sent events stream through
// unbuffered.
func TestUpstreamMTLSBasicAuthAndStreaming(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	var gotUser, gotPwd, gotCN string
	var mu sync.Mutex
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUser, gotPwd, _ = r.BasicAuth()
		if len(r.TLS.PeerCertificates) > 0 {
			gotCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: tick %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	}))
	dir := t.TempDir()
	caFile, caKey, err := devtlsCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, clientCert, clientKey := issuePair(t, dir, caFile, caKey)
	pool := certPool(t, caFile)
	up.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	up.StartTLS()
	t.Cleanup(up.Close)

	targets := fmt.Sprintf(`  - name: events
    type: http
    url: %s
    ca_file: %s
    cert_file: %s
    key_file: %s
    basic_auth: { username: svc, password: "s3cret" }
`, up.URL, caFile, clientCert, clientKey)
	policies := "  - name: all\n    allow: [{ target: events, http: [{ methods: [GET] }] }]\n"
	_, base := startGateway(t, iss, targets, policies)
	tok := iss.Token(t, "agent-1", nil, 10*time.Minute)
	code, body := curl(t, "-N", "-H", "Authorization: Bearer "+tok, base+"/t/events/stream")
	if code != 200 || strings.Count(body, "data: tick") != 3 {
		t.Fatalf("stream: %d %q", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotUser != "svc" || gotPwd != "s3cret" || gotCN != "warden-client" {
		t.Errorf("upstream saw user %q password %q client cert %q", gotUser, gotPwd, gotCN)
	}
}
