// Package kubetest gives warden's tests a real Kubernetes control plane on
// loopback: Debian's etcd and a real kube-apiserver (built and cached by
// scripts/build-kube-apiserver.sh, `make kube-apiserver`), with
// certificates from a throwaway CA, a static admin token for test set-up,
// and a ServiceAccount token bound to cluster-admin through RBAC for warden
// to use upstream. Tests drive it with the real kubectl.
//
// No kubelet, scheduler or controller-manager runs, which shows:
//
//   - Pods stay Pending (MarkPodRunning sets their status by hand) and
//     nothing answers exec, attach, port-forward or logs (see Front).
//   - No namespace gets a "default" ServiceAccount, so the ServiceAccount
//     admission plugin is disabled and Pods are admitted without one.
//   - Deleted namespaces stay Terminating: use a fresh name per test.
//   - The aggregated ClusterRoles admin, edit and view have no rules
//     (aggregation is a controller's job): bind cluster-admin or write
//     explicit Roles.
//
// Front is a reverse proxy in front of the apiserver that answers those
// four subresources itself, speaking the upgrade protocols kubectl does
// (WebSocket v5.channel.k8s.io and SPDY for exec and attach; SPDY,
// SPDY-over-WebSocket and WebSocket for port-forward) with a few builtin
// commands, after checking with the apiserver that the caller may.
//
// Start takes about 2.5 s (etcd, kube-apiserver up to /readyz, and the
// warden ServiceAccount with its token); Shared pays that once per test
// binary.
//
// A test binary that needs the cluster in several tests shares one:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		c := kubetest.Shared(t)
//		...
//	}
//
// A missing kube-apiserver fails the test with a message naming
// `make kube-apiserver`; only `go test -short` skips.
//
// This package is test support: it must not be imported by non-test code,
// and it knows nothing of warden's configuration or policy.
package kubetest
