package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a running etcd and kube-apiserver on loopback.
type Cluster struct {
	URL             string // https://127.0.0.1:<port>
	CAFile          string // PEM of the CA that signed the serving certificate
	CAPEM           []byte
	AdminToken      string // static token of user "kubetest-admin" in group system:masters; for test setup only
	AdminKubeconfig string // kubeconfig for URL with AdminToken
	// WardenTokenFile holds a ServiceAccount token (warden/warden, issued
	// through the TokenRequest API, valid 24 h) bound to cluster-admin by a
	// ClusterRoleBinding: the credential warden uses upstream. Tests that
	// want a narrower upstream credential create their own SA and call
	// ServiceAccountToken.
	WardenTokenFile string
	Dir             string // the cluster's working directory: certificates, etcd data, logs

	ca        *authority
	etcd, kas *process
	client    *http.Client // trusts CAPEM
}

// Names of the objects Start creates for WardenTokenFile.
const (
	WardenNamespace      = "warden"
	WardenServiceAccount = "warden"
)

const (
	// readyTimeout bounds the wait for /readyz. kube-apiserver is ready in
	// about 3 s on a quiet two-core machine; parallel test binaries can
	// make that several times longer.
	readyTimeout = 90 * time.Second
	// kubectlTimeout bounds one kubectl invocation.
	kubectlTimeout = 60 * time.Second
)

// Start runs etcd and kube-apiserver on free loopback ports with
// certificates generated into t.TempDir(), waits (bounded) until /readyz
// answers 200, creates the warden ServiceAccount and its token, and stops
// both processes (their whole process groups) when the test ends.
//
// Each Start costs a few seconds; a test binary with several cluster tests
// should use Shared with Main instead.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := APIServerBinary(t)
	KubectlBinary(t)
	c, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// start is Start without a testing.TB, for Shared.
func start(bin, dir string) (c *Cluster, err error) {
	etcdBin, err := etcdBinary()
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if err := c.prepare(); err != nil {
		return nil, err
	}
	// A free port can be taken between asking for it and binding it; one
	// retry with fresh ports covers that.
	for attempt := 1; ; attempt++ {
		err = c.launch(bin, etcdBin, attempt)
		if err == nil || attempt == 2 || !errors.Is(err, errEarlyExit) {
			break
		}
		c.stop()
	}
	if err != nil {
		return nil, err
	}
	if err := c.bootstrap(); err != nil {
		return nil, err
	}
	return c, nil
}

var errEarlyExit = errors.New("exited during start-up")

// prepare writes the certificates, keys and static tokens.
func (c *Cluster) prepare() error {
	ca, err := newAuthority()
	if err != nil {
		return err
	}
	c.ca, c.CAPEM = ca, ca.pem
	c.CAFile = filepath.Join(c.Dir, "ca.crt")
	if err := os.WriteFile(c.CAFile, c.CAPEM, 0o600); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAPEM)
	c.client = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	c.AdminToken = randomToken()
	// token,user,uid,"groups" (kube-apiserver --token-auth-file).
	tokens := fmt.Sprintf("%s,kubetest-admin,kubetest-admin,\"system:masters\"\n", c.AdminToken)
	if err := os.WriteFile(filepath.Join(c.Dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	return nil
}

// launch starts etcd and kube-apiserver and waits for /readyz.
func (c *Cluster) launch(kasBin, etcdBin string, attempt int) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	etcdPeer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	run := filepath.Join(c.Dir, "run"+strconv.Itoa(attempt))
	if err := os.MkdirAll(run, 0o700); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}

	c.etcd, err = startProcess("etcd", etcdBin, []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(run, "etcd"),
		"--listen-client-urls=" + etcdClient,
		"--advertise-client-urls=" + etcdClient,
		"--listen-peer-urls=" + etcdPeer,
		"--initial-advertise-peer-urls=" + etcdPeer,
		"--initial-cluster=kubetest=" + etcdPeer,
		"--log-level=warn",
	}, filepath.Join(run, "etcd.log"))
	if err != nil {
		return err
	}

	certFile, keyFile, err := c.ca.issueFiles(run, "apiserver",
		"127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "10.96.0.1")
	if err != nil {
		return err
	}
	saKey, saPub, err := writeServiceAccountKeys(run)
	if err != nil {
		return err
	}
	c.kas, err = startProcess("kube-apiserver", kasBin, []string{
		"--etcd-servers=" + etcdClient,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--tls-cert-file=" + certFile,
		"--tls-private-key-file=" + keyFile,
		"--cert-dir=" + filepath.Join(run, "certs"),
		// The default reconciler writes the "kubernetes" Endpoints from the
		// advertise address and refuses loopback; nothing here needs it.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.96.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--token-auth-file=" + filepath.Join(c.Dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		// No controller-manager runs, so no namespace gets a "default"
		// ServiceAccount; the ServiceAccount admission plugin would refuse
		// every Pod. Pods are created without a token volume instead.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--profiling=false",
	}, filepath.Join(run, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	return c.waitReady()
}

// waitReady polls /readyz until it answers 200, a child exits, or
// readyTimeout passes.
func (c *Cluster) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		for _, p := range []*process{c.etcd, c.kas} {
			if err := p.running(); err != nil {
				return fmt.Errorf("kubetest: %w: %w", errEarlyExit, err)
			}
		}
		code, body, err := c.get("/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%d %s %v", code, body, err)
		if time.Now().After(deadline) {
			return fmt.Errorf("kubetest: kube-apiserver not ready after %s (last /readyz: %s)\n%s\n%s",
				readyTimeout, last, c.kas.logTail(), c.etcd.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get sends an admin GET to the apiserver.
func (c *Cluster) get(path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, c.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(b), nil
}

// bootstrapYAML is what WardenTokenFile's token may do: everything, through
// RBAC (not system:masters), so that the apiserver's authorizer is on the
// path of every warden request.
const bootstrapYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: ` + WardenNamespace + `
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ` + WardenServiceAccount + `
  namespace: ` + WardenNamespace + `
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: warden-cluster-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- kind: ServiceAccount
  name: ` + WardenServiceAccount + `
  namespace: ` + WardenNamespace + `
`

// bootstrap writes the admin kubeconfig, waits for the "default"
// namespace (created by the apiserver shortly after it reports ready),
// and creates the warden ServiceAccount, its binding and its token.
func (c *Cluster) bootstrap() error {
	var err error
	c.AdminKubeconfig, err = c.writeKubeconfig(filepath.Join(c.Dir, "admin.kubeconfig"), c.URL, c.AdminToken, c.CAPEM)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := c.get("/api/v1/namespaces/default")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubetest: namespace default not created after 30s: %d %s %v", code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, stderr, err := runKubectl(c.AdminKubeconfig, strings.NewReader(bootstrapYAML), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("kubetest: create warden ServiceAccount: %w\n%s", err, stderr)
	}
	token, err := c.serviceAccountToken(WardenNamespace, WardenServiceAccount)
	if err != nil {
		return err
	}
	c.WardenTokenFile = filepath.Join(c.Dir, "warden.token")
	if err := os.WriteFile(c.WardenTokenFile, []byte(token), 0o600); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	return nil
}

// ServiceAccountToken issues a token for an existing ServiceAccount
// through the TokenRequest API (`kubectl create token`), valid for 24 h.
func (c *Cluster) ServiceAccountToken(t testing.TB, namespace, name string) string {
	t.Helper()
	tok, err := c.serviceAccountToken(namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (c *Cluster) serviceAccountToken(namespace, name string) (string, error) {
	stdout, stderr, err := runKubectl(c.AdminKubeconfig, nil, "create", "token", name, "-n", namespace, "--duration=24h")
	if err != nil {
		return "", fmt.Errorf("kubetest: kubectl create token %s -n %s: %w\n%s", name, namespace, err, stderr)
	}
	return strings.TrimSpace(stdout), nil
}

func (c *Cluster) stop() error {
	var errs []error
	// The apiserver first: it would log etcd errors otherwise.
	for _, p := range []*process{c.kas, c.etcd} {
		if p != nil {
			errs = append(errs, p.stop())
		}
	}
	c.kas, c.etcd = nil, nil
	return errors.Join(errs...)
}

// Kubectl runs the real kubectl as the cluster admin (AdminKubeconfig),
// bounded by a minute.
func (c *Cluster) Kubectl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runKubectl(c.AdminKubeconfig, nil, args...)
}

// Apply runs `kubectl apply -f -` with yaml as the cluster admin and fails
// the test on error.
func (c *Cluster) Apply(t testing.TB, yaml string) {
	t.Helper()
	if _, stderr, err := runKubectl(c.AdminKubeconfig, strings.NewReader(yaml), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubetest: kubectl apply: %v\n%s", err, stderr)
	}
}

// MarkPodRunning sets a Pod's status to Running with every container
// ready, through the status subresource, as a kubelet would. Without a
// kubelet pods stay Pending, and kubectl refuses port-forward to a Pod
// that is not Running (exec and attach only refuse completed Pods).
func (c *Cluster) MarkPodRunning(t testing.TB, namespace, name string) {
	t.Helper()
	stdout, stderr, err := runKubectl(c.AdminKubeconfig, nil, "get", "pod", name, "-n", namespace,
		"-o", `jsonpath={range .spec.containers[*]}{.name}{"\t"}{.image}{"\n"}{end}`)
	if err != nil {
		t.Fatalf("kubetest: get pod %s/%s: %v\n%s", namespace, name, err, stderr)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	var statuses []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		name, image, _ := strings.Cut(line, "\t")
		statuses = append(statuses, fmt.Sprintf(
			`{"name":%q,"image":%q,"imageID":"","ready":true,"started":true,"restartCount":0,"state":{"running":{"startedAt":%q}}}`,
			name, image, now))
	}
	patch := fmt.Sprintf(`{"status":{"phase":"Running","podIP":"10.244.0.10","hostIP":"127.0.0.1","startTime":%q,`+
		`"conditions":[{"type":"Ready","status":"True","lastTransitionTime":%q}],"containerStatuses":[%s]}}`,
		now, now, strings.Join(statuses, ","))
	if _, stderr, err := runKubectl(c.AdminKubeconfig, nil, "patch", "pod", name, "-n", namespace,
		"--subresource=status", "--type=merge", "-p", patch); err != nil {
		t.Fatalf("kubetest: mark pod %s/%s running: %v\n%s", namespace, name, err, stderr)
	}
}

// WriteKubeconfig writes a kubeconfig for server with a bearer token and
// returns its path (in a fresh t.TempDir()). For an https server it trusts
// the cluster's CA, which signed the apiserver's, the Front's and
// ServingCert's certificates; use WriteKubeconfigCA for a server with a
// certificate from elsewhere.
func (c *Cluster) WriteKubeconfig(t testing.TB, server, token string) string {
	t.Helper()
	return c.WriteKubeconfigCA(t, server, token, c.CAPEM)
}

// WriteKubeconfigCA is WriteKubeconfig trusting caPEM for an https server;
// with a nil caPEM the kubeconfig skips certificate verification.
func (c *Cluster) WriteKubeconfigCA(t testing.TB, server, token string, caPEM []byte) string {
	t.Helper()
	p, err := c.writeKubeconfig(filepath.Join(t.TempDir(), "kubeconfig"), server, token, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *Cluster) writeKubeconfig(path, server, token string, caPEM []byte) (string, error) {
	var tlsLine string
	switch {
	case !strings.HasPrefix(server, "https://"):
	case caPEM != nil:
		tlsLine = "\n    certificate-authority-data: " + base64.StdEncoding.EncodeToString(caPEM)
	default:
		tlsLine = "\n    insecure-skip-tls-verify: true"
	}
	// Quoted with %q: a JSON string is a YAML string.
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %q%s
users:
- name: kubetest
  user:
    token: %q
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: kubetest
    namespace: default
current-context: kubetest
`, server, tlsLine, token)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("kubetest: write kubeconfig: %w", err)
	}
	return path, nil
}

// ServingCert issues a serving certificate signed by the cluster's CA for
// hosts (IP addresses or DNS names), written into t.TempDir(), so that a
// server under test (warden's Kubernetes listener) is trusted by the
// kubeconfigs WriteKubeconfig writes.
func (c *Cluster) ServingCert(t testing.TB, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := c.ca.issueFiles(t.TempDir(), "serving", hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// Kubectl runs the real kubectl with kubeconfig (none other: KUBECONFIG
// from the environment is ignored), feeding it stdin if not nil, bounded by
// a minute. It is for driving kubectl through warden with a kubeconfig from
// WriteKubeconfig.
func Kubectl(t testing.TB, kubeconfig string, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	KubectlBinary(t)
	return runKubectl(kubeconfig, stdin, args...)
}

// KubectlCmd prepares, without starting, a kubectl command with
// kubeconfig (and KUBECONFIG from the environment removed), for what
// Kubectl cannot do: long-running commands such as port-forward, or extra
// environment such as KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false (append to
// cmd.Env). The caller bounds and reaps it.
func KubectlCmd(t testing.TB, kubeconfig string, args ...string) *exec.Cmd {
	t.Helper()
	KubectlBinary(t)
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Env = kubectlEnv(kubeconfig)
	return cmd
}

func runKubectl(kubeconfig string, stdin io.Reader, args ...string) (string, string, error) {
	return runKubectlEnv(kubeconfig, nil, stdin, args...)
}

// runKubectlEnv runs kubectl with extra environment variables.
func runKubectlEnv(kubeconfig string, env []string, stdin io.Reader, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Env = append(kubectlEnv(kubeconfig), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("kubectl %s: timed out after %s: %w", strings.Join(args, " "), kubectlTimeout, err)
	}
	return stdout.String(), stderr.String(), err
}

// kubectlEnv is the environment without KUBECONFIG, and with kubectl's
// discovery cache next to the kubeconfig so that tests do not share
// ~/.kube/cache.
func kubectlEnv(kubeconfig string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "KUBECACHEDIR=") {
			env = append(env, kv)
		}
	}
	return append(env, "KUBECACHEDIR="+filepath.Join(filepath.Dir(kubeconfig), ".kubecache"))
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
