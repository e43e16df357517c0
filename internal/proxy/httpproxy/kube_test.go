package httpproxy_test

// Kubernetes through warden, with a real kube-apiserver and etcd on
// loopback (internal/kubetest; `make kube-apiserver` builds the binary
// once) and the real kubectl. These tests need the cluster and say so:
// without the binary they fail with the command that builds it.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/kubetest"
	"github.com/warden-gateway/warden/internal/store"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

type kubeFixture struct {
	c       *kubetest.Cluster
	gw      *gateway.Gateway
	iss     *identitytest.Issuer
	base    string // https://127.0.0.1:port/t/cluster
	client  *http.Client
	agentKC string // kubeconfig of agent-1 (group agents) through warden

	staging, prod string // this test's namespaces
}

const (
	clearSecret  = "hunter2-very-secret"
	clearSecret2 = "s3cond-secret-value"
)

func startKube(t *testing.T) *kubeFixture {
	return startKubeVia(t, false)
}

// startKubeVia starts warden for a kubernetes target: the API server
// itself, or (front) kubetest's Front, which serves exec, attach and
// port-forward as a kubelet would.
func startKubeVia(t *testing.T, front bool) *kubeFixture {
	t.Helper()
	c := kubetest.Shared(t)
	upstreamURL, upstreamCA := c.URL, c.CAFile
	if front {
		fr := kubetest.StartFront(t, c)
		upstreamURL, upstreamCA = fr.URL, fr.CAFile
	}
	// Each test gets its own namespaces.
	suffix := strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]`).ReplaceAllString(t.Name(), ""))
	if len(suffix) > 30 {
		suffix = suffix[len(suffix)-30:]
	}
	staging, prod := "staging-"+suffix, "prod-"+suffix
	c.Apply(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: { name: %[1]s }
---
apiVersion: v1
kind: Namespace
metadata: { name: %[2]s }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: %[1]s }
spec: { containers: [{ name: app, image: nginx }] }
---
apiVersion: v1
kind: Pod
metadata: { name: db, namespace: %[2]s }
spec: { containers: [{ name: app, image: postgres }] }
---
apiVersion: v1
kind: Pod
metadata: { name: db, namespace: %[1]s }
spec: { containers: [{ name: app, image: postgres }] }
---
apiVersion: v1
kind: Secret
metadata: { name: api-key, namespace: %[1]s }
stringData: { token: %[3]s }
`, staging, prod, clearSecret))

	iss := identitytest.NewIssuer(t)
	dir := t.TempDir()
	cert, key := c.ServingCert(t, "127.0.0.1")
	yaml := fmt.Sprintf(`
listen: { http: 127.0.0.1:0 }
tls: { cert: %s, key: %s }
store: sqlite://audit.db
identity:
  oidc: [{ issuer: %s, audience: warden }]
admins: '"sre" in groups'
reviews: { wait: 1s }
targets:
  - name: cluster
    type: kubernetes
    url: %s
    ca_file: %s
    token_file: %s
policies:
  - name: agents
    when: '"agents" in groups'
    allow:
      - target: cluster
        kubernetes:
          - { namespaces: [%[7]s], resources: [pods, pods/log, secrets], verbs: [get, list, watch] }
          - { namespaces: [%[7]s], resources: [pods], verbs: [delete, exec, port-forward] }
    review:
      - target: cluster
        kubernetes:
          - { namespaces: [%[7]s], resources: [pods], verbs: [delete] }
          - { namespaces: [%[7]s], resources: [pods], verbs: [exec], names: [db] }
`, cert, key, iss.URL, upstreamURL, upstreamCA, c.WardenTokenFile, staging)
	gw := runGateway(t, dir, yaml)
	base := "https://" + gw.HTTPAddr().String() + "/t/cluster"
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAPEM)
	f := &kubeFixture{c: c, gw: gw, iss: iss, base: base,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	tok := iss.Token(t, "agent-1", map[string]any{"groups": []string{"agents"}}, 10*time.Minute)
	f.agentKC = c.WriteKubeconfig(t, base, tok)
	f.staging, f.prod = staging, prod
	return f
}

func (f *kubeFixture) kubectl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return kubetest.Kubectl(t, f.agentKC, nil, args...)
}

func TestKubectlThroughWarden(t *testing.T) {
	f := startKube(t)
	staging, prod := f.staging, f.prod

	// Allowed: pods in staging.
	out, errOut, err := f.kubectl(t, "get", "pods", "-n", staging, "-o", "name")
	if err != nil || !strings.Contains(out, "pod/web") {
		t.Fatalf("get pods -n staging: %v\n%s\n%s", err, out, errOut)
	}
	// Refused: pods in prod, and across all namespaces; kubectl prints
	// warden's Status message, which names the rule.
	for _, args := range [][]string{{"get", "pods", "-n", prod}, {"get", "pods", "-A"}} {
		out, errOut, err = f.kubectl(t, args...)
		if err == nil || !strings.Contains(errOut, "warden: permission denied") || !strings.Contains(errOut, "default deny") {
			t.Errorf("kubectl %v: want a refusal naming the rule, got %v\n%s\n%s", args, err, out, errOut)
		}
	}
	// Secrets: readable in staging, values masked in -o yaml.
	out, errOut, err = f.kubectl(t, "get", "secret", "api-key", "-n", staging, "-o", "yaml")
	if err != nil {
		t.Fatalf("get secret: %v\n%s", err, errOut)
	}
	assertNoSecret(t, "get secret -o yaml", out, clearSecret)
	if !strings.Contains(out, "token:") || !strings.Contains(out, "name: api-key") {
		t.Errorf("masked secret lost its shape:\n%s", out)
	}
	out, _, err = f.kubectl(t, "get", "secrets", "-n", staging, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "get secrets -o json", out, clearSecret)
	// The admin, straight to the API server, sees the clear value: the
	// masking is warden's, not missing data.
	adminOut, _, err := f.c.Kubectl(t, "get", "secret", "api-key", "-n", staging, "-o", "jsonpath={.data.token}")
	if err != nil || adminOut != base64.StdEncoding.EncodeToString([]byte(clearSecret)) {
		t.Fatalf("admin view of the secret: %q %v", adminOut, err)
	}
	// Audit: every request is a record with the verb and resource.
	evs, err := f.gw.Store.Query(context.Background(), store.Query{Subject: "agent-1", Target: "cluster"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range evs {
		if e.Kind == "statement" {
			seen = append(seen, e.Decision+" "+e.Fingerprint)
		}
	}
	all := strings.Join(seen, "\n")
	for _, want := range []string{
		`allow list pods in namespace "` + staging + `"`,
		`deny list pods in namespace "` + prod + `"`,
		`deny list pods (cluster-wide)`,
		`allow get secrets "api-key" in namespace "` + staging + `"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q:\n%s", want, all)
		}
	}
}

func assertNoSecret(t *testing.T, what, out string, clear ...string) {
	t.Helper()
	for _, c := range clear {
		for _, form := range []string{c, base64.StdEncoding.EncodeToString([]byte(c))} {
			if strings.Contains(out, form) {
				t.Errorf("%s: the clear secret value (%q) is in the output:\n%s", what, form, out)
			}
		}
	}
}

func TestKubeWatchMaskedAndLegacyPath(t *testing.T) {
	f := startKube(t)
	staging, prod := f.staging, f.prod

	// kubectl's watch of secrets: events stream through warden masked,
	// including one created while the watch runs.
	cmd := kubetest.KubectlCmd(t, f.agentKC, "get", "secrets", "-n", staging, "-w", "-o", "yaml", "--request-timeout=6s")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	f.c.Apply(t, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: { name: second, namespace: %s }\nstringData: { password: %s }\n", staging, clearSecret2))
	cmd.Wait() // ends at --request-timeout
	out := stdout.String()
	if !strings.Contains(out, "name: second") || !strings.Contains(out, "name: api-key") {
		t.Fatalf("watch output lacks the secrets:\n%s\n%s", out, stderr.String())
	}
	assertNoSecret(t, "get secrets -w", out, clearSecret, clearSecret2)

	// The legacy watch path is decided as a watch of that namespace.
	tok := f.iss.Token(t, "agent-1", map[string]any{"groups": []string{"agents"}}, 10*time.Minute)
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", f.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/v1/watch/namespaces/" + prod + "/pods"); code != 403 || !strings.Contains(body, `"kind":"Status"`) {
		t.Errorf("legacy watch of prod pods: %d %s", code, body)
	}
	if code, body := get("/api/v1/watch/namespaces/" + staging + "/secrets?timeoutSeconds=1"); code != 200 || !strings.Contains(body, "api-key") {
		t.Errorf("legacy watch of staging secrets: %d %s", code, body)
	} else {
		assertNoSecret(t, "legacy watch", body, clearSecret, clearSecret2)
	}
	if code, _ := get("/api/v1/watch/pods"); code != 403 {
		t.Errorf("cluster-wide legacy watch: %d", code)
	}
	if code, body := get("/no/such/api"); code != 403 || !strings.Contains(body, "unknown Kubernetes API path") {
		t.Errorf("unknown path: %d %s", code, body)
	}
}

func TestKubectlDeleteHeldForApproval(t *testing.T) {
	f := startKube(t)
	staging := f.staging
	_, errOut, err := f.kubectl(t, "delete", "pod", "web", "-n", staging, "--wait=false")
	m := regexp.MustCompile(`review ([0-9a-zA-Z_-]+) is pending`).FindStringSubmatch(errOut)
	if err == nil || m == nil {
		t.Fatalf("delete must be held: %v\n%s", err, errOut)
	}
	// Still there.
	if out, _, err := f.c.Kubectl(t, "get", "pod", "web", "-n", staging, "-o", "name"); err != nil || !strings.Contains(out, "pod/web") {
		t.Fatalf("held delete ran: %v %s", err, out)
	}
	approver := &identity.Principal{Subject: "sre-1", Issuer: f.iss.URL, Groups: []string{"sre"}}
	if _, err := f.gw.Reviews.Approve(context.Background(), m[1], approver, "ok"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := f.kubectl(t, "delete", "pod", "web", "-n", staging, "--wait=false")
	if err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("approved delete: %v\n%s\n%s", err, out, errOut)
	}
	if _, errOut, err := f.c.Kubectl(t, "get", "pod", "web", "-n", staging); err == nil || !strings.Contains(errOut, "NotFound") {
		t.Errorf("pod still there after the approved delete: %v %s", err, errOut)
	}
}

func TestKubectlExecAndPortForward(t *testing.T) {
	f := startKubeVia(t, true)
	staging, prod := f.staging, f.prod
	for _, ws := range []string{"true", "false"} { // WebSocket (kubectl's default), then SPDY
		env := "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=" + ws
		cmd := kubetest.KubectlCmd(t, f.agentKC, "exec", "web", "-n", staging, "--", "echo", "hello", "from", ws)
		cmd.Env = append(cmd.Env, env)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "hello from "+ws {
			t.Fatalf("exec (%s): %v\n%s", env, err, out)
		}
	}
	// Refused in another namespace: nothing reaches the backend.
	_, errOut, err := f.kubectl(t, "exec", "db", "-n", prod, "--", "echo", "x")
	if err == nil || !strings.Contains(errOut, "warden: permission denied") {
		t.Errorf("exec in prod: %v %s", err, errOut)
	}
	// exec into db is held; approved, the identical command runs once.
	_, errOut, err = f.kubectl(t, "exec", "db", "-n", staging, "--", "echo", "approved")
	m := regexp.MustCompile(`review ([0-9a-zA-Z_-]+) is pending`).FindStringSubmatch(errOut)
	if err == nil || m == nil {
		t.Fatalf("exec into db must be held: %v %s", err, errOut)
	}
	approver := &identity.Principal{Subject: "sre-1", Issuer: f.iss.URL, Groups: []string{"sre"}}
	if _, err := f.gw.Reviews.Approve(context.Background(), m[1], approver, "ok"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := f.kubectl(t, "exec", "db", "-n", staging, "--", "echo", "approved")
	if err != nil || strings.TrimSpace(out) != "approved" {
		t.Fatalf("approved exec: %v %q %s", err, out, errOut)
	}
	if _, errOut, err = f.kubectl(t, "exec", "db", "-n", staging, "--", "echo", "approved"); err == nil {
		t.Errorf("an approval must run once; the second exec ran: %s", errOut)
	}

	// port-forward: a byte stream through warden.
	f.c.MarkPodRunning(t, staging, "web")
	cmd := kubetest.KubectlCmd(t, f.agentKC, "port-forward", "-n", staging, "pod/web", ":8080")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 256)
		n, _ := stdout.Read(b)
		line <- string(b[:n])
	}()
	var local string
	select {
	case l := <-line:
		mm := regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(l)
		if mm == nil {
			t.Fatalf("port-forward said %q", l)
		}
		local = "127.0.0.1:" + mm[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("port-forward did not start: %s", stderr.String())
	}
	conn, err := net.DialTimeout("tcp", local, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	conn.Write([]byte("ping\n"))
	got := make([]byte, 0, 256)
	buf := make([]byte, 256)
	for !strings.Contains(string(got), "ping") {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("port-forward stream: %v (got %q) %s", err, got, stderr.String())
		}
		got = append(got, buf[:n]...)
	}

	// The audit names the commands and the port.
	evs, err := f.gw.Store.Query(context.Background(), store.Query{Subject: "agent-1", Target: "cluster"})
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&all, "%s %s %s\n", e.Kind, e.Decision, e.Fingerprint)
	}
	for _, want := range []string{`allow create pods/exec "web"`, `command=["echo","hello","from","true"]`, `deny get pods "db" in namespace "` + prod,
		`review create pods/exec "db"`, `command=["echo","approved"]`, `pods/portforward "web"`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("audit lacks %q:\n%s", want, all.String())
		}
	}
}

// A watch is a session: listed by the admin API, and ended at once when
// its subject is revoked.
func TestKubeWatchEndsOnRevocation(t *testing.T) {
	f := startKube(t)
	tok := f.iss.Token(t, "agent-1", map[string]any{"groups": []string{"agents"}}, 10*time.Minute)
	client := &http.Client{Transport: f.client.Transport} // no overall timeout: a watch is long
	// A fresh API server's watch cache can lag the object just created and
	// answer "Too large resource version" (an ERROR event, retry after 1s).
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest("GET", f.base+"/api/v1/namespaces/"+f.staging+"/pods?watch=true&resourceVersion=0", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		var err error
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("watch: %d", resp.StatusCode)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err == nil && strings.Contains(line, `"type":"ADDED"`) {
			break
		}
		resp.Body.Close()
		if attempt == 10 {
			t.Fatalf("watch never started: %q %v", line, err)
		}
		time.Sleep(time.Second)
	}
	defer resp.Body.Close()
	adminTok := f.iss.Token(t, "sre-1", map[string]any{"groups": []string{"sre"}}, 10*time.Minute)
	api := func(method, path string) (int, string) {
		r, _ := http.NewRequest(method, "https://"+f.gw.HTTPAddr().String()+path, strings.NewReader(`{"reason":"test"}`))
		r.Header.Set("Authorization", "Bearer "+adminTok)
		r.Header.Set("Content-Type", "application/json")
		res, err := f.client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := api("GET", "/api/v1/sessions"); code != 200 || !strings.Contains(body, `"protocol":"kubernetes"`) || !strings.Contains(body, `"subject":"agent-1"`) {
		t.Fatalf("sessions list lacks the watch: %d %s (in flight now: %+v)", code, body, f.gw.HTTP.Sessions())
	}
	if code, body := api("POST", "/api/v1/identities/agent-1/revoke"); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the watch outlived the revocation of its subject")
	}
	if code, _ := api("GET", "/api/v1/sessions"); code != 200 {
		t.Fatal("sessions")
	}
	_, errOut, err := f.kubectl(t, "get", "pods", "-n", f.staging)
	if err == nil || !strings.Contains(errOut, "provide credentials") {
		t.Errorf("a revoked agent still reaches the cluster: %v %s", err, errOut)
	}
}
