package kubetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// servePortForward answers pods/<name>/portforward in the three ways a
// client may ask:
//
//   - SPDY/3.1 with portforward.k8s.io (kubectl before v1.30, and its
//     fallback): k8s.io/cri-streaming, the kubelet's server code.
//   - A WebSocket with subprotocol SPDY/3.1+portforward.k8s.io (kubectl
//     v1.30+ by default): SPDY frames tunneled in binary WebSocket
//     messages, which the apiserver unwraps in a real cluster
//     (k8s.io/apiserver/pkg/util/proxy/streamtunnel.go). The Front unwraps
//     them and hands the inner connection to the same SPDY server.
//   - A WebSocket with v4.channel.k8s.io and ?ports=: cri-streaming again.
func (f *Front) servePortForward(w http.ResponseWriter, req *http.Request, ns, pod string) {
	fw := &forwarder{f: f, ns: ns, pod: pod, transport: "spdy"}
	switch {
	case wsstream.IsWebSocketRequestWithTunnelingProtocol(req):
		fw.transport = "websocket-tunnel"
		f.serveTunneledPortForward(w, req, fw)
	case wsstream.IsWebSocketRequest(req):
		fw.transport = "websocket"
		// The apiserver passes ?ports=; the kubelet reads ?port=.
		q := req.URL.Query()
		for _, p := range q["ports"] {
			q.Add("port", p)
		}
		req.URL.RawQuery = q.Encode()
		opts, err := portforward.NewV4Options(req)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		portforward.ServePortForward(w, req, fw, pod, "", opts, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	default:
		portforward.ServePortForward(w, req, fw, pod, "", nil, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	}
}

// serveTunneledPortForward upgrades to a WebSocket, then serves SPDY over
// it: the SPDY upgrade request is synthesized from the WebSocket request,
// and its "hijack" returns the tunnel.
func (f *Front) serveTunneledPortForward(w http.ResponseWriter, req *http.Request, fw *forwarder) {
	var spdyProtocols, wsProtocols []string
	for _, p := range websocket.Subprotocols(req) {
		if inner, ok := strings.CutPrefix(p, portforward.WebsocketsSPDYTunnelingPrefix); ok && inner == portforward.ProtocolV1Name {
			spdyProtocols = append(spdyProtocols, inner)
			wsProtocols = append(wsProtocols, p)
		}
	}
	if len(spdyProtocols) == 0 {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "kubetest: no supported SPDY tunneling protocol requested")
		return
	}
	up := websocket.Upgrader{
		Subprotocols:    wsProtocols,
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
	}
	ws, err := up.Upgrade(w, req, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	tunnel := &wsConn{ws: ws}
	defer tunnel.Close()

	spdyReq := req.Clone(req.Context())
	for _, h := range []string{"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions"} {
		spdyReq.Header.Del(h)
	}
	spdyReq.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	spdyReq.Header.Set(httpstream.HeaderUpgrade, "SPDY/3.1")
	spdyReq.Header.Del(httpstream.HeaderProtocolVersion)
	for _, p := range spdyProtocols {
		spdyReq.Header.Add(httpstream.HeaderProtocolVersion, p)
	}
	tw := &tunnelWriter{conn: tunnel, header: http.Header{}}
	portforward.ServePortForward(tw, spdyReq, fw, fw.pod, "", nil, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// forwarder is the PortForwarder cri-streaming calls for each forwarded
// connection.
type forwarder struct {
	f         *Front
	ns, pod   string
	transport string
}

var _ portforward.PortForwarder = (*forwarder)(nil)

// PortForward implements portforward.PortForwarder: it splices the stream
// to the address set with ForwardPort, or greets and echoes.
func (fw *forwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	fw.f.recordForward(PortForward{Namespace: fw.ns, Pod: fw.pod, Port: port, Transport: fw.transport})
	fw.f.mu.Lock()
	addr := fw.f.ports[port]
	fw.f.mu.Unlock()
	if addr == "" {
		if _, err := fmt.Fprintf(stream, "kubetest port-forward %s/%s:%d\n", fw.ns, fw.pod, port); err != nil {
			return err
		}
		_, err := io.Copy(stream, stream)
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("kubetest: forward port %d to %s: %w", port, addr, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	})
	_, err = io.Copy(stream, conn)
	stream.Close()
	wg.Wait()
	return err
}

// tunnelWriter is the http.ResponseWriter the SPDY upgrader writes to
// inside the tunnel. Its status line and headers go nowhere: the
// WebSocket handshake has already answered the client, as the
// apiserver's tunneling handler does with the kubelet's 101.
type tunnelWriter struct {
	conn   net.Conn
	header http.Header
	code   int
}

func (w *tunnelWriter) Header() http.Header  { return w.header }
func (w *tunnelWriter) WriteHeader(code int) { w.code = code }
func (w *tunnelWriter) Write(b []byte) (int, error) {
	// Only an error before the upgrade writes a body; the client has
	// nothing to read it with, so end the tunnel.
	w.conn.Close()
	return 0, fmt.Errorf("kubetest: SPDY upgrade inside the tunnel failed (%d): %s", w.code, b)
}
func (w *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// wsConn is a WebSocket as a net.Conn: each Write is one binary message,
// Read concatenates binary messages. (The client side is client-go's
// portforward.TunnelingConnection.)
type wsConn struct {
	ws *websocket.Conn

	rmu sync.Mutex // guards r
	r   io.Reader  // the message being read

	wmu sync.Mutex // serializes writers

	closeOnce sync.Once
	closeErr  error
}

func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, fmt.Errorf("kubetest: tunnel: unexpected WebSocket message type %d", typ)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		c.closeErr = c.ws.Close()
	})
	return c.closeErr
}

func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.ws.NetConn().SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
