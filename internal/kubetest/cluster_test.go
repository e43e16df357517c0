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

	// Pods are admitted without a kubelet or a default ServiceAccount, and
	// stay Pending until MarkPodRunning.
	for _, args := range [][]string{
		{"create", "namespace", "x"},
		{"run", "p", "-n", "x", "--image=registry.invalid/busybox", "--", "sleep", "3600"},
	} {
		if _, stderr, err := c.Kubectl(t, args...); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
	}
	phase := func() string {
		out, stderr, err := c.Kubectl(t, "get", "pod", "p", "-n", "x", "-o", "jsonpath={.status.phase}")
		if err != nil {
			t.Fatalf("kubectl get pod: %v\n%s", err, stderr)
		}
		return out
	}
	if p := phase(); p != "Pending" {
		t.Errorf("new pod phase %q, want Pending", p)
	}
	c.MarkPodRunning(t, "x", "p")
	if p := phase(); p != "Running" {
		t.Errorf("after MarkPodRunning: phase %q, want Running", p)
	}
}
