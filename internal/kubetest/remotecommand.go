package kubetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

const (
	// streamIdleTimeout ends a session nobody writes to; kubelet's default
	// is 4 h, far longer than any test.
	streamIdleTimeout = 5 * time.Minute
	// streamCreationTimeout bounds the wait for a SPDY client's streams.
	streamCreationTimeout = 30 * time.Second
	// maxSleep bounds the builtin sleep.
	maxSleep = 60 * time.Second
)

// serveRemoteCommand answers exec or attach. kubectl v1.30+ asks for a
// WebSocket with v5.channel.k8s.io first and falls back to SPDY when the
// upgrade fails. The kubelet's streaming server (k8s.io/cri-streaming)
// speaks SPDY v1…v4 and WebSocket v1…v4 but not v5, which the apiserver
// translates to SPDY in a real cluster; the Front serves v5 itself with
// the same wsstream connection the apiserver's translator uses.
func (f *Front) serveRemoteCommand(w http.ResponseWriter, req *http.Request, sub, ns, pod, container string) {
	q := req.URL.Query()
	opts := &remotecommand.Options{
		Stdin:  queryBool(q, "stdin"),
		Stdout: queryBool(q, "stdout"),
		Stderr: queryBool(q, "stderr"),
		TTY:    queryBool(q, "tty"),
	}
	if opts.TTY {
		opts.Stderr = false // a terminal has one output stream
	}
	if !opts.Stdin && !opts.Stdout && !opts.Stderr {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr")
		return
	}
	cmd := q["command"]
	if sub == "exec" && len(cmd) == 0 {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "you must specify at least one command for the container")
		return
	}
	s := &session{f: f, w: w, rec: Exec{
		Subresource: sub, Namespace: ns, Pod: pod, Container: container,
		Command: cmd, Stdin: opts.Stdin, TTY: opts.TTY,
	}}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(req) {
		s.rec.Protocol = remotecommand.StreamProtocolV5Name
		s.serveV5(w, req, opts)
		return
	}
	if wsstream.IsWebSocketRequest(req) {
		s.rec.Protocol = "websocket: " + req.Header.Get("Sec-WebSocket-Protocol")
	}
	// SPDY, or WebSocket before v5. The kubelet's server code answers; it
	// calls back into session.ExecInContainer or AttachContainer.
	protocols := remotecommand.SupportedStreamingProtocols
	if sub == "attach" {
		remotecommand.ServeAttach(w, req, s, pod, "", container, opts, streamIdleTimeout, streamCreationTimeout, protocols)
	} else {
		remotecommand.ServeExec(w, req, s, pod, "", container, cmd, opts, streamIdleTimeout, streamCreationTimeout, protocols)
	}
}

// session is one exec or attach; it is the Executor and Attacher
// k8s.io/cri-streaming calls.
type session struct {
	f   *Front
	rec Exec
	w   http.ResponseWriter // for the negotiated SPDY protocol version
}

var (
	_ remotecommand.Executor = (*session)(nil)
	_ remotecommand.Attacher = (*session)(nil)
)

// ExecInContainer implements remotecommand.Executor.
func (s *session) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return s.runSPDY(ctx, in, out, errw, resize)
}

// AttachContainer implements remotecommand.Attacher.
func (s *session) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	return s.runSPDY(ctx, in, out, errw, resize)
}

func (s *session) runSPDY(ctx context.Context, in io.Reader, out, errw io.Writer, resize <-chan remotecommand.TerminalSize) error {
	if s.rec.Protocol == "" {
		// httpstream.Handshake has set the negotiated version.
		s.rec.Protocol = s.w.Header().Get(httpstream.HeaderProtocolVersion)
	}
	// cri-streaming feeds terminal resizes into resize; unread, they would
	// stall its reader.
	stop := make(chan struct{})
	var drain sync.WaitGroup
	if resize != nil {
		drain.Go(func() {
			for {
				select {
				case _, ok := <-resize:
					if !ok {
						return
					}
				case <-stop:
					return
				}
			}
		})
	}
	code := s.run(ctx, in, out, errw)
	close(stop)
	drain.Wait()
	s.finish(code)
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command exited with %d", code), Code: code}
	}
	return nil
}

// run runs the builtin (exec) or the attach greeting and returns the exit
// code.
func (s *session) run(ctx context.Context, in io.Reader, out, errw io.Writer) int {
	if out == nil {
		out = io.Discard
	}
	if errw == nil {
		errw = out // a TTY's stderr is its stdout
	}
	if in == nil {
		in = strings.NewReader("")
	}
	if s.rec.Subresource == "attach" {
		fmt.Fprintf(out, "kubetest: attached to %s/%s/%s\n", s.rec.Namespace, s.rec.Pod, s.rec.Container)
		if s.rec.Stdin {
			io.Copy(out, in)
		}
		return 0
	}
	return builtin(ctx, s.rec.Pod, s.rec.Command, in, out, errw)
}

// finish records the session with its exit code; it runs before the exit
// status is written, so kubectl cannot return before the record exists.
func (s *session) finish(code int) {
	s.rec.ExitCode = code
	s.f.recordExec(s.rec)
}

// serveV5 is the WebSocket v5.channel.k8s.io server, as the apiserver's
// stream translator (k8s.io/apiserver/pkg/util/proxy/websocket.go) opens
// it: channels 0–4 are stdin, stdout, stderr, error (the final Status as
// JSON) and resize; wsstream handles the v5 close signal that ends stdin.
func (s *session) serveV5(w http.ResponseWriter, req *http.Request, opts *remotecommand.Options) {
	channels := []wsstream.ChannelType{
		readChannel(opts.Stdin), writeChannel(opts.Stdout), writeChannel(opts.Stderr),
		wsstream.WriteChannel, wsstream.ReadChannel,
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(streamIdleTimeout)
	_, streams, err := conn.Open(w, req)
	if err != nil {
		return // Open has answered the client
	}
	// The resize channel is a pipe fed by the connection's reader; it must
	// be drained or the reader blocks. It ends when the connection closes.
	var drain sync.WaitGroup
	drain.Go(func() { io.Copy(io.Discard, streams[4]) })
	defer drain.Wait()
	defer conn.Close()

	// An empty message on the lowest writable channel tells the client the
	// streams are ready.
	switch {
	case opts.Stdout:
		streams[1].Write(nil)
	case opts.Stderr:
		streams[2].Write(nil)
	default:
		streams[3].Write(nil)
	}
	var in io.Reader
	var out, errw io.Writer
	if opts.Stdin {
		in = streams[0]
	}
	if opts.Stdout {
		out = streams[1]
	}
	if opts.Stderr {
		errw = streams[2]
	}
	code := s.run(req.Context(), in, out, errw)
	s.finish(code)
	status, _ := json.Marshal(exitStatus(code))
	conn.SetWriteDeadline(10 * time.Second)
	streams[3].Write(status)
}

// exitStatus is the metav1.Status a kubelet sends on the error channel
// (v4 and v5): Success, or NonZeroExitCode with the code as an ExitCode
// cause, which kubectl turns into its own exit code.
func exitStatus(code int) map[string]any {
	if code == 0 {
		return map[string]any{"metadata": map[string]any{}, "status": "Success"}
	}
	return map[string]any{
		"metadata": map[string]any{},
		"status":   "Failure",
		"message":  fmt.Sprintf("command terminated with non-zero exit code: command exited with %d", code),
		"reason":   remotecommand.NonZeroExitCodeReason,
		"details": map[string]any{"causes": []map[string]string{
			{"reason": remotecommand.ExitCodeCauseType, "message": strconv.Itoa(code)},
		}},
	}
}

func readChannel(real bool) wsstream.ChannelType {
	if real {
		return wsstream.ReadChannel
	}
	return wsstream.IgnoreChannel
}

func writeChannel(real bool) wsstream.ChannelType {
	if real {
		return wsstream.WriteChannel
	}
	return wsstream.IgnoreChannel
}

// builtin runs one of the Front's fixed commands and returns its exit
// code. It never starts a process:
//
//	echo ARGS…      prints ARGS joined by spaces and a newline
//	echoerr ARGS…   the same on stderr
//	cat             copies stdin to stdout until stdin ends
//	env             prints two fixed lines (PATH=… and HOSTNAME=<pod>)
//	hostname        prints the Pod's name
//	true, false     exit 0, exit 1
//	exit N          exits with N
//	sleep SECONDS   waits (at most a minute, or until the client leaves)
//
// Anything else prints "<cmd>: command not found" on stderr and exits 127.
func builtin(ctx context.Context, pod string, argv []string, in io.Reader, out, errw io.Writer) int {
	if len(argv) == 0 {
		return 127
	}
	switch name, args := argv[0], argv[1:]; name {
	case "echo":
		fmt.Fprintln(out, strings.Join(args, " "))
	case "echoerr":
		fmt.Fprintln(errw, strings.Join(args, " "))
	case "cat":
		io.Copy(out, in)
	case "env":
		fmt.Fprintf(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=%s\n", pod)
	case "hostname":
		fmt.Fprintln(out, pod)
	case "true":
	case "false":
		return 1
	case "exit":
		if len(args) != 1 {
			return 2
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > 255 {
			fmt.Fprintf(errw, "exit: %s: numeric argument required\n", args[0])
			return 2
		}
		return n
	case "sleep":
		d := time.Duration(0)
		if len(args) == 1 {
			s, err := strconv.ParseFloat(args[0], 64)
			if err != nil {
				fmt.Fprintf(errw, "sleep: invalid time interval %q\n", args[0])
				return 1
			}
			d = min(time.Duration(s*float64(time.Second)), maxSleep)
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return 130
		}
	default:
		fmt.Fprintf(errw, "%s: command not found\n", name)
		return 127
	}
	return 0
}
