package main

// `warden kubeconfig` and `warden token --exec-credential`, run as the real
// binary, with real kubectl reading the kubeconfigs and running the exec
// credential plugin, and a real identity provider (Ory Hydra) for the
// client credentials grant. The server kubectl talks to here stands in for
// warden's http listener only to see what kubectl sends; kubectl through a
// running warden to a kube-apiserver is tested with the kube proxy.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/devtls"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
)

// kubectlBin finds kubectl or skips the test.
func kubectlBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH (make deps installs it)")
	}
	return p
}

// writeKubeConfig writes a warden config with a kubernetes and an http
// target; tlsBlock is "" or a tls: line.
func writeKubeConfig(t *testing.T, dir, listen, tlsBlock string) string {
	t.Helper()
	cfg := "listen: { http: \"" + listen + "\" }\n" + tlsBlock + `identity: { oidc: [{ issuer: "http://127.0.0.1:5556", audience: warden }] }
targets:
  - { name: cluster, type: kubernetes, url: "https://127.0.0.1:6443", token_file: sa.token }
  - { name: billing, type: http, url: "http://127.0.0.1:9000" }
policies:
  - name: p
    allow: [{ target: cluster, kubernetes: [{ resources: [pods], verbs: [get] }] }]
`
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parsedKubeconfig is what the tests read back from a kubeconfig.
type parsedKubeconfig struct {
	APIVersion     string         `yaml:"apiVersion"`
	Kind           string         `yaml:"kind"`
	CurrentContext string         `yaml:"current-context"`
	Preferences    map[string]any `yaml:"preferences"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server string `yaml:"server"`
			CAData string `yaml:"certificate-authority-data"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster, User, Namespace string
		} `yaml:"context"`
	} `yaml:"contexts"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Token string `yaml:"token"`
			Exec  *struct {
				APIVersion      string   `yaml:"apiVersion"`
				Command         string   `yaml:"command"`
				Args            []string `yaml:"args"`
				InteractiveMode string   `yaml:"interactiveMode"`
				InstallHint     string   `yaml:"installHint"`
				ProvideCluster  bool     `yaml:"provideClusterInfo"`
			} `yaml:"exec"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// kubeconfigOf runs `warden kubeconfig`, checks it succeeded, writes the
// output to a file and returns it parsed, with the file's path.
func kubeconfigOf(t *testing.T, env []string, args ...string) (parsedKubeconfig, string) {
	t.Helper()
	r := warden(t, env, append([]string{"kubeconfig"}, args...)...)
	if r.code != 0 {
		t.Fatalf("warden kubeconfig: want exit 0:\n%s", r)
	}
	var kc parsedKubeconfig
	dec := yaml.NewDecoder(strings.NewReader(r.stdout))
	dec.KnownFields(true)
	if err := dec.Decode(&kc); err != nil {
		t.Fatalf("kubeconfig is not what kubectl reads: %v\n%s", err, r.stdout)
	}
	if kc.APIVersion != "v1" || kc.Kind != "Config" || len(kc.Clusters) != 1 || len(kc.Users) != 1 || len(kc.Contexts) != 1 ||
		kc.CurrentContext != kc.Contexts[0].Name || kc.Contexts[0].Context.Cluster != kc.Clusters[0].Name || kc.Contexts[0].Context.User != kc.Users[0].Name {
		t.Fatalf("kubeconfig shape:\n%s", r.stdout)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc, path
}

// kubectl runs kubectl with a kubeconfig and returns its output.
func kubectl(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	return run(t, nil, kubectlBin(t), append([]string{"--kubeconfig", kubeconfig}, args...)...)
}

// fakeWardenFront records the bearer tokens kubectl sends to
// /t/cluster/version and answers like the API server's /version.
type fakeWardenFront struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

// startFront serves https with the given certificate: kubectl sends a
// kubeconfig's credentials to https servers only.
func startFront(t *testing.T, cert tls.Certificate) *fakeWardenFront {
	t.Helper()
	f := &fakeWardenFront{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/t/cluster/version" {
			http.NotFound(w, r)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.tokens = append(f.tokens, tok)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// The CA test makes kubectl refuse the certificate on purpose.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// hostPort is the front's address, as --server takes it.
func (f *fakeWardenFront) hostPort() string { return strings.TrimPrefix(f.srv.URL, "https://") }

// tlsSetup writes a self-signed certificate for localhost and 127.0.0.1
// into dir (server.crt, server.key) and returns it with its PEM.
func tlsSetup(t *testing.T, dir string) (tls.Certificate, []byte) {
	t.Helper()
	certPath, keyPath, err := devtls.SelfSigned(dir, "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM
}

func (f *fakeWardenFront) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	pair, certPEM := tlsSetup(t, dir)
	const tlsLine = "tls: { cert: server.crt, key: server.key }\n"
	cfg := writeKubeConfig(t, dir, "127.0.0.1:18443", tlsLine)
	wantCA := base64.StdEncoding.EncodeToString(certPEM)

	t.Run("static token", func(t *testing.T) {
		kc, path := kubeconfigOf(t, nil, "--config", cfg, "--target", "cluster", "--token", "tok-123", "-n", "staging")
		if got := kc.Clusters[0].Cluster.Server; got != "https://127.0.0.1:18443/t/cluster" {
			t.Errorf("server = %q", got)
		}
		if kc.Clusters[0].Cluster.CAData != wantCA || kc.Users[0].User.Token != "tok-123" || kc.Users[0].User.Exec != nil ||
			kc.Contexts[0].Context.Namespace != "staging" || kc.CurrentContext != "warden-cluster" {
			t.Errorf("kubeconfig = %+v", kc)
		}
		// kubectl reads it as written.
		r := kubectl(t, path, "config", "view", "--raw", "-o", "jsonpath={.users[0].user.token} {.clusters[0].cluster.server} {.contexts[0].context.namespace}")
		if r.code != 0 || r.stdout != "tok-123 https://127.0.0.1:18443/t/cluster staging" {
			t.Errorf("kubectl config view:\n%s", r)
		}
		// And, trusting the tls: certificate, sends the token to the
		// target's path.
		front := startFront(t, pair)
		_, path = kubeconfigOf(t, nil, "--config", cfg, "--target", "cluster", "--token", "tok-123", "--server", front.hostPort())
		if r := kubectl(t, path, "version", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, "v1.37.2") {
			t.Fatalf("kubectl version:\n%s", r)
		}
		if got := front.seen(); !allAre(got, "tok-123") {
			t.Errorf("tokens seen: %q", got)
		}
	})

	t.Run("exec plugin with the development issuer", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "dev.pem")
		front := startFront(t, pair)
		kc, path := kubeconfigOf(t, nil, "--config", cfg, "--target", "cluster", "--server", front.srv.URL+"/",
			"--sub", "agent-1", "--claim", "groups=deployers", "--issuer-key", key, "--ttl", "5m", "--name", "ci")
		if kc.CurrentContext != "ci" || kc.Clusters[0].Cluster.Server != front.srv.URL+"/t/cluster" {
			t.Errorf("kubeconfig = %+v", kc)
		}
		ex := kc.Users[0].User.Exec
		if ex == nil {
			t.Fatalf("no exec plugin: %+v", kc)
		}
		self, _ := filepath.EvalSymlinks(wardenBin)
		cmdPath, _ := filepath.EvalSymlinks(ex.Command)
		if ex.APIVersion != "client.authentication.k8s.io/v1" || cmdPath != self || ex.InteractiveMode != "Never" ||
			len(ex.Args) < 2 || ex.Args[0] != "token" || ex.Args[1] != "--exec-credential" || kc.Users[0].User.Token != "" {
			t.Errorf("exec = %+v (warden is %s)", ex, self)
		}
		if !strings.Contains(strings.Join(ex.Args, " "), "--issuer-key "+key+" ") {
			t.Errorf("exec args %q do not carry the absolute key path %s", ex.Args, key)
		}

		// kubectl runs the plugin (from another directory), caches the
		// credential, and sends the minted token.
		r := kubectl(t, path, "version", "-o", "json")
		if r.code != 0 || !strings.Contains(r.stdout, "v1.37.2") {
			t.Fatalf("kubectl version:\n%s", r)
		}
		got := front.seen()
		if len(got) == 0 || !allAre(got, got[0]) {
			t.Fatalf("tokens seen: %q, want one token, cached by kubectl", got)
		}
		_, claims := decodeJWT(t, got[0])
		if claims["sub"] != "agent-1" || claims["aud"] != "warden" {
			t.Errorf("token claims = %v", claims)
		}
		if g, ok := claims["groups"].([]any); !ok || len(g) != 1 || g[0] != "deployers" {
			t.Errorf("groups = %#v", claims["groups"])
		}
		dev, err := identity.LoadOrCreateDevKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := decodeJWT(t, got[0]); h["kid"] != dev.KeyID() {
			t.Errorf("token signed by %v, want the key file's %s", h["kid"], dev.KeyID())
		}
	})

	t.Run("exec plugin with a token file", func(t *testing.T) {
		tokFile := filepath.Join(t.TempDir(), "agent.token")
		tok := unsignedJWT(t, map[string]any{"sub": "ci", "exp": time.Now().Add(time.Hour).Unix()})
		if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		front := startFront(t, pair)
		kc, path := kubeconfigOf(t, nil, "--config", cfg, "--target", "cluster", "--server", front.hostPort(), "--exec", "--token-file", tokFile)
		if args := kc.Users[0].User.Exec.Args; strings.Join(args, " ") != "token --exec-credential --token-file "+tokFile {
			t.Errorf("exec args = %q", args)
		}
		if r := kubectl(t, path, "version", "-o", "json"); r.code != 0 {
			t.Fatalf("kubectl version:\n%s", r)
		}
		if got := front.seen(); !allAre(got, tok) {
			t.Errorf("tokens seen: %q, want the file's", got)
		}
	})

	t.Run("certificate authority", func(t *testing.T) {
		tdir := t.TempDir()
		_, tdirPEM := tlsSetup(t, tdir)
		// A cert file that also holds the key (it happens): the key must
		// never reach the kubeconfig.
		keyPEM, _ := os.ReadFile(filepath.Join(tdir, "server.key"))
		both := filepath.Join(tdir, "both.pem")
		if err := os.WriteFile(both, append(append([]byte{}, keyPEM...), tdirPEM...), 0o600); err != nil {
			t.Fatal(err)
		}
		tcfg := writeKubeConfig(t, tdir, "0.0.0.0:18443", "tls: { cert: both.pem, key: server.key }\n")
		kc, _ := kubeconfigOf(t, nil, "--config", tcfg, "--target", "cluster", "--token", "t")
		if got := kc.Clusters[0].Cluster.Server; got != "https://localhost:18443/t/cluster" {
			t.Errorf("server = %q", got)
		}
		ca, err := base64.StdEncoding.DecodeString(kc.Clusters[0].Cluster.CAData)
		if err != nil || !bytes.Equal(ca, tdirPEM) {
			t.Errorf("certificate-authority-data is not the tls: certificate (err %v):\n%s", err, ca)
		}
		if blk, _ := pem.Decode(ca); blk == nil || strings.Contains(string(ca), "PRIVATE KEY") {
			t.Errorf("certificate-authority-data holds a key or no certificate:\n%s", ca)
		}

		// A CA that did not sign the server's certificate: kubectl
		// refuses the server, and the token never leaves.
		front := startFront(t, pair)
		_, path := kubeconfigOf(t, nil, "--config", cfg, "--target", "cluster", "--token", "t", "--server", front.hostPort(),
			"--certificate-authority", filepath.Join(tdir, "server.crt"))
		if r := kubectl(t, path, "version", "-o", "json"); r.code == 0 || strings.Contains(r.stdout, "v1.37.2") {
			t.Fatalf("kubectl trusted a server its CA did not sign:\n%s", r)
		}
		if got := front.seen(); len(got) != 0 {
			t.Errorf("tokens seen: %q (the token must not go to an unverified server)", got)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"http target", []string{"--target", "billing", "--token", "t"}, `target "billing" is an http target; kubeconfig is for kubernetes targets`},
		{"unknown target", []string{"--target", "nope", "--token", "t"}, `unknown target "nope"`},
		{"no token source", []string{"--target", "cluster"}, "--sub is required"},
		{"token and exec", []string{"--target", "cluster", "--token", "t", "--exec"}, "--token and --exec"},
		{"token and a source", []string{"--target", "cluster", "--token", "t", "--sub", "a"}, "--sub is for the exec plugin"},
		{"http server", []string{"--target", "cluster", "--token", "t", "--server", "http://127.0.0.1:8080"}, "kubectl sends no credentials to an http server"},
		{"bad server", []string{"--target", "cluster", "--token", "t", "--server", "ftp://x"}, "want http(s)://"},
		{"missing CA file", []string{"--target", "cluster", "--token", "t", "--certificate-authority", "/nonexistent/ca.pem"}, "certificate authority:"},
		{"two sources", []string{"--target", "cluster", "--token-file", "f", "--sub", "a"}, "--token-file reads a token as it is"},
		{"client id without url", []string{"--target", "cluster", "--client-id", "x"}, "--client-id go with --token-url"},
		{"bad claim", []string{"--target", "cluster", "--sub", "a", "--claim", "exp=1"}, `claim "exp" is set by the issuer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := warden(t, nil, append([]string{"kubeconfig", "--config", cfg}, tc.args...)...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit 1, no output and %q on stderr:\n%s", tc.want, r)
			}
		})
	}
	t.Run("no tls", func(t *testing.T) {
		c := writeKubeConfig(t, t.TempDir(), "127.0.0.1:8080", "")
		r := warden(t, nil, "kubeconfig", "--config", c, "--target", "cluster", "--token", "t")
		if r.code != 1 || !strings.Contains(r.stderr, "http://127.0.0.1:8080 is not https: kubectl sends no credentials to an http server") {
			t.Errorf("want a refusal explaining that kubectl needs https:\n%s", r)
		}
		// kubectl really does send nothing to an http server: a
		// hand-written http kubeconfig with a token reaches the server
		// without it.
		var sawAuth atomic.Bool
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if r.Header.Get("Authorization") != "" {
				sawAuth.Store(true)
			}
			w.WriteHeader(http.StatusUnauthorized)
		}))
		defer srv.Close()
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \""+srv.URL+"/t/cluster\"}}]\n"+
			"users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"), 0o600)
		kubectl(t, kc, "version", "-o", "json")
		if hits.Load() == 0 || sawAuth.Load() {
			t.Errorf("kubectl made %d requests, with credentials: %v; want requests without (else warden kubeconfig could allow http)", hits.Load(), sawAuth.Load())
		}
	})
	t.Run("no fixed port", func(t *testing.T) {
		d := t.TempDir()
		tlsSetup(t, d)
		c := writeKubeConfig(t, d, "127.0.0.1:0", tlsLine)
		r := warden(t, nil, "kubeconfig", "--config", c, "--target", "cluster", "--token", "t")
		if r.code != 1 || !strings.Contains(r.stderr, "give --server") {
			t.Errorf("want a refusal asking for --server:\n%s", r)
		}
	})
}

func allAre(list []string, s string) bool {
	for _, x := range list {
		if x != s {
			return false
		}
	}
	return len(list) > 0
}

// unsignedJWT builds a JWT-shaped token with the given claims (its
// signature is not valid; the plugin never verifies, warden does).
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("not-a-signature"))
}

// execCred parses `warden token --exec-credential` output.
func execCred(t *testing.T, r result) (apiVersion, token string, exp time.Time) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	var ec struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Status     struct {
			Token               string `json:"token"`
			ExpirationTimestamp string `json:"expirationTimestamp"`
		} `json:"status"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ec); err != nil || ec.Kind != "ExecCredential" || ec.Status.Token == "" {
		t.Fatalf("not an ExecCredential (%v):\n%s", err, r)
	}
	if ec.Status.ExpirationTimestamp != "" {
		var err error
		if exp, err = time.Parse(time.RFC3339, ec.Status.ExpirationTimestamp); err != nil {
			t.Fatalf("expirationTimestamp: %v", err)
		}
	}
	return ec.APIVersion, ec.Status.Token, exp
}

func TestTokenExecCredential(t *testing.T) {
	key := filepath.Join(t.TempDir(), "dev.pem")

	t.Run("development issuer", func(t *testing.T) {
		api, tok, exp := execCred(t, warden(t, nil, "token", "--exec-credential", "--issuer-key", key, "--sub", "agent-1", "--ttl", "7m"))
		_, claims := decodeJWT(t, tok)
		if api != "client.authentication.k8s.io/v1" || claims["sub"] != "agent-1" || exp.Unix() != numClaim(t, claims, "exp") {
			t.Errorf("apiVersion %s, claims %v, expiration %v", api, claims, exp)
		}
	})

	t.Run("token file", func(t *testing.T) {
		dir := t.TempDir()
		write := func(name, content string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		want := time.Now().Add(30 * time.Minute).Truncate(time.Second)
		jwt := unsignedJWT(t, map[string]any{"sub": "x", "exp": want.Unix()})
		_, tok, exp := execCred(t, warden(t, nil, "token", "--exec-credential", "--token-file", write("jwt", jwt+"\n")))
		if tok != jwt || !exp.Equal(want) {
			t.Errorf("token %q exp %v, want the file's with exp %v", tok, exp, want)
		}
		// Without --exec-credential: the bare token.
		if r := warden(t, nil, "token", "--token-file", write("jwt2", jwt)); r.code != 0 || r.stdout != jwt+"\n" {
			t.Errorf("bare token:\n%s", r)
		}
		// An opaque token: no expirationTimestamp (kubectl asks again on 401).
		_, tok, exp = execCred(t, warden(t, nil, "token", "--exec-credential", "--token-file", write("opaque", "abc.def")))
		if tok != "abc.def" || !exp.IsZero() {
			t.Errorf("opaque: token %q exp %v", tok, exp)
		}
		// kubectl asking for v1beta1 gets v1beta1.
		r := warden(t, []string{`KUBERNETES_EXEC_INFO={"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}`},
			"token", "--exec-credential", "--token-file", write("b", "abc"))
		if api, _, _ := execCred(t, r); api != "client.authentication.k8s.io/v1beta1" {
			t.Errorf("apiVersion = %s, want the one kubectl asked for", api)
		}
		for name, tc := range map[string]struct {
			env  []string
			file string
			want string
		}{
			"expired":         {file: write("old", unsignedJWT(t, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), want: "expired at"},
			"empty":           {file: write("empty", "\n"), want: "is empty"},
			"two tokens":      {file: write("two", "a\nb\n"), want: "more than one line"},
			"missing":         {file: filepath.Join(dir, "nope"), want: "no such file"},
			"unknown version": {file: write("c", "abc"), env: []string{`KUBERNETES_EXEC_INFO={"apiVersion":"client.authentication.k8s.io/v2"}`}, want: "warden speaks client.authentication.k8s.io/v1"},
		} {
			r := warden(t, tc.env, "token", "--exec-credential", "--token-file", tc.file)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s: want exit 1, no output and %q:\n%s", name, tc.want, r)
			}
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"file and sub", []string{"--token-file", "f", "--sub", "a"}, "--token-file reads a token as it is"},
		{"url and sub", []string{"--token-url", "https://idp.example.com/token", "--client-id", "c", "--client-secret-env", "S", "--sub", "a"}, "--sub belong to the development issuer"},
		{"url without client", []string{"--token-url", "https://idp.example.com/token"}, "needs --client-id"},
		{"url without secret", []string{"--token-url", "https://idp.example.com/token", "--client-id", "c"}, "needs one of --client-secret-file and --client-secret-env"},
		{"url in clear", []string{"--token-url", "http://idp.example.com/token", "--client-id", "c", "--client-secret-env", "S"}, "must be an https:// URL"},
		{"secret env unset", []string{"--token-url", "https://idp.example.com/token", "--client-id", "c", "--client-secret-env", "WARDEN_TEST_UNSET_SECRET"}, "$WARDEN_TEST_UNSET_SECRET is empty or unset"},
		{"scope without url", []string{"--scope", "read"}, "--scope go with --token-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := warden(t, nil, append([]string{"token", "--exec-credential"}, tc.args...)...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit 1, no output and %q on stderr:\n%s", tc.want, r)
			}
		})
	}
}

// TestTokenClientCredentialsHydra: `warden token --token-url` against a
// real identity provider, Ory Hydra, and kubectl running it as its exec
// plugin. The token it gets verifies with warden's OIDC verifier.
func TestTokenClientCredentialsHydra(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Ory Hydra; skipped with -short")
	}
	h := identitytest.StartHydra(t, identitytest.HydraBinary(t))
	client := h.CreateClient(t, "agent", "warden")
	// Hydra makes its signing key on the first token; get it made before
	// the verifier fetches the JWKS.
	h.Token(t, client, "warden")

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(client.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenURL := h.Public + "/oauth2/token"
	var disc struct {
		Issuer string `json:"issuer"`
	}
	h.GetJSON(t, h.Public+"/.well-known/openid-configuration", &disc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	verifier, err := identity.NewOIDC(ctx, []config.OIDCIssuer{{Issuer: disc.Issuer, Audience: "warden"}}, identity.Options{})
	if err != nil {
		t.Fatalf("NewOIDC against Hydra: %v", err)
	}
	verify := func(tok string, exp time.Time) {
		t.Helper()
		p, err := verifier.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("the token warden token fetched does not verify: %v", err)
		}
		if p.Subject != client.ID || !p.Expiry.Equal(exp) {
			t.Errorf("principal %+v; want subject %s, expiry %v (the ExecCredential's)", p, client.ID, exp)
		}
	}

	before := time.Now()
	_, tok, exp := execCred(t, warden(t, nil, "token", "--exec-credential", "--token-url", tokenURL,
		"--client-id", client.ID, "--client-secret-file", secretFile, "--audience", "warden", "--scope", "read"))
	if exp.Before(before) {
		t.Errorf("expirationTimestamp %v is in the past", exp)
	}
	verify(tok, exp)

	// The secret from the environment.
	_, tok, exp = execCred(t, warden(t, []string{"HYDRA_AGENT_SECRET=" + client.Secret}, "token", "--exec-credential",
		"--token-url", tokenURL, "--client-id", client.ID, "--client-secret-env", "HYDRA_AGENT_SECRET", "--audience", "warden"))
	verify(tok, exp)

	// A wrong secret is refused by the provider, and said so.
	bad := filepath.Join(dir, "bad-secret")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	r := warden(t, nil, "token", "--exec-credential", "--token-url", tokenURL, "--client-id", client.ID, "--client-secret-file", bad)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "refused the client credentials: invalid_client") {
		t.Errorf("wrong secret: want exit 1 naming invalid_client:\n%s", r)
	}

	// kubectl with the kubeconfig warden writes runs the grant itself.
	pair, _ := tlsSetup(t, dir)
	front := startFront(t, pair)
	cfg := writeKubeConfig(t, dir, "127.0.0.1:18443", "tls: { cert: server.crt, key: server.key }\n")
	_, path := kubeconfigOf(t, nil, "--config", cfg, "--target", "cluster", "--server", front.hostPort(),
		"--token-url", tokenURL, "--client-id", client.ID, "--client-secret-file", secretFile, "--audience", "warden")
	if r := kubectl(t, path, "version", "-o", "json"); r.code != 0 {
		t.Fatalf("kubectl version:\n%s", r)
	}
	seen := front.seen()
	if len(seen) == 0 || !allAre(seen, seen[0]) {
		t.Fatalf("tokens seen: %d, want one token, cached by kubectl", len(seen))
	}
	if _, err := verifier.Verify(ctx, seen[0]); err != nil {
		t.Errorf("the token kubectl sent does not verify: %v", err)
	}
}
