package httpproxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Target is one upstream http or kubernetes service and how warden
// authenticates to it.
type Target struct {
	Name string
	Kind string // "http" or "kubernetes"
	URL  *url.URL
	// Headers are set on every upstream request, replacing the client's.
	Headers http.Header
	// TokenFile, if set, is read for a bearer token (re-read when it
	// changes).
	TokenFile string
	Timeout   time.Duration

	transport *http.Transport
	token     *fileToken
}

// TargetOptions are the parts of a target's configuration NewTarget
// turns into a transport.
type TargetOptions struct {
	Name, Kind, URL     string
	Headers             map[string]string
	BasicUser, BasicPwd string
	HasBasic            bool
	TokenFile           string
	CAFile              string
	CertFile, KeyFile   string
	Timeout             time.Duration
}

// NewTarget builds a target: its transport (CA, client certificate) and
// credential. Files are read now, so a missing one fails at start.
func NewTarget(o TargetOptions) (*Target, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %s: bad url %q", o.Name, o.URL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	t := &Target{Name: o.Name, Kind: o.Kind, URL: u, Headers: http.Header{}, TokenFile: o.TokenFile, Timeout: o.Timeout}
	for k, v := range o.Headers {
		t.Headers.Set(k, v)
	}
	if o.HasBasic {
		t.Headers.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(o.BasicUser+":"+o.BasicPwd)))
	}
	if o.TokenFile != "" {
		t.token = &fileToken{path: o.TokenFile}
		if _, err := t.token.get(); err != nil {
			return nil, fmt.Errorf("target %s: token_file: %w", o.Name, err)
		}
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("target %s: ca_file: %w", o.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("target %s: ca_file %s: no PEM certificates", o.Name, o.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("target %s: client certificate: %w", o.Name, err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	t.transport = &http.Transport{
		Proxy:                 nil, // never an environment proxy: the upstream is what the config says
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     false, // upgrades (exec, WebSocket) need HTTP/1.1
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return t, nil
}

// Close releases the target's idle connections.
func (t *Target) Close() { t.transport.CloseIdleConnections() }

// setCredential puts the target's own credential on an outgoing request.
func (t *Target) setCredential(h http.Header) error {
	for k, v := range t.Headers {
		h[k] = append([]string(nil), v...)
	}
	if t.token != nil {
		tok, err := t.token.get()
		if err != nil {
			return err
		}
		h.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

// fileToken is a bearer token read from a file and re-read when the file
// changes (projected service-account tokens rotate).
type fileToken struct {
	path string

	mu      sync.Mutex
	checked time.Time
	mtime   time.Time
	size    int64
	tok     string
}

func (f *fileToken) get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.tok != "" && now.Sub(f.checked) < time.Second {
		return f.tok, nil
	}
	f.checked = now
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", err
	}
	if f.tok != "" && fi.ModTime().Equal(f.mtime) && fi.Size() == f.size {
		return f.tok, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return "", err
	}
	tok := string(bytes.TrimSpace(b))
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", errors.New("token file " + f.path + " is empty or has several lines")
	}
	f.tok, f.mtime, f.size = tok, fi.ModTime(), fi.Size()
	return tok, nil
}
