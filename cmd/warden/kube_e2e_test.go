package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/devtls"
	"github.com/warden-gateway/warden/internal/kubetest"
)

// The story of issue 7, end to end with the real binaries: `warden serve`
// in front of a real kube-apiserver, `warden kubeconfig` writing the
// agent's kubeconfig (an exec credential plugin: `warden token
// --exec-credential`), and the real kubectl using it. The agent holds only
// its own token; the cluster credential stays in warden. Needs the
// kube-apiserver binary (`make kube-apiserver`).
func TestKubectlWithWardenKubeconfig(t *testing.T) {
	c := kubetest.Start(t)
	c.Apply(t, `apiVersion: v1
kind: Namespace
metadata: { name: team-a }
---
apiVersion: v1
kind: Namespace
metadata: { name: team-b }
---
apiVersion: v1
kind: Pod
metadata: { name: api, namespace: team-a }
spec: { containers: [{ name: app, image: nginx }] }
---
apiVersion: v1
kind: Pod
metadata: { name: api, namespace: team-b }
spec: { containers: [{ name: app, image: nginx }] }
`)
	dir := t.TempDir()
	key := filepath.Join(dir, "issuer.pem")
	iss := startDevIssuer(t, key)
	cert, certKey, err := devtls.SelfSigned(dir, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: { http: %s }
tls: { cert: %s, key: %s }
store: sqlite://audit.db
identity: { oidc: [{ issuer: %s, audience: warden }] }
targets:
  - { name: cluster, type: kubernetes, url: %s, ca_file: %s, token_file: %s }
policies:
  - name: team-a-agents
    when: '"team-a" in groups'
    allow:
      - target: cluster
        kubernetes: [{ namespaces: [team-a], resources: [pods], verbs: [get, list] }]
`, addr, cert, certKey, iss.URL, c.URL, c.CAFile, c.WardenTokenFile)), 0o600)
	s := startWarden(t, nil, "serve", "--config", cfg)
	s.waitListening(t, addr)

	r := warden(t, nil, "kubeconfig", "--config", cfg, "--target", "cluster",
		"--issuer", iss.URL, "--issuer-key", key, "--sub", "agent-7", "--claim", "groups=team-a")
	if r.code != 0 {
		t.Fatalf("warden kubeconfig: %s", r)
	}
	if strings.Contains(r.stdout, "token:") || !strings.Contains(r.stdout, "--exec-credential") {
		t.Fatalf("kubeconfig should use the exec plugin, not a static token:\n%s", r.stdout)
	}
	kc := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kc, []byte(r.stdout), 0o600)

	out, errOut, err := kubetest.Kubectl(t, kc, nil, "get", "pods", "-n", "team-a", "-o", "name")
	if err != nil || strings.TrimSpace(out) != "pod/api" {
		t.Fatalf("kubectl get pods -n team-a: %v\n%s\n%s\n%s", err, out, errOut, s.out.String())
	}
	_, errOut, err = kubetest.Kubectl(t, kc, nil, "get", "pods", "-n", "team-b")
	if err == nil || !strings.Contains(errOut, "warden: permission denied") {
		t.Errorf("kubectl get pods -n team-b must be refused by warden: %v %s", err, errOut)
	}
	_, errOut, err = kubetest.Kubectl(t, kc, nil, "delete", "pod", "api", "-n", "team-a")
	if err == nil || !strings.Contains(errOut, "Forbidden") {
		t.Errorf("delete must be refused: %v %s", err, errOut)
	}
	// The decisions are in the audit log, read with the CLI.
	r = warden(t, nil, "audit", "search", "--config", cfg, "--subject", "agent-7")
	if r.code != 0 || !strings.Contains(r.stdout, "kubernetes") && !strings.Contains(r.stdout, "pods") {
		t.Errorf("audit search: %s", r)
	}
}
