package kubetest

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestStart(t *testing.T) {
	t0 := time.Now()
	c := Start(t)
	t.Logf("cluster ready in %s at %s", time.Since(t0).Round(time.Millisecond), c.URL)
	out, stderr, err := c.Kubectl(t, "get", "ns", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get ns: %v\n%s", err, stderr)
	}
	for _, ns := range []string{"namespace/default", "namespace/kube-system", "namespace/" + WardenNamespace} {
		if !strings.Contains(out, ns) {
			t.Errorf("kubectl get ns: %s missing from\n%s", ns, out)
		}
	}
}
