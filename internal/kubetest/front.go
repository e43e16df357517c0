package kubetest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Front stands where warden's upstream would otherwise be: an HTTPS
// reverse proxy in front of the Cluster's apiserver that forwards every
// request as it is (including the Authorization header it receives) except
// the Pod subresources a kubelet would serve — exec, attach, portforward
// and log — which it answers itself:
//
//   - exec and attach speak the remote-command protocol kubectl uses:
//     WebSocket v5.channel.k8s.io (kubectl's default since v1.30), and SPDY
//     v4…v1 plus WebSocket v4…v1 through k8s.io/cri-streaming, the same
//     server code the kubelet's streaming server runs. exec runs one of a
//     few builtin commands (see Exec); no process is ever started.
//   - portforward speaks SPDY portforward.k8s.io, the SPDY-over-WebSocket
//     tunnel kubectl v1.30+ tries first (SPDY/3.1+portforward.k8s.io), and
//     WebSocket v4; each forwarded connection gets a banner line and an
//     echo of what it sends, or is spliced to a loopback address set with
//     ForwardPort.
//   - log returns three fixed lines and ends, also with follow=true.
//
// Before answering, the Front asks the apiserver, with the caller's own
// Authorization header, whether the caller may do it (a
// SelfSubjectAccessReview for create pods/exec and so on) and reads the Pod
// (so a missing Pod or container is refused as the apiserver would), so a
// wrong or under-privileged upstream credential fails here as it would
// against a real cluster. (The Forbidden message says "the caller", not
// the user name the apiserver would print.)
type Front struct {
	URL    string // https://127.0.0.1:<port>
	CAFile string // the Cluster's CA, which signed the Front's certificate
	CAPEM  []byte

	c   *Cluster
	srv *httptest.Server
	rp  *httputil.ReverseProxy

	// handlers counts the streaming handlers still running; hijacked
	// connections are no longer the httptest.Server's to wait for.
	handlers sync.WaitGroup

	mu       sync.Mutex
	hijacked map[net.Conn]struct{}
	execs    []Exec
	forwards []PortForward
	ports    map[int32]string // ForwardPort targets
}

// Exec is one exec or attach session the Front served.
type Exec struct {
	Subresource string // "exec" or "attach"
	Namespace   string
	Pod         string
	Container   string
	Command     []string // exec only
	Stdin, TTY  bool
	Protocol    string // negotiated: "v5.channel.k8s.io" (WebSocket), "v4.channel.k8s.io" (SPDY), …
	ExitCode    int
}

// PortForward is one forwarded connection the Front served.
type PortForward struct {
	Namespace, Pod string
	Port           int32
	Transport      string // "spdy", "websocket-tunnel" or "websocket"
}

// StartFront starts a Front for c on a loopback port, with a certificate
// signed by c's CA; it stops when the test ends.
func StartFront(t testing.TB, c *Cluster) *Front {
	t.Helper()
	cert, err := c.ca.issueTLS("kubetest-front", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &Front{
		CAFile:   c.CAFile,
		CAPEM:    c.CAPEM,
		c:        c,
		hijacked: make(map[net.Conn]struct{}),
		ports:    make(map[int32]string),
	}
	f.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
		},
		Transport: &http.Transport{
			TLSClientConfig:     c.client.Transport.(*http.Transport).TLSClientConfig.Clone(),
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 16,
		},
		FlushInterval: -1, // watches stream
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serveHTTP))
	// HTTP/1.1 only: SPDY and WebSocket upgrades need it, and kubectl
	// negotiates it for every request when h2 is not offered.
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	f.srv.StartTLS()
	f.URL = f.srv.URL
	t.Cleanup(func() {
		if err := f.close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// close stops the server, ends every upgraded session by closing its
// connection, and waits (bounded) for their handlers.
func (f *Front) close() error {
	f.srv.CloseClientConnections()
	f.mu.Lock()
	for conn := range f.hijacked {
		conn.Close()
	}
	f.mu.Unlock()
	f.srv.Close()
	done := make(chan struct{})
	go func() { f.handlers.Wait(); close(done) }()
	select {
	case <-done:
		f.rp.Transport.(*http.Transport).CloseIdleConnections()
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("kubetest: Front: streaming handlers still running 10s after close")
	}
}

// Execs returns the exec and attach sessions served so far, in the order
// they finished. A session is recorded before its exit status is sent, so
// it is visible as soon as kubectl returns.
func (f *Front) Execs() []Exec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.execs)
}

// PortForwards returns the forwarded connections served so far.
func (f *Front) PortForwards() []PortForward {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forwards)
}

// ForwardPort makes connections forwarded to port (of any Pod) reach addr,
// a loopback address of a server the test runs, instead of the echo.
func (f *Front) ForwardPort(port int32, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ports[port] = addr
}

// podSubresource matches the Pod subresources a kubelet serves.
var podSubresource = regexp.MustCompile(`^/api/v1/namespaces/([^/]+)/pods/([^/]+)/(exec|attach|portforward|log)$`)

func (f *Front) serveHTTP(w http.ResponseWriter, req *http.Request) {
	m := podSubresource.FindStringSubmatch(req.URL.Path)
	if m == nil {
		f.rp.ServeHTTP(w, req)
		return
	}
	f.handlers.Add(1)
	defer f.handlers.Done()
	ns, pod, sub := m[1], m[2], m[3]

	verb := "create"
	if sub == "log" {
		verb = "get"
	}
	if !f.authorize(w, req, verb, ns, pod, sub) {
		return
	}
	containers, ok := f.podContainers(w, req, ns, pod)
	if !ok {
		return
	}
	container := req.URL.Query().Get("container")
	switch {
	case container == "" && len(containers) > 0:
		container = containers[0]
	case !slices.Contains(containers, container):
		writeStatus(w, http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("container %s is not valid for pod %s", container, pod))
		return
	}

	tw := &trackingWriter{ResponseWriter: w, f: f}
	defer tw.release()
	switch sub {
	case "exec", "attach":
		f.serveRemoteCommand(tw, req, sub, ns, pod, container)
	case "portforward":
		f.servePortForward(tw, req, ns, pod)
	case "log":
		w.Header().Set("Content-Type", "text/plain")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "kubetest log line %d of %s/%s/%s\n", i, ns, pod, container)
		}
	}
}

// authorize asks the apiserver, as the caller, whether the caller may
// verb pods/sub, and answers 401 or 403 the way the apiserver would if
// not.
func (f *Front) authorize(w http.ResponseWriter, req *http.Request, verb, ns, pod, sub string) bool {
	review := map[string]any{
		"apiVersion": "authorization.k8s.io/v1",
		"kind":       "SelfSubjectAccessReview",
		"spec": map[string]any{"resourceAttributes": map[string]string{
			"namespace": ns, "verb": verb, "resource": "pods", "subresource": sub, "name": pod,
		}},
	}
	body, _ := json.Marshal(review)
	code, resp, err := f.asCaller(req, http.MethodPost, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body)
	if err != nil {
		writeStatus(w, http.StatusBadGateway, "InternalError", err.Error())
		return false
	}
	if code != http.StatusCreated && code != http.StatusOK {
		// 401 for a bad token, as the apiserver's Status.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(resp)
		return false
	}
	var out struct {
		Status struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
		} `json:"status"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		writeStatus(w, http.StatusBadGateway, "InternalError", "kubetest: SelfSubjectAccessReview: "+err.Error())
		return false
	}
	if !out.Status.Allowed {
		writeStatus(w, http.StatusForbidden, "Forbidden", fmt.Sprintf(
			"pods %q is forbidden: the caller cannot %s resource \"pods/%s\" in API group \"\" in the namespace %q",
			pod, verb, sub, ns))
		return false
	}
	return true
}

// podContainers reads the Pod as the caller and returns its container
// names, answering the apiserver's error (404 for a missing Pod) if it
// fails.
func (f *Front) podContainers(w http.ResponseWriter, req *http.Request, ns, pod string) ([]string, bool) {
	code, resp, err := f.asCaller(req, http.MethodGet, "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods/"+url.PathEscape(pod), nil)
	if err != nil {
		writeStatus(w, http.StatusBadGateway, "InternalError", err.Error())
		return nil, false
	}
	if code != http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(resp)
		return nil, false
	}
	var p struct {
		Spec struct {
			Containers []struct {
				Name string `json:"name"`
			} `json:"containers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(resp, &p); err != nil {
		writeStatus(w, http.StatusBadGateway, "InternalError", "kubetest: pod: "+err.Error())
		return nil, false
	}
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	return names, true
}

// asCaller sends a request to the apiserver with the caller's
// Authorization header, reading at most 1 MiB of the answer.
func (f *Front) asCaller(orig *http.Request, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(orig.Context(), method, f.c.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if a := orig.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := f.c.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("kubetest: Front: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// writeStatus answers with a Kubernetes Status object, as the apiserver
// does, so kubectl prints the message.
func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code,
	})
}

func (f *Front) recordExec(e Exec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, e)
}

func (f *Front) recordForward(p PortForward) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwards = append(f.forwards, p)
}

// trackingWriter records the connection when a handler hijacks it, so that
// the Front's close can end the session. It deliberately has no Unwrap
// method: k8s.io/cri-streaming unwraps writers to hijack the original, and
// the Front must see that hijack.
type trackingWriter struct {
	http.ResponseWriter
	f    *Front
	conn net.Conn
}

func (w *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("kubetest: response writer cannot hijack")
	}
	conn, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.f.mu.Lock()
	w.f.hijacked[conn] = struct{}{}
	w.f.mu.Unlock()
	w.conn = conn
	return conn, rw, nil
}

func (w *trackingWriter) Flush() {
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

// release forgets (and closes) the hijacked connection when its handler
// returns.
func (w *trackingWriter) release() {
	if w.conn == nil {
		return
	}
	w.conn.Close()
	w.f.mu.Lock()
	delete(w.f.hijacked, w.conn)
	w.f.mu.Unlock()
}

// queryBool reads a kubectl boolean query parameter ("true" or "1").
func queryBool(q url.Values, name string) bool {
	v := strings.ToLower(q.Get(name))
	return v == "true" || v == "1"
}
