package kubetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPod creates a namespace and a Pod in it as the admin; the Pod stays
// Pending (no kubelet).
func testPod(t *testing.T, c *Cluster, ns string) {
	t.Helper()
	c.Apply(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: %[1]s
spec:
  containers:
  - name: app
    image: registry.invalid/app:1
  - name: sidecar
    image: registry.invalid/sidecar:1
`, ns))
}

func TestTokens(t *testing.T) {
	c := Shared(t)
	testPod(t, c, "tokens")

	// The warden ServiceAccount's token, through RBAC.
	tok := readFile(t, c.WardenTokenFile)
	kc := c.WriteKubeconfig(t, c.URL, tok)
	out, stderr, err := Kubectl(t, kc, nil, "get", "pods", "-n", "tokens", "-o", "name")
	if err != nil {
		t.Fatalf("warden token: kubectl get pods: %v\n%s", err, stderr)
	}
	if strings.TrimSpace(out) != "pod/web" {
		t.Errorf("warden token: kubectl get pods = %q, want pod/web", out)
	}
	out, _, err = Kubectl(t, kc, nil, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil || out != "system:serviceaccount:warden:warden" {
		t.Errorf("warden token: whoami = %q, %v; want system:serviceaccount:warden:warden", out, err)
	}

	// A token the apiserver does not know is refused: the credential is
	// really checked.
	_, stderr, err = Kubectl(t, c.WriteKubeconfig(t, c.URL, "not-a-token"), nil, "get", "pods", "-n", "tokens")
	if err == nil || !strings.Contains(stderr, "provide credentials") {
		t.Errorf("bogus token: err=%v stderr=%q, want a 401", err, stderr)
	}

	// A ServiceAccount without bindings is authenticated but forbidden.
	c.Apply(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: nobody\n  namespace: tokens\n")
	nobody := c.WriteKubeconfig(t, c.URL, c.ServiceAccountToken(t, "tokens", "nobody"))
	_, stderr, err = Kubectl(t, nobody, nil, "get", "pods", "-n", "tokens")
	if err == nil || !strings.Contains(stderr, "forbidden") {
		t.Errorf("unbound SA: err=%v stderr=%q, want forbidden", err, stderr)
	}
}

func TestFrontExec(t *testing.T) {
	c := Shared(t)
	testPod(t, c, "exec")
	f := startFront(t, c)
	kc := c.WriteKubeconfig(t, f.URL, c.AdminToken)

	// kubectl v1.30+ negotiates WebSocket v5 by default; with
	// KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false it speaks SPDY.
	for _, tc := range []struct {
		name, env, protocol string
	}{
		{"websocket", "", "v5.channel.k8s.io"},
		{"spdy", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "v4.channel.k8s.io"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			if tc.env != "" {
				env = []string{tc.env}
			}
			before := len(f.Execs())
			out, stderr, err := runKubectlEnv(kc, env, nil, "exec", "web", "-n", "exec", "--", "echo", "hello", "world")
			if err != nil {
				t.Fatalf("kubectl exec echo: %v\n%s", err, stderr)
			}
			if out != "hello world\n" {
				t.Errorf("kubectl exec echo: stdout %q, want %q", out, "hello world\n")
			}

			out, stderr, err = runKubectlEnv(kc, env, strings.NewReader("from stdin\n"), "exec", "-i", "web", "-n", "exec", "-c", "sidecar", "--", "cat")
			if err != nil || out != "from stdin\n" {
				t.Errorf("kubectl exec -i cat: %q, %v\n%s", out, err, stderr)
			}

			_, stderr, err = runKubectlEnv(kc, env, nil, "exec", "web", "-n", "exec", "--", "exit", "3")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Errorf("kubectl exec exit 3: err=%v, want exit status 3\n%s", err, stderr)
			}

			execs := f.Execs()[before:]
			want := []Exec{
				{Subresource: "exec", Namespace: "exec", Pod: "web", Container: "app", Command: []string{"echo", "hello", "world"}, Protocol: tc.protocol},
				{Subresource: "exec", Namespace: "exec", Pod: "web", Container: "sidecar", Command: []string{"cat"}, Stdin: true, Protocol: tc.protocol},
				{Subresource: "exec", Namespace: "exec", Pod: "web", Container: "app", Command: []string{"exit", "3"}, Protocol: tc.protocol, ExitCode: 3},
			}
			if fmt.Sprint(execs) != fmt.Sprint(want) {
				t.Errorf("Execs:\n got %+v\nwant %+v", execs, want)
			}
		})
	}

	// Refusals come from the real apiserver's answers.
	_, stderr, err := Kubectl(t, kc, nil, "exec", "missing", "-n", "exec", "--", "echo")
	if err == nil || !strings.Contains(stderr, `pods "missing" not found`) {
		t.Errorf("exec into a missing pod: err=%v stderr=%q", err, stderr)
	}
	_, stderr, err = Kubectl(t, c.WriteKubeconfig(t, f.URL, "not-a-token"), nil, "exec", "web", "-n", "exec", "--", "echo")
	if err == nil || !strings.Contains(stderr, "provide credentials") {
		t.Errorf("exec with a bogus token: err=%v stderr=%q", err, stderr)
	}
	c.Apply(t, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
  namespace: exec
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pod-reader
  namespace: exec
rules:
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader-pod-reader
  namespace: exec
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: pod-reader
subjects:
- kind: ServiceAccount
  name: reader
  namespace: exec
`)
	reader := c.WriteKubeconfig(t, f.URL, c.ServiceAccountToken(t, "exec", "reader"))
	_, stderr, err = Kubectl(t, reader, nil, "exec", "web", "-n", "exec", "--", "echo")
	if err == nil || !strings.Contains(stderr, "forbidden") {
		t.Errorf("exec as a viewer: err=%v stderr=%q, want forbidden", err, stderr)
	}
	// …while the same viewer's ordinary reads pass through the Front.
	out, stderr, err := Kubectl(t, reader, nil, "get", "pod", "web", "-n", "exec", "-o", "name")
	if err != nil || out != "pod/web\n" {
		t.Errorf("get pod as a viewer through the Front: %q, %v\n%s", out, err, stderr)
	}
}

func TestFrontLogsAndAttach(t *testing.T) {
	c := Shared(t)
	testPod(t, c, "logs")
	f := startFront(t, c)
	kc := c.WriteKubeconfig(t, f.URL, c.AdminToken)

	out, stderr, err := Kubectl(t, kc, nil, "logs", "web", "-n", "logs", "-c", "sidecar")
	if err != nil {
		t.Fatalf("kubectl logs: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(out, "kubetest log line 1 of logs/web/sidecar\n") || strings.Count(out, "\n") != 3 {
		t.Errorf("kubectl logs = %q", out)
	}

	out, stderr, err = Kubectl(t, kc, strings.NewReader("typed\n"), "attach", "-i", "web", "-n", "logs", "-c", "app")
	if err != nil || !strings.Contains(out, "kubetest: attached to logs/web/app\ntyped\n") {
		t.Errorf("kubectl attach -i: %q, %v\n%s", out, err, stderr)
	}
}

func TestFrontPortForward(t *testing.T) {
	c := Shared(t)
	testPod(t, c, "forward")
	c.MarkPodRunning(t, "forward", "web")
	f := startFront(t, c)
	kc := c.WriteKubeconfig(t, f.URL, c.AdminToken)

	// A real server behind port 9090.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var srv sync.WaitGroup
	defer srv.Wait() // after l.Close
	defer l.Close()
	srv.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, "real server\n")
			conn.Close()
		}
	})
	f.ForwardPort(9090, l.Addr().String())

	for _, tc := range []struct{ name, env, transport string }{
		{"websocket-tunnel", "", "websocket-tunnel"},
		{"spdy", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false", "spdy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.PortForwards())
			local := portForward(t, kc, tc.env, "forward", "web", "8080", "9090")

			conn, err := net.DialTimeout("tcp", local["8080"], 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(conn)
			banner, err := r.ReadString('\n')
			if err != nil || banner != "kubetest port-forward forward/web:8080\n" {
				t.Fatalf("banner %q, %v", banner, err)
			}
			io.WriteString(conn, "ping\n")
			if echo, err := r.ReadString('\n'); err != nil || echo != "ping\n" {
				t.Errorf("echo %q, %v", echo, err)
			}

			conn2, err := net.DialTimeout("tcp", local["9090"], 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close()
			conn2.SetDeadline(time.Now().Add(20 * time.Second))
			if b, err := io.ReadAll(conn2); err != nil || string(b) != "real server\n" {
				t.Errorf("forwarded to the real server: %q, %v", b, err)
			}

			got := f.PortForwards()[before:]
			if len(got) != 2 || got[0].Transport != tc.transport || got[0].Port != 8080 || got[1].Port != 9090 {
				t.Errorf("PortForwards = %+v, want 8080 then 9090 over %s", got, tc.transport)
			}
		})
	}
}

var forwardingLine = regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> (\d+)`)

// portForward runs `kubectl port-forward pod/<pod> :<port>…` until the test
// ends and returns the local address of each remote port.
func portForward(t *testing.T, kubeconfig, env, ns, pod string, ports ...string) map[string]string {
	t.Helper()
	args := []string{"port-forward", "-n", ns, "pod/" + pod}
	for _, p := range ports {
		args = append(args, ":"+p)
	}
	cmd := KubectlCmd(t, kubeconfig, args...)
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	var reader sync.WaitGroup
	reader.Go(func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	})
	t.Cleanup(func() {
		cmd.Process.Kill()
		for range lines {
		}
		reader.Wait()
		cmd.Wait()
	})
	local := make(map[string]string)
	timeout := time.After(30 * time.Second)
	for len(local) < len(ports) {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl port-forward ended: %s", stderr.String())
			}
			if m := forwardingLine.FindStringSubmatch(line); m != nil {
				local[m[2]] = m[1]
			}
		case <-timeout:
			t.Fatalf("kubectl port-forward: no forwarding after 30s: %s", stderr.String())
		}
	}
	// Drain the rest of kubectl's output until it is killed.
	reader.Go(func() {
		for range lines {
		}
	})
	return local
}

// startFront is StartFront plus a check, after the Front has stopped,
// that no goroutine of a streaming session outlives it.
func startFront(t *testing.T, c *Cluster) *Front {
	t.Helper()
	t.Cleanup(func() { checkNoStreamGoroutines(t) }) // runs after the Front's cleanup
	return StartFront(t, c)
}

// streamFrames are stack frames of the Front's streaming sessions and the
// libraries they run on.
var streamFrames = []string{
	"kubetest.(*Front)", "kubetest.(*session)", "kubetest.(*forwarder)", "kubetest.(*wsConn)",
	"k8s.io/cri-streaming/", "k8s.io/streaming/", "github.com/moby/spdystream", "github.com/gorilla/websocket",
	"golang.org/x/net/websocket",
}

func checkNoStreamGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, f := range streamFrames {
				if strings.Contains(g, f) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines of streaming sessions outlive the Front:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
