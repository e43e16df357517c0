package kubetest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// One cluster per test binary: Main owns it, Shared starts it on first use.
var shared struct {
	mu      sync.Mutex
	inMain  bool     // Main is running the tests
	cluster *Cluster // started by the first Shared call
	err     error    // the first start's failure, repeated to later callers
	dir     string   // removed by Main
}

// Main runs the tests of a package that uses Shared and then stops the
// shared cluster, if one was started, and removes its directory. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
// Tests that never call Shared cost nothing: the cluster starts on first
// use.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		if err := shared.cluster.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		shared.cluster = nil
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// Shared returns the test binary's one cluster, starting it on first use
// (about as long as Start). It outlives the test that started it; Main
// stops it. Tests must leave it usable for the others: work in a namespace
// of their own (namespaces are never deleted for real: no
// controller-manager runs to finalize them) and not change
// cluster-scoped objects others depend on.
//
// Shared fails the test if the package's TestMain does not call Main, so
// that no cluster outlives the test binary's bookkeeping.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	bin := APIServerBinary(t)
	KubectlBinary(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("kubetest.Shared needs `func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }` in the package's tests")
	}
	if shared.cluster != nil {
		return shared.cluster
	}
	if shared.err != nil {
		t.Fatalf("kubetest: the shared cluster failed to start earlier: %v", shared.err)
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		t.Fatal(err)
	}
	shared.dir = dir
	shared.cluster, shared.err = start(bin, dir)
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.cluster
}
