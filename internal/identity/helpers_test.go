package identity_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
)

// TestMain fails the run if a test leaves goroutines running in this
// package's code behind (house rule: every goroutine has an owner).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitForLeaks(within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for i, g := range strings.Split(string(buf), "\n\n") {
			if i == 0 { // this goroutine
				continue
			}
			if strings.Contains(g, "warden/internal/identity") && !strings.Contains(g, "testing.(*M)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const audience = "warden"

// testIssuer is a DevIssuer served on loopback, with request counters.
type testIssuer struct {
	URL       string
	Dev       *identity.DevIssuer
	key       *ecdsa.PrivateKey // the key Dev started with
	handler   atomic.Value      // of http.Handler
	Server    *httptest.Server
	jwksHits  atomic.Int64
	discHits  atomic.Int64
	otherHits atomic.Int64
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	// Through a key file, so the test holds the private key too.
	path := filepath.Join(t.TempDir(), "dev.pem")
	dev, err := identity.LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{Dev: dev, key: loadECKey(t, path)}
	srv := httptest.NewUnstartedServer(nil)
	ti.URL = "http://" + srv.Listener.Addr().String()
	ti.serve(dev.Handler(ti.URL))
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/keys":
			ti.jwksHits.Add(1)
		case "/.well-known/openid-configuration":
			ti.discHits.Add(1)
		default:
			ti.otherHits.Add(1)
		}
		ti.handler.Load().(http.Handler).ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	ti.Server = srv
	return ti
}

// serve replaces what the issuer's server answers with.
func (ti *testIssuer) serve(h http.Handler) { ti.handler.Store(h) }

func loadECKey(t testing.TB, path string) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func (ti *testIssuer) config() config.OIDCIssuer {
	return config.OIDCIssuer{Issuer: ti.URL, Audience: audience}
}

// claims returns a complete, valid claim set for this issuer at now.
func (ti *testIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":    ti.URL,
		"aud":    audience,
		"sub":    "agent-1",
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(15 * time.Minute).Unix(),
		"jti":    "jti-1",
		"groups": []string{"analysts"},
	}
}

func (ti *testIssuer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	tok, err := ti.Dev.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a goroutine-safe log sink, to check what gets logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newAuth builds an Authenticator over the given issuers with a fake clock
// and a debug logger writing to logs.
func newAuth(t *testing.T, clk *clock, logs *syncBuffer, opts identity.Options, issuers ...config.OIDCIssuer) *identity.Authenticator {
	t.Helper()
	if clk != nil {
		opts.Now = clk.Now
	}
	if logs != nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := identity.NewOIDC(ctx, issuers, opts)
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return a
}

// signWith signs claims with an arbitrary key and algorithm, and the given
// kid, the way an attacker would.
func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any, embedJWK bool) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: embedJWK}).WithType("JWT")
	if kid != "" && !embedJWK {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if embedJWK {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// handMade assembles a compact JWS from a raw header, claims and signature.
func handMade(t testing.TB, header string, claims map[string]any, sig []byte) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc(payload) + "." + enc(sig)
}

func with(base map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func without(base map[string]any, keys ...string) map[string]any {
	out := with(base)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}
