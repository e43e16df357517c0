package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/proxy/kube"
	"github.com/warden-gateway/warden/internal/review"
)

// strippedHeaders never reach a target from the client: forwarding and
// identity headers a client could forge, and hop-by-hop proxies'.
var strippedHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix",
	"X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "X-Original-Url", "X-Rewrite-Url",
	"X-Remote-User", "X-Remote-Group", "X-Remote-Extra", "X-Auth-Request-User", "X-Auth-Request-Email",
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-User", "X-Email",
	"X-Warden-Identity",
	// Method overrides: policy decided the request's method; an upstream
	// honouring these would run another.
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
}

// strippedPrefixes are header name prefixes removed from client requests:
// Kubernetes impersonation (Impersonate-User, -Group, -Uid, -Extra-*) and
// front-proxy identity (X-Remote-Extra-*), which would let an agent act as
// someone else with warden's credential.
var strippedPrefixes = []string{"Impersonate-", "X-Remote-", "X-Warden-"}

// forward sends the request upstream and relays the response.
func (x *exchange) forward(w http.ResponseWriter, r *http.Request, approved *review.Review) {
	s := x.s
	out := r.Clone(r.Context())
	out.Host = ""
	h := out.Header
	for _, k := range strippedHeaders {
		h.Del(k)
	}
	h.Del(s.cfg.IdentityHeader)
	for k := range h {
		if strings.ContainsRune(k, '_') {
			// CGI-style servers read X_Remote_User as X-Remote-User;
			// nginx drops such headers by default, and so does warden.
			delete(h, k)
			continue
		}
		for _, p := range strippedPrefixes {
			if strings.HasPrefix(k, p) {
				delete(h, k)
			}
		}
	}
	// The bearer subprotocol carries the agent's token: never forward it.
	if vs := h.Values("Sec-WebSocket-Protocol"); len(vs) > 0 {
		var keep []string
		for _, v := range vs {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" && !strings.HasPrefix(p, wsBearerPrefix) {
					keep = append(keep, p)
				}
			}
		}
		h.Del("Sec-WebSocket-Protocol")
		if len(keep) > 0 {
			h.Set("Sec-WebSocket-Protocol", strings.Join(keep, ", "))
		}
	}
	// What warden sets is kept aside and applied again after the
	// reverse proxy has removed the headers the client's Connection header
	// names, so a client cannot make them disappear.
	inject := http.Header{}
	if err := x.target.setCredential(inject); err != nil {
		s.log.Error("target credential unavailable", "target", x.name, "err", err)
		x.fail(w, http.StatusBadGateway, "InternalError", "warden: the target's credential is unavailable")
		x.finish(r.Context(), approved)
		return
	}
	if !x.isKube() && s.cfg.Asserter != nil {
		a, err := s.cfg.Asserter.Sign(x.principal, x.name, s.cfg.Now())
		if err != nil {
			x.fail(w, http.StatusInternalServerError, "InternalError", "warden: cannot sign the identity assertion")
			x.finish(r.Context(), approved)
			return
		}
		inject.Set(s.cfg.IdentityHeader, a)
	}

	// The response filter this request needs.
	if x.isKube() {
		if x.kr.Resource == "secrets" && !x.decision.Reveal {
			x.secrets = kube.NewSecretMasker(func(string) string { return maskedSecret })
			inject.Set("Accept", kube.AcceptJSON(h.Get("Accept")))
		}
	} else {
		x.masks = x.subject.Masks(x.name)
	}
	if x.secrets != nil || x.masks != nil {
		// Whole, unencoded documents only: a byte range of a masked
		// document is not a document the masker can read.
		for _, k := range []string{"Accept-Encoding", "Range", "If-Range"} {
			h.Del(k)
		}
		inject.Set("Accept-Encoding", "identity")
	}
	for k := range inject {
		h.Del(k)
	}
	x.inject = inject

	u := *x.target.URL
	u.Path = x.target.URL.Path + x.path
	u.RawPath = x.target.URL.EscapedPath() + x.rest
	if u.RawPath == u.Path || !validRawPath(u.RawPath, u.Path) {
		u.RawPath = ""
	}
	u.RawQuery = r.URL.RawQuery
	out.URL = &u
	out.RequestURI = ""

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	p := x.principal
	st := &stream{cancel: cancel, done: make(chan struct{}), Info: Info{ID: x.sessionID, Protocol: x.protocol(), Target: x.name, Subject: p.Subject,
		Issuer: p.Issuer, Groups: p.Groups, TokenID: p.TokenID, Client: x.client, Request: x.text, Started: x.start, Expires: p.Expiry}}
	s.mu.Lock()
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		s.mu.Unlock()
		close(st.done)
	}()
	if !x.principal.Expiry.IsZero() {
		// A stream ends with its token.
		t := time.AfterFunc(time.Until(x.principal.Expiry), cancel)
		defer t.Stop()
	}
	out = out.WithContext(context.WithValue(ctx, exchangeKey{}, x))

	cw := &countingWriter{ResponseWriter: w, x: x}
	s.proxy.ServeHTTP(cw, out)
	if x.status == 0 {
		x.status = cw.status
	}
	x.finish(r.Context(), approved)
}

// rewrite runs inside the reverse proxy, after it has removed hop-by-hop
// headers (and those the client's Connection header names): it sets the
// headers warden adds.
func rewrite(pr *httputil.ProxyRequest) {
	x, _ := pr.Out.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return
	}
	for k, v := range x.inject {
		pr.Out.Header[k] = append([]string(nil), v...)
	}
}

// maskedSecret is what a masked Secret value reads as.
const maskedSecret = "[REDACTED by warden]"

func validRawPath(raw, path string) bool {
	dec, err := url.PathUnescape(raw)
	return err == nil && dec == path
}

// finish records the result.
func (x *exchange) finish(ctx context.Context, approved *review.Review) {
	ev := x.baseEvent(audit.KindResult)
	ev.Time = x.s.cfg.Now()
	ev.Decision = audit.Allow
	ev.DurationUS = time.Since(x.start).Microseconds()
	ev.Bytes = x.bytes.Load()
	ev.Status = int64(x.status)
	ev.Rows = x.masked.Load()
	ev.Reason = "status " + strconv.Itoa(x.status)
	if n := x.masked.Load(); n > 0 {
		ev.Reason += fmt.Sprintf("; %d values masked", n)
	}
	if x.status >= 400 || x.err != "" {
		ev.Error = strings.TrimSpace("HTTP " + strconv.Itoa(x.status) + " " + x.err)
	}
	x.s.recordAfter(ctx, ev)
	x.m.Completed(time.Since(x.start))
	if approved != nil && x.s.cfg.Reviews != nil {
		x.s.cfg.Reviews.Executed(context.WithoutCancel(ctx), approved.ID, ev.Reason)
	}
}

// transportByTarget sends each request with its target's transport.
type transportByTarget struct{}

func (transportByTarget) RoundTrip(r *http.Request) (*http.Response, error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return nil, errors.New("httpproxy: request without an exchange")
	}
	return x.target.transport.RoundTrip(r)
}

// modifyResponse filters the response: masking, and refusing what cannot
// be masked.
func (s *Server) modifyResponse(resp *http.Response) error {
	x, _ := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return errors.New("no exchange")
	}
	x.status = resp.StatusCode
	if resp.StatusCode == http.StatusPartialContent && (x.secrets != nil || x.masks != nil) {
		x.err = "partial content under masking"
		return errUnmaskable
	}
	// Never let the target set cookies scoped to warden's origin.
	resp.Header.Del("Set-Cookie")
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	switch {
	case x.secrets != nil:
		return x.maskSecrets(resp)
	case x.masks != nil:
		return x.maskJSON(resp)
	}
	return nil
}

var errUnmaskable = errors.New("response cannot be masked")

func (x *exchange) maskSecrets(resp *http.Response) error {
	if noBody(resp) {
		return nil
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		x.err = "encoded response (" + enc + ") for Secrets"
		return errUnmaskable
	}
	ct := resp.Header.Get("Content-Type")
	if !kube.MaskableType(ct) {
		x.err = "unmaskable content type " + strconv.Quote(ct) + " for Secrets"
		return errUnmaskable
	}
	if x.kr.Verb == "watch" {
		resp.Body = x.secrets.NewWatchReader(resp.Body, int(x.s.cfg.MaxMaskBytes))
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
		return nil
	}
	body, err := readBounded(resp.Body, x.s.cfg.MaxMaskBytes)
	resp.Body.Close()
	if err != nil {
		x.err = err.Error()
		return errUnmaskable
	}
	var n int
	if strings.Contains(ct, "yaml") {
		body, n, err = x.secrets.MaskYAML(body)
	} else {
		body, n, err = x.secrets.MaskJSON(body)
	}
	if err != nil {
		x.err = "malformed body: " + err.Error()
		return errUnmaskable
	}
	x.masked.Add(int64(n))
	setBody(resp, body)
	return nil
}

func (x *exchange) maskJSON(resp *http.Response) error {
	if noBody(resp) {
		return nil
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		x.err = "encoded response (" + enc + ") under a mask rule"
		return errUnmaskable
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		if x.masks.PassNonJSON() {
			return nil
		}
		x.err = "non-JSON response (" + resp.Header.Get("Content-Type") + ") under a mask rule"
		return errUnmaskable
	}
	body, err := readBounded(resp.Body, x.s.cfg.MaxMaskBytes)
	resp.Body.Close()
	if err != nil {
		x.err = err.Error()
		return errUnmaskable
	}
	if len(bytes.TrimSpace(body)) == 0 {
		setBody(resp, body)
		return nil
	}
	masked, n, err := maskJSONBody(body, x.masks, x.s.maskers)
	if err != nil {
		x.err = "malformed JSON: " + err.Error()
		return errUnmaskable
	}
	x.masked.Add(int64(n))
	setBody(resp, masked)
	return nil
}

func noBody(resp *http.Response) bool {
	return resp.Request.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.ContentLength == 0
}

func readBounded(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %v", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("response larger than http.max_mask_bytes (%d) under masking", max)
	}
	return b, nil
}

func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Header.Del("Content-Encoding")
	resp.Header.Del("Etag") // the body changed
}

// proxyError answers when the upstream failed or a response was refused.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	if errors.Is(err, errUnmaskable) {
		x.fail(w, http.StatusBadGateway, "InternalError", "warden: the response must be masked and cannot be ("+x.err+"); refused")
		return
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		x.err = "request body too large"
		x.fail(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("warden: request body larger than %d bytes", tooBig.Limit))
		return
	}
	if errors.Is(err, context.Canceled) {
		x.err = "canceled"
		x.status = 499
		return
	}
	x.err = err.Error()
	s.log.Warn("upstream request failed", "target", x.name, "err", err)
	x.fail(w, http.StatusBadGateway, "InternalError", "warden: the target did not answer: "+err.Error())
}

// countingWriter counts the bytes sent to the client, through upgrades
// too (the hijacked connection is wrapped).
type countingWriter struct {
	http.ResponseWriter
	x      *exchange
	status int
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.x.bytes.Add(int64(n))
	return n, err
}

func (c *countingWriter) Flush() {
	http.NewResponseController(c.ResponseWriter).Flush()
}

func (c *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(c.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if c.status == 0 {
		c.status = http.StatusSwitchingProtocols
	}
	cc := &countingConn{Conn: conn, x: c.x}
	return cc, bufio.NewReadWriter(bufio.NewReader(io.MultiReader(brw.Reader, cc)), bufio.NewWriter(cc)), nil
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type countingConn struct {
	net.Conn
	x *exchange
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.x.bytes.Add(int64(n))
	return n, err
}

// base64RawURL decodes unpadded base64url.
func base64RawURL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
